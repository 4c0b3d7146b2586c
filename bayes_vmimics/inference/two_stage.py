"""Two-stage hierarchical calibration: per-site posteriors first, then the forest-type population.

Why. The hierarchical model of :func:`~bayes_vmimics.inference.pymc_models.build_hierarchical_model` is
hard for NUTS on real profiles: each site's posterior is a thin, curved ridge through the seven-parameter
box (a profile of 4–10 layers with 10 % errors pins one or two combinations of x_v, x_K, α_v, β and x_D to
~0.05 logit units and leaves the rest nearly free). NUTS then needs step sizes of ~0.01 and saturates its
tree depth on every site at once (README, "Hierarchical calibration"). One site alone is easy for an
ensemble sampler, and the population layer alone is cheap; this module splits the problem that way.

Method (Lunn, Barrett, Sweeting & Thompson 2013, *J. R. Stat. Soc. C* 62:551, "Fully Bayesian
hierarchical modelling in two stages"; Goudie et al. 2019, *Bayesian Analysis* 14:81, Markov melding).
Same model as the PyMC one: z_s = logit of site s's unit position on the prior box, z_s ~ N(μ_t, σ_t²)
per parameter, μ_t ~ N(0, mu_sd²), σ_t ~ HalfNormal(sigma_sd).

1. Stage 1 (:func:`site_posterior_samples`): each site alone under the box prior, which in z is the
   logistic density p₁(z) = Π v(1 − v), v = sigmoid(z). emcee, started around the site's MAP; sites are
   independent, so they run on a process pool, on a Dask cluster (``scheduler``: one task per site, each
   result returned to the client, which checkpoints it) or any ``map`` (``map_fn``), and each finished site
   can be checkpointed.
2. Stage 2 (:func:`sample_population`): Gibbs sampling of (μ, σ, z_1..z_S). Each site's stage-1 draws
   {Z_sk} stand for its posterior; given (μ, σ), z_s is drawn exactly from them with weights
   w_k ∝ N(Z_sk | μ, σ²) / p₁(Z_sk): the likelihood cancels, so stage 2 never solves the model (Lunn et
   al. propose one stage-1 draw at a time with a Metropolis step; drawing from all of them at once is
   the Gibbs step of the same target and does not get stuck when σ is small). μ | σ, z is conjugate
   normal (drawn exactly); log σ takes random-walk Metropolis steps whose scale is adapted during the
   tuning sweeps only. Each sweep starts with Metropolis moves of every μ_tp and log σ_tp on the marginal
   in which the z_s are integrated out over their stage-1 draws (:class:`~.site_draws.CollapsedMoves`; a
   partially collapsed Gibbs sampler, van Dyk & Park 2008): the centred steps alone move μ by ~σ/√n per
   sweep and stall where a site's weights rest on a few draws.

Exactness. With exact, independent stage-1 draws the stage-2 chain targets the full hierarchical
posterior. With a finite stage-1 sample it targets the posterior in which each site's likelihood is
represented by its stage-1 draws: accurate while the population N(μ, σ²) does not concentrate where a
site has few stage-1 draws. ``stage2_diagnostics`` measures exactly that: the Kish effective number
(Σw)²/Σw² of the weights w_k per site (mean and 5 % quantile over the kept sweeps) and how many
different stage-1 draws were used. Where it is small, the nearest stage-1 draws lie far apart compared
with σ, which biases σ upwards: in the Gaussian test case (4000 draws per site, σ ≈ 0.3–1 logit units)
the posterior means of σ come out 1–5 % high; μ is unaffected. A longer stage 1 shrinks this. The test
suite checks stage 2 against the exact posterior of that Gaussian model.

Results follow the PyMC conventions of :mod:`.pymc_models` (``mu``, ``sigma``, ``theta_population``,
``theta_site``), so :func:`~bayes_vmimics.inference.pymc_models.posterior_convergence`,
:func:`~bayes_vmimics.inference.pymc_models.sample_new_site_parameters` and
:func:`~bayes_vmimics.inference.pymc_models.predict_new_site` work on them.
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
from .parallel import run_chains
from .site_draws import (
    CollapsedMoves,
    SitePosteriorSamples,
    gibbs_site_draws,
    logistic_log_density,
    normal_log_kernel,
    posterior_dataset,
    stage1_dataset,
)

NPAR = len(PARAMETER_NAMES)

__all__ = [
    "SitePosteriorSamples",
    "check_stage1_branches",
    "logistic_log_density",
    "needs_refinement",
    "refined_stage1_prior",
    "sample_population",
    "site_posterior_samples",
    "two_stage_hierarchical",
]


# ------------------------------------------------------------------------------------------------------------
# stage 1
# ------------------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------------------
# stage 2
# ------------------------------------------------------------------------------------------------------------


def _type_index(forest_types, n_sites: int, mu_sd: float, sigma_sd: float) -> tuple[list[str], np.ndarray]:
    """(sorted forest types, index of each site's type); checks one type per site and positive hyperprior
    scales."""
    ft = [str(f) for f in forest_types]
    if len(ft) != n_sites:
        raise ValueError(f"forest_types must give one type per site ({n_sites}), got {len(ft)}")
    if not (mu_sd > 0 and sigma_sd > 0):
        raise ValueError(f"mu_sd and sigma_sd must be positive, got {mu_sd}, {sigma_sd}")
    types = sorted(set(ft))
    return types, np.array([types.index(f) for f in ft])


def _population_start(z, idx, n_types: int) -> tuple[np.ndarray, np.ndarray]:
    """A chain's starting μ_t and σ_t: per type, the mean and the sd (at least 0.3) of the sites' starting z
    (logit units)."""
    mu = np.array([z[idx == t].mean(axis=0) for t in range(n_types)])
    sd = np.array([np.maximum(z[idx == t].std(axis=0), 0.3) for t in range(n_types)])
    return mu, sd


def _centred_population_step(z, idx, counts, sd, step, mu_sd, sigma_sd, rng):
    """The centred update of the populations given the site parameters z (logit units): μ_t | σ_t, z from its
    conjugate normal, then three random-walk Metropolis steps of log σ_t | μ_t, z with step sizes ``step``
    (the target includes the log-Jacobian). Returns (μ, σ, accepted σ steps per type and parameter)."""
    n_types, P = sd.shape
    zsum = np.zeros((n_types, P))
    np.add.at(zsum, idx, z)
    prec = counts / sd**2 + 1.0 / mu_sd**2
    mu = zsum / sd**2 / prec + rng.standard_normal((n_types, P)) / np.sqrt(prec)
    ss = np.zeros((n_types, P))
    np.add.at(ss, idx, (z - mu[idx]) ** 2)

    def log_post(s, ls):
        return -0.5 * (s / sigma_sd) ** 2 - counts * ls - ss / (2.0 * s**2) + ls

    accepted = np.zeros((n_types, P))
    for _ in range(3):
        ls = np.log(sd)
        lsp = ls + step * rng.standard_normal((n_types, P))
        sp = np.exp(lsp)
        a = np.log(rng.random((n_types, P))) < log_post(sp, lsp) - log_post(sd, ls)
        sd = np.where(a, sp, sd)
        accepted += a
    return mu, sd, accepted


def _stage2_chain(Z, lp1, idx, n_types, n_iter, n_tune, thin, mu_sd, sigma_sd, rng, collapse_every=1):
    S, K, P = Z.shape
    sites = np.arange(S)
    counts = np.bincount(idx, minlength=n_types).astype(float)[:, None]
    # start: a random stage-1 draw per site, population moments of those
    k = rng.integers(K, size=S)
    z = Z[sites, k].copy()
    mu, sd = _population_start(z, idx, n_types)
    step = np.full((n_types, P), 0.5)
    n_keep = (n_iter - n_tune) // thin
    out_mu = np.empty((n_keep, n_types, P))
    out_sd = np.empty((n_keep, n_types, P))
    out_z = np.empty((n_keep, S, P))
    ess = np.empty(S)
    ess_kept = np.empty((max(n_iter - n_tune, 1), S))
    used = np.zeros((S, K), dtype=bool)
    window_acc, window_n = np.zeros((n_types, P)), 0
    moves = CollapsedMoves(Z, lp1, idx, n_types, mu_sd, sigma_sd) if collapse_every else None
    for it in range(n_iter):
        if moves is not None and it % collapse_every == 0:
            # μ_t, σ_t moved with the z_s integrated out, then z_s | μ, σ drawn exactly (partially collapsed)
            mu, sd, k, ess = moves.sweep(mu[idx], mu, sd, rng, adapt=it < n_tune)
        else:
            # z_s | μ, σ: exact draw from the stage-1 draws weighted by N(z | μ, σ²) / p₁(z)
            gibbs_site_draws(Z, lp1, mu[idx], sd[idx], rng.random(S), k, ess)
        z = Z[sites, k]
        # μ_t | σ_t, z conjugate; log σ_t | μ_t, z by random-walk Metropolis
        mu, sd, acc = _centred_population_step(z, idx, counts, sd, step, mu_sd, sigma_sd, rng)
        if it < n_tune:
            window_acc += acc
            window_n += 3
            if window_n >= 60:  # adapt the σ step towards ~40 % acceptance, during tuning only
                rate = window_acc / window_n
                step = np.clip(step * np.exp(rate - 0.4), 0.02, 3.0)
                window_acc[:], window_n = 0.0, 0
            continue
        used[sites, k] = True
        ess_kept[it - n_tune] = ess
        if (it - n_tune) % thin == 0 and (i := (it - n_tune) // thin) < n_keep:
            out_mu[i], out_sd[i], out_z[i] = mu, sd, z
    return out_mu, out_sd, out_z, np.quantile(ess_kept, 0.05, axis=0), ess_kept.mean(axis=0), used.sum(axis=1)


def sample_population(
    samples: SitePosteriorSamples,
    forest_types: Sequence[str],
    prior,
    *,
    draws: int = 4000,
    tune: int = 1000,
    chains: int = 4,
    thin: int = 5,
    mu_sd: float = 1.5,
    sigma_sd: float = 1.0,
    seed: int = 0,
    progress: bool = False,
    n_processes: int = 1,
    collapse_every: int = 1,
) -> xr.DataTree:
    """Stage 2: the hierarchical posterior from stage-1 draws (Gibbs sampling; no model solves).

    Args:
        samples: stage-1 result (:func:`site_posterior_samples`).
        forest_types: forest type of each site of ``samples`` (–).
        prior: the box prior of the stage-1 problem (``problem.prior``) (–).
        draws: kept sweeps per chain before thinning (count).
        tune: tuning sweeps per chain, discarded (count).
        chains: independent chains, for R-hat (count).
        thin: keep every ``thin``-th sweep (count).
        mu_sd: prior sd of μ_t (logit units); as :func:`~.pymc_models.build_hierarchical_model`.
        sigma_sd: scale of the half-normal prior of σ_t (logit units); as there.
        seed: seed (integer).
        progress: progress bar over chains (bool).
        n_processes: chains run at once on a process pool; the result does not depend on it (count).
        collapse_every: every this many sweeps, start the sweep with Metropolis moves of μ_t and σ_t that
            integrate the site parameters out (:class:`~.site_draws.CollapsedMoves`): same target, far better
            mixing where sites pin their parameters to few stage-1 draws or σ_t is small, at ~4× the cost of a
            plain sweep; 0: plain centred Gibbs sweeps only (count).

    Returns:
        ``xarray.DataTree``: ``posterior`` with ``mu``, ``sigma`` (chain, draw, forest_type, parameter) (logit
        units), ``theta_population`` (parameter units, population median), ``theta_site`` (chain, draw,
        site, parameter) (parameter units); ``stage2_diagnostics`` (chain, site) with ``weight_ess_q05``
        and ``mean_weight_ess`` (Kish effective number of the stage-1 weights, count) and
        ``distinct_stage1_draws`` (count); ``stage1`` with ``tau`` (steps), ``n_effective`` (count) and
        ``acceptance``.
    """
    types, idx = _type_index(forest_types, samples.z.shape[0], mu_sd, sigma_sd)
    if draws < thin or tune < 0 or chains < 1 or collapse_every < 0:
        raise ValueError(
            f"need draws ≥ thin, tune ≥ 0, chains ≥ 1, collapse_every ≥ 0; got draws={draws}, thin={thin}, "
            f"tune={tune}, chains={chains}, collapse_every={collapse_every}"
        )
    Z = np.asarray(samples.z, dtype=float)
    lp1 = samples.log_stage1_prior()
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(chains)]
    args = [
        (Z, lp1, idx, len(types), tune + draws, tune, thin, mu_sd, sigma_sd, rngs[c], collapse_every)
        for c in range(chains)
    ]
    res = run_chains(_stage2_chain, args, n_processes=n_processes, desc="stage 2 (chains)", progress=progress)
    mu = np.stack([r[0] for r in res])
    sd = np.stack([r[1] for r in res])
    zs = np.stack([r[2] for r in res])
    post = posterior_dataset(
        mu,
        sd,
        zs,
        types,
        samples.site_ids,
        prior,
        site_types=[types[i] for i in idx],
        method="two_stage",
        reference="Lunn et al. 2013, J. R. Stat. Soc. C 62:551",
    )
    diag = xr.Dataset(
        {
            "weight_ess_q05": (("chain", "site"), np.stack([r[3] for r in res])),
            "mean_weight_ess": (("chain", "site"), np.stack([r[4] for r in res])),
            "distinct_stage1_draws": (("chain", "site"), np.stack([r[5] for r in res])),
        },
        coords={"chain": post["chain"].values, "site": list(samples.site_ids)},
        attrs={"stage1_draws_per_site": int(Z.shape[1])},
    )
    return xr.DataTree.from_dict({"posterior": post, "stage2_diagnostics": diag, "stage1": stage1_dataset(samples)})


def needs_refinement(dt: xr.DataTree, *, min_weight_ess: float = 5.0) -> bool:
    """Whether a stage-2 result leans on too few stage-1 draws at some site: the 5 % quantile of the Kish
    effective number of the weights below ``min_weight_ess`` (count) at any site and chain."""
    return bool(float(dt["stage2_diagnostics"]["weight_ess_q05"].min()) < min_weight_ess)


def two_stage_hierarchical(
    problem: CalibrationProblem,
    forest_types: Sequence[str],
    *,
    stage1: dict | None = None,
    stage2: dict | None = None,
    refine: str = "auto",
    refine_stage1: dict | None = None,
    pass1_draws: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    covariates=None,
    regression: dict | None = None,
    stage2_engine: str = "draws",
    mixture_components: int = 2,
) -> tuple[xr.DataTree, SitePosteriorSamples]:
    """Both stages: :func:`site_posterior_samples`, then stage 2 by :func:`sample_population` (reweighted
    stage-1 draws, no solves), with an optional second, refined pass (:func:`refined_stage1_prior`).

    Args:
        problem: the calibration problem with all sites (–).
        forest_types: forest type per site (–).
        stage1: keyword arguments of :func:`site_posterior_samples` (e.g. ``n_steps``, ``n_processes``,
            ``checkpoint_dir``, ``scheduler``); its ``n_processes``, ``map_fn`` and ``scheduler`` also run the
            warm-start check (–).
        stage2: keyword arguments of :func:`sample_population` (e.g. ``draws``, ``chains``) (–).
        refine: "auto" (a second pass when :func:`needs_refinement`), "always" or "never"
            (–).
        refine_stage1: keyword arguments of the second pass's stage 1 that differ from ``stage1`` (a
            ``checkpoint_dir`` of its own is advisable) (–).
        pass1_draws: with a possible second pass: stage-2 sweeps of the first pass, which then
            only decides on the second pass and fits its prior; if no second pass follows, stage 2 is run again
            with ``stage2["draws"]``. Default: ``stage2["draws"]`` (count).
        seed: seed of both stages; the second pass's stage 1 uses ``seed + 1`` (integer).
        log: called with a line of text before each stage, and with warnings (e.g. ``print``) (callable).
        covariates: None for the population without covariates; else the sites' standardised covariates
            (a :class:`~bayes_vmimics.covariates.CovariateDesign` of the problem's sites, or an array
            (n_sites, J)): stage 2 is then the regression population of
            :func:`~.regression.sample_regression_population`, and a second pass's stage-1 prior follows each
            site's covariates (:func:`~.regression.refined_stage1_prior_regression`) (standardised units).
        regression: keyword arguments of :func:`~.regression.sample_regression_population` other than the
            stage-2 settings (``shared_beta``, ``hyperprior``, ``covariate_names``) (–).
        stage2_engine: ``"draws"`` (stage 2 on the stage-1 draws, above) or ``"mixture"``: on a Gaussian-mixture
            likelihood per site fitted to its stage-1 draws, by NUTS
            (:func:`~.mixture_stage2.sample_mixture_population`; ``stage2`` then gives NUTS ``draws``, ``tune``,
            ``chains``, ``n_processes``; no second pass: ``refine`` "auto" means "never") (–).
        mixture_components: components per site of the ``mixture`` engine (count).

    Returns:
        (the DataTree of :func:`sample_population`, the stage-1 samples), of the last pass. With a
        warm-starting problem, its ``stage1`` group also holds ``branch_mismatch_fraction`` (–) and
        ``branch_max_abs_difference`` (log-probability units) per site, from :func:`check_stage1_branches`.
    """
    if refine not in ("auto", "always", "never"):
        raise ValueError(f"refine must be 'auto', 'always' or 'never', got {refine!r}")
    if stage2_engine not in ("draws", "mixture"):
        raise ValueError(f"stage2_engine must be 'draws' or 'mixture', got {stage2_engine!r}")
    say = log or (lambda _: None)
    if stage2_engine == "mixture":
        from .mixture_stage2 import fit_site_mixtures, sample_mixture_population

        if covariates is None and regression:
            raise ValueError("regression settings need covariates")
        if refine == "always":
            raise ValueError("the mixture stage 2 has no second pass: use refine='never' (or 'auto')")
        say("stage 1: each site alone under the box prior")
        s1 = site_posterior_samples(problem, seed=seed, **(stage1 or {}))
        nuts = {k: v for k, v in (stage2 or {}).items() if k in ("draws", "tune", "chains", "n_processes", "progress")}
        say(f"stage 2: NUTS on a {mixture_components}-component Gaussian-mixture likelihood per site")
        dt = sample_mixture_population(
            fit_site_mixtures(s1, mixture_components, seed=seed),
            forest_types,
            problem.prior,
            X=covariates,
            seed=seed,
            stage1=s1,
            **(regression or {}),
            **nuts,
        )
        return _with_branch_check(problem, dt, s1, stage1, seed, say), s1
    if covariates is None:
        if regression:
            raise ValueError("regression settings need covariates")

        def run_stage2(samples, kw):
            return sample_population(samples, forest_types, problem.prior, seed=seed, **kw)

        def refined_prior(dt):
            return refined_stage1_prior(dt, forest_types)
    else:
        from .regression import refined_stage1_prior_regression, sample_regression_population

        def run_stage2(samples, kw):
            return sample_regression_population(
                samples, covariates, forest_types, problem.prior, seed=seed, **(regression or {}), **kw
            )

        def refined_prior(dt):
            return refined_stage1_prior_regression(dt)

    say("stage 1: each site alone under the box prior")
    s1 = site_posterior_samples(problem, seed=seed, **(stage1 or {}))
    stage2 = dict(stage2 or {})
    short = refine != "never" and pass1_draws is not None and pass1_draws != stage2.get("draws")
    say("stage 2: Gibbs sampling of the populations" + (f" ({pass1_draws} sweeps per chain)" if short else ""))
    pass1 = stage2 | {"draws": pass1_draws} if short else stage2
    dt = run_stage2(s1, pass1)
    if refine == "always" or (refine == "auto" and needs_refinement(dt)):
        why = "asked for" if refine == "always" else "few stage-1 draws under the population at some site"
        say(f"second pass ({why}): stage 1 under a normal prior fitted to the first pass's population, then stage 2")
        kw = {**(stage1 or {}), **(refine_stage1 or {})}
        kw["stage1_prior"] = refined_prior(dt)
        s1 = site_posterior_samples(problem, seed=seed + 1, **kw)
        dt = run_stage2(s1, stage2)
    elif short:
        say("no second pass needed: stage 2 again, with all its sweeps")
        dt = run_stage2(s1, stage2)
    return _with_branch_check(problem, dt, s1, stage1, seed, say), s1


def _with_branch_check(problem, dt, s1, stage1, seed, say):
    """With warm starts: re-solve 100 stage-1 draws per site from cold spin-ups (:func:`check_stage1_branches`),
    store the mismatch per site in the ``stage1`` group and warn where they differ."""
    if not problem.warm_start:
        return dt
    say("warm starts: re-solving 100 stage-1 draws per site from cold spin-ups (check_stage1_branches)")
    kw = {k: v for k, v in (stage1 or {}).items() if k in ("n_processes", "map_fn", "scheduler")}
    check = check_stage1_branches(problem, s1, seed=seed, **kw)
    stage1_group = dt["stage1"].to_dataset()
    for name in ("mismatch_fraction", "max_abs_difference"):
        stage1_group[f"branch_{name}"] = check[name]
    dt["stage1"] = stage1_group
    bad = int(np.sum(check["n_mismatched"].values > 0))
    if bad:
        frac = float(check["n_mismatched"].sum() / check["n_checked"].sum())
        say(
            f"warning: at {bad} of {len(s1.site_ids)} sites, warm-started stage-1 log-probabilities differ from "
            f"cold spin-ups ({100 * frac:.1f} % of the checked draws, by up to "
            f"{float(check['max_abs_difference'].max()):.3g}): the model has several equilibria there, so this "
            "stage 2 targets another posterior than the spin-up model's. Rerun stage 1 without warm starts."
        )
    return dt
