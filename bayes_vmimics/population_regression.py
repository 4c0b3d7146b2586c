"""Regression populations of a hierarchical result, in NumPy: z and θ of a new (unobserved) site at its covariates.

The counterpart of :mod:`.population` for the regression population of
:func:`~bayes_vmimics.inference.regression.sample_regression_population`: z ~ N(μ_t + x B_t, σ_t²) per parameter,
x the site's standardised covariates (:mod:`.covariates`). Below both :mod:`.results` and :mod:`.inference`
(it needs neither), so that held-out predictions do not import the samplers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from .parameters import PARAMETER_NAMES
from .population import theta_from_logit
from .priors import BoxPrior

__all__ = ["is_regression_result", "new_site_z", "sample_new_site_parameters_regression"]


def is_regression_result(dt: xr.DataTree) -> bool:
    """Whether a hierarchical result is a regression population (its posterior has ``beta``)."""
    return "posterior" in dt.children and "beta" in dt["posterior"].data_vars


def new_site_z(
    dt: xr.DataTree, x_new, rng: np.random.Generator, forest_type: str | Sequence[str] | None = None
) -> xr.DataArray:
    """z of new sites drawn from the regression population at their covariates: z = μ_t + x B_t + σ_t η,
    η ~ N(0, I), one draw per posterior draw and site.

    Args:
        dt: a regression population (``posterior`` with ``mu``, ``sigma``, ``beta``) (–).
        x_new: standardised covariates, shape (J,) or (n_sites, J), in the order of ``posterior.covariate``
            (standardised units).
        rng: random generator (–).
        forest_type: one forest type for all sites or one per site; may be omitted with a single type (–).

    Returns:
        DataArray (chain, draw, parameter) for 1-D ``x_new``, else (chain, draw, site, parameter) (logit units).

    Raises:
        ValueError: no ``beta``, wrong number of covariates, a missing (non-finite) covariate naming it, an
            unknown or missing forest type.
    """
    post = dt["posterior"]
    if "beta" not in post.data_vars:
        raise ValueError("the result has no regression coefficients 'beta' (not a regression population)")
    names = [str(c) for c in post["covariate"].values]
    x = np.asarray(x_new, dtype=float)
    single = x.ndim == 1
    x = np.atleast_2d(x)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"x_new must have {len(names)} columns ({', '.join(names)}), got shape {np.shape(x_new)}")
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        i, j = bad[0]
        raise ValueError(f"covariate {names[j]!r} of new site {i} is missing or not finite ({x[i, j]})")
    types = [str(t) for t in post["forest_type"].values]
    if forest_type is None:
        if len(types) != 1:
            raise ValueError(f"give forest_type: the result has several forest types {types}")
        forest_type = types[0]
    ft = [forest_type] * x.shape[0] if isinstance(forest_type, str) else [str(t) for t in forest_type]
    if len(ft) != x.shape[0]:
        raise ValueError(f"{len(ft)} forest types for {x.shape[0]} new sites")
    unknown = sorted(set(ft) - set(types))
    if unknown:
        raise ValueError(f"unknown forest type(s) {unknown}; the model has {types}")
    mu = post["mu"].transpose("chain", "draw", "forest_type", "parameter").to_numpy()
    sd = post["sigma"].transpose("chain", "draw", "forest_type", "parameter").to_numpy()
    beta = post["beta"].transpose("chain", "draw", "forest_type", "covariate", "parameter").to_numpy()
    ti = np.array([types.index(t) for t in ft])
    mean = mu[:, :, ti] + np.einsum("sj,cdsjp->cdsp", x, beta[:, :, ti])
    z = mean + sd[:, :, ti] * rng.standard_normal(mean.shape)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "parameter": list(PARAMETER_NAMES)}
    if single:
        return xr.DataArray(z[:, :, 0], dims=("chain", "draw", "parameter"), coords=coords, name="z_new_site")
    return xr.DataArray(
        z,
        dims=("chain", "draw", "site", "parameter"),
        coords={**coords, "site": np.arange(x.shape[0])},
        name="z_new_site",
    )


def sample_new_site_parameters_regression(
    dt: xr.DataTree, forest_types: Sequence[str], x_new, prior: BoxPrior, rng: np.random.Generator
) -> np.ndarray:
    """θ of new sites from the regression population at their covariates, independently per site and draw.

    Args:
        dt: a regression population (–).
        forest_types: forest type of each new site (–).
        x_new: their standardised covariates, shape (n_sites, J) (standardised units).
        prior: the box prior the result was sampled with (–).
        rng: random generator (–).

    Returns:
        Array (chain, draw, site, parameter) (parameter units).
    """
    z = new_site_z(dt, np.atleast_2d(np.asarray(x_new, dtype=float)), rng, list(forest_types))
    return theta_from_logit(prior, z.values)
