"""Stage 2 that evaluates the model: Metropolis-within-Gibbs on the full hierarchical posterior.

Why. :func:`~.two_stage.sample_population` never solves the model: it represents each site's likelihood by
its stage-1 draws and reweights them. When a forest type's population is narrow compared with what one
profile pins down (σ_t of a few tenths of a logit unit; many sites), few stage-1 draws fall under it, the
weights degenerate and that stage 2 neither mixes nor stays unbiased (README, "Where the two-stage sampler
falls short"). This stage 2 uses the stage-1 draws only to *propose*; every acceptance evaluates the site's
real log-likelihood, so the chain targets the exact hierarchical posterior however short or poor stage 1
was. One site evaluation costs ~0.8 ms cold (~0.25 ms warm), so a sweep over 40 sites takes ~0.2 s.
Exact is not the same as fast: on the hard cases it mixes no better than the reweighting stage 2 (README,
"Stage 2 with model solves").

Model (as :func:`~.pymc_models.build_hierarchical_model` and :mod:`.two_stage`): z_s = logit of site s's
unit position on the prior box, z_s ~ N(μ_t, σ_t²) per parameter, μ_t ~ N(0, mu_sd²), σ_t ~
HalfNormal(sigma_sd), data_s | z_s by the site log-likelihood.

One sweep (Tierney 1994, *Ann. Stat.* 22:1701, for mixing MH kernels; all moves leave the posterior
invariant):

1. **Each z_s** | μ, σ, data_s: two Metropolis–Hastings moves.
   (a) independence proposal from the site's stage-1 draws reweighted to the population and jittered along
   their local ridge direction (:class:`_StageOneMixture`, a Gaussian mixture with an exact density): the
   continuous, exact counterpart of the reweighting stage 2's conditional draw. On the 35 real ENF sites
   it accepts 6–7 % inside a chain (median over sites; 17 % at the reweighting posterior's population)
   where a single multivariate t fitted to the draws accepted 2 %;
   (b) random walk with covariance c_s² P_s⁻¹, where P_s = A_s + diag σ_t⁻² is the precision of the
   Gaussian product of the site's stage-1 fit (precision A_s of its stage-1 draws) and the population, and
   c_s is adapted per site during tuning (towards 30 % acceptance).
2. **μ_t, σ_t | z** (centred): μ_t is conjugate normal; log σ_t takes random-walk steps (no model solves).
3. **Joint population moves that carry the sites along** (per type, twice for μ and once for σ per sweep):
   (a) partially non-centred μ-move (Papaspiliopoulos, Roberts & Sköld 2007, *Stat. Sci.* 22:59): μ_t → μ_t
   + δ and every z_s → z_s + M_s δ with M_s = (A_s + Λ)⁻¹Λ, Λ = diag σ_t⁻², so each site moves along the
   directions its profile leaves free and stays put across the ones it pins; δ is drawn with the shape of
   the Gaussian-approximate posterior covariance of μ_t; (b) non-centred σ-move: log σ_t → log σ_t + h with
   ε_s = (z_s − μ_t)/σ_t held fixed. Both accept on the summed log-likelihood of the type's sites. With
   step 2 this interweaves centred and non-centred updates (Yu & Meng 2011, *J. Comput. Graph. Stat.*
   20:531): the centred step mixes where the sites are informative, the others where they are not (the
   funnel of a narrow population over weakly identified parameters).

One sweep costs 5 S site evaluations. Draws whose steady state fails to converge have
log-likelihood −inf and are rejected (counted in ``failed_proposals``). Chains run in parallel (process pool
or any ``map``, e.g. Dask) and are checkpointed every ``checkpoint_every`` sweeps: a rerun with the same
settings continues where a chain stopped. Without warm starts the resumed chain is identical to an
uninterrupted one; with them, the solver starts from other nearby states after a resume, which changes the
log-likelihoods within the solver's tolerance.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from numba import njit

from ..likelihood import CalibrationProblem
from ..parameters import PARAMETER_NAMES
from ..sensitivity import site_log_likelihood
from .initial import theta_from_logit
from .two_stage import (
    SitePosteriorSamples,
    _centred_population_step,
    _population_start,
    _posterior_dataset,
    _stage1_dataset,
    _type_index,
)

NPAR = len(PARAMETER_NAMES)
# the independence proposal (_StageOneMixture): at most this many stage-1 draws per site as its components,
# each with the covariance of its this-many nearest draws, scaled by the bandwidth² (measured on the 35 real ENF
# sites, offline at the reweighting posterior's population: median acceptance 17 % at 1000 / 80 / 1.0, 16 % at
# 1000 / 30 / 1.0, 11–13 % with one global bandwidth; 2 % for a single multivariate t)
_MIX_COMPONENTS = 1000
_MIX_NEIGHBOURS = 80
_MIX_BANDWIDTH = 1.0

__all__ = ["ProblemSiteLogLikelihood", "sample_population_mwg"]


class ProblemSiteLogLikelihood:
    """(site index, z) ↦ log-likelihood of that site at θ = box(sigmoid(z)) (picklable; −inf where the
    steady state fails).

    Args:
        problem: the calibration problem (–).
        warm_start: solve from nearby converged states (~3× cheaper) instead of the problem's cold start.
            Off by default, whatever the problem says: with warm starts the likelihood of a z depends on
            which states were solved before, and a solve that lands on another equilibrium can leave a chain
            holding a log-likelihood no later solve reproduces, so it never moves again (bool).
    """

    def __init__(self, problem: CalibrationProblem, warm_start: bool = False) -> None:
        self.problem = copy.copy(problem)
        self.problem.warm_start = bool(warm_start)

    def __call__(self, s: int, z) -> float:
        return site_log_likelihood(self.problem, s, theta_from_logit(self.problem.prior, z))


def _gaussian_fit(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Covariance and precision (S, 7, 7) of each site's stage-1 draws (logit units); the covariance gets a
    1e-6 ridge so that a site whose draws collapsed in one direction still has an invertible fit."""
    d = Z - Z.mean(axis=1, keepdims=True)
    cov = np.einsum("skp,skq->spq", d, d) / max(Z.shape[1] - 1, 1) + 1e-6 * np.eye(NPAR)
    return cov, np.linalg.inv(cov)


# -- compiled kernels of the stage-1 mixture (7×7 Cholesky factors per component; loops, no allocation) --------
@njit(cache=True)
def _chol(A, L):
    """Lower Cholesky factor of the small SPD matrix A into L; False if A is not positive definite."""
    n = A.shape[0]
    for j in range(n):
        s = A[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return False
        L[j, j] = np.sqrt(s)
        for i in range(j + 1, n):
            t = A[i, j]
            for k in range(j):
                t -= L[i, k] * L[j, k]
            L[i, j] = t / L[j, j]
        for i in range(j):
            L[i, j] = 0.0
    return True


@njit(cache=True)
def _mixture_population(X, logc, H, Hinv, HinvX, mu, sd, cut, Lp, m, log_pi, half_log_det_prec):
    """Per site s and component i: log π_i ∝ log c_i + log N(x_i | μ_s, H_i + diag sd_s²), normalised over i
    and set to −inf below max − ``cut``; for the kept components the Cholesky factor Lp_i of the precision
    P_i = H_i⁻¹ + diag sd_s⁻², the mean m_i = P_i⁻¹ (H_i⁻¹ x_i + μ_s / sd_s²) and ½ log det P_i."""
    S, M, d = X.shape
    A = np.empty((d, d))
    L = np.empty((d, d))
    r = np.empty(d)
    for s in range(S):
        top = -np.inf
        for i in range(M):
            log_pi[s, i] = -np.inf
            if logc[s, i] == -np.inf:
                continue
            for p in range(d):
                for q in range(d):
                    A[p, q] = H[s, i, p, q]
                A[p, p] += sd[s, p] * sd[s, p]
            if not _chol(A, L):
                continue
            val = logc[s, i]
            for p in range(d):  # forward substitution: r = L⁻¹ (x_i − μ)
                t = X[s, i, p] - mu[s, p]
                for q in range(p):
                    t -= L[p, q] * r[q]
                r[p] = t / L[p, p]
                val -= 0.5 * r[p] * r[p] + np.log(L[p, p])
            log_pi[s, i] = val
            top = max(top, val)
        total = 0.0
        for i in range(M):
            if log_pi[s, i] < top - cut:
                log_pi[s, i] = -np.inf
            else:
                total += np.exp(log_pi[s, i] - top)
        norm = top + np.log(total)
        for i in range(M):
            if log_pi[s, i] == -np.inf:
                continue
            log_pi[s, i] -= norm
            for p in range(d):
                for q in range(d):
                    A[p, q] = Hinv[s, i, p, q]
                A[p, p] += 1.0 / (sd[s, p] * sd[s, p])
            if not _chol(A, Lp[s, i]):
                log_pi[s, i] = -np.inf  # cannot happen for SPD H_i; dropped rather than trusted
                continue
            ld = 0.0
            for p in range(d):  # solve Lp Lpᵀ m = b
                t = HinvX[s, i, p] + mu[s, p] / (sd[s, p] * sd[s, p])
                for q in range(p):
                    t -= Lp[s, i, p, q] * r[q]
                r[p] = t / Lp[s, i, p, p]
                ld += np.log(Lp[s, i, p, p])
            for p in range(d - 1, -1, -1):
                t = r[p]
                for q in range(p + 1, d):
                    t -= Lp[s, i, q, p] * m[s, i, q]
                m[s, i, p] = t / Lp[s, i, p, p]
            half_log_det_prec[s, i] = ld


@njit(cache=True)
def _mixture_draw(Lp, m, comp, eps, out):
    """out[s] = m_i + Lp_i⁻ᵀ eps[s] for the chosen component i = comp[s]: a draw from N(m_i, P_i⁻¹)."""
    S, _, d = m.shape
    for s in range(S):
        i = comp[s]
        for p in range(d - 1, -1, -1):
            t = eps[s, p]
            for q in range(p + 1, d):
                t -= Lp[s, i, q, p] * (out[s, q] - m[s, i, q])
            out[s, p] = m[s, i, p] + t / Lp[s, i, p, p]


@njit(cache=True)
def _mixture_log_density(Lp, m, log_pi, half_log_det_prec, z, out):
    """out[s] = log Σ_i π_i N(z[s] | m_i, P_i⁻¹), without the (2π)^(−d/2) shared by all components."""
    S, M, d = m.shape
    vals = np.empty(M)
    for s in range(S):
        top = -np.inf
        for i in range(M):
            vals[i] = -np.inf
            if log_pi[s, i] == -np.inf:
                continue
            q2 = 0.0
            for q in range(d):  # u = Lpᵀ (z − m)
                t = 0.0
                for p in range(q, d):
                    t += Lp[s, i, p, q] * (z[s, p] - m[s, i, p])
                q2 += t * t
            vals[i] = log_pi[s, i] + half_log_det_prec[s, i] - 0.5 * q2
            top = max(top, vals[i])
        total = 0.0
        for i in range(M):
            if vals[i] > -np.inf:
                total += np.exp(vals[i] - top)
        out[s] = top + np.log(total) if total > 0.0 else -np.inf


class _StageOneMixture:
    """The independence proposal of the site moves: each site's stage-1 draws, reweighted to the population
    and jittered, as a Gaussian mixture whose density is known exactly.

    Stage 1 drew x_i from p₁(z | data_s) ∝ L_s(z) p₁(z). The site's conditional in stage 2 is
    ∝ L_s(z) N(z | μ, Σ) = p₁(z | data_s) N(z | μ, Σ) / p₁(z). Replacing p₁(z | data_s) by the kernel estimate
    Σ_i c_i N(z | x_i, H_i) and p₁(z) by p₁(x_i) inside each kernel gives the proposal

        q(z) ∝ Σ_i c_i N(z | x_i, H_i) N(z | μ, Σ) / p₁(x_i) = Σ_i π_i N(z | m_i, C_i),

    C_i = (H_i⁻¹ + Σ⁻¹)⁻¹, m_i = C_i (H_i⁻¹ x_i + Σ⁻¹ μ), π_i ∝ c_i N(x_i | μ, H_i + Σ) / p₁(x_i): the
    continuous version of the reweighting stage 2's conditional draw. c_i counts repeats of a draw (emcee keeps
    rejected positions). H_i is h² times the covariance of x_i's k nearest draws (in the metric of the site's
    whole stage-1 covariance), so each kernel lies along the local direction of a curved ridge; a global
    bandwidth would be as wide as the ridge is long. The Metropolis–Hastings ratio uses q exactly, so the
    quality of the kernel estimate changes the acceptance rate, never the target.
    """

    def __init__(self, Z: np.ndarray, log_p1: np.ndarray, cov: np.ndarray, n_components: int, k: int, h: float) -> None:
        """Z: stage-1 draws (S, N, 7) and log_p1 their stage-1 prior log-densities (S, N); cov: each site's
        stage-1 covariance (S, 7, 7) (:func:`_gaussian_fit`); at most n_components draws per site, k
        neighbours, bandwidth h (logit units)."""
        S, N, d = Z.shape
        rng = np.random.default_rng(20_211)  # the same components in every chain and after a resume
        parts = []
        for s in range(S):
            pick = rng.choice(N, n_components, replace=False) if N > n_components else np.arange(N)
            X, first, counts = np.unique(Z[s, pick], axis=0, return_index=True, return_counts=True)
            W = np.linalg.inv(np.linalg.cholesky(cov[s]))
            Y = (X - X.mean(axis=0)) @ W.T
            kk = min(k, X.shape[0] - 1)
            if kk >= 1:
                d2 = np.sum((Y[:, None, :] - Y[None, :, :]) ** 2, axis=-1)
                nn = np.argpartition(d2, kk, axis=1)[:, : kk + 1]  # itself and its kk nearest
                D = X[nn] - X[nn].mean(axis=1, keepdims=True)
                H = np.einsum("nkp,nkq->npq", D, D) / kk
            else:
                H = np.zeros((X.shape[0], d, d))
            H = h * h * (H + 1e-4 * cov[s][None])  # the ridge keeps kernels of (near-)coincident draws proper
            parts.append((X, np.log(counts) - log_p1[s, pick][first], H))
        M = max(x.shape[0] for x, _, _ in parts)
        self.X = np.zeros((S, M, d))
        self.logc = np.full((S, M), -np.inf)  # padding components have weight 0
        self.H = np.broadcast_to(np.eye(d), (S, M, d, d)).copy()
        for s, (X, logc, H) in enumerate(parts):
            n = X.shape[0]
            self.X[s, :n], self.logc[s, :n], self.H[s, :n] = X, logc, H
        self.Hinv = np.linalg.inv(self.H)
        self.HinvX = np.einsum("smpq,smq->smp", self.Hinv, self.X)
        self.Lp = np.zeros((S, M, d, d))  # per population (set_population): Cholesky factors of the precisions,
        self.m = np.zeros((S, M, d))  # means, log weights and ½ log det of the precisions of the components
        self.log_pi = np.full((S, M), -np.inf)
        self.half_log_det_prec = np.zeros((S, M))

    def set_population(self, mu: np.ndarray, sd: np.ndarray) -> None:
        """The mixture for each site's population N(mu[s], diag sd[s]²) (logit units, shape (S, 7)).
        Components with weight below e⁻³⁰ of the largest are dropped (from both draws and density, so q stays
        exact)."""
        _mixture_population(
            self.X,
            self.logc,
            self.H,
            self.Hinv,
            self.HinvX,
            np.ascontiguousarray(mu, dtype=float),
            np.ascontiguousarray(sd, dtype=float),
            30.0,
            self.Lp,
            self.m,
            self.log_pi,
            self.half_log_det_prec,
        )

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One draw per site from the current mixture (S, 7)."""
        S, M, d = self.m.shape
        comp = np.argmax(self.log_pi + rng.gumbel(size=(S, M)), axis=1)
        out = np.empty((S, d))
        _mixture_draw(self.Lp, self.m, comp, rng.standard_normal((S, d)), out)
        return out

    def log_density(self, z: np.ndarray) -> np.ndarray:
        """log q(z[s]) per site, up to a constant shared by all z (S,)."""
        out = np.empty(z.shape[0])
        _mixture_log_density(self.Lp, self.m, self.log_pi, self.half_log_det_prec, np.ascontiguousarray(z), out)
        return out


class _Chain:
    """The state of one chain and its sweep (see the module docstring). All arrays in logit units."""

    def __init__(self, loglik, mix, fit, Z, idx, n_types, cfg, seed) -> None:
        self.loglik, self.mix, self.idx, self.cfg = loglik, mix, idx, cfg
        self.fit_cov, self.fit_prec = fit
        self.n_types = n_types
        S = self.fit_prec.shape[0]
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        # start: per site a stage-1 draw with a finite likelihood; population moments of those
        self.z = np.empty((S, NPAR))
        self.ll = np.empty(S)
        for s in range(S):
            for k in rng.permutation(Z.shape[1])[:50]:
                val = loglik(s, Z[s, k])
                if np.isfinite(val):
                    self.z[s], self.ll[s] = Z[s, k], val
                    break
            else:
                raise RuntimeError(f"site {s}: none of 50 stage-1 draws has a converging steady state")
        self.mu, self.sd = _population_start(self.z, idx, n_types)
        self.counts = np.bincount(idx, minlength=n_types).astype(float)[:, None]
        self.rw_scale = np.full(S, 2.38 / np.sqrt(NPAR))
        self.sigma_step = np.full((n_types, NPAR), 0.5)
        # joint population moves, [μ, log σ] per type: step scales; Cholesky factor of the σ-move's shape
        self.nc_scale = np.full((2, n_types), 2.38 / np.sqrt(NPAR))
        self.sigma_chol = np.zeros((n_types, NPAR, NPAR))
        self._sigma_shapes()
        # acceptance counters: (since last adaptation, kept sweeps)
        self.acc_ind = np.zeros((2, S))
        self.acc_rw = np.zeros((2, S))
        self.acc_nc = np.zeros((2, 2, n_types))
        self.n_nc = np.zeros((2, 2))  # sweeps with μ-moves / σ-moves: (window, kept)
        self.acc_sigma = np.zeros((n_types, NPAR))
        self.n_window = 0
        self.n_sigma_window = 0
        self.failed = 0
        self.it = 0
        n_keep = (cfg["n_iter"] - cfg["n_tune"]) // cfg["thin"]
        self.out_mu = np.empty((n_keep, n_types, NPAR))
        self.out_sd = np.empty((n_keep, n_types, NPAR))
        self.out_z = np.empty((n_keep, S, NPAR))

    # -- log-densities ------------------------------------------------------------------------------------
    def _eval(self, s: int, z) -> float:
        val = self.loglik(s, z)
        if not np.isfinite(val):
            self.failed += 1
            return -np.inf
        return val

    def _log_pop(self, z, mu, sd) -> np.ndarray:
        d = (z - mu) / sd
        return np.sum(-0.5 * d * d, axis=-1)

    # -- moves ------------------------------------------------------------------------------------------------
    def _accept_each(self, zp, log_rest) -> np.ndarray:
        """Metropolis–Hastings test of every site's proposal zp[s] on its log-likelihood plus ``log_rest[s]``
        (the rest of the log acceptance ratio); moves the accepted sites. Returns 1 where accepted, else 0."""
        logu = np.log(self.rng.random(zp.shape[0]))
        accepted = np.zeros(zp.shape[0])
        for s in range(zp.shape[0]):
            llp = self._eval(s, zp[s])
            if logu[s] < llp - self.ll[s] + log_rest[s]:
                self.z[s], self.ll[s] = zp[s], llp
                accepted[s] = 1.0
        return accepted

    def _site_moves(self, tuning: bool) -> None:
        rng, idx = self.rng, self.idx
        S = self.z.shape[0]
        mu_s, sd_s = self.mu[idx], self.sd[idx]
        k = 0 if tuning else 1
        # (a) independence proposal: the stage-1 mixture for the current population
        self.mix.set_population(mu_s, sd_s)
        zp = self.mix.sample(rng)
        log_q = self.mix.log_density
        base = self._log_pop(zp, mu_s, sd_s) - log_q(zp) - (self._log_pop(self.z, mu_s, sd_s) - log_q(self.z))
        self.acc_ind[k] += self._accept_each(zp, base)
        # (b) random walk shaped by the Gaussian product of the site's stage-1 fit and the population
        P = self.fit_prec + np.einsum("sp,pq->spq", 1.0 / sd_s**2, np.eye(NPAR))
        L = np.linalg.cholesky(np.linalg.inv(P))
        zp = self.z + self.rw_scale[:, None] * np.einsum("spq,sq->sp", L, rng.standard_normal((S, NPAR)))
        base = self._log_pop(zp, mu_s, sd_s) - self._log_pop(self.z, mu_s, sd_s)
        self.acc_rw[k] += self._accept_each(zp, base)

    def _centred_population(self, tuning: bool) -> None:
        cfg = self.cfg
        self.mu, self.sd, acc = _centred_population_step(
            self.z, self.idx, self.counts, self.sd, self.sigma_step, cfg["mu_sd"], cfg["sigma_sd"], self.rng
        )
        if tuning:
            self.acc_sigma += acc
            self.n_sigma_window += 3

    def _sigma_shapes(self) -> None:
        """Proposal shape of the non-centred log σ-move, per type: the inverse of Σ_s D_s A_s D_s with D_s =
        diag(z_s − μ_t) at the current state (z_s − μ_t scales by e^h ≈ 1 + h, so Σ log L changes by
        ≈ −½ hᵀ(Σ D_s A_s D_s)h), plus the identity. Recomputed during tuning only."""
        for t in range(self.n_types):
            sites = np.flatnonzero(self.idx == t)
            D = self.z[sites] - self.mu[t]
            H = np.einsum("sp,spq,sq->pq", D, self.fit_prec[sites], D) + np.eye(NPAR)
            self.sigma_chol[t] = np.linalg.cholesky(np.linalg.inv(H))

    def _partially_noncentred_map(self, t: int, sites: np.ndarray):
        """For a μ-move of type t at the current σ_t: M_s = (A_s + Λ)⁻¹ Λ, Λ = diag σ_t⁻², and the Cholesky
        factor of the Gaussian-approximate posterior covariance of μ_t, (Σ_s (A_s⁻¹ + Λ⁻¹)⁻¹ + I/mu_sd²)⁻¹.

        M_s is how the conditional mean of z_s given μ_t moves with μ_t: shifting μ_t by δ and every z_s by
        M_s δ keeps z_s on its own likelihood ridge to first order (M_s ≈ I along the directions the profile
        leaves free, ≈ 0 across the ones it pins); the partially non-centred parametrisation of
        Papaspiliopoulos, Roberts & Sköld (2007, *Stat. Sci.* 22:59)."""
        lam = 1.0 / self.sd[t] ** 2
        A = self.fit_prec[sites]
        M = np.linalg.inv(A + np.einsum("p,pq->pq", lam, np.eye(NPAR))[None]) * lam[None, None, :]
        marg = np.linalg.inv(self.fit_cov[sites] + np.diag(1.0 / lam)[None]).sum(axis=0)
        H = marg + np.eye(NPAR) / self.cfg["mu_sd"] ** 2
        return M, np.linalg.cholesky(np.linalg.inv(H))

    def _noncentred_population(self, tuning: bool) -> None:
        rng, idx = self.rng, self.idx
        mu_sd, sigma_sd = self.cfg["mu_sd"], self.cfg["sigma_sd"]
        k = 0 if tuning else 1
        for which in (0, 0, 1):  # two partially non-centred μ-moves, one non-centred log σ-move, per type
            self.n_nc[k, which] += 1
            for t in range(self.n_types):
                sites = np.flatnonzero(idx == t)
                mu, sd = self.mu[t], self.sd[t]
                z = self.z[sites]
                if which == 0:
                    M, chol = self._partially_noncentred_map(t, sites)
                    step = self.nc_scale[0, t] * chol @ rng.standard_normal(NPAR)
                    mup, sdp = mu + step, sd
                    znew = z + np.einsum("spq,q->sp", M, step)
                    log_rest = (
                        -0.5 * np.sum(mup**2 - mu**2) / mu_sd**2
                        + self._log_pop(znew, mup, sd).sum()
                        - self._log_pop(z, mu, sd).sum()
                    )
                else:
                    step = self.nc_scale[1, t] * self.sigma_chol[t] @ rng.standard_normal(NPAR)
                    mup, sdp = mu, sd * np.exp(step)
                    znew = mu + sdp * (z - mu) / sd
                    log_rest = -0.5 * np.sum(sdp**2 - sd**2) / sigma_sd**2 + np.sum(step)
                logu = np.log(rng.random())
                llp = np.empty(sites.size)
                for j, s in enumerate(sites):
                    llp[j] = self._eval(s, znew[j])
                    if llp[j] == -np.inf:
                        break
                else:
                    if logu < llp.sum() - self.ll[sites].sum() + log_rest:
                        self.mu[t], self.sd[t] = mup, sdp
                        self.z[sites], self.ll[sites] = znew, llp
                        self.acc_nc[k, which, t] += 1

    def _adapt(self) -> None:
        """Every 50 tuning sweeps: scales towards their target acceptance (30 % for the site random walks,
        25 % for the joint population moves, 40 % for the one-dimensional σ steps), and the σ-move's shape at
        the current state."""
        self.n_window += 1
        if self.n_window < 50:
            return
        n = self.n_window
        self.rw_scale = np.clip(self.rw_scale * np.exp(self.acc_rw[0] / n - 0.3), 0.01, 5.0)
        for which in range(2):
            if self.n_nc[0, which]:
                rate = self.acc_nc[0, which] / self.n_nc[0, which]
                self.nc_scale[which] = np.clip(self.nc_scale[which] * np.exp(rate - 0.25), 1e-3, 10.0)
        if self.n_sigma_window:
            rate = self.acc_sigma / self.n_sigma_window
            self.sigma_step = np.clip(self.sigma_step * np.exp(rate - 0.4), 0.02, 3.0)
        self._sigma_shapes()
        self.acc_rw[0] = self.acc_ind[0] = 0.0
        self.acc_nc[0] = 0.0
        self.n_nc[0] = 0.0
        self.acc_sigma[:] = 0.0
        self.n_window = self.n_sigma_window = 0

    def sweep(self) -> None:
        cfg = self.cfg
        tuning = self.it < cfg["n_tune"]
        self._site_moves(tuning)
        self._centred_population(tuning)
        self._noncentred_population(tuning)
        if tuning:
            self._adapt()
        else:
            j = self.it - cfg["n_tune"]
            if j % cfg["thin"] == 0 and (i := j // cfg["thin"]) < self.out_mu.shape[0]:
                self.out_mu[i], self.out_sd[i], self.out_z[i] = self.mu, self.sd, self.z
        self.it += 1

    def result(self) -> dict:
        n_kept = max(self.cfg["n_iter"] - self.cfg["n_tune"], 1)
        return {
            "mu": self.out_mu,
            "sd": self.out_sd,
            "z": self.out_z,
            "acc_independence": self.acc_ind[1] / n_kept,
            "acc_random_walk": self.acc_rw[1] / n_kept,
            "acc_noncentred_mu": self.acc_nc[1, 0] / max(self.n_nc[1, 0], 1),
            "acc_noncentred_sigma": self.acc_nc[1, 1] / max(self.n_nc[1, 1], 1),
            "failed_proposals": self.failed,
        }


def _run_chain(task) -> dict:
    """Run (or resume) one chain; checkpoint its whole state every ``checkpoint_every`` sweeps."""
    loglik, fit, Z, log_p1, idx, n_types, cfg, seed, path, bar = task
    if isinstance(loglik, bytes):
        loglik = pickle.loads(loglik)
    # rebuilt rather than saved: deterministic, and tens of MB
    mix = _StageOneMixture(Z, log_p1, fit[0], cfg["mix_components"], cfg["mix_neighbours"], cfg["mix_bandwidth"])
    chain = None
    if path is not None and path.exists():
        with path.open("rb") as f:
            chain = pickle.load(f)
        chain.loglik, chain.mix = loglik, mix
    if chain is None:
        chain = _Chain(loglik, mix, fit, Z, idx, n_types, cfg, seed)
    every = cfg["checkpoint_every"]
    pbar = None
    if bar:
        from ..progress import progress_bar

        pbar = progress_bar(total=cfg["n_iter"], initial=chain.it, desc="stage 2 (sweeps)")
    while chain.it < cfg["n_iter"]:
        chain.sweep()
        if pbar is not None:
            pbar.update()
        if path is not None and (chain.it % every == 0 or chain.it == cfg["n_iter"]):
            # the likelihood (the problem) and the proposal mixture are not saved
            chain.loglik = chain.mix = None
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as f:
                pickle.dump(chain, f)
            tmp.replace(path)
            chain.loglik, chain.mix = loglik, mix
    if pbar is not None:
        pbar.close()
    return chain.result()


def _chain_key(loglik_bytes: bytes, samples: SitePosteriorSamples, types, cfg, seed) -> str:
    h = hashlib.sha256()
    h.update(loglik_bytes)
    h.update(np.ascontiguousarray(samples.z).tobytes())
    h.update(json.dumps([list(types), sorted(cfg.items()), int(seed)]).encode())
    return h.hexdigest()[:20]


def sample_population_mwg(
    samples: SitePosteriorSamples,
    forest_types: Sequence[str],
    problem: CalibrationProblem | None = None,
    *,
    loglik: Callable[[int, np.ndarray], float] | None = None,
    prior=None,
    draws: int = 4_000,
    tune: int = 1_000,
    chains: int = 4,
    thin: int = 2,
    mu_sd: float = 1.5,
    sigma_sd: float = 1.0,
    seed: int = 0,
    n_processes: int = 1,
    map_fn: Callable | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 250,
    warm_start: bool = False,
    progress: bool = False,
) -> xr.DataTree:
    """Stage 2 with model solves: Metropolis-within-Gibbs on the exact hierarchical posterior (module
    docstring), proposals shaped by the stage-1 draws.

    Args:
        samples: stage-1 result (:func:`~.two_stage.site_posterior_samples`); its draws only shape the
            proposals, so a short stage 1 (a few thousand steps) suffices (–).
        forest_types: forest type of each site of ``samples`` (–).
        problem: the calibration problem of stage 1 (its sites in the order of ``samples``) (–).
        loglik: instead of ``problem``, any picklable ``(site index, z) -> log-likelihood`` (logit units in,
            log-likelihood units out; −inf where the model fails); then ``prior`` is needed (–).
        prior: the box prior; default ``problem.prior`` (–).
        draws: kept sweeps per chain before thinning (count).
        tune: tuning sweeps per chain, discarded; proposal scales adapt during these only (count).
        chains: independent chains, for R-hat (count).
        thin: keep every ``thin``-th sweep (count).
        mu_sd: prior sd of μ_t (logit units); as :func:`~.pymc_models.build_hierarchical_model`.
        sigma_sd: scale of the half-normal prior of σ_t (logit units).
        seed: seed; each chain gets its own stream (integer).
        n_processes: chains run in this many processes (count; 1 = serial).
        map_fn: instead of ``n_processes``, any ``map(f, tasks) -> list`` over chains, e.g. Dask:
            ``lambda f, xs: client.gather(client.map(f, xs))`` (callable).
        checkpoint_dir: folder for one file per chain, rewritten every ``checkpoint_every`` sweeps; a rerun
            with the same inputs resumes each chain where it stopped (path).
        checkpoint_every: sweeps between checkpoints (count).
        warm_start: warm-started solves in stage 2 (:class:`ProblemSiteLogLikelihood`; default off even
            when the problem has them on: measured on 35 real ENF sites, one chain of four stopped moving) (bool).
        progress: serial runs: a progress bar over each chain's sweeps; parallel runs: over chains (bool).

    Returns:
        ``xarray.DataTree`` with the groups of :func:`~.two_stage.sample_population` (``posterior``: ``mu``,
        ``sigma``, ``theta_population``, ``theta_site``; ``stage1``), and ``stage2_diagnostics``: per chain
        and site ``acceptance_independence`` and ``acceptance_random_walk`` (–), per chain, forest type and
        parameter ``acceptance_noncentred_mu`` and ``acceptance_noncentred_sigma`` (–), per chain
        ``failed_proposals`` (count of proposals whose steady state failed).
    """
    from ..progress import progress_bar

    Z = np.asarray(samples.z, dtype=float)
    S = Z.shape[0]
    types, idx = _type_index(forest_types, S, mu_sd, sigma_sd)
    if (problem is None) == (loglik is None):
        raise ValueError("give exactly one of problem and loglik")
    if problem is not None:
        if len(problem.sites) != S or list(problem.site_ids) != list(samples.site_ids):
            raise ValueError("problem and samples must hold the same sites in the same order")
        loglik = ProblemSiteLogLikelihood(problem, warm_start=warm_start)
        prior = problem.prior if prior is None else prior
    if prior is None:
        raise ValueError("prior is needed with loglik")
    if draws < thin or thin < 1 or tune < 100 or chains < 1:
        raise ValueError(f"need draws ≥ thin ≥ 1, tune ≥ 100, chains ≥ 1; got {draws=}, {thin=}, {tune=}, {chains=}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be ≥ 1, got {checkpoint_every}")
    fit = _gaussian_fit(Z)
    log_p1 = samples.log_stage1_prior()
    cfg = dict(
        n_iter=tune + draws,
        n_tune=tune,
        thin=thin,
        mu_sd=float(mu_sd),
        sigma_sd=float(sigma_sd),
        checkpoint_every=int(checkpoint_every),
        mix_components=_MIX_COMPONENTS,
        mix_neighbours=_MIX_NEIGHBOURS,
        mix_bandwidth=_MIX_BANDWIDTH,
    )
    seeds = [int(ss.generate_state(1)[0]) for ss in np.random.SeedSequence(seed).spawn(chains)]
    ll_bytes = pickle.dumps(loglik)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    paths: list = [None] * chains
    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
        key = _chain_key(ll_bytes, samples, [types[i] for i in idx], cfg, seed)
        paths = [ckpt / f"chain{c}_{key}.pkl" for c in range(chains)]
    parallel = map_fn is not None or (n_processes > 1 and chains > 1)
    tasks = [
        (
            ll_bytes if parallel else loglik,
            fit,
            Z,
            log_p1,
            idx,
            len(types),
            cfg,
            seeds[c],
            paths[c],
            progress and not parallel,
        )
        for c in range(chains)
    ]
    if map_fn is not None:
        res = list(map_fn(_run_chain, tasks))
    elif parallel:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(min(n_processes, chains)) as pool:
            res = list(
                progress_bar(pool.imap(_run_chain, tasks), total=chains, desc="stage 2 (chains)", disable=not progress)
            )
    else:
        res = [_run_chain(t) for t in tasks]
    post = _posterior_dataset(
        np.stack([r["mu"] for r in res]),
        np.stack([r["sd"] for r in res]),
        np.stack([r["z"] for r in res]),
        types,
        samples.site_ids,
        prior,
        method="two_stage_mwg",
        reference="stage 2 by Metropolis-within-Gibbs with interweaving (Yu & Meng 2011)",
    )
    cs = {"chain": post["chain"].values, "site": list(samples.site_ids)}
    ct = {"chain": post["chain"].values, "forest_type": types}
    diag = xr.Dataset(
        {
            "acceptance_independence": xr.DataArray(
                np.stack([r["acc_independence"] for r in res]), dims=("chain", "site"), coords=cs
            ),
            "acceptance_random_walk": xr.DataArray(
                np.stack([r["acc_random_walk"] for r in res]), dims=("chain", "site"), coords=cs
            ),
            "acceptance_noncentred_mu": xr.DataArray(
                np.stack([r["acc_noncentred_mu"] for r in res]), dims=("chain", "forest_type"), coords=ct
            ),
            "acceptance_noncentred_sigma": xr.DataArray(
                np.stack([r["acc_noncentred_sigma"] for r in res]), dims=("chain", "forest_type"), coords=ct
            ),
            "failed_proposals": xr.DataArray(
                np.array([r["failed_proposals"] for r in res]), dims=("chain",), coords={"chain": cs["chain"]}
            ),
        },
        attrs={"stage1_draws_per_site": int(Z.shape[1]), "tune": tune, "thin": thin},
    )
    return xr.DataTree.from_dict({"posterior": post, "stage2_diagnostics": diag, "stage1": _stage1_dataset(samples)})
