"""Figures of the calibrated parameters (matplotlib, Agg backend): :func:`plot_marginals` (posterior marginals of
the seven parameters over the Table 1 box, box edges marked), :func:`plot_population` (the forest-type population
medians of a hierarchical result) and :func:`plot_beta` (the covariate effects of a regression population).
Profiles against the predictive are in :mod:`bayes_vmimics.plotting`.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from .diagnostics import PARAMETER_LABELS, posterior_samples  # noqa: E402
from .parameters import PARAMETER_NAMES, TABLE1  # noqa: E402
from .plotting import _save  # noqa: E402


def _fmt(v: float) -> str:
    """Three significant digits, no trailing zeros of a rounding (14.7, not 15.0)."""
    return f"{v:.3g}"


def _mark_box(ax, lo: float, hi: float, *, log: bool = False) -> None:
    for edge in (lo, hi):
        ax.axvline(edge, color="0.35", ls=":", lw=1.2)
    if log:
        f = (hi / lo) ** 0.04
        ax.set_xlim(lo / f, hi * f)
        ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0) if hi / lo < 200 else (1.0,)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        pad = 0.04 * (hi - lo)
        ax.set_xlim(lo - pad, hi + pad)


def plot_marginals(dt, path: str | Path, *, prior=None, level: float = 0.9) -> Path:
    """Posterior marginals of the seven parameters over the prior box, with the box edges marked.

    Pooled results (``posterior`` variables ``x_v`` … ``beta``): one histogram per parameter with its mean and
    central ``level`` interval. Hierarchical results: the population median ``theta_population`` of each forest
    type. Synthetic twins: the true value as a red line.

    Args:
        dt: results DataTree (–).
        path: PNG file (path).
        prior: the :class:`~bayes_vmimics.priors.BoxPrior` whose box to mark (default: Table 1) (–).
        level: probability of the marked central interval (–).

    Returns:
        The path written.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return _save(_marginals_figure(dt, prior, level), path)


def _marginals_figure(dt, prior, level: float):
    lower = np.asarray(prior.lower) if prior is not None else np.array([TABLE1[n][0] for n in PARAMETER_NAMES])
    upper = np.asarray(prior.upper) if prior is not None else np.array([TABLE1[n][1] for n in PARAMETER_NAMES])
    post = dt["posterior"]
    if "theta_population" in post.data_vars:
        groups = {
            f"{t} population median": posterior_samples(dt, "theta_population", forest_type=t)
            for t in map(str, post["forest_type"].values)
        }
    else:
        groups = {"posterior": posterior_samples(dt)}
    truth = json.loads(dt.attrs["true_parameters"]) if dt.attrs.get("true_parameters") else None
    fig, axes = plt.subplots(2, 4, figsize=(12, 5.6), layout="constrained")
    for p, (ax, name) in enumerate(zip(axes.flat, PARAMETER_NAMES, strict=False)):
        lo, hi = lower[p], upper[p]
        log_axis = hi / lo >= 10.0
        if log_axis:
            ax.set_xscale("log")
        stats, bars = [], []
        for i, x in enumerate(groups.values()):
            v = x[:, p][np.isfinite(x[:, p])]
            bins = np.geomspace(lo, hi, 60) if log_axis else np.linspace(lo, hi, 41)
            ax.hist(v, bins=bins, density=True, histtype="stepfilled", alpha=0.35, color=f"C{i}")
            ax.hist(v, bins=bins, density=True, histtype="step", color=f"C{i}")
            m = float(np.mean(v))
            q1, q2 = np.quantile(v, [0.5 - level / 2, 0.5 + level / 2])
            ax.axvline(m, color=f"C{i}", lw=1.5)
            bars.append((m, q1, q2))
            stats.append(f"{_fmt(m)} [{_fmt(q1)}, {_fmt(q2)}]")
        # the central intervals as bars in a strip below the histograms (not on the axis line, where they hide)
        top = ax.get_ylim()[1]
        step = 0.06 * top
        for i, (m, q1, q2) in enumerate(bars):
            ax.errorbar(m, -step * (i + 1), xerr=[[m - q1], [q2 - m]], color=f"C{i}", capsize=3, lw=1.5, fmt="o", ms=3)
        ax.set_ylim(-step * (len(bars) + 1), top)
        ax.set_title("\n".join(stats), fontsize=8, color="C0" if len(stats) == 1 else "0.2")
        if truth is not None:
            ax.axvline(truth[name], color="C3", lw=1.5, ls="--")
        _mark_box(ax, lo, hi, log=log_axis)
        ax.set_xlabel(PARAMETER_LABELS[name] + (", log scale" if log_axis else ""))
        ax.set_ylabel("posterior density" if p % 4 == 0 else "")
        ax.set_yticks([])
        ax.tick_params(labelsize=8)
    leg = axes.flat[-1]
    leg.axis("off")
    handles = [Patch(color=f"C{i}", alpha=0.5, label=label) for i, label in enumerate(groups)]
    handles += [
        Line2D([], [], color="k", lw=1.5, label="mean"),
        Line2D(
            [], [], color="k", lw=1.5, marker="o", ms=3, label=f"central {round(100 * level)} % interval (bar below)"
        ),
        Line2D([], [], color="0.35", ls=":", lw=1.2, label="Table 1 box edges\n(prior support)"),
    ]
    if truth is not None:
        handles.append(Line2D([], [], color="C3", ls="--", lw=1.5, label="true value (synthetic twin)"))
    legend = leg.legend(
        handles=handles, loc="center", fontsize=8, frameon=False, title="panel titles:\nmean [central interval]"
    )
    legend.get_title().set_fontsize(8)
    legend.set_in_layout(False)  # the legend fits its cell; it must not widen the fourth column
    return fig


def plot_population(dt, prior, path: str | Path) -> Path:
    """Posterior of each forest type's population median over the prior box, with the box edges marked and
    every site's posterior median as a tick.

    Args:
        dt: hierarchical result (``theta_population`` (chain, draw, forest_type, parameter) and ``theta_site``) (–).
        prior: its :class:`~bayes_vmimics.priors.BoxPrior` (–).
        path: PNG file (path).

    Returns:
        The path written.
    """
    post = dt["posterior"]
    if "theta_population" not in post.data_vars:
        raise ValueError("the result has no posterior 'theta_population' (not a hierarchical result)")
    types = [str(t) for t in post["forest_type"].values]
    fig, axes = plt.subplots(2, 4, figsize=(12, 5.6), layout="constrained")
    for p, (ax, name, lo, hi) in enumerate(zip(axes.flat, PARAMETER_NAMES, prior.lower, prior.upper, strict=False)):
        log_axis = hi / lo >= 10.0
        if log_axis:
            ax.set_xscale("log")
        bins = np.geomspace(lo, hi, 60) if log_axis else np.linspace(lo, hi, 51)
        for i, t in enumerate(types):
            x = post["theta_population"].sel(forest_type=t, parameter=name).to_numpy().ravel()
            ax.hist(x, bins=bins, density=True, histtype="step", color=f"C{i}", lw=1.5)
        if "theta_site" in post.data_vars:
            # the site medians as ticks in a strip below the histograms (on the axis line they would hide)
            top = ax.get_ylim()[1]
            med = post["theta_site"].sel(parameter=name).median(("chain", "draw")).to_numpy()
            ax.plot(med, np.full_like(med, -0.06 * top), "|", color="k", ms=9, alpha=0.7)
            ax.set_ylim(-0.12 * top, top)
        _mark_box(ax, lo, hi, log=log_axis)
        ax.set_xlabel(PARAMETER_LABELS[name] + (", log scale" if log_axis else ""))
        ax.set_ylabel("posterior density" if p % 4 == 0 else "")
        ax.set_yticks([])
        ax.tick_params(labelsize=8)
    leg = axes.flat[-1]
    leg.axis("off")
    handles = [Line2D([], [], color=f"C{i}", lw=1.5, label=f"{t}: population median") for i, t in enumerate(types)]
    handles += [
        Line2D([], [], color="k", marker="|", ls="", ms=9, label="site posterior medians (strip below)"),
        Line2D([], [], color="0.35", ls=":", lw=1.2, label="Table 1 box edges\n(prior support)"),
    ]
    leg.legend(handles=handles, loc="center", fontsize=8, frameon=False).set_in_layout(False)
    fig.suptitle("Forest-type populations (posterior density of the median, parameter units)", fontsize=10)
    return _save(fig, path)


def plot_beta(dt, path) -> Path:
    """Posterior mean and 90 % interval of every coefficient B (covariate × parameter), one panel per
    parameter, one colour per forest type.

    Args:
        dt: a regression population (:func:`~bayes_vmimics.inference.regression.sample_regression_population`) (–).
        path: PNG file (path).

    Returns:
        The path written.
    """
    import matplotlib.pyplot as plt

    b = dt["posterior"]["beta"]
    covs = [str(c) for c in b["covariate"].values]
    types = [str(t) for t in b["forest_type"].values]
    shared = bool(dt["posterior"].attrs.get("beta_shared", 0))
    if shared:
        types = types[:1]
    m = b.mean(("chain", "draw"))
    q = b.quantile([0.05, 0.95], dim=("chain", "draw"))
    fig, axes = plt.subplots(1, len(PARAMETER_NAMES), figsize=(2.1 * len(PARAMETER_NAMES), 0.35 * len(covs) + 1.6))
    y = np.arange(len(covs))
    for ax, name in zip(axes, PARAMETER_NAMES, strict=True):
        for i, t in enumerate(types):
            off = (i - (len(types) - 1) / 2) * 0.15
            mm = m.sel(forest_type=t, parameter=name).values
            lo = q.sel(quantile=0.05, forest_type=t, parameter=name).values
            hi = q.sel(quantile=0.95, forest_type=t, parameter=name).values
            ax.errorbar(mm, y + off, xerr=[mm - lo, hi - mm], fmt="o", ms=3, color=f"C{i}", label=t)
        ax.axvline(0.0, color="k", lw=0.6)
        ax.set_title(name, fontsize=9)
        ax.set_yticks(y, covs if ax is axes[0] else [""] * len(covs), fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.invert_yaxis()
    axes[0].legend(fontsize=7, loc="best", title="shared" if shared else None)
    fig.suptitle(
        "Regression coefficients B: change of logit(position on the prior box) per within-type sd of the covariate "
        "(mean, 90 % interval)",
        fontsize=9,
    )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["plot_beta", "plot_marginals", "plot_population"]
