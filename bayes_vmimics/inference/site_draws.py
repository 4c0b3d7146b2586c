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
def _draw_row(logw, shift, u, w):  # pragma: no cover - compiled
    """Inverse-CDF draw of k with P(k) ∝ exp(logw[k] − shift) for the uniform u, and the Kish effective size
    (Σw)²/Σw² of those weights; ``w`` is scratch of logw's size (may be logw itself)."""
    K = logw.size
    total = 0.0
    total2 = 0.0
    for k in range(K):
        x = np.exp(logw[k] - shift)
        w[k] = x
        total += x
        total2 += x * x
    target = u * total
    run = 0.0
    pick = K - 1
    for k in range(K):
        run += w[k]
        if run >= target:
            pick = k
            break
    return pick, total * total / total2


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
        k_out[s], ess_out[s] = _draw_row(logw, best, u[s], logw)


_NEGLIGIBLE = -40.0  # log-weights this far below a site's largest add < K·e⁻⁴⁰ (relative) to its sum: skipped


@numba.njit(cache=True)
def _log_sum(v, best):  # pragma: no cover - compiled
    total = 0.0
    for k in range(v.size):
        x = v[k] - best
        if x > _NEGLIGIBLE:
            total += np.exp(x)
    return best + np.log(total)


@numba.njit(cache=True)
def site_log_weights(ZT, lp1, mean, sd, logw, lse):  # pragma: no cover - compiled
    """logw[s, k] = Σ_p log N(ZT[s, p, k] | mean[s, p], sd[s, p]²) − log p₁(draw k) (without the 2π terms) and
    lse[s] = log Σ_k exp logw[s, k]: the log-weights of site s's stage-1 draws and the log of its marginal
    likelihood of the population (up to a constant). ZT: the draws as (S, 7, K), contiguous per parameter."""
    S, P, K = ZT.shape
    for s in range(S):
        norm = 0.0
        for p in range(P):
            norm += np.log(sd[s, p])
        for k in range(K):
            logw[s, k] = -lp1[s, k] - norm
        for p in range(P):
            m, inv = mean[s, p], 1.0 / sd[s, p]
            col = ZT[s, p]
            for k in range(K):
                d = (col[k] - m) * inv
                logw[s, k] -= 0.5 * d * d
        lse[s] = _log_sum(logw[s], np.max(logw[s]))


@numba.njit(cache=True)
def column_log_weights(ZT, logw, p, mean_old, sd_old, mean_new, sd_new, logw_new, lse_new):  # pragma: no cover
    """The log-weights and site log-marginals after parameter ``p``'s population mean and sd at every site
    change from (mean_old[s], sd_old[s]) to (mean_new[s], sd_new[s]); the other parameters' terms stay."""
    S, P, K = ZT.shape
    for s in range(S):
        shift = np.log(sd_old[s]) - np.log(sd_new[s])
        m0, i0, m1, i1 = mean_old[s], 1.0 / sd_old[s], mean_new[s], 1.0 / sd_new[s]
        col, old, new = ZT[s, p], logw[s], logw_new[s]
        best = -np.inf
        for k in range(K):
            d0 = (col[k] - m0) * i0
            d1 = (col[k] - m1) * i1
            v = old[k] + 0.5 * (d0 * d0 - d1 * d1) + shift
            new[k] = v
            best = max(best, v)
        lse_new[s] = _log_sum(new, best)


@numba.njit(cache=True)
def draw_from_log_weights(logw, lse, u, k_out, ess_out):  # pragma: no cover - compiled
    """For each site s, draw k with P(k) = exp(logw[s, k] − lse[s]) (inverse CDF with the uniform u[s]); also the
    Kish effective size (Σw)²/Σw² of those weights."""
    S, K = logw.shape
    w = np.empty(K)
    for s in range(S):
        k_out[s], ess_out[s] = _draw_row(logw[s], lse[s], u[s], w)


class CollapsedMoves:
    """Metropolis moves of each population mean μ_tp and log sd log σ_tp with every site's parameters z_s
    integrated out over its stage-1 draws, followed by the exact draw of z_s (a partially collapsed Gibbs
    sampler; van Dyk & Park 2008, *JASA* 103:790).

    Why: the centred Gibbs sweep (z | μ, σ, then μ, σ | z) mixes slowly where a site's draws pin z_s to a few
    stage-1 draws (small weight ESS) or where σ is small: μ then moves by ~σ/√n per sweep and σ follows the
    z it was given. Here the moves see the marginal Π_s Σ_k N(Z_sk | m_s, σ²)/p₁(Z_sk), so μ and σ can move by
    their posterior width in one step. The target is unchanged (the draw of z from its conditional that
    follows restores the joint), so every stage-2 test against the exact Gaussian posterior still applies.

    Args:
        Z: stage-1 draws (S, K, 7) (logit units).
        lp1: log stage-1 prior of each draw (S, K) (log-density units).
        idx: population (forest type) index of each site (S,) (–).
        n_types: number of populations (count).
        mu_sd: prior sd of μ_tp, N(0, mu_sd²) (logit units).
        sigma_sd: half-normal scale of σ_tp (logit units).
    """

    def __init__(self, Z, lp1, idx, n_types: int, mu_sd: float, sigma_sd: float) -> None:
        S, K, P = Z.shape
        self.ZT = np.ascontiguousarray(np.transpose(Z, (0, 2, 1)))
        self.lp1, self.idx, self.n_types = np.ascontiguousarray(lp1), np.asarray(idx), int(n_types)
        self.mu_sd, self.sigma_sd = float(mu_sd), float(sigma_sd)
        self.logw, self.lse = np.empty((S, K)), np.empty(S)
        self._logw_new, self._lse_new = np.empty((S, K)), np.empty(S)
        self.step_mu = np.full((n_types, P), 0.3)
        self.step_ls = np.full((n_types, P), 0.3)
        self._acc = np.zeros((2, n_types, P))
        self._n = 0
        self._chol = None

    def _coefficient_proposal(self, X, shared: bool, beta_sd: float) -> np.ndarray:
        """Cholesky factors of the joint proposal of the regression coefficients: the covariance
        (DᵀD + prior precision)⁻¹, the conditional posterior's shape at σ = 1, with D = [1, x_s] over the sites
        of each type, (T, 1 + J, 1 + J); shared B: D = [e_t(s), x_s] over all sites, (T + J, T + J)."""
        J = X.shape[1]
        if shared:
            D = np.concatenate([np.eye(self.n_types)[self.idx], X], axis=1)
            prec = D.T @ D + np.diag(np.concatenate([np.full(self.n_types, self.mu_sd**-2), np.full(J, beta_sd**-2)]))
            return np.linalg.cholesky(np.linalg.inv(prec))
        out = np.empty((self.n_types, 1 + J, 1 + J))
        for t in range(self.n_types):
            D = np.concatenate([np.ones((int(np.sum(self.idx == t)), 1)), X[self.idx == t]], axis=1)
            prec = D.T @ D + np.diag(np.concatenate([[self.mu_sd**-2], np.full(J, beta_sd**-2)]))
            out[t] = np.linalg.cholesky(np.linalg.inv(prec))
        return out

    def _try(self, p, mean, sd_site, mean_new, sd_new, log_prior_ratio, rng, groups=None, n_groups=None):
        """MH on the marginal: accept per population (or per ``groups`` of sites) and keep the accepted sites'
        new log-weights; returns the accepted populations (groups)."""
        groups = self.idx if groups is None else groups
        n_groups = self.n_types if n_groups is None else n_groups
        column_log_weights(self.ZT, self.logw, p, mean, sd_site, mean_new, sd_new, self._logw_new, self._lse_new)
        dl = np.bincount(groups, self._lse_new - self.lse, minlength=n_groups)
        ok = np.log(rng.random(n_groups)) < dl + log_prior_ratio
        moved = ok[groups]
        self.logw[moved] = self._logw_new[moved]
        self.lse[moved] = self._lse_new[moved]
        return ok

    def sweep(
        self, mean, mu, sd, rng, *, adapt: bool = False, X=None, beta=None, shared: bool = False, beta_sd: float = 1.0
    ):
        """Per population and parameter: one move of μ_tp (with covariates, of μ_tp and B_t·p jointly, shaped by
        the design), one move of log σ_tp; then the draw of each z_s.

        Args:
            mean: each site's population mean μ_t(s)p (+ x_s B_t(s) with covariates), (S, 7) (logit units).
            mu: μ (T, 7); sd: σ (T, 7) (logit units).
            rng: random generator (–).
            adapt: tune the step sizes towards 35 % acceptance (tuning sweeps only) (bool).
            X: standardised covariates (S, J), or None (standardised units).
            beta: B (T, J, 7), identical over types when ``shared`` (logit units per standardised unit).
            shared: one B for all populations: the coefficients of a parameter move together, accepted on all
                sites at once (bool).
            beta_sd: prior sd of each coefficient, N(0, beta_sd²) (logit units per standardised unit).

        Returns:
            ``(mu, sd, k, ess)``, or ``(mu, sd, beta, k, ess)`` with covariates: the new μ, σ (and B), each
            site's drawn stage-1 draw index and the Kish effective size of its weights.
        """
        idx = self.idx
        mu, sd, mean = mu.copy(), sd.copy(), mean.copy()
        T, P = mu.shape
        if X is not None:
            beta = np.array(beta, dtype=float)
            if self._chol is None:
                self._chol = self._coefficient_proposal(np.asarray(X, dtype=float), shared, beta_sd)
            J = X.shape[1]
            design = np.concatenate([np.ones((X.shape[0], 1)), X], axis=1)  # [1, x_s]
            prior_sd = np.concatenate([[self.mu_sd], np.full(J, beta_sd)])
            single = np.zeros(X.shape[0], dtype=np.int64)
        site_log_weights(self.ZT, self.lp1, mean, sd[idx], self.logw, self.lse)
        for p in range(P):
            if X is None:  # μ_tp, one population at a time
                d = self.step_mu[:, p] * rng.standard_normal(T)
                mu_new = mu[:, p] + d
                lpr = -0.5 * (mu_new**2 - mu[:, p] ** 2) / self.mu_sd**2
                col = mean[:, p] + d[idx]
                ok = self._try(p, mean[:, p], sd[idx, p], col, sd[idx, p], lpr, rng)
                mu[ok, p] = mu_new[ok]
            elif not shared:  # (μ_tp, B_t1p … B_tJp) jointly, shaped by the design of type t
                c = np.concatenate([mu[:, p, None], beta[:, :, p]], axis=1)  # (T, 1 + J)
                d = self.step_mu[:, p, None] * np.einsum("tkl,tl->tk", self._chol, rng.standard_normal(c.shape))
                lpr = -0.5 * np.sum(((c + d) ** 2 - c**2) / prior_sd**2, axis=1)
                col = mean[:, p] + np.sum(design * d[idx], axis=1)
                ok = self._try(p, mean[:, p], sd[idx, p], col, sd[idx, p], lpr, rng)
                mu[ok, p] += d[ok, 0]
                beta[ok, :, p] += d[ok, 1:]
            else:  # (μ_1p … μ_Tp, B_1p … B_Jp) jointly, accepted on all sites together
                d = self.step_mu[0, p] * (self._chol @ rng.standard_normal(T + J))
                c = np.concatenate([mu[:, p], beta[0, :, p]])
                psd = np.concatenate([np.full(T, self.mu_sd), np.full(J, beta_sd)])
                lpr = np.array([-0.5 * np.sum(((c + d) ** 2 - c**2) / psd**2)])
                col = mean[:, p] + d[:T][idx] + X @ d[T:]
                ok = np.repeat(self._try(p, mean[:, p], sd[idx, p], col, sd[idx, p], lpr, rng, single, 1), T)
                if ok[0]:
                    mu[:, p] += d[:T]
                    beta[:, :, p] += d[T:]
            mean[ok[idx], p] = col[ok[idx]]
            self._acc[0, :, p] += ok
            ls = np.log(sd[:, p])
            ls_new = ls + self.step_ls[:, p] * rng.standard_normal(T)
            sd_new = np.exp(ls_new)
            lpr = -0.5 * (sd_new**2 - sd[:, p] ** 2) / self.sigma_sd**2 + (ls_new - ls)
            ok = self._try(p, mean[:, p], sd[idx, p], mean[:, p], sd_new[idx], lpr, rng)
            sd[ok, p] = sd_new[ok]
            self._acc[1, :, p] += ok
        self._n += 1
        if adapt and self._n >= 50:
            rate = self._acc / self._n
            self.step_mu = np.clip(self.step_mu * np.exp(rate[0] - 0.35), 0.01, 10.0)
            self.step_ls = np.clip(self.step_ls * np.exp(rate[1] - 0.35), 0.01, 3.0)
            self._acc[:] = 0.0
            self._n = 0
        S = mean.shape[0]
        k, ess = np.empty(S, dtype=np.int64), np.empty(S)
        draw_from_log_weights(self.logw, self.lse, rng.random(S), k, ess)
        if X is not None:
            return mu, sd, beta, k, ess
        return mu, sd, k, ess


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
    "CollapsedMoves",
    "SitePosteriorSamples",
    "column_log_weights",
    "draw_from_log_weights",
    "gibbs_site_draws",
    "logistic_log_density",
    "normal_log_kernel",
    "posterior_dataset",
    "site_log_weights",
    "stage1_dataset",
]
