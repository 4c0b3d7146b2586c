"""Stage 2 on a smooth likelihood: each site's stage-1 draws summarised by a Gaussian mixture, then NUTS.

Why. The stage 2 of :mod:`.two_stage` and :mod:`.regression` represents each site's likelihood by its finite
set of stage-1 draws. Under a population that is narrow compared with a site's posterior (a regression with
covariates, or σ near zero) the importance weights of a site rest on one draw (weight ESS 1), the Gibbs sweeps
stick and R-hat stays at 1.1–2.4 on real sites (docs/results_covariates.md). Here each site's likelihood in z is
replaced by a smooth, closed-form approximation, so stage 2 becomes an ordinary differentiable hierarchical model
that NUTS samples in the non-centred parametrisation in seconds.

The approximation (for site s, in the logit coordinates z of the Table 1 box):

1. The stage-1 draws, made under the stage-1 prior p₁ (the box: logistic in z; or a normal of the second pass),
   are resampled with weights N(z | m₀, diag s₀²) / p₁(z) so that they follow the site's posterior under a
   normal *reference prior* N(m₀, s₀²) (box prior: m₀ = 0, s₀ = π/√3, the logistic's sd, so the weights are
   bounded; normal stage-1 prior: the reference is that prior and the weights are 1).
2. A Gaussian mixture q(z) = Σ_k π_k N(z | m_k, C_k) is fitted to them (scikit-learn, EM, ``n_components``).
3. The likelihood is q divided by the reference prior, component by component, in closed form:

       log L_s(z) ≈ logsumexp_k [ c_k + b_kᵀ z − ½ zᵀ A_k z ],
       A_k = C_k⁻¹ − diag(s₀⁻²),  b_k = C_k⁻¹ m_k − m₀ / s₀²,  c_k = log π_k + ½ log|C_k⁻¹| − ½ m_kᵀ C_k⁻¹ m_k.

   Where a component is at least as wide as the reference prior in some direction (an eigenvalue of A_k ≤ 0:
   the site does not constrain that combination), the likelihood is taken as flat along it (that eigenvalue
   and the linear term along its eigenvector are set to zero), rather than rising without bound.

Number of components. Two by default. A mixture splits a site's curved ridge into bumps with saddles between
them, and under a wide population NUTS then hops between a site's bumps too rarely: on the 53 real calibration
sites, 9 sites had two modes with three components, and the populations' R-hat reached 1.3–1.7 in cross-validation
folds, while with two components every fold converged (R-hat ≤ 1.01). One component is unimodal but too crude
(population means up to 3.4 posterior sd away from the exact two-stage sampler's, against 2.5 with two). Each
component also narrows the likelihood a little where a site says nothing (< 0.8 nats over the reference prior's
typical set with two components; tested).

Exactness. None beyond the mixture fit. The approximation is checked against the exact two-stage sampler where
that one converges (populations without covariates; docs/results_covariates.md gives the comparison on real sites),
and the test suite checks that on Gaussian sites (where a one-component mixture is exact) the result matches
the closed-form posterior. Stage 2 then has the usual NUTS diagnostics (R-hat, ESS, divergences).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..parameters import PARAMETER_NAMES
from .regression import RegressionPrior, covariate_group
from .site_draws import SitePosteriorSamples, posterior_dataset, stage1_dataset

NPAR = len(PARAMETER_NAMES)
LOGISTIC_SD = float(np.pi / np.sqrt(3.0))

__all__ = ["SiteLikelihoodMixture", "fit_site_mixtures", "sample_mixture_population"]


@dataclass(frozen=True)
class SiteLikelihoodMixture:
    """Closed-form approximations of each site's log-likelihood in z (see the module docstring).

    Attributes:
        site_ids: site identifiers (–).
        log_weight: c_k, shape (n_sites, K) (log units).
        linear: b_k, shape (n_sites, K, 7) (per logit unit).
        quadratic: A_k, symmetric positive semi-definite, shape (n_sites, K, 7, 7) (per logit unit²).
        resample_ess: Kish effective sample size of the reweighting to the reference prior, per site (count).
        flat_directions: eigen-directions set flat per site, summed over components (count).
    """

    site_ids: list[str]
    log_weight: np.ndarray
    linear: np.ndarray
    quadratic: np.ndarray
    resample_ess: np.ndarray
    flat_directions: np.ndarray

    def log_likelihood(self, z) -> np.ndarray:
        """The approximate log-likelihood of every site at its own z, up to a constant per site.

        Args:
            z: shape (n_sites, 7) (logit units).

        Returns:
            Shape (n_sites,) (log-likelihood units).
        """
        z = np.asarray(z, dtype=float)
        quad = np.einsum("si,skij,sj->sk", z, self.quadratic, z)
        terms = self.log_weight + np.einsum("ski,si->sk", self.linear, z) - 0.5 * quad
        top = terms.max(axis=1)
        return top + np.log(np.exp(terms - top[:, None]).sum(axis=1))

    def subset(self, indices) -> SiteLikelihoodMixture:
        """The mixtures of the sites at ``indices`` (their stage 1 does not depend on the other sites)."""
        ix = np.asarray(indices, dtype=int)
        return SiteLikelihoodMixture(
            [self.site_ids[i] for i in ix],
            self.log_weight[ix],
            self.linear[ix],
            self.quadratic[ix],
            self.resample_ess[ix],
            self.flat_directions[ix],
        )


def fit_site_mixtures(stage1: SitePosteriorSamples, n_components: int = 2, *, seed: int = 0) -> SiteLikelihoodMixture:
    """Fit the Gaussian-mixture likelihood approximation of every site from its stage-1 draws.

    Args:
        stage1: stage-1 draws (:func:`~bayes_vmimics.inference.stage1.site_posterior_samples`) (–).
        n_components: K, mixture components per site (count).
        seed: seed of the resampling and of EM's initialisation (integer).

    Returns:
        :class:`SiteLikelihoodMixture`.

    Raises:
        ValueError: ``n_components`` < 1 or more components than a site has draws.
    """
    from sklearn.mixture import GaussianMixture

    Z = np.asarray(stage1.z, dtype=float)
    S, n, P = Z.shape
    if n_components < 1 or n_components * 8 > n:
        raise ValueError(f"n_components must be ≥ 1 and leave ≥ 8 draws per component ({n} draws), got {n_components}")
    lp1 = stage1.log_stage1_prior()
    if stage1.prior_loc is None:
        loc, scale = np.zeros((S, P)), np.full((S, P), LOGISTIC_SD)
    else:
        loc, scale = np.asarray(stage1.prior_loc, dtype=float), np.asarray(stage1.prior_scale, dtype=float)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(S)]
    c_all = np.empty((S, n_components))
    b_all = np.empty((S, n_components, P))
    a_all = np.empty((S, n_components, P, P))
    ess = np.empty(S)
    flat = np.zeros(S, dtype=int)
    for s in range(S):
        lw = -0.5 * np.sum(((Z[s] - loc[s]) / scale[s]) ** 2, axis=1) - np.sum(np.log(scale[s])) - lp1[s]
        lw -= 0.5 * P * np.log(2 * np.pi)
        w = np.exp(lw - lw.max())
        ess[s] = w.sum() ** 2 / np.sum(w**2)
        draws = Z[s][rngs[s].choice(n, size=n, p=w / w.sum())]
        gm = GaussianMixture(
            n_components, covariance_type="full", reg_covar=1e-4, n_init=2, random_state=int(rngs[s].integers(2**31))
        ).fit(draws)
        prior_prec = 1.0 / scale[s] ** 2
        for k in range(n_components):
            prec, m = gm.precisions_[k], gm.means_[k]
            lam, vec = np.linalg.eigh(prec - np.diag(prior_prec))
            b = vec.T @ (prec @ m - loc[s] * prior_prec)
            bad = lam <= 0.0
            flat[s] += int(bad.sum())
            lam[bad], b[bad] = 0.0, 0.0
            a_all[s, k] = (vec * lam) @ vec.T
            b_all[s, k] = vec @ b
            c_all[s, k] = np.log(gm.weights_[k]) + 0.5 * np.linalg.slogdet(prec)[1] - 0.5 * m @ prec @ m
    return SiteLikelihoodMixture(list(stage1.site_ids), c_all, b_all, a_all, ess, flat)


def _stage1_site_draws(stage1: SitePosteriorSamples, mean, sd, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """z_s per posterior draw, drawn from site s's stage-1 draws with weights N(z | mean, sd²) / p₁(z); also the
    Kish effective number of those weights per draw and site. mean, sd: (chain, draw, site, 7) (logit units)."""
    from .site_draws import gibbs_site_draws

    Z = np.ascontiguousarray(stage1.z, dtype=float)
    lp1 = np.ascontiguousarray(stage1.log_stage1_prior())
    S = Z.shape[0]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    n_chain, n_draw = mean.shape[:2]
    out = np.empty_like(mean)
    ess = np.empty((n_chain * n_draw, S))
    k, e = np.empty(S, dtype=np.int64), np.empty(S)
    for c in range(n_chain):
        for d in range(n_draw):
            gibbs_site_draws(
                Z, lp1, np.ascontiguousarray(mean[c, d]), np.ascontiguousarray(sd[c, d]), rng.random(S), k, e
            )
            out[c, d] = Z[np.arange(S), k]
            ess[c * n_draw + d] = e
    return out, ess


def sample_mixture_population(
    mixtures: SiteLikelihoodMixture,
    forest_types: Sequence[str],
    prior,
    *,
    X=None,
    covariate_names: Sequence[str] | None = None,
    design=None,
    shared_beta: bool = False,
    hyperprior: RegressionPrior | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    n_processes: int = 1,
    target_accept: float = 0.9,
    progress: bool = False,
    stage1: SitePosteriorSamples | None = None,
) -> xr.DataTree:
    """Stage 2 on the mixture likelihoods: the population (``X`` None) or the regression population, by NUTS.

    Model, per forest type t, site s of type t and parameter p (logit units; non-centred in the sampler):
    z_sp = μ_tp + Σ_j x_sj B_(t)jp + σ_tp η_sp, η ~ N(0, 1), μ ~ N(0, mu_sd²), B ~ N(0, beta_sd²),
    σ ~ HalfNormal(sigma_sd), and site s's likelihood L_s(z_s) from ``mixtures``. The hyperpriors are those of
    :func:`.two_stage.sample_population` (without covariates) and :func:`.regression.sample_regression_population`.

    Args:
        mixtures: :func:`fit_site_mixtures` of the sites (–).
        forest_types: forest type of each site (–).
        prior: the Table 1 box (:class:`~bayes_vmimics.priors.BoxPrior`) (–).
        X: standardised covariates, shape (n_sites, J) (standardised units), a
            :class:`~bayes_vmimics.covariates.CovariateDesign` of the same sites, or None for no covariates.
        covariate_names: names of the J columns (–).
        design: a :class:`~bayes_vmimics.covariates.CovariateDesign` whose scaler is stored with the result (–).
        shared_beta: one B for all types (bool).
        hyperprior: :class:`~.regression.RegressionPrior`; default its defaults (–).
        draws, tune, chains: NUTS draws and tuning steps per chain, chains (count).
        seed: random seed (integer).
        n_processes: chains run at once (count).
        target_accept: NUTS target acceptance (–).
        progress: progress bar (bool).
        stage1: the stage-1 draws the mixtures came from: stored as the ``stage1`` group, and each site's
            ``theta_site`` is then drawn from them given each posterior draw's population (the site step of the
            Gibbs stage 2), not from the mixture; without it, from the mixture (–).

    Returns:
        DataTree with ``posterior`` (``mu``, ``sigma``, ``theta_population``, ``theta_site`` and, with
        covariates, ``beta``), ``stage2_diagnostics`` (divergences per chain, the mixtures' resampling ESS and
        flat directions, and with ``stage1`` the 5 % quantile over draws of the Kish effective number of each site's
        stage-1 weights, ``site_weight_ess_q05``), ``sample_stats`` of NUTS and, with covariates, ``covariates``.

    Raises:
        ValueError: inconsistent shapes, a non-finite covariate (naming the site).
    """
    import pymc as pm
    import pytensor.tensor as pt

    hyperprior = hyperprior or RegressionPrior()
    ids = list(mixtures.site_ids)
    S = len(ids)
    ft = [str(f) for f in forest_types]
    if len(ft) != S:
        raise ValueError(f"forest_types must give one type per site ({S}), got {len(ft)}")
    if draws < 1 or tune < 0 or chains < 1:
        raise ValueError(f"need draws ≥ 1, tune ≥ 0, chains ≥ 1; got {draws=}, {tune=}, {chains=}")
    types = sorted(set(ft))
    idx = np.array([types.index(f) for f in ft])
    if X is not None and hasattr(X, "scaler") and hasattr(X, "X"):  # a CovariateDesign
        design = X
        if list(design.site_ids) != ids:
            raise ValueError("the covariate design's sites differ from the mixtures' sites (same sites, same order)")
        covariate_names = covariate_names or list(design.columns)
        X = design.X
    if X is not None:
        X = np.asarray(X, dtype=float)
        names = list(covariate_names) if covariate_names is not None else [f"x{j}" for j in range(X.shape[1])]
        if X.shape != (S, len(names)):
            raise ValueError(f"X must have shape ({S}, {len(names)}), got {X.shape}")
        bad = np.argwhere(~np.isfinite(X))
        if bad.size:
            s, j = bad[0]
            raise ValueError(f"covariate {names[j]!r} of site {ids[s]!r} is not finite ({X[s, j]})")
    coords = {"forest_type": types, "site": ids, "parameter": list(PARAMETER_NAMES)}
    with pm.Model(coords=coords) as model:
        mu = pm.Normal("mu", 0.0, hyperprior.mu_sd, dims=("forest_type", "parameter"))
        sd = pm.HalfNormal("sigma", hyperprior.sigma_sd, dims=("forest_type", "parameter"))
        eta = pm.Normal("eta", 0.0, 1.0, dims=("site", "parameter"))
        mean = mu[idx]
        if X is not None:
            model.add_coord("covariate", names)
            if shared_beta:
                beta = pm.Normal("beta", 0.0, hyperprior.beta_sd, dims=("covariate", "parameter"))
                mean = mean + pt.dot(X, beta)
            else:
                beta = pm.Normal("beta", 0.0, hyperprior.beta_sd, dims=("forest_type", "covariate", "parameter"))
                mean = mean + pt.sum(X[:, :, None] * beta[idx], axis=1)
        z = pm.Deterministic("z", mean + sd[idx] * eta, dims=("site", "parameter"))
        quad = pt.sum(z[:, None, :, None] * mixtures.quadratic * z[:, None, None, :], axis=(2, 3))
        lin = pt.sum(mixtures.linear * z[:, None, :], axis=2)
        pm.Potential("site_likelihood", pt.sum(pm.math.logsumexp(mixtures.log_weight + lin - 0.5 * quad, axis=1)))
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            # PyMC's own chain processes, not bayes_vmimics.scheduler: pm.sample starts, seeds, steps and gathers
            # its chains itself (no task-level map to substitute)
            cores=n_processes,
            random_seed=seed,
            progressbar=progress,
            target_accept=target_accept,
            compute_convergence_checks=False,
        )
    p = idata["posterior"]
    mu_v = p["mu"].transpose("chain", "draw", "forest_type", "parameter").values
    sd_v = p["sigma"].transpose("chain", "draw", "forest_type", "parameter").values
    z_v = p["z"].transpose("chain", "draw", "site", "parameter").values
    site_ess = None
    if stage1 is not None:
        # the sites' own parameters from their stage-1 draws (the Gibbs site step of .two_stage, given each
        # posterior draw's population), not from the mixtures: θ_site then fits the site's data as stage 1 does
        eta = p["eta"].transpose("chain", "draw", "site", "parameter").values
        z_v, site_ess = _stage1_site_draws(stage1, z_v - sd_v[:, :, idx] * eta, sd_v[:, :, idx], seed)
    attrs = dict(
        method="mixture_stage2",
        reference="two-stage (Lunn et al. 2013) with a Gaussian-mixture likelihood per site; NUTS",
        mu_sd=hyperprior.mu_sd,
        sigma_sd=hyperprior.sigma_sd,
        n_components=int(mixtures.log_weight.shape[1]),
    )
    if X is not None:
        attrs.update(beta_shared=int(bool(shared_beta)), beta_sd=hyperprior.beta_sd)
    post = posterior_dataset(mu_v, sd_v, z_v, types, ids, prior, site_types=ft, **attrs)
    groups = {}
    if X is not None:
        if shared_beta:
            b = p["beta"].transpose("chain", "draw", "covariate", "parameter").values
            b = np.broadcast_to(b[:, :, None], (*b.shape[:2], len(types), *b.shape[2:])).copy()
        else:
            b = p["beta"].transpose("chain", "draw", "forest_type", "covariate", "parameter").values
        post["beta"] = (("chain", "draw", "forest_type", "covariate", "parameter"), b)
        post = post.assign_coords(covariate=names)
        groups["covariates"] = covariate_group(ids, ft, names, X, design)
    div = idata["sample_stats"]["diverging"]
    diag = xr.Dataset(
        {
            "divergences": (("chain",), div.sum("draw").values.astype(int)),
            "resample_ess": (("site",), mixtures.resample_ess),
            "flat_directions": (("site",), mixtures.flat_directions),
            **({} if site_ess is None else {"site_weight_ess_q05": (("site",), np.quantile(site_ess, 0.05, axis=0))}),
        },
        coords={"chain": post["chain"].values, "site": ids},
    )
    groups.update({"posterior": post, "stage2_diagnostics": diag, "sample_stats": idata["sample_stats"].to_dataset()})
    if stage1 is not None:
        groups["stage1"] = stage1_dataset(stage1)
    return xr.DataTree.from_dict(groups)
