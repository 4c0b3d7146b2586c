"""Stage 1 of the two-stage sampler: each site's posterior alone under the box prior (or a refined normal prior
in z), by emcee from the site's MAP, on a process pool, a Dask cluster or any ``map``, checkpointed per site;
the cold re-solve check of warm-start draws; the refined second-pass prior.

The method and its exactness are described in :mod:`bayes_vmimics.inference.two_stage`, which runs stage 2 on
these draws.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ..gradients import site_log_likelihood
from ..likelihood import CalibrationProblem
from ..parameters import PARAMETER_NAMES
from .emcee_sampler import integrated_time, run_ensemble
from .initial import logit_from_theta, site_map_estimates, theta_from_logit
from .site_draws import (
    SitePosteriorSamples,
    logistic_log_density,
    normal_log_kernel,
)

NPAR = len(PARAMETER_NAMES)

__all__ = ["check_stage1_branches", "refined_stage1_prior", "site_posterior_samples"]


class _SiteLogProbability:
    """θ ↦ log stage-1 prior + log-likelihood of one site (picklable).

    Box prior (``loc`` None): the problem's log prior. Normal prior N(loc, scale²) in z = logit v: in θ its
    density is N(z; loc, scale) · |dz/dv| · |dv/dθ| = N(z; loc, scale) / logistic(z) × box density."""

    def __init__(self, problem: CalibrationProblem, site: int, loc=None, scale=None) -> None:
        self.problem = problem
        self.site = int(site)
        self.loc = None if loc is None else np.asarray(loc, dtype=float)
        self.scale = None if scale is None else np.asarray(scale, dtype=float)

    def __call__(self, theta) -> float:
        lp = self.problem.log_prior(theta)
        if not np.isfinite(lp):
            return -np.inf
        if self.loc is not None:
            z = logit_from_theta(self.problem.prior, theta)
            lp += float(normal_log_kernel(z, self.loc, self.scale) - logistic_log_density(z))
        return lp + site_log_likelihood(self.problem, self.site, theta)


def _stage1_task(task) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    problem_bytes, s, z0, n_walkers, n_steps, discard, thin, seed, loc, scale = task
    problem = pickle.loads(problem_bytes)  # a private copy: its warm-start cache (if on) is this task's own
    # the project's emcee runner: DE moves, walkers in a small ball around the site MAP (redrawn where the
    # steady state fails), one seed for positions and emcee's state
    run = run_ensemble(
        _SiteLogProbability(problem, s, loc, scale),
        problem.prior,
        n_walkers=n_walkers,
        n_steps=n_steps,
        seed=seed,
        around=theta_from_logit(problem.prior, z0),
    )
    chain = run.chain[discard:]
    z = logit_from_theta(problem.prior, chain[::thin].reshape(-1, NPAR))
    log_prob = run.log_prob[discard:][::thin].reshape(-1)
    return z, integrated_time(chain), float(np.mean(run.acceptance_fraction)), log_prob


def _one_site_problem(problem: CalibrationProblem, s: int) -> bytes:
    """The pickled problem restricted to site ``s`` (a shallow copy): the payload of a site's task on a cluster.
    A site's log-probability reads only its own prepared site and the problem's settings (prior, error model,
    ¹⁴C), so the task computes the same numbers as with the whole problem, without shipping every site."""
    sub = copy.copy(problem)
    sub.sites = [problem.sites[int(s)]]
    return pickle.dumps(sub)


def _task_key(problem_bytes: bytes, s: int, z0, settings) -> str:
    h = hashlib.sha256()
    h.update(problem_bytes)
    h.update(json.dumps([s, np.round(np.asarray(z0, float), 12).tolist(), list(settings)]).encode())
    return h.hexdigest()[:20]


def site_posterior_samples(
    problem: CalibrationProblem,
    *,
    n_walkers: int = 32,
    n_steps: int = 3000,
    discard: int | None = None,
    thin: int = 5,
    seed: int = 0,
    z_start: np.ndarray | None = None,
    n_processes: int = 1,
    map_fn: Callable | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
    stage1_prior: tuple | None = None,
    scheduler=None,
) -> SitePosteriorSamples:
    """Stage 1: sample each site's posterior alone under the problem's box prior (emcee, DE moves), or under
    a normal prior in z (``stage1_prior``, for a second, refined pass).

    Args:
        problem: the calibration problem with all sites (constant-temperature sites for the MAP start);
            its ``warm_start`` setting applies (off: cold spin-ups, the safe default; on: 4–6× faster per
            evaluation, see the README on multiple equilibria) (–).
        n_walkers: walkers per site (count; even, ≥ 14).
        n_steps: steps per site (count).
        discard: steps dropped as burn-in; default half of ``n_steps`` (count).
        thin: keep every ``thin``-th step of every walker (count).
        seed: seed; each site gets its own stream from it, so results do not depend on the order in
            which sites run (integer).
        z_start: per-site starting centres (n_sites, 7) in logit units; default the site MAPs
            (:func:`~bayes_vmimics.inference.initial.site_map_estimates`).
        n_processes: worker processes for the sites (count; 1 = serial).
        map_fn: instead of ``n_processes``, any ``map(f, tasks) -> list`` to run the sites (callable); for
            Dask prefer ``scheduler``, which checkpoints each site as it finishes rather than after all.
        checkpoint_dir: folder for one ``.npz`` per finished site; a rerun with the same problem and
            settings loads finished sites instead of sampling them again (path).
        progress: progress bar over sites: finished sites, wherever they ran (bool).
        stage1_prior: None for the box prior, or ``(loc, scale)``, each broadcastable to (n_sites, 7): a
            normal prior N(loc, scale²) in z (logit units), restricted to the box; stage 2 divides it out
            again. :func:`refined_stage1_prior` builds it from a first pass so that stage-1 draws fall where
            a narrow population puts its mass (Lunn et al. 2013, Sect. 3) (–).
        scheduler: instead of ``n_processes`` and ``map_fn``, a Dask cluster
            (:class:`~bayes_vmimics.scheduler.DaskScheduler` or a ``dask.distributed.Client``): one task per
            unfinished site, carrying that site alone; each result comes back to this process, which writes
            its checkpoint as it arrives. The draws are the same as on the process pool (each site's seed is
            its own; warm starts, if on, begin cold in every task as they do in every pool task) (–).

    Returns:
        :class:`SitePosteriorSamples`.
    """
    from ..progress import progress_bar

    S = len(problem.sites)
    discard = n_steps // 2 if discard is None else int(discard)
    if n_walkers < 2 * NPAR or n_walkers % 2:
        raise ValueError(f"n_walkers must be even and ≥ {2 * NPAR}, got {n_walkers}")
    if not 0 <= discard < n_steps:
        raise ValueError(f"discard must lie in [0, n_steps={n_steps}), got {discard}")
    if thin < 1:
        raise ValueError(f"thin must be ≥ 1, got {thin}")
    if z_start is None:
        z_start = site_map_estimates(problem, seed=seed)
    z_start = np.asarray(z_start, dtype=float)
    if z_start.shape != (S, NPAR):
        raise ValueError(f"z_start must have shape ({S}, {NPAR}), got {z_start.shape}")
    loc = scale = None
    if stage1_prior is not None:
        loc, scale = (np.broadcast_to(np.asarray(a, dtype=float), (S, NPAR)).copy() for a in stage1_prior)
        if not (np.all(np.isfinite(loc)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError("stage1_prior must be (loc, scale) with finite loc and positive finite scale")
    problem_bytes = pickle.dumps(problem)
    seeds = [int(ss.generate_state(1)[0]) for ss in np.random.SeedSequence(seed).spawn(S)]
    settings = (n_walkers, n_steps, discard, thin)

    def prior_of(s):
        return (None, None) if loc is None else (loc[s], scale[s])

    tasks = [(problem_bytes, s, z_start[s], *settings, seeds[s], *prior_of(s)) for s in range(S)]
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    results: list = [None] * S
    paths: list = [None] * S
    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
        for s in range(S):
            extra = () if loc is None else (*np.round(loc[s], 12).tolist(), *np.round(scale[s], 12).tolist())
            key = _task_key(problem_bytes, s, z_start[s], (*settings, seeds[s], *extra))
            paths[s] = ckpt / f"{problem.site_ids[s]}_{key}.npz"
            if paths[s].exists():
                with np.load(paths[s]) as f:
                    lp = f["log_prob"] if "log_prob" in f.files else np.full(f["z"].shape[0], np.nan)
                    results[s] = (f["z"], f["tau"], float(f["acceptance"]), lp)
    todo = [s for s in range(S) if results[s] is None]

    def store(s, res):
        results[s] = res
        if paths[s] is not None:
            tmp = paths[s].with_suffix(".tmp.npz")
            np.savez(tmp, z=res[0], tau=res[1], acceptance=res[2], log_prob=res[3])
            tmp.replace(paths[s])

    bar = progress_bar(total=S, initial=S - len(todo), desc="stage 1 (sites)", disable=not progress)
    if scheduler is not None:
        from ..scheduler import as_scheduler  # beside the chain: loaded only when a cluster is asked for

        sched = as_scheduler(scheduler)
        # one task per site carrying that site alone (same seed, start and settings as the pool's task)
        site_tasks = ((_one_site_problem(problem, s), 0, *tasks[s][2:]) for s in todo)
        with contextlib.closing(sched.as_completed(_stage1_task, site_tasks)) as finished:
            for i, res in finished:
                store(todo[i], res)
                bar.update()
    elif map_fn is not None:
        for s, res in zip(todo, map_fn(_stage1_task, [tasks[s] for s in todo]), strict=True):
            store(s, res)
            bar.update()
    else:
        from ..scheduler import LocalScheduler

        # fork: the workers inherit the parent's modules and numba-compiled functions; one process: here, in order
        with LocalScheduler(min(n_processes, len(todo)), context="fork") as sched:
            for s, res in zip(todo, sched.imap(_stage1_task, [tasks[s] for s in todo]), strict=True):
                store(s, res)
                bar.update()
    bar.close()
    return SitePosteriorSamples(
        list(problem.site_ids),
        np.stack([r[0] for r in results]),
        np.stack([r[1] for r in results]),
        np.array([r[2] for r in results]),
        n_walkers,
        n_steps,
        discard,
        thin,
        loc,
        scale,
        np.stack([r[3] for r in results]),
    )


def _branch_task(task) -> np.ndarray:
    problem_bytes, s, z, loc, scale = task
    problem = pickle.loads(problem_bytes)
    f = _SiteLogProbability(problem, s, loc, scale)
    return np.array([f(theta) for theta in theta_from_logit(problem.prior, z)])


def check_stage1_branches(
    problem: CalibrationProblem,
    samples: SitePosteriorSamples,
    *,
    n_check: int = 100,
    tol: float = 0.1,
    seed: int = 0,
    n_processes: int = 1,
    map_fn: Callable | None = None,
    scheduler=None,
) -> xr.Dataset:
    """Re-solve stage-1 draws from cold spin-ups and compare with the log-probability the stage-1 chain
    computed for them: the check that warm starts stayed on the spin-up's equilibrium.

    With warm starts, each solve starts from a nearby converged state and follows its branch of equilibria;
    where MIMICS has several, that can be another equilibrium than the cold spin-up reaches, and the
    log-probability then depends on the evaluation history (README, "The steady state"). A stage 2 that
    reuses stage-1 draws without solving (:func:`sample_population`) then targets another posterior than the
    spin-up model's.
    This check found the solver's false convergence after warm starts (``model/README.md``): before the fix,
    7 % of warm stage-1 draws on the 35 real ENF sites differed from the cold value by more than 0.1, by up
    to 171 log units; after it, none of 3500.

    Args:
        problem: the calibration problem of stage 1 (same sites, same order); it is solved cold whatever
            its ``warm_start`` says (–).
        samples: the stage-1 result, with ``log_prob`` (–).
        n_check: draws re-solved per site, chosen at random without replacement (count).
        tol: a draw counts as mismatched when |cold − stored| > tol (log-probability units).
        seed: seed of the choice of draws (integer).
        n_processes: worker processes for the sites (count; 1 = serial).
        map_fn: instead of ``n_processes``, any ``map(f, tasks) -> list`` over sites (callable).
        scheduler: instead of both, a Dask cluster (:class:`~bayes_vmimics.scheduler.DaskScheduler` or a
            ``dask.distributed.Client``): one task per site, carrying that site alone (–).

    Returns:
        ``xarray.Dataset`` over ``site``: ``n_checked`` (draws with a stored log-probability; count),
        ``n_mismatched`` (count), ``mismatch_fraction`` (–) and ``max_abs_difference`` (log-probability
        units; inf where one of the two is −inf and the other not).
    """
    S = len(problem.sites)
    if list(problem.site_ids) != list(samples.site_ids):
        raise ValueError("problem and samples must hold the same sites in the same order")
    if n_check < 1 or not tol > 0:
        raise ValueError(f"need n_check ≥ 1 and tol > 0, got {n_check=}, {tol=}")
    stored = np.full(samples.z.shape[:2], np.nan) if samples.log_prob is None else np.asarray(samples.log_prob)
    cold = copy.copy(problem)
    cold.warm_start = False
    problem_bytes = pickle.dumps(cold)
    rng = np.random.default_rng(seed)
    picks, tasks = [], []
    for s in range(S):
        known = np.flatnonzero(~np.isnan(stored[s]))
        k = np.sort(rng.choice(known, min(n_check, known.size), replace=False)) if known.size else known
        picks.append(k)
        loc = None if samples.prior_loc is None else samples.prior_loc[s]
        scale = None if samples.prior_scale is None else samples.prior_scale[s]
        tasks.append((problem_bytes, s, samples.z[s, k], loc, scale))
    if scheduler is not None:
        from ..scheduler import as_scheduler

        values = as_scheduler(scheduler).map(
            _branch_task, ((_one_site_problem(cold, s), 0, *tasks[s][2:]) for s in range(S))
        )
    elif map_fn is not None:
        values = list(map_fn(_branch_task, tasks))
    else:
        from ..scheduler import LocalScheduler

        with LocalScheduler(min(n_processes, S), context="fork") as sched:
            values = sched.map(_branch_task, tasks)
    n_checked, n_bad, max_diff = np.zeros(S, int), np.zeros(S, int), np.zeros(S)
    for s in range(S):
        a, b = values[s], stored[s, picks[s]]
        with np.errstate(invalid="ignore"):
            diff = np.where(np.isneginf(a) & np.isneginf(b), 0.0, np.abs(a - b))
        diff[np.isnan(diff)] = np.inf
        n_checked[s], n_bad[s] = a.size, int(np.sum(diff > tol))
        max_diff[s] = diff.max() if a.size else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = n_bad / n_checked
    return xr.Dataset(
        {
            "n_checked": ("site", n_checked),
            "n_mismatched": ("site", n_bad),
            "mismatch_fraction": ("site", frac),
            "max_abs_difference": ("site", max_diff),
        },
        coords={"site": list(samples.site_ids)},
        attrs={"tol": tol, "n_check": n_check},
    )


def refined_stage1_prior(dt: xr.DataTree, forest_types: Sequence[str], *, inflate: float = 1.5):
    """A stage-1 prior for a second pass: per site, a normal in z matching its forest type's posterior
    predictive (mean E[μ_t], variance E[σ_t²] + Var[μ_t]), widened by ``inflate``.

    Why: with the box prior, a site's stage-1 draws spread over its whole likelihood ridge. When the
    population is narrow (σ_t small compared with that spread, e.g. many sites), few draws fall inside it:
    the stage-2 weights degenerate (small ``weight_ess_q05``) and stage 2 mixes badly. Drawing stage 1 under
    this prior puts the draws where the population is; the weights N(z | μ, σ²)/p₁(z) stay bounded while
    σ_t < scale, which ``inflate`` > 1 secures for nearly all σ_t of the first pass's posterior.

    Args:
        dt: a first pass of :func:`sample_population` (–).
        forest_types: forest type of each site, in the order of the next stage 1 (–).
        inflate: factor on the predictive sd (–; > 1).

    Returns:
        ``(loc, scale)``, each of shape (n_sites, 7) (logit units), for ``site_posterior_samples(...,
        stage1_prior=...)``.
    """
    if not inflate > 1.0:
        raise ValueError(f"inflate must be > 1, got {inflate}")
    post = dt["posterior"]
    mu = post["mu"].stack(sample=("chain", "draw"))
    sd = post["sigma"].stack(sample=("chain", "draw"))
    m = mu.mean("sample")
    v = (sd**2).mean("sample") + mu.var("sample")
    types = [str(t) for t in post["forest_type"].values]
    unknown = sorted(set(map(str, forest_types)) - set(types))
    if unknown:
        raise ValueError(f"forest type(s) {unknown} not in the first pass ({types})")
    loc = np.stack([m.sel(forest_type=str(t)).transpose("parameter").values for t in forest_types])
    scale = np.stack([np.sqrt(v.sel(forest_type=str(t)).transpose("parameter").values) for t in forest_types])
    return loc, inflate * scale
