"""Exact gradients (bayes_vmimics.gradients) against central finite differences, at interior points and at the
edge cases of the issue: β = 1, x_D = 0.01, large α_v and α_r, a warm (30 °C) and a cold (−5 °C) site."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_vmimics.forcing import SiteForcing
from bayes_vmimics.gradients import (
    log_likelihood_and_gradient,
    rhs_parameter_derivative,
    site_log_likelihood,
    site_log_likelihood_and_gradient,
    site_log_likelihoods,
    site_log_likelihoods_and_gradients,
)
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.model import SiteModel
from bayes_vmimics.site_observations import SiteObservations
from bayes_vmimics.steady_state import solve_site
from bayes_vmimics.synthetic import make_synthetic_sites

YEARS = np.arange(1950, 2011)

#: (label, temperature °C, θ) — interior points and the issue's edge cases
CASES = [
    ("default-10C", 10.0, [4.0, 8.0, 2.0, 0.75, 10.0, 1.0, 1.2]),
    ("beta1-warm30C", 30.0, [7.7, 14.3, 2.0, 6.1, 12.0, 4.0, 1.0]),
    ("xD0.01-alphav25-cold-5C", -5.0, [7.7, 14.3, 2.0, 0.01, 12.0, 25.0, 1.56]),
    ("alphar28-beta1.9", 10.0, [20.0, 3.0, 10.0, 5.0, 28.0, 1.5, 1.9]),
    ("alphav30-alphar1", 15.0, [10.0, 20.0, 0.5, 2.0, 1.0, 30.0, 1.4]),
]
IDS = [c[0] for c in CASES]


@pytest.fixture(scope="module")
def base_sites(bomb_atmosphere):
    return make_synthetic_sites(
        2, rng=np.random.default_rng(1), with_c14=True, atmosphere=bomb_atmosphere, zone="NH1", sample_year=2003.4
    )


def _at_temperature(site: SiteObservations, T: float) -> SiteObservations:
    return SiteObservations(
        site.site_id, site.forcing.replace(temperature=T), site.top_cm, site.bottom_cm, site.soc_mg_cm3,
        site.bd_g_cm3, site.f14c, site.zone, site.sample_year,
    )  # fmt: skip


def _fd_gradient(f, theta, rel_step=1e-5):
    g = np.empty(theta.size)
    for p in range(theta.size):
        h = rel_step * theta[p]
        tp, tm = theta.copy(), theta.copy()
        tp[p] += h
        tm[p] -= h
        g[p] = (f(tp) - f(tm)) / (2.0 * h)
    return g


def _assert_close(g, fd, rtol):
    # relative per component; components far below the gradient's scale compared against that scale
    scale = np.maximum(np.abs(fd), 1e-6 * np.max(np.abs(fd)))
    rel = np.abs(g - fd) / scale
    assert np.all(rel <= rtol), f"max relative error {rel.max():.3g} (per component {rel})"


@pytest.mark.parametrize(("label", "T", "theta"), CASES, ids=IDS)
def test_rhs_parameter_derivative_matches_finite_differences(label, T, theta):
    theta = np.array(theta)
    site = SiteModel(SiteForcing(temperature=T, clay=0.25, litter_above=200.0, litter_below=150.0))
    C = solve_site(site, theta, on_failure="raise").pools
    dF = rhs_parameter_derivative(site, C, theta)
    assert dF.shape == (7, site.n_layers, 7)
    for p in range(7):
        h = 1e-6 * theta[p]
        tp, tm = theta.copy(), theta.copy()
        tp[p] += h
        tm[p] -= h
        fd = (site.dcdt(C, tp) - site.dcdt(C, tm)) / (2.0 * h)
        np.testing.assert_allclose(dF[:, :, p], fd, rtol=1e-6, atol=1e-6 * np.max(np.abs(fd)))


@pytest.mark.parametrize("use_c14", [False, True], ids=["soc", "soc+14C"])
@pytest.mark.parametrize(("label", "T", "theta"), CASES, ids=IDS)
def test_site_gradient_matches_finite_differences(base_sites, bomb_atmosphere, use_c14, label, T, theta):
    theta = np.array(theta)
    prob = CalibrationProblem([_at_temperature(base_sites[0], T)], atmosphere=bomb_atmosphere, use_c14=use_c14)
    assert prob.c14_enabled == use_c14
    v, g = site_log_likelihood_and_gradient(prob, 0, theta)
    assert np.isfinite(v)
    fd = _fd_gradient(lambda t: site_log_likelihood(prob, 0, t), theta)
    _assert_close(g, fd, 1e-5)


def test_gram_per_kg_unit_gradient(base_sites):
    prob = CalibrationProblem(base_sites[:1], soc_unit="g_kg", use_c14=False)
    theta = np.array([7.7, 14.3, 2.0, 6.1, 12.0, 4.0, 1.56])
    _, g = site_log_likelihood_and_gradient(prob, 0, theta)
    _assert_close(g, _fd_gradient(lambda t: site_log_likelihood(prob, 0, t), theta), 1e-5)


def test_values_equal_the_numpy_likelihood(base_sites, bomb_atmosphere):
    theta = np.array([7.7, 14.3, 2.0, 6.1, 12.0, 4.0, 1.56])
    one = CalibrationProblem(base_sites[:1], atmosphere=bomb_atmosphere)
    v, _ = log_likelihood_and_gradient(one, theta)
    assert v == one.log_likelihood(theta)  # exactly: same solver, same arithmetic (¹⁴C replica bitwise)
    two = CalibrationProblem(base_sites, atmosphere=bomb_atmosphere)
    thetas = np.array([theta, theta * 1.05])
    vals, grads = site_log_likelihoods_and_gradients(two, thetas)
    np.testing.assert_array_equal(vals, site_log_likelihoods(two, thetas))
    assert grads.shape == (2, 7)
    pooled, gp = log_likelihood_and_gradient(two, theta)
    assert pooled == pytest.approx(two.log_likelihood(theta), rel=1e-13)
    vals1, grads1 = site_log_likelihoods_and_gradients(two, theta)
    np.testing.assert_allclose(gp, grads1.sum(axis=0), rtol=1e-14)


def test_shape_errors(base_sites):
    prob = CalibrationProblem(base_sites, use_c14=False)
    with pytest.raises(ValueError, match="thetas must have shape"):
        site_log_likelihoods_and_gradients(prob, np.ones((3, 7)))


def test_climatology_and_paper_mode_are_refused(base_sites, bomb_atmosphere):
    s = base_sites[0]
    clim = SiteObservations(
        "clim", s.forcing.replace(temperature=10.0 + 8.0 * np.sin(np.arange(365) / 365 * 2 * np.pi)),
        s.top_cm, s.bottom_cm, s.soc_mg_cm3,
    )  # fmt: skip
    prob = CalibrationProblem([clim], use_c14=False)
    with pytest.raises(NotImplementedError, match="constant-temperature"):
        site_log_likelihood_and_gradient(prob, 0, np.array([4.0, 8.0, 2.0, 0.75, 10.0, 1.0, 1.2]))
    paper = CalibrationProblem([s], atmosphere=bomb_atmosphere, c14_mode="paper")
    with pytest.raises(NotImplementedError, match="tracer"):
        site_log_likelihood_and_gradient(paper, 0, np.array([4.0, 8.0, 2.0, 0.75, 10.0, 1.0, 1.2]))


@pytest.mark.parametrize("preset", ["weighted", "discrepancy"])
def test_values_equal_the_numpy_likelihood_with_other_error_models(base_sites, bomb_atmosphere, preset):
    theta = np.array([7.7, 14.3, 2.0, 6.1, 12.0, 4.0, 1.56])
    two = CalibrationProblem(base_sites, atmosphere=bomb_atmosphere, error_model=preset)
    vals, grads = site_log_likelihoods_and_gradients(two, theta)
    np.testing.assert_array_equal(vals, site_log_likelihoods(two, theta))
    pooled, gp = log_likelihood_and_gradient(two, theta)
    assert pooled == pytest.approx(two.log_likelihood(theta), rel=1e-13)
    np.testing.assert_allclose(gp, grads.sum(axis=0), rtol=1e-14)
    paper = CalibrationProblem(base_sites, atmosphere=bomb_atmosphere)
    assert pooled != pytest.approx(paper.log_likelihood(theta), rel=1e-3)
