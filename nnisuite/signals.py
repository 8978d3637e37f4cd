"""A Ctrl-C or SIGTERM that lands while this process forks is held, never lost:

    with stops_held() as mask:     # SIGINT and SIGTERM blocked in this thread
        pid = os.fork()            # a child restores `mask` itself before its own work
    # a stop that came meanwhile is raised here, once, as KeyboardInterrupt (or its handler's)

Without it, a signal delivered during fork() is handled in the parent's first Python code after
the fork, which is an at-fork hook (logging's `_releaseLock`, run by os.fork and by every
subprocess.Popen given a preexec_fn, as NNI's manager start is): Python prints "Exception ignored
in: <function _releaseLock> ... KeyboardInterrupt" with a traceback there and drops the stop.
"""

from __future__ import annotations

import contextlib
import signal

STOPS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stops_held():
    """SIGINT and SIGTERM blocked for this thread while the block runs; yields the mask to
    restore (a forked child, which never leaves the block, restores it itself)."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        yield mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a held stop is raised here
