"""The commands as library functions (:mod:`bayes_vmimics.workflows`): the same numbers as the command line, and
options objects that refuse bad values by name."""

import dataclasses

import numpy as np
import pytest

from bayes_vmimics.cli import main
from bayes_vmimics.results import load_datatree
from bayes_vmimics.workflows import (
    CalibrateOptions,
    HierarchicalOptions,
    OptimizeOptions,
    PriorPredictiveOptions,
    Progress,
    SummariseOptions,
    ValidateOptions,
    run_calibrate,
    run_summarise,
)

#: One synthetic site, walkers from the prior box (no MAP search), quick grids: a calibration in seconds.
TINY_CONFIG = """
[study]
name = "quick"
[model]
max_obs_depth_cm = 100.0
[synthetic]
n_sites = 1
[sampler]
start = "prior"
n_processes = 1
thin = 1
max_draws = 40
"""


def test_run_calibrate_gives_the_command_lines_numbers(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BAYES_VMIMICS_DATA", raising=False)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_CONFIG)
    argv = ["--synthetic", "--config", str(config), "--n-steps", "8", "--discard", "4", "--n-walkers", "14"]
    argv += ["--n-ensembles", "2", "--no-progress", "--seed", "5"]
    assert main(["calibrate", *argv, "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out

    lines = []
    options = CalibrateOptions(
        synthetic=True,
        config=config,
        n_steps=8,
        discard=4,
        n_walkers=14,
        n_ensembles=2,
        no_progress=True,
        seed=5,
        out=tmp_path / "lib",
    )
    result = run_calibrate(options, progress=Progress(say=lines.append))
    assert capsys.readouterr().out == ""  # the library's lines went to the progress object only
    assert result.out == tmp_path / "lib" and result.results.is_file() and result.report.is_file()
    assert all(f.is_file() for f in result.figures) and result.chains.is_file()
    assert result.verdict == result.report.read_text().splitlines()[0]
    assert result.verdict in printed and result.verdict in "\n".join(lines)
    cli, lib = load_datatree(tmp_path / "cli" / "results.nc"), load_datatree(result.results)
    assert set(cli["posterior"].data_vars) == set(lib["posterior"].data_vars)
    for name in cli["posterior"].data_vars:
        np.testing.assert_array_equal(cli["posterior"][name].values, lib["posterior"][name].values)
    assert np.isfinite(result.acceptance_mean) and result.posterior_best_cost > 0

    summary = run_summarise(SummariseOptions(result.out, quick=True), progress=Progress(say=lambda line: None))
    assert summary.verdict == result.verdict and summary.summary.is_file() and summary.figures == ()


@pytest.mark.parametrize(
    ("make", "option"),
    [
        (lambda: CalibrateOptions(n_ensembles=1), "n_ensembles"),
        (lambda: CalibrateOptions(n_steps=0), "n_steps"),
        (lambda: CalibrateOptions(n_walkers=10**9), "n_walkers"),
        (lambda: CalibrateOptions(seed=-1), "seed"),
        (lambda: CalibrateOptions(forest_type="XYZ"), "forest_type"),
        (lambda: CalibrateOptions(sources=("he2016", "gsoc")), "sources"),
        (lambda: CalibrateOptions(site_id="site1"), "site_id"),
        (lambda: HierarchicalOptions(chains=1), "chains"),
        (lambda: HierarchicalOptions(refine="sometimes"), "refine"),
        (lambda: HierarchicalOptions(forest_type=("ENF", "XYZ")), "forest_type"),
        (lambda: HierarchicalOptions(stage2="nuts"), "stage2"),
        (lambda: ValidateOptions("run", split="all"), "split"),
        (lambda: ValidateOptions("run", predictive_draws=0), "predictive_draws"),
        (lambda: PriorPredictiveOptions(n_draws=0), "n_draws"),
    ],
)
def test_options_refuse_a_bad_value_naming_the_option(make, option):
    with pytest.raises(ValueError, match=rf"^{option}: "):
        make()


def test_options_are_frozen_and_default_as_the_command_line(tmp_path):
    from bayes_vmimics.cli import make_parser, options_from_args

    options = HierarchicalOptions(forest_type=["ENF", "DBF"], site_id=["a"])
    assert options.forest_type == ("ENF", "DBF") and options.site_id == ("a",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.seed = 1
    for command, options_type, extra in (
        ("calibrate", CalibrateOptions, []),
        ("hierarchical", HierarchicalOptions, []),
        ("optimize", OptimizeOptions, []),
        ("prior-predictive", PriorPredictiveOptions, []),
        ("validate", ValidateOptions, ["run"]),
        ("summarise", SummariseOptions, ["run"]),
    ):
        parsed = options_from_args(options_type, make_parser().parse_args([command, *extra]))
        default = options_type(*extra)
        assert parsed == default, command
