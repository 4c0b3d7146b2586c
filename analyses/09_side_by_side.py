"""The side-by-side table of every calibration path, per forest type: calibration and held-out sites, SOC and F14C.

Rows, per forest type:

- the paper's Table 4 (its own sites; RMSE in g C kg⁻¹, so only its r² compares; ``data/wang2021_table4.csv``),
- the paper's Table 3 parameters on our sites, the pooled MAP (the point estimate) and the pooled posterior, from
  the ``scores.csv`` of ``analyses/08_error_models.py``,
- the hierarchical population (a held-out site's θ drawn from its forest type's population) and the regression
  population (``hierarchical --covariates``: drawn at the site's covariates), from ``bayes-vmimics
  hierarchical`` + ``bayes-vmimics validate`` result folders (``fit_metrics.csv`` for the calibration sites,
  each at its own θ; ``validation/held_out_scores.csv`` for the held-out sites),

each under the error model it was fitted with (``paper``, ``discrepancy``, …). Cells: r² and RMSE (mg C cm⁻³ for
SOC, F14C units) of the predictive median; for held-out sites also lppd (nats per observation) and the coverage of
the central 50 % / 90 % predictive intervals (observation error included). A missing run is shown as "–".

Writes ``side_by_side.csv`` (long form), ``side_by_side.md`` (one markdown table per variable) and
``side_by_side.png`` (held-out coverage of the 50 % and 90 % intervals against their nominal levels, per forest
type, estimate and error model) to ``--out``.

Usage::

    python analyses/08_error_models.py --data-dir DATA --error-models paper discrepancy --out results/error_models
    bayes-vmimics hierarchical --data-dir DATA --forest-type ENF --warm --out results/hier_discrepancy_ENF
    bayes-vmimics validate results/hier_discrepancy_ENF --data-dir DATA
    # … each forest type, and with --config study_paper for the paper's error
    python analyses/09_side_by_side.py --scores results/error_models/scores.csv \
        --hierarchical results/hier_* --out results/side_by_side
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from bayes_vmimics.constants import FOREST_TYPES

TABLE4 = Path(__file__).resolve().parents[1] / "data" / "wang2021_table4.csv"
#: Row order and labels of the estimates.
ESTIMATES = {
    "table4": "paper's Table 4 (its sites)",
    "table3": "Table 3 parameters",
    "map": "pooled MAP",
    "posterior": "pooled posterior",
    "population": "hierarchical population",
    "regression": "regression population",
}
#: Tick labels of the coverage figure.
SHORT = {"table4": "Table 4", "table3": "Table 3\nparameters", "map": "pooled\nMAP", "posterior": "pooled\nposterior",
         "population": "population", "regression": "regression"}  # fmt: skip
SPLITS = ("calibration", "held_out")
COLUMNS = ["forest_type", "estimate", "error_model", "split", "variable", "r2", "rmse", "lppd", "coverage_50",
           "coverage_90", "n_sites", "n_obs"]  # fmt: skip


def table4_rows(path: Path = TABLE4) -> pd.DataFrame:
    """The paper's Table 4 (SOC, g C kg⁻¹; its own sites) in the long form of this script."""
    t4 = pd.read_csv(path)
    return pd.DataFrame(
        {
            "forest_type": t4["forest_type"],
            "estimate": "table4",
            "error_model": "paper",
            "split": t4["split"],
            "variable": "soc",
            "r2": t4["r2"],
            "rmse": t4["rmse_g_per_kg"],
            "n_sites": t4["n_sites"],
        }
    )


def score_rows(paths: list[Path]) -> pd.DataFrame:
    """Rows of ``analyses/08_error_models.py`` score tables; a later file replaces an earlier one's same rows."""
    frames = [pd.read_csv(p) for p in paths]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    key = ["forest_type", "estimate", "error_model", "split", "variable"]
    return rows.drop_duplicates(subset=key, keep="last")


def _result_config(folder: Path) -> tuple[dict, bool]:
    """The run's configuration, and whether its population is a regression on covariates."""
    run = json.loads((folder / "run.json").read_text())
    cfg = run.get("configuration")
    if isinstance(cfg, str):  # stored as JSON text by older versions
        cfg = json.loads(cfg)
    if run.get("command") != "hierarchical":
        raise ValueError(f"{folder}: not a hierarchical result (command {run.get('command')!r})")
    return cfg, bool((run.get("settings") or {}).get("covariates"))


def population_rows(folders: list[Path]) -> pd.DataFrame:
    """Rows of hierarchical results: calibration sites (``fit_metrics.csv``) and held-out sites
    (``validation/held_out_scores.csv``); the error model and forest type come from the run's configuration."""
    rows = []
    for folder in folders:
        cfg, regression = _result_config(folder)
        ft, em = cfg["data"]["forest_type"], cfg["likelihood"]["error_model"]
        estimate = "regression" if regression else "population"
        for split, name in (("calibration", "fit_metrics.csv"), ("held_out", "validation/held_out_scores.csv")):
            path = folder / name
            if not path.is_file():
                print(f"note: {path} missing (run validate on {folder}); left out", file=sys.stderr)
                continue
            for var, r in pd.read_csv(path, index_col=0).iterrows():
                rows.append({"forest_type": ft, "estimate": estimate, "error_model": em, "split": split,
                             "variable": var, **{c: r.get(c) for c in COLUMNS[5:]}})  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def _cell(r: pd.Series | None, split: str) -> str:
    if r is None:
        return "–"
    text = f"{r['r2']:.2f} / {r['rmse']:.3g}"
    if split == "held_out" and pd.notna(r.get("coverage_90")):
        text += f" · {r['lppd']:.2f} · {100 * r['coverage_50']:.0f} / {100 * r['coverage_90']:.0f} %"
    return text


def markdown(table: pd.DataFrame, variable: str, error_models: list[str]) -> str:
    """One markdown table: a row per forest type × estimate, a column per split × error model."""
    idx = table.set_index(["forest_type", "estimate", "error_model", "split", "variable"]).sort_index()
    heads = [f"{'calibration' if s == 'calibration' else 'held-out'}, `{em}`" for em in error_models for s in SPLITS]
    lines = ["| forest type | estimate | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
    for ft in FOREST_TYPES:
        for est, label in ESTIMATES.items():
            if est == "table4" and variable != "soc":
                continue
            cells = []
            for em in error_models:
                for split in SPLITS:
                    key = (ft, est, em, split, variable)
                    cells.append(_cell(idx.loc[key] if key in idx.index else None, split))
            if est == "table4":  # one error model only: the paper's
                cells = [c if i < 2 else "" for i, c in enumerate(cells)]
            lines.append(f"| {ft} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_coverage(table: pd.DataFrame, path: Path, error_models: list[str]) -> Path:
    """Held-out coverage of the 50 % and 90 % intervals per forest type (columns), variable (rows), estimate and
    error model, with the nominal levels and the issue's target bands (40–60 %, 85–95 %) shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    held = table[(table["split"] == "held_out") & table["coverage_90"].notna()]
    estimates = [e for e in ESTIMATES if e in set(held["estimate"])]
    fig, axes = plt.subplots(2, len(FOREST_TYPES), figsize=(3.2 * len(FOREST_TYPES), 6.4), sharey=True, squeeze=False)
    markers = {50: "o", 90: "s"}
    colours = dict(zip(error_models, ["tab:grey", "tab:blue", "tab:orange", "tab:green"], strict=False))
    width = 0.8 / max(len(error_models), 1)
    for r, var in enumerate(("soc", "f14c")):
        for c, ft in enumerate(FOREST_TYPES):
            ax = axes[r, c]
            ax.axhspan(0.40, 0.60, color="0.92", zorder=0)
            ax.axhspan(0.85, 0.95, color="0.92", zorder=0)
            for level in (0.5, 0.9):
                ax.axhline(level, color="0.5", lw=0.8, ls="--", zorder=1)
            for k, em in enumerate(error_models):
                for i, est in enumerate(estimates):
                    row = held[(held["forest_type"] == ft) & (held["variable"] == var) & (held["estimate"] == est)
                               & (held["error_model"] == em)]  # fmt: skip
                    if row.empty:
                        continue
                    x = i + (k - (len(error_models) - 1) / 2) * width
                    for lv in (50, 90):
                        ax.plot(x, row[f"coverage_{lv}"].iloc[0], markers[lv], color=colours.get(em, "k"), ms=6,
                                label=f"{em}, {lv} % interval" if (r, c, i) == (0, 0, 0) else None)  # fmt: skip
            ax.set_xticks(range(len(estimates)))
            ax.set_xticklabels([SHORT[e] for e in estimates], fontsize=7)
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{ft}, {'SOC' if var == 'soc' else 'F14C'}", fontsize=10)
            if c == 0:
                ax.set_ylabel("held-out coverage (–)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("Held-out coverage of the central 50 % (circles) and 90 % (squares) predictive intervals; "
                 "dashed: nominal, shaded: target bands", y=0.93, fontsize=9)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scores", type=Path, nargs="*", default=[], help="scores.csv of analyses/08_error_models.py")
    ap.add_argument("--hierarchical", type=Path, nargs="*", default=[], help="hierarchical result folders")
    ap.add_argument("--error-models", nargs="+", default=["paper", "discrepancy"], help="columns, in this order")
    ap.add_argument("--out", type=Path, default=Path("results/side_by_side"), help="output folder")
    args = ap.parse_args(argv)
    for p in [*args.scores, *args.hierarchical]:
        if not p.exists():
            ap.error(f"{p} does not exist")
    parts = [table4_rows(), score_rows(args.scores), population_rows(args.hierarchical)]
    table = pd.concat([p[p.columns.intersection(COLUMNS)] for p in parts if len(p)], ignore_index=True)
    table = table.drop_duplicates(subset=COLUMNS[:5], keep="last")[COLUMNS]
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "side_by_side.csv", index=False)
    units = {"soc": "SOC (r² / RMSE in mg C cm⁻³; Table 4's RMSE is g C kg⁻¹)", "f14c": "F14C (r² / RMSE)"}
    text = []
    for var in ("soc", "f14c"):
        text += [f"### {units[var]}", "", "Cells: r² / RMSE; held-out also lppd (nats/obs) · 50 / 90 % coverage.", ""]
        text += [markdown(table, var, args.error_models), ""]
    (args.out / "side_by_side.md").write_text("\n".join(text))
    plot_coverage(table, args.out / "side_by_side.png", args.error_models)
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
