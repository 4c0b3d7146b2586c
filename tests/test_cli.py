"""CLI and analysis scripts: --help, a tiny synthetic calibration, resume, summarise, optimize."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayes_vmimics.cli import main
from bayes_vmimics.results import load_datatree

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--synthetic",
    "--quick",
    "--n-steps",
    "6",
    "--n-walkers",
    "14",
    "--n-ensembles",
    "2",
    "--n-processes",
    "1",
    "--no-progress",
    "--seed",
    "3",
]


@pytest.mark.parametrize(
    "script", ["01_prior_predictive.py", "02_calibrate.py", "03_summarise.py", "04_hierarchical.py", "05_validate.py"]
)
def test_scripts_have_help(script):
    r = subprocess.run(
        [sys.executable, str(ROOT / "analyses" / script), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for opt in ("--seed", "--out", "--quick"):
        assert opt in r.stdout


@pytest.mark.slow
def test_calibrate_resume_and_summarise(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BAYES_VMIMICS_DATA", raising=False)
    out = tmp_path / "run"
    assert main(["calibrate", *TINY, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "synthetic twin" in text and "Posterior summary" in text and "true" in text
    assert "walkers start around the pooled MAP" in text
    for f in ("chains.h5", "results.nc", "summary.csv", "report.txt", "profiles.png", "posterior_marginals.png"):
        assert (out / f).is_file()
    for f in ("xv_xk.png", "pair.png"):
        assert (out / f).is_file()
    dt = load_datatree(out / "results.nc")
    assert dt["posterior"].sizes["chain"] == 2
    # rerunning with more steps resumes the stored chains
    more = [a if a != "6" else "8" for a in TINY]
    assert main(["calibrate", *more, "--out", str(out)]) == 0
    assert "resum" in capsys.readouterr().out
    assert main(["summarise", str(out), "--out", str(tmp_path / "again")]) == 0
    text = capsys.readouterr().out
    assert "x_v–x_K" in text and "pair.png" in text
    for f in ("summary.csv", "profiles.png", "posterior_marginals.png", "xv_xk.png", "pair.png"):
        assert (tmp_path / "again" / f).is_file()


def test_optimize_and_prior_predictive(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BAYES_VMIMICS_DATA", raising=False)
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[synthetic]\nn_sites = 1\n[optimize]\nmaxiter = 2\npopsize = 2\npolish = false\n")
    assert main(["optimize", "--synthetic", "--config", str(cfg), "--out", str(tmp_path / "opt")]) == 0
    assert "RMSE" in capsys.readouterr().out and (tmp_path / "opt" / "point_estimate.json").is_file()
    assert main(["prior-predictive", "--synthetic", "--quick", "--n-draws", "5", "--out", str(tmp_path / "pp")]) == 0
    assert (tmp_path / "pp" / "prior_predictive.npz").is_file()


def test_sensitivity_is_a_command_and_its_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["sensitivity", "--help"])
    assert "morris" in capsys.readouterr().out
    rc = main(["sensitivity", "morris", "--synthetic", "--results", "x.nc", "--out", str(tmp_path / "s")])
    assert rc == 2 and "--results does not apply to morris" in capsys.readouterr().err


def test_importing_the_cli_does_not_load_the_model():
    # the package's names load lazily: `bayes-vmimics` reaches main() (and its Ctrl-C handler) before numba
    code = (
        "import sys, bayes_vmimics.cli, bayes_vmimics as b; "
        "assert 'bayes_vmimics.steady_state' not in sys.modules and 'numba' not in sys.modules; "
        "assert int(b.SolverStatus.CONVERGED) == 0 and b.likelihood.CalibrationProblem"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_config_is_reported(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[sampler]\nwalkers = 3\n")
    assert main(["calibrate", "--synthetic", "--config", str(cfg), "--out", str(tmp_path)]) == 2
    assert "unknown key" in capsys.readouterr().err


def test_hierarchical_two_stage_run_and_resume(tmp_path, capsys, monkeypatch):
    import pandas as pd
    import xarray as xr

    monkeypatch.delenv("BAYES_VMIMICS_DATA", raising=False)
    out = tmp_path / "h"
    args = ["hierarchical", "--synthetic", "--quick", "--n-steps", "40", "--n-walkers", "14", "--n-processes", "1"]
    args += ["--draws", "300", "--chains", "2", "--no-progress", "--seed", "4", "--out", str(out)]
    args += ["--refine", "always", "--refine-steps", "40", "--warm"]
    assert main(args) == 0
    first = capsys.readouterr().out
    # warm starts: stage-1 draws re-solved cold, the result per site in sites.csv
    assert "re-solving 100 stage-1 draws per site from cold spin-ups" in first
    assert "stage 1" in first and "max R-hat" in first and "second pass (asked for)" in first
    # a --quick run is a smoke run: its report (and the console) says so first, with the failed criteria
    verdict = (out / "report.txt").read_text().splitlines()[0]
    assert verdict.startswith("convergence verdict: NOT CONVERGED (SMOKE RUN: --quick settings") and verdict in first
    assert "stage-1 N/τ" not in verdict and "min N/τ" in verdict
    with xr.open_datatree(out / "results.nc") as dt:
        assert '"verdict": "not converged"' in dt.attrs["convergence_verdict"] and dt.attrs["smoke_run"] == 1
    with xr.open_datatree(out / "results.nc") as dt:
        post = dt["posterior"].to_dataset().load()
    assert set(post.data_vars) >= {"mu", "sigma", "theta_population", "theta_site"}
    assert list(post["forest_type"].values) == ["synthetic"]
    n_sites = post.sizes["site"]
    assert len(list((out / "stage1").glob("*.npz"))) == n_sites
    assert len(list((out / "stage1" / "refined").glob("*.npz"))) == n_sites
    with xr.open_datatree(out / "results.nc") as dt:
        assert dt["stage1"].attrs["stage1_prior"] == "normal (refined)"
    sites = pd.read_csv(out / "sites.csv")
    assert len(sites) == n_sites and sites["stage1_max_tau_steps"].gt(0).all()
    assert sites["stage1_branch_mismatch_fraction"].eq(0.0).all() and "warning: at" not in first
    assert (out / "population.png").stat().st_size > 0
    # the calibration sites' posterior predictive, each with its own θ_s
    assert (out / "profiles.png").stat().st_size > 0
    assert "site-level posterior predictive" in first
    fit = pd.read_csv(out / "fit_metrics.csv", index_col=0)
    assert fit.loc["soc", "n_sites"] == n_sites and 0.0 <= fit.loc["soc", "r2"] <= 1.0
    with xr.open_datatree(out / "results.nc") as dt:
        pp = dt["posterior_predictive"]["soc"].load()
    assert pp.sizes["chain"] == 2 and np.isfinite(pp).all()
    # a rerun finds every site in the checkpoint and gives the same stage-2 result
    assert main(args) == 0
    with xr.open_datatree(out / "results.nc") as again:
        xr.testing.assert_allclose(again["posterior"].to_dataset().load(), post)
    # another run (its own --out) on the same stage-1 draws: --stage1-dir reuses the checkpoints, writes none
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "stage1").rglob("*.npz")}
    other = [a if a != str(out) else str(tmp_path / "h2") for a in args]
    other = [*other[: other.index("--refine")], *other[other.index("--refine") + 2 :], "--refine", "never"]
    assert main([*other, "--stage1-dir", str(out / "stage1")]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "stage1").rglob("*.npz")} == stamps
    assert not (tmp_path / "h2" / "stage1").exists() and (tmp_path / "h2" / "results.nc").is_file()


def test_hierarchical_replicates_reuse_the_plain_run_and_stack_their_chains(tmp_path, capsys, monkeypatch):
    """--replicates 2: replicate 1 is the plain run (its checkpoints are reused), replicate 2 runs both stages with
    seed + 1000 in replicate_1/; the result has the chains of both, and R-hat across them is printed."""
    import xarray as xr

    monkeypatch.delenv("BAYES_VMIMICS_DATA", raising=False)
    out = tmp_path / "h"
    args = ["hierarchical", "--synthetic", "--quick", "--n-steps", "40", "--n-walkers", "14", "--n-processes", "1"]
    args += ["--draws", "200", "--chains", "2", "--no-progress", "--seed", "4", "--refine", "never", "--out", str(out)]
    args += ["--predictive-draws", "0"]
    assert main(args) == 0
    with xr.open_datatree(out / "results.nc") as dt:
        plain = dt["posterior"].to_dataset().load()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "stage1").glob("*.npz")}
    capsys.readouterr()
    assert main([*args, "--replicates", "2"]) == 0
    text = capsys.readouterr().out
    assert "replicate 2 of 2 (seed 1004" in text and "replicates: max R-hat within each" in text
    assert {p.name: p.stat().st_mtime_ns for p in (out / "stage1").glob("*.npz")} == stamps
    assert len(list((out / "replicate_1" / "stage1").glob("*.npz"))) == len(stamps)
    with xr.open_datatree(out / "results.nc") as dt:
        both = dt["posterior"].to_dataset().load()
        assert list(dt.attrs["replicate_of_chain"]) == [0, 0, 1, 1]
    xr.testing.assert_allclose(both.isel(chain=[0, 1]), plain)


def test_hierarchical_rejects_several_types_without_data(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BAYES_VMIMICS_DATA", raising=False)
    rc = main(["hierarchical", "--synthetic", "--forest-types", "ENF", "EBF", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "need real data" in err and "--forest-types is the old spelling of --forest-type" in err


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [[], ["crossvalidate"], ["sensitivity"], ["sensitivity", "morris"], ["hierarchical"], ["optimize"]]
)
def test_help_is_plain_text_for_people(capsys, argv):
    text = _help(capsys, *argv)
    for markup in ("``", ":mod:", ":func:", "issue 20", "P Fig", "P's", "P §", "%%"):
        assert markup not in text, f"{markup!r} in bayes-vmimics {' '.join(argv)} --help"


def test_forest_type_is_one_name_across_commands():
    from bayes_vmimics.cli import make_parser
    from bayes_vmimics.cli_common import config_from_args

    parser = make_parser()
    for argv in (
        ["--forest-type", "BNF,DBF"],
        ["--forest-type", "BNF", "DBF"],
        ["--forest-type", "BNF", "--forest-type", "DBF", "--forest-type", "BNF"],
        ["--forest-types", "BNF", "DBF"],  # the old spelling, hidden
    ):
        for command in (["hierarchical"], ["crossvalidate"], ["sensitivity", "morris"]):
            assert parser.parse_args([*command, *argv]).forest_type == ["BNF", "DBF"]
    # one type: the configuration's forest type, as calibrate's
    cfg = config_from_args(parser.parse_args(["hierarchical", "--forest-type", "EBF"]))
    assert (
        cfg.data.forest_type
        == config_from_args(parser.parse_args(["calibrate", "--forest-type", "EBF"])).data.forest_type
    )
    for bad in (["hierarchical", "--forest-type", "ENF,XYZ"], ["calibrate", "--forest-type", "ENF,EBF"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_warm_and_cold_are_one_pair_with_a_stated_default(capsys):
    from bayes_vmimics.cli import make_parser
    from bayes_vmimics.cli_common import config_from_args

    parser = make_parser()
    for command in ("hierarchical", "crossvalidate", "calibrate"):
        assert config_from_args(parser.parse_args([command, "--warm"])).likelihood.warm_start is True
        assert config_from_args(parser.parse_args([command, "--cold"])).likelihood.warm_start is False
        assert config_from_args(parser.parse_args([command])).likelihood.warm_start is False
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--warm", "--cold"])
        assert "not allowed with argument" in capsys.readouterr().err
    text = " ".join(_help(capsys, "hierarchical").split())
    assert "(default: the configuration's likelihood.warm_start, off in study_default and study_quick)" in text


def test_quick_states_its_effect_where_it_has_one(capsys):
    summarise = " ".join(_help(capsys, "summarise").split())
    assert "--quick the report and summary.csv only, no figures" in summarise
    assert "--seed SEED not used: summarise draws nothing at random" in summarise
    validate = " ".join(_help(capsys, "validate").split())
    assert "--quick use study_quick instead of study_default where the result stores no configuration" in validate


@pytest.mark.slow
def test_hierarchical_several_forest_types_on_real_sites(tmp_path, capsys, data_dir):
    import xarray as xr

    args = ["hierarchical", "--data-dir", str(data_dir), "--forest-type", "BNF,DBF", "--quick"]
    args += ["--max-sites", "2", "--n-steps", "30", "--n-walkers", "14", "--draws", "100", "--chains", "2"]
    args += ["--no-progress", "--out", str(tmp_path)]
    assert main(args) == 0
    assert "sites per forest type: BNF 2, DBF 2" in capsys.readouterr().out
    with xr.open_datatree(tmp_path / "results.nc") as dt:
        post = dt["posterior"].to_dataset().load()
    assert list(post["forest_type"].values) == ["BNF", "DBF"]
    assert post.sizes["site"] == 4


def test_data_label_changes_with_the_curation_tables(tmp_path):
    from bayes_vmimics.study import PROJECT_TABLES
    from bayes_vmimics.study import data_version as _data_version

    raw, project = tmp_path / "raw", tmp_path / "project"
    raw.mkdir()
    project.mkdir()
    (raw / "he2016_forest_layers.csv").write_text("a,b\n1,2\n")
    for name in PROJECT_TABLES:
        (project / name).write_text("x\n1\n")
    before = _data_version(raw, project)
    assert before == _data_version(raw, project)
    (project / "profile_exclusions.csv").write_text("x\n1\n2\n")
    after = _data_version(raw, project)
    assert after != before and after.split(";")[0] == before.split(";")[0]
    (raw / "he2016_forest_layers.csv").write_text("a,b\n1,3\n")
    assert _data_version(raw, project).split(";")[0] != before.split(";")[0]


def test_hierarchical_split_selects_the_half_of_the_site_split():
    from bayes_vmimics.cli import make_parser
    from bayes_vmimics.cli_common import config_from_args

    parser = make_parser()
    assert config_from_args(parser.parse_args(["hierarchical"])).data.split == "calibration"
    args = parser.parse_args(["hierarchical", "--split", "validation", "--forest-type", "BNF"])
    cfg = config_from_args(args)
    assert (cfg.data.split, cfg.data.forest_type) == ("validation", "BNF")
    with pytest.raises(SystemExit):
        parser.parse_args(["hierarchical", "--split", "second"])


def test_sources_option_sets_the_data_sources_and_the_fingerprint_covers_their_files(data_dir, capsys):
    from bayes_vmimics.cli import make_parser
    from bayes_vmimics.cli_common import config_from_args
    from bayes_vmimics.study import data_file_hashes

    parser = make_parser()
    args = parser.parse_args(["calibrate", "--quick", "--sources", "he2016, israd", "--forest-type", "DBF"])
    cfg = config_from_args(args)
    assert cfg.data.sources == ("he2016", "israd")
    assert config_from_args(parser.parse_args(["calibrate", "--quick", "--sources", "all"])).data.sources == ()
    assert config_from_args(parser.parse_args(["calibrate", "--quick"])).data.sources == ()
    he_only = config_from_args(parser.parse_args(["calibrate", "--quick", "--sources", "he2016"]))
    if not any(p.is_dir() and p.name.startswith("israd") for p in data_dir.iterdir()):
        pytest.skip("the data folder has no ISRaD tables")
    both = data_file_hashes(cfg, data_dir, sites=True)
    assert any(k.startswith("raw/israd") and k.endswith("/layer.csv") for k in both)
    assert not any(k.startswith("raw/israd") for k in data_file_hashes(he_only, data_dir, sites=True))
    with pytest.raises(SystemExit):
        parser.parse_args(["calibrate", "--sources", "he2016,gsoc"])
    assert "unknown source(s) gsoc" in capsys.readouterr().err


def test_validate_with_a_config_of_another_forest_type_is_refused():
    """``validate RUN --config FILE`` whose [data] forest_type (default ENF) is not the result's: refused, naming
    both, instead of scoring the result on another type's held-out sites."""
    from bayes_vmimics.config import load_config
    from bayes_vmimics.workflows.validate import result_types as _result_types

    res = {"kind": "pooled posterior", "path": "run/results.nc", "config": {"data": {"forest_type": "DBF"}}}
    cfg = load_config("study_default")
    with pytest.raises(ValueError, match="calibrated on forest type DBF, but the configuration given predicts ENF"):
        _result_types(res, cfg)
    assert _result_types(res, cfg.replace(data={"forest_type": "DBF"})) == ["DBF"]
