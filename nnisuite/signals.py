"""A Ctrl-C or SIGTERM that lands while this process forks is held, never lost:

    with stops_held() as held:     # SIGINT and SIGTERM recorded, not acted on, in the block
        pid = os.fork()            # a child calls held.restore() itself
    # a stop that came meanwhile is acted on here, once (KeyboardInterrupt, or its handler's)

Without it, a signal that arrives during fork() is handled in the parent's first Python code
after the fork, which is an at-fork hook (logging's `_releaseLock`, run by os.fork and by every
subprocess.Popen given a preexec_fn, as NNI's manager start is): Python prints "Exception
ignored in: <function _releaseLock> ... KeyboardInterrupt" with a traceback there and drops
the stop. Blocking the signals in this thread is not enough: the kernel then delivers them to
another thread (a BLAS or OpenMP worker), and Python still runs the handler in the main thread
at its next bytecode, the hook. So in the main thread the block records the signals with a
handler that only remembers them, and acts on them once it ends; in other threads Python runs no
signal handlers, and the block only masks them there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading

STOPS = (signal.SIGINT, signal.SIGTERM)


@dataclasses.dataclass
class Held:
    """What stops_held changed: this thread's signal mask and the main thread's handlers from
    before; restore() puts both back (a forked child calls it before its own work)."""

    mask: set
    handlers: dict

    def restore(self) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
        for s, handler in self.handlers.items():
            if handler is not None:
                signal.signal(s, handler)


@contextlib.contextmanager
def stops_held():
    """SIGINT and SIGTERM held while the block runs; yields the Held state to restore."""
    main = threading.current_thread() is threading.main_thread()
    came: list[int] = []
    handlers = {s: signal.getsignal(s) for s in STOPS} if main else {}
    for s in handlers:
        signal.signal(s, lambda signum, _frame: came.append(signum))
    state = Held(signal.pthread_sigmask(signal.SIG_BLOCK, STOPS), handlers)
    try:
        yield state
    finally:
        state.restore()  # a stop blocked meanwhile is recorded as it is unblocked
        for signum in dict.fromkeys(came):
            act_on(signum, handlers[signum])


def act_on(signum: int, handler) -> None:
    """What `handler` does with `signum`, now."""
    if handler is signal.SIG_IGN or handler is None:
        return
    if handler is signal.SIG_DFL:
        os.kill(os.getpid(), signum)
        return
    handler(signum, None)
