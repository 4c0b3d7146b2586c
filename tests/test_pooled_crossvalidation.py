"""analyses/15_pooled_crossvalidation.py: cross-validation of all types together from per-type hierarchical runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_vmimics.config import load_config
from bayes_vmimics.study import build_hierarchical_study

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pooled():
    spec = importlib.util.spec_from_file_location("pooled_cv", ROOT / "analyses" / "15_pooled_crossvalidation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _config(ft: str, max_sites: int = 4) -> dict:
    cfg = load_config(ROOT / "model" / "study_default.toml")
    return cfg.replace(data={"forest_type": ft, "split": "calibration", "max_sites": max_sites}).to_dict()


def _fake_run(folder: Path, ft: str, sites: list[str], *, config=None, seed=0, steps=6000) -> Path:
    """A hierarchical run folder with run.json and one stage-1 checkpoint per site (draws around a site offset)."""
    rng = np.random.default_rng(seed)
    (folder / "stage1").mkdir(parents=True)
    info = {
        "command": "hierarchical",
        "configuration": config or _config(ft),
        "settings": {"stage1_walkers": 32, "stage1_steps": steps, "refine_steps": steps // 3},
        "sites": sites,
    }
    (folder / "run.json").write_text(json.dumps(info))
    for s in sites:
        z = rng.normal(rng.normal(0, 1, 7), 0.5, (300, 7))
        np.savez(folder / "stage1" / f"{s}_abc.npz", z=z, tau=np.full(7, 50.0), acceptance=0.3)
    return folder


def test_runs_that_disagree_are_refused_by_name(pooled, tmp_path):
    a = _fake_run(tmp_path / "a", "ENF", ["s1", "s2"])
    b = _fake_run(tmp_path / "b", "DBF", ["s3"], steps=2000)
    with pytest.raises(ValueError, match="stage-1 settings"):
        pooled.read_runs([a, b])
    other = _config("DBF")
    other["likelihood"]["c14_weight"] = 1.0
    c = _fake_run(tmp_path / "c", "DBF", ["s3"], config=other)
    with pytest.raises(ValueError, match=r"differ in their \[likelihood\]"):
        pooled.read_runs([a, c])
    d = _fake_run(tmp_path / "d", "ENF", ["s4"])
    with pytest.raises(ValueError, match="a second run of forest type ENF"):
        pooled.read_runs([a, d])
    with pytest.raises(ValueError, match="no run.json"):
        pooled.read_runs([a, tmp_path])
    e = _fake_run(tmp_path / "e", "DBF", ["s3"])
    config, sites, settings = pooled.read_runs([a, e])
    assert sites == {"ENF": ["s1", "s2"], "DBF": ["s3"]}
    assert settings == {"stage1_walkers": 32, "stage1_steps": 6000}


def _half(ft: str, split: str) -> dict:
    cfg = _config(ft)
    cfg["data"]["split"] = split
    return cfg


def test_runs_on_both_halves_of_a_type_are_taken_together(pooled, tmp_path):
    runs = [
        _fake_run(tmp_path / "enf_cal", "ENF", ["s1", "s2"], config=_half("ENF", "calibration"), seed=1),
        _fake_run(tmp_path / "enf_val", "ENF", ["s3"], config=_half("ENF", "validation"), seed=2),
        _fake_run(tmp_path / "dbf_val", "DBF", ["s5"], config=_half("DBF", "validation"), seed=3),
        _fake_run(tmp_path / "dbf_cal", "DBF", ["s4"], config=_half("DBF", "calibration"), seed=4),
    ]
    config, sites, _ = pooled.read_runs(runs)
    assert config["data"]["split"] == "all"
    assert sites == {"ENF": ["s1", "s2", "s3"], "DBF": ["s5", "s4"]}
    assert all(json.loads((r / "run.json").read_text())["configuration"]["data"]["split"] != "all" for r in runs)
    settings = {"stage1_walkers": 32, "stage1_steps": 6000}
    s1 = pooled.load_stage1(runs, ["s4", "s3", "s1"], ["DBF", "ENF", "ENF"], settings)
    assert np.array_equal(s1.z[0], np.load(runs[3] / "stage1" / "s4_abc.npz")["z"])
    assert np.array_equal(s1.z[1], np.load(runs[1] / "stage1" / "s3_abc.npz")["z"])
    # a site with a checkpoint in both halves' folders is ambiguous
    np.savez(runs[0] / "stage1" / "s3_def.npz", z=np.zeros((2, 7)), tau=np.ones(7), acceptance=0.3)
    with pytest.raises(FileNotFoundError, match="2 checkpoints for site s3"):
        pooled.load_stage1(runs, ["s3"], ["ENF"], settings)
    # a half twice, or types that cover different halves, are refused
    again = _fake_run(tmp_path / "enf_val2", "ENF", ["s6"], config=_half("ENF", "validation"))
    with pytest.raises(ValueError, match=r"second run of forest type ENF on the same sites \(validation half\)"):
        pooled.read_runs([*runs, again])
    with pytest.raises(ValueError, match="cover different halves"):
        pooled.read_runs(runs[:3])
    everything = _fake_run(tmp_path / "enf_all", "ENF", ["s7"], config=_half("ENF", "all"))
    with pytest.raises(ValueError, match="second run of forest type ENF"):
        pooled.read_runs([runs[0], everything])


def test_stage1_draws_are_read_per_site_and_a_missing_one_is_named(pooled, tmp_path):
    a = _fake_run(tmp_path / "a", "ENF", ["s1", "s2"], seed=3)
    s1 = pooled.load_stage1([a], ["s2", "s1"], ["ENF", "ENF"], {"stage1_walkers": 32, "stage1_steps": 6000})
    assert s1.site_ids == ["s2", "s1"]
    assert np.array_equal(s1.z[0], np.load(a / "stage1" / "s2_abc.npz")["z"])
    assert (s1.n_steps, s1.discard, s1.thin) == (6000, 3000, 15)
    assert np.isnan(s1.log_prob).all()  # not in these checkpoints
    (a / "stage1" / "s1_abc.npz").unlink()
    with pytest.raises(FileNotFoundError, match="0 checkpoints for site s1"):
        pooled.load_stage1([a], ["s1"], ["ENF"], {"stage1_walkers": 32, "stage1_steps": 6000})


def test_pooled_crossvalidation_end_to_end_on_real_sites(pooled, tmp_path, data_dir):
    runs = []
    for ft in ("ENF", "DBF"):
        cfg = load_config(ROOT / "model" / "study_default.toml").replace(
            data={"forest_type": ft, "split": "calibration", "max_sites": 4}
        )
        sites = build_hierarchical_study(cfg, [ft], data_dir).problem.site_ids
        runs.append(_fake_run(tmp_path / f"hier_{ft}", ft, list(sites), config=_config(ft)))
    out = tmp_path / "cv"
    argv = ["--data-dir", str(data_dir), "--runs", *map(str, runs), "--folds", "2", "--draws", "40"]
    argv += ["--predictive-draws", "4", "--chains", "2", "--out", str(out)]
    assert pooled.main(argv) == 0
    scores = pd.read_csv(out / "cv_scores.csv")
    assert set(scores["method"]) == {"population", "regression"}
    assert (out / "cv_scores.png").stat().st_size > 10_000
    assert (out / "cv_predictions.png").stat().st_size > 10_000
    predictions = pd.read_csv(out / "cv_predictions.csv")
    assert predictions.groupby("method")["site_id"].nunique().to_dict() == {"population": 8, "regression": 8}
    assert set(pd.read_csv(out / "cv_depth_scores.csv")["forest_type"]) == {"ENF", "DBF", "all"}
    assert {"ENF", "DBF"} <= set(scores["forest_type"])
    folds = pd.read_csv(out / "cv_folds.csv")
    assert len(folds) == 8 and folds.groupby("forest_type")["fold"].nunique().tolist() == [2, 2]
    beta = pd.read_csv(out / "cv_beta.csv")
    # shared B: the same coefficients for both types in every fold
    per_type = beta.pivot_table(index=["fold", "covariate", "parameter"], columns="forest_type", values="mean")
    assert np.allclose(per_type["ENF"], per_type["DBF"])


def test_excluded_sites_are_left_out_and_an_unknown_one_is_named(pooled, tmp_path, data_dir):
    """--exclude-sites drops sites of the runs (e.g. one without a covariate) before stage 1 is read; a site the
    runs do not hold is an error that names it."""
    cfg = load_config(ROOT / "model" / "study_default.toml").replace(
        data={"forest_type": "ENF", "split": "calibration", "max_sites": 5}
    )
    sites = list(build_hierarchical_study(cfg, ["ENF"], data_dir).problem.site_ids)
    run = _fake_run(tmp_path / "hier_ENF", "ENF", sites, config=_config("ENF", max_sites=5))
    (run / "stage1" / f"{sites[2]}_abc.npz").unlink()  # the left-out site needs no checkpoint
    out = tmp_path / "cv"
    argv = ["--data-dir", str(data_dir), "--runs", str(run), "--folds", "2", "--methods", "own"]
    argv += ["--predictive-draws", "4", "--exclude-sites", sites[2], "--out", str(out)]
    assert pooled.main(argv) == 0
    folds = pd.read_csv(out / "cv_folds.csv")
    assert sorted(folds["site_id"]) == sorted(s for s in sites if s != sites[2])
    with pytest.raises(ValueError, match="he2016_nowhere not among the runs' sites"):
        pooled.main([*argv[:-2], "--exclude-sites", "he2016_nowhere", "--out", str(out)])
