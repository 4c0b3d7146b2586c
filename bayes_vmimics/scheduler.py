"""Where the independent tasks of a long run execute: local worker processes (the default) or a Dask cluster.

Stage 1 of the hierarchical calibration (one task per site), the ensembles of ``calibrate`` (one task per
ensemble), the held-out predictions of ``validate`` (one task per site and block of draws) and the sensitivity
designs (one task per chunk of runs) are independent tasks; so are the evaluations of one emcee step and the
stage-2 chains. Every parallel step of the package runs them through one interface: ``map`` (a list, in order),
``imap`` (in order, as each result and all before it are back), ``as_completed`` (``(index, result)`` as each
finishes) and ``close`` (also as a context manager); only PyMC's NUTS chains run on PyMC's own processes
(``pm.sample(cores=...)``). Two classes offer it:

- :class:`LocalScheduler`: a ``multiprocessing`` pool of ``n_processes`` workers on this machine, or this process
  alone for one (``--n-processes``). Its workers ignore SIGINT (:func:`~bayes_vmimics.interrupt.ignore_sigint`),
  so that Ctrl-C stops the parent, which closes the pool. A function called with ``scheduler=None`` opens its own
  for the call (:func:`open_executor`), in the multiprocessing context it needs (``fork`` where the workers
  inherit the call's problem and compiled functions) and with the worker state it needs (``initializer``);
- :class:`DaskScheduler`: a Dask cluster (``dask.distributed``, the optional extra
  ``pip install "bayes_vmimics[dask]"``, imported only when asked for). This module is the one place that knows
  about Dask.

Besides:

- :func:`parse_scheduler` reads the command line's ``--scheduler processes|dask|tcp://HOST:PORT``;
- :func:`open_scheduler` builds what it names: for ``processes`` nothing (each function opens its own
  :class:`LocalScheduler`) or, with ``local=True``, a :class:`LocalScheduler` of ``n_workers`` processes; a
  ``LocalCluster`` of ``n_workers`` single-threaded worker processes for ``dask``; or a client of an existing
  cluster for an address (a short connect timeout, then a :class:`ConnectionError` naming the address);
- :class:`DaskScheduler` hands each result back to the client as its task finishes
  (:meth:`DaskScheduler.as_completed`), so that the client writes the checkpoints and the workers need no shared
  filesystem; :func:`as_scheduler` wraps a user's own ``dask.distributed.Client`` the same way.

On a cluster nothing is lost. A task whose worker dies (killed, out of memory, node lost) is rescheduled by the Dask
scheduler on another worker, up to ``distributed.scheduler.allowed-failures`` times (default 3; then
``KilledWorker`` is raised). Every task is seeded by its own child seed, so its result does not depend on which
worker ran it, in which order, or how often. A client that dies loses only the tasks in flight: the finished ones
are in its checkpoints (stage-1 ``.npz`` files, the chains' HDF5 file, the sensitivity ``*_sites/`` files) and a
rerun resumes from them.

Workers import ``bayes_vmimics``: a remote cluster needs the same version installed on every worker (checked when
connecting). Scripts that start a ``LocalCluster`` must guard their entry point with ``if __name__ ==
"__main__":`` (the workers are spawned processes that import the main module).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .interrupt import ignore_sigint

#: The ``--scheduler`` value of the local process pools (the default).
PROCESSES = "processes"
#: The ``--scheduler`` value of a Dask ``LocalCluster`` on this machine.
DASK = "dask"
#: Seconds to wait for a scheduler at an address before giving up (s).
CONNECT_TIMEOUT_S = 5.0
#: What to install for Dask.
INSTALL_HINT = 'pip install "bayes_vmimics[dask]"'

_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def parse_scheduler(text: str) -> str:
    """The ``--scheduler`` value: ``processes``, ``dask`` or the address of a running Dask scheduler.

    Args:
        text: ``"processes"`` (the local process pools), ``"dask"`` (a Dask ``LocalCluster`` on this machine) or
            ``"tcp://HOST:PORT"`` (also ``tls://``; IPv6 hosts in brackets) (–).

    Returns:
        The value, stripped of surrounding blanks (–).

    Raises:
        ValueError: anything else (names the value and the three forms).
    """
    value = str(text).strip()
    if value in (PROCESSES, DASK):
        return value
    m = _ADDRESS.match(value)
    if m and 1 <= int(m.group(3)) <= 65535:
        return value
    raise ValueError(
        f"scheduler must be 'processes', 'dask' or the address of a Dask scheduler such as tcp://HOST:8786, "
        f"got {text!r}"
    )


def import_distributed():
    """``dask.distributed``, or an error saying how to install it.

    Raises:
        ModuleNotFoundError: Dask is not installed (the message gives :data:`INSTALL_HINT`).
    """
    try:
        import distributed
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"the Dask scheduler needs dask.distributed, which is not installed: {INSTALL_HINT}"
        ) from None
    return distributed


class LocalScheduler:
    """Runs independent tasks on ``n_processes`` local worker processes, or in this process for one, behind the
    interface of :class:`DaskScheduler` (``map``, ``imap``, ``as_completed``, ``close``).

    The workers ignore SIGINT (:func:`~bayes_vmimics.interrupt.ignore_sigint`), so that Ctrl-C reaches the parent
    alone: it leaves its ``with`` block and the pool's workers are terminated and joined. A task that raises
    re-raises its exception (type and message) in the parent. Use it as a context manager.

    Args:
        n_processes: worker processes (count); ≤ 1 runs every task in this process, in order.
        context: the ``multiprocessing`` start method (``"fork"``, ``"spawn"``, ``"forkserver"``), or None for
            the platform's default. ``"fork"`` lets the workers inherit what the parent holds (a large problem,
            numba-compiled functions) instead of receiving it pickled (–).
        initializer: called as ``initializer(*initargs)`` once in each worker process, after SIGINT is ignored
            there; not called when the tasks run in this process (one process): tasks must not rely on it then
            (callable).
        initargs: its arguments; inherited by forked workers, pickled for the others (–).
    """

    def __init__(
        self,
        n_processes: int = 1,
        *,
        context: str | None = None,
        initializer: Callable | None = None,
        initargs: tuple = (),
    ) -> None:
        self.n_processes = max(1, int(n_processes))
        self._pool = None
        if self.n_processes > 1:
            ctx = multiprocessing.get_context(context)
            self._pool = ctx.Pool(self.n_processes, initializer=_local_worker_init, initargs=(initializer, initargs))

    # ------------------------------------------------------------------ information
    def n_threads(self) -> int:
        """Tasks that run at once (count): the worker processes, or 1 in this process."""
        return self.n_processes

    def describe(self) -> str:
        """One line: what runs the tasks (for the logs)."""
        return "this process" if self._pool is None else f"{self.n_processes} local worker processes"

    # ------------------------------------------------------------------ running tasks
    def imap(self, fn: Callable, tasks: Iterable) -> Iterator:
        """``fn(t)`` for each task, yielded in the order of ``tasks`` (``Pool.imap``, one task at a time); a
        drop-in ``map_fn(func, iterable)``."""
        return map(fn, tasks) if self._pool is None else self._pool.imap(fn, tasks)

    def map(self, fn: Callable, tasks: Iterable) -> list:
        """``[fn(t) for t in tasks]``, in the order of ``tasks`` (``Pool.map``: tasks sent in chunks)."""
        return list(map(fn, tasks)) if self._pool is None else self._pool.map(fn, list(tasks))

    def as_completed(self, fn: Callable, tasks: Iterable, *, in_flight: int | None = None) -> Iterator[tuple[int, Any]]:
        """``(index of the task in tasks, fn(task))`` for every task, as each finishes (in order in this process).

        Args:
            fn: a picklable function of one argument (–).
            tasks: its arguments (–).
            in_flight: accepted for the interface of :meth:`DaskScheduler.as_completed`; the pool feeds its
                workers itself (count).
        """
        if self._pool is None:
            yield from enumerate(map(fn, tasks))
            return
        yield from self._pool.imap_unordered(_indexed, ((i, fn, t) for i, t in enumerate(tasks)))

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Stop the worker processes (tasks not yet finished are dropped)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> LocalScheduler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalScheduler({self.n_processes})"


def _local_worker_init(initializer: Callable | None, initargs: tuple) -> None:
    """A :class:`LocalScheduler` worker starts: SIGINT ignored (the parent decides), then the caller's initializer."""
    ignore_sigint()
    if initializer is not None:
        initializer(*initargs)


def _indexed(args):
    i, fn, task = args
    return i, fn(task)


class DaskScheduler:
    """Runs independent tasks on a Dask cluster and hands back each result as its task finishes.

    Build it with :meth:`local` (a ``LocalCluster`` it owns), :meth:`connect` (an existing cluster) or
    :func:`as_scheduler` (a user's ``dask.distributed.Client``, left open on :meth:`close`).

    Args:
        client: a connected ``dask.distributed.Client`` (–).
        cluster: the cluster this object started and closes with the client, or None (–).
        own_client: close ``client`` on :meth:`close` (bool).
        retries: extra attempts of a task that *raised* an exception (count); a task whose *worker died* is
            rescheduled by Dask anyway (``distributed.scheduler.allowed-failures``). Default 0: the package's tasks
            are deterministic, so an exception would only recur.

    Attributes:
        n_submitted: tasks submitted through this object so far (count), e.g. to see that a resumed run
            re-runs only the unfinished tasks.
    """

    def __init__(self, client, *, cluster=None, own_client: bool = False, retries: int = 0) -> None:
        if int(retries) < 0:
            raise ValueError(f"retries must be ≥ 0, got {retries}")
        self.client = client
        self.cluster = cluster
        self.own_client = bool(own_client)
        self.retries = int(retries)
        self.n_submitted = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def local(cls, n_workers: int, *, retries: int = 0, **cluster_kwargs) -> DaskScheduler:
        """A ``LocalCluster`` of ``n_workers`` worker processes with one thread each, and its client.

        The workers are started with SIGINT ignored (as the package's pool workers), so that Ctrl-C stops the
        client, which then closes the cluster, instead of each worker printing a traceback.

        Args:
            n_workers: worker processes (count; ≥ 1).
            retries: see the class (count).
            **cluster_kwargs: more ``LocalCluster`` arguments (e.g. ``memory_limit``) (–).

        Raises:
            ModuleNotFoundError: Dask is not installed.
            ValueError: ``n_workers`` < 1.
        """
        if int(n_workers) < 1:
            raise ValueError(f"a local Dask cluster needs n_workers ≥ 1, got {n_workers}")
        distributed = import_distributed()
        kwargs = {"dashboard_address": ":0", **cluster_kwargs}
        with _sigint_ignored():
            cluster = distributed.LocalCluster(n_workers=int(n_workers), threads_per_worker=1, processes=True, **kwargs)
        try:
            client = distributed.Client(cluster)
        except BaseException:
            cluster.close()
            raise
        return cls(client, cluster=cluster, own_client=True, retries=retries)

    @classmethod
    def connect(cls, address: str, *, timeout: float = CONNECT_TIMEOUT_S, retries: int = 0) -> DaskScheduler:
        """A client of the Dask scheduler at ``address``.

        Args:
            address: ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` (–).
            timeout: how long to try to reach the scheduler (s).
            retries: see the class (count).

        Raises:
            ValueError: a malformed address, or workers whose ``bayes_vmimics`` is missing or of another version.
            ConnectionError: no scheduler answered at ``address`` within ``timeout`` (names the address).
            ModuleNotFoundError: Dask is not installed.
        """
        address = parse_scheduler(address)
        if address in (PROCESSES, DASK):
            raise ValueError(f"connect needs the address of a scheduler (tcp://HOST:PORT), got {address!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r} s")
        distributed = import_distributed()
        try:
            client = distributed.Client(address, timeout=float(timeout))
        except OSError as err:  # distributed raises OSError (a TimeoutError) when nothing answers
            raise ConnectionError(
                f"no Dask scheduler answered at {address} within {timeout:g} s ({err}). Start one there "
                "(`dask scheduler`, then `dask worker ADDRESS` on each machine), check the host and port, or use "
                "--scheduler dask for a cluster on this machine"
            ) from None
        sched = cls(client, own_client=True, retries=retries)
        try:
            sched.check_workers()
        except BaseException:
            client.close()
            raise
        return sched

    def check_workers(self) -> None:
        """Check that every worker has this version of ``bayes_vmimics`` (tasks unpickle its functions).

        Raises:
            ValueError: workers without the package or with another version (names them).
        """
        from importlib.metadata import version

        from . import __version__

        # importlib's function, not one of this package: it must run on workers that lack the package
        found = self.client.run(version, "bayes_vmimics", on_error="return")
        bad = {w: v for w, v in found.items() if v != __version__}
        if bad:
            shown = "; ".join(f"{w}: {v if isinstance(v, str) else type(v).__name__}" for w, v in list(bad.items())[:4])
            raise ValueError(
                f"{len(bad)} Dask worker(s) lack bayes_vmimics {__version__} ({shown}): install this version on "
                "every worker machine"
            )

    # ------------------------------------------------------------------ information
    @property
    def address(self) -> str:
        """The scheduler's address (–)."""
        return str(self.client.scheduler.address)

    def n_threads(self) -> int:
        """Worker threads in the cluster now (count); a task runs on one."""
        return int(sum(self.client.nthreads().values()))

    def describe(self) -> str:
        """One line: what runs the tasks (for the logs)."""
        kind = "local Dask cluster" if self.cluster is not None else "Dask cluster"
        n = self.client.nthreads()
        return f"{kind} at {self.address}: {len(n)} worker(s), {sum(n.values())} thread(s)"

    # ------------------------------------------------------------------ running tasks
    def as_completed(self, fn: Callable, tasks: Iterable, *, in_flight: int | None = None) -> Iterator[tuple[int, Any]]:
        """Run ``fn(task)`` for every task on the cluster; yield ``(index, result)`` as each task finishes.

        Tasks are submitted with ``pure=False`` (each runs, none is deduplicated) and at most ``in_flight`` at a
        time, more as results come back, so that neither the client nor the scheduler holds the payloads of
        thousands of waiting tasks. ``tasks`` is consumed lazily. When the iteration stops early (an exception in
        a task or in the caller, Ctrl-C, ``close()``), the tasks still pending are cancelled; use the iterator
        in ``contextlib.closing(...)`` so that this happens at once.

        Args:
            fn: a picklable function of one argument, importable on the workers (–).
            tasks: its arguments (–).
            in_flight: most tasks submitted and not yet returned (count); default twice the cluster's threads,
                re-read every few seconds (an adaptive cluster may grow), at least 4.

        Yields:
            ``(index of the task in tasks, fn(task))``.

        Raises:
            Exception: the first exception a task raised (with its remote traceback), or ``KilledWorker`` for a
                task whose workers died more than ``allowed-failures`` times.
        """
        distributed = import_distributed()
        client = self.client
        pending: dict[str, tuple[int, Any]] = {}
        source = iter(enumerate(tasks))
        queue = distributed.as_completed()
        checked = [0.0, 4]

        def limit() -> int:
            if in_flight is not None:
                return max(1, int(in_flight))
            now = time.monotonic()
            if now - checked[0] > 5.0:
                checked[0], checked[1] = now, max(4, 2 * self.n_threads())
            return checked[1]

        def top_up() -> None:
            while len(pending) < limit():
                try:
                    i, task = next(source)
                except StopIteration:
                    return
                fut = client.submit(fn, task, pure=False, retries=self.retries or None)
                self.n_submitted += 1
                pending[fut.key] = (i, fut)
                queue.add(fut)

        try:
            top_up()
            while pending:
                fut = next(queue)
                i, _ = pending.pop(fut.key)
                result = fut.result()
                fut.release()
                top_up()  # before the caller's checkpoint write: the cluster stays busy meanwhile
                yield i, result
        finally:
            left = [f for _, f in pending.values()]
            if left:
                client.cancel(left)
            queue.clear()

    def map(self, fn: Callable, tasks: Iterable) -> list:
        """``[fn(t) for t in tasks]`` on the cluster, in the order of ``tasks`` (see :meth:`as_completed`)."""
        out: dict[int, Any] = {}
        with contextlib.closing(self.as_completed(fn, tasks)) as results:
            for i, r in results:
                out[i] = r
        return [out[i] for i in range(len(out))]

    def imap(self, fn: Callable, tasks: Iterable) -> Iterator:
        """``fn(t)`` for each task, yielded in the order of ``tasks`` as soon as it and all before it are back:
        a drop-in ``map_fn(func, iterable)`` (e.g. :func:`~bayes_vmimics.sensitivity.evaluate_design`)."""
        ready: dict[int, Any] = {}
        nxt = 0
        with contextlib.closing(self.as_completed(fn, tasks)) as results:
            for i, r in results:
                ready[i] = r
                while nxt in ready:
                    yield ready.pop(nxt)
                    nxt += 1

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Close the client if this object opened it, and the cluster if it started one."""
        if self.own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> DaskScheduler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DaskScheduler({self.address!r})"


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while the block runs (in the main thread; elsewhere a no-op): processes spawned meanwhile
    inherit the ignored disposition."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def as_scheduler(obj) -> LocalScheduler | DaskScheduler | None:
    """What a ``scheduler=`` argument of the package accepts, as a :class:`LocalScheduler`, a
    :class:`DaskScheduler`, or None.

    Args:
        obj: None (the function opens its own :class:`LocalScheduler` of ``n_processes``), a
            :class:`LocalScheduler` or :class:`DaskScheduler` (used as given: its tasks carry all they need), or a
            ``dask.distributed.Client`` (wrapped; the caller keeps it open and closes it) (–).

    Raises:
        TypeError: anything else (names its type).
    """
    if obj is None or isinstance(obj, (LocalScheduler, DaskScheduler)):
        return obj
    try:
        from distributed import Client
    except ModuleNotFoundError:  # then obj cannot be a Client
        pass
    else:
        if isinstance(obj, Client):
            return DaskScheduler(obj)
    raise TypeError(
        f"scheduler must be None, a bayes_vmimics.scheduler.LocalScheduler, a bayes_vmimics.scheduler.DaskScheduler "
        f"or a dask.distributed.Client, got {type(obj).__name__}"
    )


@contextlib.contextmanager
def open_executor(n_processes: int = 1, scheduler=None, **local_options):
    """What runs one call's tasks: ``scheduler`` if given (left open: its owner closes it), else a
    :class:`LocalScheduler` of ``n_processes`` opened for the block and closed when it ends.

    Args:
        n_processes: local worker processes when ``scheduler`` is None (count; ≤ 1: this process).
        scheduler: None, or what :func:`as_scheduler` accepts (–).
        **local_options: ``context``, ``initializer``, ``initargs`` of the :class:`LocalScheduler` (–).

    Yields:
        A :class:`LocalScheduler` or :class:`DaskScheduler`.
    """
    sched = as_scheduler(scheduler)
    if sched is not None:
        yield sched
        return
    with LocalScheduler(n_processes, **local_options) as local:
        yield local


@contextlib.contextmanager
def open_scheduler(
    spec: str = PROCESSES, n_workers: int = 1, *, timeout: float = CONNECT_TIMEOUT_S, local: bool = False
):
    """The scheduler named by ``--scheduler``, closed when the block ends.

    Args:
        spec: ``"processes"``, ``"dask"`` or ``"tcp://HOST:PORT"`` (see :func:`parse_scheduler`) (–).
        n_workers: worker processes of the ``dask`` local cluster, or of the :class:`LocalScheduler` of
            ``processes`` with ``local`` (count; ignored otherwise).
        timeout: connect timeout for an address (s).
        local: for ``processes``, yield a :class:`LocalScheduler` of ``n_workers`` processes instead of None
            (bool). Off by default: the command line and workflows read None as "each function opens its own
            pool" (:func:`open_executor`), which keeps per-call needs (a fork that inherits the call's problem,
            emcee's per-step checkpoints) that one pool shared by the whole run would not.

    Yields:
        None, or a :class:`LocalScheduler` for ``processes`` (see ``local``); else a :class:`DaskScheduler`.

    Raises:
        ValueError: a malformed ``spec``; ModuleNotFoundError: Dask missing; ConnectionError: an address where no
            scheduler answers.
    """
    spec = parse_scheduler(spec)
    if spec == PROCESSES:
        if not local:
            yield None
            return
        sched = LocalScheduler(n_workers)
    else:
        sched = DaskScheduler.local(n_workers) if spec == DASK else DaskScheduler.connect(spec, timeout=timeout)
    try:
        yield sched
    finally:
        sched.close()


__all__ = [
    "CONNECT_TIMEOUT_S",
    "DASK",
    "INSTALL_HINT",
    "PROCESSES",
    "DaskScheduler",
    "LocalScheduler",
    "as_scheduler",
    "import_distributed",
    "open_executor",
    "open_scheduler",
    "parse_scheduler",
]
