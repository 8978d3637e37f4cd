"""How NNI's manager hands a freed trial slot to the next trial (nni_patches/node_preload.js,
fix 6), and the switch that keeps NNI 3.0's own way:

    NNISUITE_HANDOVER=poll nnisuite run ...   # NNI's 0.5 s polling, as NNI ships it

By default the manager's loop wakes on its events (a trial started or ended, the tuner
answered) instead of sleeping 0.5 s between rounds: a freed slot is filled in about 0.01-0.02 s
instead of 0.8 s (`nnisuite bench manager`, docs/performance.md), with the same records
(tests/test_handover.py runs a study both ways). The runner names the way in use when a study
starts; the manager's log (nnictl_stdout.log) says it too.
"""

from __future__ import annotations

import os

SWITCH = "NNISUITE_HANDOVER"


def by_events(env=None) -> bool:
    """Whether managers started with `env` (default: this process's) hand over on events."""
    return (os.environ if env is None else env).get(SWITCH) != "poll"


def note(env=None) -> str:
    """The runner's line saying which hand-over the manager uses."""
    if by_events(env):
        return f"trial hand-over: on NNI's events (NNI's 0.5 s polling: {SWITCH}=poll)"
    return f"trial hand-over: NNI's 0.5 s polling ({SWITCH}=poll; unset it for events)"
