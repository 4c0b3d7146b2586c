"""Posterior diagnostics of the x_v–x_K ridge: correlations, a 1-D profile along the ridge, the ridge figure and a
pair plot. The convergence verdict of a run lives in :mod:`bayes_vmimics.convergence` (its names are re-exported
here: :func:`convergence_verdict`, :func:`result_verdict`).

V and K enter the uptake fluxes as V·S/(K + S) (P Eqs 4–5); where S ≪ K only V/K is identified, so the
posterior of (x_v, x_K) concentrates along a ridge x_v/x_K ≈ const, i.e. a line in (log x_v, log x_K)
(``docs/xv_xk.md``). These helpers quantify that from sampling results (``xarray.DataTree`` with a ``posterior``
group holding the pooled parameters ``x_v`` … ``beta`` of :func:`bayes_vmimics.results.build_datatree` or a
``theta`` (parameter), ``theta_site`` (site, parameter) and/or ``theta_population`` (forest_type, parameter); see
:mod:`bayes_vmimics.inference.pymc_models`) or from a plain array of draws (n, 7).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from .convergence import (
    ESS_BULK_MIN,
    N_OVER_TAU_MIN,
    RHAT_MAX,
    WEIGHT_ESS_Q05_MIN,
    ConvergenceVerdict,
    convergence_verdict,
    result_verdict,
)
from .parameters import PARAMETER_NAMES, TABLE1

#: Axis labels of the seven parameters (matplotlib mathtext), with units.
PARAMETER_LABELS: dict[str, str] = {
    "x_v": "$x_v$ (–)",
    "x_K": "$x_K$ (–)",
    "x_d": "$x_d$ (–)",
    "x_D": "$x_D$ (–)",
    "alpha_r": r"$\alpha_r$ (m$^{-1}$)",
    "alpha_v": r"$\alpha_v$ (m$^{-1}$)",
    "beta": r"$\beta$ (–)",
}

_XV = PARAMETER_NAMES.index("x_v")
_XK = PARAMETER_NAMES.index("x_K")


def _draws(da: xr.DataArray) -> xr.DataArray:
    """Stack chain and draw into one ``sample`` dimension (if present)."""
    dims = [d for d in ("chain", "draw") if d in da.dims]
    return da.stack(sample=dims) if dims else da


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    den = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / den) if den > 0 else np.nan


def _theta_variables(dt: xr.DataTree) -> dict[str, xr.DataArray]:
    """The θ variables of a result as DataArrays with a ``parameter`` dimension: ``theta`` (pooled: built from
    the posterior variables ``x_v`` … ``beta`` of :func:`bayes_vmimics.results.build_datatree`, or a ``theta``
    variable), ``theta_site`` and ``theta_population`` — those present."""
    post = dt["posterior"]
    out = {}
    if "theta" in post.data_vars:
        out["theta"] = post["theta"]
    elif all(n in post.data_vars for n in PARAMETER_NAMES):
        out["theta"] = xr.concat([post[n] for n in PARAMETER_NAMES], dim="parameter").assign_coords(
            parameter=list(PARAMETER_NAMES)
        )
    for name in ("theta_site", "theta_population"):
        if name in post.data_vars:
            out[name] = post[name]
    return out


def xv_xk_correlation(dt: xr.DataTree, *, log: bool = True) -> dict[str, xr.DataArray]:
    """Posterior correlation of x_v and x_K for every θ variable in the posterior.

    Args:
        dt: sampling result with a ``posterior`` group: a pooled calibration (variables ``x_v`` … ``beta``, or
            ``theta``) and/or a hierarchical one (``theta_site``, ``theta_population``) (–).
        log: correlate log x_v and log x_K (the ridge is a line in log space) (bool).

    Returns:
        dict variable name → DataArray of correlations (–): ``theta`` (scalar; pooled / single site),
        ``theta_site`` (site,), ``theta_population`` (forest_type,) — those present.

    Raises:
        ValueError: the posterior has none of these variables.
    """
    variables = _theta_variables(dt)
    if not variables:
        raise ValueError(
            "the posterior has no parameter draws (x_v … beta, theta, theta_site or theta_population); "
            f"variables found: {sorted(dt['posterior'].data_vars)}"
        )
    out = {}
    for name, da in variables.items():
        da = _draws(da)
        xv = da.sel(parameter="x_v")
        xk = da.sel(parameter="x_K")
        if log:
            xv, xk = np.log(xv), np.log(xk)
        other = [d for d in da.dims if d not in ("sample", "parameter")]
        r = xr.apply_ufunc(
            _corr, xv, xk, input_core_dims=[["sample"], ["sample"]], vectorize=True, output_dtypes=[float]
        )
        r.name = f"corr_{'log_' if log else ''}xv_xk_{name}"
        r.attrs["units"] = "1"
        out[name] = r.transpose(*other) if other else r
    return out


def ridge_direction(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Principal axis of the posterior in (log x_v, log x_K).

    Args:
        samples: posterior draws, shape (n, 7) in ``PARAMETER_NAMES`` order (parameter units).

    Returns:
        (centre (2,), unit direction (2,), sd along it) in log units; the direction has a positive x_v
        component.
    """
    s = np.asarray(samples, dtype=float)
    if s.ndim != 2 or s.shape[1] != len(PARAMETER_NAMES) or s.shape[0] < 3:
        raise ValueError(f"samples must have shape (n >= 3, {len(PARAMETER_NAMES)}), got {s.shape}")
    z = np.log(s[:, [_XV, _XK]])
    c = z.mean(axis=0)
    w, v = np.linalg.eigh(np.cov(z, rowvar=False))
    e = v[:, np.argmax(w)]
    if e[0] < 0:
        e = -e
    return c, e, float(np.sqrt(np.max(w)))


def ridge_profile(log_density, samples: np.ndarray, *, n_points: int = 41, width: float = 4.0) -> xr.Dataset:
    """1-D profile of a log density along the x_v–x_K ridge.

    The line runs through the posterior centre along the principal axis of (log x_v, log x_K)
    (:func:`ridge_direction`), ±``width`` posterior sd; the other five parameters are held at their
    posterior medians.

    Args:
        log_density: callable θ (7,) → log density, e.g. ``CalibrationProblem.log_probability`` (–).
        samples: posterior draws (n, 7) (parameter units).
        n_points: points on the line (count).
        width: half-length of the line in posterior sd along the ridge (–).

    Returns:
        Dataset over ``s`` (position along the ridge, posterior sd): ``x_v``, ``x_K`` (–), ``log_density``
        (log units; −inf outside the prior), ``theta`` (s, parameter).
    """
    s = np.asarray(samples, dtype=float)
    c, e, sd = ridge_direction(s)
    med = np.median(s, axis=0)
    pos = np.linspace(-width, width, int(n_points))
    thetas = np.tile(med, (pos.size, 1))
    z = c[None, :] + (pos * sd)[:, None] * e[None, :]
    thetas[:, _XV] = np.exp(z[:, 0])
    thetas[:, _XK] = np.exp(z[:, 1])
    lp = np.array([float(log_density(t)) for t in thetas])
    return xr.Dataset(
        {
            "x_v": ("s", thetas[:, _XV]),
            "x_K": ("s", thetas[:, _XK]),
            "log_density": ("s", lp),
            "theta": (("s", "parameter"), thetas),
        },
        coords={"s": pos, "parameter": list(PARAMETER_NAMES)},
        attrs={"direction_log_xv_log_xk": e.tolist(), "sd_along_ridge": sd, "s_units": "posterior sd"},
    )


def posterior_samples(dt: xr.DataTree, var_name: str = "theta", **sel) -> np.ndarray:
    """Draws of a θ variable as an array (n, 7) (parameter units).

    Args:
        dt: sampling result (–).
        var_name: "theta" (a pooled calibration: its variables ``x_v`` … ``beta``), "theta_site" or
            "theta_population" (–).
        **sel: selection of the other dimensions, e.g. ``site="s1"`` or ``forest_type="ENF"`` (–).

    Raises:
        ValueError: the posterior has no such variable, or dimensions other than the parameter are left.
    """
    variables = _theta_variables(dt)
    if var_name not in variables:
        raise ValueError(f"the posterior has no {var_name!r}; present: {sorted(variables)}")
    da = variables[var_name]
    if sel:
        da = da.sel(**sel)
    da = _draws(da)
    left = [d for d in da.dims if d not in ("sample", "parameter")]
    if left:
        raise ValueError(f"select one value of {left} (e.g. {left[0]}=...) to get an array (n, 7)")
    return da.transpose("sample", "parameter").to_numpy()


def _label(name: str) -> str:
    return PARAMETER_LABELS.get(name, name)


def plot_pair(samples: np.ndarray, names: Sequence[str] = PARAMETER_NAMES, *, max_points: int = 2000, fig=None):
    """Pair plot of posterior draws: histograms on the diagonal, scatter below, correlations above.

    Every row and column is labelled with its parameter and units; at most three ticks per axis, rotated so
    neighbours do not overlap; tick labels only on the outer row and column.

    Args:
        samples: draws (n, p) (parameter units).
        names: labels of the p columns (–).
        max_points: at most this many points per scatter (evenly thinned) (count).
        fig: a matplotlib figure to draw into (default: a new one) (–).

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    s = np.asarray(samples, dtype=float)
    if s.ndim != 2:
        raise ValueError(f"samples must be an array (n, p), got shape {s.shape}")
    p = s.shape[1]
    if len(names) != p:
        raise ValueError(f"{len(names)} names for {p} columns")
    s = s[np.all(np.isfinite(s), axis=1)]
    if s.shape[0] < 3:
        raise ValueError(f"need at least 3 finite draws, got {s.shape[0]}")
    fig = fig if fig is not None else plt.figure(figsize=(1.55 * p + 0.8, 1.55 * p + 0.6), layout="constrained")
    axes = fig.subplots(p, p, squeeze=False)
    thin = s[:: max(1, s.shape[0] // max_points)]
    lims = [(np.min(s[:, j]), np.max(s[:, j])) for j in range(p)]
    lims = [(a - 0.04 * (b - a + 1e-12), b + 0.04 * (b - a + 1e-12)) for a, b in lims]
    for i in range(p):
        for j in range(p):
            ax = axes[i, j]
            if i == j:
                ax.hist(s[:, i], bins=30, color="0.45")
                ax.set_xlim(lims[j])
                ax.set_yticks([])
            elif i > j:
                ax.plot(thin[:, j], thin[:, i], ".", ms=1.5, alpha=0.4, color="C0", rasterized=True)
                ax.set_xlim(lims[j])
                ax.set_ylim(lims[i])
            else:
                r = _corr(s[:, i], s[:, j])
                ax.text(
                    0.5,
                    0.5,
                    f"{r:+.3f}" if abs(r) >= 0.995 else f"{r:+.2f}",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    fontsize=9,
                    color="C3" if abs(r) >= 0.5 else "0.2",
                )
                ax.set_xticks([])
                ax.set_yticks([])
                for side in ax.spines.values():
                    side.set_visible(False)
                continue
            ax.xaxis.set_major_locator(MaxNLocator(3))
            ax.tick_params(labelsize=7)
            if i > j:
                ax.yaxis.set_major_locator(MaxNLocator(3))
            if i < p - 1:
                ax.tick_params(labelbottom=False)
            else:
                ax.tick_params(axis="x", labelrotation=45)
                ax.set_xlabel(_label(names[j]), fontsize=9)
            if j > 0:
                ax.tick_params(labelleft=False)
            if j == 0:
                ax.set_ylabel(_label(names[i]) + (" (histogram)" if i == 0 else ""), fontsize=9)
    fig.text(0.99, 0.99, "upper triangle: correlation", ha="right", va="top", fontsize=8)
    return fig


def save_pair_plot(dt: xr.DataTree, path, *, var_name: str = "theta", **sel):
    """:func:`plot_pair` of a result's draws (:func:`posterior_samples`), written to a PNG.

    Args:
        dt: sampling result (–).
        path: PNG file (path).
        var_name: "theta" (pooled), "theta_site" or "theta_population" (–).
        **sel: one value of each other dimension, e.g. ``site="s1"`` or ``forest_type="ENF"`` (–).

    Returns:
        The path written.
    """
    from pathlib import Path

    import matplotlib.pyplot as plt

    fig = plot_pair(posterior_samples(dt, var_name, **sel))
    what = {"theta": "pooled parameters", "theta_site": "site parameters", "theta_population": "population medians"}
    what = what.get(var_name, var_name) + "".join(f", {k} {v}" for k, v in sel.items())
    fig.suptitle(f"posterior draws ({what})", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def plot_ridge_profile(profile: xr.Dataset, ax=None):
    """Plot :func:`ridge_profile` output: log density (relative to its maximum) against the ridge position.

    Points of the line that leave the prior box (log density −inf) are not dropped: they are drawn as crosses
    at the bottom of the axes, and the legend says so.

    Args:
        profile: output of :func:`ridge_profile` (–).
        ax: matplotlib axes to draw into (default: a new figure) (–).

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.figure().add_subplot()
    s = profile["s"].to_numpy()
    lp = profile["log_density"].to_numpy()
    ok = np.isfinite(lp)
    if not ok.any():
        raise ValueError("the log density is -inf or NaN at every point of the profile")
    rel = lp - np.max(lp[ok])
    ax.plot(s[ok], rel[ok], "-o", ms=3, label="inside the prior box")
    if (~ok).any():
        floor = float(np.min(rel[ok])) - 0.1 * max(1.0, float(np.ptp(rel[ok])))
        ax.plot(
            s[~ok],
            np.full((~ok).sum(), floor),
            "x",
            color="C3",
            ms=6,
            clip_on=False,
            label=f"{int((~ok).sum())} point(s) outside the box (log density −∞), drawn at the bottom",
        )
        ax.set_ylim(bottom=floor - 0.05 * max(1.0, float(np.ptp(rel[ok]))))
    ax.set_xlabel("position along the x_v–x_K ridge (posterior sd)")
    ax.set_ylabel("log density − max (nats)")
    ax.legend(fontsize=8, loc="lower center")
    return ax


def _clip_and_mark(ax, x, y, lo, hi, **kw) -> int:
    """Scatter (x, y) on log axes limited to the box [lo, hi] × margin; points outside are drawn at the edge
    with a cross. Returns the number of points outside."""
    xlo, xhi = lo[0] / 1.15, hi[0] * 1.15
    ylo, yhi = lo[1] / 1.15, hi[1] * 1.15
    out = (x < xlo) | (x > xhi) | (y < ylo) | (y > yhi)
    ax.plot(x[~out], y[~out], ls="", **kw)
    if out.any():
        kw = {**kw, "marker": "x", "alpha": 1.0, "ms": 5}
        ax.plot(np.clip(x[out], xlo, xhi), np.clip(y[out], ylo, yhi), ls="", clip_on=False, **kw)
    ax.set_xlim(xlo, xhi)
    ax.set_ylim(ylo, yhi)
    return int(out.sum())


def plot_xv_xk(dt: xr.DataTree, path, *, prior=None, max_points: int = 3000):
    """The x_v–x_K ridge of a pooled or hierarchical result (two panels), written to a PNG.

    Left: the posterior in (x_v, x_K) on log axes with the prior box (dashed) and the ridge's principal axis
    (:func:`ridge_direction`); pooled results show the draws of θ, hierarchical ones the draws of each forest
    type's population median and every site's posterior median. The axes span the box; a point outside it
    would be drawn at the edge as a cross and counted in the legend, never dropped. Right: the posterior
    spread of log x_v, log x_K and log(x_v/x_K) around their medians (pooled), or the per-site and population
    correlations of log x_v and log x_K (hierarchical): a narrow ratio with wide factors is the ridge.

    Args:
        dt: sampling result (pooled: ``x_v`` … ``beta``; hierarchical: ``theta_site``/``theta_population``) (–).
        path: PNG file (path).
        prior: :class:`~bayes_vmimics.priors.BoxPrior` whose box to draw (default: Table 1) (–).
        max_points: at most this many draws per scatter (count).

    Returns:
        The path written.
    """
    from pathlib import Path

    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FixedLocator, MaxNLocator, NullFormatter, ScalarFormatter

    variables = _theta_variables(dt)
    if not variables:
        raise ValueError("the posterior has no parameter draws (x_v … beta, theta, theta_site or theta_population)")
    if prior is not None:
        lo, hi = np.asarray(prior.lower)[[_XV, _XK]], np.asarray(prior.upper)[[_XV, _XK]]
    else:
        lo = np.array([TABLE1["x_v"][0], TABLE1["x_K"][0]])
        hi = np.array([TABLE1["x_v"][1], TABLE1["x_K"][1]])
    corr = xv_xk_correlation(dt)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10.5, 4.6), layout="constrained")
    ax.set_xscale("log")
    ax.set_yscale("log")
    handles = []
    n_out = 0
    hierarchical = "theta_population" in variables or "theta_site" in variables
    if not hierarchical:
        s = posterior_samples(dt, "theta")
        thin = s[:: max(1, s.shape[0] // max_points)]
        n_out += _clip_and_mark(ax, thin[:, _XV], thin[:, _XK], lo, hi, marker=".", ms=2, alpha=0.35, color="C0")
        handles.append(
            Line2D(
                [], [], marker=".", ls="", color="C0", label=f"posterior draws (log corr {float(corr['theta']):+.3f})"
            )
        )
        _ridge_line(ax, s, "C0")
        z = np.log(s[:, [_XV, _XK]])
        z = np.column_stack([z, z[:, 0] - z[:, 1]])
        for k, (lab, col) in enumerate((("log $x_v$", "C0"), ("log $x_K$", "C2"), ("log($x_v$/$x_K$)", "C3"))):
            v = z[:, k] - np.median(z[:, k])
            ax2.hist(v, bins=30, density=True, histtype="step", lw=1.5, color=col, label=f"{lab}: sd {v.std():.2f}")
        ax2.set_xlabel("deviation from the posterior median (log units)")
        ax2.set_ylabel("density (1/log unit)")
        ax2.set_ylim(0, 1.3 * ax2.get_ylim()[1])  # headroom: the legend sits above the histograms
        ax2.legend(fontsize=8, loc="upper right")
        ax2.set_title("the ratio is identified better than either factor", fontsize=9)
    else:
        post = dt["posterior"]
        if "theta_population" in variables:
            for i, t in enumerate(map(str, post["forest_type"].values)):
                s = posterior_samples(dt, "theta_population", forest_type=t)
                thin = s[:: max(1, s.shape[0] // max_points)]
                n_out += _clip_and_mark(
                    ax, thin[:, _XV], thin[:, _XK], lo, hi, marker=".", ms=2, alpha=0.3, color=f"C{i}"
                )
                _ridge_line(ax, s, f"C{i}")
                r = float(corr["theta_population"].sel(forest_type=t))
                handles.append(
                    Line2D([], [], marker=".", ls="", color=f"C{i}", label=f"{t} population median (log corr {r:+.3f})")
                )
        if "theta_site" in variables:
            med = variables["theta_site"].median(("chain", "draw")).transpose("site", "parameter").values
            n_out += _clip_and_mark(ax, med[:, _XV], med[:, _XK], lo, hi, marker="+", ms=7, color="k")
            handles.append(Line2D([], [], marker="+", ls="", ms=7, color="k", label="site posterior medians"))
            rs = corr["theta_site"].values
            ax2.hist(rs[np.isfinite(rs)], bins=np.linspace(-1, 1, 21), color="0.5", label="sites")
        if "theta_population" in variables:
            for i, t in enumerate(map(str, post["forest_type"].values)):
                ax2.axvline(
                    float(corr["theta_population"].sel(forest_type=t)), color=f"C{i}", lw=2, label=f"{t} population"
                )
        ax2.set_xlim(-1, 1)
        ax2.set_xlabel("posterior correlation of log $x_v$ and log $x_K$ (–)")
        ax2.set_ylabel("sites (count)")
        ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.set_ylim(0, 1.35 * ax2.get_ylim()[1] if ax2.get_ylim()[1] > 0 else 1)  # headroom for the legend
        ax2.legend(fontsize=8, loc="upper left")
    ax.add_patch(Rectangle(lo, hi[0] - lo[0], hi[1] - lo[1], fill=False, ls="--", color="0.35"))
    handles.append(Line2D([], [], ls="--", color="0.35", label="Table 1 box"))
    handles.append(Line2D([], [], ls="-", color="0.2", lw=1, label="principal axis (ridge)"))
    handles.append(
        Line2D([], [], marker="x", ls="", color="0.2", label=f"{n_out} point(s) outside the box, drawn at its edge")
    )
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(FixedLocator([1, 2, 3, 5, 10, 20, 30, 50]))
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("$x_v$ (–), log scale")
    ax.set_ylabel("$x_K$ (–), log scale")
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def _ridge_line(ax, samples: np.ndarray, colour: str) -> None:
    """The principal axis of (log x_v, log x_K) through the centre, ±2.5 sd."""
    c, e, sd = ridge_direction(samples)
    t = np.linspace(-2.5 * sd, 2.5 * sd, 2)
    ax.plot(np.exp(c[0] + t * e[0]), np.exp(c[1] + t * e[1]), "-", color=colour, lw=1.2)


__all__ = [
    "ESS_BULK_MIN",
    "N_OVER_TAU_MIN",
    "PARAMETER_LABELS",
    "RHAT_MAX",
    "WEIGHT_ESS_Q05_MIN",
    "ConvergenceVerdict",
    "convergence_verdict",
    "result_verdict",
    "plot_pair",
    "plot_xv_xk",
    "save_pair_plot",
    "plot_ridge_profile",
    "posterior_samples",
    "ridge_direction",
    "ridge_profile",
    "xv_xk_correlation",
]
