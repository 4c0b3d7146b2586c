"""Sensitivity analyses (bayes_vmimics.sensitivity): SALib wrappers against analytic answers, and on
the model the invariances the paper's Morris screening and Fig 7 rest on."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_vmimics import sensitivity as sa
from bayes_vmimics.forcing import SiteForcing
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.parameters import DEFAULTS, PARAMETER_NAMES
from bayes_vmimics.site_observations import SiteObservations

pytest.importorskip("SALib")

A = np.array([1.0, -2.0, 0.0])  # the third input does not enter: a dummy
BOUNDS = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 1.0]])


class Linear:
    """y = A·x (picklable, as the code path requires)."""

    output_names = ["y"]

    def __call__(self, X):
        return np.asarray(X) @ A


class Ishigami:
    output_names = ["y"]

    def __call__(self, X):
        X = np.asarray(X)
        return np.sin(X[:, 0]) + 7 * np.sin(X[:, 1]) ** 2 + 0.1 * X[:, 2] ** 4 * np.sin(X[:, 0])


class FailSome:
    """Linear, but NaN wherever x0 > 0.9 (a "failed steady state")."""

    output_names = ["y"]

    def __call__(self, X):
        X = np.asarray(X)
        y = X @ A
        y[X[:, 0] > 0.9] = np.nan
        return y


# ----------------------------------------------------------------------------- analytic functions
def test_morris_linear_function_has_known_elementary_effects():
    r = sa.analyse_site("morris", Linear(), names=["a", "b", "dummy"], bounds=BOUNDS, n_trajectories=10, progress=False)
    t = r.indices.set_index("parameter")
    # the elementary effect per fraction of the range is a_i · (range_i): exactly, with σ = 0
    np.testing.assert_allclose(t["mu"], A * (BOUNDS[:, 1] - BOUNDS[:, 0]), atol=1e-12)
    np.testing.assert_allclose(t["mu_star"], np.abs(A * (BOUNDS[:, 1] - BOUNDS[:, 0])), atol=1e-12)
    np.testing.assert_allclose(t["sigma"], 0.0, atol=1e-12)
    assert t.loc["dummy", "mu_star"] == 0.0
    # importance of the two real inputs: r = (1, 4), σ of r = 1.5
    np.testing.assert_allclose(t.loc[["a", "b"], "importance"], [1 / 1.5, 4 / 1.5])
    assert np.isnan(t.loc["dummy", "importance"])
    assert len(r.X) == 10 * 4


def test_paper_importance():
    np.testing.assert_allclose(sa.paper_importance([3.0, 0.0], [4.0, 0.0]), [2.0, 0.0])


def test_sobol_ishigami_matches_analytic_indices():
    b = np.array([[-np.pi, np.pi]] * 3)
    r = sa.analyse_site("sobol", Ishigami(), names=["x1", "x2", "x3"], bounds=b, n_base=1024, seed=3, progress=False)
    t = r.indices.set_index("parameter")
    # Ishigami (a = 7, b = 0.1): S1 = (0.3139, 0.4424, 0), ST = (0.5576, 0.4424, 0.2437)
    np.testing.assert_allclose(t["S1"], [0.3139, 0.4424, 0.0], atol=0.05)
    np.testing.assert_allclose(t["ST"], [0.5576, 0.4424, 0.2437], atol=0.05)
    assert np.all(t["S1_conf"] > 0) and len(r.X) == 1024 * 5


def test_given_data_first_order_of_a_linear_function():
    rng = np.random.default_rng(0)
    sd = np.array([1.0, 2.0, 0.5])
    X = rng.normal(size=(2000, 3)) * sd
    coef = np.array([1.0, -2.0, 3.0])

    class Lin3:
        def __call__(self, X):
            return np.asarray(X) @ coef

    r = sa.analyse_site("posterior", Lin3(), names=["a", "b", "c"], draws=X, progress=False)
    exact = (coef * sd) ** 2 / np.sum((coef * sd) ** 2)  # 0.052, 0.831, 0.117
    np.testing.assert_allclose(r.indices["S1"], exact, atol=0.06)
    # dependent inputs: an inactive input correlated 0.9 with the only active one has S1 = 0.9² (given data)
    Xc = rng.multivariate_normal(np.zeros(3), [[1, 0.9, 0], [0.9, 1, 0], [0, 0, 1]], size=2000)
    t = sa.given_data_indices(Xc, Xc[:, 0], ["a", "b", "c"])
    np.testing.assert_allclose(t["S1"], [1.0, 0.81, 0.0], atol=0.05)


def test_failed_points_drop_their_trajectory_or_block():
    m = sa.analyse_site("morris", FailSome(), names=["a", "b", "c"], bounds=BOUNDS, n_trajectories=20, progress=False)
    n_traj_failed = np.any(~np.isfinite(m.Y[:, 0].reshape(20, 4)), axis=1).sum()
    assert n_traj_failed > 0 and m.n_failed > 0
    assert (m.indices["n_dropped"] == n_traj_failed).all()
    assert (m.indices["n_trajectories"] == 20 - n_traj_failed).all()
    np.testing.assert_allclose(m.indices["mu"], A * (BOUNDS[:, 1] - BOUNDS[:, 0]), atol=1e-12)
    s = sa.analyse_site("sobol", FailSome(), names=["a", "b", "c"], bounds=BOUNDS, n_base=64, progress=False)
    assert (s.indices["n_dropped"] > 0).all() and np.isfinite(s.indices["ST"]).all()


def test_sobol_needs_power_of_two():
    with pytest.raises(ValueError, match="power of 2"):
        sa.sobol_design(["a", "b"], BOUNDS[:2], n_base=100)


def test_resume_reads_the_finished_file_and_refuses_other_settings(tmp_path):
    first = sa.analyse_site("morris", Linear(), names=["a", "b", "dummy"], bounds=BOUNDS, seed=5, out_dir=tmp_path)

    class Boom:
        def __call__(self, X):
            raise AssertionError("a finished site must not be run again")

    again = sa.analyse_site("morris", Boom(), names=["a", "b", "dummy"], bounds=BOUNDS, seed=5, out_dir=tmp_path)
    np.testing.assert_array_equal(again.Y, first.Y)
    np.testing.assert_allclose(again.indices["mu_star"], first.indices["mu_star"])
    with pytest.raises(ValueError, match="other settings"):
        sa.analyse_site("morris", Linear(), names=["a", "b", "dummy"], bounds=BOUNDS, seed=6, out_dir=tmp_path)


# ----------------------------------------------------------------------------- the model
@pytest.fixture(scope="module")
def four_layer_problem():
    top = np.array([0.0, 10.0, 20.0, 40.0])
    bottom = np.array([10.0, 20.0, 40.0, 60.0])
    site = SiteObservations(
        "test_site", SiteForcing(temperature=8.0, clay=0.2), top, bottom, np.array([30.0, 18.0, 10.0, 6.0])
    )
    return CalibrationProblem([site], use_c14=False)


def test_paper_costs_by_hand(four_layer_problem):
    q = four_layer_problem.predict_site(0, DEFAULTS)
    obs = four_layer_problem.sites[0].obs
    j1, j2 = sa.paper_costs(obs, q)
    assert j1 == pytest.approx(np.sum(((obs.soc_mg_cm3 - q.soc_mg_cm3) / (0.1 * obs.soc_mg_cm3)) ** 2))
    assert np.isnan(j2)  # no F14C observed

    class Fake:
        soc_mg_cm3 = obs.soc_mg_cm3 * 1.1
        f14c = np.array([1.0, 0.9, 0.8, 0.7])

    class Obs:
        soc_mg_cm3 = obs.soc_mg_cm3
        f14c = np.array([1.1, np.nan, 0.8, 0.7])

    j1, j2 = sa.paper_costs(Obs, Fake)
    assert j1 == pytest.approx(4 * 1.0)  # each layer off by 10 % = one s
    assert j2 == pytest.approx(5.0 * (0.1 / 0.11) ** 2)  # λ = 5, one layer off by 0.1, s = 0.11


def test_morris_on_the_model_order_invariance_and_dummy(four_layer_problem):
    names = ("x_v", "alpha_r", "dummy")
    ev = sa.SiteEvaluator(four_layer_problem, 0, names)
    r = sa.analyse_site("morris", ev, names=names, n_trajectories=4, seed=11, progress=False)
    t = r.indices[r.indices["output"] == "J1"].set_index("parameter")
    assert t.loc["dummy", "mu_star"] == 0.0 and t.loc["dummy", "sigma"] == 0.0
    assert t.loc["x_v", "mu_star"] > 0 and t.loc["alpha_r", "mu_star"] > 0
    # the same design with its columns in another order gives the same μ* per parameter
    perm = [2, 0, 1]
    names_p = tuple(names[k] for k in perm)
    ev_p = sa.SiteEvaluator(four_layer_problem, 0, names_p)
    Yp = sa.evaluate_design(ev_p, r.X[:, perm], progress=False)
    np.testing.assert_array_equal(np.isnan(Yp), np.isnan(r.Y))
    np.testing.assert_allclose(Yp, r.Y, rtol=1e-12, equal_nan=True)
    tp = sa.morris_indices(r.X[:, perm], Yp, names_p, output_names=ev_p.output_names, seed=11)
    tp = tp[tp["output"] == "J1"].set_index("parameter")
    np.testing.assert_allclose(tp.loc[list(names), "mu_star"], t.loc[list(names), "mu_star"], rtol=1e-12)


def test_model_runs_are_reproducible_from_the_seed_serial_or_parallel(four_layer_problem):
    names = ("x_K", "x_d")
    ev = sa.SiteEvaluator(four_layer_problem, 0, names)
    a = sa.analyse_site("morris", ev, names=names, n_trajectories=3, seed=4, progress=False)
    with sa.process_map(2) as map_fn:
        b = sa.analyse_site("morris", ev, names=names, n_trajectories=3, seed=4, map_fn=map_fn, progress=False)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.Y, b.Y)
    c = sa.morris_design(names, n_trajectories=3, seed=5)
    assert not np.array_equal(a.X, c)


def test_profiles_at_zero_change_equal_the_base_profile(four_layer_problem):
    ds = sa.perturbed_profiles(four_layer_problem, DEFAULTS, changes=(0.0, 0.25))
    for p in sa.PROFILE_PARAMETERS:
        np.testing.assert_array_equal(ds["perturbed"].sel(parameter=p, change=0.0).values, ds["base"].values)
    assert not np.allclose(ds["perturbed"].sel(parameter="alpha_r", change=0.25), ds["base"])
    assert ds.sizes["depth"] == four_layer_problem.base_grid.n_layers


def test_evaluator_rejects_unknown_parameter(four_layer_problem):
    with pytest.raises(ValueError, match="unknown parameter"):
        sa.SiteEvaluator(four_layer_problem, 0, ("x_v", "kappa"))
    assert set(sa.default_bounds(PARAMETER_NAMES)[:, 0]) <= {2.0, 0.1, 0.01, 1.0}


def test_command_line_parses_and_names_a_bad_results_count():
    import argparse

    from bayes_vmimics import sensitivity_cli

    parser = argparse.ArgumentParser()
    sensitivity_cli.add_sensitivity_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sensitivity", "sobol", "--forest-type", "ENF", "EBF", "--results", "a.nc", "--quick"])
    assert args.func is sensitivity_cli.cmd_sensitivity and args.analysis == "sobol" and args.split == "all"
    with pytest.raises(ValueError, match="one pooled result per"):
        sensitivity_cli._results_for(args, ["ENF", "EBF"])
    with pytest.raises(SystemExit):
        parser.parse_args(["sensitivity", "morris", "--n-processes", "0"])


@pytest.mark.integration
def test_command_line_on_the_synthetic_twin_writes_outputs_and_resumes(tmp_path, monkeypatch):
    from bayes_vmimics import sensitivity_cli

    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("BAYES_VMIMICS_DATA", raising=False)
    common = ["--synthetic", "--quick", "--no-progress", "--out", str(tmp_path), "--max-sites", "1"]
    for analysis in ("morris", "sobol", "profiles", "response"):
        assert sensitivity_cli.main([analysis, *common]) == 0
    for name in ("morris_indices.csv", "morris_importance.png", "sobol_indices.csv", "fig7_profiles.png"):
        assert (tmp_path / name).is_file()
    site_file = next((tmp_path / "morris_sites").glob("*.nc"))
    stamp = site_file.stat().st_mtime_ns
    assert sensitivity_cli.main(["morris", *common]) == 0  # resumed: the finished site is not rerun
    assert site_file.stat().st_mtime_ns == stamp
    assert sensitivity_cli.main(["morris", *common, "--seed", "7"]) == 2  # other settings: an error, no traceback


def test_response_points_lie_on_the_curves_and_follow_the_exponential(four_layer_problem):
    ds = sa.response_curves(four_layer_problem, 0, DEFAULTS, n_multipliers=40)
    for driver in ("litter", "V"):
        for d in (15.0, 35.0):
            curve = np.interp(
                ds["point_factor"].sel(driver=driver, depth=d),
                ds["multiplier"],
                ds["soc"].sel(driver=driver, depth=d),
            )
            # diffusion (nearly) off: a layer's SOC depends on its own input and V only
            np.testing.assert_allclose(curve, ds["point_soc"].sel(driver=driver, depth=d), rtol=0.01)
    # V ∝ exp(−α_v z) (P §2.1): α_v × 1.25 changes V in the 15–20 cm layer (midpoint 0.175 m) by exp(−0.25 α_v z)
    alpha_v = DEFAULTS[PARAMETER_NAMES.index("alpha_v")]
    factor = ds["point_factor"].sel(driver="V", depth=15.0, change=0.25)
    assert float(factor) == pytest.approx(np.exp(-0.25 * alpha_v * 0.175), rel=1e-6)
    # less root input at depth when α_r grows
    assert float(ds["point_factor"].sel(driver="litter", depth=35.0, change=0.25)) < 1.0


def _old_paper_costs(obs, prediction, rel_error=0.1, c14_weight=5.0):
    """The formula of the former sensitivity_analysis.paper_costs (P Eqs 15, 16), kept as the reference."""
    c_obs = np.asarray(obs.soc_mg_cm3, float)
    j1 = float(np.sum(((c_obs - prediction.soc_mg_cm3) / (rel_error * c_obs)) ** 2))
    j2 = np.nan
    ok = np.isfinite(obs.f14c)
    f_mod = np.asarray(prediction.f14c, float)[ok]
    if ok.any() and np.all(np.isfinite(f_mod)):
        f_obs = obs.f14c[ok]
        j2 = float(c14_weight * np.sum(((f_obs - f_mod) / (rel_error * f_obs)) ** 2))
    return j1, j2


@pytest.mark.parametrize("rel_error, c14_weight", [(0.1, 5.0), (0.2, 1.0), (0.05, 3.0)])
def test_cost_from_the_error_model_equals_the_paper_formula(rel_error, c14_weight):
    from types import SimpleNamespace

    rng = np.random.default_rng(7)
    for n, spread in ((1, 0.3), (6, 0.01), (12, 1.0), (30, 0.1)):
        f_obs = rng.uniform(0.5, 1.2, n)
        f_obs[rng.random(n) < 0.3] = np.nan
        obs = SimpleNamespace(soc_mg_cm3=rng.lognormal(2.0, 1.0, n), f14c=f_obs)
        pred = SimpleNamespace(soc_mg_cm3=obs.soc_mg_cm3 * rng.lognormal(0.0, spread, n), f14c=rng.uniform(0.4, 1.3, n))
        new = sa.paper_costs(obs, pred, rel_error=rel_error, c14_weight=c14_weight)
        old = _old_paper_costs(obs, pred, rel_error, c14_weight)
        np.testing.assert_allclose(new, old, rtol=1e-12)
        assert np.isnan(new[1]) == np.isnan(old[1])
    # the identity J = −2 (log L − Σ const) needs the Gaussian, unweighted likelihood of the paper's preset
    from bayes_vmimics.errors import ErrorModel

    term = ErrorModel.from_preset("weighted").prepare("soc", [10.0, 20.0], [5.0, 20.0], 0.1)
    with pytest.raises(ValueError, match="Gaussian log-likelihood"):
        sa.chi_square(term, [11.0, 19.0])
