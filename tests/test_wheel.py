"""The wheel stands alone: built from the repository, installed into a fresh venv outside it (its
dependencies borrowed from the project's venv through a .pth line), and used from an empty folder
as someone who ran `pip install nnisuite-*.whl` would: one top-level name, the shipped studies by
name, NAS, the tabular benchmark, `nnisuite init` then `validate` and `run`; nothing written
outside that folder (or --out)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.nni import running_experiment_ids
from tests.helpers.paths import REPO


def test_every_package_folder_is_in_the_wheel_mapping():
    """pyproject lists each folder of the repository that holds Python code as a subpackage."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        path.parent.relative_to(REPO).as_posix()
        for path in REPO.glob("*/**/__init__.py")
        if path.parts[len(REPO.parts)]
        not in ("tests", ".venv", "mutants", "mutants-stage", "build")
    }
    mapped = {
        package: folder for package, folder in setuptools["package-dir"].items()
    }  # nnisuite.X -> X
    listed = set(setuptools["packages"])
    for folder in folders:
        top, *rest = folder.split("/")
        package = ".".join(["nnisuite", *([top] if top != "nnisuite" else []), *rest])
        assert package in listed, f"{folder}/ is not in pyproject's packages ({package})"
        assert f"nnisuite.{top}" in mapped or top == "nnisuite", folder


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # a copy of what git would commit: setuptools writes build/ and *.egg-info beside its input
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True
    ).stdout
    source = tmp_path_factory.mktemp("source")
    for name in filter(None, listed.split("\n")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    proc = subprocess.run(
        [*pip, "-w", out, source],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (found,) = out.glob("nnisuite-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_has_one_top_level_name_and_carries_the_studies(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"nnisuite"}
    shipped = {Path(n).name for n in names if n.startswith("nnisuite/experiments/")}
    assert {p.name for p in (REPO / "experiments").glob("*.yaml")} <= shipped
    spaces = {Path(n).name for n in names if n.startswith("nnisuite/search_spaces/")}
    assert {p.name for p in (REPO / "search_spaces").glob("*.yaml")} <= spaces
    for table in ("digits", "fashion-mnist"):
        for file in ("table.csv.gz", "table.json", "grid.yaml"):
            assert f"nnisuite/benchmarks/tables/{table}/{file}" in names
    assert "nnisuite/nni_patches/node_preload.js" in names
    assert {"nnisuite/templates/train.py", "nnisuite/templates/config.yml"} <= set(names)
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel; the project venv's packages reached by a .pth line
    (which does not run the project's own editable-install hook: its .pth is not read)."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    site = Path(
        subprocess.run(
            [
                venv / "bin" / "python",
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
         "--no-deps", "--no-index", wheel],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def user_env(venv: Path, home: Path) -> dict:
    """A user's shell with the wheel's venv active and nothing of the repository on any path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NNISUITE_", "PYTHON"))}
    return env | {
        "PATH": f"{venv / 'bin'}:{env['PATH']}",
        "HOME": str(home),
        "VIRTUAL_ENV": str(venv),
    }


def snapshot(root: Path) -> dict[str, float]:
    """path -> mtime of every file under `root` (bytecode aside)."""
    return {
        str(p): p.stat().st_mtime
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".git" not in p.parts
    }


@pytest.mark.slow
@pytest.mark.integration
def test_the_installed_wheel_runs_shipped_studies_nas_the_bench_and_your_own(installed, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = user_env(installed, home)
    repo_before = snapshot(REPO / "experiments") | snapshot(REPO / "search_spaces")
    site = next(installed.glob("lib/python*/site-packages/nnisuite"))
    site_before = snapshot(site)

    def run(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["nnisuite", *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-3000:])
        return proc

    code = "import nnisuite, nnisuite.trials.mlp as m; print(nnisuite.__file__, m.__file__)"
    where = subprocess.run(
        ["python", "-c", code], cwd=work, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert str(REPO) not in where and str(installed) in where, where
    assert "mlp_tpe_digits" in run("run", "--list").stdout
    ids = []
    try:
        done = run("run", "mlp_tpe_digits", "--max-trials", "2", "--epochs", "1", "--no-plots",
                   "--experiment-dir", "nni")  # fmt: skip
        ids += re.findall(r"^experiment (\w+):", done.stdout, re.M)
        (out,) = (work / "runs").glob("mlp_tpe_digits-*")
        trials = pd.read_csv(out / "trials.csv")
        assert len(trials) == 2 and set(trials.status) == {"SUCCEEDED"}
        nas = run("nas", "--config", "nas_depth", "--epochs", "1", "--max-depth", "2",
                  "--experiment-dir", "nni", "--out", "nas")  # fmt: skip
        assert (work / "nas" / "nas_table.md").is_file(), nas.stdout[-2000:]
        run("bench", "tabular", "run", "tuners_digits", "--table", "digits", "--seeds", "5",
            "--variants", "tpe,random", "--out", "sim")  # fmt: skip
        assert len(pd.read_csv(work / "sim" / "runs.csv")) == 10
        run("init", "mine")
        run("validate", "mine/config.yml")
        mine = run("run", "mine/config.yml", "--max-trials", "2", "--no-plots",
                   "--experiment-dir", "nni", "--out", "mine-out")  # fmt: skip
        ids += re.findall(r"^experiment (\w+):", mine.stdout, re.M)
        trials = pd.read_csv(work / "mine-out" / "trials.csv")
        assert len(trials) == 2 and trials["default"].gt(0.5).all(), trials
    finally:
        assert not set(ids) & set(running_experiment_ids().split())
    # nothing written into the repository, the installed package or the home folder but NNI's own
    assert snapshot(REPO / "experiments") | snapshot(REPO / "search_spaces") == repo_before
    assert snapshot(site) == site_before
