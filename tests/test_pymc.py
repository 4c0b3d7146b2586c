"""Consistency of the PyMC adapter with the NumPy likelihood: the Op's value equals it exactly, its gradient
passes ``pytensor.gradient.verify_grad``, the models' log densities are the intended ones; short sampling
runs produce DataTree results with diagnostics; posterior predictive for new sites. Long runs are slow."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from pytensor.gradient import NullTypeGradError, verify_grad

from bayes_vmimics.atmosphere import ZONES, AtmosphericRecord
from bayes_vmimics.diagnostics import (
    plot_pair,
    plot_ridge_profile,
    posterior_samples,
    ridge_profile,
    xv_xk_correlation,
)
from bayes_vmimics.gradients import site_log_likelihoods
from bayes_vmimics.inference.pymc_models import (
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
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.model import SiteModel
from bayes_vmimics.parameters import PARAMETER_NAMES
from bayes_vmimics.synthetic import make_synthetic_sites, true_parameters

matplotlib.use("Agg")
# the Op runs in object mode under PyTensor's numba backend (a UserWarning from pytensor, ignored in pyproject);
# PyMC warns about short chains in the quick runs below
pytestmark = pytest.mark.filterwarnings("ignore:Only .* samples per chain:UserWarning")

YEARS = np.arange(1950, 2011)
THETA = true_parameters()


@pytest.fixture(scope="module")
def atmosphere():
    y = YEARS.astype(float)
    f = np.where(y < 1955, 0.975, 0.975 + (1.9 - 0.975) * (y - 1955) / 8.0)
    f = np.where(y > 1963, 1.0 + 0.9 * np.exp(-(y - 1963) / 16.0), f)
    return AtmosphericRecord("test", YEARS, np.tile(f, (len(ZONES), 1)))


@pytest.fixture(scope="module")
def sites(atmosphere):
    return make_synthetic_sites(
        3, rng=np.random.default_rng(2), with_c14=True, atmosphere=atmosphere, zone="NH1", sample_year=2003.4
    )


@pytest.fixture(scope="module")
def problem(sites, atmosphere):
    return CalibrationProblem(sites, atmosphere=atmosphere)


def test_op_value_equals_numpy_exactly(problem, sites, atmosphere):
    op = SiteLogLikelihoodOp(problem)
    x = pt.dmatrix("theta")
    f = pytensor.function([x], op(x)[0])
    thetas = THETA * np.array([[1.0], [1.04], [0.97]])
    np.testing.assert_array_equal(f(thetas), site_log_likelihoods(problem, thetas))
    one = CalibrationProblem(sites[:1], atmosphere=atmosphere)
    g = pytensor.function([x], SiteLogLikelihoodOp(one, gradient=False)(x))
    assert g(THETA[None, :])[0] == one.log_likelihood(THETA)


def test_op_verify_grad(problem):
    op = SiteLogLikelihoodOp(problem)
    thetas = THETA * np.array([[1.0], [1.04], [0.97]])
    verify_grad(lambda t: op(t)[0], [thetas], rng=np.random.default_rng(0))


def test_value_only_op_has_no_gradient(problem):
    op = SiteLogLikelihoodOp(problem, gradient=False)
    x = pt.dmatrix()
    with pytest.raises(NullTypeGradError):
        pytensor.grad(op(x).sum(), x)
    with pytest.raises(ValueError, match="gradient=True"):
        sample(build_pooled_model(problem, gradient=False), sampler="nuts")


def test_pooled_model_log_density(problem):
    model = build_pooled_model(problem)
    u = problem.prior.to_unit(THETA)
    point = {"theta_unit_interval__": np.log(u / (1 - u))}
    lp = model.compile_logp()(point)
    # uniform(0, 1) density 1, times the Jacobian of the logit transform u(1 − u)
    expected = problem.log_likelihood(THETA) + np.sum(np.log(u * (1 - u)))
    assert lp == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("parametrization", ["centred", "non_centred"])
def test_hierarchical_model_gradient_and_transform(problem, parametrization):
    model = build_hierarchical_model(problem, ["A", "A", "B"], parametrization=parametrization)
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
    lo, hi = problem.prior.lower, problem.prior.upper
    assert np.all((th > lo) & (th < hi))


def test_short_nuts_run_and_diagnostics(problem, tmp_path):
    model = build_single_site_model(problem, 0)
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
    single = CalibrationProblem([problem.sites[0].obs], use_c14=False)
    prof = ridge_profile(single.log_probability, samples, n_points=7)
    assert prof["log_density"].shape == (7,)
    assert np.isfinite(prof["log_density"]).any()
    plot_pair(samples)
    plot_ridge_profile(prof)
    matplotlib.pyplot.close("all")


def test_demetropolisz_run(problem):
    model = build_pooled_model(problem, [0, 1], gradient=False)
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


def test_new_site_posterior_predictive(problem):
    rng = np.random.default_rng(4)
    dt = _fake_hierarchical_posterior(rng)
    th = sample_new_site_parameters(dt, "B", problem.prior, rng)
    assert th.shape == (2, 50, 7)
    assert np.all((th.values > problem.prior.lower) & (th.values < problem.prior.upper))
    with pytest.raises(ValueError, match="unknown forest type"):
        sample_new_site_parameters(dt, "C", problem.prior, rng)
    site = SiteModel(problem.sites[0].obs.forcing)
    pred = predict_new_site(dt, "A", site, [0.0, 10.0, 30.0], [10.0, 30.0, 60.0], problem.prior, rng, max_draws=8)
    assert pred["soc"].shape == (8, 3)
    assert np.isfinite(pred["soc"]).all() and (pred["soc"] > 0).all()


@pytest.mark.slow
def test_hierarchical_nuts_smoke(atmosphere):
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
def test_op_with_other_error_models(sites, atmosphere, preset):
    """The Op follows the problem's error model: value equals NumPy exactly, gradient passes verify_grad,
    and a short NUTS run of the pooled model works (two synthetic sites)."""
    prob = CalibrationProblem(sites[:2], atmosphere=atmosphere, error_model=preset)
    op = SiteLogLikelihoodOp(prob)
    x = pt.dmatrix("theta")
    f = pytensor.function([x], op(x)[0])
    thetas = THETA * np.array([[1.0], [1.03]])
    np.testing.assert_array_equal(f(thetas), site_log_likelihoods(prob, thetas))
    paper = CalibrationProblem(sites[:2], atmosphere=atmosphere)
    assert not np.allclose(f(thetas), site_log_likelihoods(paper, thetas))
    verify_grad(lambda t: op(t)[0], [thetas], rng=np.random.default_rng(1))
    if preset == "discrepancy":
        dt = sample(build_pooled_model(prob), draws=10, tune=10, chains=1, max_treedepth=3, random_seed=4)
        assert dt["posterior"]["theta"].shape == (1, 10, 7)
        assert np.all(np.isfinite(dt["posterior"]["theta"].values))
