"""Figures of calibration results (matplotlib, Agg backend): observed vs posterior-predictive profiles, and
the forest-type populations of a hierarchical run."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """5, 50, 95 % quantiles over (chain, draw) of an array (chain, draw, n), ignoring NaN."""
    flat = values.reshape(-1, values.shape[-1])
    ok = np.isfinite(flat).any(axis=0)
    q = np.full((3, flat.shape[1]), np.nan)
    if ok.any():
        q[:, ok] = np.nanquantile(flat[:, ok], [0.05, 0.5, 0.95], axis=0)
    return q[0], q[1], q[2]


def plot_profiles(dt, path: str | Path, *, max_sites: int = 6) -> Path:
    """Observed SOC and F14C against depth with the posterior-predictive median and 90 % band, per site.

    The band is drawn on the model grid (SOC density in mg C cm⁻³, F14C of pools p + c + a); observed
    intervals are vertical bars from top to bottom at the observed value, the predicted interval means are
    open markers.

    Args:
        dt: results DataTree (:func:`bayes_vmimics.results.build_datatree`).
        path: PNG file (path).
        max_sites: plot at most this many sites (count).

    Returns:
        The path written.
    """
    obs = dt["observed_data"]
    pp = dt["posterior_predictive"]
    sites = list(dict.fromkeys(obs["soc_site"].values.tolist()))[:max_sites]
    has_c14 = "f14c" in obs.data_vars
    ncol = 2 if has_c14 else 1
    fig, axes = plt.subplots(len(sites), ncol, figsize=(4.2 * ncol, 3.0 * len(sites)), squeeze=False)
    soc_unit = dt.attrs.get("soc_unit", "mg C cm-3")
    grid_site = pp["grid_site"].values
    mid = pp["grid_mid_cm"].values
    for i, s in enumerate(sites):
        g = grid_site == s
        k = obs["soc_site"].values == s
        top, bot = obs["soc_top_cm"].values[k], obs["soc_bottom_cm"].values[k]
        ax = axes[i, 0]
        if soc_unit == "mg C cm-3":
            lo, med, hi = _band(pp["soc_grid"].values[..., g])
            ax.fill_betweenx(mid[g], lo, hi, color="C0", alpha=0.3, label="90 % band (grid)")
            ax.plot(med, mid[g], color="C0", label="median (grid)")
        lo, med, hi = _band(pp["soc"].values[..., k])
        ax.errorbar(
            med,
            0.5 * (top + bot),
            xerr=[med - lo, hi - med],
            fmt="o",
            mfc="none",
            color="C0",
            label="predicted interval (90 %)",
        )
        ax.vlines(obs["soc"].values[k], top, bot, color="k", lw=2, label="observed")
        ax.set_ylim(max(bot.max(), 1.0) * 1.05, 0)
        ax.set_xlabel(f"SOC ({soc_unit})")
        ax.set_ylabel("depth (cm)")
        ax.set_title(str(s), fontsize=9)
        if i == 0:
            ax.legend(fontsize=7)
        if has_c14:
            ax = axes[i, 1]
            kc = obs["f14c_site"].values == s
            lo, med, hi = _band(pp["f14c_grid"].values[..., g])
            if np.isfinite(med).any():
                ax.fill_betweenx(mid[g], lo, hi, color="C1", alpha=0.3)
                ax.plot(med, mid[g], color="C1")
            if kc.any():
                t14, b14 = obs["f14c_top_cm"].values[kc], obs["f14c_bottom_cm"].values[kc]
                lo, med, hi = _band(pp["f14c"].values[..., kc])
                ax.errorbar(med, 0.5 * (t14 + b14), xerr=[med - lo, hi - med], fmt="o", mfc="none", color="C1")
                ax.vlines(obs["f14c"].values[kc], t14, b14, color="k", lw=2)
            ax.set_ylim(max(bot.max(), 1.0) * 1.05, 0)
            ax.set_xlabel("F14C (–)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_population(dt, prior, path: str | Path) -> Path:
    """Posterior of each forest type's population median (histograms over the Table 1 box, parameter units)
    with every site's posterior median as a tick; ``dt`` is a hierarchical result (``theta_population``,
    ``theta_site``), ``prior`` its box prior."""
    from .parameters import PARAMETER_NAMES

    post = dt["posterior"]
    types = [str(t) for t in post["forest_type"].values]
    fig, axes = plt.subplots(2, 4, figsize=(13, 5.5), layout="constrained")
    for ax, name, lo, hi in zip(axes.flat, PARAMETER_NAMES, prior.lower, prior.upper, strict=False):
        for i, t in enumerate(types):
            x = post["theta_population"].sel(forest_type=t, parameter=name).to_numpy().ravel()
            ax.hist(x, bins=50, range=(lo, hi), density=True, histtype="step", color=f"C{i}", label=t)
        med = post["theta_site"].sel(parameter=name).median(("chain", "draw")).to_numpy()
        ax.plot(med, np.zeros_like(med), "|", color="k", ms=10, alpha=0.6)
        ax.set_xlim(lo, hi)
        ax.set_xlabel(f"{name} (–)")
        ax.set_yticks([])
    axes.flat[-1].axis("off")
    axes.flat[0].legend(title="population median", fontsize=8)
    fig.suptitle("Forest-type population medians (lines) and site posterior medians (ticks); x: Table 1 box")
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
