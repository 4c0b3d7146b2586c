"""Regression population: site parameters that follow the site covariates, sampled in two stages.

Model (issue 20), in the logit coordinates z of the Table 1 box (as :mod:`.two_stage`), per forest type t,
site s of type t and parameter p:

    z_sp ~ N(μ_tp + Σ_j x_sj B_tjp, σ_tp²),
    μ_tp ~ N(0, mu_sd²),  B_tjp ~ N(0, beta_sd²),  σ_tp ~ HalfNormal(sigma_sd),

with x_s the standardised covariates of :mod:`bayes_vmimics.covariates` (centred per forest type, so μ_t is the
population of type t at its sites' average covariates, as without covariates). Optionally one B shared by
all types (``shared_beta``): B_jp instead of B_tjp, with μ_tp still per type.

Shrinkage prior. A normal with a small scale, beta_sd = 0.5 logit units per within-type sd of a covariate,
not a regularised horseshoe: it keeps the update of (μ, B) given the site parameters an exact conjugate
Gibbs step (Bayesian linear regression), so stage 2 stays tuning-free apart from σ, costs little more than
stage 2 without covariates, and is checked against a closed-form posterior. A ±2 sd change of a covariate
then moves z by ±1 logit unit a priori (the populations' spread is 1–3 logit units); with 15–40 sites per
type and up to ten columns, a ridge of this size is the regularisation the data can afford. A horseshoe
(its local scales Gibbs-sampled through inverse-gamma auxiliaries, Makalic & Schmidt 2016) would shrink the
null effects harder and the strong ones less; it is the natural next step if the normal prior is found to
blur real effects.

Stage 2 (:func:`sample_regression_population`) is the Gibbs sampler of :func:`.two_stage.sample_population`
with the population mean replaced by the regression: each sweep draws every z_s exactly from its stage-1
draws reweighted by N(z | μ_t + B_t x_s, σ_t²) / p₁(z) (the site step of :mod:`.two_stage`), then (μ, B) |
z, σ jointly from its conjugate normal (:func:`draw_mu_beta`), then σ | z, μ, B by the random-walk
Metropolis steps on log σ of the population without covariates (:func:`draw_sigma`). Stage 1 is unchanged and
shared with the population without covariates (and across cross-validation folds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..parameters import PARAMETER_NAMES
from .parallel import run_chains
from .site_draws import CollapsedMoves, SitePosteriorSamples, gibbs_site_draws, posterior_dataset, stage1_dataset

NPAR = len(PARAMETER_NAMES)

__all__ = [
    "RegressionPrior",
    "draw_mu_beta",
    "draw_sigma",
    "mu_beta_conditional",
    "predict_new_site_regression",
    "refined_stage1_prior_regression",
    "sample_regression_population",
]


@dataclass(frozen=True)
class RegressionPrior:
    """Hyperpriors of the regression population.

    Attributes:
        mu_sd: prior sd of the intercepts μ_tp (logit units); 1.5 as the population without covariates.
        beta_sd: prior sd of each coefficient B (logit units per standardised covariate unit).
        sigma_sd: scale of the half-normal prior of σ_tp (logit units); 1.0 as without covariates.
    """

    mu_sd: float = 1.5
    beta_sd: float = 0.5
    sigma_sd: float = 1.0

    def __post_init__(self) -> None:
        if not (self.mu_sd > 0 and self.beta_sd > 0 and self.sigma_sd > 0):
            raise ValueError(
                f"mu_sd, beta_sd and sigma_sd must be positive, got {self.mu_sd}, {self.beta_sd}, {self.sigma_sd}"
            )


# ------------------------------------------------------------------------------------------------------------
# the conjugate update of (μ, B)
# ------------------------------------------------------------------------------------------------------------


def _site_design(X: np.ndarray, idx: np.ndarray, n_types: int, shared: bool) -> np.ndarray:
    """Rows d_s of the regression per site: [1, x_s] (one system per type), or [e_t(s), x_s] (shared B: one
    system per parameter over all types), shape (S, K)."""
    S = X.shape[0]
    if shared:
        return np.concatenate([np.eye(n_types)[idx], X], axis=1)
    return np.concatenate([np.ones((S, 1)), X], axis=1)


def _prior_precision(prior: RegressionPrior, n_cov: int, n_types: int, shared: bool) -> np.ndarray:
    n_mu = n_types if shared else 1
    return np.concatenate([np.full(n_mu, prior.mu_sd**-2.0), np.full(n_cov, prior.beta_sd**-2.0)])


def mu_beta_conditional(
    z, X, idx, n_types: int, sigma, prior: RegressionPrior = RegressionPrior(), *, shared: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The conditional posterior of (μ, B) given the site parameters and σ: precision and precision × mean.

    Unshared B: per type t and parameter p, c_tp = (μ_tp, B_t1p, …, B_tJp) with precision
    Λ_tp = D_tᵀD_t / σ_tp² + diag(mu_sd⁻², beta_sd⁻², …) and Λ_tp E[c_tp] = D_tᵀ z_tp / σ_tp², D_t = [1, X_t].
    Shared B: per parameter, c_p = (μ_1p, …, μ_Tp, B_1p, …, B_Jp), Λ_p = Σ_s d_s d_sᵀ / σ²_t(s)p + prior, with
    d_s = [e_t(s), x_s].

    Args:
        z: site parameters, shape (S, 7) (logit units).
        X: standardised covariates, shape (S, J) (standardised units).
        idx: forest-type index of each site, shape (S,) (–).
        n_types: number of forest types (count).
        sigma: σ per type and parameter, shape (T, 7) (logit units).
        prior: hyperpriors (–).
        shared: one B for all types (bool).

    Returns:
        ``(precision, rhs)``: unshared (T, 7, J+1, J+1) and (T, 7, J+1); shared (7, T+J, T+J) and (7, T+J).
    """
    z = np.asarray(z, dtype=float)
    X = np.asarray(X, dtype=float)
    idx = np.asarray(idx)
    w = 1.0 / np.asarray(sigma, dtype=float) ** 2  # (T, P)
    D = _site_design(X, idx, n_types, shared)
    onehot = np.eye(n_types)[idx]  # (S, T)
    gram = np.einsum("st,sk,sl->tkl", onehot, D, D)  # per type
    h = np.einsum("st,sk,sp->tkp", onehot, D, z)  # per type
    p0 = np.diag(_prior_precision(prior, X.shape[1], n_types, shared))
    if shared:
        return np.einsum("tkl,tp->pkl", gram, w) + p0, np.einsum("tkp,tp->pk", h, w)
    return gram[:, None] * w[:, :, None, None] + p0, np.transpose(h, (0, 2, 1)) * w[:, :, None]


def _draw_gaussian(precision: np.ndarray, rhs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws of N(Λ⁻¹ b, Λ⁻¹) for a batch of (Λ, b): mean by a solve, noise L⁻ᵀ ξ with Λ = L Lᵀ."""
    chol = np.linalg.cholesky(precision)
    mean = np.linalg.solve(precision, rhs[..., None])[..., 0]
    noise = np.linalg.solve(np.swapaxes(chol, -1, -2), rng.standard_normal(rhs.shape)[..., None])[..., 0]
    return mean + noise


def draw_mu_beta(
    z,
    X,
    idx,
    n_types: int,
    sigma,
    rng: np.random.Generator,
    prior: RegressionPrior = RegressionPrior(),
    *,
    shared: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Gibbs step: (μ, B) | z, σ drawn exactly and jointly from its conjugate normal (:func:`mu_beta_conditional`).

    Args:
        z: site parameters, shape (S, 7) (logit units).
        X: standardised covariates, shape (S, J) (standardised units).
        idx: forest-type index of each site, shape (S,) (–).
        n_types: number of forest types (count).
        sigma: σ per type and parameter, shape (T, 7) (logit units).
        rng: random generator (–).
        prior: hyperpriors (–).
        shared: one B for all types (bool).

    Returns:
        ``(mu, beta)``: μ of shape (T, 7) and B of shape (T, J, 7) (identical over types when shared) (logit
        units; B per standardised covariate unit).
    """
    prec, rhs = mu_beta_conditional(z, X, idx, n_types, sigma, prior, shared=shared)
    c = _draw_gaussian(prec, rhs, rng)
    J = np.asarray(X).shape[1]
    if shared:  # c: (P, T + J)
        mu = c[:, :n_types].T
        beta = np.broadcast_to(c[:, n_types:].T[None], (n_types, J, c.shape[0])).copy()
        return mu, beta
    # c: (T, P, 1 + J)
    return c[:, :, 0], np.transpose(c[:, :, 1:], (0, 2, 1))


def draw_sigma(
    resid,
    idx,
    sigma,
    step,
    rng: np.random.Generator,
    sigma_sd: float = 1.0,
    *,
    n_steps: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Gibbs step for σ | z, μ, B: ``n_steps`` random-walk Metropolis steps of log σ_tp per type and parameter,
    target HalfNormal(σ; sigma_sd) Π_s N(r_sp | 0, σ²) with the log-Jacobian of log σ.

    The update of the population without covariates (:mod:`.two_stage`, ``_centred_population_step``), on the
    residuals r = z − μ_t − B_t x_s instead of z − μ_t (its formula is copied: that helper also draws μ).

    Args:
        resid: residuals per site, shape (S, 7) (logit units).
        idx: forest-type index of each site, shape (S,) (–).
        sigma: current σ, shape (T, 7) (logit units).
        step: proposal sd of log σ, shape (T, 7) (–).
        rng: random generator (–).
        sigma_sd: half-normal scale (logit units).
        n_steps: Metropolis steps (count).

    Returns:
        ``(sigma, accepted)``: the new σ (logit units) and accepted steps per type and parameter (count).
    """
    sd = np.array(sigma, dtype=float)
    n_types, P = sd.shape
    counts = np.bincount(idx, minlength=n_types).astype(float)[:, None]
    ss = np.zeros((n_types, P))
    np.add.at(ss, idx, np.asarray(resid) ** 2)

    def log_post(s, ls):
        return -0.5 * (s / sigma_sd) ** 2 - counts * ls - ss / (2.0 * s**2) + ls

    accepted = np.zeros((n_types, P))
    for _ in range(n_steps):
        ls = np.log(sd)
        lsp = ls + step * rng.standard_normal((n_types, P))
        sp = np.exp(lsp)
        a = np.log(rng.random((n_types, P))) < log_post(sp, lsp) - log_post(sd, ls)
        sd = np.where(a, sp, sd)
        accepted += a
    return sd, accepted


def _regression_mean(X, idx, mu, beta) -> np.ndarray:
    """μ_t(s) + x_s B_t(s) per site, shape (S, 7) (logit units)."""
    return mu[idx] + np.einsum("sj,sjp->sp", X, beta[idx])


# ------------------------------------------------------------------------------------------------------------
# stage 2
# ------------------------------------------------------------------------------------------------------------


def _regression_chain(Z, lp1, X, idx, n_types, n_iter, n_tune, thin, prior, shared, rng, collapse_every=1):
    S, K, P = Z.shape
    J = X.shape[1]
    sites = np.arange(S)
    k = rng.integers(K, size=S)
    z = Z[sites, k].copy()
    mu = np.array([z[idx == t].mean(axis=0) for t in range(n_types)])
    sd = np.array([np.maximum(z[idx == t].std(axis=0), 0.3) for t in range(n_types)])
    beta = np.zeros((n_types, J, P))
    step = np.full((n_types, P), 0.5)
    n_keep = (n_iter - n_tune) // thin
    out_mu = np.empty((n_keep, n_types, P))
    out_sd = np.empty((n_keep, n_types, P))
    out_beta = np.empty((n_keep, n_types, J, P))
    out_z = np.empty((n_keep, S, P))
    ess = np.empty(S)
    ess_kept = np.empty((max(n_iter - n_tune, 1), S))
    used = np.zeros((S, K), dtype=bool)
    window_acc, window_n = np.zeros((n_types, P)), 0
    moves = CollapsedMoves(Z, lp1, idx, n_types, prior.mu_sd, prior.sigma_sd) if collapse_every else None
    for it in range(n_iter):
        if moves is not None and it % collapse_every == 0:
            # μ, σ and B moved with the z_s integrated out, then z_s drawn exactly (partially collapsed Gibbs)
            mu, sd, beta, k, ess = moves.sweep(
                _regression_mean(X, idx, mu, beta),
                mu,
                sd,
                rng,
                adapt=it < n_tune,
                X=X,
                beta=beta,
                shared=shared,
                beta_sd=prior.beta_sd,
            )
        else:
            # z_s | μ, B, σ: exact draw from the stage-1 draws weighted by N(z | μ_t + B_t x_s, σ_t²) / p₁(z)
            gibbs_site_draws(Z, lp1, _regression_mean(X, idx, mu, beta), sd[idx], rng.random(S), k, ess)
        z = Z[sites, k]
        mu, beta = draw_mu_beta(z, X, idx, n_types, sd, rng, prior, shared=shared)
        sd, acc = draw_sigma(z - _regression_mean(X, idx, mu, beta), idx, sd, step, rng, prior.sigma_sd)
        if it < n_tune:
            window_acc += acc
            window_n += 3
            if window_n >= 60:  # adapt the σ step towards ~40 % acceptance, during tuning only (as two_stage)
                step = np.clip(step * np.exp(window_acc / window_n - 0.4), 0.02, 3.0)
                window_acc[:], window_n = 0.0, 0
            continue
        used[sites, k] = True
        ess_kept[it - n_tune] = ess
        if (it - n_tune) % thin == 0 and (i := (it - n_tune) // thin) < n_keep:
            out_mu[i], out_sd[i], out_beta[i], out_z[i] = mu, sd, beta, z
    q05 = np.quantile(ess_kept, 0.05, axis=0)
    return out_mu, out_sd, out_beta, out_z, q05, ess_kept.mean(axis=0), used.sum(axis=1)


def sample_regression_population(
    stage1_samples: SitePosteriorSamples,
    X,
    forest_types: Sequence[str],
    prior,
    *,
    covariate_names: Sequence[str] | None = None,
    shared_beta: bool = False,
    hyperprior: RegressionPrior = RegressionPrior(),
    draws: int = 4000,
    tune: int = 1000,
    chains: int = 4,
    thin: int = 5,
    seed: int = 0,
    progress: bool = False,
    n_processes: int = 1,
    collapse_every: int = 1,
) -> xr.DataTree:
    """Stage 2 with covariates: the regression population's posterior from stage-1 draws (Gibbs sampling; no
    model solves).

    Args:
        stage1_samples: stage-1 result (:func:`.stage1.site_posterior_samples`), any sites (e.g. the
            training sites of a cross-validation fold, ``samples.subset(...)``) (–).
        X: standardised covariates of those sites, shape (n_sites, J), or a
            :class:`~bayes_vmimics.covariates.CovariateDesign` of them (standardised units).
        forest_types: forest type of each site (–).
        prior: the box prior of the stage-1 problem (``problem.prior``) (–).
        covariate_names: names of the J columns; default the design's, else ``x0``, ``x1``, … (–).
        shared_beta: one B for all forest types (bool).
        hyperprior: hyperpriors of μ, B and σ (–).
        draws: kept sweeps per chain before thinning (count).
        tune: tuning sweeps per chain, discarded (count).
        chains: independent chains, for R-hat (count).
        thin: keep every ``thin``-th sweep (count).
        seed: seed (integer).
        progress: progress bar over chains (bool).
        n_processes: chains run at once on a process pool; the result does not depend on it (count).
        collapse_every: every this many sweeps, start with Metropolis moves of (μ_tp, B_t·p) jointly and of σ_tp
            that integrate the site parameters out (:class:`~.site_draws.CollapsedMoves`); 0: centred Gibbs
            sweeps only (count).

    Returns:
        ``xarray.DataTree`` as :func:`.two_stage.sample_population` (``posterior``: ``mu``, ``sigma``,
        ``theta_population`` at the type's average covariates, ``theta_site``; ``stage2_diagnostics``;
        ``stage1``) plus ``posterior["beta"]`` (chain, draw, forest_type, covariate, parameter) (logit units
        per standardised covariate unit) and a group ``covariates`` with ``x_site`` (site, covariate) and,
        for a design, the scaler's ``center`` and ``scale`` (its JSON in ``attrs["scaler"]``).

    Raises:
        ValueError: shapes that do not match, non-finite covariates (naming the site and column), bad settings.
    """

    design = None
    if hasattr(X, "scaler") and hasattr(X, "X"):
        design = X
        if list(design.site_ids) != [str(s) for s in stage1_samples.site_ids]:
            raise ValueError("the covariate design's sites differ from the stage-1 sites (same sites, same order)")
        covariate_names = covariate_names or list(design.columns)
        X = design.X
    X = np.asarray(X, dtype=float)
    S = stage1_samples.z.shape[0]
    if X.ndim != 2 or X.shape[0] != S:
        raise ValueError(f"X must have shape ({S}, n_covariates), got {X.shape}")
    names = list(covariate_names) if covariate_names is not None else [f"x{j}" for j in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise ValueError(f"{len(names)} covariate names for {X.shape[1]} columns of X")
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        s, j = bad[0]
        raise ValueError(f"covariate {names[j]!r} of site {stage1_samples.site_ids[s]!r} is not finite ({X[s, j]})")
    ft = [str(f) for f in forest_types]
    if len(ft) != S:
        raise ValueError(f"forest_types must give one type per site ({S}), got {len(ft)}")
    if draws < thin or tune < 0 or chains < 1 or thin < 1 or collapse_every < 0:
        raise ValueError(
            f"need draws ≥ thin ≥ 1, tune ≥ 0, chains ≥ 1, collapse_every ≥ 0; got {draws=}, {thin=}, {tune=}, "
            f"{chains=}, {collapse_every=}"
        )
    types = sorted(set(ft))
    idx = np.array([types.index(f) for f in ft])
    Z = np.asarray(stage1_samples.z, dtype=float)
    lp1 = stage1_samples.log_stage1_prior()
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(chains)]
    args = [
        (Z, lp1, X, idx, len(types), tune + draws, tune, thin, hyperprior, shared_beta, rngs[c], collapse_every)
        for c in range(chains)
    ]
    res = run_chains(
        _regression_chain, args, n_processes=n_processes, desc="stage 2 with covariates (chains)", progress=progress
    )
    mu, sd, beta, zs = (np.stack([r[i] for r in res]) for i in range(4))
    post = posterior_dataset(
        mu,
        sd,
        zs,
        types,
        stage1_samples.site_ids,
        prior,
        site_types=ft,
        method="two_stage_regression",
        reference="Lunn et al. 2013, J. R. Stat. Soc. C 62:551; regression population (issue 20)",
        beta_shared=int(bool(shared_beta)),
        mu_sd=hyperprior.mu_sd,
        beta_sd=hyperprior.beta_sd,
        sigma_sd=hyperprior.sigma_sd,
    )
    post["beta"] = (("chain", "draw", "forest_type", "covariate", "parameter"), beta)
    post = post.assign_coords(covariate=names)
    diag = xr.Dataset(
        {
            "weight_ess_q05": (("chain", "site"), np.stack([r[4] for r in res])),
            "mean_weight_ess": (("chain", "site"), np.stack([r[5] for r in res])),
            "distinct_stage1_draws": (("chain", "site"), np.stack([r[6] for r in res])),
        },
        coords={"chain": post["chain"].values, "site": list(stage1_samples.site_ids)},
        attrs={"stage1_draws_per_site": int(Z.shape[1])},
    )
    cov = covariate_group(list(stage1_samples.site_ids), ft, names, X, design)
    return xr.DataTree.from_dict(
        {"posterior": post, "stage2_diagnostics": diag, "stage1": stage1_dataset(stage1_samples), "covariates": cov}
    )


def covariate_group(site_ids, forest_types, names, X, design=None) -> xr.Dataset:
    """The ``covariates`` group of a regression result (two-stage or PyMC): ``x_site`` (site, covariate)
    (standardised units), the sites' forest types and, for a :class:`~bayes_vmimics.covariates.CovariateDesign`,
    its scaler's ``center`` and ``scale`` and JSON (``attrs["scaler"]``), with which ``validate`` standardises
    held-out sites."""
    cov = xr.Dataset(
        {"x_site": (("site", "covariate"), np.asarray(X, dtype=float))},
        coords={"site": list(site_ids), "covariate": list(names), "site_forest_type": ("site", list(forest_types))},
    )
    if design is not None:
        scal = design.scaler.to_dataset()
        cov = cov.assign(center=scal["center"], scale=scal["scale"])
        cov.attrs["scaler"] = scal.attrs["scaler"]
    return cov


def predict_new_site_regression(
    result: xr.DataTree,
    x_new,
    rng: np.random.Generator,
    *,
    forest_type: str | Sequence[str] | None = None,
) -> xr.DataArray:
    """z of held-out (new) sites drawn from the regression population at their covariates.

    z = μ_t + x B_t + σ_t η, η ~ N(0, I), one draw per posterior draw of (μ, B, σ) and site.

    Args:
        result: a result of :func:`sample_regression_population` (–).
        x_new: standardised covariates of the new site(s), shape (J,) or (n_sites, J), in the columns of
            ``result.posterior.covariate`` (standardise with the result's scaler:
            ``CovariateScaler.from_json(result["covariates"].attrs["scaler"]).transform(...)``)
            (standardised units).
        rng: random generator (–).
        forest_type: forest type of the new site(s) (one for all or one per site); may be omitted when the
            result has one type (–).

    Returns:
        DataArray (chain, draw, parameter), or (chain, draw, site, parameter) for a 2-D ``x_new`` (logit
        units); θ follows from :func:`bayes_vmimics.population.theta_from_logit`.

    Raises:
        ValueError: a result without ``beta``, covariates of the wrong length or not finite, an unknown or
            missing forest type.
    """
    from ..population_regression import new_site_z

    return new_site_z(result, x_new, rng, forest_type)


def refined_stage1_prior_regression(dt: xr.DataTree, *, inflate: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """A stage-1 prior for a second pass with covariates: per site, a normal in z matching the regression
    population's predictive at the site's covariates (mean E[μ_t + B_t x_s], variance E[σ_t²] + Var[μ_t + B_t x_s]),
    widened by ``inflate``. The counterpart of :func:`.stage1.refined_stage1_prior` (same reasons).

    Args:
        dt: a first pass of :func:`sample_regression_population` (–).
        inflate: factor on the predictive sd (–; > 1).

    Returns:
        ``(loc, scale)``, each of shape (n_sites, 7), in the order of the result's sites (logit units).
    """
    if not inflate > 1.0:
        raise ValueError(f"inflate must be > 1, got {inflate}")
    post = dt["posterior"]
    cov = dt["covariates"]
    types = [str(t) for t in post["forest_type"].values]
    ti = np.array([types.index(str(t)) for t in cov["site_forest_type"].values])
    x = cov["x_site"].transpose("site", "covariate").to_numpy()
    mu = post["mu"].transpose("chain", "draw", "forest_type", "parameter").to_numpy()
    sd = post["sigma"].transpose("chain", "draw", "forest_type", "parameter").to_numpy()
    beta = post["beta"].transpose("chain", "draw", "forest_type", "covariate", "parameter").to_numpy()
    mean = mu[:, :, ti] + np.einsum("sj,cdsjp->cdsp", x, beta[:, :, ti])  # (chain, draw, site, 7)
    var = (sd[:, :, ti] ** 2).mean(axis=(0, 1)) + mean.var(axis=(0, 1))
    return mean.mean(axis=(0, 1)), inflate * np.sqrt(var)
