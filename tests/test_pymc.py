"""Consistency of the PyMC adapter with the NumPy likelihood: the Op's value equals it exactly, its gradient
passes ``pytensor.gradient.verify_grad``, the models' log densities are the intended ones; short sampling
runs produce DataTree results with diagnostics; posterior predictive for new sites. Long runs are slow."""

from __future__ import annotations

import matplotlib
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from pytensor.gradient import NullTypeGradError, verify_grad
from scipy import stats

from bayes_vmimics.covariates import CovariateDesign, CovariateScaler
from bayes_vmimics.diagnostics import (
    plot_pair,
    plot_ridge_profile,
    posterior_samples,
    ridge_profile,
    xv_xk_correlation,
)
from bayes_vmimics.gradients import site_log_likelihoods
from bayes_vmimics.inference.pymc_models import (
    HorseshoePrior,
    SiteLogLikelihoodOp,
    build_hierarchical_model,
    build_pooled_model,
    build_single_site_model,
    posterior_convergence,
    predict_new_site,
    sample,
    sample_new_site_parameters,
    save_results,
)
from bayes_vmimics.inference.regression import predict_new_site_regression
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.model import SiteModel
from bayes_vmimics.parameters import PARAMETER_NAMES
from bayes_vmimics.population_regression import sample_new_site_parameters_regression
from bayes_vmimics.priors import theta_from_logit
from bayes_vmimics.synthetic import make_synthetic_sites, true_parameters

matplotlib.use("Agg")
# the Op runs in object mode under PyTensor's numba backend (a UserWarning from pytensor, ignored in pyproject);
# PyMC warns about short chains in the quick runs below
pytestmark = pytest.mark.filterwarnings("ignore:Only .* samples per chain:UserWarning")

YEARS = np.arange(1950, 2011)
THETA = true_parameters()


@pytest.fixture(scope="module")
def sites(bomb_atmosphere):
    return make_synthetic_sites(
        3, rng=np.random.default_rng(2), with_c14=True, atmosphere=bomb_atmosphere, zone="NH1", sample_year=2003.4
    )


@pytest.fixture(scope="module")
def c14_problem(sites, bomb_atmosphere):
    return CalibrationProblem(sites, atmosphere=bomb_atmosphere)


def test_op_value_equals_numpy_exactly(c14_problem, sites, bomb_atmosphere):
    op = SiteLogLikelihoodOp(c14_problem)
    x = pt.dmatrix("theta")
    f = pytensor.function([x], op(x)[0])
    thetas = THETA * np.array([[1.0], [1.04], [0.97]])
    np.testing.assert_array_equal(f(thetas), site_log_likelihoods(c14_problem, thetas))
    one = CalibrationProblem(sites[:1], atmosphere=bomb_atmosphere)
    g = pytensor.function([x], SiteLogLikelihoodOp(one, gradient=False)(x))
    assert g(THETA[None, :])[0] == one.log_likelihood(THETA)


def test_op_verify_grad(c14_problem):
    op = SiteLogLikelihoodOp(c14_problem)
    thetas = THETA * np.array([[1.0], [1.04], [0.97]])
    verify_grad(lambda t: op(t)[0], [thetas], rng=np.random.default_rng(0))


def test_value_only_op_has_no_gradient(c14_problem):
    op = SiteLogLikelihoodOp(c14_problem, gradient=False)
    x = pt.dmatrix()
    with pytest.raises(NullTypeGradError):
        pytensor.grad(op(x).sum(), x)
    with pytest.raises(ValueError, match="gradient=True"):
        sample(build_pooled_model(c14_problem, gradient=False), sampler="nuts")


def test_pooled_model_log_density(c14_problem):
    model = build_pooled_model(c14_problem)
    u = c14_problem.prior.to_unit(THETA)
    point = {"theta_unit_interval__": np.log(u / (1 - u))}
    lp = model.compile_logp()(point)
    # uniform(0, 1) density 1, times the Jacobian of the logit transform u(1 − u)
    expected = c14_problem.log_likelihood(THETA) + np.sum(np.log(u * (1 - u)))
    assert lp == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("parametrization", ["centred", "non_centred"])
def test_hierarchical_model_gradient_and_transform(c14_problem, parametrization):
    model = build_hierarchical_model(c14_problem, ["A", "A", "B"], parametrization=parametrization)
    rng = np.random.default_rng(3)
    ip = model.initial_point()
    point = {k: v + 0.2 * rng.standard_normal(v.shape) for k, v in ip.items()}
    logp = model.compile_logp()
    dlogp = model.compile_dlogp()
    g = dlogp(point)
    # finite differences along a random direction of the unconstrained space
    names = [v.name for v in model.value_vars]
    d = {k: rng.standard_normal(point[k].shape) for k in names}
    h = 1e-6
    fp = logp({k: point[k] + h * d[k] for k in names})
    fm = logp({k: point[k] - h * d[k] for k in names})
    sizes = [point[k].size for k in names]
    flat_d = np.concatenate([d[k].ravel() for k in names])
    assert len(g) == sum(sizes)
    assert (fp - fm) / (2 * h) == pytest.approx(float(g @ flat_d), rel=1e-5)
    # theta_site is the box transform of the site logits z
    fn = model.compile_fn(model["theta_site"], inputs=model.value_vars, on_unused_input="ignore")
    th = fn(point)
    lo, hi = c14_problem.prior.lower, c14_problem.prior.upper
    assert np.all((th > lo) & (th < hi))


def test_short_nuts_run_and_diagnostics(c14_problem, tmp_path):
    model = build_single_site_model(c14_problem, 0)
    dt = sample(model, draws=15, tune=15, chains=2, max_treedepth=3, random_seed=1)
    assert isinstance(dt, xr.DataTree)
    assert dt["posterior"]["theta"].shape == (2, 15, 7)
    rep = posterior_convergence(dt)
    assert {"summary", "max_r_hat", "min_ess_bulk", "min_ess_tail", "divergences"} <= set(rep)
    assert {"r_hat", "ess_bulk", "ess_tail"} <= set(rep["summary"].columns)
    path = tmp_path / "single.nc"
    save_results(dt, path)
    back = xr.open_datatree(path)
    np.testing.assert_array_equal(back["posterior"]["theta"].values, dt["posterior"]["theta"].values)
    back.close()
    corr = xv_xk_correlation(dt)
    assert corr["theta"].ndim == 0 and -1.0 <= float(corr["theta"]) <= 1.0
    samples = posterior_samples(dt)
    single = CalibrationProblem([c14_problem.sites[0].obs], use_c14=False)
    prof = ridge_profile(single.log_probability, samples, n_points=7)
    assert prof["log_density"].shape == (7,)
    assert np.isfinite(prof["log_density"]).any()
    plot_pair(samples)
    plot_ridge_profile(prof)
    matplotlib.pyplot.close("all")


def test_demetropolisz_run(c14_problem):
    model = build_pooled_model(c14_problem, [0, 1], gradient=False)
    dt = sample(model, sampler="demetropolisz", draws=30, tune=30, chains=2, random_seed=2)
    assert dt["posterior"]["theta"].shape == (2, 30, 7)
    assert posterior_convergence(dt)["divergences"] == 0


def _fake_hierarchical_posterior(rng) -> xr.DataTree:
    types = ["A", "B"]
    mu = rng.normal(0.0, 0.3, (2, 50, 2, 7))
    sigma = np.abs(rng.normal(0.0, 0.2, (2, 50, 2, 7)))
    coords = {"chain": [0, 1], "draw": np.arange(50), "forest_type": types, "parameter": list(PARAMETER_NAMES)}
    dims = ("chain", "draw", "forest_type", "parameter")
    post = xr.Dataset({"mu": (dims, mu), "sigma": (dims, sigma)}, coords=coords)
    return xr.DataTree.from_dict({"posterior": post})


def test_new_site_posterior_predictive(c14_problem):
    rng = np.random.default_rng(4)
    dt = _fake_hierarchical_posterior(rng)
    th = sample_new_site_parameters(dt, "B", c14_problem.prior, rng)
    assert th.shape == (2, 50, 7)
    assert np.all((th.values > c14_problem.prior.lower) & (th.values < c14_problem.prior.upper))
    with pytest.raises(ValueError, match="unknown forest type"):
        sample_new_site_parameters(dt, "C", c14_problem.prior, rng)
    site = SiteModel(c14_problem.sites[0].obs.forcing)
    pred = predict_new_site(dt, "A", site, [0.0, 10.0, 30.0], [10.0, 30.0, 60.0], c14_problem.prior, rng, max_draws=8)
    assert pred["soc"].shape == (8, 3)
    assert np.isfinite(pred["soc"]).all() and (pred["soc"] > 0).all()


@pytest.mark.slow
def test_hierarchical_nuts_smoke(bomb_atmosphere):
    """A short hierarchical NUTS run: it samples, reports diagnostics and per-level correlations (not a
    convergence or recovery test: chains this short are not converged)."""
    sites = make_synthetic_sites(4, rng=np.random.default_rng(5))
    prob = CalibrationProblem(sites, use_c14=False)
    model = build_hierarchical_model(prob, ["A", "A", "B", "B"])
    dt = sample(model, draws=150, tune=150, chains=2, max_treedepth=6, random_seed=5)
    rep = posterior_convergence(dt, ["theta_population"])
    assert rep["max_r_hat"] < 1.2
    corr = xv_xk_correlation(dt)
    assert corr["theta_site"].shape == (4,)
    assert corr["theta_population"].shape == (2,)


@pytest.mark.parametrize("preset", ["floor", "discrepancy"])
def test_op_with_other_error_models(sites, bomb_atmosphere, preset):
    """The Op follows the problem's error model: value equals NumPy exactly, gradient passes verify_grad,
    and a short NUTS run of the pooled model works (two synthetic sites)."""
    prob = CalibrationProblem(sites[:2], atmosphere=bomb_atmosphere, error_model=preset)
    op = SiteLogLikelihoodOp(prob)
    x = pt.dmatrix("theta")
    f = pytensor.function([x], op(x)[0])
    thetas = THETA * np.array([[1.0], [1.03]])
    np.testing.assert_array_equal(f(thetas), site_log_likelihoods(prob, thetas))
    paper = CalibrationProblem(sites[:2], atmosphere=bomb_atmosphere)
    assert not np.allclose(f(thetas), site_log_likelihoods(paper, thetas))
    verify_grad(lambda t: op(t)[0], [thetas], rng=np.random.default_rng(1))
    if preset == "discrepancy":
        dt = sample(build_pooled_model(prob), draws=10, tune=10, chains=1, max_treedepth=3, random_seed=4)
        assert dt["posterior"]["theta"].shape == (1, 10, 7)
        assert np.all(np.isfinite(dt["posterior"]["theta"].values))


# ------------------------------------------------------------------------------------------------------------
# the hierarchical model with covariates (regression population, issue 20)
# ------------------------------------------------------------------------------------------------------------

TYPES = ["A", "A", "B"]  # forest type of each of the three synthetic sites
X_COV = np.array([[0.8, -1.1], [-0.5, 0.3], [1.4, 0.9]])  # standardised covariates (site, covariate)
COV_NAMES = ["mat", "clay"]


def _prior_draws(model, draws=20, seed=0) -> xr.DataTree:
    """Prior draws of a model's free variables and deterministics, laid out as a PyMC posterior."""
    with model:
        pp = pm.sample_prior_predictive(draws=draws, random_seed=seed)
    return xr.DataTree.from_dict({"posterior": pp["prior"].to_dataset()})


def test_model_without_covariates_is_unchanged(c14_problem):
    model = build_hierarchical_model(c14_problem, TYPES)
    assert [v.name for v in model.free_RVs] == ["mu", "sigma", "eta"]
    assert "covariate" not in model.coords and "x_site" not in model.named_vars and "beta" not in model.named_vars


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("parametrization", ["centred", "non_centred"])
def test_covariate_model_log_density(c14_problem, parametrization, shared):
    """log density with covariates (normal shrinkage) at a random point = the hand-written sum of the priors
    of μ, σ, B and the sites plus the NumPy log-likelihood (``jacobian=False``: densities of the values)."""
    model = build_hierarchical_model(
        c14_problem,
        TYPES,
        covariates=X_COV,
        covariate_names=COV_NAMES,
        shared_beta=shared,
        parametrization=parametrization,
    )
    rng = np.random.default_rng(7)
    point = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in model.initial_point().items()}
    lp = model.compile_logp(jacobian=False)(point)

    idx = np.array([0, 0, 1])
    mu, sigma = point["mu"], np.exp(point["sigma_log__"])
    if shared:
        b = point["beta_shared"]
        assert b.shape == (2, 7)
        beta = np.stack([b, b])
    else:
        beta = b = point["beta"]
    loc = mu[idx] + np.einsum("sj,sjp->sp", X_COV, beta[idx])
    # PyMC holds the Python float mu_sd = 1.5 of the model without covariates as a float32 constant, so its
    # log σ is log(float32 1.5), 1.2e-8 off; the covariate code passes float64 scales
    mu_offset = mu.size * (np.log(1.5) - np.float64(np.log(np.float32(1.5))))
    expected = (
        mu_offset
        + stats.norm.logpdf(mu, 0.0, 1.5).sum()
        + stats.halfnorm.logpdf(sigma, scale=1.0).sum()
        + stats.norm.logpdf(b, 0.0, 0.5).sum()
    )
    if parametrization == "centred":
        z = point["z"]
        expected += stats.norm.logpdf(z, loc, sigma[idx]).sum()
    else:
        z = loc + sigma[idx] * point["eta"]
        expected += stats.norm.logpdf(point["eta"]).sum()
    expected += site_log_likelihoods(c14_problem, theta_from_logit(c14_problem.prior, z)).sum()
    assert np.isfinite(expected)
    assert lp == pytest.approx(expected, rel=1e-12)


@pytest.mark.filterwarnings("ignore:The effect of Potentials:UserWarning")
def test_horseshoe_model_builds_with_gradient_and_prior_draws(c14_problem):
    J = 3
    x = np.random.default_rng(1).standard_normal((3, J))
    hs = HorseshoePrior(p0=1)
    model = build_hierarchical_model(c14_problem, TYPES, covariates=x, shrinkage="horseshoe", horseshoe=hs)
    assert {"beta_eta", "beta_lambda", "beta_tau_unit", "beta_slab_unit"} <= set(model.named_vars)
    assert model.named_vars_to_dims["beta_tau_unit"] == ("forest_type", "parameter")
    rng = np.random.default_rng(2)
    point = {k: v + 0.2 * rng.standard_normal(v.shape) for k, v in model.initial_point().items()}
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    g = dlogp(point)
    assert np.isfinite(logp(point)) and np.all(np.isfinite(g))
    # gradient = finite differences along a random direction of the unconstrained space
    names = [v.name for v in model.value_vars]
    d = {k: rng.standard_normal(point[k].shape) for k in names}
    h = 1e-6
    fp = logp({k: point[k] + h * d[k] for k in names})
    fm = logp({k: point[k] - h * d[k] for k in names})
    assert (fp - fm) / (2 * h) == pytest.approx(float(g @ np.concatenate([d[k].ravel() for k in names])), rel=1e-5)
    post = _prior_draws(model)["posterior"]
    beta = post["beta"]
    assert beta.dims == ("chain", "draw", "forest_type", "covariate", "parameter")
    assert beta.shape == (1, 20, 2, J, 7)
    assert list(beta["covariate"].values) == ["x0", "x1", "x2"]
    assert np.all(np.isfinite(beta.values))
    # B = τ λ̃ η with λ̃² = c² λ² / (c² + τ² λ²), τ = τ0 τ_unit, c² = s² c²_unit, τ0 = p0 / (J − p0) σ_ref / √n_t
    tau0 = 1.0 / (J - 1.0) / np.sqrt([2.0, 1.0])
    np.testing.assert_allclose(hs.global_scale(J, [2, 1]), tau0)
    tau = tau0[:, None, None] * post["beta_tau_unit"].values[:, :, :, None, :]
    c2 = post["beta_slab_unit"].values[:, :, :, None, :]  # slab_scale 1
    lam = post["beta_lambda"].values
    expected = post["beta_eta"].values * tau * np.sqrt(c2 * lam**2 / (c2 + tau**2 * lam**2))
    np.testing.assert_allclose(beta.values, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="p0"):
        build_hierarchical_model(
            c14_problem, TYPES, covariates=x, shrinkage="horseshoe", horseshoe=HorseshoePrior(p0=3)
        )


@pytest.mark.filterwarnings("ignore:The effect of Potentials:UserWarning")
@pytest.mark.parametrize("shrinkage", ["normal", "horseshoe"])
def test_shared_beta_is_one_matrix_for_all_types(c14_problem, shrinkage):
    model = build_hierarchical_model(
        c14_problem, TYPES, covariates=X_COV, covariate_names=COV_NAMES, shared_beta=True, shrinkage=shrinkage
    )
    beta = _prior_draws(model)["posterior"]["beta"]
    assert beta.dims == ("chain", "draw", "forest_type", "covariate", "parameter")
    assert beta.shape == (1, 20, 2, 2, 7)
    np.testing.assert_array_equal(beta.sel(forest_type="A").values, beta.sel(forest_type="B").values)
    assert np.std(beta.values) > 0


def _design(c14_problem, site_ids=None) -> CovariateDesign:
    cols = ("mat", "clay")
    scaler = CovariateScaler(covariates=cols, columns=cols, center={"A": (0.0, 0.0), "B": (0.0, 0.0)}, scale=(1.0, 1.0))
    return CovariateDesign(X_COV, cols, tuple(site_ids or c14_problem.site_ids), scaler)


def test_bad_covariates_raise_naming_the_problem(c14_problem):
    def build(x, **kw):
        return build_hierarchical_model(c14_problem, TYPES, covariates=x, **kw)

    with pytest.raises(ValueError, match="one row per site: 3 sites, got 2 rows"):
        build(X_COV[:2])
    with pytest.raises(ValueError, match="matrix"):
        build(X_COV[:, 0])
    bad = X_COV.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match=f"covariate 'clay' of site '{c14_problem.site_ids[1]}' is not finite"):
        build(bad, covariate_names=COV_NAMES)
    with pytest.raises(ValueError, match="3 covariate names for 2"):
        build(X_COV, covariate_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="sites differ"):
        build(_design(c14_problem, site_ids=c14_problem.site_ids[::-1]))
    with pytest.raises(ValueError, match="shrinkage"):
        build(X_COV, shrinkage="lasso")
    # a design of the problem's sites is accepted, its columns name the covariates
    model = build(_design(c14_problem))
    assert list(model.coords["covariate"]) == ["mat", "clay"]
    np.testing.assert_array_equal(model["x_site"].get_value(), X_COV)


@pytest.mark.filterwarnings("ignore:The effect of Potentials:UserWarning")
def test_pymc_regression_result_predicts_new_sites(c14_problem):
    """A PyMC result with ``beta`` goes through ``predict_new_site_regression``: z = μ_t + x B_t + σ_t η."""
    model = build_hierarchical_model(c14_problem, TYPES, covariates=X_COV, covariate_names=COV_NAMES)
    dt = _prior_draws(model, draws=30, seed=3)
    x_new = np.array([0.4, -2.0])
    z = predict_new_site_regression(dt, x_new, np.random.default_rng(5), forest_type="B")
    assert z.dims == ("chain", "draw", "parameter") and z.shape == (1, 30, 7)
    post = dt["posterior"]
    mu = post["mu"].sel(forest_type="B").values
    sd = post["sigma"].sel(forest_type="B").values
    b = post["beta"].sel(forest_type="B").transpose("chain", "draw", "covariate", "parameter").values
    eta = np.random.default_rng(5).standard_normal((1, 30, 1, 7))[:, :, 0]
    np.testing.assert_allclose(z.values, mu + np.einsum("j,cdjp->cdp", x_new, b) + sd * eta, rtol=1e-12)
    rng = np.random.default_rng(6)
    th = sample_new_site_parameters_regression(dt, ["A", "B"], np.zeros((2, 2)), c14_problem.prior, rng)
    assert th.shape == (1, 30, 2, 7)
    assert np.all((th > c14_problem.prior.lower) & (th < c14_problem.prior.upper))
    with pytest.raises(ValueError, match="2 columns"):
        predict_new_site_regression(dt, [0.0, 1.0, 2.0], np.random.default_rng(0), forest_type="A")
    # predict_new_site draws from the regression at the site's covariates, and never silently at x = 0
    site = SiteModel(c14_problem.sites[0].obs.forcing)
    top, bottom = [0.0, 10.0], [10.0, 30.0]
    with pytest.raises(ValueError, match="give the new site's standardised covariates"):
        predict_new_site(dt, "B", site, top, bottom, c14_problem.prior, np.random.default_rng(5))
    pred = predict_new_site(dt, "B", site, top, bottom, c14_problem.prior, np.random.default_rng(5), covariates=x_new)
    np.testing.assert_allclose(pred["theta"].values, theta_from_logit(c14_problem.prior, z.values).reshape(-1, 7))
    plain = _prior_draws(build_hierarchical_model(c14_problem, TYPES), draws=5, seed=3)
    with pytest.raises(ValueError, match="no regression coefficients"):
        predict_new_site(plain, "B", site, top, bottom, c14_problem.prior, np.random.default_rng(5), covariates=x_new)


@pytest.mark.filterwarnings("ignore:The effect of Potentials:UserWarning")
def test_pymc_regression_result_keeps_the_covariate_scaler(c14_problem):
    """A PyMC regression result carries the ``covariates`` group of the two-stage one (x_site and the design's
    scaler), so that ``validate`` can standardise held-out sites with it."""
    model = build_hierarchical_model(c14_problem, TYPES, covariates=_design(c14_problem))
    dt = sample(model, sampler="demetropolisz", draws=4, tune=4, chains=1, random_seed=1)
    cov = dt["covariates"]
    np.testing.assert_array_equal(cov["x_site"].values, X_COV)
    assert list(cov["covariate"].values) == ["mat", "clay"] and list(cov["site_forest_type"].values) == TYPES
    assert CovariateScaler.from_json(cov.attrs["scaler"]).columns == ("mat", "clay")
    assert "covariates" not in sample(build_hierarchical_model(c14_problem, TYPES), sampler="demetropolisz", draws=4,
                                      tune=4, chains=1, random_seed=1).children  # fmt: skip
