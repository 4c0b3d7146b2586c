"""Likelihood: hand computation, −inf outside the prior and on non-convergence, warm starts, metrics."""

import math

import numpy as np
import pytest

import bayes_vmimics.likelihood as lk
from bayes_vmimics.grid import DepthGrid
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.metrics import bic_eq18, fit_metrics, regression, rmse_eq17
from bayes_vmimics.model import SiteModel
from bayes_vmimics.observation import ObservationOperator
from bayes_vmimics.site_observations import SiteObservations, radiocarbon_available
from bayes_vmimics.steady_state import solve_site
from bayes_vmimics.synthetic import make_synthetic_sites, true_parameters

GRID = DepthGrid.uniform(6, 10.0)


@pytest.fixture(scope="module")
def site():
    return make_synthetic_sites(1, rng=np.random.default_rng(5), interval_edges_cm=(0, 10, 30, 60), grid=GRID)[0]


def _hand_soc_loglik(site, theta, unit="mg_cm3", rel=0.1):
    model = SiteModel(site.forcing, GRID)
    ss = solve_site(model, theta, on_failure="raise")
    op = ObservationOperator(GRID, site.top_cm, site.bottom_cm, site.bd_g_cm3)
    mod = op.soc_mg_cm3(ss.pools) if unit == "mg_cm3" else op.soc_g_kg(ss.pools)
    obs = site.soc_mg_cm3 if unit == "mg_cm3" else site.soc_mg_cm3 / site.bd_g_cm3
    total = 0.0
    for o, m in zip(obs, mod, strict=True):
        s = rel * o
        total += -0.5 * ((o - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
    return total, mod, obs


@pytest.mark.parametrize("unit", ["mg_cm3", "g_kg"])
def test_soc_likelihood_matches_hand_computation(site, unit):
    theta = true_parameters() * 1.1
    pb = CalibrationProblem([site], grid=GRID, soc_unit=unit, warm_start=False)
    expected, mod, obs = _hand_soc_loglik(site, theta, unit)
    assert pb.log_likelihood(theta) == pytest.approx(expected, rel=1e-10)
    pw = pb.pointwise_log_likelihood(theta)
    assert pw["soc"].shape == (3,) and pw["f14c"].size == 0
    assert pw["soc"].sum() == pytest.approx(expected, rel=1e-10)
    assert pb.log_probability(theta) == pytest.approx(expected + pb.prior.log_prior(theta))
    # cost J (Eq 14-15) is the sum of squared relative residuals / 0.1²
    assert pb.cost(theta) == pytest.approx(np.sum(((obs - mod) / (0.1 * obs)) ** 2), rel=1e-9)


def test_floor_and_weights_by_hand(site):
    """The "weighted" preset: σ² = (0.1 y)² + (1 mg C cm⁻³)², each term × min(1, h/10 cm); site layers 10, 20, 30 cm
    thick, so all weights are 1 here and then set to 0.5 by a larger reference thickness."""
    theta = true_parameters() * 1.1
    _, mod, obs = _hand_soc_loglik(site, theta)
    sig = np.sqrt((0.1 * obs) ** 2 + 1.0)
    terms = -0.5 * ((obs - mod) / sig) ** 2 - np.log(sig) - 0.5 * math.log(2 * math.pi)
    pb = CalibrationProblem([site], grid=GRID, error_model="weighted")
    assert pb.log_likelihood(theta) == pytest.approx(terms.sum(), rel=1e-12)
    from bayes_vmimics.errors import ErrorModel

    em = ErrorModel.from_preset("weighted", reference_thickness_cm=20.0)
    w = np.minimum(1.0, (site.bottom_cm - site.top_cm) / 20.0)
    np.testing.assert_array_equal(w, [0.5, 1.0, 1.0])
    pb = CalibrationProblem([site], grid=GRID, error_model=em)
    assert pb.log_likelihood(theta) == pytest.approx(np.sum(w * terms), rel=1e-12)
    assert pb.pointwise_log_likelihood(theta)["soc"] == pytest.approx(w * terms, rel=1e-12)
    # the cost is the deviance from a perfect fit: Σ w (obs − mod)²/σ²
    assert pb.cost(theta) == pytest.approx(np.sum(w * ((obs - mod) / sig) ** 2), rel=1e-9)


def test_minus_inf_outside_prior(site):
    pb = CalibrationProblem([site], grid=GRID)
    theta = true_parameters()
    theta[6] = 2.5  # beta above its Table 1 range
    assert pb.log_probability(theta) == -np.inf
    assert pb.stats.n_evaluations == 0  # no model solve outside the box


def test_minus_inf_and_counted_on_non_convergence(site, monkeypatch):
    pb = CalibrationProblem([site], grid=GRID)
    theta = true_parameters()
    good = pb.log_probability(theta)
    assert np.isfinite(good)
    real = lk.solve_site

    def failing(model, th, init=None, **kw):
        ss = real(model, th, init, **kw)
        return type(ss)(**{**ss.__dict__, "converged": False, "message": "forced failure"})

    monkeypatch.setattr(lk, "solve_site", failing)
    assert pb.log_probability(theta) == -np.inf
    assert pb.stats.n_failed == 1 and pb.stats.failed_sites == {site.site_id: 1}
    assert pb.cost(theta) == np.inf


def test_warm_start_agrees_with_cold(site):
    warm = CalibrationProblem([site], grid=GRID, warm_start=True)
    cold = CalibrationProblem([site], grid=GRID, warm_start=False)
    rng = np.random.default_rng(0)
    base = true_parameters()
    for _ in range(10):
        th = base * (1 + 0.05 * rng.standard_normal(7))
        assert warm.log_probability(th) == pytest.approx(cold.log_probability(th), rel=1e-7, abs=1e-7)
    assert warm.stats.n_warm == 9 and cold.stats.n_warm == 0


def test_sigma_of_c14_uses_lambda_once(site):
    s = SiteObservations(
        site.site_id,
        site.forcing,
        site.top_cm,
        site.bottom_cm,
        site.soc_mg_cm3,
        f14c=np.array([1.1, 1.0, np.nan]),
        zone="NH2",
        sample_year=2000.0,
    )
    assert s.has_c14
    pb = CalibrationProblem([s], grid=GRID, atmosphere=object(), c14_weight=4.0, c14_rel_error=0.2)
    if not pb.c14_enabled:
        pytest.skip("bayes_vmimics.radiocarbon not available")
    p = pb.sites[0]
    np.testing.assert_array_equal(p.c14_index, [0, 1])
    np.testing.assert_allclose(p.c14_errors.sigma, 0.2 * np.array([1.1, 1.0]) / 2.0)


@pytest.mark.skipif(not radiocarbon_available(), reason="needs bayes_vmimics.radiocarbon")
def test_c14_likelihood_matches_hand_computation(data_dir):
    from bayes_vmimics.io.atmosphere import load_atmosphere
    from bayes_vmimics.parameters import Parameters
    from bayes_vmimics.radiocarbon import simulate_radiocarbon

    atm = load_atmosphere("hua2013", data_dir)
    s = make_synthetic_sites(
        1,
        rng=np.random.default_rng(2),
        interval_edges_cm=(0, 10, 30, 60),
        grid=GRID,
        with_c14=True,
        atmosphere=atm,
    )[0]
    theta = true_parameters() * 0.9
    pb = CalibrationProblem([s], grid=GRID, atmosphere=atm, warm_start=False)
    assert pb.c14_enabled and pb.n_c14 == 3
    model = SiteModel(s.forcing, GRID)
    ss = solve_site(model, theta, on_failure="raise")
    c14 = simulate_radiocarbon(ss, model, Parameters.from_array(theta), atm, "NH2", 2000.0).c14_pools
    op = ObservationOperator(GRID, s.top_cm, s.bottom_cm)
    f = op.f14c(ss.pools, c14)
    sig = 0.1 * s.f14c / math.sqrt(5.0)
    expected_c14 = np.sum(-0.5 * ((s.f14c - f) / sig) ** 2 - np.log(sig) - 0.5 * math.log(2 * math.pi))
    soc, _, _ = _hand_soc_loglik(s, theta)
    pw = pb.pointwise_log_likelihood(theta)
    assert pw["f14c"].sum() == pytest.approx(expected_c14, rel=1e-9)
    assert pb.log_likelihood(theta) == pytest.approx(soc + expected_c14, rel=1e-9)
    # sites without 14C contribute only SOC
    s2 = SiteObservations("no14c", s.forcing, s.top_cm, s.bottom_cm, s.soc_mg_cm3)
    pb2 = CalibrationProblem([s, s2], grid=GRID, atmosphere=atm, warm_start=False)
    assert pb2.n_c14 == 3 and pb2.n_soc == 6
    assert pb2.log_likelihood(theta) == pytest.approx(2 * soc + expected_c14, rel=1e-9)


def test_metrics_by_hand():
    obs = [np.array([1.0, 2.0]), np.array([3.0, 5.0, 7.0])]
    mod = [np.array([1.5, 2.0]), np.array([3.0, 4.0, 7.0])]
    rmse = math.sqrt(((0.25 + 0) / 2 + (0 + 1 + 0) / 3) / 2)
    assert rmse_eq17(obs, mod) == pytest.approx(rmse)
    assert bic_eq18(rmse, 2, 7) == pytest.approx(4 * math.log(rmse) + 14)
    a, b, r2 = regression([1, 2, 3], [3, 5, 7])
    assert (a, b, r2) == pytest.approx((1.0, 2.0, 1.0))
    fm = fit_metrics(obs, mod)
    assert fm.n_sites == 2 and fm.n_obs == 5 and fm.rmse == pytest.approx(rmse)
