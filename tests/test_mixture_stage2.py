"""Stage 2 on Gaussian-mixture site likelihoods (:mod:`bayes_vmimics.inference.mixture_stage2`): the fitted
likelihood of a Gaussian site is that Gaussian, a site that constrains nothing gets a flat likelihood, and NUTS on
the mixtures reaches the exact posteriors of the Gaussian hierarchical model with and without covariates."""

from __future__ import annotations

import numpy as np
import pytest
from gaussian_hierarchy import (
    BETA_SD,
    MU_SD,
    SIGMA_SD,
    exact_gaussian_regression,
    exact_moments,
    gaussian_case,
    gaussian_regression_case,
    gaussian_stage1,
)

from bayes_vmimics.inference.mixture_stage2 import fit_site_mixtures, sample_mixture_population
from bayes_vmimics.inference.pymc_models import posterior_convergence
from bayes_vmimics.inference.regression import RegressionPrior
from bayes_vmimics.inference.two_stage import SitePosteriorSamples
from bayes_vmimics.parameters import PARAMETER_NAMES
from bayes_vmimics.priors import BoxPrior

NPAR = len(PARAMETER_NAMES)


def _samples(z):
    S = z.shape[0]
    return SitePosteriorSamples([f"s{i}" for i in range(S)], z, np.ones((S, NPAR)), np.full(S, 0.3), 32, 2000, 1000, 1)


def test_the_likelihood_of_a_gaussian_site_is_that_gaussian():
    """Stage-1 draws of N(z | ẑ, τ²) × logistic(z): one component, divided by the reference prior, must give back
    log L(z) = −|z − ẑ|² / 2τ² + const (precision within 10 %, peak within 0.05 logit units)."""
    rng = np.random.default_rng(4)
    tau = 0.5
    z_hat = rng.normal(0.5, 1.0, size=(3, NPAR))
    mix = fit_site_mixtures(_samples(np.stack([gaussian_stage1(rng, z, tau, 4000) for z in z_hat])), 1, seed=2)
    assert mix.quadratic.shape == (3, 1, NPAR, NPAR) and np.all(mix.flat_directions == 0)
    for s in range(3):
        A, b = mix.quadratic[s, 0], mix.linear[s, 0]
        np.testing.assert_allclose(np.diag(A) * tau**2, 1.0, atol=0.1)
        assert np.max(np.abs(A - np.diag(np.diag(A)))) * tau**2 < 0.1
        np.testing.assert_allclose(np.linalg.solve(A, b), z_hat[s], atol=0.05)
    # log_likelihood: differences between points are those of the Gaussian
    pts = z_hat + 0.5 * rng.standard_normal(z_hat.shape)
    got = mix.log_likelihood(pts) - mix.log_likelihood(z_hat)
    exact = -0.5 * np.sum((pts - z_hat) ** 2, axis=1) / tau**2
    np.testing.assert_allclose(got, exact, atol=0.1 * np.max(np.abs(exact)))


def test_a_site_that_constrains_nothing_gets_a_nearly_flat_likelihood():
    """Draws of the box prior itself (no data). Over the reference prior's typical set the fitted likelihood
    varies little: a single component by < 0.4 nats (5–95 % range), two (the default) by < 0.8 nats, the
    spurious information a mixture adds where a site says nothing (docs/covariates.md)."""
    rng = np.random.default_rng(6)
    u = rng.random((2, 6000, NPAR))
    samples = _samples(np.log(u / (1 - u)))
    pts = np.pi / np.sqrt(3.0) * rng.standard_normal((400, 2, NPAR))
    for k, limit in ((1, 0.4), (2, 0.8)):
        mix = fit_site_mixtures(samples, k, seed=1)
        ll = np.stack([mix.log_likelihood(p) for p in pts])
        spread = np.ptp(np.percentile(ll, [5, 95], axis=0), axis=0)
        assert np.all(spread < limit), (k, spread)
        assert np.all(mix.flat_directions > 0)
    assert np.all(mix.resample_ess > 3000)


def test_mixture_stage2_matches_the_exact_gaussian_population():
    samples, z_hat, tau = gaussian_case(2000)
    mix = fit_site_mixtures(samples, 1, seed=0)
    dt = sample_mixture_population(
        mix, ["A"] * z_hat.shape[0], BoxPrior(), draws=500, tune=500, chains=2, seed=3, stage1=samples
    )
    rep = posterior_convergence(dt, ["mu", "sigma"])
    assert rep["max_r_hat"] < 1.02 and rep["divergences"] == 0
    post = dt["posterior"]
    for p in range(NPAR):
        mu_exact, sd_exact = exact_moments(z_hat[:, p], tau)
        mu = post["mu"].isel(parameter=p).values
        sd = post["sigma"].isel(parameter=p).values
        # Monte Carlo error (ESS ≥ ~300) plus the mixture fit of 2000 draws
        assert abs(mu.mean() - mu_exact) < 4 * mu.std() / np.sqrt(300) + 0.05, (p, mu.mean(), mu_exact)
        assert abs(sd.mean() - sd_exact) < 4 * sd.std() / np.sqrt(300) + 0.05, (p, sd.mean(), sd_exact)
    assert dt["posterior"].attrs["method"] == "mixture_stage2"
    assert set(dt.children) >= {"posterior", "stage2_diagnostics", "sample_stats", "stage1"}
    # with stage1, each site's θ is one of its own stage-1 draws (the Gibbs site step), with the weights' ESS
    from bayes_vmimics.inference.initial import logit_from_theta

    z_site = logit_from_theta(BoxPrior(), post["theta_site"].values)
    for s in (0, 3):
        got = z_site[:, :, s].reshape(-1, NPAR)[:50]
        dist = np.abs(got[:, None, :] - samples.z[s][None]).max(axis=-1).min(axis=1)
        assert np.all(dist < 1e-8)
    assert np.all(dt["stage2_diagnostics"]["site_weight_ess_q05"].values >= 1.0)


@pytest.mark.parametrize("shared", [False, True])
def test_mixture_stage2_matches_the_exact_gaussian_regression(shared):
    samples, X, z_hat, tau = gaussian_regression_case()
    S, J = X.shape
    dt = sample_mixture_population(
        fit_site_mixtures(samples, 1, seed=0),
        ["A"] * S,
        BoxPrior(),
        X=X,
        covariate_names=["c0", "c1"],
        shared_beta=shared,
        hyperprior=RegressionPrior(MU_SD, BETA_SD, SIGMA_SD),
        draws=500,
        tune=500,
        chains=2,
        seed=5,
    )
    rep = posterior_convergence(dt, ["mu", "sigma", "beta"])
    assert rep["max_r_hat"] < 1.02
    post = dt["posterior"]
    assert post["beta"].dims == ("chain", "draw", "forest_type", "covariate", "parameter")
    for p in range(NPAR):
        c_exact, s_exact = exact_gaussian_regression(z_hat[:, p], X, tau)
        got = [post["mu"].isel(parameter=p).values] + [
            post["beta"].isel(parameter=p, covariate=j).values for j in range(J)
        ]
        for est, exact in zip(got, c_exact, strict=True):
            assert abs(est.mean() - exact) < 4 * est.std() / np.sqrt(300) + 0.05, (p, est.mean(), exact)
        sd = post["sigma"].isel(parameter=p).values
        assert abs(sd.mean() - s_exact) < 4 * sd.std() / np.sqrt(300) + 0.05, (p, sd.mean(), s_exact)


def test_bad_input_is_named():
    rng = np.random.default_rng(1)
    samples = _samples(rng.standard_normal((3, 40, NPAR)))
    with pytest.raises(ValueError, match="n_components"):
        fit_site_mixtures(samples, 6)
    mix = fit_site_mixtures(samples, 1)
    with pytest.raises(ValueError, match="one type per site"):
        sample_mixture_population(mix, ["A", "A"], BoxPrior())
    X = np.zeros((3, 1))
    X[1, 0] = np.nan
    with pytest.raises(ValueError, match="'s1'"):
        sample_mixture_population(mix, ["A"] * 3, BoxPrior(), X=X, covariate_names=["mat"])
    assert mix.subset([2, 0]).site_ids == ["s2", "s0"]


def test_hierarchical_command_with_mixture_stage2_and_validate(tmp_path, capsys, data_dir):
    """hierarchical --stage2 mixture --covariates on real sites, then validate: the run stores a mixture stage 2
    with B and its scaler, its sites table the mixtures' diagnostics, and held-out sites are scored."""
    import pandas as pd

    from bayes_vmimics.cli import main
    from bayes_vmimics.results import load_datatree

    out = tmp_path / "hier"
    args = ["hierarchical", "--data-dir", str(data_dir), "--forest-type", "BNF", "--quick", "--max-sites", "3"]
    args += ["--n-steps", "30", "--n-walkers", "16", "--draws", "60", "--chains", "2", "--n-processes", "1"]
    args += ["--stage2", "mixture", "--covariates", "mat", "--predictive-draws", "10", "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "NUTS on a 2-component mixture likelihood per site" in text
    dt = load_datatree(out / "results.nc")
    assert dt["posterior"].attrs["method"] == "mixture_stage2" and "beta" in dt["posterior"]
    sites = pd.read_csv(out / "sites.csv")
    assert {"mixture_resample_ess", "mixture_flat_directions"} <= set(sites.columns)
    validate = ["validate", str(out), "--data-dir", str(data_dir), "--max-sites", "2", "--predictive-draws", "10"]
    assert main(validate) == 0
    scores = pd.read_csv(out / "validation" / "held_out_scores.csv")
    assert np.isfinite(scores["lppd"]).all()
    assert main([*args, "--refine", "always", "--out", str(tmp_path / "bad")]) == 2
    assert "no second pass" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "run.json").exists()


def test_same_seed_gives_the_same_draws_with_one_or_two_processes():
    samples, _, _ = gaussian_case(300, n_sites=4)
    mix = fit_site_mixtures(samples, 2, seed=0)
    assert np.array_equal(fit_site_mixtures(samples, 2, seed=0).quadratic, mix.quadratic)
    kw = dict(draws=60, tune=60, chains=2, seed=4)
    runs = [sample_mixture_population(mix, ["A"] * 4, BoxPrior(), n_processes=n, **kw) for n in (1, 1, 2)]
    mus = [r["posterior"]["mu"].values for r in runs]
    assert np.array_equal(mus[0], mus[1]) and np.array_equal(mus[0], mus[2])
    other = sample_mixture_population(mix, ["A"] * 4, BoxPrior(), **{**kw, "seed": 5})
    assert not np.array_equal(other["posterior"]["mu"].values, mus[0])
