"""Stage 2 by Metropolis-within-Gibbs: the exact posterior of a Gaussian model (no stage-1 bias, unlike the
reweighting stage 2), reproducibility, checkpoint and resume, failed solves, the model-backed run, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gaussian_hierarchy import exact_moments, gaussian_case

from bayes_vmimics.inference.mwg import sample_population_mwg
from bayes_vmimics.inference.pymc_models import convergence_report, sample_new_site_parameters
from bayes_vmimics.inference.two_stage import two_stage_hierarchical
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.parameters import PARAMETER_NAMES
from bayes_vmimics.priors import BoxPrior
from bayes_vmimics.synthetic import make_synthetic_sites

NPAR = len(PARAMETER_NAMES)


class GaussianSites:
    """log L_s(z) = Σ_p −½ ((ẑ_s,p − z_p)/τ)²: a site observed with Gaussian error in logit coordinates.
    ``interrupt_after`` (class attribute, so it does not change the pickled instance) raises after that many
    calls, to simulate a killed run; ``wall`` makes z_0 > wall fail like a steady state that does not converge.
    """

    interrupt_after: int | None = None
    calls = 0

    def __init__(self, z_hat, tau, wall=None) -> None:
        self.z_hat, self.tau, self.wall = z_hat, tau, wall

    def __call__(self, s, z) -> float:
        cls = type(self)
        cls.calls += 1
        if cls.interrupt_after is not None and cls.calls > cls.interrupt_after:
            raise KeyboardInterrupt
        if self.wall is not None and z[0] > self.wall:
            return -np.inf
        d = (self.z_hat[s] - z) / self.tau
        return float(-0.5 * d @ d)


@pytest.fixture(scope="module")
def gaussian_sites():
    return gaussian_case(300)  # a deliberately small stage 1: it only shapes the proposals


def test_mwg_matches_the_exact_gaussian_posterior(gaussian_sites):
    samples, z_hat, tau = gaussian_sites
    dt = sample_population_mwg(
        samples, ["A"] * 8, loglik=GaussianSites(z_hat, tau), prior=BoxPrior(), draws=3000, tune=500, seed=1
    )
    rep = convergence_report(dt, ["mu", "sigma"])
    assert rep["max_r_hat"] < 1.02
    post = dt["posterior"]
    for p, name in enumerate(PARAMETER_NAMES):
        m_exact, s_exact = exact_moments(z_hat[:, p], tau)
        for var, exact in (("mu", m_exact), ("sigma", s_exact)):
            row = rep["summary"].loc[f"{var}[A, {name}]"]
            est = float(post[var].sel(forest_type="A", parameter=name).mean())
            mcse = float(row["sd"]) / np.sqrt(float(row["ess_bulk"]))
            # Monte Carlo error only: no allowance for the 300 stage-1 draws (they only propose)
            assert abs(est - exact) < 4.0 * mcse, (var, name, est, exact, mcse)
    d = dt["stage2_diagnostics"]
    assert np.all((d["acceptance_random_walk"] > 0.1) & (d["acceptance_random_walk"] < 0.6))
    assert np.all(d["acceptance_noncentred_mu"] > 0.05) and int(d["failed_proposals"].sum()) == 0


def test_mwg_reproducible_and_resumes_after_an_interruption(gaussian_sites, tmp_path):
    samples, z_hat, tau = gaussian_sites
    ll = GaussianSites(z_hat, tau)
    kw = dict(loglik=ll, prior=BoxPrior(), draws=300, tune=100, chains=2, thin=1, seed=5)
    a = sample_population_mwg(samples, ["A"] * 4 + ["B"] * 4, **kw)
    b = sample_population_mwg(samples, ["A"] * 4 + ["B"] * 4, **kw)
    xr.testing.assert_equal(a["posterior"].to_dataset(), b["posterior"].to_dataset())
    post = a["posterior"]
    assert post["mu"].dims == ("chain", "draw", "forest_type", "parameter")
    assert list(post["forest_type"].values) == ["A", "B"] and post["theta_site"].shape == (2, 300, 8, NPAR)
    assert sample_new_site_parameters(a, "B", BoxPrior(), np.random.default_rng(0)).shape == (2, 300, NPAR)
    # killed part-way through the first chain, after at least one checkpoint
    GaussianSites.calls, GaussianSites.interrupt_after = 0, 4000
    try:
        with pytest.raises(KeyboardInterrupt):
            sample_population_mwg(samples, ["A"] * 4 + ["B"] * 4, checkpoint_dir=tmp_path, checkpoint_every=20, **kw)
    finally:
        GaussianSites.interrupt_after = None
    saved = list(tmp_path.glob("chain0_*.pkl"))
    assert len(saved) == 1 and not list(tmp_path.glob("chain1_*.pkl"))
    GaussianSites.calls = 0
    c = sample_population_mwg(samples, ["A"] * 4 + ["B"] * 4, checkpoint_dir=tmp_path, checkpoint_every=20, **kw)
    resumed_calls = GaussianSites.calls
    xr.testing.assert_equal(a["posterior"].to_dataset(), c["posterior"].to_dataset())
    # the resumed run did not start chain 0 again: fewer calls than a whole run
    GaussianSites.calls = 0
    sample_population_mwg(samples, ["A"] * 4 + ["B"] * 4, **kw)
    assert resumed_calls < GaussianSites.calls


def test_mwg_rejects_draws_whose_model_fails(gaussian_sites):
    samples, z_hat, tau = gaussian_sites
    wall = float(np.quantile(samples.z[:, :, 0], 0.7))
    dt = sample_population_mwg(
        samples,
        ["A"] * 8,
        loglik=GaussianSites(z_hat, tau, wall=wall),
        prior=BoxPrior(),
        draws=300,
        tune=100,
        chains=2,
        seed=2,
    )
    from bayes_vmimics.inference.initial import logit_from_theta

    z = logit_from_theta(BoxPrior(), dt["posterior"]["theta_site"].to_numpy())
    assert np.all(z[..., 0] <= wall + 1e-9)
    assert int(dt["stage2_diagnostics"]["failed_proposals"].sum()) > 0


def test_mwg_rejects_bad_input(gaussian_sites):
    samples, z_hat, tau = gaussian_sites
    ll = GaussianSites(z_hat, tau)
    with pytest.raises(ValueError, match="one type per site"):
        sample_population_mwg(samples, ["A"] * 3, loglik=ll, prior=BoxPrior())
    with pytest.raises(ValueError, match="exactly one of problem and loglik"):
        sample_population_mwg(samples, ["A"] * 8)
    with pytest.raises(ValueError, match="prior is needed"):
        sample_population_mwg(samples, ["A"] * 8, loglik=ll)
    with pytest.raises(ValueError, match="tune"):
        sample_population_mwg(samples, ["A"] * 8, loglik=ll, prior=BoxPrior(), tune=10)
    problem = CalibrationProblem(make_synthetic_sites(2, rng=np.random.default_rng(0)), use_c14=False)
    with pytest.raises(ValueError, match="same sites"):
        sample_population_mwg(samples, ["A"] * 8, problem)


def test_two_stage_with_model_solves_on_synthetic_sites(tmp_path):
    problem = CalibrationProblem(make_synthetic_sites(3, rng=np.random.default_rng(4)), use_c14=False, warm_start=True)
    dt, s1 = two_stage_hierarchical(
        problem,
        ["A"] * 3,
        stage1=dict(n_walkers=14, n_steps=60, thin=2),
        stage2=dict(draws=150, tune=100, chains=2, n_processes=2, checkpoint_dir=tmp_path),
        stage2_method="mwg",
        seed=1,
    )
    assert s1.z.shape == (3, 14 * 30 // 2, NPAR)
    assert dt["posterior"].attrs["method"] == "two_stage_mwg"
    th = dt["posterior"]["theta_site"].to_numpy()
    prior = problem.prior
    assert th.shape == (2, 75, 3, NPAR) and np.all((th >= prior.lower) & (th <= prior.upper))
    assert len(list(tmp_path.glob("chain*.pkl"))) == 2
    d = dt["stage2_diagnostics"]
    assert np.all(d["acceptance_random_walk"] > 0.0)
    with pytest.raises(ValueError, match="weights"):
        two_stage_hierarchical(problem, ["A"] * 3, stage2_method="mwg", refine="always")


def test_stage1_mixture_density_and_draws_agree_with_a_direct_computation():
    """The compiled proposal: its log-density equals the Gaussian mixture written out with scipy (components
    below e⁻³⁰ of the largest weight dropped), and its draws have that mixture's mean and covariance."""
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    from bayes_vmimics.inference.mwg import _gaussian_fit, _StageOneMixture

    rng = np.random.default_rng(3)
    S, N = 2, 150
    t = rng.uniform(-2.0, 2.0, size=(S, N))  # draws along a curved ridge, with repeats as emcee keeps them
    Z = np.zeros((S, N, NPAR))
    Z[..., 0], Z[..., 1] = t, 0.4 * t**2
    Z[..., 2:] = 0.3 * rng.standard_normal((S, N, NPAR - 2))
    Z[:, 1::3] = Z[:, 0::3][:, : Z[:, 1::3].shape[1]]
    log_p1 = rng.normal(size=(S, N))
    mix = _StageOneMixture(Z, log_p1, _gaussian_fit(Z)[0], n_components=100, k=20, h=0.8)
    mu, sd = rng.normal(size=(S, NPAR)), rng.uniform(0.5, 2.0, size=(S, NPAR))
    mix.set_population(mu, sd)
    z = rng.normal(size=(S, NPAR))
    got = mix.log_density(z)
    for s in range(S):
        keep = np.isfinite(mix.logc[s])
        X, H, logc = mix.X[s, keep], mix.H[s, keep], mix.logc[s, keep]
        assert 20 < keep.sum() < 100  # the repeats were merged
        Sig = np.diag(sd[s] ** 2)
        logw = np.array(
            [lc + multivariate_normal(mu[s], Hi + Sig).logpdf(x) for x, Hi, lc in zip(X, H, logc, strict=True)]
        )
        logw[logw < logw.max() - 30.0] = -np.inf  # the proposal drops components below e⁻³⁰ of the largest
        logw -= logsumexp(logw)
        C = np.linalg.inv(np.linalg.inv(H) + np.linalg.inv(Sig)[None])
        m = np.einsum("npq,nq->np", C, np.einsum("npq,nq->np", np.linalg.inv(H), X) + mu[s] / sd[s] ** 2)
        comp = np.array([multivariate_normal(mi, Ci).logpdf(z[s]) for mi, Ci in zip(m, C, strict=True)])
        ref = logsumexp(logw + comp) + 0.5 * NPAR * np.log(2 * np.pi)  # log_density omits (2π)^(−d/2)
        assert abs(got[s] - ref) < 1e-9, (got[s], ref)
        draws = np.stack([mix.sample(rng)[s] for _ in range(20_000)])
        w = np.exp(logw)
        mean = w @ m
        cov = np.einsum("n,npq->pq", w, C) + np.einsum("n,np,nq->pq", w, m - mean, m - mean)
        se = np.sqrt(np.diag(cov) / draws.shape[0])
        assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * se)
        assert np.allclose(np.cov(draws, rowvar=False), cov, atol=0.05 * np.max(np.diag(cov)))
