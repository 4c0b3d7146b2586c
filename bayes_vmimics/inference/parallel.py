"""Independent chains (stage 2 of the two-stage sampler, with or without covariates) on local fork workers."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["run_chains"]


def _call(task):
    fn, args = task
    return fn(*args)


def run_chains(fn: Callable, chain_args: list[tuple], *, n_processes: int = 1, desc: str, progress: bool = False):
    """``fn(*args)`` for each chain's ``args``, in order: on a :class:`~bayes_vmimics.scheduler.LocalScheduler`
    of ``n_processes`` forked workers (Ctrl-C ignored in the workers, as in stage 1) or one after the other in this
    process. Each chain carries its own random generator, so the results do not depend on ``n_processes``.

    Args:
        fn: a module-level function (picklable) (–).
        chain_args: one argument tuple per chain (–).
        n_processes: workers; 1 runs the chains in this process (count).
        desc: progress-bar label (–).
        progress: show a progress bar over the chains (bool).

    Returns:
        The results of ``fn``, one per chain, in the order of ``chain_args``.
    """
    from ..progress import progress_bar
    from ..scheduler import LocalScheduler

    bar = progress_bar(total=len(chain_args), desc=desc, disable=not progress)
    out = []
    # fork: the workers inherit the parent's modules and numba-compiled functions instead of starting afresh
    with LocalScheduler(min(n_processes, len(chain_args)), context="fork") as sched:
        for res in sched.imap(_call, [(fn, a) for a in chain_args]):
            out.append(res)
            bar.update()
    bar.close()
    return out
