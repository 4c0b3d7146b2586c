"""Starting points of the samplers: logit box transforms, the MAP objective's gradient, per-site and pooled
MAPs, per-chain hierarchical initial values, and emcee walkers around a point."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from bayes_vmimics.gradients import site_log_likelihood_and_gradient
from bayes_vmimics.inference.emcee_sampler import initial_positions
from bayes_vmimics.inference.initial import (
    _objective,
    hierarchical_initial_values,
    logit_from_theta,
    pooled_map_estimate,
    site_map_estimates,
    theta_from_logit,
)
from bayes_vmimics.inference.pymc_models import build_hierarchical_model, build_pooled_model, map_initial_values
from bayes_vmimics.synthetic import true_parameters

THETA = true_parameters()


def _log_target(three_site_problem, s, theta):
    """log L_s + log-Jacobian of the unit box position in logit coordinates, computed directly."""
    v = three_site_problem.prior.to_unit(theta)
    ll, _ = site_log_likelihood_and_gradient(three_site_problem, s, theta)
    return ll + np.sum(np.log(v * (1 - v)))


def test_logit_round_trip(three_site_problem):
    z = np.linspace(-3, 3, 7)
    th = theta_from_logit(three_site_problem.prior, z)
    assert np.all((th > three_site_problem.prior.lower) & (th < three_site_problem.prior.upper))
    np.testing.assert_allclose(logit_from_theta(three_site_problem.prior, th), z, atol=1e-9)
    np.testing.assert_allclose(
        theta_from_logit(three_site_problem.prior, logit_from_theta(three_site_problem.prior, THETA)), THETA
    )


def test_objective_gradient_matches_finite_differences(three_site_problem):
    fun = _objective(lambda th: site_log_likelihood_and_gradient(three_site_problem, 0, th), three_site_problem.prior)
    z = logit_from_theta(three_site_problem.prior, THETA * 1.05)
    f, g = fun(z)
    assert f == pytest.approx(
        -_log_target(three_site_problem, 0, theta_from_logit(three_site_problem.prior, z)), rel=1e-12
    )
    fd = approx_fprime(z, lambda x: fun(x)[0], 1e-6)
    np.testing.assert_allclose(g, fd, rtol=2e-4, atol=1e-3 * np.abs(g).max())


def test_site_map_beats_truth_and_start(three_site_problem):
    z = site_map_estimates(three_site_problem, n_random_starts=1, seed=0)
    assert z.shape == (3, 7) and np.isfinite(z).all()
    for s in range(3):
        at_map = _log_target(three_site_problem, s, theta_from_logit(three_site_problem.prior, z[s]))
        assert at_map >= _log_target(three_site_problem, s, THETA) - 1e-6
        assert (
            at_map >= _log_target(three_site_problem, s, theta_from_logit(three_site_problem.prior, np.zeros(7))) - 1e-6
        )


def test_pooled_map_on_subset(three_site_problem):
    z = pooled_map_estimate(three_site_problem, [0, 1], n_random_starts=0)
    th = theta_from_logit(three_site_problem.prior, z)

    def pooled(theta):
        v = three_site_problem.prior.to_unit(theta)
        return sum(site_log_likelihood_and_gradient(three_site_problem, s, theta)[0] for s in (0, 1)) + np.sum(
            np.log(v * (1 - v))
        )

    assert pooled(th) >= pooled(THETA) - 1e-6


@pytest.mark.parametrize("centred", [True, False])
def test_hierarchical_initial_values(centred):
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.0, (5, 7))
    types = ["A", "B", "A", "B", "A"]
    iv = hierarchical_initial_values(z, types, 3, jitter=0.0, centred=centred)
    assert len(iv) == 3
    for d in iv:
        assert d["mu"].shape == (2, 7) and d["sigma"].shape == (2, 7) and (d["sigma"] >= 0.1).all()
        np.testing.assert_allclose(d["mu"][0], z[[0, 2, 4]].mean(axis=0))
        idx = np.array([0, 1, 0, 1, 0])
        zz = d["z"] if centred else d["mu"][idx] + d["sigma"][idx] * d["eta"]
        np.testing.assert_allclose(zz, z, atol=1e-12)
    jittered = hierarchical_initial_values(z, types, 2, jitter=0.1, seed=1, centred=centred)
    key = "z" if centred else "eta"
    assert not np.allclose(jittered[0][key], jittered[1][key])
    with pytest.raises(ValueError, match="z_sites must have shape"):
        hierarchical_initial_values(z[:4], types, 1)


def test_map_initial_values_fit_the_models(three_site_problem):
    h = build_hierarchical_model(three_site_problem, ["A", "A", "B"], parametrization="centred")
    iv = map_initial_values(h, 2, seed=0)
    assert set(iv[0]) == {"mu", "sigma", "z"}
    logp = h.compile_logp()
    at_map = logp({"mu": iv[0]["mu"], "sigma_log__": np.log(iv[0]["sigma"]), "z": iv[0]["z"]})
    at_centre = logp(h.initial_point())
    assert np.isfinite(at_map) and at_map > at_centre
    nc = build_hierarchical_model(three_site_problem, ["A", "A", "B"])  # non-centred by default
    assert set(map_initial_values(nc, 1)[0]) == {"mu", "sigma", "eta"}
    pooled = map_initial_values(build_pooled_model(three_site_problem, [0]), 2)
    assert len(pooled) == 2 and all(0 < d["theta_unit"].min() and d["theta_unit"].max() < 1 for d in pooled)
    with pytest.raises(ValueError, match="parametrization"):
        build_hierarchical_model(three_site_problem, ["A", "A", "B"], parametrization="centered-ish")


def test_emcee_walkers_around_a_point(three_site_problem):
    rng = np.random.default_rng(0)
    pos = initial_positions(
        three_site_problem.log_probability, three_site_problem.prior, 16, rng, around=THETA, scale=0.05
    )
    assert pos.shape == (16, 7)
    assert np.all((pos > three_site_problem.prior.lower) & (pos < three_site_problem.prior.upper))
    dz = logit_from_theta(three_site_problem.prior, pos) - logit_from_theta(three_site_problem.prior, THETA)
    assert np.abs(dz).max() < 0.5 and dz.std() > 0.01
