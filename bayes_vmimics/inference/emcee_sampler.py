"""emcee runner: ensembles of walkers with differential-evolution moves, HDF5 backend, resumable.

One *ensemble* is one ``emcee.EnsembleSampler`` run. Walkers of one ensemble are not independent chains,
so R-hat is computed only across independent ensembles (``n_ensembles ≥ 4`` recommended); within an
ensemble convergence is judged by the integrated autocorrelation time τ per parameter (N/τ ≳ 50) and
the acceptance fraction.

Exact resume: every step is written to an HDF5 group (one per ensemble) together with emcee's random
state, so stopping after k steps and calling :func:`run_ensemble` again with the same arguments continues
the same chain: k + (n − k) steps equal an uninterrupted run of n steps when the log-probability is
deterministic (``warm_start=False``; with warm starts the steady states agree to the solver tolerance).

The log-probability is evaluated *vectorised* over the proposals of one half-ensemble, serially or on a
process pool, so that evaluation counters (non-converged draws) from workers reach the main process.

On a Dask cluster (:func:`run_ensembles` with ``scheduler``) each whole ensemble is one task: it runs serially
on its worker, in memory, from its own child seed (and from its stored steps when resumed), and returns to the
client, which writes it to the HDF5 file; the workers need no shared filesystem.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import emcee
import numpy as np

from ..interrupt import deferred_interrupt
from ..progress import bar_kwargs
from ..site_evaluation import EvaluationStats

__all__ = [
    "EnsembleRun",
    "ensemble_convergence",
    "integrated_time",
    "make_moves",
    "run_ensemble",
    "run_ensembles",
    "select_draws",
]

# ---------------------------------------------------------------- evaluation (serial or pooled)
_WORKER_FN = None


def _init_worker(fn) -> None:
    """Worker initializer of the :class:`~bayes_vmimics.scheduler.LocalScheduler` of :func:`run_ensemble` (which
    has already set SIGINT ignored there): the log-probability, once per worker, with its own warm-start cache."""
    global _WORKER_FN
    _WORKER_FN = fn


def _eval_one(fn, theta):
    stats = getattr(fn, "stats", None)
    if stats is not None:
        fn.stats = EvaluationStats()
    lp = float(fn(theta))
    out = getattr(fn, "stats", None)
    if stats is not None:
        stats.merge(out)
        fn.stats = stats
    return lp, out


def _eval_in_worker(theta):
    return _eval_one(_WORKER_FN, theta)


class _VectorizedLogProb:
    """Evaluates a scalar log-probability over rows of ``coords``; merges worker counters into ``stats``."""

    def __init__(self, fn: Callable, pool=None) -> None:
        self.fn = fn
        self.pool = pool
        self.stats = EvaluationStats()

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        if self.pool is None:
            res = [_eval_one(self.fn, th) for th in coords]
        else:
            res = self.pool.map(_eval_in_worker, list(coords))
        for _, st in res:
            if st is not None:
                self.stats.merge(st)
        return np.array([r[0] for r in res])


def make_moves(kind: str = "de"):
    """emcee moves: "de" → 80 % differential evolution + 20 % DE snooker (ter Braak 2006, 2008);
    "stretch" → the affine-invariant stretch move (Goodman & Weare 2010)."""
    if kind == "de":
        return [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    if kind == "stretch":
        return emcee.moves.StretchMove()
    raise ValueError(f"move must be 'de' or 'stretch', got {kind!r}")


@dataclass
class EnsembleRun:
    """Result of one ensemble.

    Attributes:
        chain: positions, shape (n_steps, n_walkers, n_dim) (parameter units).
        log_prob: log-probability, shape (n_steps, n_walkers).
        acceptance_fraction: per walker, shape (n_walkers,) (–).
        seed: seed of the ensemble (integer).
        backend_path: HDF5 file, or None (path).
        name: HDF5 group of the ensemble (–).
        stats: evaluation counters of this call (failures → −inf, counted here).
        n_resumed_from: steps already in the backend when this call started (count).
        n_evaluations_total: log-probability evaluations inside the prior box over all calls that wrote this
            chain, this one included (count; a call killed by SIGKILL loses its last, unsaved step's).
        n_failed_total: of them, evaluations with a non-converged steady state (count).
        resumed_at: steps in the backend at the start of each earlier call that wrote this chain, then this
            call's (count); ``[0]`` for a chain run in one go.
    """

    chain: np.ndarray
    log_prob: np.ndarray
    acceptance_fraction: np.ndarray
    seed: int
    backend_path: Path | None
    name: str
    stats: EvaluationStats = field(default_factory=EvaluationStats)
    n_resumed_from: int = 0
    n_evaluations_total: int = 0
    n_failed_total: int = 0
    resumed_at: list[int] = field(default_factory=lambda: [0])


def initial_positions(
    log_prob_fn: Callable,
    prior,
    n_walkers: int,
    rng: np.random.Generator,
    max_tries: int = 50,
    *,
    around=None,
    scale: float = 0.1,
) -> np.ndarray:
    """Walkers drawn from the prior box (or from a small ball around a point), redrawing those whose
    log-probability is not finite.

    Args:
        log_prob_fn: log-probability θ → float.
        prior: an object with ``sample(rng, n)`` (e.g. :class:`~bayes_vmimics.priors.BoxPrior`).
        n_walkers: walkers (count).
        rng: random generator.
        max_tries: rounds of redrawing (count).
        around: None draws from the prior; a θ (7,) (parameter units, inside the box, e.g. the MAP of
            :func:`~bayes_vmimics.inference.initial.pooled_map_estimate`) draws walkers around it: normal
            with sd ``scale`` in the logit of the unit box position (–).
        scale: sd of that ball (logit units).

    Raises:
        RuntimeError: fewer than ``n_walkers`` finite starting points after ``max_tries`` rounds.
    """
    if around is None:

        def draw(n):
            return prior.sample(rng, n)

    else:
        from .initial import logit_from_theta, theta_from_logit

        z0 = logit_from_theta(prior, np.asarray(around, dtype=float))

        def draw(n):
            return theta_from_logit(prior, z0 + scale * rng.standard_normal((n, z0.size)))

    pos = draw(n_walkers)
    ok = np.array([np.isfinite(log_prob_fn(p)) for p in pos])
    for _ in range(max_tries):
        if ok.all():
            return pos
        bad = np.flatnonzero(~ok)
        pos[bad] = draw(bad.size)
        ok[bad] = [np.isfinite(log_prob_fn(p)) for p in pos[bad]]
    raise RuntimeError(f"only {int(ok.sum())} of {n_walkers} walkers have a finite log-probability")


def run_ensemble(
    log_prob_fn: Callable,
    prior,
    *,
    n_walkers: int,
    n_steps: int,
    seed: int,
    move: str = "de",
    backend_path: str | Path | None = None,
    name: str = "ensemble_0",
    resume: bool = True,
    n_processes: int = 1,
    progress: bool = False,
    around=None,
    p0: np.ndarray | None = None,
) -> EnsembleRun:
    """Run (or resume) one emcee ensemble.

    Args:
        log_prob_fn: log-probability θ → float, e.g. a
            :class:`~bayes_vmimics.likelihood.CalibrationProblem`; must be picklable for ``n_processes > 1``.
        prior: the prior (``sample(rng, n)``), for the initial walkers.
        n_walkers: walkers (count; even, ≥ 2 n_dim).
        n_steps: total steps of the ensemble, including any already in the backend (count).
        seed: seed of the initial positions and of emcee's random state (integer).
        move: "de" or "stretch" (see :func:`make_moves`).
        backend_path: HDF5 file to store the chain in (group ``name``); None keeps it in memory.
        name: HDF5 group (–).
        resume: continue a chain found in the backend (True) or start afresh (False).
        n_processes: worker processes (count; 1 = serial).
        progress: tqdm progress bar (bool).
        around: start the walkers in a small ball around this θ (7,) instead of across the prior box, e.g.
            the pooled MAP (see :func:`initial_positions`) (parameter units).
        p0: explicit initial walker positions, shape (n_walkers, n_dim) (sets n_dim; ``prior`` is then not
            used and may be None), e.g. for the hierarchical ensembles (–).

    Returns:
        :class:`EnsembleRun` with the whole chain (n_steps steps).
    """
    from ..scheduler import LocalScheduler

    rng = np.random.default_rng(seed)
    if p0 is not None:
        p0 = np.asarray(p0, dtype=float)
        if p0.ndim != 2 or p0.shape[0] != n_walkers:
            raise ValueError(f"p0 must have shape (n_walkers={n_walkers}, n_dim), got {p0.shape}")
    ndim = p0.shape[1] if p0 is not None else len(prior.lower)
    backend = None
    done = 0
    totals = {"n_evaluations": 0, "n_failed": 0, "resumed_at": []}
    if backend_path is not None:
        backend_path = Path(backend_path)
        backend_path.parent.mkdir(parents=True, exist_ok=True)
        check_backend(backend_path)
        try:
            backend = _Backend(str(backend_path), name=name)
            initialized = backend.initialized
            if initialized and resume:
                done = int(backend.iteration)
                shape = backend.shape
                totals = backend.totals()
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(
                f"{backend_path} is not a readable chain file ({type(err).__name__}: {err}); rerun with --fresh "
                "to start the chains afresh, or choose another --out"
            ) from None
        if initialized and resume:
            if done and shape != (n_walkers, ndim):
                raise ValueError(
                    f"{backend_path}[{name}] holds a chain of shape {shape}, "
                    f"not (n_walkers={n_walkers}, n_dim={ndim}); use a new --out or resume=False"
                )
        elif initialized:
            with deferred_interrupt():
                backend.reset(n_walkers, ndim)
    resumed_at = [*totals["resumed_at"], done]
    # the evaluations of a step on local workers, each holding log_prob_fn from its start (``initargs``: inherited
    # where the platform forks, pickled once per worker elsewhere); one process evaluates here, without a pool
    pool_cm = (
        LocalScheduler(n_processes, initializer=_init_worker, initargs=(log_prob_fn,))
        if n_processes > 1
        else contextlib.nullcontext()
    )
    with pool_cm as pool:
        vec = _VectorizedLogProb(log_prob_fn, pool)
        if backend is not None:
            backend.track(vec.stats, totals, resumed_at)
        sampler = emcee.EnsembleSampler(n_walkers, ndim, vec, moves=make_moves(move), backend=backend, vectorize=True)
        # emcee's wrapper prints a traceback for any exception of the log-probability, a Ctrl-C included; ours
        # takes no extra arguments, so it is called directly
        sampler.log_prob_fn = vec
        # emcee's Metropolis ratio meets inf − inf when a snooker proposal degenerates; the NaN is rejected
        with np.errstate(invalid="ignore"):
            _advance(sampler, log_prob_fn, prior, n_walkers, rng, done, n_steps, progress, around, p0)
        chain = sampler.get_chain()
        log_prob = sampler.get_log_prob()
        acc = np.asarray(sampler.acceptance_fraction, dtype=float)
    if chain.shape[0] > n_steps:
        chain, log_prob = chain[:n_steps], log_prob[:n_steps]
    run = EnsembleRun(chain, log_prob, acc, int(seed), backend_path, name, vec.stats, done)
    run.n_evaluations_total = totals["n_evaluations"] + vec.stats.n_evaluations
    run.n_failed_total = totals["n_failed"] + vec.stats.n_failed
    run.resumed_at = resumed_at
    return run


class _Backend(emcee.backends.HDFBackend):
    """emcee's HDF5 backend whose writes finish before a Ctrl-C takes effect (:func:`deferred_interrupt`), and
    which keeps, beside each step, the evaluation counters of all calls that wrote the chain."""

    _ATTR = "bayes_vmimics_totals"

    def track(self, stats: EvaluationStats, base: dict, resumed_at: list[int]) -> None:
        self._stats, self._base, self._resumed_at = stats, base, resumed_at

    def totals(self) -> dict:
        """Counters stored by earlier calls: n_evaluations, n_failed, resumed_at (steps at each call's start)."""
        with self.open() as f:
            raw = f[self.name].attrs.get(self._ATTR)
        if raw is None:
            return {"n_evaluations": 0, "n_failed": 0, "resumed_at": []}
        return json.loads(raw)

    def _write_totals(self) -> None:
        stats = getattr(self, "_stats", None)
        if stats is None:
            return
        data = {
            "n_evaluations": self._base["n_evaluations"] + stats.n_evaluations,
            "n_failed": self._base["n_failed"] + stats.n_failed,
            "resumed_at": self._resumed_at,
        }
        with self.open("a") as f:
            f[self.name].attrs[self._ATTR] = json.dumps(data)

    def reset(self, nwalkers, ndim):
        with deferred_interrupt():
            super().reset(nwalkers, ndim)

    def grow(self, ngrow, blobs):
        with deferred_interrupt():
            super().grow(ngrow, blobs)

    def save_step(self, state, accepted):
        with deferred_interrupt():
            super().save_step(state, accepted)
            self._write_totals()


def check_backend(path: str | Path) -> None:
    """Check that an existing chain file can be read (every ensemble group, its last stored step).

    Args:
        path: the HDF5 file; a missing file passes (path).

    Raises:
        ValueError: the file is not a readable HDF5 chain file (corrupt, truncated, another format); the
            message names it and says ``--fresh``.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        return
    try:
        with h5py.File(path, "r") as f:
            for name in f:
                g = f[name]
                n = int(g.attrs["iteration"])
                if n:
                    g["chain"][n - 1]
                    g["log_prob"][n - 1]
    except (OSError, KeyError, ValueError, IndexError) as err:
        raise ValueError(
            f"{path} is not a readable chain file ({type(err).__name__}: {err}); rerun with --fresh to start the "
            "chains afresh, or choose another --out"
        ) from None


def _advance(sampler, log_prob_fn, prior, n_walkers, rng, done, n_steps, progress, around=None, p0=None) -> None:
    if done == 0:
        # emcee needs a legacy RandomState; seed it from the Generator so one seed fixes everything
        sampler.random_state = np.random.RandomState(int(rng.integers(2**32 - 1))).get_state()
        if p0 is None:
            p0 = initial_positions(log_prob_fn, prior, n_walkers, rng, around=around)
        if n_steps > 0:
            sampler.run_mcmc(p0, n_steps, progress=progress, progress_kwargs=bar_kwargs())
    elif n_steps > done:
        sampler.run_mcmc(None, n_steps - done, progress=progress, progress_kwargs=bar_kwargs())


def ensemble_seeds(seed: int, n_ensembles: int) -> list[int]:
    """Independent seeds for ``n_ensembles`` ensembles from one seed (``SeedSequence.spawn``)."""
    children = np.random.SeedSequence(int(seed)).spawn(int(n_ensembles))
    return [int(c.generate_state(1)[0]) for c in children]


def select_draws(runs, *, discard: int, thin: int, max_draws: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (step, walker) of the draws kept from every ensemble, the same for all ensembles.

    Steps ``discard, discard + thin, ...``; all walkers; step-major order; evenly sub-sampled to at most
    ``max_draws``. Returns ``(steps, walkers, positions)`` with ``positions`` (n_ens, n_draws, 7).
    """
    n_steps, n_walkers, _ = runs[0].chain.shape
    steps = np.arange(discard, n_steps, thin)
    s, w = np.meshgrid(steps, np.arange(n_walkers), indexing="ij")
    s, w = s.ravel(), w.ravel()
    if s.size > max_draws:
        keep = np.unique(np.linspace(0, s.size - 1, max_draws).round().astype(int))
        s, w = s[keep], w[keep]
    pos = np.stack([r.chain[s, w] for r in runs])
    return s, w, pos


def run_ensembles(
    log_prob_fn: Callable,
    prior,
    *,
    n_ensembles: int,
    seed: int,
    backend_path: str | Path | None = None,
    progress: bool = False,
    scheduler=None,
    **kwargs,
) -> list[EnsembleRun]:
    """Run ``n_ensembles`` independent ensembles (groups ``ensemble_k`` of one HDF5 file), one after another,
    or as tasks on a Dask cluster.

    Args:
        log_prob_fn, prior: as :func:`run_ensemble`.
        n_ensembles: independent ensembles (count; ≥ 4 for R-hat).
        seed: master seed; ensemble k gets the k-th child of ``SeedSequence(seed)`` (integer).
        backend_path: HDF5 file, or None (path).
        progress: progress bar per ensemble; on a cluster, one bar over the finished ensembles (bool).
        scheduler: None (here, one ensemble after another, each over ``n_processes``), or a Dask cluster
            (:class:`~bayes_vmimics.scheduler.DaskScheduler` or a ``dask.distributed.Client``): each ensemble not
            yet finished in ``backend_path`` is one task, run serially on its worker (``n_processes`` is not used)
            from its stored steps if any, and written to ``backend_path`` by this process when it returns. The
            chains equal the ones run here with ``n_processes=1`` bit for bit: an ensemble is the same sequence
            of evaluations from the same seed wherever it runs, and each starts with no warm-start states. With
            warm starts (``warm_start=True``) a log-probability depends on the evaluations before it, so a run
            here over a pool (``n_processes > 1``, one warm-start cache per pool worker) gives other chains;
            with cold solves (the default) every path gives the same chains (–).
        **kwargs: passed to :func:`run_ensemble` (n_walkers, n_steps, move, resume, n_processes, around, p0).
            ``around`` may also be a list of θ (each (7,), parameter units): ensemble k then starts around
            ``around[k % len(around)]`` (e.g. distinct optima of
            :func:`~bayes_vmimics.inference.initial.multistart_map_estimates`, cycled if fewer than ensembles).
    """
    around = kwargs.pop("around", None)
    if isinstance(around, list) and not around:
        raise ValueError("around is an empty list: give one θ per start, or None")
    if scheduler is not None:
        from ..scheduler import as_scheduler  # beside the chain: loaded only when a cluster is asked for

        seeds = ensemble_seeds(seed, n_ensembles)
        starts = [around[k % len(around)] if isinstance(around, list) else around for k in range(n_ensembles)]
        return _run_ensembles_on_cluster(
            as_scheduler(scheduler), log_prob_fn, prior, seeds, starts, backend_path, progress, **kwargs
        )
    runs = []
    for k, s in enumerate(ensemble_seeds(seed, n_ensembles)):
        start = around[k % len(around)] if isinstance(around, list) else around
        if hasattr(log_prob_fn, "clear_warm_starts"):
            log_prob_fn.clear_warm_starts()  # ensembles start from their own cold solves: independent
        runs.append(
            run_ensemble(
                log_prob_fn,
                prior,
                seed=s,
                backend_path=backend_path,
                name=f"ensemble_{k}",
                progress=progress,
                around=start,
                **kwargs,
            )
        )
    return runs


# ---------------------------------------------------------------- whole ensembles as tasks (Dask)
def _ensemble_task(task) -> dict:
    """One whole ensemble, serial and in memory, on a cluster worker: from scratch, or continued from the steps
    stored before (``snapshot``: chain, log_prob, accepted and emcee's random state after them)."""
    log_prob_fn, prior, n_walkers, n_steps, seed, move, around, p0, snapshot = task
    if hasattr(log_prob_fn, "clear_warm_starts"):
        log_prob_fn.clear_warm_starts()  # as run_ensembles does before each ensemble
    rng = np.random.default_rng(seed)
    ndim = p0.shape[1] if p0 is not None else len(prior.lower)
    backend = emcee.backends.Backend()
    done = 0
    if snapshot is not None:
        backend.reset(n_walkers, ndim)
        backend.chain = np.array(snapshot["chain"], dtype=float)
        backend.log_prob = np.array(snapshot["log_prob"], dtype=float)
        backend.accepted = np.array(snapshot["accepted"], dtype=float)
        backend.random_state = snapshot["random_state"]
        backend.iteration = done = backend.chain.shape[0]
    vec = _VectorizedLogProb(log_prob_fn)
    sampler = emcee.EnsembleSampler(n_walkers, ndim, vec, moves=make_moves(move), backend=backend, vectorize=True)
    sampler.log_prob_fn = vec  # as in run_ensemble
    with np.errstate(invalid="ignore"):
        _advance(sampler, log_prob_fn, prior, n_walkers, rng, done, n_steps, False, around, p0)
    return {
        "chain": sampler.get_chain(),
        "log_prob": sampler.get_log_prob(),
        "accepted": np.asarray(backend.accepted, dtype=float),
        "acceptance_fraction": np.asarray(sampler.acceptance_fraction, dtype=float),
        "random_state": sampler.random_state,
        "stats": vec.stats,
    }


def _store_ensemble(backend: _Backend, out: dict, totals: dict) -> None:
    """Write the steps of a finished ensemble task that the HDF5 group does not hold yet, with emcee's random
    state and the evaluation counters, as one write that a Ctrl-C does not cut."""
    chain, log_prob = out["chain"], out["log_prob"]
    n = chain.shape[0]
    with deferred_interrupt():
        if not backend.initialized:
            backend.reset(chain.shape[1], chain.shape[2])
        have = int(backend.iteration)
        backend.grow(n - have, None)
        with backend.open("a") as f:
            g = f[backend.name]
            g["chain"][have:n] = chain[have:]
            g["log_prob"][have:n] = log_prob[have:]
            g["accepted"][:] = out["accepted"]
            for i, v in enumerate(out["random_state"]):
                g.attrs[f"random_state_{i}"] = v
            g.attrs["iteration"] = n
            g.attrs[_Backend._ATTR] = json.dumps(totals)


def _run_ensembles_on_cluster(
    sched,
    log_prob_fn: Callable,
    prior,
    seeds: list[int],
    starts: list,
    backend_path,
    progress: bool,
    *,
    n_walkers: int,
    n_steps: int,
    move: str = "de",
    resume: bool = True,
    n_processes: int = 1,
    p0: np.ndarray | None = None,
) -> list[EnsembleRun]:
    """:func:`run_ensembles` on a Dask cluster: the ensembles not finished in ``backend_path`` as tasks, each
    written to it by this process as it returns (``n_processes`` is not used: one ensemble is serial)."""
    from ..progress import progress_bar

    if p0 is not None:
        p0 = np.asarray(p0, dtype=float)
        if p0.ndim != 2 or p0.shape[0] != n_walkers:
            raise ValueError(f"p0 must have shape (n_walkers={n_walkers}, n_dim), got {p0.shape}")
    ndim = p0.shape[1] if p0 is not None else len(prior.lower)
    if backend_path is not None:
        backend_path = Path(backend_path)
        backend_path.parent.mkdir(parents=True, exist_ok=True)
        check_backend(backend_path)
    n = len(seeds)
    runs: list = [None] * n
    todo, tasks, bases = [], [], {}
    for k, (seed, start) in enumerate(zip(seeds, starts, strict=True)):
        name = f"ensemble_{k}"
        done, totals, snapshot = 0, {"n_evaluations": 0, "n_failed": 0, "resumed_at": []}, None
        if backend_path is not None:
            try:
                backend = _Backend(str(backend_path), name=name)
                initialized = backend.initialized
                if initialized and resume:
                    done, shape, totals = int(backend.iteration), backend.shape, backend.totals()
                    if done and shape != (n_walkers, ndim):
                        raise ValueError(
                            f"{backend_path}[{name}] holds a chain of shape {shape}, not (n_walkers={n_walkers}, "
                            f"n_dim={ndim}); use a new --out or resume=False"
                        )
                    if 0 < done < n_steps:
                        with backend.open() as f:
                            g = f[name]
                            snapshot = {
                                "chain": g["chain"][:done],
                                "log_prob": g["log_prob"][:done],
                                "accepted": g["accepted"][...],
                            }
                        snapshot["random_state"] = backend.random_state
                elif initialized:
                    with deferred_interrupt():
                        backend.reset(n_walkers, ndim)
            except (OSError, KeyError) as err:
                raise ValueError(
                    f"{backend_path} is not a readable chain file ({type(err).__name__}: {err}); rerun with --fresh "
                    "to start the chains afresh, or choose another --out"
                ) from None
        if done >= n_steps > 0:
            # finished in the file: read it back here (no step is run)
            runs[k] = run_ensemble(
                log_prob_fn,
                prior,
                n_walkers=n_walkers,
                n_steps=n_steps,
                seed=seed,
                move=move,
                backend_path=backend_path,
                name=name,
                around=start,
                p0=p0,
            )
            continue
        todo.append(k)
        bases[k] = (done, totals)
        tasks.append((log_prob_fn, prior, n_walkers, n_steps, seed, move, start, p0, snapshot))
    bar = progress_bar(total=n, initial=n - len(todo), desc="ensembles", disable=not progress)
    with contextlib.closing(sched.as_completed(_ensemble_task, tasks)) as finished:
        for i, out in finished:
            k = todo[i]
            done, base = bases[k]
            resumed_at = [*base["resumed_at"], done]
            stats = out["stats"]
            totals = {
                "n_evaluations": base["n_evaluations"] + stats.n_evaluations,
                "n_failed": base["n_failed"] + stats.n_failed,
                "resumed_at": resumed_at,
            }
            if backend_path is not None:
                _store_ensemble(_Backend(str(backend_path), name=f"ensemble_{k}"), out, totals)
            run = EnsembleRun(
                out["chain"],
                out["log_prob"],
                out["acceptance_fraction"],
                int(seeds[k]),
                backend_path,
                f"ensemble_{k}",
                stats,
                done,
            )
            run.n_evaluations_total, run.n_failed_total = totals["n_evaluations"], totals["n_failed"]
            run.resumed_at = resumed_at
            runs[k] = run
            bar.update()
    bar.close()
    return runs


def integrated_time(chain: np.ndarray, c: float = 5.0) -> np.ndarray:
    """Integrated autocorrelation time per parameter of an ensemble chain (n_steps, n_walkers, n_dim).

    As ``emcee.autocorr.integrated_time`` (walker-averaged autocorrelation function, Sokal's automatic
    window with constant ``c``) but walkers that never moved in a parameter are left out of the average
    instead of turning the result into NaN. No check of chain length: judge with N/τ.

    Returns:
        τ per parameter (steps); NaN if no walker moved or the estimate is not positive (too short a chain).
    """
    n_steps, _, n_dim = chain.shape
    tau = np.full(n_dim, np.nan)
    if n_steps < 2:
        return tau
    for d in range(n_dim):
        x = chain[:, :, d]
        moving = np.ptp(x, axis=0) > 0
        if not moving.any():
            continue
        acf = np.mean([emcee.autocorr.function_1d(x[:, k]) for k in np.flatnonzero(moving)], axis=0)
        taus = 2.0 * np.cumsum(acf) - 1.0
        window = emcee.autocorr.auto_window(taus, c)
        # a chain too short for its correlations can give τ ≤ 0 (round-off of a sum near zero): unknown, not
        # an N/τ of −10¹⁶
        tau[d] = taus[window] if taus[window] > 0 else np.nan
    return tau


def ensemble_convergence(runs: list[EnsembleRun], names, *, discard: int = 0) -> dict:
    """Convergence diagnostics of emcee ensembles: τ, N/τ and acceptance per ensemble, R-hat across ensembles.

    Args:
        runs: the ensembles.
        names: parameter names (–).
        discard: burn-in steps dropped before computing (count).

    Returns:
        dict with per-parameter arrays ``tau`` (n_ensembles, n_dim) (steps; emcee's integrated
        autocorrelation time, quiet mode: may be underestimated for short chains), ``n_over_tau``
        (steps kept / τ), ``rhat`` (n_dim,) (rank-normalised split R-hat across ensembles; NaN with
        fewer than 2 ensembles) and scalars ``acceptance_mean``, ``acceptance_min``, ``acceptance_max``,
        ``n_kept_steps``, ``tau_reliable`` (N/τ ≥ 50 for every parameter and ensemble).
    """
    import arviz as az

    names = list(names)
    taus, kept = [], []
    for r in runs:
        c = r.chain[discard:]
        kept.append(c)
        taus.append(integrated_time(c))
    tau = np.array(taus)
    n_kept = kept[0].shape[0]
    acc = np.concatenate([r.acceptance_fraction for r in runs])
    rhat = np.full(len(names), np.nan)
    if len(runs) >= 2 and n_kept >= 4:
        # chain = ensemble; draws in step-major order so that split-R-hat compares early with late steps
        arr = np.stack([c.reshape(-1, c.shape[-1]) for c in kept])  # (n_ens, n_steps*n_walkers, n_dim)
        rhat = np.array([float(az.rhat(arr[..., j])) for j in range(len(names))])
    with np.errstate(divide="ignore", invalid="ignore"):
        n_over_tau = n_kept / tau
    return {
        "names": names,
        "tau": tau,
        "n_over_tau": n_over_tau,
        "rhat": rhat,
        "acceptance_mean": float(acc.mean()),
        "acceptance_min": float(acc.min()),
        "acceptance_max": float(acc.max()),
        "n_kept_steps": int(n_kept),
        "tau_reliable": bool(np.all(n_over_tau >= 50)),
    }
