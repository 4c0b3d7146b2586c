"""Steady-state SOC profiles under parameter changes (P Fig 7) and the input-response curves (P Fig 8).

- ±25 % profiles: the mean steady-state SOC profile at calibrated parameters and with x_D, α_v, α_r each ×0.75
  and ×1.25 (:func:`perturbed_profiles`), and its central band over posterior draws
  (:func:`posterior_profile_band`);
- response curves: SOC in the layers at 15 and 35 cm against a relative change of the root litter input and of
  V, diffusion off (:func:`response_curves`).

Every solve is a cold spin-up; a site whose steady state fails is left out of the mean and counted.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..constants import SOC_POOLS
from ..parameters import PARAMETER_NAMES
from ..steady_state import solve_site
from .evaluate import layer_index
from .inputs import check_names

#: The three process parameters of P Fig 7.
PROFILE_PARAMETERS = ("x_D", "alpha_v", "alpha_r")
#: Relative changes of P Fig 7 (–).
PROFILE_CHANGES = (-0.25, 0.25)
#: x_D standing for "diffusion off" in P Fig 8: the lower bound of Table 1 (transport time scale of a 5 cm layer
#: ~25 yr / x_D ≈ 2500 yr). The model needs x_D > 0, and the steady-state solver needs thousands of iterations
#: (4–10 s a solve) at x_D = 1e-4 or 1e-6 and fails at 1e-9. Measured at the EBF site he2016_109 with Table 3
#: parameters: SOC in the 15–20 cm layer 25.72 (x_D = 0.01) against 25.73 (1e-6) mg C cm⁻³, in the 35–40 cm
#: layer 29.4 against 31.7 (7 % lower) (dimensionless).
X_D_OFF = 0.01


def _site_profile(problem, index: int, theta, n_layers: int) -> np.ndarray:
    p = problem.sites[int(index)]
    ss = solve_site(p.model, np.asarray(theta, float), None, on_failure="ignore")
    if not ss.converged:
        return np.full(n_layers, np.nan)
    return ss.pools[list(SOC_POOLS)].sum(axis=0)[:n_layers]


def mean_profile(problem, theta, site_indices: Sequence[int] | None = None) -> tuple[np.ndarray, int]:
    """Mean over sites of the steady-state SOC profile on the problem's base grid (cold spin-ups).

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` (–).
        theta: 7 values in ``PARAMETER_NAMES`` order (parameter units).
        site_indices: the sites (count); default all.

    Returns:
        (profile (n_layers,) (mg C cm⁻³), number of sites whose steady state failed and were left out (count)).
    """
    n = problem.base_grid.n_layers
    idx = range(len(problem.sites)) if site_indices is None else site_indices
    prof = np.array([_site_profile(problem, i, theta, n) for i in idx])
    ok = np.all(np.isfinite(prof), axis=1)
    return (prof[ok].mean(axis=0) if ok.any() else np.full(n, np.nan)), int((~ok).sum())


def perturbed_profiles(
    problem,
    theta,
    *,
    parameters: Sequence[str] = PROFILE_PARAMETERS,
    changes: Sequence[float] = PROFILE_CHANGES,
    site_indices: Sequence[int] | None = None,
) -> xr.Dataset:
    """The mean steady-state SOC profile at ``theta`` and with each of ``parameters`` changed by each relative
    change (P Fig 7: x_D, α_v, α_r by ±25 %).

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` (–).
        theta: the calibrated parameters, ``PARAMETER_NAMES`` order (parameter units).
        parameters: the parameters changed one at a time (–).
        changes: relative changes, e.g. (−0.25, 0.25) (fraction of the value).
        site_indices: the sites averaged (count); default all.

    Returns:
        Dataset with ``base`` (depth) and ``perturbed`` (parameter, change, depth) (mg C cm⁻³), coordinates
        depth (layer midpoints, cm) and edges; attribute ``n_failed``.
    """
    theta = np.asarray(theta, float)
    check_names(parameters, model=True)
    base, nf = mean_profile(problem, theta, site_indices)
    pert = np.empty((len(parameters), len(changes), base.size))
    for a, name in enumerate(parameters):
        for b, c in enumerate(changes):
            th = theta.copy()
            th[PARAMETER_NAMES.index(name)] *= 1.0 + c
            pert[a, b], f = mean_profile(problem, th, site_indices)
            nf += f
    g = problem.base_grid
    return xr.Dataset(
        {
            "base": ("depth", base, {"units": "mg C cm-3"}),
            "perturbed": (("parameter", "change", "depth"), pert, {"units": "mg C cm-3"}),
            "theta": ("theta_name", theta),
        },
        coords={
            "parameter": list(parameters),
            "change": np.asarray(changes, float),
            "depth": ("depth", np.asarray(g.mid_cm, float), {"units": "cm"}),
            "theta_name": list(PARAMETER_NAMES),
        },
        attrs={"n_failed": nf},
    )


def posterior_profile_band(
    problem, draws, *, site_indices: Sequence[int] | None = None, level: float = 0.9
) -> tuple[np.ndarray, np.ndarray, int]:
    """Central ``level`` band of the mean steady-state SOC profile over posterior draws.

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` (–).
        draws: θ draws, shape (n_draws, 7) (parameter units).
        site_indices: the sites averaged (count); default all.
        level: probability mass of the band (–).

    Returns:
        (lower (n_layers,), upper (n_layers,)) (mg C cm⁻³) and the number of draws left out for a failure.
    """
    profs = []
    for th in np.asarray(draws, float):
        prof, nf = mean_profile(problem, th, site_indices)
        if nf == 0:
            profs.append(prof)
    if not profs:
        n = problem.base_grid.n_layers
        return np.full(n, np.nan), np.full(n, np.nan), len(draws)
    q = np.quantile(np.array(profs), [(1 - level) / 2, (1 + level) / 2], axis=0)
    return q[0], q[1], len(draws) - len(profs)


def _layer_soc(model, theta, layers) -> np.ndarray:
    """Steady-state SOC in ``layers`` (mg C cm⁻³); NaN if the solve fails."""
    ss = solve_site(model, theta, None, on_failure="ignore")
    if not ss.converged:
        return np.full(len(layers), np.nan)
    return ss.pools[list(SOC_POOLS)].sum(axis=0)[layers]


def _alpha_points(model, theta, layers, changes) -> tuple[np.ndarray, dict]:
    """The factor by which α_r (α_v) changed by each of ``changes`` multiplies each layer's input (V), shape
    (2, n_layers, n_changes), and the changed θ of each (driver, change)."""
    r0 = model.rates(theta)
    factors = np.empty((2, len(layers), len(changes)))
    thetas = {}
    for b, c in enumerate(changes):
        for a, (name, field_) in enumerate((("alpha_r", "inputs"), ("alpha_v", "V"))):
            th = theta.copy()
            th[PARAMETER_NAMES.index(name)] *= 1.0 + c
            thetas[a, b] = th
            v0, v1 = getattr(r0, field_), getattr(model.rates(th), field_)
            factors[a, :, b] = [v1[j].sum() / v0[j].sum() for j in layers]
    return factors, thetas


def response_curves(
    problem,
    index: int,
    theta,
    *,
    depths_cm: Sequence[float] = (15.0, 35.0),
    multipliers=None,
    n_multipliers: int = 60,
    changes: Sequence[float] = PROFILE_CHANGES,
    x_d_off: float = X_D_OFF,
) -> xr.Dataset:
    """SOC in the layers holding ``depths_cm`` against relative changes of root litter input and of V, with
    diffusion off (P Fig 8), and the points of α_r and α_v changed by ``changes``.

    Diffusion off (x_D = :data:`X_D_OFF`, see there) makes every layer nearly its own steady-state problem,
    driven by its litter input and its V. The
    curves scale the site's root input I_B (litter input of every layer below the top one) or x_v (V in every
    layer) by each multiplier. A change of α_r (α_v) changes a layer's input (V) by the factor the model's rate
    record gives (:meth:`~bayes_vmimics.model.SiteModel.rates`); that factor and the SOC at the changed α are
    the marked points, which lie on the curves for layers below the top one (up to the small coupling that the
    remaining diffusion leaves).

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` (–).
        index: the site's position in ``problem.sites`` (count).
        theta: calibrated parameters, ``PARAMETER_NAMES`` order (parameter units).
        depths_cm: depths of the layers shown (cm).
        multipliers: factors of the input or V (–); default ``n_multipliers`` from 0.05 to 3 (or past the
            largest point).
        n_multipliers: number of default multipliers (count).
        changes: relative changes of α_r and α_v for the points (fraction of the value).
        x_d_off: the x_D used for "diffusion off" (–).

    Returns:
        Dataset: ``soc`` (driver, depth, multiplier), ``point_factor`` and ``point_soc`` (driver, depth, change)
        (mg C cm⁻³; factor –), ``soc_base`` (depth); drivers "litter" (α_r points) and "V" (α_v points).
    """
    from ..model import SiteModel

    p = problem.sites[int(index)]
    model = p.model
    theta = np.asarray(theta, float).copy()
    theta[PARAMETER_NAMES.index("x_D")] = x_d_off
    layers = [layer_index(model.grid.edges_cm, d) for d in depths_cm]
    if 0 in layers:
        raise ValueError("the top layer also receives aboveground litter: choose depths below it")
    pf, ths = _alpha_points(model, theta, layers, changes)
    if multipliers is None:  # 0.05 to 3, or further to take in the points
        mult = np.linspace(0.05, max(3.0, 1.05 * float(pf.max())), int(n_multipliers))
    else:
        mult = np.asarray(multipliers, float)
    out = np.empty((2, len(layers), mult.size))
    forcing = model.forcing
    for k, f in enumerate(mult):
        fk = dataclasses.replace(forcing, litter_below=forcing.litter_below * f)
        out[0, :, k] = _layer_soc(SiteModel(fk, model.grid, problem.profile), theta, layers)
        th = theta.copy()
        th[PARAMETER_NAMES.index("x_v")] *= f
        out[1, :, k] = _layer_soc(model, th, layers)
    base = _layer_soc(model, theta, layers)
    ps = np.empty_like(pf)
    for (a, b), th in ths.items():
        ps[a, :, b] = _layer_soc(model, th, layers)
    edges = np.asarray(model.grid.edges_cm)
    return xr.Dataset(
        {
            "soc": (("driver", "depth", "multiplier"), out, {"units": "mg C cm-3"}),
            "soc_base": ("depth", base, {"units": "mg C cm-3"}),
            "point_factor": (("driver", "depth", "change"), pf),
            "point_soc": (("driver", "depth", "change"), ps, {"units": "mg C cm-3"}),
            "layer_top_cm": ("depth", edges[layers]),
            "layer_bottom_cm": ("depth", edges[np.array(layers) + 1]),
        },
        coords={
            "driver": ["litter", "V"],
            "depth": np.asarray(depths_cm, float),
            "multiplier": mult,
            "change": np.asarray(changes, float),
        },
        attrs={"site_id": p.obs.site_id, "x_D_off": x_d_off, "theta": json.dumps(theta.tolist())},
    )


__all__ = [
    "PROFILE_CHANGES",
    "PROFILE_PARAMETERS",
    "X_D_OFF",
    "mean_profile",
    "perturbed_profiles",
    "posterior_profile_band",
    "response_curves",
]
