"""Figures of the sensitivity analyses: P Fig 2 (Morris importance), Sobol' and given-data indices, P Fig 7
(±25 % profiles) and P Fig 8 (input-response curves). Matplotlib is imported when a figure is drawn."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..parameters import PARAMETER_NAMES
from .inputs import DUMMY_PREFIX

_PARAM_LABELS = {
    "x_v": "$x_v$",
    "x_K": "$x_K$",
    "x_d": "$x_d$",
    "x_D": "$x_D$",
    "alpha_r": r"$\alpha_r$",
    "alpha_v": r"$\alpha_v$",
    "beta": r"$\beta$",
}


def plot_importance(table: pd.DataFrame, path, *, title: str = "") -> Path:
    """P Fig 2: importance θ per parameter and site (points), the mean over sites (grey line); J₁ and J₂
    panels.

    Args:
        table: :func:`~bayes_vmimics.sensitivity.sites.combine` of Morris results (–).
        path: the PNG (path).
        title: figure title (–).
    """
    import matplotlib.pyplot as plt

    outs = [o for o in ("J1", "J2") if o in set(table["output"])]
    fig, axes = plt.subplots(1, len(outs), figsize=(5.5 * len(outs), 4.2), squeeze=False, sharey=True)
    for ax, o in zip(axes[0], outs, strict=True):
        t = table[(table["output"] == o) & ~table["parameter"].str.startswith(DUMMY_PREFIX)]
        params = [p for p in PARAMETER_NAMES if p in set(t["parameter"])]
        wide = t.pivot(index="site_id", columns="parameter", values="importance")[params]
        x = np.arange(len(params))
        cmap = plt.get_cmap("tab10" if len(wide) <= 10 else "tab20")
        for k, (sid, row) in enumerate(wide.iterrows()):
            ax.plot(x, row.values, "o", ms=4, alpha=0.8, color=cmap(k % cmap.N), label=sid if len(wide) <= 12 else None)
        ax.plot(x, wide.mean().values, "-", color="0.45", lw=2.5, label=f"mean of {len(wide)} sites")
        ax.set_xticks(x, [_PARAM_LABELS.get(p, p) for p in params])
        ax.set_title({"J1": "SOC (J$_1$)", "J2": "$^{14}$C (J$_2$)"}[o])
        ax.set_xlabel("parameter")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(r"importance $\theta_m$")
    axes[0, -1].legend(fontsize=7, loc="upper right", ncol=2 if len(wide) > 6 else 1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_sobol(table: pd.DataFrame, path, *, title: str = "", value: str = "ST") -> Path:
    """Sobol' (or given-data) indices with their intervals: one panel per output, bars per parameter
    (first order S1 and, where present, total ST), averaged over the sites in the table.

    Args:
        table: :func:`~bayes_vmimics.sensitivity.sites.combine` of Sobol' or posterior results (–).
        path: the PNG (path).
        title: figure title (–).
        value: unused; kept for symmetry (–).
    """
    import matplotlib.pyplot as plt

    outs = list(dict.fromkeys(table["output"]))
    ncol = min(4, len(outs))
    nrow = math.ceil(len(outs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.9 * nrow), squeeze=False, sharey=True)
    has_st = "ST" in table
    second = "ST" if has_st else ("delta" if "delta" in table else None)
    for ax, o in zip(axes.flat, outs, strict=False):
        t = table[table["output"] == o]
        g = t.groupby("parameter", sort=False)
        params = [p for p in PARAMETER_NAMES if p in g.groups] + [p for p in g.groups if p not in PARAMETER_NAMES]
        m = g.mean(numeric_only=True).reindex(params)
        x = np.arange(len(params))
        w = 0.4 if second else 0.6
        ax.bar(x - (0.2 if second else 0), m["S1"], w, yerr=m["S1_conf"], label="first order S1", capsize=2)
        if second:
            ax.bar(
                x + 0.2,
                m[second],
                w,
                yerr=m[f"{second}_conf"],
                label="total ST" if has_st else "Borgonovo δ",
                color="tab:orange",
                capsize=2,
            )
        ax.set_xticks(x, [_PARAM_LABELS.get(p, p) for p in params], fontsize=8)
        ax.set_title(o, fontsize=9)
        ax.set_ylim(-0.15, 1.15)  # indices live in [0, 1]; a wider interval runs off the panel
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(outs) :]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    n_sites = table["site_id"].nunique() if "site_id" in table else 1
    fig.suptitle((title + " — " if title else "") + f"mean over {n_sites} site(s), bars: 95 % interval", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


_PROFILE_COLOURS = {"x_D": "black", "alpha_v": "tab:red", "alpha_r": "tab:green"}


def plot_profiles_fig7(profiles: dict[str, xr.Dataset], path, *, bands: dict | None = None) -> Path:
    """P Fig 7: per forest type, the mean SOC profile at the calibrated parameters (blue) and with x_D (black),
    α_v (red), α_r (green) each −25 % (solid) and +25 % (dashed); log x-axis; posterior 90 % band if given.

    Args:
        profiles: forest type → :func:`~bayes_vmimics.sensitivity.profiles.perturbed_profiles` output (–).
        path: the PNG (path).
        bands: forest type → (lower, upper) of
            :func:`~bayes_vmimics.sensitivity.profiles.posterior_profile_band` (mg C cm⁻³) (–).
    """
    import matplotlib.pyplot as plt
    import matplotlib.ticker as mticker

    n = len(profiles)
    ncol = min(2, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 4.6 * nrow), squeeze=False)
    for ax, (ft, ds) in zip(axes.flat, profiles.items(), strict=False):
        z = ds["depth"].values
        if bands and ft in bands:
            lo, hi = bands[ft]
            ax.fill_betweenx(z, lo, hi, color="tab:blue", alpha=0.18, lw=0, label="posterior 90 %")
        ax.plot(ds["base"].values, z, color="tab:blue", lw=2.2, label="calibrated")
        for p in ds["parameter"].values:
            for c in ds["change"].values:
                if c == 0:
                    continue
                ls = "-" if c < 0 else "--"
                ax.plot(
                    ds["perturbed"].sel(parameter=p, change=c).values,
                    z,
                    ls,
                    color=_PROFILE_COLOURS.get(str(p), None),
                    lw=1.2,
                    label=f"{_PARAM_LABELS.get(str(p), p)} {c:+.0%}",
                )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(mticker.ScalarFormatter())
        lo, hi = ax.get_xlim()
        show = "123456789" if hi / lo < 3 else "235"  # within a narrow range label every minor tick
        ax.xaxis.set_minor_formatter(mticker.FuncFormatter(lambda v, _, s=show: f"{v:g}" if f"{v:g}"[0] in s else ""))
        ax.invert_yaxis()
        n_sites = int(ds["n_sites"]) if "n_sites" in ds else ds.attrs.get("n_sites", "?")
        ax.set_title(f"{ft} (mean of {n_sites} sites)")
        ax.set_xlabel("SOC (mg C cm$^{-3}$)")
        ax.set_ylabel("depth (cm)")
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def plot_response_fig8(responses: dict[str, xr.Dataset], path) -> Path:
    """P Fig 8: SOC in the layers at 15 cm (black) and 35 cm (grey) against the relative litter input (top row)
    and relative V (bottom row), diffusion off; triangles: α_r (top) and α_v (bottom) +25 % (▲) and −25 % (▼).

    Args:
        responses: label (e.g. forest type) → :func:`~bayes_vmimics.sensitivity.profiles.response_curves` output (–).
        path: the PNG (path).
    """
    import matplotlib.pyplot as plt

    n = len(responses)
    fig, axes = plt.subplots(2, n, figsize=(4.4 * n, 7.0), squeeze=False)
    shades = ["black", "0.55", "tab:brown", "tab:purple"]
    for col, (label, ds) in enumerate(responses.items()):
        for row, (driver, alpha) in enumerate((("litter", r"$\alpha_r$"), ("V", r"$\alpha_v$"))):
            ax = axes[row, col]
            for k, d in enumerate(ds["depth"].values):
                colour = shades[k % len(shades)]
                top, bot = float(ds["layer_top_cm"][k]), float(ds["layer_bottom_cm"][k])
                ax.plot(
                    ds["multiplier"],
                    ds["soc"].sel(driver=driver, depth=d),
                    color=colour,
                    label=f"layer {top:g}–{bot:g} cm",
                )
                for c in ds["change"].values:
                    ax.plot(
                        ds["point_factor"].sel(driver=driver, depth=d, change=c),
                        ds["point_soc"].sel(driver=driver, depth=d, change=c),
                        "^" if c > 0 else "v",
                        color=colour,
                        ms=8,
                        mec="white",
                    )
            ax.axvline(1.0, color="tab:blue", lw=0.6, ls=":")
            if driver == "V":  # SOC grows steeply as V → 0: a log axis keeps the points readable
                ax.set_yscale("log")
            ax.set_xlabel("relative litter input" if driver == "litter" else "relative V")
            ax.set_ylabel("SOC (mg C cm$^{-3}$)")
            ax.set_title(f"{label}: {ds.attrs['site_id']} ({alpha} ±25 %)", fontsize=9)
            ax.grid(alpha=0.3)
            if col == 0:
                ax.legend(fontsize=7)
    fig.suptitle("diffusion off; ▲ +25 %, ▼ −25 %", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


__all__ = ["plot_importance", "plot_profiles_fig7", "plot_response_fig8", "plot_sobol"]
