"""Figures of a cross-validation by site (matplotlib, Agg backend): :func:`plot_cv_scores` (scores per forest type
and method) and :func:`plot_cv_predictions` (held-out predictive median against observed, by depth).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

#: Labels of the cross-validation methods (:data:`bayes_vmimics.crossvalidation.METHODS`) in figures.
_CV_LABELS = {
    "population": "population (no covariates)",
    "regression": "regression population",
    "table3": "Table 3 parameters",
    "own": "site's own posterior (in-sample, not a prediction)",
}


def plot_cv_scores(scores, path, *, variable: str = "soc") -> Path:
    """Cross-validated scores per forest type and method: r², lppd and 90 % coverage of all held-out
    predictions together (markers), with ± 1 standard error of the per-fold scores (bars).

    Args:
        scores: ``CrossValidation.scores`` (or its ``cv_scores.csv``) (DataFrame).
        path: PNG file (path).
        variable: ``"soc"`` (mg C cm⁻³) or ``"f14c"`` (–).

    Returns:
        The path written.
    """
    sel = scores[scores["variable"] == variable]
    methods = [m for m in _CV_LABELS if m in set(sel["method"])]
    types = [t for t in ("ENF", "EBF", "DBF", "BNF", "all") if t in set(sel["forest_type"])]
    n_sites = sel.drop_duplicates("forest_type").set_index("forest_type")["n_sites_all"]
    marker = {"population": "o", "regression": "s", "table3": "^", "own": "D"}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    x = np.arange(len(types))
    step = 0.6 / max(len(methods) - 1, 1)
    panels = (("r2", "r²"), ("lppd", "lppd (nats per observation)"), ("coverage_90", "90 % interval coverage"))
    for ax, (score, label) in zip(axes, panels, strict=True):
        for i, m in enumerate(methods):
            rows = sel[sel["method"] == m].set_index("forest_type").reindex(types)
            ax.errorbar(
                x + (i - (len(methods) - 1) / 2) * step,
                rows[f"{score}_all"],
                yerr=rows[f"{score}_fold_se"],
                fmt=marker[m],
                ms=5,
                color=f"C{i}",
                mfc="none" if m == "own" else f"C{i}",
                capsize=2,
                label=_CV_LABELS[m],
            )
        ax.set_xticks(x, [f"{t}\n({int(n_sites.get(t, 0))} sites)" for t in types], fontsize=8)
        for b in x[:-1] + 0.5:
            ax.axvline(b, color="0.85", lw=0.6)
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        if score == "coverage_90":
            ax.axhspan(0.85, 0.95, color="0.9", zorder=0)
        elif score == "r2":
            ax.axhline(0.5, color="k", lw=0.6, ls=":")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(methods), fontsize=8, frameon=False)
    what = "SOC (mg C cm⁻³)" if variable == "soc" else "F14C"
    fig.suptitle(
        f"Held-out {what}, cross-validation by site: all held-out predictions together per forest type; "
        "bars ± 1 se of the per-fold scores",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_cv_predictions(predictions, path, *, methods=("population", "regression", "own")) -> Path:
    """Held-out SOC against its predictive median, one panel per forest type (columns) and method (rows), the
    layers coloured by the depth band of their mid-depth: where the cross-validated skill is won and lost.

    Each panel gives the r² of its layers (the score of :func:`~bayes_vmimics.scoring.score_predictions`, on the
    linear scale) and the r² of the layers whose mid-depth is 10 cm or more.

    Args:
        predictions: ``CrossValidation.predictions`` (or its ``cv_predictions.csv``) (DataFrame; SOC in
            mg C cm⁻³).
        path: PNG file (path).
        methods: the methods to show, those present in ``predictions`` (rows; –).

    Returns:
        The path written.
    """
    from .metrics import regression
    from .scoring import DEPTH_BANDS_CM

    sel = predictions[predictions["variable"] == "soc"]
    asked, methods = methods, [m for m in methods if m in set(sel["method"])]
    if not methods:
        raise ValueError(f"none of the methods {list(asked)} is in the predictions")
    types = [t for t in ("ENF", "EBF", "DBF", "BNF") if t in set(sel["forest_type"])]
    edges = np.asarray(DEPTH_BANDS_CM)
    fig, axes = plt.subplots(
        len(methods), len(types), figsize=(max(2.9 * len(types), 6.0), 2.8 * len(methods) + 0.5), squeeze=False
    )  # at least 6 in wide, so that one type's title and depth legend fit
    lo = max(float(sel["observed"].min()), 0.05)
    hi = float(max(sel["observed"].max(), sel["median"].max())) * 1.3
    cmap = plt.get_cmap("viridis", edges.size - 1)
    for r, m in enumerate(methods):
        for c, t in enumerate(types):
            ax = axes[r, c]
            d = sel[(sel["method"] == m) & (sel["forest_type"] == t)]
            mid = 0.5 * (d["top_cm"] + d["bottom_cm"])
            band = np.clip(np.searchsorted(edges, mid.to_numpy(), side="right") - 1, 0, edges.size - 2)
            ax.scatter(d["observed"], d["median"], c=band, cmap=cmap, vmin=-0.5, vmax=edges.size - 1.5, s=9)
            ax.plot([lo, hi], [lo, hi], color="k", lw=0.6)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            deep = mid.to_numpy() >= 10.0
            r2_all = regression(d["observed"], d["median"])[2]
            r2_deep = regression(d["observed"][deep], d["median"][deep])[2]
            ax.text(0.04, 0.96, f"r² all layers {r2_all:.2f}\nr² mid-depth ≥ 10 cm {r2_deep:.2f}",
                    transform=ax.transAxes, va="top", fontsize=7)  # fmt: skip
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(f"{t} ({d['site_id'].nunique()} sites)", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{_CV_LABELS.get(m, m)}\npredicted (mg C cm⁻³)", fontsize=7)
            if r == len(methods) - 1:
                ax.set_xlabel("observed (mg C cm⁻³)", fontsize=7)
    pairs = zip(edges[:-1], edges[1:], strict=True)
    labels = [f"{a:g}–{b:g} cm" if np.isfinite(b) else f"≥ {a:g} cm" for a, b in pairs]
    handles = [plt.Line2D([], [], ls="", marker="o", ms=4, color=cmap(i)) for i in range(len(labels))]
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False,
               title="mid-depth of the layer", title_fontsize=7)  # fmt: skip
    fig.suptitle("Held-out SOC, cross-validation by site: predictive median against observed", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["plot_cv_predictions", "plot_cv_scores"]
