"""Where a design's chunks run: one interface over the local process pool and a Dask cluster.

:class:`~bayes_vmimics.scheduler.DaskScheduler` runs tasks on a cluster and hands them back in order
(:meth:`~bayes_vmimics.scheduler.DaskScheduler.imap`) or as they finish (``as_completed``). The package's scheduler
has no object of that interface for local processes (``open_scheduler("processes")`` yields None: each function
keeps its own pool), so :class:`LocalScheduler` here offers the same ``imap`` / ``map`` / ``as_completed`` /
``close`` over a ``multiprocessing.Pool`` (or in this process for one process). :func:`open_executor` picks one of
the two from ``n_processes`` and ``scheduler``; the rest of the package sees only ``executor.imap``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from multiprocessing import Pool
from typing import Any

from ..interrupt import ignore_sigint
from ..scheduler import as_scheduler

#: An ordered map: ``map_fn(func, iterable)`` yields ``func(x)`` for each x, in order.
MapFn = Callable[[Callable, Iterable], Iterable]


class LocalScheduler:
    """Independent tasks on ``n_processes`` local worker processes (the interface of
    :class:`~bayes_vmimics.scheduler.DaskScheduler`); one process runs them here, in order.

    The workers ignore SIGINT (:func:`~bayes_vmimics.interrupt.ignore_sigint`), so that Ctrl-C stops the parent,
    which closes the pool. Use it as a context manager.

    Args:
        n_processes: worker processes (count); ≤ 1 runs every task in this process.
    """

    def __init__(self, n_processes: int = 1) -> None:
        self.n_processes = max(1, int(n_processes))
        self._pool = Pool(self.n_processes, initializer=ignore_sigint) if self.n_processes > 1 else None

    def describe(self) -> str:
        """One line: what runs the tasks (for the logs)."""
        return "this process" if self._pool is None else f"{self.n_processes} local worker processes"

    def imap(self, fn: Callable, tasks: Iterable) -> Iterator:
        """``fn(t)`` for each task, yielded in the order of ``tasks`` (``Pool.imap``)."""
        return map(fn, tasks) if self._pool is None else self._pool.imap(fn, tasks)

    def map(self, fn: Callable, tasks: Iterable) -> list:
        """``[fn(t) for t in tasks]``, in order."""
        return list(self.imap(fn, tasks))

    def as_completed(self, fn: Callable, tasks: Iterable) -> Iterator[tuple[int, Any]]:
        """``(index, fn(task))`` for every task, as each finishes."""
        if self._pool is None:
            yield from enumerate(map(fn, tasks))
            return
        yield from self._pool.imap_unordered(_indexed, ((i, fn, t) for i, t in enumerate(tasks)))

    def close(self) -> None:
        """Stop the worker processes (pending tasks are dropped)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> LocalScheduler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _indexed(args):
    i, fn, task = args
    return i, fn(task)


@contextlib.contextmanager
def open_executor(n_processes: int = 1, scheduler=None):
    """The executor of a run: a Dask cluster if ``scheduler`` is given, else ``n_processes`` local processes.

    Args:
        n_processes: local worker processes when ``scheduler`` is None (count).
        scheduler: None, a :class:`~bayes_vmimics.scheduler.DaskScheduler` or a ``dask.distributed.Client``
            (left open: its owner closes it) (–).

    Yields:
        An object with ``imap``, ``map`` and ``as_completed`` (:class:`LocalScheduler` or ``DaskScheduler``).
    """
    sched = as_scheduler(scheduler)
    if sched is not None:
        yield sched
        return
    with LocalScheduler(n_processes) as local:
        yield local


@contextlib.contextmanager
def process_map(n_processes: int = 1):
    """A ``map_fn`` over ``n_processes`` local worker processes (``LocalScheduler(n_processes).imap``).

    Args:
        n_processes: worker processes (count).

    Yields:
        ``map_fn(func, iterable)`` returning results in order.
    """
    with LocalScheduler(n_processes) as local:
        yield local.imap


def dask_map(scheduler) -> MapFn:
    """A ``map_fn`` whose tasks (chunks of design rows) run on a Dask cluster, in order
    (:meth:`~bayes_vmimics.scheduler.DaskScheduler.imap`). Every run is a cold spin-up, so the outputs equal those
    of the local processes.

    Args:
        scheduler: a :class:`~bayes_vmimics.scheduler.DaskScheduler` or a ``dask.distributed.Client`` (–).

    Returns:
        ``map_fn(func, iterable)`` returning results in order.
    """
    sched = as_scheduler(scheduler)
    if sched is None:
        raise ValueError("dask_map needs a Dask scheduler or client, got None (use process_map for the local pool)")
    return sched.imap


__all__ = ["LocalScheduler", "MapFn", "dask_map", "open_executor", "process_map"]
