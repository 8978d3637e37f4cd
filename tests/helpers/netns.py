"""Network namespaces a test makes and always deletes: two "machines" joined by a veth pair,
or a manager and N hosts on one bridge.

    with two_machines() as (a, b):      # a.name, a.address ("192.0.2.1"), b likewise
        subprocess.run(a.run(sys.executable, "-c", "..."))
    with star(3) as (manager, hosts):   # 192.0.2.1 with a bridge; hosts 192.0.2.11, .12, .13
        hosts[0].unplug()               # its link down: the host is gone from the network

Both ends live in namespaces of the test's own (DESIGN.md: traffic from the root namespace into
one did not connect here), with addresses from 192.0.2.0/24 (a documentation range) that exist
only inside them, so nothing outside is ever a target. Deleting a namespace deletes its end of
the veth pair. `cannot_make()` says in one line why a machine cannot make them (not root, no
`ip`), for a skip.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass

IP = shutil.which("ip")
_made = itertools.count()


@dataclass
class Machine:
    name: str
    address: str
    link: str | None = None  # its network interface (star's hosts)

    def run(self, *command: str) -> list[str]:
        """A command line that runs `command` inside this namespace."""
        return [IP, "netns", "exec", self.name, *command]

    def unplug(self) -> None:
        """Its link down: nothing reaches it, it reaches nothing (plug() undoes it)."""
        ip("-n", self.name, "link", "set", self.link, "down")

    def plug(self) -> None:
        ip("-n", self.name, "link", "set", self.link, "up")

    def pids(self) -> list[int]:
        """Every process that lives in this namespace."""
        out = subprocess.run([IP, "netns", "pids", self.name], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def lose(self) -> None:
        """The machine dies: its link down and every process in it SIGKILLed."""
        self.unplug()
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, text=True, timeout=30)


def cannot_make() -> str | None:
    """None when this process can make network namespaces; else why not, in one line."""
    if IP is None:
        return "no `ip` command (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    name = f"nnisuite-probe-{os.getpid()}"
    try:
        ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        return f"ip netns add failed: {exc.stderr.strip()}"
    ip("netns", "del", name)
    return None


@contextlib.contextmanager
def two_machines(prefix: str = "nns"):
    """Namespaces A (192.0.2.1) and B (192.0.2.2) joined by a veth pair, loopback up in each."""
    tag = f"{prefix}{os.getpid() % 100000}x{next(_made)}"
    a, b = Machine(f"{tag}a", "192.0.2.1"), Machine(f"{tag}b", "192.0.2.2")
    with namespaces(a, b):
        ip("link", "add", f"{tag}va", "netns", a.name, "type", "veth", "peer", "name",
           f"{tag}vb", "netns", b.name)  # fmt: skip
        for m, dev in ((a, f"{tag}va"), (b, f"{tag}vb")):
            ip("-n", m.name, "addr", "add", f"{m.address}/24", "dev", dev)
            ip("-n", m.name, "link", "set", dev, "up")
        yield a, b


@contextlib.contextmanager
def star(n: int, prefix: str = "nst"):
    """A manager namespace whose bridge holds 192.0.2.1, and `n` host namespaces (192.0.2.11,
    .12, ...) each joined to the bridge by a veth pair; loopback up everywhere."""
    tag = f"{prefix}{os.getpid() % 100000}x{next(_made)}"
    manager = Machine(f"{tag}m", "192.0.2.1", f"{tag}br")
    hosts = [Machine(f"{tag}h{i}", f"192.0.2.{11 + i}", f"{tag}e{i}") for i in range(n)]
    with namespaces(manager, *hosts):
        ip("-n", manager.name, "link", "add", manager.link, "type", "bridge")
        ip("-n", manager.name, "addr", "add", f"{manager.address}/24", "dev", manager.link)
        ip("-n", manager.name, "link", "set", manager.link, "up")
        for i, host in enumerate(hosts):
            port = f"{tag}p{i}"
            ip("link", "add", host.link, "netns", host.name, "type", "veth", "peer", "name",
               port, "netns", manager.name)  # fmt: skip
            ip("-n", host.name, "addr", "add", f"{host.address}/24", "dev", host.link)
            ip("-n", host.name, "link", "set", host.link, "up")
            ip("-n", manager.name, "link", "set", port, "master", manager.link)
            ip("-n", manager.name, "link", "set", port, "up")
        yield manager, hosts


@contextlib.contextmanager
def namespaces(*machines):
    """The machines' namespaces made, loopback up in each; all deleted afterwards, also when
    making one or the block fails (deleting a namespace deletes its links)."""
    made = []
    try:
        for m in machines:
            ip("netns", "add", m.name)
            made.append(m.name)
            ip("-n", m.name, "link", "set", "lo", "up")
        yield
    finally:
        for name in made:
            with contextlib.suppress(subprocess.CalledProcessError):
                ip("netns", "del", name)


def listed() -> list[str]:
    """The names of the namespaces that exist now."""
    out = subprocess.run([IP, "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]
