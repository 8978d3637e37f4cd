"""`import nni` with scipy.stats and pandas deferred (nni_patches/lazy_import.py): the same
distributions, the same JSON for NNI's serializer (a DataFrame and a numpy scalar included), the
real modules for everyone else, the switch, and the dispatcher's route through it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from nnisuite.nni_patches.interpreter import script, version_info
from tests.helpers.paths import REPO

# Samples of every distribution nni.mutable.Numerical builds from scipy.stats, with a fixed seed.
SAMPLES = """
import json, sys
import nnisuite  # installs the hook, as every nnisuite package does
import nni
from nni.mutable import Numerical
from numpy.random import RandomState
deferred = 'scipy.stats' not in sys.modules
pandas_deferred = 'pandas' not in sys.modules
import numpy
plain_json = nni.dump({"n": numpy.int64(3), "x": [0.5, "a"]})
import pandas
frame_json = nni.dump({"frame": pandas.DataFrame({"a": [1, 2], "b": [0.5, None]})})
back = nni.load(frame_json)["frame"]
kinds = [dict(low=0.001, high=0.1, log_distributed=True), dict(low=2, high=9),
         dict(mu=0.5, sigma=0.2), dict(mu=0.0, sigma=0.5, log_distributed=True)]
rng = RandomState(7)
samples = [[Numerical(**k).random(random_state=rng) for _ in range(3)] for k in kinds]
import scipy.stats
print(json.dumps({"deferred": deferred, "samples": samples,
                  "real": hasattr(scipy.stats, "ttest_ind"),
                  "stats_after": "scipy.stats" in sys.modules,
                  "pandas_deferred": pandas_deferred, "json": [plain_json, frame_json],
                  "frame_back": isinstance(back, pandas.DataFrame) and back.shape == (2, 2)}))
"""


def run_samples(lazy: bool) -> dict:
    env = {**os.environ, "NNISUITE_LAZY_SCIPY": "1" if lazy else "0"}
    proc = subprocess.run(
        [sys.executable, "-c", SAMPLES], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.slow  # 2 s or more in one process: out of the quick run
def test_nni_imports_without_scipy_stats_and_samples_the_same():
    lazy, plain = run_samples(True), run_samples(False)
    assert lazy["deferred"] and not plain["deferred"]  # the hook, and its switch
    assert lazy["samples"] == plain["samples"]  # every distribution, the real scipy's draws
    assert lazy["real"] and lazy["stats_after"]  # no stand-in left for anyone else
    assert lazy["pandas_deferred"] and not plain["pandas_deferred"]
    assert lazy["json"] == plain["json"] and lazy["frame_back"]  # what NNI writes and reads


@pytest.mark.slow  # 2 s or more in one process: out of the quick run
def test_the_dispatcher_command_goes_through_the_hook(tmp_path):
    """The manager's `python -m nni --exp_params ...` reaches NNI's own main through
    nnisuite.nni_patches.dispatcher, its arguments intact (a payload that is not JSON: NNI says so);
    with the hook switched off the dispatcher still goes there (its quick stop), and the hook
    stays off (test above)."""
    path = tmp_path / "python"
    path.write_text(script(sys.executable, version_info()))
    path.chmod(0o700)
    bad = base64.b64encode(b"not json").decode()
    proc = subprocess.run(
        [str(path), "-m", "nni", "--exp_params", bad], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "dispatcher.py" in proc.stderr and "run_module" in proc.stderr, proc.stderr[-2000:]
    assert "JSONDecodeError" in proc.stderr, proc.stderr[-2000:]
    code = (
        "from nnisuite.nni_patches.interpreter import script as s, version_info as v; "
        "print(s('python', v()))"
    )
    env = {**os.environ, "NNISUITE_LAZY_SCIPY": "0"}
    plain = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert plain.returncode == 0 and "exec python" in plain.stdout, plain.stderr[-2000:]
    assert "dispatcher.main()" in plain.stdout


def test_the_warm_launcher_imports_nothing_the_hook_defers():
    """A launcher for a foreign trial (preload ()) imports NNI's dependencies, then `import nni`
    in its forked trial finds everything it needs: neither scipy.stats nor pandas was imported
    for it (0.3 s of CPU per study); with the hook off the launcher imports both, as before."""
    code = (
        "import sys, json; from nnisuite.launcher import server; server.preload(()); import nni; "
        "print(json.dumps([m in sys.modules for m in ('numpy', 'pandas', 'scipy.stats')]))"
    )
    found = {}
    for lazy in ("1", "0"):
        env = {**os.environ, "NNISUITE_LAZY_SCIPY": lazy}
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        found[lazy] = json.loads(proc.stdout.splitlines()[-1])
    assert found["1"] == [True, False, False]
    assert found["0"] == [True, True, True]


FIRST = """
import json, sys
import scipy.stats, pandas   # a user's script that imported them before nni
stats, frames = scipy.stats, pandas
import nnisuite  # installs the hook
import nni
import nni.mutable.mutable as mutable
import scipy.stats, pandas
print(json.dumps({"hook": any(type(f).__name__ == "_Finder" for f in sys.meta_path),
                  "same": sys.modules["scipy.stats"] is stats and sys.modules["pandas"] is frames
                          and scipy.stats is stats and pandas is frames,
                  "nni_uses_real": mutable.norm is stats.norm}))
"""


def test_nni_imported_after_scipy_stats_and_pandas_keeps_the_real_modules():
    """A user who imported scipy.stats and pandas before nni: nni gets the real modules, and
    nobody gets a second copy (two pandas: isinstance checks between them fail)."""
    proc = subprocess.run(
        [sys.executable, "-c", FIRST], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {
        "hook": True,
        "same": True,
        "nni_uses_real": True,
    }


TPE_SUGGESTIONS = """
import json, sys
import nnisuite  # installs the hook
from nni.algorithms.hpo.tpe_tuner import TpeTuner
deferred = 'scipy.special' not in sys.modules
tuner = TpeTuner(seed=3, tpe_args={"n_startup_jobs": 2})
tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]},
                           "y": {"_type": "normal", "_value": [0, 1]}})
picked = []
for i in range(8):
    p = tuner.generate_parameters(i)
    picked.append(p)
    tuner.receive_trial_result(i, p, p["x"] - abs(p["y"]))
import scipy.special
print(json.dumps({"deferred": deferred, "picked": picked,
                  "real": hasattr(scipy.special, "gamma")}))
"""


@pytest.mark.slow  # 2 s or more in one process: out of the quick run
def test_tpe_imports_without_scipy_special_and_suggests_the_same():
    """NNI's TPE module gets `erf` deferred: the same suggestions past its start-up (where erf
    is called), the real scipy.special for everyone after it."""
    found = {}
    for lazy in ("1", "0"):
        env = {**os.environ, "NNISUITE_LAZY_SCIPY": lazy}
        proc = subprocess.run(
            [sys.executable, "-c", TPE_SUGGESTIONS], cwd=REPO, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        found[lazy] = json.loads(proc.stdout.splitlines()[-1])
    assert found["1"]["deferred"] and not found["0"]["deferred"]
    assert found["1"]["picked"] == found["0"]["picked"]
    assert found["1"]["real"]
