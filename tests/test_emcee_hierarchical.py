"""emcee's hierarchical variant: its density equals the PyMC centred hierarchical model's, and a short run
gives a DataTree in the PyMC conventions (convergence report and new-site prediction work on it)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_vmimics.inference.emcee_hierarchical import (
    HierarchicalLogProbability,
    hierarchical_datatree,
    run_hierarchical_ensembles,
)
from bayes_vmimics.inference.pymc_models import (
    build_hierarchical_model,
    posterior_convergence,
    sample_new_site_parameters,
)

TYPES = ["A", "A", "B"]


def test_density_equals_pymc_model(three_site_problem):
    logp = HierarchicalLogProbability(three_site_problem, TYPES)
    assert logp.ndim == 7 * (2 * 2 + 3)
    model = build_hierarchical_model(three_site_problem, TYPES, parametrization="centred")
    f = model.compile_logp()
    rng = np.random.default_rng(0)
    # equal up to rounding: PyTensor's sigmoid differs from NumPy's in the last bits, amplified by the peaked
    # likelihood (a missing term — a Jacobian, a normalising constant — would be off by O(1))
    for _ in range(3):
        mu = rng.normal(0.0, 0.5, (2, 7))
        sigma = np.exp(rng.normal(-0.5, 0.3, (2, 7)))
        z = mu[[0, 0, 1]] + sigma[[0, 0, 1]] * rng.standard_normal((3, 7))
        x = logp.pack(mu, sigma, z)
        back = logp.unpack(x)
        np.testing.assert_allclose(back[1], sigma)
        assert logp(x) == pytest.approx(float(f({"mu": mu, "sigma_log__": np.log(sigma), "z": z})), rel=1e-8)
    assert logp(np.full(logp.ndim, np.nan)) == -np.inf
    assert logp(np.zeros(3)) == -np.inf
    with pytest.raises(ValueError, match="one type per site"):
        HierarchicalLogProbability(three_site_problem, ["A"])


def test_short_run_and_conventions(three_site_problem):
    logp, runs = run_hierarchical_ensembles(three_site_problem, TYPES, n_steps=12, n_ensembles=2, seed=3)
    assert len(runs) == 2 and runs[0].chain.shape == (12, 2 * logp.ndim + 2, logp.ndim)
    assert np.isfinite(runs[0].log_prob).all()
    dt = hierarchical_datatree(logp, runs, discard=6, thin=2, max_draws=100)
    post = dt["posterior"]
    assert post["theta_population"].dims == ("chain", "draw", "forest_type", "parameter")
    assert post["theta_site"].shape[:3] == (2, post.sizes["draw"], 3)
    lo, hi = three_site_problem.prior.lower, three_site_problem.prior.upper
    assert np.all((post["theta_site"].values > lo) & (post["theta_site"].values < hi))
    rep = posterior_convergence(dt, ["theta_population"])
    assert rep["divergences"] == 0 and np.isfinite(rep["max_r_hat"])
    th = sample_new_site_parameters(dt, "B", three_site_problem.prior, np.random.default_rng(1))
    assert th.shape == (2, post.sizes["draw"], 7)
    again = run_hierarchical_ensembles(three_site_problem, TYPES, n_steps=12, n_ensembles=2, seed=3)[1]
    np.testing.assert_array_equal(again[1].chain, runs[1].chain)  # reproducible from the seed
    with pytest.raises(ValueError, match="n_walkers"):
        run_hierarchical_ensembles(three_site_problem, TYPES, n_steps=2, n_walkers=10)
