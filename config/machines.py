"""The workers of a remote experiment, checked over SSH before anything starts.

    problems = check_machines(raw, "exp.yaml", modules=("nni", "torch"))   # [] when all is well

NNI 3.0's remote training service finds out that a worker is unreachable, refuses the key, has
no Python at `pythonPath` or lacks the trial's packages only once the study runs, as failed
trials or a manager error. The runner asks each host of `machineList` first, all at once, with
the system's `ssh` client (BatchMode, a 5 s connect timeout, the entry's `sshKeyFile`; host keys
are neither checked nor recorded, as NNI's own SSH client does not check them): one error line
per host that cannot run trials, naming it. A host that logs in with a password (`passwd`) is
not checked (said in a note).
"""

from __future__ import annotations

import concurrent.futures
import shlex
import shutil
import subprocess
from pathlib import Path

from nnisuite.config.problem import Problem

CONNECT_TIMEOUT_S = 5
MARK = "nnisuite-check:"


def entries(raw: dict) -> list[dict]:
    """The machineList of a remote experiment's YAML mapping ([] for other platforms)."""
    service = raw.get("trainingService") or {}
    services = service if isinstance(service, list) else [service]
    found = []
    for s in services:
        if isinstance(s, dict) and s.get("platform") == "remote":
            found += [m for m in s.get("machineList") or [] if isinstance(m, dict)]
    return found


def probe_script(python_path: str | None, modules: tuple[str, ...]) -> str:
    """What runs on the host: which python3 `pythonPath` gives, and which modules it lacks."""
    folder = shlex.quote(python_path or "")
    path = (
        f"[ -x {folder}/python3 ] || [ -x {folder}/python ] || {{ echo {MARK}nopython; exit 0; }}; "
        f"PATH={folder}:$PATH; "
        if python_path
        else ""
    )  # NNI puts pythonPath first on PATH: a folder without Python would fall back silently
    check = (
        "import importlib.util as u; "
        f"print('{MARK}missing', *[m for m in {list(modules)!r} if u.find_spec(m) is None])"
    )
    return (
        f"{path}py=$(command -v python3 || command -v python); "
        f'if [ -z "$py" ]; then echo {MARK}nopython; exit 0; fi; '
        f'echo {MARK}python "$py"; "$py" -c {shlex.quote(check)}'
    )


def where(m: dict) -> str:
    return f"{m.get('user', '?')}@{m.get('host', '?')}:{m.get('port', 22)}"


def check_one(m: dict, base: Path, modules: tuple[str, ...]) -> str | None:
    """None when the host can run trials; else what is wrong, in one line."""
    key = m.get("sshKeyFile")
    key = str((base / Path(key).expanduser()).resolve()) if key else None
    if key and not Path(key).is_file():
        return f"sshKeyFile {key} does not exist"
    command = [
        "ssh",
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR",
        "-p", str(m.get("port", 22)),
    ]  # fmt: skip
    if key:
        command += ["-i", key, "-o", "IdentitiesOnly=yes"]
    command += [f"{m.get('user')}@{m.get('host')}", probe_script(m.get("pythonPath"), modules)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CONNECT_TIMEOUT_S * 4
        )
    except subprocess.TimeoutExpired:
        return f"no answer over SSH in {CONNECT_TIMEOUT_S * 4} s"
    said = {
        line[len(MARK) :].split(" ", 1)[0]: line[len(MARK) :].partition(" ")[2]
        for line in done.stdout.splitlines()
        if line.startswith(MARK)
    }
    if done.returncode == 255 or not said:
        error = (done.stderr.strip().splitlines() or ["ssh failed"])[-1]
        if "Permission denied" in error:
            return f"the key {key or '(ssh defaults)'} was refused ({error})"
        return f"unreachable over SSH ({error})"
    if "nopython" in said:
        where_ = f"pythonPath {m.get('pythonPath')}" if m.get("pythonPath") else "its PATH"
        return f"no python3 (or python) in {where_}"
    missing = said.get("missing", "").split()
    if missing:
        return (
            f"its Python ({said.get('python', '?')}) lacks {', '.join(missing)}: install "
            "nnisuite's dependencies there (pip install nni==3.0 torch ...), or point pythonPath "
            "at a Python that has them"
        )
    return None


def needed(trial) -> tuple[str, ...]:
    """The packages a host needs for `trial` (an nnisuite.config.trial.Trial): NNI's runtime, and
    the trial's heavy imports (nnisuite's trials: torch and numpy)."""
    preload = trial.preload()
    heavy = ("torch", "numpy") if preload is None else preload
    return tuple(dict.fromkeys(["nni", *(m.split(".")[0] for m in heavy)]))


def check_machines(raw: dict, config_file, modules: tuple[str, ...] = ("nni",)) -> list[Problem]:
    """One Problem per host of the machineList that cannot run trials (errors), or that was not
    checked (notes); all hosts at once."""
    machines = entries(raw)
    if not machines:
        return []
    file = str(config_file)
    if shutil.which("ssh") is None:
        said = "not checked: no ssh client here"
        return [Problem(file, "machineList", said, "install openssh-client", "note")]
    base = Path(config_file).parent
    todo = [m for m in machines if not m.get("passwd") or m.get("sshKeyFile")]
    problems = [
        Problem(file, f"machineList {where(m)}", "logs in with a password: not checked",
                "use sshKeyFile to have it checked before the study", "note")
        for m in machines
        if m not in todo
    ]  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(todo) or 1)) as pool:
        found = list(pool.map(lambda m: check_one(m, base, modules), todo))
    for m, error in zip(todo, found):
        if error:
            problems.append(
                Problem(file, f"machineList {where(m)}", error, "fix the host or its entry")
            )
    return problems
