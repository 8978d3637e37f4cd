"""Throw-away sshds for the remote training-service tests: on 127.0.0.1, or on a namespace
"host"'s own address inside it (tests.helpers.netns). Host key, client key, authorized_keys and
config all under a temporary folder; the machine's own SSH setup is never read or changed.
Stopped by the pid it started."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from nnisuite.study.manager import free_port

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
SFTP = next(
    (
        p
        for p in (
            "/usr/lib/openssh/sftp-server",
            "/usr/libexec/openssh/sftp-server",
            "/usr/lib/ssh/sftp-server",
        )
        if Path(p).exists()
    ),
    None,
)


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@contextlib.contextmanager
def loopback_sshd(folder: Path):
    """Yield (port, user, client_key_path) of an sshd listening on 127.0.0.1 only."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    keygen(folder / "client_key")
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    os.chmod(folder / "authorized_keys", 0o600)
    with sshd(folder, "127.0.0.1", free_port(), folder / "authorized_keys") as proc:
        yield proc.port, getpass.getuser(), folder / "client_key"


class Sshd:
    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc, self.port = proc, port

    def kill(self) -> None:
        """SIGKILL the daemon and every session it forked (a host that dies)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@contextlib.contextmanager
def sshd(folder: Path, address: str, port: int, authorized: Path, netns=None):
    """An sshd on `address`:`port` (inside namespace `netns`, a tests.helpers.netns.Machine,
    when given) that accepts the keys in `authorized`; its own files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    keygen(folder / "host_key")
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {address}",
                f"HostKey {folder / 'host_key'}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {folder / 'sshd.pid'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                f"Subsystem sftp {SFTP}",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    command = [SSHD, "-D", "-e", "-f", str(config)]
    proc = subprocess.Popen(
        netns.run(*command) if netns is not None else command,
        stderr=open(folder / "sshd.log", "w"),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if "Server listening" in (folder / "sshd.log").read_text():
                break
            if proc.poll() is not None:
                raise RuntimeError("sshd exited: " + (folder / "sshd.log").read_text())
            time.sleep(0.1)
        yield Sshd(proc, port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
