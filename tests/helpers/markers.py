"""Skip markers for tests that need a system package `make test` installs when it can
(Debian's dataset-fashion-mnist, chromium, openssh-server); each says how to get it. In CI
(CI=true) nothing is skipped: a missing package there is a failure, not a quiet skip."""

from __future__ import annotations

import os
import shutil

import pytest

from nnisuite.trials.data import find_idx_files
from tests.helpers.sshd import SFTP, SSHD

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI") == "true"

needs_fashion_mnist = pytest.mark.skipif(
    find_idx_files("fashion-mnist", None) is None and not IN_CI,
    reason="Fashion-MNIST absent: apt-get install dataset-fashion-mnist (make test does it)",
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not IN_CI,
    reason="chromium absent: apt-get install chromium (make test does it as root)",
)
needs_sshd = pytest.mark.skipif(
    (SSHD is None or SFTP is None) and not IN_CI,
    reason="sshd absent: apt-get install openssh-server (make test does it as root)",
)
