"""PyMC models of the calibration: single site, pooled forest type, and hierarchical forest types.

The likelihood enters PyMC through one PyTensor Op, :class:`SiteLogLikelihoodOp`, wrapping the vectorised
per-site log-likelihood of :mod:`bayes_vmimics.gradients` (site s at its own θ_s). Its value is the NumPy
log-likelihood bit for bit; its ``pullback`` (PyTensor 3 API) uses the exact adjoint gradient, so NUTS
needs no finite differences. Built with ``gradient=False`` the Op computes values only (for gradient-free
samplers such as DEMetropolisZ).

Parameterisation. Each parameter lives on its prior box [l, u] of P Table 1 (or the box of a
:class:`~bayes_vmimics.priors.BoxPrior`; log scale for log-uniform parameters). With the unit position
v = (θ − l)/(u − l) (or log(θ/l)/log(u/l)):

- single site / pooled: v ~ Uniform(0, 1) per parameter, so θ has exactly the box prior of the emcee
  calibration (PyMC samples logit v);
- hierarchical: for site s of forest type t, logit v_s = μ_t + σ_t ⊙ η_s with η_s ~ N(0, I) (non-centred),
  μ_t ~ N(0, 1.5²) and σ_t ~ HalfNormal(1) per parameter. ``theta_population`` = box(sigmoid μ_t) is the
  population median of forest type t in parameter units (its posterior gives the forest-type parameters
  with uncertainty); a new site of type t has θ = box(sigmoid(μ_t + σ_t η)), η ~ N(0, I)
  (:func:`~bayes_vmimics.population.sample_new_site_parameters`, re-exported here, and
  :func:`predict_new_site`).
- hierarchical with covariates (issue 20; ``covariates=`` of :func:`build_hierarchical_model`): the
  regression population of :mod:`.regression`, logit v_s ~ N(μ_t + x_s B_t, σ_t²) with x_s the site's
  standardised covariates, B ~ N(0, beta_sd²) or a regularised horseshoe (:class:`HorseshoePrior`), B per
  forest type or shared. ``beta`` has the dims of the two-stage result, so
  :func:`~bayes_vmimics.inference.regression.predict_new_site_regression` draws new sites from either.

Results are ``xarray.DataTree`` (what PyMC 6 ``pm.sample`` returns); :func:`posterior_convergence` gives R-hat,
bulk/tail ESS and divergences; :func:`save_results` writes netCDF.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from ..constants import SOC_POOLS
from ..gradients import site_log_likelihood, site_log_likelihood_and_gradient
from ..likelihood import CalibrationProblem
from ..model import SiteModel
from ..observation import ObservationOperator, required_grid
from ..parameters import PARAMETER_NAMES
from ..population import sample_new_site_parameters, theta_from_logit
from ..priors import BoxPrior
from ..steady_state import solve_site

NPAR = len(PARAMETER_NAMES)
SAMPLERS = ("nuts", "demetropolisz")
SHRINKAGES = ("normal", "horseshoe")


class SiteLogLikelihoodOp(Op):
    """PyTensor Op: θ (n, 7) → per-site log-likelihoods (n,) of ``problem.sites[site_indices]``.

    Args:
        problem: the calibration problem; its sites must have constant temperature for gradients (–).
        site_indices: the sites evaluated, row i of θ belongs to site ``site_indices[i]``; default all (–).
        gradient: also compute the exact gradient (a second output (n, 7), used by ``pullback``); False gives
            a value-only Op without gradient (for gradient-free samplers) (bool).

    Raises:
        NotImplementedError: (at evaluation, with ``gradient=True``) a temperature-climatology site or ¹⁴C in
            paper mode: these have no exact gradient yet.
    """

    def __init__(self, problem: CalibrationProblem, site_indices: Sequence[int] | None = None, *, gradient=True):
        self.problem = problem
        self.site_indices = tuple(range(len(problem.sites)) if site_indices is None else (int(i) for i in site_indices))
        if not self.site_indices:
            raise ValueError("at least one site is needed")
        self.gradient = bool(gradient)

    @property
    def n_sites(self) -> int:
        """Number of rows of θ (count)."""
        return len(self.site_indices)

    def make_node(self, theta) -> Apply:
        theta = pt.as_tensor_variable(theta, dtype="float64")
        if theta.ndim != 2:
            raise ValueError(f"theta must be a matrix (n_sites, {NPAR}), got ndim {theta.ndim}")
        outs = [pt.dvector()]
        if self.gradient:
            outs.append(pt.dmatrix())
        return Apply(self, [theta], outs)

    def perform(self, node, inputs, outputs) -> None:
        (theta,) = inputs
        if theta.shape != (self.n_sites, NPAR):
            raise ValueError(f"theta must have shape ({self.n_sites}, {NPAR}), got {theta.shape}")
        vals = np.empty(self.n_sites)
        if self.gradient:
            grads = np.empty((self.n_sites, NPAR))
            for i, s in enumerate(self.site_indices):
                vals[i], grads[i] = site_log_likelihood_and_gradient(self.problem, s, theta[i])
            outputs[1][0] = grads
        else:
            for i, s in enumerate(self.site_indices):
                vals[i] = site_log_likelihood(self.problem, s, theta[i])
        outputs[0][0] = vals

    def pullback(self, inputs, outputs, cotangents):
        if not self.gradient:
            return [grad_not_implemented(self, 0, inputs[0], "built with gradient=False")]
        if len(cotangents) > 1 and not isinstance(cotangents[1].type, DisconnectedType):
            return [grad_not_implemented(self, 0, inputs[0], "the gradient output is not differentiable")]
        cot = cotangents[0]
        if isinstance(cot.type, DisconnectedType):
            return [pt.zeros_like(inputs[0])]
        return [cot[:, None] * outputs[1]]

    def __str__(self) -> str:
        return f"SiteLogLikelihoodOp(n_sites={self.n_sites}, gradient={self.gradient})"


def site_log_likelihood_tensor(op: SiteLogLikelihoodOp, theta) -> pt.TensorVariable:
    """The Op's value output, per-site log-likelihoods (n_sites,), for θ of shape (n_sites, 7)."""
    out = op(theta)
    return out[0] if op.gradient else out


# ------------------------------------------------------------------------------------------------------------
# box transforms
# ------------------------------------------------------------------------------------------------------------


def _box(prior: BoxPrior):
    return (
        np.asarray(prior.lower, dtype=float),
        np.asarray(prior.upper, dtype=float),
        np.asarray(prior.is_log, dtype=bool),
    )


def from_unit(prior: BoxPrior, v):
    """θ from the unit position v ∈ (0, 1) on the prior box (log scale for log-uniform parameters); works on
    NumPy arrays and PyTensor tensors (last axis: parameters)."""
    lo, hi, is_log = _box(prior)
    mod = pt if isinstance(v, pt.TensorVariable) else np
    lin = lo + (hi - lo) * v
    log = lo * mod.exp(v * np.log(hi / lo))
    return mod.where(is_log, log, lin)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _coords(problem: CalibrationProblem, site_indices) -> dict:
    return {"parameter": list(PARAMETER_NAMES), "site": [problem.site_ids[i] for i in site_indices]}


# ------------------------------------------------------------------------------------------------------------
# covariates (regression population, issue 20)
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HorseshoePrior:
    """Hyperparameters of the regularised horseshoe on the regression coefficients B (Piironen & Vehtari 2017,
    "Sparsity information and regularization in the horseshoe and other shrinkage priors", Electron. J. Stat.
    11:5018–5051, doi:10.1214/17-EJS1337SI).

    One horseshoe per parameter column: for each parameter p (and forest type t, unless B is shared), over the
    J covariates j,

        B_jp = τ_p λ̃_jp η_jp,   η_jp ~ N(0, 1)                      (non-centred)
        λ̃_jp² = c_p² λ_jp² / (c_p² + τ_p² λ_jp²),   λ_jp ~ C⁺(0, 1)    (local scales, regularised by the slab)
        τ_p ~ C⁺(0, τ0),   τ0 = p0 / (J − p0) · noise_scale / √n      (global scale)
        c_p² ~ Inv-Gamma(slab_df / 2, slab_df · slab_scale² / 2)     (slab width)

    with n the number of sites the column's B is learnt from (the type's sites; all sites when shared).
    Small effects see a horseshoe (a spike at zero); large ones see a slab N(0, c²), c ≈ slab_scale, so they
    are regularised as a normal prior of that scale would (the paper's reason: weakly identified effects stay
    bounded). Sampled as in the paper's Stan code: τ = τ0 · ``beta_tau_unit``, c² = slab_scale² ·
    ``beta_slab_unit`` with ``beta_tau_unit`` ~ C⁺(0, 1) and ``beta_slab_unit`` ~ Inv-Gamma(slab_df/2, slab_df/2).

    Attributes:
        p0: p0, the expected number of non-zero effects per parameter column; 0 < p0 < J (count).
        slab_scale: s, the slab scale: the prior sd of a large effect (logit units per standardised covariate
            unit); 1.0, twice the normal prior's beta_sd, so a ±2 sd change of a covariate may move z by ±2
            logit units, the population's spread.
        slab_df: ν, degrees of freedom of the slab's Student-t (inverse-gamma c²) (–); 4 as in the paper and
            brms.
        noise_scale: σ in τ0, the residual sd the paper scales τ0 with (logit units); 1.0, the scale of σ_t's
            half-normal prior. The population spread σ_tp is itself a parameter and, with shared B, several
            σ_tp share one column, so a fixed reference replaces it (the prior of B then does not depend on σ,
            as with the normal prior).
    """

    p0: float = 1.0
    slab_scale: float = 1.0
    slab_df: float = 4.0
    noise_scale: float = 1.0

    def __post_init__(self) -> None:
        if not (self.p0 > 0 and self.slab_scale > 0 and self.slab_df > 0 and self.noise_scale > 0):
            raise ValueError(
                "horseshoe p0, slab_scale, slab_df and noise_scale must be positive, got "
                f"{self.p0}, {self.slab_scale}, {self.slab_df}, {self.noise_scale}"
            )

    def global_scale(self, n_covariates: int, n_sites) -> np.ndarray:
        """τ0 = p0 / (J − p0) · noise_scale / √n (logit units), for J covariates and n sites (count; array ok).

        Raises:
            ValueError: p0 ≥ J.
        """
        J = int(n_covariates)
        if not self.p0 < J:
            raise ValueError(f"the horseshoe's p0 ({self.p0}) must be below the number of covariates ({J})")
        return self.p0 / (J - self.p0) * self.noise_scale / np.sqrt(np.asarray(n_sites, dtype=float))


def _covariate_matrix(covariates, covariate_names, site_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """X (n_sites, J) and its column names from a CovariateDesign, a DataFrame or an array, validated."""
    S = len(site_ids)
    names = None
    if hasattr(covariates, "scaler") and hasattr(covariates, "X"):  # covariates.CovariateDesign
        if [str(s) for s in covariates.site_ids] != [str(s) for s in site_ids]:
            raise ValueError(
                "the covariate design's sites differ from the problem's sites (need the same sites in the same order)"
            )
        names = [str(c) for c in covariates.columns]
        covariates = covariates.X
    elif hasattr(covariates, "columns") and hasattr(covariates, "to_numpy"):  # a DataFrame
        names = [str(c) for c in covariates.columns]
        covariates = covariates.to_numpy(dtype=float)
    X = np.asarray(covariates, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"covariates must be a matrix (n_sites, n_covariates), got shape {X.shape}")
    if X.shape[0] != S:
        raise ValueError(f"covariates must have one row per site: {S} sites, got {X.shape[0]} rows")
    if X.shape[1] < 1:
        raise ValueError("covariates has no column")
    if covariate_names is not None:
        names = [str(c) for c in covariate_names]
    if names is None:
        names = [f"x{j}" for j in range(X.shape[1])]  # as the two-stage sampler
    if len(names) != X.shape[1]:
        raise ValueError(f"{len(names)} covariate names for {X.shape[1]} covariate columns")
    if len(set(names)) != len(names):
        raise ValueError(f"covariate names must be distinct, got {names}")
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        s, j = bad[0]
        raise ValueError(
            f"covariate {names[j]!r} of site {site_ids[s]!r} is not finite ({X[s, j]}); "
            f"{len(bad)} non-finite value(s) in all (no value is filled in)"
        )
    return X, names


def _beta_prior(shrinkage: str, shared: bool, beta_sd: float, horseshoe: HorseshoePrior, counts: np.ndarray):
    """The regression coefficients B, shape (forest_type, covariate, parameter), in the current model.

    ``counts``: sites per forest type (count). Shared B is one (covariate, parameter) matrix repeated over the
    types (a Deterministic); otherwise B is per type.
    """
    n_types = len(counts)
    model = pm.modelcontext(None)
    J = len(model.coords["covariate"])
    full = ("forest_type", "covariate", "parameter")
    dims = ("covariate", "parameter") if shared else full
    # scales as float64 arrays: PyMC keeps a Python float that float32 represents exactly (0.5, 2.0) as a float32
    # constant, and log σ of the normal density is then rounded to single precision (~1e-9 per element)
    if shrinkage == "normal":  # B ~ N(0, beta_sd²): the prior of regression.RegressionPrior
        sd = np.float64(beta_sd)
        if not shared:
            return pm.Normal("beta", 0.0, sd, dims=full)
        b = pm.Normal("beta_shared", 0.0, sd, dims=dims)
    else:  # regularised horseshoe per parameter column (and type), non-centred: see HorseshoePrior
        column = dims[:-2] + ("parameter",)
        tau0 = horseshoe.global_scale(J, counts.sum() if shared else counts)
        tau0 = tau0 if shared else tau0[:, None]  # () or (forest_type, 1)
        eta = pm.Normal("beta_eta", 0.0, 1.0, dims=dims)
        lam = pm.HalfCauchy("beta_lambda", 1.0, dims=dims)
        tau_unit = pm.HalfCauchy("beta_tau_unit", 1.0, dims=column)
        half_df = np.float64(0.5 * horseshoe.slab_df)
        slab_unit = pm.InverseGamma("beta_slab_unit", alpha=half_df, beta=half_df, dims=column)
        tau = (tau0 * tau_unit)[..., None, :]  # covariate axis before parameter
        c2 = (np.float64(horseshoe.slab_scale) ** 2 * slab_unit)[..., None, :]
        lam_tilde2 = c2 * lam**2 / (c2 + tau**2 * lam**2)
        b = eta * tau * pt.sqrt(lam_tilde2)
        if not shared:
            return pm.Deterministic("beta", b, dims=full)
    return pm.Deterministic("beta", pt.broadcast_to(b[None], (n_types, J, NPAR)), dims=full)


# ------------------------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------------------------


def build_pooled_model(
    problem: CalibrationProblem, site_indices: Sequence[int] | None = None, *, gradient: bool = True
) -> pm.Model:
    """One θ shared by the given sites (a pooled forest type; one site is the single-site model).

    θ has the problem's box prior (uniform or log-uniform per parameter, as the emcee calibration).

    Args:
        problem: the calibration problem (–).
        site_indices: sites in the pool; default all (–).
        gradient: exact gradients for NUTS (True) or values only (False) (bool).

    Returns:
        ``pm.Model`` with free ``theta_unit`` (parameter), deterministic ``theta`` (parameter) (parameter
        units) and the potential ``log_likelihood``.
    """
    op = SiteLogLikelihoodOp(problem, site_indices, gradient=gradient)
    coords = _coords(problem, op.site_indices)
    with pm.Model(coords=coords) as model:
        v = pm.Uniform("theta_unit", 0.0, 1.0, dims="parameter")
        theta = pm.Deterministic("theta", from_unit(problem.prior, v), dims="parameter")
        thetas = pt.broadcast_to(theta[None, :], (op.n_sites, NPAR))
        pm.Potential("log_likelihood", site_log_likelihood_tensor(op, thetas).sum())
    model.bayes_vmimics_op = op
    return model


def build_single_site_model(problem: CalibrationProblem, site: int = 0, *, gradient: bool = True) -> pm.Model:
    """θ of one site (index ``site`` of ``problem.sites``) with the box prior; see :func:`build_pooled_model`."""
    return build_pooled_model(problem, [site], gradient=gradient)


def build_hierarchical_model(
    problem: CalibrationProblem,
    forest_types: Sequence[str],
    *,
    gradient: bool = True,
    mu_sd: float = 1.5,
    sigma_sd: float = 1.0,
    parametrization: str = "non_centred",
    covariates=None,
    covariate_names: Sequence[str] | None = None,
    shared_beta: bool = False,
    beta_sd: float = 0.5,
    shrinkage: str = "normal",
    horseshoe: HorseshoePrior = HorseshoePrior(),
) -> pm.Model:
    """Site-level θ drawn from forest-type populations in logit space of the prior box, optionally with
    covariates (the regression population).

    z_s = logit v_s ~ N(μ_{t(s)}, σ_{t(s)}²) per parameter, μ_t ~ N(0, mu_sd²), σ_t ~ HalfNormal(sigma_sd);
    θ_s = box(sigmoid(z_s)). "non_centred" (default) samples η_s with z_s = μ_t + σ_t ⊙ η_s, η_s ~ N(0, I);
    "centred" samples z_s itself. Non-centred suits weakly informed sites (it passes the synthetic smoke
    test); strongly informed sites (many layers with 10 % errors) favour the centred form, where the
    non-centred one ties every η_s to μ_t and σ_t through the data. Neither has converged on 21 real ENF
    sites in the runs measured so far (README).

    With ``covariates`` the population mean of site s is μ_{t(s)} + x_s B_{t(s)} (issue 20; the model of
    :mod:`.regression`, sampled here in one stage): z_sp ~ N(μ_tp + Σ_j x_sj B_tjp, σ_tp²), with B per forest
    type or, with ``shared_beta``, one B_jp for all types (μ_tp stays per type). Shrinkage of B: "normal",
    B ~ N(0, beta_sd²) (as :class:`~.regression.RegressionPrior`), or "horseshoe", a regularised horseshoe per
    parameter column over the covariates (:class:`HorseshoePrior`, Piironen & Vehtari 2017). Without
    covariates the model is the one without them, variable for variable.

    Args:
        problem: the calibration problem with all sites (–).
        forest_types: forest type of each site of ``problem.sites`` (–).
        gradient: exact gradients for NUTS (True) or values only (False) (bool).
        mu_sd: prior sd of the population location in logit units (–).
        sigma_sd: scale of the half-normal prior of the population spread in logit units (–).
        parametrization: "non_centred" (default) or "centred" (–).
        covariates: standardised covariates of the problem's sites: a
            :class:`~bayes_vmimics.covariates.CovariateDesign` of ``problem.site_ids`` (its ``X`` and
            ``columns``), a DataFrame, or an array (n_sites, J), rows in the order of ``problem.sites``; None
            for the population without covariates (standardised units).
        covariate_names: names of the J columns; default the design's or DataFrame's columns, else ``x0``,
            ``x1``, … as the two-stage sampler (–).
        shared_beta: one B for all forest types (bool).
        beta_sd: prior sd of B with ``shrinkage="normal"`` (logit units per standardised covariate unit).
        shrinkage: "normal" (default) or "horseshoe" (–).
        horseshoe: hyperparameters of the horseshoe (–).

    Returns:
        ``pm.Model`` with free ``mu`` (forest_type, parameter), ``sigma`` (forest_type, parameter) and ``z``
        (centred) or ``eta`` (non-centred) (site, parameter); deterministics ``theta_site`` (site, parameter)
        and ``theta_population``
        (forest_type, parameter) (parameter units; with covariates at x = 0, the type's average covariates for a
        design centred per type); potential ``log_likelihood``. With covariates also the
        data ``x_site`` (site, covariate) and ``beta`` (forest_type, covariate, parameter) (logit units per
        standardised covariate unit): a free variable (normal, per type) or a deterministic of
        ``beta_shared`` (covariate, parameter) (normal, shared) or of the horseshoe's ``beta_eta``,
        ``beta_lambda`` (as B), ``beta_tau_unit`` and ``beta_slab_unit`` (parameter, or forest_type and
        parameter).

    Raises:
        ValueError: a bad parametrization, shrinkage or scale; not one forest type per site; covariates without
            one row per site, with a non-finite value (naming site and covariate), of a design for other sites;
            a horseshoe p0 not below the number of covariates.
    """
    if parametrization not in ("centred", "non_centred"):
        raise ValueError(f"parametrization must be 'centred' or 'non_centred', got {parametrization!r}")
    if shrinkage not in SHRINKAGES:
        raise ValueError(f"shrinkage must be one of {list(SHRINKAGES)}, got {shrinkage!r}")
    if not beta_sd > 0:
        raise ValueError(f"beta_sd must be positive, got {beta_sd}")
    ft = [str(f) for f in forest_types]
    if len(ft) != len(problem.sites):
        raise ValueError(f"forest_types must give one type per site ({len(problem.sites)}), got {len(ft)}")
    types = sorted(set(ft))
    idx = np.array([types.index(f) for f in ft])
    op = SiteLogLikelihoodOp(problem, None, gradient=gradient)
    coords = {**_coords(problem, op.site_indices), "forest_type": types}
    X = cov_group = None
    if covariates is not None:
        from .regression import covariate_group

        X, names = _covariate_matrix(covariates, covariate_names, [str(s) for s in coords["site"]])
        design = covariates if hasattr(covariates, "scaler") and hasattr(covariates, "X") else None
        cov_group = covariate_group(coords["site"], [ft[i] for i in op.site_indices], names, X, design)
        coords["covariate"] = names
        if shrinkage == "horseshoe":
            horseshoe.global_scale(len(names), 1)  # p0 < J, before anything is built
    with pm.Model(coords=coords) as model:
        pm.Data("forest_type_index", idx, dims="site")
        mu = pm.Normal("mu", 0.0, mu_sd, dims=("forest_type", "parameter"))
        sigma = pm.HalfNormal("sigma", sigma_sd, dims=("forest_type", "parameter"))
        loc = mu[idx]
        if X is not None:
            x = pm.Data("x_site", X, dims=("site", "covariate"))
            counts = np.bincount(idx, minlength=len(types))
            beta = _beta_prior(shrinkage, bool(shared_beta), float(beta_sd), horseshoe, counts)
            loc = loc + (x[:, :, None] * beta[idx]).sum(axis=1)  # μ_t(s) + x_s B_t(s), (site, parameter)
        if parametrization == "centred":
            z = pm.Normal("z", loc, sigma[idx], dims=("site", "parameter"))
        else:
            eta = pm.Normal("eta", 0.0, 1.0, dims=("site", "parameter"))
            z = loc + sigma[idx] * eta
        theta = pm.Deterministic("theta_site", from_unit(problem.prior, pm.math.sigmoid(z)), dims=("site", "parameter"))
        pm.Deterministic(
            "theta_population", from_unit(problem.prior, pm.math.sigmoid(mu)), dims=("forest_type", "parameter")
        )
        pm.Potential("log_likelihood", site_log_likelihood_tensor(op, theta).sum())
    model.bayes_vmimics_op = op
    model.bayes_vmimics_parametrization = parametrization
    model.bayes_vmimics_covariates = cov_group
    return model


# ------------------------------------------------------------------------------------------------------------
# sampling and results
# ------------------------------------------------------------------------------------------------------------


def sample(
    model: pm.Model,
    *,
    sampler: str = "nuts",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    cores: int = 1,
    random_seed: int | None = 0,
    target_accept: float = 0.9,
    max_treedepth: int = 10,
    init: str | None = None,
    initvals: str | dict | list[dict] | None = None,
    progressbar: bool = False,
) -> xr.DataTree:
    """Sample a model of this module.

    Args:
        model: from :func:`build_pooled_model`, :func:`build_single_site_model` or
            :func:`build_hierarchical_model` (–).
        sampler: "nuts" (default; needs ``gradient=True``) or "demetropolisz" (gradient-free) (–).
        draws, tune, chains, cores: as ``pm.sample`` (count).
        random_seed: seed (–).
        target_accept: NUTS target acceptance (–).
        max_treedepth: NUTS maximum tree depth (count).
        init: NUTS initialisation and mass-matrix adaptation, as ``pm.sample`` ("adapt_diag",
            "adapt_full" with a dense mass matrix, with or without "jitter+"); default "adapt_diag" when
            ``initvals`` are given (their own dispersion replaces PyMC's ±1 jitter, which would throw the
            chains far out of the peaked likelihood), else "jitter+adapt_diag" (–).
        initvals: starting points: "map" (recommended on real data) starts each chain near the MAP
            (:func:`map_initial_values`: per-site MAPs for the hierarchical model, the pooled MAP otherwise);
            or a dict / list of per-chain dicts as ``pm.sample``; None starts from the model's initial point
            (the centre of the prior box) (–).
        progressbar: show PyMC's progress bar (bool).

    Returns:
        ``xarray.DataTree`` with posterior and sample_stats (PyMC 6).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
    op = getattr(model, "bayes_vmimics_op", None)
    if isinstance(initvals, str):
        if initvals != "map":
            raise ValueError(f"initvals must be 'map', a dict, a list of dicts or None, got {initvals!r}")
        initvals = map_initial_values(model, chains, seed=0 if random_seed is None else int(random_seed))
    if init is None:
        init = "jitter+adapt_diag" if initvals is None else "adapt_diag"
    common = dict(
        initvals=initvals,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        random_seed=random_seed,
        progressbar=progressbar,
        compute_convergence_checks=False,
    )
    with model:
        if sampler == "nuts":
            if op is not None and not op.gradient:
                raise ValueError("NUTS needs a model built with gradient=True; use sampler='demetropolisz'")
            dt = pm.sample(init=init, nuts={"target_accept": target_accept, "max_treedepth": max_treedepth}, **common)
        else:
            dt = pm.sample(step=pm.DEMetropolisZ(), **common)
    cov = getattr(model, "bayes_vmimics_covariates", None)
    if cov is not None:  # as the two-stage regression: validate standardises held-out sites with its scaler
        dt["covariates"] = cov
    return dt


def map_initial_values(model: pm.Model, n_chains: int, *, seed: int = 0, jitter: float = 0.1) -> list[dict]:
    """Per-chain starting points near the MAP of a model of this module (see :mod:`.initial` for why).

    Hierarchical model: per-site MAPs (:func:`~bayes_vmimics.inference.initial.site_map_estimates`) give μ_t,
    σ_t and η_s (:func:`~bayes_vmimics.inference.initial.hierarchical_initial_values`). Pooled and
    single-site models: the pooled MAP, jittered by ``jitter`` logit units per chain.

    Args:
        model: from a builder of this module (–).
        n_chains: chains (count).
        seed: seed of the optimiser starts and the jitter (integer).
        jitter: per-chain dispersion (standard-normal units of η, or logit units) (–).

    Returns:
        One dict of initial values per chain, for :func:`sample` / ``pm.sample(initvals=...)``.
    """
    from .initial import hierarchical_initial_values, pooled_map_estimate, site_map_estimates

    op = getattr(model, "bayes_vmimics_op", None)
    if op is None:
        raise ValueError("the model was not built by bayes_vmimics.inference.pymc_models")
    problem = op.problem
    if "forest_type_index" in model.named_vars:
        z = site_map_estimates(problem, seed=seed)
        idx = np.asarray(model["forest_type_index"].get_value(), dtype=int)
        types = list(model.coords["forest_type"])
        centred = getattr(model, "bayes_vmimics_parametrization", "non_centred") == "centred"
        return hierarchical_initial_values(
            z, [types[i] for i in idx], n_chains, seed=seed, jitter=jitter, centred=centred
        )
    z = pooled_map_estimate(problem, op.site_indices, seed=seed)
    rng = np.random.default_rng(seed)
    return [{"theta_unit": _sigmoid(z + jitter * rng.standard_normal(NPAR))} for _ in range(int(n_chains))]


def posterior_convergence(dt: xr.DataTree, var_names: Sequence[str] | None = None) -> dict:
    """R-hat, bulk and tail ESS per variable element, and the number of divergences.

    Args:
        dt: sampling result (–).
        var_names: variables to summarise; default the ``theta``-like deterministics, ``mu``, ``sigma`` and, for a
            regression population, ``beta`` present in the posterior (–).

    Returns:
        dict with ``summary`` (a pandas DataFrame with r_hat, ess_bulk, ess_tail, …), ``max_r_hat``,
        ``min_ess_bulk``, ``min_ess_tail`` and ``divergences`` (count; 0 for samplers without them).
    """
    import arviz as az

    post = dt["posterior"]
    if var_names is None:
        var_names = [v for v in ("theta", "theta_population", "theta_site", "mu", "sigma", "beta") if v in post]
    # one az.summary per set of dimensions: arviz 1.3 mislabels the rows of variables with different dimensions
    # summarised together
    groups: dict[tuple, list[str]] = {}
    for v in var_names:
        groups.setdefault(tuple(post[v].dims), []).append(v)
    summ = pd.concat([az.summary(dt, var_names=names, round_to="none") for names in groups.values()])
    div = 0
    if "sample_stats" in dt.children and "diverging" in dt["sample_stats"]:
        div = int(dt["sample_stats"]["diverging"].sum())
    return {
        "summary": summ,
        "max_r_hat": float(np.nanmax(summ["r_hat"].to_numpy(dtype=float))),
        "min_ess_bulk": float(np.nanmin(summ["ess_bulk"].to_numpy(dtype=float))),
        "min_ess_tail": float(np.nanmin(summ["ess_tail"].to_numpy(dtype=float))),
        "divergences": div,
    }


def save_results(dt: xr.DataTree, path) -> None:
    """Write a sampling result to netCDF (``xarray.DataTree.to_netcdf``; open with ``xr.open_datatree``)."""
    dt.to_netcdf(path)


# ------------------------------------------------------------------------------------------------------------
# posterior predictive for new sites
# ------------------------------------------------------------------------------------------------------------


def predict_new_site(
    dt: xr.DataTree,
    forest_type: str,
    site: SiteModel,
    top_cm,
    bottom_cm,
    prior: BoxPrior,
    rng: np.random.Generator,
    *,
    soc_rel_error: float = 0.1,
    max_draws: int | None = None,
    covariates=None,
) -> xr.Dataset:
    """Posterior predictive SOC profile of a new site of ``forest_type`` (site parameters drawn from the
    population, then the steady state solved at each draw).

    On a result with covariates (``beta`` in the posterior), the site's parameters are drawn from the regression
    population at ``covariates`` (:func:`~bayes_vmimics.inference.regression.predict_new_site_regression`);
    they must be given, so that a site is never silently predicted at its type's average covariates.

    Args:
        dt: result of sampling :func:`build_hierarchical_model` (–).
        forest_type: a forest type of the model (–).
        site: the new site's :class:`~bayes_vmimics.model.SiteModel` (constant or climatology forcing) (–).
        top_cm, bottom_cm: predicted depth intervals, shape (n_obs,) (cm).
        prior: the model's box prior (``problem.prior``) (–).
        rng: random generator (–).
        soc_rel_error: relative observation error added to ``soc_observed`` (fraction).
        max_draws: use at most this many posterior draws (evenly thinned) (count).
        covariates: for a result with covariates, the site's standardised covariates, shape (J,), in the
            columns of ``dt.posterior.covariate`` (standardise with the result's scaler,
            ``CovariateScaler.from_json(dt["covariates"].attrs["scaler"])``) (standardised units).

    Returns:
        Dataset over (sample, parameter / interval): ``theta`` (parameter units), ``soc`` (mg C cm⁻³, model),
        ``soc_observed`` (mg C cm⁻³, with noise); NaN where the steady state does not converge.
    """
    if "beta" in dt["posterior"].data_vars:
        if covariates is None:
            raise ValueError(
                "the result is a regression population (beta in its posterior): give the new site's standardised "
                "covariates (covariates=...; x = 0 is its forest type's average site)"
            )
        from .regression import predict_new_site_regression

        z = predict_new_site_regression(dt, np.asarray(covariates, dtype=float), rng, forest_type=forest_type)
        th = theta_from_logit(prior, z.transpose("chain", "draw", "parameter").to_numpy()).reshape(-1, NPAR)
    elif covariates is not None:
        raise ValueError("covariates were given but the result has no regression coefficients (no beta)")
    else:
        th = sample_new_site_parameters(dt, forest_type, prior, rng).stack(sample=("chain", "draw"))
        th = th.transpose("sample", "parameter").to_numpy()
    if max_draws is not None and th.shape[0] > max_draws:
        th = th[np.linspace(0, th.shape[0] - 1, max_draws).round().astype(int)]
    bottom = np.asarray(bottom_cm, dtype=float)
    if required_grid(site.grid, bottom, extend=False) is not site.grid:  # pragma: no cover - raises instead
        raise ValueError("the site's grid must reach the deepest interval")
    op = ObservationOperator(site.grid, top_cm, bottom)
    soc = np.full((th.shape[0], op.n_obs), np.nan)
    for i, t in enumerate(th):
        ss = solve_site(site, t, on_failure="ignore")
        if ss.converged:
            soc[i] = op.soc_mg_cm3(ss.pools)
    noisy = soc * (1.0 + soc_rel_error * rng.standard_normal(soc.shape))
    return xr.Dataset(
        {
            "theta": (("sample", "parameter"), th),
            "soc": (("sample", "interval"), soc),
            "soc_observed": (("sample", "interval"), noisy),
        },
        coords={
            "parameter": list(PARAMETER_NAMES),
            "top_cm": ("interval", op.top_cm),
            "bottom_cm": ("interval", op.bottom_cm),
        },
        attrs={"forest_type": forest_type, "soc_pools": str(SOC_POOLS), "soc_units": "mg C cm-3"},
    )


__all__ = [
    "SAMPLERS",
    "SHRINKAGES",
    "HorseshoePrior",
    "SiteLogLikelihoodOp",
    "build_hierarchical_model",
    "build_pooled_model",
    "build_single_site_model",
    "from_unit",
    "map_initial_values",
    "posterior_convergence",
    "predict_new_site",
    "sample",
    "sample_new_site_parameters",
    "save_results",
    "site_log_likelihood_tensor",
]
