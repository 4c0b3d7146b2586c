"""analyses/14_covariate_signal.py: the screen of site posteriors against covariates finds a planted effect."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_vmimics.parameters import PARAMETER_NAMES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sig():
    spec = importlib.util.spec_from_file_location("covariate_signal", ROOT / "analyses" / "14_covariate_signal.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sites(n=60, seed=0):
    """Sites of two types whose median of alpha_v falls with MAT (−0.8 logit per sd); the rest is noise."""
    rng = np.random.default_rng(seed)
    d = pd.DataFrame(
        {
            "forest_type": np.repeat(["ENF", "DBF"], n // 2),
            "mat_c": rng.normal(10, 5, n),
            "map_mm": rng.normal(1000, 300, n),
            "clay_pct": rng.uniform(5, 60, n),
            "clay_is_measured": rng.random(n) < 0.7,
        }
    )
    for p in PARAMETER_NAMES:
        d[f"median_{p}"] = rng.normal(0, 1, n) + (d["forest_type"] == "ENF") * 1.5
        d[f"sd_{p}"] = 1.5
    d["median_alpha_v"] += -0.8 * (d["mat_c"] - 10) / 5
    return d


def test_planted_effect_is_found_and_null_ones_are_not(sig):
    t = sig.signal_table(_sites()).set_index("parameter")
    assert t.loc["alpha_v", "rho_mat_c"] < -0.4 and t.loc["alpha_v", "p_mat_c"] < 0.01
    assert t.loc["alpha_v", "loo_r2_with_covariates"] > t.loc["alpha_v", "loo_r2_type_means"] + 0.1
    others = t.drop(index="alpha_v")
    # the type means explain the planted type offset; the covariates add nothing to pure-noise parameters
    assert (others["loo_r2_with_covariates"] < others["loo_r2_type_means"] + 0.05).all()
    assert (others[["p_mat_c", "p_map_mm", "p_clay_pct"]].to_numpy() > 0.001).all()


def test_loo_r2_matches_a_hand_computed_case(sig):
    X = np.ones((4, 1))
    y = np.array([1.0, 2.0, 3.0, 4.0])
    # leaving one out, the mean of the other three: predictions 3, 8/3, 7/3, 2
    pred = np.array([3.0, 8 / 3, 7 / 3, 2.0])
    expected = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    assert sig.loo_r2(X, y) == pytest.approx(expected)


def test_site_medians_reads_a_run_and_names_a_site_without_one_checkpoint(sig, tmp_path):
    run = tmp_path / "hier_ENF"
    (run / "stage1").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"sites": ["a", "b"], "configuration": {"data": {"forest_type": "ENF"}}}))
    z = np.zeros((100, 7))
    z[:, 3] = np.linspace(-1, 3, 100)
    np.savez(run / "stage1" / "a_0123.npz", z=z)
    with pytest.raises(FileNotFoundError, match="0 checkpoints for site b"):
        sig.site_medians(run)
    np.savez(run / "stage1" / "b_4567.npz", z=z + 1)
    d = sig.site_medians(run).set_index("site_id")
    assert d.loc["a", "median_x_D"] == pytest.approx(1.0)
    assert d.loc["b", "median_x_v"] == pytest.approx(1.0)
    assert d.loc["a", "sd_x_v"] == 0.0
    np.savez(run / "stage1" / "b_89ab.npz", z=z)
    with pytest.raises(FileNotFoundError, match="2 checkpoints for site b"):
        sig.site_medians(run)
