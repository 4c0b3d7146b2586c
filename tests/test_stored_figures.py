"""Same numbers for the same seed: the tiny ``calibrate`` run and the tiny two-stage ``hierarchical`` run of
:mod:`tiny_runs` against figures stored from an earlier version of the package (``tests/stored_figures.json``).

A refactoring must leave these numbers unchanged. A change of the numerics (a solver, an error model, a sampler)
changes them on purpose: then regenerate the file with

    python tests/test_stored_figures.py --write

and say in the commit why the numbers moved. The figures are posterior means, standard deviations and the first
draws of each chain; the samplers are chaotic, so any change of a log-probability beyond rounding moves them all.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from bayes_vmimics.parameters import PARAMETER_NAMES

STORED = Path(__file__).with_name("stored_figures.json")
#: relative tolerance: the same machine kind gives identical numbers; this leaves room for summation order only
RTOL = 1e-9


def _summary(da: xr.DataArray, n_first: int = 3) -> dict:
    """Mean and sd over (chain, draw) per remaining coordinate, and the first draws of every chain (as lists)."""
    da = da.transpose("chain", "draw", ...)
    return {
        "mean": da.mean(("chain", "draw")).values.tolist(),
        "sd": da.std(("chain", "draw")).values.tolist(),
        "first": da.isel(draw=slice(0, n_first)).values.tolist(),
    }


def figures(runs: dict[str, Path]) -> dict:
    """The stored figures of the tiny runs (folders of :func:`tiny_runs.make_tiny_runs`)."""
    cal = xr.open_datatree(runs["calibrate"] / "results.nc")
    hier = xr.open_datatree(runs["hierarchical"] / "results.nc")
    try:
        return {
            "calibrate": {name: _summary(cal["posterior"][name]) for name in PARAMETER_NAMES},
            "hierarchical": {
                "mu": _summary(hier["posterior"]["mu"]),
                "sigma": _summary(hier["posterior"]["sigma"]),
                "theta_site": _summary(hier["posterior"]["theta_site"]),
            },
        }
    finally:
        cal.close()
        hier.close()


def _compare(new, old, where: str) -> list[str]:
    if isinstance(old, dict):
        out = []
        for k in old:
            out += _compare(new.get(k) if isinstance(new, dict) else None, old[k], f"{where}.{k}")
        return out
    a, b = np.asarray(new, dtype=float), np.asarray(old, dtype=float)
    if a.shape != b.shape:
        return [f"{where}: shape {a.shape} against stored {b.shape}"]
    if not np.allclose(a, b, rtol=RTOL, atol=0.0, equal_nan=True):
        worst = float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))
        return [f"{where}: differs from the stored figures (largest relative difference {worst:.3g})"]
    return []


@pytest.mark.integration
def test_tiny_runs_give_the_stored_figures(tiny_runs):
    stored = json.loads(STORED.read_text("utf-8"))
    problems = _compare(figures(tiny_runs), stored["figures"], "figures")
    assert not problems, (
        "the tiny runs' numbers moved (regenerate with `python tests/test_stored_figures.py --write` only if the "
        "numerics changed on purpose):\n" + "\n".join(problems)
    )


def test_the_comparison_catches_a_moved_number():
    old = {"a": {"mean": [1.0, 2.0]}}
    assert _compare({"a": {"mean": [1.0, 2.0]}}, old, "x") == []
    assert _compare({"a": {"mean": [1.0, 2.0 + 1e-6]}}, old, "x")
    assert _compare({"a": {"mean": [1.0]}}, old, "x")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_stored_figures.py --write")
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_runs import make_calibrate_run, make_hierarchical_runs

    with tempfile.TemporaryDirectory() as tmp:
        runs = {"calibrate": make_calibrate_run(Path(tmp) / "calibrate")}
        runs["hierarchical"], _ = make_hierarchical_runs(Path(tmp) / "hierarchical")
        out = {"about": "figures of tests/tiny_runs.py; regenerate: python tests/test_stored_figures.py --write"}
        out["figures"] = figures(runs)
    STORED.write_text(json.dumps(out, indent=1) + "\n", "utf-8")
    print(f"wrote {STORED}")
