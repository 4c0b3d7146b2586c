"""Where a design's chunks run: local processes or a Dask cluster, behind the package's one scheduler interface.

:class:`~bayes_vmimics.scheduler.LocalScheduler` (local worker processes, or this process for one) and
:class:`~bayes_vmimics.scheduler.DaskScheduler` (a cluster) both hand results back in order (``imap``) or as they
finish (``as_completed``); :func:`~bayes_vmimics.scheduler.open_executor` picks one of the two from ``n_processes``
and ``scheduler``. This module names them for the sensitivity analyses, which see only ``executor.imap``, and adds
the two ``map_fn`` helpers of :func:`~bayes_vmimics.sensitivity.evaluate_design`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from ..scheduler import LocalScheduler, as_scheduler, open_executor

#: An ordered map: ``map_fn(func, iterable)`` yields ``func(x)`` for each x, in order.
MapFn = Callable[[Callable, Iterable], Iterable]


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
