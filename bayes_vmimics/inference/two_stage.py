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

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from ..likelihood import CalibrationProblem
from ..parameters import PARAMETER_NAMES
from .parallel import run_chains
from .site_draws import (
    CollapsedMoves,
    SitePosteriorSamples,
    gibbs_site_draws,
    logistic_log_density,
    posterior_dataset,
    stage1_dataset,
)
from .stage1 import check_stage1_branches, refined_stage1_prior, site_posterior_samples

NPAR = len(PARAMETER_NAMES)

__all__ = [
    "SitePosteriorSamples",
    "logistic_log_density",
    "needs_refinement",
    "sample_population",
    "two_stage_hierarchical",
]


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
