"""nnisuite.nni_patches.interpreter: the interpreter script NNI's manager runs answers NNI's version
query exactly as NNI's own module does, and hands every other command to the real Python."""

from __future__ import annotations

import json
import subprocess
import sys

from nnisuite.nni_patches.interpreter import MODULE, VERSION_SCRIPT, quick_version_query


def test_the_script_answers_as_nni_does_and_passes_everything_else_on():
    with quick_version_query() as script:
        assert script is not None and script.is_file()
        quick = subprocess.run([script, "-m", MODULE], capture_output=True, text=True, timeout=60)
        version = subprocess.run([script, "-c", VERSION_SCRIPT], capture_output=True, text=True)
        other = subprocess.run(
            [script, "-c", "import sys; print(sys.argv[1:], sys.executable)", "a b", "-m"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        from nni.experiment import launcher as nni_launcher

        assert nni_launcher.NniManagerArgs.__init__.__name__ == "init"  # patched while it runs
    real = subprocess.run(
        [sys.executable, "-m", MODULE], capture_output=True, text=True, timeout=60
    )
    real_version = subprocess.run([sys.executable, "-c", VERSION_SCRIPT], capture_output=True)
    assert quick.returncode == real.returncode == 0
    assert json.loads(quick.stdout) == json.loads(real.stdout)
    assert version.returncode == 0 and version.stdout.encode() == real_version.stdout
    assert other.stdout.split() == ["['a", "b',", "'-m']", sys.executable]
    assert not script.exists()  # removed, and NNI's launcher restored
    assert nni_launcher.NniManagerArgs.__init__.__name__ == "__init__"
