"""Multiple modes: multi-start MAP search, ensembles started at distinct optima, and the report's warning when an
optimiser beats every posterior draw."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_vmimics.inference import initial
from bayes_vmimics.inference.emcee_sampler import run_ensembles
from bayes_vmimics.inference.initial import (
    distinct_optima,
    logit_from_theta,
    multistart_map_estimates,
    theta_from_logit,
)
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.priors import BoxPrior
from bayes_vmimics.synthetic import make_synthetic_sites, true_parameters

MODES = (0.3, 0.7)  # unit positions of the two modes, the same in every coordinate
WIDTH = 0.08


def _from_unit(prior, v):
    v = np.asarray(v, dtype=float)
    return theta_from_logit(prior, np.log(v / (1.0 - v)))


def _bimodal(prior):
    """log L(θ) with two separated bumps in the unit cube of the box, the first higher, and its exact gradient."""

    def loglik(theta):
        v = prior.to_unit(theta)
        dv = np.where(
            prior.is_log, 1.0 / (theta * np.log(prior.upper / prior.lower)), 1.0 / (prior.upper - prior.lower)
        )
        parts = [-0.5 * np.sum((v - m) ** 2) / WIDTH**2 + w for m, w in zip(MODES, (0.0, -1.0), strict=True)]
        top = max(parts)
        weights = np.exp(np.array(parts) - top)
        ll = top + np.log(weights.sum())
        grad_v = sum(w * (-(v - m) / WIDTH**2) for w, m in zip(weights, MODES, strict=True)) / weights.sum()
        return 100.0 * ll, 100.0 * grad_v * dv

    return loglik


def test_distinct_optima_merge_close_ones_and_order_by_value():
    z = np.array([[0.0] * 7, [0.2] * 7, [3.0] * 7, [np.nan] * 7])
    assert distinct_optima(z, np.array([1.0, 2.0, 0.5, np.nan]), tol=1.0) == [1, 2]
    assert distinct_optima(z[:3], np.array([1.0, 2.0, 0.5]), tol=0.1) == [1, 0, 2]


def test_multistart_finds_two_modes(monkeypatch):
    problem = CalibrationProblem(make_synthetic_sites(1, rng=np.random.default_rng(0)), use_c14=False)
    monkeypatch.setattr(initial, "log_likelihood_and_gradient", lambda p, th: _bimodal(p.prior)(th))
    optima = multistart_map_estimates(problem, n_starts=8, seed=0)
    assert len(optima) == 2, [z for z, _ in optima]
    v = [1.0 / (1.0 + np.exp(-z)) for z, _ in optima]
    # best first: the higher mode at 0.3, then the one at 0.7 (the box prior's log-Jacobian moves them slightly)
    np.testing.assert_allclose(v[0], MODES[0], atol=0.02)
    np.testing.assert_allclose(v[1], MODES[1], atol=0.02)
    assert optima[0][1] > optima[1][1]
    # one start finds one optimum
    assert len(multistart_map_estimates(problem, n_starts=1, seed=0)) == 1
    with pytest.raises(ValueError, match="n_starts"):
        multistart_map_estimates(problem, n_starts=0)


def test_each_ensemble_starts_around_its_optimum():
    prior = BoxPrior()
    starts = [_from_unit(prior, np.full(7, m)) for m in MODES]

    def log_prob(theta):
        return _bimodal(prior)(theta)[0] if prior.in_support(theta) else -np.inf

    runs = run_ensembles(log_prob, prior, around=starts, n_ensembles=3, seed=1, n_walkers=14, n_steps=1)
    for k, run in enumerate(runs):
        v = prior.to_unit(run.chain[0])
        np.testing.assert_allclose(v.mean(axis=0), MODES[k % 2], atol=0.05)  # cycled: 0.3, 0.7, 0.3
    with pytest.raises(ValueError, match="empty list"):
        run_ensembles(log_prob, prior, around=[], n_ensembles=2, seed=1, n_walkers=14, n_steps=1)


def test_report_warns_when_an_optimiser_beats_the_posterior():
    """Chains started away from the optimum (a missed mode) for a few steps: the best draw's cost (re-evaluated
    as calibrate does) is far above the optimum's, and the report says so; chains at the optimum do not warn."""
    from bayes_vmimics.optimize import cost_name
    from bayes_vmimics.results import build_datatree, format_report
    from bayes_vmimics.workflows.calibrate import best_draw_cost

    problem = CalibrationProblem(make_synthetic_sites(2, rng=np.random.default_rng(2)), use_c14=False)
    truth = true_parameters()
    away = _from_unit(problem.prior, np.full(7, 0.9))  # J ≈ 150 there, ≈ 4 at the truth
    reports = {}
    for label, start in (("missed", away), ("found", truth)):
        runs = run_ensembles(problem, problem.prior, around=start, n_ensembles=2, seed=3, n_walkers=14, n_steps=3)
        attrs = {
            "cost_name": cost_name(problem),
            "start": "multimap",
            "posterior_best_cost": best_draw_cost(problem, runs, 0),
            "optimiser_best_cost": float(problem.cost(truth)),
            "optimiser_costs": f"[{float(problem.cost(truth))}]",
        }
        reports[label] = format_report(build_datatree(problem, runs, max_draws=10, extra_attrs=attrs))
    assert "warning: an optimiser found J = " in reports["missed"], reports["missed"]
    assert "best posterior draw (of the 3 with highest log posterior): J = " in reports["found"]
    assert "warning: an optimiser found" not in reports["found"]


def test_cost_is_called_j_only_under_the_paper_error_model():
    from bayes_vmimics.optimize import cost_name

    sites = make_synthetic_sites(1, rng=np.random.default_rng(0))
    assert cost_name(CalibrationProblem(sites, use_c14=False)) == "J"
    assert cost_name(CalibrationProblem(sites, use_c14=False, error_model="floor")) == "deviance"
    assert logit_from_theta(BoxPrior(), true_parameters()).shape == (7,)


def test_calibrate_starts_from_the_optimize_optimum_too(tmp_path, capsys, data_dir):
    """--start-from: the differential-evolution optimum of `optimize` joins the MAP optima of the start search, and
    the report compares the best optimum's J with the best posterior draw's."""
    import json

    from bayes_vmimics.cli import main

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        '[model]\nmax_obs_depth_cm = 100.0\natmosphere = "hua2013"\n'
        '[data]\nforest_type = "BNF"\nmax_sites = 2\nsources = ["he2016"]\n'
        '[sampler]\nn_walkers = 14\nn_steps = 4\ndiscard = 1\nthin = 1\nn_ensembles = 2\nstart = "map"\n'
        "progress = false\n[optimize]\nmaxiter = 2\npopsize = 2\npolish = false\n"
        '[likelihood]\nerror_model = "paper"\n'  # the report's cost is the paper's J under this preset
    )
    common = ["--config", str(cfg), "--data-dir", str(data_dir)]
    assert main(["optimize", *common, "--out", str(tmp_path / "opt")]) == 0
    pe = json.loads((tmp_path / "opt" / "point_estimate.json").read_text())
    assert pe["cost_name"] == "J" and pe["configuration"]["data"]["forest_type"] == "BNF"
    capsys.readouterr()
    args = ["calibrate", *common, "--out", str(tmp_path / "cal"), "--start-from", str(tmp_path / "opt")]
    assert main([*args, "--n-processes", "1"]) == 0
    out = capsys.readouterr().out
    assert "from 4 local optimisations and 1 given start(s)" in out
    # the crude optimize result (2 generations, J ≈ 2e4 against ≈ 1.4e3 at the MAP) starts no ensemble
    assert "optimum 0: J = " in out and "left out: J more than 100 above the best" in out
    assert "best optimum found by the start search (map, 1 distinct optimum): J = " in out
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["calibrate", *common, "--out", str(tmp_path / "cal2"), "--start-from", str(bad)]) == 2
    assert "not a readable point_estimate.json" in capsys.readouterr().err
