"""Predictive scores of point estimates, pooled posteriors and populations under the problem's error model."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.parameters import PARAMETER_NAMES
from bayes_vmimics.predictive import add_shared_held_out_predictive, held_out_scores
from bayes_vmimics.scoring import (
    discrepancy_prior_keys,
    fit_discrepancy_prior_sites,
    predict_draws,
    score_predictions,
)
from bayes_vmimics.synthetic import make_synthetic_sites, true_parameters

TRUTH = true_parameters()


@pytest.fixture(scope="module")
def sites():
    return make_synthetic_sites(5, rng=np.random.default_rng(11))


def _problem(sites, error_model="paper"):
    return CalibrationProblem(sites, use_c14=False, warm_start=False, error_model=error_model)


def _wrong_theta():
    wrong = TRUTH.copy()
    wrong[PARAMETER_NAMES.index("x_v")] *= 3.0  # faster uptake: far less SOC
    return wrong


def test_point_estimate_scores_tell_right_from_wrong(sites):
    problem = _problem(sites)
    right = add_shared_held_out_predictive(problem, TRUTH, ["ENF"] * 5, kind="point estimate", seed=1)
    wrong = add_shared_held_out_predictive(problem, _wrong_theta(), ["ENF"] * 5, kind="point estimate", seed=1)
    s_right, s_wrong = held_out_scores(right, problem, seed=1), held_out_scores(wrong, problem, seed=1)
    assert s_right.loc["soc", "n_draws"] == 1 and s_right.loc["soc", "n_sites"] == 5
    # the twin's noise is the paper's 10 %: the true θ covers about 90 % of 30 observations at 90 %
    assert 0.7 <= s_right.loc["soc", "coverage_90"] <= 1.0, s_right
    assert s_right.loc["soc", "lppd"] > s_wrong.loc["soc", "lppd"] + 1.0, (s_right, s_wrong)
    assert s_wrong.loc["soc", "coverage_90"] < 0.5
    assert s_right.loc["soc", "unit"] == "mg C cm-3" and "bulk density" in s_right.loc["soc", "note"]


def test_pooled_posterior_scores_tell_right_from_wrong(sites):
    problem = _problem(sites)
    rng = np.random.default_rng(3)
    jitter = np.exp(0.02 * rng.standard_normal((2, 10, len(PARAMETER_NAMES))))
    right = add_shared_held_out_predictive(problem, TRUTH * jitter, ["ENF"] * 5, kind="pooled posterior", seed=1)
    wrong = add_shared_held_out_predictive(
        problem, _wrong_theta() * jitter, ["ENF"] * 5, kind="pooled posterior", seed=1
    )
    assert right["posterior"]["theta_site"].sizes == {"chain": 2, "draw": 10, "site": 5, "parameter": 7}
    s_right, s_wrong = held_out_scores(right, problem), held_out_scores(wrong, problem)
    assert s_right.loc["soc", "lppd"] > s_wrong.loc["soc", "lppd"] + 1.0
    assert s_right.loc["soc", "rmse"] < s_wrong.loc["soc", "rmse"]


def test_held_out_scores_delegate_to_scoring_under_the_error_model(sites):
    """One code path: the scores of a stored predictive equal scoring.score_predictions of its draws, and they
    follow the error model (an absolute floor widens the intervals and changes the lppd)."""
    rng = np.random.default_rng(5)
    draws = TRUTH * np.exp(0.05 * rng.standard_normal((1, 12, len(PARAMETER_NAMES))))
    out = {}
    for name in ("paper", "floor"):
        problem = _problem(sites, name)
        held = add_shared_held_out_predictive(problem, draws, ["ENF"] * 5, kind="pooled posterior", seed=2)
        table = held_out_scores(held, problem, seed=4)
        direct = score_predictions(problem, predict_draws(problem, draws[0]), seed=4)
        for col in ("rmse", "r2", "lppd", "coverage_50", "coverage_90"):
            assert table.loc["soc", col] == pytest.approx(direct.loc["soc", col], rel=1e-12), col
        out[name] = table
    assert out["floor"].loc["soc", "lppd"] != pytest.approx(out["paper"].loc["soc", "lppd"], rel=1e-6)
    assert out["floor"].loc["soc", "coverage_90"] >= out["paper"].loc["soc", "coverage_90"]


def test_replicated_observations_carry_the_error_model(sites):
    """soc_observed = model value + the error model's noise: under the paper's model its relative spread is the
    10 % of the observed values."""
    problem = _problem(sites)
    draws = np.broadcast_to(TRUTH, (1, 300, len(PARAMETER_NAMES)))
    held = add_shared_held_out_predictive(problem, draws, ["ENF"] * 5, kind="pooled posterior", max_draws=300)
    pp = held["posterior_predictive"]
    rel = (pp["soc_observed"] - pp["soc"]).values.reshape(-1, problem.n_soc) / problem.observations()["soc"]
    np.testing.assert_allclose(rel.std(axis=0).mean(), 0.1, rtol=0.1)
    assert "paper" in pp.attrs["observation_error"]


def test_fitted_kappa_prior_matches_the_problem_and_sets_the_config_keys(sites):
    problem = _problem(sites, "discrepancy")
    one = fit_discrepancy_prior_sites(problem, TRUTH)
    ref = problem.fit_discrepancy_prior(TRUTH)
    np.testing.assert_allclose(one["soc"], ref["soc"], rtol=1e-10)
    per_site = fit_discrepancy_prior_sites(problem, np.broadcast_to(TRUTH, (5, 7)))
    np.testing.assert_allclose(per_site["soc"], ref["soc"], rtol=1e-10)
    keys = discrepancy_prior_keys(one)
    assert keys == {"discrepancy_shape": one["soc"][0], "discrepancy_scale": one["soc"][1]}
    with pytest.raises(ValueError, match="no site-scale discrepancy"):
        fit_discrepancy_prior_sites(_problem(sites), TRUTH)
    with pytest.raises(ValueError, match="must have shape"):
        fit_discrepancy_prior_sites(problem, np.ones((2, 7)))


def test_synthetic_twin_keeps_the_paper_error_model():
    from bayes_vmimics.config import load_config
    from bayes_vmimics.study import build_study

    cfg = load_config("study_quick").replace(
        study={"mode": "synthetic"}, synthetic={"n_sites": 2, "with_c14": False}, likelihood={"error_model": "floor"}
    )
    st = build_study(cfg)
    assert st.problem.error_model.name == "paper"
    assert any("error model 'paper' for the synthetic twin" in n for n in st.notes)
    st = build_study(cfg.replace(likelihood={"error_model": "paper"}))
    assert not any("synthetic twin" in n for n in st.notes)


def test_scores_by_depth_add_up_and_show_the_side_of_a_bias(sites):
    """The depth bands partition the observations (their coverage, weighted by n_obs, is the overall one), a
    calibrated prediction misses on both sides, and a prediction biased low misses above the interval."""
    from bayes_vmimics.predictive import held_out_by_depth
    from bayes_vmimics.scoring import score_by_depth

    problem = _problem(sites)
    right = predict_draws(problem, TRUTH)
    total = score_predictions(problem, right, seed=2)
    bands = score_by_depth(problem, right, seed=2)
    assert bands["n_obs"].sum() == total.loc["soc", "n_obs"]
    for lv in (50, 90):
        weighted = np.sum(bands["n_obs"] * bands[f"coverage_{lv}"]) / bands["n_obs"].sum()
        assert weighted == pytest.approx(total.loc["soc", f"coverage_{lv}"], abs=1e-12)
        sides = bands[f"coverage_{lv}"] + bands[f"above_{lv}"] + bands[f"below_{lv}"]
        assert np.allclose(sides, 1.0)
    assert np.all(np.diff(bands["top_cm"]) > 0)
    # the per-observation table holds what the scores summarise: same noise draws, same coverage; a band's r²
    # and RMSE are those of its rows
    from bayes_vmimics.metrics import regression
    from bayes_vmimics.scoring import predictive_table

    table = predictive_table(problem, right, seed=2)
    soc = table[table["variable"] == "soc"]
    assert len(soc) == total.loc["soc", "n_obs"]
    assert np.all(soc[["q05", "q25", "q75", "q95"]].diff(axis=1).iloc[:, 1:] >= 0)
    o = soc["observed"]
    assert np.mean((o >= soc["q05"]) & (o <= soc["q95"])) == pytest.approx(total.loc["soc", "coverage_90"])
    assert np.mean((o >= soc["q25"]) & (o <= soc["q75"])) == pytest.approx(total.loc["soc", "coverage_50"])
    top = soc[soc["layer"] == 0].set_index("site_id")["top_cm"]
    assert top.equals(soc.groupby("site_id")["top_cm"].min().reindex(top.index))
    mid = 0.5 * (soc["top_cm"] + soc["bottom_cm"])
    for _, band in bands[bands["variable"] == "soc"].iterrows():
        k = (mid >= band["top_cm"]) & (mid < band["bottom_cm"])
        assert band["r2"] == pytest.approx(regression(o[k], soc["median"][k])[2], nan_ok=True)
        assert band["rmse"] == pytest.approx(np.sqrt(np.mean((soc["median"][k] - o[k]) ** 2)))
    low = {v: 0.5 * p for v, p in right.items()}  # every layer predicted at half its model value
    biased = score_by_depth(problem, low, seed=2)
    assert np.all(biased["above_90"] > 0.5) and np.all(biased["below_90"] == 0.0), biased
    assert np.all(biased["median_ratio"] < 0.7)
    # the result-level function reads a predictive DataTree the same way
    held = add_shared_held_out_predictive(problem, TRUTH, ["ENF"] * 5, kind="point estimate", seed=2)
    assert held_out_by_depth(held, problem, seed=2)["n_obs"].sum() == total.loc["soc", "n_obs"]
    with pytest.raises(ValueError, match="increasing band edges"):
        score_by_depth(problem, right, bands_cm=(0.0, 30.0, 10.0))
