"""Posterior diagnostics of the x_v–x_K ridge: correlations, a 1-D profile along the ridge, a pair plot.

V and K enter the uptake fluxes as V·S/(K + S) (P Eqs 4–5); where S ≪ K only V/K is identified, so the
posterior of (x_v, x_K) concentrates along a ridge x_v/x_K ≈ const, i.e. a line in (log x_v, log x_K).
These helpers quantify that from sampling results (``xarray.DataTree`` with a ``posterior`` group holding
``theta`` (parameter), ``theta_site`` (site, parameter) and/or ``theta_population`` (forest_type, parameter);
see :mod:`bayes_vmimics.inference.pymc_models`) or from a plain array of draws (n, 7).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from .parameters import PARAMETER_NAMES

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


def xv_xk_correlation(dt: xr.DataTree, *, log: bool = True) -> dict[str, xr.DataArray]:
    """Posterior correlation of x_v and x_K for every θ variable in the posterior.

    Args:
        dt: sampling result with a ``posterior`` group (–).
        log: correlate log x_v and log x_K (the ridge is a line in log space) (bool).

    Returns:
        dict variable name → DataArray of correlations (–): ``theta`` (scalar; pooled / single site),
        ``theta_site`` (site,), ``theta_population`` (forest_type,) — those present.
    """
    post = dt["posterior"]
    out = {}
    for name in ("theta", "theta_site", "theta_population"):
        if name not in post:
            continue
        da = _draws(post[name])
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
    """Draws of a θ variable as an array (n, 7) (parameter units); ``sel`` picks e.g. ``site="s1"``."""
    da = dt["posterior"][var_name]
    if sel:
        da = da.sel(**sel)
    da = _draws(da)
    return da.transpose("sample", "parameter").to_numpy()


def plot_pair(samples: np.ndarray, names: Sequence[str] = PARAMETER_NAMES, *, max_points: int = 2000, fig=None):
    """Pair plot of posterior draws: histograms on the diagonal, scatter below, correlations above.

    Args:
        samples: draws (n, p) (parameter units).
        names: labels of the p columns (–).
        max_points: at most this many points per scatter (evenly thinned) (count).
        fig: a matplotlib figure to draw into (default: a new one) (–).

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    s = np.asarray(samples, dtype=float)
    p = s.shape[1]
    if len(names) != p:
        raise ValueError(f"{len(names)} names for {p} columns")
    fig = fig if fig is not None else plt.figure(figsize=(1.8 * p, 1.8 * p))
    axes = fig.subplots(p, p, squeeze=False)
    thin = s[:: max(1, s.shape[0] // max_points)]
    for i in range(p):
        for j in range(p):
            ax = axes[i, j]
            if i == j:
                ax.hist(s[:, i], bins=30, color="0.4")
            elif i > j:
                ax.plot(thin[:, j], thin[:, i], ".", ms=1.5, alpha=0.4, color="C0")
            else:
                ax.text(0.5, 0.5, f"{_corr(s[:, i], s[:, j]):.2f}", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
            if i == p - 1:
                ax.set_xlabel(names[j])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i])
    return fig


def plot_ridge_profile(profile: xr.Dataset, ax=None):
    """Plot :func:`ridge_profile` output: log density (relative to its maximum) against the ridge position."""
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.figure().add_subplot()
    lp = profile["log_density"].to_numpy()
    ax.plot(profile["s"], lp - np.max(lp[np.isfinite(lp)]), "-o", ms=3)
    ax.set_xlabel("position along the x_v–x_K ridge (posterior sd)")
    ax.set_ylabel("log density − max")
    return ax


__all__ = [
    "plot_pair",
    "plot_ridge_profile",
    "posterior_samples",
    "ridge_direction",
    "ridge_profile",
    "xv_xk_correlation",
]
