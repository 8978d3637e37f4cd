"""What machine a benchmark ran on, for its table's caption."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU model and core count, e.g. 'Intel(R) Xeon(R) ... (2 cores)'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return (platform.processor() or "unknown CPU") + f" ({os.cpu_count()} cores)"
