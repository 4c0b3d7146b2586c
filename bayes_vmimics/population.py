"""Forest-type populations of a hierarchical result, in NumPy: θ of a new (unobserved) site.

Below both :mod:`.results` and :mod:`.inference` (it needs neither), so that held-out predictions do not
import the samplers. The populations follow the conventions of the hierarchical samplers
(:mod:`.inference.two_stage`, :mod:`.inference.pymc_models`): z = logit of the unit position on the prior
box (log scale for log-uniform parameters), z ~ N(μ_t, σ_t²) per parameter.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .parameters import PARAMETER_NAMES
from .priors import BoxPrior, theta_from_logit


def sample_new_site_parameters(
    dt: xr.DataTree, forest_type: str, prior: BoxPrior, rng: np.random.Generator
) -> xr.DataArray:
    """θ of a new (unobserved) site of ``forest_type``: one draw per posterior draw of the population.

    θ = box(sigmoid(μ_t + σ_t η)), η ~ N(0, I), with (μ_t, σ_t) from the hierarchical posterior.

    Args:
        dt: a hierarchical result (posterior ``mu`` and ``sigma`` over forest_type, parameter) (–).
        forest_type: a forest type of the result (–).
        prior: the box prior the result was sampled with (``problem.prior``) (–).
        rng: random generator (–).

    Returns:
        DataArray (chain, draw, parameter) (parameter units).

    Raises:
        ValueError: a forest type the result lacks.
    """
    post = dt["posterior"]
    types = [str(t) for t in post["mu"].coords["forest_type"].values]
    if forest_type not in types:
        raise ValueError(f"unknown forest type {forest_type!r}; the model has {types}")
    mu = post["mu"].sel(forest_type=forest_type).transpose("chain", "draw", "parameter").to_numpy()
    sd = post["sigma"].sel(forest_type=forest_type).transpose("chain", "draw", "parameter").to_numpy()
    theta = theta_from_logit(prior, mu + sd * rng.standard_normal(mu.shape))
    return xr.DataArray(
        theta,
        dims=("chain", "draw", "parameter"),
        coords={"chain": post["chain"].values, "draw": post["draw"].values, "parameter": list(PARAMETER_NAMES)},
        name="theta_new_site",
    )
