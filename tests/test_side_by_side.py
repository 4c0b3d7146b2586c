"""analyses/09_side_by_side.py: the side-by-side table assembles scores of every calibration path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sbs():
    spec = importlib.util.spec_from_file_location("side_by_side", ROOT / "analyses" / "09_side_by_side.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _score(**kw):
    base = {"rmse": 10.0, "r2": 0.5, "lppd": -3.5, "coverage_50": 0.45, "coverage_90": 0.88, "n_sites": 4, "n_obs": 20}
    return base | kw


def test_side_by_side_table_from_scores_and_hierarchical_folders(sbs, tmp_path):
    rows = [
        {"forest_type": "DBF", "error_model": em, "estimate": est, "split": split, "variable": "soc",
         **_score(r2=r2)}
        for em, r2 in (("paper", 0.31), ("discrepancy", 0.62))
        for est in ("table3", "map", "posterior")
        for split in ("calibration", "held_out")
    ]  # fmt: skip
    scores = tmp_path / "scores.csv"
    pd.DataFrame(rows).to_csv(scores, index=False)
    hier = tmp_path / "hier"
    (hier / "validation").mkdir(parents=True)
    cfg = {"data": {"forest_type": "DBF"}, "likelihood": {"error_model": "discrepancy"}}
    (hier / "run.json").write_text(json.dumps({"command": "hierarchical", "configuration": json.dumps(cfg)}))
    pd.DataFrame([_score(r2=0.77)], index=["soc"]).to_csv(hier / "fit_metrics.csv")
    pd.DataFrame([_score(r2=0.44, coverage_50=0.52)], index=["soc"]).to_csv(hier / "validation/held_out_scores.csv")
    reg = tmp_path / "reg"
    (reg / "validation").mkdir(parents=True)
    (reg / "run.json").write_text(json.dumps({"command": "hierarchical", "configuration": json.dumps(cfg),
                                              "settings": {"covariates": ["mat"]}}))  # fmt: skip
    pd.DataFrame([_score(r2=0.7)], index=["soc"]).to_csv(reg / "fit_metrics.csv")
    pd.DataFrame([_score(r2=0.5)], index=["soc"]).to_csv(reg / "validation/held_out_scores.csv")
    out = tmp_path / "out"
    assert sbs.main(["--scores", str(scores), "--hierarchical", str(hier), str(reg), "--out", str(out)]) == 0
    table = pd.read_csv(out / "side_by_side.csv")
    pop = table[(table["estimate"] == "population") & (table["split"] == "held_out")]
    assert pop[["forest_type", "error_model", "r2", "coverage_50"]].values.tolist() == [
        ["DBF", "discrepancy", 0.44, 0.52]
    ]
    regression = table[(table["estimate"] == "regression") & (table["split"] == "held_out")]
    assert regression["r2"].tolist() == [0.5]  # a regression population is its own row, not the population's
    # the paper's Table 4, transcribed in data/wang2021_table4.csv: DBF calibration r² 0.45, validation 0.63
    t4 = table[(table["estimate"] == "table4") & (table["forest_type"] == "DBF")].set_index("split")
    assert t4.loc["calibration", "r2"] == 0.45 and t4.loc["held_out", "r2"] == 0.63
    assert (out / "side_by_side.png").stat().st_size > 0
    md = (out / "side_by_side.md").read_text()
    dbf = [line for line in md.splitlines() if line.startswith("| DBF | hierarchical population")]
    assert dbf[0].rstrip(" |").split(" | ")[4:6] == ["0.77 / 10", "0.44 / 10 · -3.50 · 52 / 88 %"]
    assert "| DBF | pooled MAP | 0.31 / 10 |" in md
    assert "| ENF | pooled MAP | – | – | – | – |" in md  # a missing run is shown, not left out
    # a folder that is not a hierarchical result is a named error
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "run.json").write_text(json.dumps({"command": "calibrate", "configuration": {}}))
    with pytest.raises(ValueError, match="not a hierarchical result"):
        sbs.main(["--hierarchical", str(tmp_path / "cal"), "--out", str(out)])
