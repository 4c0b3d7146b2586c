"""Figures of calibration results (matplotlib, Agg backend).

- :func:`plot_profiles` / :func:`plot_profile_pages`: observed SOC and F14C profiles of every site against the
  posterior predictive, with the 90 % predictive interval *including* the observation error beside the
  noise-free 90 % band of the model.

Parameter figures (marginals, populations, covariate effects) are in :mod:`bayes_vmimics.parameter_plots`, the
cross-validation figures in :mod:`bayes_vmimics.cv_plots`.

The x_v–x_K figures (pair plot, ridge) are in :mod:`bayes_vmimics.diagnostics`.

Observation error of the predictive bands: the ``posterior_predictive`` variables ``soc_observed`` and
``f14c_observed`` (replicated observations: model value plus observation error, dims as ``soc`` and ``f14c``)
are used when the result has them. Otherwise :func:`predictive_with_error` draws the error from the result's
observation-error model (:mod:`bayes_vmimics.errors`, the stored study configuration; the paper's σ_SOC = 10 %
and σ_F14C = 10 %/√5 of the observed value without one).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.legend_handler import HandlerTuple  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .config import LikelihoodSection, config_from_dict  # noqa: E402
from .errors import ErrorModel  # noqa: E402
from .priors import BoxPrior  # noqa: E402

DPI = 150
_SOC_COLOUR, _C14_COLOUR = "C0", "C1"
#: opacity of the predictive interval with observation error (light) and of the noise-free band (dark)
_LIGHT_ALPHA, _DARK_ALPHA = 0.18, 0.55


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _quantiles(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower, median, upper quantiles of the central ``level`` interval over (chain, draw) of an array
    (chain, draw, n), ignoring NaN (failed steady states); NaN where every draw is NaN."""
    flat = np.asarray(values, dtype=float).reshape(-1, values.shape[-1])
    ok = np.isfinite(flat).any(axis=0)
    q = np.full((3, flat.shape[1]), np.nan)
    if ok.any():
        q[:, ok] = np.nanquantile(flat[:, ok], [0.5 - level / 2, 0.5, 0.5 + level / 2], axis=0)
    return q[0], q[1], q[2]


def _likelihood_section(dt):
    """The ``[likelihood]`` section of the study stored in the result, or the defaults."""
    cfg = _stored_config(dt)
    if cfg is not None:
        return cfg.likelihood
    values = _stored_values(dt)
    return LikelihoodSection(**{k: v for k, v in values.get("likelihood", {}).items() if k in _LIK_FIELDS})


def _stored_values(dt) -> dict:
    try:
        return json.loads(dt.attrs.get("configuration", "{}")) or {}
    except (TypeError, ValueError):
        return {}


def _stored_config(dt):
    """The study configuration stored in the result, or None where it has none or cannot be read."""
    values = _stored_values(dt)
    if not values:
        return None
    try:
        return config_from_dict(values)
    except (ValueError, TypeError, KeyError):
        return None


def _error_model(dt) -> ErrorModel:
    """The error model the run used (:meth:`ErrorModel.of_study`); the paper's for a result whose configuration
    names none (older results, hand-made trees)."""
    cfg = _stored_config(dt)
    if cfg is None or "error_model" not in _stored_values(dt).get("likelihood", {}):
        return ErrorModel()
    return ErrorModel.of_study(cfg)


_LIK_FIELDS = {"soc_rel_error", "c14_rel_error", "c14_weight", "soc_unit"}


def result_prior(dt) -> BoxPrior | None:
    """The prior box of the study stored in a result (root attribute ``configuration``), or None (Table 1) when
    the result has no readable configuration.

    Args:
        dt: results DataTree (–).

    Returns:
        The :class:`~bayes_vmimics.priors.BoxPrior`, or None.
    """
    try:
        values = json.loads(dt.attrs.get("configuration", "{}"))
        return BoxPrior.from_config(config_from_dict(values).priors) if values else None
    except (TypeError, ValueError, KeyError):
        return None


def observation_error_sd(dt) -> dict[str, float]:
    """Base relative observation-error sd per variable, as the likelihood uses it.

    Args:
        dt: results DataTree; its ``configuration`` attribute (JSON of the study) gives the likelihood
            settings, otherwise the defaults of :class:`~bayes_vmimics.config.LikelihoodSection` apply (–).

    Returns:
        ``{"soc": soc_rel_error, "f14c": c14_rel_error / √c14_weight}``: σ as a fraction of the observed value,
        before any absolute floor or site scale of the error model (–).
    """
    lik = _likelihood_section(dt)
    return {"soc": float(lik.soc_rel_error), "f14c": float(lik.c14_rel_error) / np.sqrt(float(lik.c14_weight))}


def predictive_with_error(dt, var: str, *, seed: int = 0) -> np.ndarray:
    """Replicated observations of ``var`` ("soc" or "f14c"): model value plus observation error.

    Uses ``posterior_predictive[f"{var}_observed"]`` if the result has it. Otherwise draws the error here from
    the result's observation-error model (:class:`~bayes_vmimics.errors.ErrorModel` of the stored study
    configuration; the paper's relative errors without one), site by site: for held-out results (attribute
    ``held_out_forest_types``) as new sites, otherwise given each calibration site's data.

    Args:
        dt: results DataTree with ``observed_data`` and ``posterior_predictive`` (–).
        var: "soc" or "f14c" (–).
        seed: seed of the noise draws (integer).

    Returns:
        Array (chain, draw, n_obs) in the units of the data (SOC: the result's ``soc_unit``; F14C: –).

    Raises:
        ValueError: an absolute error floor on SOC in g C kg⁻¹ (its conversion needs the bulk density, which
            the result does not hold: store ``soc_observed`` in the result instead).
    """
    pp = dt["posterior_predictive"]
    if f"{var}_observed" in pp.data_vars:
        return pp[f"{var}_observed"].transpose("chain", "draw", ...).values
    obs = dt["observed_data"][var]
    pred = pp[var].transpose("chain", "draw", ...).values
    lik = _likelihood_section(dt)
    model = _error_model(dt)
    if var == "soc" and dt.attrs.get("soc_unit", "mg C cm-3") != "mg C cm-3" and model.soc_abs_error > 0:
        raise ValueError(
            "SOC in g C kg-1 with an absolute error floor: the floor's conversion needs the bulk density; "
            "add posterior_predictive 'soc_observed' to the result"
        )
    rel = lik.soc_rel_error if var == "soc" else lik.c14_rel_error
    lam = 1.0 if var == "soc" else lik.c14_weight
    new_site = bool(dt.attrs.get("held_out_forest_types"))
    rng = np.random.default_rng(seed)
    out = np.full(pred.shape, np.nan)
    sites = obs[f"{var}_site"].values
    thickness = obs[f"{var}_bottom_cm"].values - obs[f"{var}_top_cm"].values
    for s in dict.fromkeys(sites.tolist()):
        k = sites == s
        term = model.prepare(var, obs.values[k], thickness[k], rel, lam)
        p = pred[..., k]
        if new_site or model.discrepancy == "none":
            out[..., k] = term.sample(p, rng, new_site=True)
        else:  # κ of a calibration site given its data, one θ at a time
            flat = p.reshape(-1, p.shape[-1])
            draws = np.full_like(flat, np.nan)
            for d in range(flat.shape[0]):
                if np.all(np.isfinite(flat[d])):
                    draws[d] = term.sample(flat[d], rng, new_site=False)
            out[..., k] = draws.reshape(p.shape)
    return out


def site_forest_types(dt) -> dict[str, str]:
    """Forest type of each site of a result, where the result records it (else an empty dict).

    Looked up in order: a ``forest_type`` coordinate along ``site`` in the posterior (held-out results); a
    posterior with one forest type (every site of it); the study configuration (synthetic twin → "synthetic";
    a pooled calibration of one forest type → that type).
    """
    post = dt["posterior"] if "posterior" in dt.children else None
    sites = []
    if "observed_data" in dt.children:
        obs = dt["observed_data"]
        for k in ("soc_site", "f14c_site"):
            if k in obs.coords:
                sites += [str(s) for s in obs[k].values]
    sites = list(dict.fromkeys(sites))
    if post is not None:
        for name in ("forest_type", "site_forest_type"):
            c = post.coords.get(name)
            if c is not None and c.dims == ("site",):
                return dict(zip(map(str, post["site"].values), map(str, c.values), strict=True))
        if "forest_type" in post.dims and post.sizes["forest_type"] == 1:
            return dict.fromkeys(sites, str(post["forest_type"].values[0]))
    try:
        cfg = json.loads(dt.attrs.get("configuration", "{}"))
    except (TypeError, ValueError):
        cfg = {}
    if cfg.get("study", {}).get("mode") == "synthetic":
        return dict.fromkeys(sites, "synthetic")
    data = cfg.get("data", {})
    if data.get("forest_type") and not data.get("site_ids"):
        return dict.fromkeys(sites, str(data["forest_type"]))
    return {}


def _site_axes_grid(n_sites: int, n_panels: int, sites_per_row: int, legend_height: float):
    """A figure with a legend strip on top and one sub-figure per site (each with ``n_panels`` axes)."""
    n_rows = int(np.ceil(n_sites / sites_per_row))
    width = max(2.35 * n_panels * sites_per_row + 0.3, 8.0)
    height = 2.9 * n_rows + legend_height
    fig = plt.figure(figsize=(width, height), layout="constrained")
    top, body = fig.subfigures(2, 1, height_ratios=[legend_height, height - legend_height])
    cells = body.subfigures(n_rows, sites_per_row, squeeze=False)
    return fig, top, cells


def _draw_variable(ax, dt, var: str, site: str, *, level: float, colour: str, rep: np.ndarray, depth_max: float):
    """One panel: observed intervals, the predictive interval with observation error, the noise-free band."""
    obs = dt["observed_data"]
    pp = dt["posterior_predictive"]
    if var not in obs.data_vars:
        return False
    k = obs[f"{var}_site"].values == site
    grid_var = f"{var}_grid"
    soc_unit = dt.attrs.get("soc_unit", "mg C cm-3")
    if grid_var in pp.data_vars and (var != "soc" or soc_unit == "mg C cm-3"):
        g = pp["grid_site"].values == site
        _, med, _ = _quantiles(pp[grid_var].values[..., g], level)
        if np.isfinite(med).any():
            ax.plot(med, pp["grid_mid_cm"].values[g], color=colour, lw=1.0, ls="--")
    if not k.any():
        ax.text(0.5, 0.5, f"no {'F14C' if var == 'f14c' else 'SOC'} data", transform=ax.transAxes, ha="center")
        return True
    top, bot = obs[f"{var}_top_cm"].values[k], obs[f"{var}_bottom_cm"].values[k]
    lo_e, _, hi_e = _quantiles(rep[..., k], level)
    lo, _, hi = _quantiles(pp[var].values[..., k], level)
    for t, b, a1, a2, b1, b2 in zip(top, bot, lo_e, hi_e, lo, hi, strict=True):
        ax.fill_betweenx([t, b], a1, a2, color=colour, alpha=_LIGHT_ALPHA, lw=0)
        ax.fill_betweenx([t, b], b1, b2, color=colour, alpha=_DARK_ALPHA, lw=0)
    ax.vlines(obs[var].values[k], top, bot, color="k", lw=2)
    ax.plot(obs[var].values[k], 0.5 * (top + bot), "o", color="k", ms=3)
    ax.set_ylim(depth_max, 0)
    return True


def _short_id(site: str, width: int = 44) -> str:
    """A site id that fits above its two panels: long ISRaD ids keep their start and end around an ellipsis."""
    if len(site) <= width:
        return site
    keep = (width - 1) // 2
    return f"{site[:keep]}…{site[-(width - 1 - keep) :]}"


def _profile_figure(dt, sites: list[str], *, level: float, seed: int, title: str, row_of: int | None = None):
    """The profile grid of ``sites``; ``row_of``: lay the rows out as for this many sites (the pages of
    :func:`plot_profile_pages` keep the first page's panel size)."""
    obs = dt["observed_data"]
    has_c14 = "f14c" in obs.data_vars
    n_panels = 2 if has_c14 else 1
    sites_per_row = min(max(len(sites), row_of or 0), 3 if has_c14 else 4)
    fig, top, cells = _site_axes_grid(len(sites), n_panels, sites_per_row, legend_height=0.9)
    types = site_forest_types(dt)
    soc_unit = dt.attrs.get("soc_unit", "mg C cm-3")
    reps = {v: predictive_with_error(dt, v, seed=seed) for v in ("soc", "f14c") if v in obs.data_vars}
    for cell in cells.flat[len(sites) :]:
        cell.set_visible(False)
    for cell, site in zip(cells.flat, sites, strict=False):
        depth = [obs["soc_bottom_cm"].values[obs["soc_site"].values == site]]
        if has_c14:
            depth.append(obs["f14c_bottom_cm"].values[obs["f14c_site"].values == site])
        depth_max = max([1.0, *(float(d.max()) for d in depth if d.size)]) * 1.04
        axes = cell.subplots(1, n_panels, sharey=True, squeeze=False)[0]
        _draw_variable(axes[0], dt, "soc", site, level=level, colour=_SOC_COLOUR, rep=reps["soc"], depth_max=depth_max)
        axes[0].set_xlabel(f"SOC ({soc_unit.replace('-3', '⁻³').replace('-1', '⁻¹')})")
        axes[0].set_ylabel("depth (cm)")
        if has_c14:
            _draw_variable(
                axes[1], dt, "f14c", site, level=level, colour=_C14_COLOUR, rep=reps["f14c"], depth_max=depth_max
            )
            axes[1].set_xlabel("F14C (–)")
        for ax in axes:
            ax.tick_params(labelsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(4))
        ft = types.get(site)
        cell.suptitle(_short_id(site) + (f" ({ft})" if ft else ""), fontsize=9)
    sd = observation_error_sd(dt)
    pct = round(100 * level)
    # each legend swatch shows the colours the panels use (SOC blue, F14C orange), never a grey stand-in
    colours = [_SOC_COLOUR, _C14_COLOUR] if has_c14 else [_SOC_COLOUR]
    handles = [
        Line2D([], [], color="k", lw=2, marker="o", ms=3),
        tuple(Patch(facecolor=c, alpha=_LIGHT_ALPHA, lw=0) for c in colours),
        tuple(Patch(facecolor=c, alpha=_DARK_ALPHA, lw=0) for c in colours),
        tuple(Line2D([], [], color=c, lw=1, ls="--") for c in colours),
    ]
    which = " (blue: SOC, orange: F14C)" if has_c14 else ""
    labels = [
        "observed layer (bar from its top to its bottom)",
        f"{pct} % predictive interval with observation error (light){which}",
        f"{pct} % band of the model, no observation error (dark)",
        "model median per layer (dashed)",
    ]
    top.legend(
        handles=handles,
        labels=labels,
        handler_map={tuple: HandlerTuple(ndivide=None, pad=0.0)},
        handlelength=3.0,
        loc="center",
        ncols=2,
        fontsize=8,
        frameon=False,
        title=(
            f"{title[:1].upper() + title[1:]}: observed layers (black bars) with the {pct} % predictive interval "
            f"including observation error,\nand the model's noise-free {pct} % band. Observation error: "
            + _noise_text(dt, sd, has_c14)
        ),
    )
    return fig


def _noise_text(dt, sd: dict, has_c14: bool) -> str:
    """The observation error of the light band in words: its base σ and the error model that adds to it."""
    text = f"σ = {100 * sd['soc']:.3g} % of observed SOC" + (f", {100 * sd['f14c']:.3g} % of F14C" if has_c14 else "")
    stored = re.search(r"error model '([^']+)'", dt["posterior_predictive"].attrs.get("observation_error", ""))
    if stored:
        preset = stored.group(1)  # the model that drew the stored replicates
    else:
        preset = _error_model(dt).name  # the model the run used (the paper's for a synthetic twin)
    return text + (
        f", plus what the {preset!r} error model adds (floor, weights, site scale)" if preset != "paper" else ""
    )


def _sites(dt) -> list[str]:
    obs = dt["observed_data"]
    sites = [str(s) for s in obs["soc_site"].values]
    if "f14c_site" in obs.coords:
        sites += [str(s) for s in obs["f14c_site"].values]
    return list(dict.fromkeys(sites))


def plot_profiles(dt, path: str | Path, *, level: float = 0.9, seed: int = 0) -> Path:
    """Observed SOC and F14C against depth at every site of a result, one figure (a grid of sites).

    Per site (titled with its id and forest type): the observed interval means as black bars from top to
    bottom; per observed interval the central ``level`` predictive interval *with* the observation error (light)
    and the noise-free one of the model (dark) beside it; the model's median per layer (dashed). With the
    observation error a calibrated model covers about ``level`` of the observations. For many sites,
    :func:`plot_profile_pages` splits the grid over several files.

    Args:
        dt: results DataTree with ``observed_data`` and ``posterior_predictive``
            (:func:`bayes_vmimics.results.build_datatree`, ``add_site_predictive``, ``add_held_out_predictive``) (–).
        path: PNG file (path).
        level: probability of the central intervals (–).
        seed: seed of the observation-error draws (integer).

    Returns:
        The path written.
    """
    _check_profiles_input(dt, level)
    fig = _profile_figure(dt, _sites(dt), level=level, seed=seed, title="all sites")
    return _save(fig, path)


def plot_profile_pages(
    dt, path: str | Path, *, sites_per_page: int = 12, level: float = 0.9, seed: int = 0
) -> list[Path]:
    """:func:`plot_profiles` paged: ``<stem>_1.png``, ``<stem>_2.png``, … with at most ``sites_per_page`` sites
    each (one file, ``path`` itself, when all sites fit on one page).

    Args:
        dt: results DataTree (as :func:`plot_profiles`) (–).
        path: PNG file name; pages insert ``_1``, ``_2``, … before the suffix (path).
        sites_per_page: sites per page (count).
        level: probability of the central intervals (–).
        seed: seed of the observation-error draws (integer).

    Returns:
        The paths written, in page order.
    """
    _check_profiles_input(dt, level)
    if sites_per_page < 1:
        raise ValueError(f"sites_per_page must be ≥ 1, got {sites_per_page}")
    sites = _sites(dt)
    path = Path(path)
    pages = [sites[i : i + sites_per_page] for i in range(0, len(sites), sites_per_page)]
    out = []
    for i, page in enumerate(pages, start=1):
        p = path if len(pages) == 1 else path.with_name(f"{path.stem}_{i}{path.suffix}")
        first, last = sites.index(page[0]) + 1, sites.index(page[-1]) + 1
        title = f"site {first} of {len(sites)}" if first == last else f"sites {first}–{last} of {len(sites)}"
        fig = _profile_figure(dt, page, level=level, seed=seed, title=title, row_of=len(pages[0]))
        out.append(_save(fig, p))
    return out


def _check_profiles_input(dt, level: float) -> None:
    missing = [g for g in ("observed_data", "posterior_predictive") if g not in dt.children]
    if missing:
        raise ValueError(
            f"the result has no {' or '.join(missing)} group: run the posterior predictive first "
            "(predictive.add_site_predictive for hierarchical results)"
        )
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


__all__ = [
    "observation_error_sd",
    "plot_profile_pages",
    "plot_profiles",
    "predictive_with_error",
    "result_prior",
    "site_forest_types",
]
