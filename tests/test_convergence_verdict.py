"""The convergence verdict: one function from a run's diagnostics to "converged" / "not converged" with the failed
criteria in words, a smoke-run mark for ``--quick``; every report states it first and ``validate`` carries it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_vmimics.cli import main
from bayes_vmimics.convergence import ConvergenceVerdict, convergence_verdict, result_verdict

NAMES = ["x_v", "x_K"]

#: A calibrate run that takes seconds: one synthetic site, no MAP search, a few steps.
TINY = """
[study]
name = "tiny"
[synthetic]
n_sites = 1
[sampler]
n_walkers = 14
n_steps = 8
discard = 2
thin = 1
max_draws = 50
n_ensembles = 2
n_processes = 1
start = "prior"
progress = false
"""


# ----------------------------------------------------------------------------- the function
def test_a_short_run_is_not_converged_and_says_why():
    """The diagnostics of `calibrate --quick --synthetic --seed 1` (R-hat 1.003–1.019, N/τ < 50): no criterion
    passes silently."""
    v = convergence_verdict(
        rhat=[1.003, 1.019], n_over_tau=[[12.0, 60.0], [70.0, 80.0]], ess_bulk=[300.0, 900.0], names=NAMES
    )
    assert not v.converged and v.label == "not converged" and not v.smoke_run
    assert v.failed == (
        "max R-hat 1.019 > 1.01 (x_K)",
        "min N/τ 12 < 50 (τ unreliable: sample longer)",
        "min bulk ESS 300 < 400 (x_v)",
    )
    assert v.line().startswith("convergence verdict: NOT CONVERGED — failed: max R-hat 1.019 > 1.01")


def test_every_criterion_met_is_converged():
    v = convergence_verdict(
        rhat=[1.001, 1.004], n_over_tau=[[60.0, 80.0]], ess_bulk=[800, 1200], weight_ess_q05=[9.0, 30.0], divergences=0
    )
    assert v.converged and v.failed == ()
    assert v.line() == (
        "convergence verdict: CONVERGED — passed: R-hat ≤ 1.01, N/τ ≥ 50, bulk ESS ≥ 400, stage-2 weight ESS "
        "(5 % quantile) ≥ 5 at every site, no NUTS divergences"
    )


def test_hierarchical_criteria_name_the_sites():
    """The README's trust rule of a hierarchical run: population R-hat ≤ 1.01 and a stage-2 weight ESS (5 %
    quantile) ≥ 5 at every site."""
    v = convergence_verdict(rhat=[1.164], weight_ess_q05=[1.5, 8.0, np.nan], sites=["a", "b", "c"], divergences=3)
    assert not v.converged
    assert "max R-hat 1.164 > 1.01" in v.failed
    assert "stage-2 weight ESS (5 % quantile) 1.5 < 5 at 2 of 3 site(s) (a, c)" in v.failed
    assert "3 NUTS divergence(s)" in v.failed


def test_what_cannot_be_computed_fails_and_nothing_checked_is_not_converged():
    v = convergence_verdict(rhat=[np.nan, 1.0], n_over_tau=[[np.inf, np.nan]])
    assert not v.converged and v.failed[0].startswith("R-hat not computed") and v.failed[1].startswith("τ unknown")
    assert convergence_verdict().failed == ("no convergence diagnostics (nothing was checked)",)


def test_smoke_runs_are_marked_and_notes_fail():
    v = convergence_verdict(rhat=[1.0], smoke_run=True, notes=["burn-in cut from 200 to 25 steps"])
    assert not v.converged and v.smoke_run and v.failed == ("burn-in cut from 200 to 25 steps",)
    assert "SMOKE RUN" in v.line()
    assert ConvergenceVerdict.from_json(v.to_json()) == v
    assert json.loads(v.to_json())["verdict"] == "not converged"


def test_a_point_estimate_is_judged_by_its_optimiser():
    assert convergence_verdict(optimiser_message="Optimization terminated successfully.").converged
    v = convergence_verdict(optimiser_message="Maximum number of iterations has been exceeded.")
    assert v.failed == (
        "the optimiser stopped before its convergence test passed (Maximum number of iterations has been exceeded.)",
    )


def test_result_verdict_of_a_hierarchical_result_reads_its_groups():
    rng = np.random.default_rng(1)
    mu = rng.standard_normal((2, 500, 1, 2))
    mu[1] += 3.0  # the chains disagree
    post = xr.Dataset(
        {"mu": (("chain", "draw", "forest_type", "parameter"), mu)},
        coords={"forest_type": ["ENF"], "parameter": NAMES},
    )
    diag = xr.Dataset({"weight_ess_q05": (("chain", "site"), [[2.0, 9.0], [3.0, 12.0]])}, coords={"site": ["s", "t"]})
    stage1 = xr.Dataset(
        {"tau": (("site", "parameter"), [[10.0, 10.0], [100.0, 10.0]])},
        coords={"site": ["s", "t"], "parameter": NAMES},
        attrs={"n_steps": 1000, "discard": 500},
    )
    dt = xr.DataTree.from_dict({"posterior": post, "stage2_diagnostics": diag, "stage1": stage1})
    dt.attrs["smoke_run"] = 1
    v = result_verdict(dt)
    assert not v.converged and v.smoke_run
    assert v.failed[0].startswith("max R-hat ") and "(mu[ENF, x_v], mu[ENF, x_K])" in v.failed[0]
    assert "min N/τ 5 < 50 (τ unreliable: sample longer) (t)" in v.failed
    assert "stage-2 weight ESS (5 % quantile) 2 < 5 at 1 of 2 site(s) (s)" in v.failed


# ----------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(TINY)
    return path


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_calibrate_report_and_summarise_state_the_verdict_first(tmp_path, capsys, monkeypatch, tiny_config):
    monkeypatch.delenv("BAYES_VMIMICS_DATA", raising=False)
    out = tmp_path / "run"
    rc, text, _ = _run(capsys, "calibrate", "--synthetic", "--quick", "--config", tiny_config, "--out", out)
    assert rc == 0
    first = (out / "report.txt").read_text().splitlines()[0]
    assert first.startswith("convergence verdict: NOT CONVERGED (SMOKE RUN: --quick settings")
    assert "max R-hat" in first and "N/τ" in first and "bulk ESS" in first
    assert first in text and "burn-in 2, 6 kept per ensemble" in text
    dt = xr.open_datatree(out / "results.nc", engine="h5netcdf")
    stored = json.loads(dt.attrs["convergence_verdict"])
    assert stored["verdict"] == "not converged" and stored["smoke_run"] and dt.attrs["smoke_run"] == 1
    # summarise recomputes it from the stored diagnostics; --quick: the report and summary.csv only
    rc, text, _ = _run(capsys, "summarise", out, "--quick", "--out", tmp_path / "again")
    assert rc == 0 and text.splitlines()[0] == first and "(--quick: no figures)" in text
    assert (tmp_path / "again" / "summary.csv").is_file() and not (tmp_path / "again" / "pair.png").exists()


def test_n_steps_not_above_the_burn_in(tmp_path, capsys, monkeypatch, tiny_config):
    monkeypatch.delenv("BAYES_VMIMICS_DATA", raising=False)
    # a full run is refused, naming both numbers, before anything starts
    rc, _, err = _run(capsys, "calibrate", "--synthetic", "--n-steps", 500, "--out", tmp_path / "a")
    assert rc == 2 and "--n-steps 500 is not above the burn-in of 1000 steps" in err and "--discard" in err
    assert not (tmp_path / "a").exists()
    rc, _, err = _run(capsys, "calibrate", "--synthetic", "--quick", "--n-steps", 50, "--discard", 50)
    assert rc == 2 and "--n-steps 50 is not above the burn-in of 50 steps (--discard)" in err
    # a --quick smoke run keeps the second half and says so, in its output and in its verdict
    cfg = tmp_path / "burn_in.toml"
    cfg.write_text(
        tiny_config.read_text().replace("discard = 2", "discard = 10").replace("n_steps = 8", "n_steps = 20")
    )
    out = tmp_path / "b"
    rc, text, _ = _run(capsys, "calibrate", "--synthetic", "--quick", "--config", cfg, "--n-steps", 8, "--out", out)
    assert rc == 0
    note = "burn-in cut from 10 to 4 steps (--n-steps 8 ≤ sampler.discard of the configuration (tiny))"
    assert f"note: {note}: only the last 4 of 8 steps per ensemble are kept" in text
    assert note in (out / "report.txt").read_text().splitlines()[0]


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("calibrate", "--n-steps"),
        ("calibrate", "--n-walkers"),
        ("calibrate", "--n-ensembles"),
        ("hierarchical", "--n-steps"),
        ("hierarchical", "--draws"),
        ("hierarchical", "--replicates"),
        ("crossvalidate", "--n-steps"),
        ("crossvalidate", "--draws"),
        ("prior-predictive", "--n-draws"),
        ("sensitivity morris", "--trajectories"),
        ("sensitivity sobol", "--n-base"),
    ],
)
def test_absurd_counts_are_refused_with_the_stated_bound(capsys, command, option):
    with pytest.raises(SystemExit) as exc:
        main([*command.split(), option, "1000000000000"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"argument {option}: must be ≤ " in err and "got 1 000 000 000 000" in err
    with pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    bound = err.split("must be ≤ ")[1].split(" (")[0]
    assert bound.replace(" ", "") in capsys.readouterr().out.replace(" ", "").replace("\n", "")


def test_optimize_writes_its_verdict(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BAYES_VMIMICS_DATA", raising=False)
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[synthetic]\nn_sites = 1\n[optimize]\nmaxiter = 2\npopsize = 2\npolish = false\n")
    rc, text, _ = _run(capsys, "optimize", "--synthetic", "--config", cfg, "--out", tmp_path / "opt")
    assert rc == 0
    first = (tmp_path / "opt" / "report.txt").read_text().splitlines()[0]
    assert (
        first.startswith("convergence verdict: NOT CONVERGED — failed: the optimiser stopped before") and first in text
    )
    pe = json.loads((tmp_path / "opt" / "point_estimate.json").read_text())
    assert pe["convergence_verdict"]["verdict"] == "not converged"


def test_validate_carries_the_verdict_of_the_result(tmp_path, capsys, data_dir):
    from test_validation import population_result

    from bayes_vmimics.inference.initial import logit_from_theta
    from bayes_vmimics.priors import BoxPrior
    from bayes_vmimics.synthetic import true_parameters

    mu = logit_from_theta(BoxPrior(), true_parameters())
    for name, offset, label in (("good", 0.0, "converged"), ("bad", 1.0, "not converged")):
        res = population_result(mu, 0.5, draws=400, seed=3)
        post = res["posterior"].to_dataset().assign_coords(forest_type=["BNF"])
        post["mu"] = post["mu"] + xr.DataArray([0.0, offset], dims="chain")  # the second chain elsewhere: R-hat
        res["posterior"] = post
        run = tmp_path / name
        run.mkdir()
        res.to_netcdf(run / "results.nc", engine="h5netcdf")
        args = ["validate", run, "--data-dir", data_dir, "--max-sites", 1, "--predictive-draws", 4]
        rc, text, _ = _run(capsys, *args, "--no-fit-discrepancy-prior")
        assert rc == 0
        scores = pd.read_csv(run / "validation" / "held_out_scores.csv", index_col=0)
        assert set(scores["result_verdict"]) == {label} and not scores["result_smoke_run"].any()
        assert f"\nthe scored result's convergence verdict: {label.upper()}" in text
        held = xr.open_datatree(run / "validation" / "held_out.nc", engine="h5netcdf")
        assert json.loads(held.attrs["result_convergence_verdict"])["verdict"] == label
        if offset:
            assert "max R-hat" in scores["result_verdict_failed"].iloc[0]
            assert "note: these scores are of a result that is not converged" in text
