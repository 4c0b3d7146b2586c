"""Held-out validation of hierarchical results: new sites of a forest type predicted from its population."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_vmimics.inference.initial import logit_from_theta
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.parameters import PARAMETER_NAMES
from bayes_vmimics.plotting import plot_profiles
from bayes_vmimics.predictive import add_held_out_predictive, held_out_scores
from bayes_vmimics.priors import BoxPrior
from bayes_vmimics.synthetic import make_synthetic_sites, population_site_parameters, true_parameters

NPAR = len(PARAMETER_NAMES)
SIGMA = 0.3  # population sd of the held-out sites (logit units)


def population_result(mu, sigma, calibration_sites=("cal_0", "cal_1"), chains=2, draws=100, seed=0):
    """A hierarchical result whose posterior is the population (mu, sigma) itself, up to small jitter, with the
    variables of the two-stage and PyMC results."""
    rng = np.random.default_rng(seed)
    m = mu + 0.02 * rng.standard_normal((chains, draws, 1, NPAR))
    s = sigma * np.exp(0.02 * rng.standard_normal((chains, draws, 1, NPAR)))
    site = np.zeros((chains, draws, len(calibration_sites), NPAR))
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "forest_type": ["ENF"]}
    post = xr.Dataset(
        {
            "mu": (("chain", "draw", "forest_type", "parameter"), m),
            "sigma": (("chain", "draw", "forest_type", "parameter"), s),
            "theta_site": (("chain", "draw", "site", "parameter"), site),
        },
        coords={**coords, "parameter": list(PARAMETER_NAMES), "site": list(calibration_sites)},
    )
    return xr.DataTree.from_dict({"posterior": post})


@pytest.fixture(scope="module")
def held_out():
    prior = BoxPrior()
    mu = logit_from_theta(prior, true_parameters())
    rng = np.random.default_rng(7)
    theta = population_site_parameters(6, mu, SIGMA, prior, rng=rng)
    problem = CalibrationProblem(make_synthetic_sites(6, theta, rng=rng), use_c14=False, warm_start=False)
    return mu, problem


def test_held_out_sites_draw_their_parameters_from_the_population(held_out):
    mu, problem = held_out
    dt = add_held_out_predictive(population_result(mu, SIGMA), problem, ["ENF"] * 6, max_draws=120, seed=1)
    th = dt["posterior"]["theta_site"]
    assert th.sizes == {"chain": 2, "draw": 60, "site": 6, "parameter": NPAR}
    assert list(th["site"].values) == problem.site_ids and set(th["forest_type"].values) == {"ENF"}
    z = logit_from_theta(problem.prior, th.values).reshape(-1, NPAR)
    se = SIGMA / np.sqrt(z.shape[0])
    assert np.all(np.abs(z.mean(axis=0) - mu) < 5 * se), (z.mean(axis=0), mu)
    np.testing.assert_allclose(z.std(axis=0), SIGMA, rtol=0.12)
    # each site and draw has its own draw from the population, not one θ for all sites
    assert np.all(np.std(z.reshape(2, 60, 6, NPAR), axis=2) > 0.01)
    assert dt.attrs["n_failed_predictive"] == 0 and dt.attrs["held_out_forest_types"] == "ENF"
    # reproducible from the seed
    again = add_held_out_predictive(population_result(mu, SIGMA), problem, ["ENF"] * 6, max_draws=120, seed=1)
    np.testing.assert_array_equal(again["posterior_predictive"]["soc"].values, dt["posterior_predictive"]["soc"].values)


def test_the_scores_tell_a_right_population_from_a_wrong_one(held_out, tmp_path):
    mu, problem = held_out
    right = add_held_out_predictive(population_result(mu, SIGMA), problem, ["ENF"] * 6, max_draws=200)
    wrong_mu = mu.copy()
    wrong_mu[PARAMETER_NAMES.index("x_v")] += 2.0  # faster uptake: far less SOC
    wrong = add_held_out_predictive(population_result(wrong_mu, SIGMA), problem, ["ENF"] * 6, max_draws=200)
    s_right, s_wrong = held_out_scores(right, problem), held_out_scores(wrong, problem)
    assert list(s_right.index) == ["soc"]
    assert s_right.loc["soc", "n_sites"] == 6 and s_right.loc["soc", "n_obs"] == 36
    # 36 observations: the 90 % interval of a correct predictive covers 26–36 of them with probability > 0.99
    assert 0.72 <= s_right.loc["soc", "coverage_90"] <= 1.0, s_right
    assert s_right.loc["soc", "coverage_50"] < s_right.loc["soc", "coverage_90"]
    assert s_wrong.loc["soc", "coverage_90"] < 0.5 * s_right.loc["soc", "coverage_90"], s_wrong
    assert s_right.loc["soc", "lppd"] > s_wrong.loc["soc", "lppd"] + 1.0, (s_right, s_wrong)
    assert s_right.loc["soc", "rmse"] < s_wrong.loc["soc", "rmse"]
    assert plot_profiles(right, tmp_path / "held_out.png").stat().st_size > 0


def test_held_out_validation_rejects_bad_input(held_out):
    mu, problem = held_out
    res = population_result(mu, SIGMA, calibration_sites=("cal_0", problem.site_ids[2]))
    with pytest.raises(ValueError, match=r"synthetic_02.*are calibration sites of the result"):
        add_held_out_predictive(res, problem, ["ENF"] * 6)
    with pytest.raises(ValueError, match="unknown forest type 'DBF'"):
        add_held_out_predictive(population_result(mu, SIGMA), problem, ["DBF"] * 6)
    with pytest.raises(ValueError, match="5 forest types for 6 held-out sites"):
        add_held_out_predictive(population_result(mu, SIGMA), problem, ["ENF"] * 5)
    pooled = xr.DataTree.from_dict(
        {"posterior": population_result(mu, SIGMA)["posterior"].to_dataset().drop_vars("mu")}
    )
    with pytest.raises(ValueError, match="not a hierarchical result"):
        add_held_out_predictive(pooled, problem, ["ENF"] * 6)


def test_validate_command_on_real_held_out_sites(tmp_path, capsys, data_dir):
    from bayes_vmimics.cli import main

    prior = BoxPrior()
    res = population_result(logit_from_theta(prior, true_parameters()), 0.5)
    res["posterior"] = res["posterior"].to_dataset().assign_coords(forest_type=["BNF"])
    path = tmp_path / "run" / "results.nc"
    path.parent.mkdir()
    res.to_netcdf(path, engine="h5netcdf")
    args = ["validate", str(path.parent), "--data-dir", str(data_dir), "--max-sites", "2", "--predictive-draws", "8"]
    args.append("--no-fit-discrepancy-prior")  # a hand-made result: no calibration sites to fit the κ prior on
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "held-out sites: real sites: 2 site(s)" in out and "validation half" in out
    scores = pd.read_csv(path.parent / "validation" / "held_out_scores.csv", index_col=0)
    assert list(scores.index) == ["soc", "f14c"] and list(scores["n_sites"]) == [2, 2]
    assert scores[["coverage_50", "coverage_90"]].ge(0).all().all() and np.isfinite(scores["lppd"]).all()
    depth = pd.read_csv(path.parent / "validation" / "held_out_by_depth.csv")
    assert depth.groupby("variable")["n_obs"].sum().to_dict() == scores["n_obs"].to_dict()
    assert "by depth" in out
    held = xr.open_datatree(path.parent / "validation" / "held_out.nc", engine="h5netcdf")
    assert held["posterior"]["theta_site"].sizes["site"] == 2
    assert (path.parent / "validation" / "held_out_profiles.png").stat().st_size > 0
    # a result without a population is a named error
    pooled = tmp_path / "pooled.nc"
    xr.DataTree.from_dict({"posterior": res["posterior"].to_dataset().drop_vars(["mu", "sigma"])}).to_netcdf(
        pooled, engine="h5netcdf"
    )
    assert main(["validate", str(pooled), "--data-dir", str(data_dir)]) == 2
    assert "is neither a hierarchical result (population 'mu') nor a pooled calibration" in capsys.readouterr().err


TINY = """
[model]
max_obs_depth_cm = 100.0
[data]
forest_type = "BNF"
max_sites = 2
[likelihood]
error_model = "{error_model}"
[sampler]
n_walkers = 14
n_steps = 6
discard = 2
thin = 1
n_ensembles = 2
start = "{start}"
map_starts = 3
progress = false
[optimize]
maxiter = 2
popsize = 2
polish = false
"""


def _tiny_config(tmp_path, error_model="paper", start="prior"):
    path = tmp_path / f"tiny_{error_model}_{start}.toml"
    path.write_text(TINY.format(error_model=error_model, start=start))
    return path


def _validate(main, run, data_dir, *extra, out=None):
    args = ["validate", str(run), "--data-dir", str(data_dir), "--max-sites", "2", "--predictive-draws", "6"]
    args += ["--seed", "1", *extra] + (["--out", str(out)] if out else [])
    assert main(args) == 0
    return pd.read_csv((out or run / "validation") / "held_out_scores.csv", index_col=0)


def test_validate_scores_an_optimize_point_estimate(tmp_path, capsys, data_dir):
    from bayes_vmimics.cli import main

    run = tmp_path / "opt"
    args = ["optimize", "--config", str(_tiny_config(tmp_path)), "--data-dir", str(data_dir), "--out", str(run)]
    assert main(args) == 0
    assert "J = " in capsys.readouterr().out
    scores = _validate(main, run, data_dir)
    out = capsys.readouterr().out
    assert "point estimate, forest type(s) BNF" in out
    assert "configuration: the result's own (point_estimate.json); error model 'paper'" in out
    assert list(scores.index) == ["soc", "f14c"] and set(scores["result"]) == {"point estimate"}
    assert list(scores["n_draws"]) == [1, 1] and np.isfinite(scores["lppd"]).all()
    assert scores.loc["soc", "unit"] == "mg C cm-3" and "bulk density" in scores.loc["soc", "note"]
    held = xr.open_datatree(run / "validation" / "held_out.nc", engine="h5netcdf")
    assert held.attrs["result"] == "point estimate" and "soc_observed" in held["posterior_predictive"]
    assert (run / "validation" / "held_out_profiles.png").stat().st_size > 0


def test_validate_reads_the_error_model_of_a_calibrate_result(tmp_path, capsys, data_dir):
    """A pooled posterior calibrated with the discrepancy error model is scored with it, without --config: the
    held-out sites' κ prior is fitted on the calibration sites; --config overrides, and says so."""
    from bayes_vmimics.cli import main

    run = tmp_path / "cal"
    cfg = _tiny_config(tmp_path, "discrepancy")
    args = ["calibrate", "--config", str(cfg), "--data-dir", str(data_dir), "--out", str(run), "--n-processes", "1"]
    assert main(args) == 0
    report = (run / "report.txt").read_text()
    assert "best posterior draw (of the 3 with highest log posterior): deviance = " in report
    capsys.readouterr()
    scores = _validate(main, run, data_dir)
    out = capsys.readouterr().out
    assert "pooled posterior, forest type(s) BNF" in out
    assert "configuration: the result's own (results.nc attribute); error model 'discrepancy'" in out
    assert "κ prior of the held-out sites fitted on 2 calibration sites at the posterior median: SOC a = " in out
    assert set(scores["error_model"]) == {"discrepancy"} and scores["kappa_prior_median"].gt(0).all()
    assert list(scores["n_draws"]) == [6, 6]
    held = xr.open_datatree(run / "validation" / "held_out.nc", engine="h5netcdf")
    used = json.loads(held.attrs["configuration"])["likelihood"]
    assert used["discrepancy_scale"] == pytest.approx(scores.loc["soc", "kappa_prior_median"], rel=1e-12)
    # without the fit: the configuration's own κ prior; with the paper's model by --config: other scores
    plain = _validate(main, run, data_dir, "--no-fit-discrepancy-prior", out=tmp_path / "v2")
    assert "kappa_prior_median" not in plain.columns
    paper = _validate(main, run, data_dir, "--config", str(_tiny_config(tmp_path)), out=tmp_path / "v3")
    out = capsys.readouterr().out
    assert "configuration: --config" in out and "error model 'paper'" in out
    assert set(paper["error_model"]) == {"paper"}
    assert paper.loc["soc", "lppd"] != pytest.approx(scores.loc["soc", "lppd"])
    assert main(["validate", str(run), "--data-dir", str(data_dir), "--fit-discrepancy-prior", "--config",
                 str(_tiny_config(tmp_path)), "--out", str(tmp_path / "v4")]) == 2  # fmt: skip
    assert "has no site-scale discrepancy" in capsys.readouterr().err


@pytest.mark.slow
def test_validate_scores_a_multimap_calibration_and_a_hierarchical_run(tmp_path, capsys, data_dir):
    from bayes_vmimics.cli import main

    cfg = str(_tiny_config(tmp_path, start="multimap"))
    cal = tmp_path / "cal"
    assert main(["calibrate", "--config", cfg, "--data-dir", str(data_dir), "--out", str(cal)]) == 0
    out = capsys.readouterr().out
    assert "from 3 local optimisations" in out and "ensemble k starts around optimum k mod" in out
    assert "best optimum found by the start search (multimap" in out
    assert set(_validate(main, cal, data_dir)["result"]) == {"pooled posterior"}
    hier = tmp_path / "hier"
    args = ["hierarchical", "--config", cfg, "--data-dir", str(data_dir), "--forest-types", "BNF", "--n-steps", "30"]
    args += ["--n-walkers", "14", "--draws", "60", "--chains", "2", "--refine", "never", "--predictive-draws", "4"]
    assert main([*args, "--no-progress", "--n-processes", "1", "--out", str(hier)]) == 0
    capsys.readouterr()
    scores = _validate(main, hier, data_dir)
    out = capsys.readouterr().out
    assert "hierarchical population, forest type(s) BNF" in out and "configuration: the result's own" in out
    assert set(scores["result"]) == {"hierarchical population"} and np.isfinite(scores["lppd"]).all()


def test_validate_refuses_a_synthetic_pooled_result(tmp_path, capsys, data_dir):
    from bayes_vmimics.cli import main
    from bayes_vmimics.config import load_config

    post = xr.Dataset(
        {n: (("chain", "draw"), np.full((1, 2), v)) for n, v in zip(PARAMETER_NAMES, true_parameters(), strict=True)}
    )
    dt = xr.DataTree.from_dict({"posterior": post})
    dt.attrs["configuration"] = json.dumps(load_config("study_quick").replace(study={"mode": "synthetic"}).to_dict())
    dt.to_netcdf(tmp_path / "results.nc", engine="h5netcdf")
    assert main(["validate", str(tmp_path), "--data-dir", str(data_dir)]) == 2
    assert "is a synthetic-twin result: it has no held-out sites" in capsys.readouterr().err
