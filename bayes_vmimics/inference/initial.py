"""Starting points for the samplers: per-site and pooled maximum-a-posteriori (MAP) estimates.

Why. With 10 % observation errors on every layer, the likelihood of a real profile is extremely peaked:
at a θ drawn from the prior box the log-likelihood of one forest type is typically −10⁵ to −10⁶ and
its gradient ~10⁶. NUTS started there spends its whole warm-up with tiny steps crossing that slope (and
its mass-matrix estimate is ruined by it). Starting from the MAP of each site puts every chain in the
typical set at once; the chains are then dispersed around it by a small jitter so that R-hat still
compares chains that started apart.

How. For each site, L-BFGS-B (SciPy) maximises, over z = logit v (v the unit position on the prior box,
see :func:`~bayes_vmimics.inference.pymc_models.from_unit`),

    log L_s(θ(z)) + Σ_i log v_i (1 − v_i),

the log-density of the box prior's unit position in logit coordinates, with the exact adjoint gradient of
:mod:`bayes_vmimics.gradients` and a few starting points (the box centre, the P Table 1 defaults, and
random draws); the best optimum is kept. The pooled MAP does the same with all sites sharing θ.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize

from ..gradients import log_likelihood_and_gradient, site_log_likelihood_and_gradient
from ..likelihood import CalibrationProblem
from ..parameters import PARAMETER_NAMES, Parameters
from ..priors import logit_from_theta, theta_from_logit

NPAR = len(PARAMETER_NAMES)
Z_BOUND = 10.0  # |logit v| ≤ 10: v within 4.5e-5 of the box edges


def _sigmoid(z):
    from scipy.special import expit

    return expit(z)  # no overflow warning for large |z|


def _objective(loglik_and_grad, prior):
    """−(log L + log-Jacobian) and its gradient in z."""
    scale_lin = prior.upper - prior.lower
    log_ratio = np.log(prior.upper / prior.lower)

    def fun(z):
        v = _sigmoid(z)
        theta = theta_from_logit(prior, z)
        ll, g = loglik_and_grad(theta)
        if not np.isfinite(ll):
            return 1e300, np.zeros(NPAR)
        dtheta_dv = np.where(prior.is_log, theta * log_ratio, scale_lin)
        logjac = float(np.sum(np.log(v) + np.log1p(-v)))
        grad = g * dtheta_dv * v * (1.0 - v) + (1.0 - 2.0 * v)
        return -(ll + logjac), -grad

    return fun


def _starts(prior, rng: np.random.Generator, n_random: int) -> list[np.ndarray]:
    starts = [np.zeros(NPAR)]
    default = np.clip(prior.to_unit(Parameters().to_array()), 0.02, 0.98)
    starts.append(np.log(default / (1.0 - default)))
    v = rng.uniform(0.1, 0.9, (n_random, NPAR))
    starts.extend(np.log(v / (1.0 - v)))
    return starts


def _maximise(fun, starts, maxiter: int) -> tuple[np.ndarray, float]:
    best_z, best_f = None, np.inf
    bounds = [(-Z_BOUND, Z_BOUND)] * NPAR
    for z0 in starts:
        res = minimize(fun, z0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter})
        if res.fun < best_f:
            best_z, best_f = np.asarray(res.x, dtype=float), float(res.fun)
    if best_z is None or not np.isfinite(best_f) or best_f >= 1e299:
        raise RuntimeError("no starting point gave a converged steady state")
    return best_z, -best_f


def site_map_estimates(
    problem: CalibrationProblem,
    *,
    n_random_starts: int = 2,
    seed: int = 0,
    maxiter: int = 300,
    progress: bool = False,
) -> np.ndarray:
    """MAP of each site's θ under the box prior, as z = logit of the unit position (see module text).

    Args:
        problem: the calibration problem (constant-temperature sites; tracer-mode ¹⁴C) (–).
        n_random_starts: random starting points per site besides the box centre and the Table 1 defaults
            (count).
        seed: seed of the random starting points (integer).
        maxiter: L-BFGS-B iterations per start (count).
        progress: show a progress bar over sites (bool).

    Returns:
        z, shape (n_sites, 7) (logit units); θ = :func:`theta_from_logit` (problem.prior, z).

    Raises:
        RuntimeError: a site whose steady state fails at every starting point.
    """
    from ..progress import progress_bar

    rng = np.random.default_rng(seed)
    out = np.empty((len(problem.sites), NPAR))
    for s in progress_bar(range(len(problem.sites)), desc="site MAP", disable=not progress):
        fun = _objective(lambda th, s=s: site_log_likelihood_and_gradient(problem, s, th), problem.prior)
        try:
            out[s], _ = _maximise(fun, _starts(problem.prior, rng, n_random_starts), maxiter)
        except RuntimeError as err:
            raise RuntimeError(f"site {problem.site_ids[s]}: {err}") from None
    return out


def pooled_map_estimate(
    problem: CalibrationProblem,
    site_indices: Sequence[int] | None = None,
    *,
    n_random_starts: int = 2,
    seed: int = 0,
    maxiter: int = 300,
) -> np.ndarray:
    """MAP of one θ shared by the given sites (pooled), as z = logit of the unit position, shape (7,) (logit
    units).

    Args:
        problem: the calibration problem (–).
        site_indices: the pooled sites; default all (–).
        n_random_starts, seed, maxiter: as :func:`site_map_estimates`.

    Raises:
        RuntimeError: the steady state fails at every starting point.
    """
    rng = np.random.default_rng(seed)
    fun = _objective(_pooled_loglik(problem, site_indices), problem.prior)
    z, _ = _maximise(fun, _starts(problem.prior, rng, n_random_starts), maxiter)
    return z


def _pooled_loglik(problem: CalibrationProblem, site_indices):
    """log L of θ shared by the given sites (default all) and its exact gradient."""
    if site_indices is None:
        return lambda th: log_likelihood_and_gradient(problem, th)
    sel = [int(i) for i in site_indices]

    def loglik(th):
        total, grad = 0.0, np.zeros(NPAR)
        for s in sel:
            v, g = site_log_likelihood_and_gradient(problem, s, th)
            total += v
            grad += g
        return total, grad

    return loglik


def distinct_optima(z, values, *, tol: float = 1.0) -> list[int]:
    """Indices of distinct optima, best first: an optimum is kept if it differs from every better kept one by
    more than ``tol`` in some coordinate of logit space (max-norm).

    Args:
        z: optima, shape (n, 7) (logit units).
        values: their objective (higher is better), shape (n,) (log-density units).
        tol: max-norm distance in logit space below which two optima are one (logit units).
    """
    z = np.asarray(z, dtype=float)
    values = np.asarray(values, dtype=float)
    keep: list[int] = []
    for i in np.argsort(-values, kind="stable"):
        if not np.isfinite(values[i]):
            continue
        if all(np.max(np.abs(z[i] - z[k])) > tol for k in keep):
            keep.append(int(i))
    return keep


def multistart_map_estimates(
    problem: CalibrationProblem,
    *,
    n_starts: int = 6,
    seed: int = 0,
    maxiter: int = 300,
    tol: float = 1.0,
    site_indices: Sequence[int] | None = None,
) -> list[tuple[np.ndarray, float]]:
    """Distinct local maxima of the pooled posterior from several starting points (multi-start L-BFGS-B), so
    that emcee ensembles can start at different modes and R-hat can see them.

    The starts are the box centre, the P Table 1 defaults and ``n_starts − 2`` random points (unit positions
    in [0.1, 0.9]); each runs L-BFGS-B on the objective of :func:`pooled_map_estimate`. Optima closer than
    ``tol`` (max-norm in logit space) to a better one are the same optimum (:func:`distinct_optima`).

    Args:
        problem: the calibration problem (exact gradients needed) (–).
        n_starts: local optimisations, ≥ 1 (count).
        seed: seed of the random starts (integer).
        maxiter: L-BFGS-B iterations per start (count).
        tol: distance in logit space below which two optima are one (logit units).
        site_indices: the pooled sites; default all (–).

    Returns:
        ``[(z, log posterior), ...]``, best first: z (7,) (logit units) and the maximised log density in z
        (log-density units).

    Raises:
        ValueError: ``n_starts`` < 1.
        RuntimeError: the steady state fails at every start.
    """
    if n_starts < 1:
        raise ValueError(f"n_starts must be ≥ 1, got {n_starts}")
    rng = np.random.default_rng(seed)
    fun = _objective(_pooled_loglik(problem, site_indices), problem.prior)
    starts = _starts(problem.prior, rng, max(n_starts - 2, 0))[:n_starts]
    bounds = [(-Z_BOUND, Z_BOUND)] * NPAR
    zs, vals = [], []
    for z0 in starts:
        res = minimize(fun, z0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter})
        if np.isfinite(res.fun) and res.fun < 1e299:
            zs.append(np.asarray(res.x, dtype=float))
            vals.append(-float(res.fun))
    if not zs:
        raise RuntimeError("no starting point gave a converged steady state")
    return [(zs[i], vals[i]) for i in distinct_optima(np.array(zs), np.array(vals), tol=tol)]


def hierarchical_initial_values(
    z_sites: np.ndarray,
    forest_types: Sequence[str],
    n_chains: int,
    *,
    seed: int = 0,
    jitter: float = 0.1,
    min_sigma: float = 0.1,
    centred: bool = True,
) -> list[dict[str, np.ndarray]]:
    """Per-chain initial values of the hierarchical model from per-site MAPs.

    μ_t is the mean of the site z of type t, σ_t their sd (at least ``min_sigma``), η_s = (z_s − μ_t)/σ_t;
    each chain then gets μ jittered by ``jitter``·σ_t/√n_t, log σ by ``jitter``/√n_t and η by ``jitter``
    (standard normal draws),
    so chains start apart but all near the typical set.

    Args:
        z_sites: site MAPs from :func:`site_map_estimates`, shape (n_sites, 7) (logit units).
        forest_types: forest type per site (–).
        n_chains: chains (count).
        seed: seed of the jitter (integer).
        jitter: size of the per-chain dispersion (standard-normal units of η) (–).
        min_sigma: lower bound of the initial σ_t (logit units).
        centred: values for the centred model (``z`` = μ + σ η) or the non-centred one (``eta``) (bool).

    Returns:
        One dict per chain with ``mu`` and ``sigma`` (forest_type, parameter) and ``z`` or ``eta`` (site,
        parameter), for ``pm.sample(initvals=...)``.
    """
    z = np.asarray(z_sites, dtype=float)
    ft = [str(f) for f in forest_types]
    if z.shape != (len(ft), NPAR):
        raise ValueError(f"z_sites must have shape ({len(ft)}, {NPAR}), got {z.shape}")
    types = sorted(set(ft))
    idx = np.array([types.index(f) for f in ft])
    mu = np.array([z[idx == t].mean(axis=0) for t in range(len(types))])
    sigma = np.array([np.maximum(z[idx == t].std(axis=0), min_sigma) for t in range(len(types))])
    counts = np.bincount(idx, minlength=len(types))[:, None]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n_chains)):
        mu_c = mu + jitter * sigma / np.sqrt(counts) * rng.standard_normal(mu.shape)
        sigma_c = sigma * np.exp(jitter / np.sqrt(counts) * rng.standard_normal(sigma.shape))
        eta_c = (z - mu_c[idx]) / sigma_c[idx] + jitter * rng.standard_normal(z.shape)
        if centred:
            out.append({"mu": mu_c, "sigma": sigma_c, "z": mu_c[idx] + sigma_c[idx] * eta_c})
        else:
            out.append({"mu": mu_c, "sigma": sigma_c, "eta": eta_c})
    return out


def laplace_draws(problem: CalibrationProblem, z_map, n_draws: int, *, seed: int = 0, step: float = 1e-4):
    """Draws of the pooled posterior's Laplace approximation at its MAP, in the logit space of the prior box.

    The Hessian of −log p(z | data) (the log-Jacobian of the logit included) is the central difference of the
    exact adjoint gradient; where it is not positive definite its eigenvalues are floored at 1e-6. A cheap
    stand-in for an emcee posterior where many fits must be compared (e.g. error models); it ignores skewness
    and further modes.

    Args:
        problem: the calibration problem (–).
        z_map: the MAP as logits (:func:`pooled_map_estimate`), shape (7,) (logit units).
        n_draws: draws (count).
        seed: random seed (integer).
        step: finite-difference step in z (logit units).

    Returns:
        θ draws, shape (n_draws, 7) (parameter units).

    Raises:
        ValueError: the gradient is not finite next to the MAP.
    """
    fun = _objective(lambda th: log_likelihood_and_gradient(problem, th), problem.prior)
    z0 = np.asarray(z_map, dtype=float)
    hess = np.empty((NPAR, NPAR))
    for i in range(NPAR):
        e = np.zeros(NPAR)
        e[i] = step
        f1, g1 = fun(z0 + e)
        f2, g2 = fun(z0 - e)
        if f1 >= 1e300 or f2 >= 1e300:
            raise ValueError(f"steady state fails next to the MAP along {PARAMETER_NAMES[i]}: no Laplace approximation")
        hess[i] = (g1 - g2) / (2.0 * step)
    hess = 0.5 * (hess + hess.T)
    w, v = np.linalg.eigh(hess)
    cov = (v / np.maximum(w, 1e-6)) @ v.T
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(z0, cov, size=int(n_draws), method="cholesky")
    return theta_from_logit(problem.prior, z)


__all__ = [
    "distinct_optima",
    "hierarchical_initial_values",
    "laplace_draws",
    "logit_from_theta",
    "multistart_map_estimates",
    "pooled_map_estimate",
    "site_map_estimates",
    "theta_from_logit",
]
