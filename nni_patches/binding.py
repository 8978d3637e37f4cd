"""Where the NNI manager nnisuite starts listens: this machine only, unless the user asks.

    hosts = addresses(args.host, config)      # ["127.0.0.1", "::1"] by default
    env = node_environment(hosts)             # what the manager's process gets (NODE_OPTIONS)

NNI 3.0 has no option for it: its REST server and web UI call `app.listen(port)`, which listens
on every interface with no authentication (whoever reaches the port can stop the experiment,
change its search space and read every trial). nnisuite starts each manager (runner, resume,
repeat, NAS, the tests) with Node's `--require nni_patches/node_preload.js` in NODE_OPTIONS:
that preload gives `listen` the addresses below (and the tuner's dispatcher 120 s instead of 10 to
connect); the installed NNI is not changed, and a plain
`nnictl create` keeps NNI's own behaviour (docs/what-happens-when.md says how to keep it private
too).

- default: 127.0.0.1 and ::1 (loopback: the web UI from this machine, `nnictl`, the tuner's
  dispatcher, local trials and the runner's watchdog all connect there);
- `--host ADDR`: ADDR as well (an address of this machine; 0.0.0.0 for every interface, NNI's
  own behaviour), with one line saying what that opens;
- remote training services (SSH workers, Kubernetes...): NNI 3.0's workers connect back to
  `ws://<nniManagerIp>:<port>`, so that one address is bound as well, not every interface.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import shlex
from pathlib import Path

PRELOAD = Path(__file__).with_name("node_preload.js")
LOOPBACK = ("127.0.0.1", "::1")
EVERYWHERE = ("0.0.0.0", "::")


def platform(config) -> str:
    """The training service's platform of an nni ExperimentConfig ('local', 'remote', ...)."""
    service = getattr(config, "training_service", None)
    if isinstance(service, list):
        return "hybrid"
    return str(getattr(service, "platform", None) or "local")


def manager_ip(config) -> str | None:
    """The nniManagerIp that workers connect back to (root or training-service level)."""
    service = getattr(config, "training_service", None)
    for holder in (service, config):
        ip = getattr(holder, "nni_manager_ip", None)
        if isinstance(ip, str) and ip:
            return ip
    return None


def addresses(host: str | None, config=None) -> list[str]:
    """The addresses the manager listens on: loopback, --host, and a remote study's
    nniManagerIp. ['0.0.0.0'] means every interface."""
    if host in EVERYWHERE:
        return ["0.0.0.0"]
    found = list(LOOPBACK)
    extra = [host] if host else []
    if config is not None and platform(config) != "local" and manager_ip(config):
        extra.append(manager_ip(config))
    for address in extra:
        if address not in found and address != "localhost":
            found.append(address)
    return found


def node_environment(hosts: list[str], base: dict | None = None) -> dict:
    """The environment of a manager process listening on `hosts` (NODE_OPTIONS keeps what the
    user had in it)."""
    env = dict(os.environ if base is None else base)
    preload = f"--require {json_quoted(str(PRELOAD))}"
    previous = env.get("NODE_OPTIONS", "").strip()
    env["NODE_OPTIONS"] = f"{previous} {preload}".strip() if preload not in previous else previous
    env["NNISUITE_BIND_HOSTS"] = ",".join(hosts)
    return env


def json_quoted(text: str) -> str:
    """A NODE_OPTIONS word: quoted when it holds a space (Node parses double quotes there)."""
    return f'"{text}"' if " " in text else text


def private_prefix() -> str:
    """What to put before an `nnictl` command that starts a manager (view, resume) to keep it on
    loopback."""
    return f"NODE_OPTIONS={shlex.quote('--require ' + json_quoted(str(PRELOAD)))} "


def local_addresses() -> set[str]:
    """Every address of this machine's interfaces (IPv4 and IPv6)."""
    import socket

    import psutil

    found = set()
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                found.add(entry.address.split("%")[0])
    return found


def check_host(host: str | None, config=None) -> str | None:
    """None when every address to bind is this machine's; else one line saying what is wrong
    (checked before anything starts)."""
    if host is not None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return f"--host {host}: not an IP address (e.g. 127.0.0.1, 192.0.2.1, 0.0.0.0)"
    if host in EVERYWHERE:
        return None
    mine = local_addresses()
    if host and host not in mine and host not in LOOPBACK:
        return f"--host {host}: not an address of this machine (its addresses: {shown(mine)})"
    ip = manager_ip(config) if config is not None and platform(config) != "local" else None
    if ip and ip not in mine and ip not in LOOPBACK and host is None:
        return (
            f"nniManagerIp {ip} is not an address of this machine, so the manager cannot listen "
            f"there for its workers: set nniManagerIp to one of {shown(mine)}, or pass "
            "--host 0.0.0.0 (every interface, e.g. behind NAT)"
        )
    return None


def shown(addresses_: set[str]) -> str:
    return ", ".join(sorted(addresses_, key=lambda a: (":" in a, a)))


def exposure(hosts: list[str], port: int) -> str | None:
    """One line saying what a non-loopback address opens; None on loopback only."""
    opened = [h for h in hosts if h not in LOOPBACK]
    if not opened:
        return None
    where = "every network interface" if opened == ["0.0.0.0"] else ", ".join(opened)
    return (
        f"note: NNI's web UI and REST API listen on {where} (port {port}) without "
        "authentication: whoever reaches it can stop this experiment, change its search space "
        "and read every trial (docs/what-happens-when.md, 'Keeping the web UI private')"
    )


class PortalUrls(logging.Filter):
    """NNI's "Web portal URLs: ..." line names every interface's address; on a bound manager
    only the bound ones answer: say those."""

    def __init__(self, hosts: list[str], port: int):
        super().__init__()
        self.hosts, self.port = hosts, port

    def filter(self, record: logging.LogRecord) -> bool:
        if "Web portal URLs" in str(record.msg) and self.hosts != ["0.0.0.0"]:
            urls = [
                f"http://[{h}]:{self.port}" if ":" in h else f"http://{h}:{self.port}"
                for h in self.hosts
            ]
            record.msg = "Web portal URLs: ${CYAN}" + " ".join(urls)
            record.args = ()
        return True


@contextlib.contextmanager
def portal_urls(hosts: list[str], port: int):
    """While NNI starts a manager listening on `hosts`: its URL line names only those."""
    logger = logging.getLogger("nni.experiment")  # experiment.py logs there
    urls = PortalUrls(hosts, port)
    logger.addFilter(urls)
    try:
        yield
    finally:
        logger.removeFilter(urls)


def add_host_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        metavar="ADDR",
        help="also listen on ADDR, an address of this machine (0.0.0.0: every interface, as "
        "plain nnictl does); default: this machine only (127.0.0.1 and ::1), plus a remote "
        "study's nniManagerIp. NNI's web UI has no authentication",
    )
