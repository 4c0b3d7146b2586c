"""Do the sites' own posteriors follow the covariates? Evidence on covariates that does not rest on stage 2.

Each site's stage-1 posterior (its data alone, under the Table 1 box prior) is summarised by its median in the
logit coordinates z of the box, per parameter. Across the calibration sites of the given hierarchical runs, after
removing each forest type's mean (of z and of the covariates), this script reports:

- how much a site constrains each parameter: the mean posterior sd of z per forest type, against the box prior's
  π/√3 ≈ 1.81 logit units (a site that says nothing about a parameter keeps ≈ 1.81);
- the Spearman correlation of the site medians with each covariate (mat_c in °C, map_mm in mm yr⁻¹, clay_pct in
  %) and its p-value, pooled over forest types;
- the leave-one-site-out r² of the site medians predicted by the forest-type means alone, and by the type means
  plus slopes on the standardised covariates shared across types (least squares).

A covariate effect that the site medians do not show cannot be learnt by the regression population either; one
that they show only when all types are pooled argues for ``--shared-beta``. The medians are noisy (each site
constrains a parameter weakly), so this is a screen, not an estimate of B.

Reads the stage-1 checkpoints of ``bayes-vmimics hierarchical`` runs (``<run>/stage1/<site>_<key>.npz``, first
pass, box prior) for the sites listed in ``<run>/run.json``. Writes ``covariate_signal.csv`` and
``covariate_signal.png`` (site medians against each covariate, per parameter) to ``--out``.

Usage::

    python analyses/14_covariate_signal.py --data-dir DATA --runs results/hier_ENF results/hier_EBF \
        results/hier_DBF results/hier_BNF --out results/covariate_signal
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bayes_vmimics.covariates import site_covariate_table
from bayes_vmimics.parameters import PARAMETER_NAMES

COVARIATES = ("mat_c", "map_mm", "clay_pct")
BOX_SD = np.pi / np.sqrt(3.0)  # sd of the standard logistic: z of a uniform position on the box


def site_medians(run: Path) -> pd.DataFrame:
    """Median and sd of z per parameter for every site of a hierarchical run, from its first-pass checkpoints.

    Raises:
        FileNotFoundError: a site of ``run.json`` without exactly one checkpoint in ``run/stage1``.
    """
    info = json.loads((run / "run.json").read_text())
    ft = info["configuration"]["data"]["forest_type"]
    rows = []
    for site in info["sites"]:
        files = sorted((run / "stage1").glob(f"{site}_*.npz"))
        if len(files) != 1:
            raise FileNotFoundError(f"{run / 'stage1'}: {len(files)} checkpoints for site {site} (need exactly one)")
        z = np.load(files[0])["z"]
        row = {"site_id": site, "forest_type": ft}
        row |= {f"median_{p}": float(np.median(z[:, i])) for i, p in enumerate(PARAMETER_NAMES)}
        row |= {f"sd_{p}": float(np.std(z[:, i])) for i, p in enumerate(PARAMETER_NAMES)}
        rows.append(row)
    return pd.DataFrame(rows)


def loo_r2(X: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out r² of least-squares predictions of y from X (–)."""
    pred = np.empty_like(y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        coef = np.linalg.lstsq(X[keep], y[keep], rcond=None)[0]
        pred[i] = X[i] @ coef
    return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


def signal_table(d: pd.DataFrame) -> pd.DataFrame:
    """One row per parameter: posterior sd of z, Spearman ρ and p per covariate, LOO r² without and with the
    covariates (see the module docstring)."""
    centred = d.copy()
    cols = [f"median_{p}" for p in PARAMETER_NAMES] + list(COVARIATES)
    centred[cols] = d[cols] - d.groupby("forest_type")[cols].transform("mean")
    types = pd.get_dummies(d["forest_type"]).to_numpy(float)
    x = d[list(COVARIATES)]
    design = np.hstack([types, ((x - x.mean()) / x.std()).to_numpy(), d[["clay_is_measured"]].to_numpy(float)])
    rows = []
    for p in PARAMETER_NAMES:
        y = d[f"median_{p}"].to_numpy()
        row = {"parameter": p, "posterior_sd_z": float(d[f"sd_{p}"].mean())}
        for c in COVARIATES:
            rho, pval = stats.spearmanr(centred[c], centred[f"median_{p}"])
            row |= {f"rho_{c}": float(rho), f"p_{c}": float(pval)}
        row |= {"loo_r2_type_means": loo_r2(types, y), "loo_r2_with_covariates": loo_r2(design, y)}
        rows.append(row)
    return pd.DataFrame(rows)


def plot_signal(d: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(COVARIATES), len(PARAMETER_NAMES), figsize=(16, 7), sharey="col")
    labels = {"mat_c": "MAT (°C)", "map_mm": "MAP (mm yr⁻¹)", "clay_pct": "clay (%)"}
    for j, p in enumerate(PARAMETER_NAMES):
        for i, c in enumerate(COVARIATES):
            ax = axes[i, j]
            for k, (ft, g) in enumerate(d.groupby("forest_type")):
                colour = f"C{k}"
                if c == "clay_pct":  # open markers: clay not measured, value from the documented rule
                    filled = g["clay_is_measured"].astype(bool)
                    ax.scatter(g[c][filled], g[f"median_{p}"][filled], s=12, color=colour, label=ft)
                    ax.scatter(g[c][~filled], g[f"median_{p}"][~filled], s=12, facecolors="none", edgecolors=colour)
                else:
                    ax.scatter(g[c], g[f"median_{p}"], s=12, color=colour, label=ft)
            ax.set_xlabel(labels[c], fontsize=8)
            if j == 0:
                ax.set_ylabel("site median z (logit)")
            if i == 0:
                ax.set_title(p)
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(
        "Each calibration site's stage-1 median (logit of the Table 1 box) against its covariates "
        "(open: clay not measured)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="raw-data folder (default $BAYES_VMIMICS_DATA)")
    ap.add_argument("--runs", nargs="+", type=Path, required=True, help="bayes-vmimics hierarchical run folders")
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    args = ap.parse_args(argv)
    d = pd.concat([site_medians(r) for r in args.runs], ignore_index=True).set_index("site_id")
    cov = site_covariate_table(args.data_dir)
    d = d.join(cov[[*COVARIATES, "clay_is_measured"]])
    missing = d[list(COVARIATES)].isna().any(axis=1)
    if missing.any():
        raise ValueError(f"sites without {', '.join(COVARIATES)}: {', '.join(d.index[missing])}")
    table = signal_table(d)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "covariate_signal.csv", index=False)
    plot_signal(d.reset_index(), args.out / "covariate_signal.png")
    print(f"{len(d)} sites ({', '.join(f'{t} {n}' for t, n in d['forest_type'].value_counts().sort_index().items())})")
    with pd.option_context("display.width", 200, "display.float_format", "{:.2f}".format):
        print(table.to_string(index=False))
    print(f"wrote {args.out / 'covariate_signal.csv'} and covariate_signal.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
