"""emcee's hierarchical variant: the hierarchical model of
:func:`~bayes_vmimics.inference.pymc_models.build_hierarchical_model` (its centred form) as an emcee
log-probability.

The same density as the PyMC model (tested equal): μ_t ~ N(0, mu_sd²), σ_t ~ HalfNormal(sigma_sd) sampled as
log σ_t (with its Jacobian), z_s ~ N(μ_t(s), σ_t(s)²) per parameter, θ_s = box(sigmoid z_s), plus the sites'
log-likelihoods. The state vector is (μ (T, 7), log σ (T, 7), z (S, 7)) flattened: 14 T + 7 S dimensions.

When to use which. The affine-invariant ensemble needs at least twice as many walkers as dimensions and
its mixing degrades with dimension (Goodman & Weare 2010; Huijser et al. 2022): fine for one forest type of a
handful of sites (3 sites: 35 dimensions), hopeless for 20 sites (154 dimensions). There use NUTS
(``pymc_models``), whose cost per effective draw grows far more slowly with dimension. This variant also
needs no gradients (climatology sites, paper-mode ¹⁴C).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ..gradients import site_log_likelihood
from ..likelihood import CalibrationProblem
from ..parameters import PARAMETER_NAMES
from .emcee_sampler import EnsembleRun, ensemble_seeds, run_ensemble
from .initial import hierarchical_initial_values, site_map_estimates, theta_from_logit

NPAR = len(PARAMETER_NAMES)
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


class HierarchicalLogProbability:
    """Log posterior density of the centred hierarchical model for emcee (picklable).

    Args:
        problem: the calibration problem with all sites (–).
        forest_types: forest type per site of ``problem.sites`` (–).
        mu_sd: prior sd of μ_t (logit units).
        sigma_sd: scale of the half-normal prior of σ_t (logit units).
    """

    def __init__(
        self, problem: CalibrationProblem, forest_types: Sequence[str], *, mu_sd: float = 1.5, sigma_sd: float = 1.0
    ):
        ft = [str(f) for f in forest_types]
        if len(ft) != len(problem.sites):
            raise ValueError(f"forest_types must give one type per site ({len(problem.sites)}), got {len(ft)}")
        self.problem = problem
        self.types = sorted(set(ft))
        self.forest_types = ft
        self.index = np.array([self.types.index(f) for f in ft])
        self.mu_sd = float(mu_sd)
        self.sigma_sd = float(sigma_sd)
        self.n_types = len(self.types)
        self.n_sites = len(ft)
        self.ndim = NPAR * (2 * self.n_types + self.n_sites)

    def unpack(self, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(μ (T, 7), σ (T, 7), z (S, 7)) from a state vector or an array of them (..., n_dim) (logit units)."""
        x = np.asarray(x, dtype=float)
        k = NPAR * self.n_types
        lead = x.shape[:-1]
        mu = x[..., :k].reshape(*lead, self.n_types, NPAR)
        sigma = np.exp(x[..., k : 2 * k].reshape(*lead, self.n_types, NPAR))
        z = x[..., 2 * k :].reshape(*lead, self.n_sites, NPAR)
        return mu, sigma, z

    def pack(self, mu, sigma, z) -> np.ndarray:
        """Inverse of :meth:`unpack` for one state."""
        return np.concatenate([np.ravel(mu), np.log(np.ravel(sigma)), np.ravel(z)])

    def log_prior(self, x) -> float:
        """Log density of (μ, log σ, z) under the hyperpriors and the population distributions."""
        mu, sigma, z = self.unpack(x)
        log_sigma = np.log(sigma)
        lp = np.sum(-0.5 * (mu / self.mu_sd) ** 2 - np.log(self.mu_sd) - _LOG_SQRT_2PI)
        # half-normal density of σ (2 × normal) times the Jacobian dσ/dlog σ = σ
        lp += np.sum(np.log(2.0) - 0.5 * (sigma / self.sigma_sd) ** 2 - np.log(self.sigma_sd) - _LOG_SQRT_2PI)
        lp += np.sum(log_sigma)
        m, s = mu[self.index], sigma[self.index]
        lp += np.sum(-0.5 * ((z - m) / s) ** 2 - np.log(s) - _LOG_SQRT_2PI)
        return float(lp)

    def __call__(self, x) -> float:
        """Log posterior (up to a constant) of a state vector (n_dim,); −inf where a site fails."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.ndim,) or not np.all(np.isfinite(x)):
            return -np.inf
        lp = self.log_prior(x)
        if not np.isfinite(lp):
            return -np.inf
        _, _, z = self.unpack(x)
        theta = theta_from_logit(self.problem.prior, z)
        for s in range(self.n_sites):
            ll = site_log_likelihood(self.problem, s, theta[s])
            if not np.isfinite(ll):
                return -np.inf
            lp += ll
        return float(lp)


def run_hierarchical_ensembles(
    problem: CalibrationProblem,
    forest_types: Sequence[str],
    *,
    n_steps: int,
    n_walkers: int | None = None,
    n_ensembles: int = 2,
    seed: int = 0,
    jitter: float = 0.1,
    backend_path: str | Path | None = None,
    n_processes: int = 1,
    progress: bool = False,
) -> tuple[HierarchicalLogProbability, list[EnsembleRun]]:
    """Sample the hierarchical model with emcee ensembles started near the per-site MAPs.

    Args:
        problem: the calibration problem (–).
        forest_types: forest type per site (–).
        n_steps: steps per ensemble (count).
        n_walkers: walkers per ensemble; default the even number ≥ 2 n_dim + 2 (count).
        n_ensembles: independent ensembles (count).
        seed: master seed (integer).
        jitter: dispersion of the walkers around the MAP start (see
            :func:`~bayes_vmimics.inference.initial.hierarchical_initial_values`) (–).
        backend_path: HDF5 file (one group per ensemble; resumable), or None (path).
        n_processes: worker processes (count).
        progress: progress bar (bool).

    Returns:
        (the log-probability object, one :class:`~bayes_vmimics.inference.EnsembleRun` per ensemble).
    """
    logp = HierarchicalLogProbability(problem, forest_types)
    if n_walkers is None:
        n_walkers = 2 * logp.ndim + 2
    n_walkers = int(n_walkers)
    if n_walkers < 2 * logp.ndim or n_walkers % 2:
        raise ValueError(f"n_walkers must be even and ≥ 2 × n_dim = {2 * logp.ndim}, got {n_walkers}")
    z = site_map_estimates(problem, seed=seed)
    runs = []
    for k, s in enumerate(ensemble_seeds(seed, n_ensembles)):
        init = hierarchical_initial_values(z, forest_types, n_walkers, seed=s, jitter=jitter, centred=True)
        p0 = np.array([logp.pack(d["mu"], d["sigma"], d["z"]) for d in init])
        runs.append(
            run_ensemble(
                logp,
                None,
                n_walkers=n_walkers,
                n_steps=n_steps,
                seed=s,
                p0=p0,
                backend_path=backend_path,
                name=f"ensemble_{k}",
                n_processes=n_processes,
                progress=progress,
            )
        )
    return logp, runs


def hierarchical_datatree(
    logp: HierarchicalLogProbability, runs: list[EnsembleRun], *, discard: int, thin: int = 1, max_draws: int = 1000
) -> xr.DataTree:
    """Posterior of emcee hierarchical ensembles in the conventions of the PyMC hierarchical model.

    ``posterior``: ``mu``, ``sigma`` (chain, draw, forest_type, parameter) (logit units), ``z`` and
    ``theta_site`` (chain, draw, site, parameter), ``theta_population`` (chain, draw, forest_type, parameter)
    (parameter units); chain = ensemble, draw = thinned (step, walker) pairs as in :mod:`bayes_vmimics.results`.
    ``sample_stats``: ``lp`` (chain, draw). So :func:`~bayes_vmimics.inference.pymc_models.posterior_convergence`,
    :func:`~bayes_vmimics.inference.pymc_models.predict_new_site` and the diagnostics work on it unchanged.

    Args:
        logp: from :func:`run_hierarchical_ensembles` (–).
        runs: the ensembles (–).
        discard: burn-in steps dropped (count).
        thin: keep every ``thin``-th step (count).
        max_draws: at most this many draws per ensemble (count).
    """
    from .emcee_sampler import select_draws

    steps, walkers, pos = select_draws(runs, discard=discard, thin=thin, max_draws=max_draws)
    mu, sigma, z = logp.unpack(pos)
    prior = logp.problem.prior
    coords = {
        "chain": np.arange(len(runs)),
        "draw": np.arange(pos.shape[1]),
        "forest_type": logp.types,
        "site": list(logp.problem.site_ids),
        "parameter": list(PARAMETER_NAMES),
        "step": ("draw", steps),
        "walker": ("draw", walkers),
    }
    ft_dims = ("chain", "draw", "forest_type", "parameter")
    site_dims = ("chain", "draw", "site", "parameter")
    post = xr.Dataset(
        {
            "mu": (ft_dims, mu),
            "sigma": (ft_dims, sigma),
            "z": (site_dims, z),
            "theta_site": (site_dims, theta_from_logit(prior, z)),
            "theta_population": (ft_dims, theta_from_logit(prior, mu)),
        },
        coords=coords,
        attrs={"sampler": "emcee (hierarchical, centred)"},
    )
    lp = np.stack([r.log_prob[steps, walkers] for r in runs])
    stats = xr.Dataset({"lp": (("chain", "draw"), lp)}, coords={"chain": coords["chain"], "draw": coords["draw"]})
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


__all__ = ["HierarchicalLogProbability", "hierarchical_datatree", "run_hierarchical_ensembles"]
