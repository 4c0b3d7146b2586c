"""Tiny saved results for the notebook and figure tests: a pooled synthetic ``calibrate`` run, a two-stage
hierarchical run on two synthetic sites (with its site predictive) and its held-out validation on two more.

Far too short to converge; they only give the notebooks and figures results of the right layout. Run as a
script to write them to a folder: ``python tests/tiny_runs.py /tmp/tiny``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

FOREST_TYPE = "synthetic"


def make_calibrate_run(out: Path) -> Path:
    """``bayes-vmimics calibrate --quick --synthetic`` with a few steps; returns the run folder."""
    from bayes_vmimics.cli import main

    args = ["calibrate", "--quick", "--synthetic", "--n-steps", "24", "--n-walkers", "16", "--n-ensembles", "2"]
    args += ["--n-processes", "1", "--no-progress", "--seed", "1", "--max-sites", "2", "--out", str(out)]
    if main(args) != 0:
        raise RuntimeError("the tiny calibrate run failed")
    return out


def make_hierarchical_runs(out: Path) -> tuple[Path, Path]:
    """A two-stage hierarchical run on two synthetic sites of one forest type (its ``results.nc`` with the
    site predictive) and the held-out validation on two other synthetic sites (``validation/held_out.nc`` and
    ``validation/held_out_scores.csv``). Returns (run folder, validation folder)."""
    from bayes_vmimics.inference.two_stage import two_stage_hierarchical
    from bayes_vmimics.likelihood import CalibrationProblem
    from bayes_vmimics.predictive import add_held_out_predictive, add_site_predictive, held_out_scores
    from bayes_vmimics.results import save_datatree
    from bayes_vmimics.synthetic import make_synthetic_sites

    sites = make_synthetic_sites(4, rng=np.random.default_rng(4))
    calibration = CalibrationProblem(sites[:2], use_c14=False)
    held = CalibrationProblem(sites[2:], use_c14=False)
    dt, _ = two_stage_hierarchical(
        calibration,
        [FOREST_TYPE] * 2,
        stage1=dict(n_walkers=14, n_steps=80, thin=2),
        stage2=dict(draws=200, tune=50, chains=2, thin=1),
        refine="never",
        seed=1,
    )
    dt = add_site_predictive(dt, calibration, max_draws=16)
    save_datatree(dt, out / "results.nc")
    val = out / "validation"
    pred = add_held_out_predictive(dt, held, [FOREST_TYPE] * 2, max_draws=16, seed=1)
    save_datatree(pred, val / "held_out.nc")
    held_out_scores(pred, held, seed=1).to_csv(val / "held_out_scores.csv")
    return out, val


def make_sensitivity_run(out: Path) -> Path:
    """``bayes-vmimics sensitivity {morris,sobol,profiles,response} --synthetic --quick`` on one site."""
    from bayes_vmimics.sensitivity_cli import main

    for analysis in ("morris", "sobol", "profiles", "response"):
        args = [analysis, "--synthetic", "--quick", "--no-progress", "--max-sites", "1", "--out", str(out)]
        if main(args) != 0:
            raise RuntimeError(f"the tiny sensitivity {analysis} run failed")
    return out


def make_tiny_runs(root: Path) -> dict[str, Path]:
    """All tiny runs under ``root``: keys ``calibrate``, ``hierarchical``, ``validation``, ``sensitivity``
    (folders)."""
    root = Path(root)
    cal = make_calibrate_run(root / "calibrate")
    hier, val = make_hierarchical_runs(root / "hierarchical")
    sens = make_sensitivity_run(root / "sensitivity")
    return {"calibrate": cal, "hierarchical": hier, "validation": val, "sensitivity": sens}


if __name__ == "__main__":
    print(make_tiny_runs(Path(sys.argv[1])))
