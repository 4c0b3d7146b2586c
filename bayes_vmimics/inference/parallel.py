"""Independent chains (stage 2 of the two-stage sampler, with or without covariates) on a local fork pool."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["run_chains"]


def _call(task):
    fn, args = task
    return fn(*args)


def run_chains(fn: Callable, chain_args: list[tuple], *, n_processes: int = 1, desc: str, progress: bool = False):
    """``fn(*args)`` for each chain's ``args``, in order: on a fork pool of ``n_processes`` workers (Ctrl-C
    ignored in the workers, as in stage 1) or one after the other. Each chain carries its own random generator,
    so the results do not depend on ``n_processes``.

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

    bar = progress_bar(total=len(chain_args), desc=desc, disable=not progress)
    if n_processes > 1 and len(chain_args) > 1:
        import multiprocessing

        from ..interrupt import ignore_sigint

        out = []
        with multiprocessing.get_context("fork").Pool(
            min(n_processes, len(chain_args)), initializer=ignore_sigint
        ) as pool:
            for res in pool.imap(_call, [(fn, a) for a in chain_args]):
                out.append(res)
                bar.update()
    else:
        out = []
        for a in chain_args:
            out.append(fn(*a))
            bar.update()
    bar.close()
    return out
