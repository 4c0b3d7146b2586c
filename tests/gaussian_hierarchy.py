"""The Gaussian hierarchical model both stage-2 samplers are checked against: each site observed as
ẑ_s ~ N(z_s, τ²) per parameter in logit coordinates, z_s ~ N(μ, σ²), μ ~ N(0, 1.5²), σ ~ HalfNormal(1)."""

from __future__ import annotations

import numpy as np

MU_SD, SIGMA_SD, BETA_SD = 1.5, 1.0, 0.5


def gaussian_stage1(rng, z_hat, tau, n):
    """Exact draws of N(z | ẑ, τ²) × logistic(z) per parameter (rejection: logistic density ≤ 1/4)."""
    out = np.empty((n, z_hat.size))
    for p in range(z_hat.size):
        got = []
        while sum(len(g) for g in got) < n:
            x = z_hat[p] + tau * rng.standard_normal(4 * n)
            v = 1.0 / (1.0 + np.exp(-x))
            got.append(x[rng.random(x.size) < 4.0 * v * (1.0 - v)])
        out[:, p] = np.concatenate(got)[:n]
    return out


def exact_moments(z_hat, tau):
    """Posterior means of μ and σ for one parameter: p(μ, σ) Π_s N(ẑ_s | μ, σ² + τ²) on a grid."""
    mu = np.linspace(-5.0, 5.0, 801)[:, None]
    sd = np.linspace(1e-3, 5.0, 800)[None, :]
    var = sd**2 + tau**2
    logp = -0.5 * (mu / MU_SD) ** 2 - 0.5 * (sd / SIGMA_SD) ** 2
    for z in z_hat:
        logp = logp - 0.5 * (z - mu) ** 2 / var - 0.5 * np.log(var)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    return float((w * mu).sum()), float((w * sd).sum())


def gaussian_case(n_draws: int, *, n_sites: int = 8, tau: float = 0.6, seed: int = 11):
    """Stage-1 samples (exact draws, ``n_draws`` per site) of ``n_sites`` Gaussian sites whose true z come
    from N(0.5, 0.8²) per parameter; returns (samples, ẑ, τ)."""
    from bayes_vmimics.inference.two_stage import SitePosteriorSamples

    rng = np.random.default_rng(seed)
    npar = 7
    z_true = rng.normal(0.5, 0.8, size=(n_sites, npar))
    z_hat = z_true + tau * rng.standard_normal((n_sites, npar))
    draws = np.stack([gaussian_stage1(rng, z_hat[s], tau, n_draws) for s in range(n_sites)])
    samples = SitePosteriorSamples(
        [f"s{i}" for i in range(n_sites)], draws, np.ones((n_sites, npar)), np.full(n_sites, 0.3), 32, 2000, 1000, 1
    )
    return samples, z_hat, tau


def exact_gaussian_regression(z_hat, X, tau):
    """Posterior means of μ, B and σ for one parameter of ẑ_s ~ N(μ + x_s B, σ² + τ²), (μ, B) ~ N(0, diag(
    MU_SD², BETA_SD²…)), σ ~ HalfNormal(SIGMA_SD): (μ, B) integrated out in closed form, σ on a grid."""
    S, J = X.shape
    D = np.concatenate([np.ones((S, 1)), X], axis=1)
    P0 = np.diag(np.r_[MU_SD**2, np.full(J, BETA_SD**2)])
    grid = np.linspace(1e-3, 5.0, 2000)
    logw, means = [], []
    for s in grid:
        v = s**2 + tau**2
        C = D @ P0 @ D.T + v * np.eye(S)
        _, logdet = np.linalg.slogdet(C)
        logw.append(-0.5 * (s / SIGMA_SD) ** 2 - 0.5 * logdet - 0.5 * z_hat @ np.linalg.solve(C, z_hat))
        means.append(np.linalg.solve(D.T @ D / v + np.linalg.inv(P0), D.T @ z_hat / v))
    w = np.exp(np.array(logw) - max(logw))
    w /= w.sum()
    return w @ np.array(means), float(w @ grid)


def gaussian_regression_case(n_draws: int = 2000, seed: int = 21):
    """Stage-1 samples (exact draws) of 12 Gaussian sites of one type whose z follow two centred covariates
    (B[0, x_v] = 1.0, B[1, x_d] = −0.8, residual sd 0.8 > τ = 0.4, so the stage-1 draws cover the population);
    returns (samples, X, ẑ, τ)."""
    from bayes_vmimics.inference.two_stage import SitePosteriorSamples

    rng = np.random.default_rng(seed)
    S, J, tau, npar = 12, 2, 0.4, 7
    X = rng.standard_normal((S, J))
    X -= X.mean(axis=0)
    B = np.zeros((J, npar))
    B[0, 0], B[1, 2] = 1.0, -0.8
    z_true = 0.5 + X @ B + 0.8 * rng.standard_normal((S, npar))
    z_hat = z_true + tau * rng.standard_normal((S, npar))
    draws = np.stack([gaussian_stage1(rng, z_hat[s], tau, n_draws) for s in range(S)])
    samples = SitePosteriorSamples(
        [f"s{i}" for i in range(S)], draws, np.ones((S, npar)), np.full(S, 0.3), 32, 2000, 1000, 1
    )
    return samples, X, z_hat, tau
