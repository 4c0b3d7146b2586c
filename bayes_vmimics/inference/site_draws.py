"""Stage-1 draws of the two-stage hierarchical sampler and what every stage 2 shares: the site-draw kernel
and the DataTree groups of a result.

Below :mod:`.two_stage` (the population without covariates) and :mod:`.regression` (the regression
population), which both import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import xarray as xr

from ..parameters import PARAMETER_NAMES
from ..priors import theta_from_logit


def logistic_log_density(z) -> np.ndarray:
    """Log-density in z = logit v of v ~ Uniform(0, 1) per parameter, summed over the last axis:
    Σ log v(1 − v) (the box prior of a site seen in logit coordinates; log-density units)."""
    z = np.asarray(z, dtype=float)
    return np.sum(-np.logaddexp(0.0, z) - np.logaddexp(0.0, -z), axis=-1)


def normal_log_kernel(z, loc, scale) -> np.ndarray:
    """Σ −½ ((z − loc)/scale)² over the last axis: the log-density of the refined stage-1 prior N(loc, scale²)
    up to its normalising constant (log-density units)."""
    d = (z - loc) / scale
    return np.sum(-0.5 * d * d, axis=-1)


@dataclass
class SitePosteriorSamples:
    """Stage-1 result: draws of each site's posterior under the stage-1 prior, in logit coordinates.

    Attributes:
        site_ids: site identifiers (–).
        z: draws, shape (n_sites, n_draws, 7) (logit units of the unit position on the prior box).
        tau: integrated autocorrelation time per site and parameter of the kept steps (steps).
        acceptance: mean acceptance fraction per site (–).
        n_walkers, n_steps, discard, thin: the emcee settings (count).
        prior_loc, prior_scale: the stage-1 prior: None for the box prior (logistic in z), else a normal
            N(prior_loc, prior_scale²) per site and parameter in z, shape (n_sites, 7) (logit units; see
            :func:`refined_stage1_prior`).
        log_prob: the log-probability (stage-1 prior + log-likelihood, in θ) that the stage-1 chain computed
            for each draw, shape (n_sites, n_draws); NaN where unknown (checkpoints from before it was kept)
            (log-probability units). :func:`check_stage1_branches` compares it with cold spin-ups.
    """

    site_ids: list[str]
    z: np.ndarray
    tau: np.ndarray
    acceptance: np.ndarray
    n_walkers: int
    n_steps: int
    discard: int
    thin: int
    prior_loc: np.ndarray | None = None
    prior_scale: np.ndarray | None = None
    log_prob: np.ndarray | None = None

    def log_stage1_prior(self) -> np.ndarray:
        """log p₁(z) of every draw, shape (n_sites, n_draws): the density in z that stage 1 used as prior
        (normalising constants dropped; log-density units)."""
        if self.prior_loc is None:
            return logistic_log_density(self.z)
        scale = self.prior_scale[:, None, :]
        return normal_log_kernel(self.z, self.prior_loc[:, None, :], scale) - np.sum(np.log(scale), axis=-1)

    @property
    def n_effective(self) -> np.ndarray:
        """Rough independent draws per site: walkers × kept steps / max τ (count)."""
        kept = self.n_steps - self.discard
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.n_walkers * kept / np.nanmax(self.tau, axis=1)

    @property
    def tau_reliable(self) -> np.ndarray:
        """Per site: kept steps ≥ 50 τ (emcee's rule for a trustworthy τ) (bool)."""
        return (self.n_steps - self.discard) >= 50.0 * np.nanmax(self.tau, axis=1)

    def subset(self, indices: Sequence[int]) -> SitePosteriorSamples:
        """The same result for a subset of the sites (e.g. one forest type)."""
        idx = [int(i) for i in indices]
        return SitePosteriorSamples(
            [self.site_ids[i] for i in idx],
            self.z[idx],
            self.tau[idx],
            self.acceptance[idx],
            self.n_walkers,
            self.n_steps,
            self.discard,
            self.thin,
            None if self.prior_loc is None else self.prior_loc[idx],
            None if self.prior_scale is None else self.prior_scale[idx],
            None if self.log_prob is None else self.log_prob[idx],
        )


@numba.njit(cache=True)
def gibbs_site_draws(Z, lp1, mu_s, sd_s, u, k_out, ess_out):  # pragma: no cover - compiled
    """For each site s, draw k from P(k) ∝ N(Z[s, k] | μ_s, σ_s²) / p₁(Z[s, k]) (inverse CDF with the uniform
    u[s]); also the Kish effective size (Σw)²/Σw² of those weights."""
    S, K, P = Z.shape
    logw = np.empty(K)
    for s in range(S):
        best = -np.inf
        for k in range(K):
            acc = -lp1[s, k]
            for p in range(P):
                d = (Z[s, k, p] - mu_s[s, p]) / sd_s[s, p]
                acc -= 0.5 * d * d
            logw[k] = acc
            if acc > best:
                best = acc
        total = 0.0
        total2 = 0.0
        for k in range(K):
            w = np.exp(logw[k] - best)
            logw[k] = w
            total += w
            total2 += w * w
        ess_out[s] = total * total / total2
        target = u[s] * total
        run = 0.0
        pick = K - 1
        for k in range(K):
            run += logw[k]
            if run >= target:
                pick = k
                break
        k_out[s] = pick


def posterior_dataset(mu, sd, zs, types, site_ids, prior, *, site_types=None, **attrs) -> xr.Dataset:
    """The posterior group of a hierarchical result from μ, σ (chain, draw, type, 7) and z (chain, draw, site,
    7) in logit units: the variables and coordinates of :mod:`.pymc_models`, plus ``site_forest_type`` (site,),
    each site's forest type, when ``site_types`` (one type per site) is given. (The name is not
    ``forest_type``: that is the dimension of the populations.)"""
    chains, n_draw = mu.shape[:2]
    coords = {
        "chain": np.arange(chains),
        "draw": np.arange(n_draw),
        "forest_type": list(types),
        "site": list(site_ids),
        "parameter": list(PARAMETER_NAMES),
    }
    if site_types is not None:
        site_types = [str(t) for t in site_types]
        if len(site_types) != len(coords["site"]) or not set(site_types) <= set(map(str, types)):
            raise ValueError(
                f"site_types must give one of the forest types {list(types)} per site ({len(coords['site'])}), "
                f"got {site_types}"
            )
        coords["site_forest_type"] = ("site", site_types)
    return xr.Dataset(
        {
            "mu": (("chain", "draw", "forest_type", "parameter"), mu),
            "sigma": (("chain", "draw", "forest_type", "parameter"), sd),
            "theta_population": (("chain", "draw", "forest_type", "parameter"), theta_from_logit(prior, mu)),
            "theta_site": (("chain", "draw", "site", "parameter"), theta_from_logit(prior, zs)),
        },
        coords=coords,
        attrs=attrs,
    )


def stage1_dataset(samples: SitePosteriorSamples) -> xr.Dataset:
    """The ``stage1`` group: τ, effective draws and acceptance per site, and the emcee settings."""
    return xr.Dataset(
        {
            "tau": (("site", "parameter"), samples.tau),
            "n_effective": (("site",), samples.n_effective),
            "acceptance": (("site",), samples.acceptance),
        },
        coords={"site": list(samples.site_ids), "parameter": list(PARAMETER_NAMES)},
        attrs={
            "n_walkers": samples.n_walkers,
            "n_steps": samples.n_steps,
            "discard": samples.discard,
            "thin": samples.thin,
            "stage1_prior": "box" if samples.prior_loc is None else "normal (refined)",
        },
    )


__all__ = [
    "SitePosteriorSamples",
    "gibbs_site_draws",
    "logistic_log_density",
    "normal_log_kernel",
    "posterior_dataset",
    "stage1_dataset",
]
