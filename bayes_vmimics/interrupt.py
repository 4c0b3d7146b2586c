"""Clean stops on Ctrl-C: worker processes leave SIGINT to their parent, and file writes finish first.

A terminal sends SIGINT to the whole process group. Left alone, each pool worker then raises
KeyboardInterrupt in the middle of a task, the pool replaces it and the parent waits forever for the lost
result (or the workers' tracebacks fill the terminal). Here:

- pool workers ignore SIGINT (:func:`ignore_sigint`, run first in every worker of a
  :class:`~bayes_vmimics.scheduler.LocalScheduler`, and in the workers of a local Dask cluster); the parent alone
  gets ``KeyboardInterrupt``, leaves its ``with LocalScheduler(...)`` block, and the pool terminates and joins its
  workers;
- writes that must not be cut in half (a step of emcee's HDF5 backend, a results file) run inside
  :func:`deferred_interrupt`: a SIGINT that arrives there is held and raised as ``KeyboardInterrupt`` when
  the write is done.

The command line (``cli.main``) turns the ``KeyboardInterrupt`` into a line saying how to resume and exit
code 130 (128 + SIGINT), as shells do.
"""

from __future__ import annotations

import contextlib
import signal
import threading

#: Exit code of a command stopped by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130

_depth = 0
_pending = False


def ignore_sigint() -> None:
    """Pool initializer: this (worker) process ignores SIGINT; its parent decides when to stop it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _hold(signum, frame) -> None:
    global _pending
    _pending = True


@contextlib.contextmanager
def deferred_interrupt():
    """Run the block to its end even if SIGINT arrives; raise ``KeyboardInterrupt`` afterwards if one did.

    Nested blocks are fine; outside the main thread (where Python delivers no signals) this does nothing.
    """
    global _depth, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = None
    if _depth == 0:
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.default_int_handler:
            previous = None  # SIGINT ignored or handled by the caller: leave it so
        else:
            signal.signal(signal.SIGINT, _hold)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and previous is not None:
            signal.signal(signal.SIGINT, previous)
            if _pending:
                _pending = False
                raise KeyboardInterrupt
