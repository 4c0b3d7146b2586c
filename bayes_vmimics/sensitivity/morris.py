"""Morris screening (P §2.3, Fig 2): SALib's Morris design on the Table 1 box (4 levels, 50 trajectories,
Δ = 2/3 of the range: 400 runs for 7 parameters) and SALib's analysis, of the costs J₁ and J₂ separately: μ, μ*,
σ and the paper's importance θ_m = √(μ_m² + σ_m²)/σ (:func:`paper_importance`).

A design point whose model run failed (NaN output) drops its whole trajectory (``n_dropped``), so that SALib gets
complete trajectories; an output that is NaN everywhere (J₂ at a site without ¹⁴C) is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from ..parameters import PARAMETER_NAMES
from .inputs import DUMMY_PREFIX, check_names, default_bounds, salib_problem

#: Paper settings of the Morris design (P §2.3): levels, trajectories (count).
MORRIS_LEVELS = 4
MORRIS_TRAJECTORIES = 50


def morris_design(
    names: Sequence[str] = PARAMETER_NAMES,
    bounds=None,
    *,
    n_trajectories: int = MORRIS_TRAJECTORIES,
    num_levels: int = MORRIS_LEVELS,
    seed: int = 0,
) -> np.ndarray:
    """SALib's Morris design (P §2.3: 4 levels, 50 trajectories, Δ = levels/(2(levels − 1)) = 2/3 of the range).

    Args:
        names: the parameters (–).
        bounds: (n, 2) ranges (parameter units); default Table 1.
        n_trajectories: trajectories (count).
        num_levels: grid levels (count).
        seed: seed (–).

    Returns:
        X, shape (n_trajectories · (n + 1), n) (parameter units).
    """
    from SALib.sample import morris as morris_sample

    names = check_names(names)
    bounds = default_bounds(names) if bounds is None else np.asarray(bounds, float)
    return morris_sample.sample(
        salib_problem(names, bounds), int(n_trajectories), num_levels=int(num_levels), seed=int(seed)
    )


def paper_importance(mu, sigma) -> np.ndarray:
    """The paper's importance θ_m = √(μ_m² + σ_m²)/σ, σ the (population) standard deviation of √(μ_m² + σ_m²)
    over the parameters (P §2.3 after Eq 13; Lu et al. 2013).

    Args:
        mu: mean elementary effect per parameter (output units per fraction of the range).
        sigma: standard deviation of the elementary effects per parameter (same units).

    Returns:
        θ per parameter (dimensionless); NaN if all parameters have the same √(μ² + σ²).
    """
    r = np.hypot(np.asarray(mu, float), np.asarray(sigma, float))
    s = np.std(r)
    return r / s if s > 0 else np.full(r.shape, np.nan)


def morris_indices(
    X,
    Y,
    names: Sequence[str] = PARAMETER_NAMES,
    bounds=None,
    *,
    output_names: Sequence[str] | None = None,
    num_levels: int = MORRIS_LEVELS,
    seed: int = 0,
    num_resamples: int = 1000,
) -> pd.DataFrame:
    """SALib's Morris analysis of each output, with the paper's importance.

    Trajectories holding a NaN output are dropped for that output (counted in ``n_dropped``); an output that is
    NaN everywhere is skipped.

    Args:
        X: the design of :func:`morris_design`, shape (n_rows, n) (parameter units).
        Y: outputs, shape (n_rows,) or (n_rows, n_outputs) (output units).
        names: parameter of each column of X (–).
        bounds: the design's ranges (parameter units); default Table 1.
        output_names: name of each output (–); default ``y0, y1, …``.
        num_levels: the design's levels (count).
        seed: seed of the bootstrap of μ*'s interval (–).
        num_resamples: bootstrap resamples (count).

    Returns:
        Long table: output, parameter, mu, mu_star, sigma, mu_star_conf (95 %), importance (θ, dummies excluded
        from its σ and given NaN), n_trajectories (used), n_dropped.
    """
    from SALib.analyze import morris as morris_analyze

    names = check_names(names)
    bounds = default_bounds(names) if bounds is None else np.asarray(bounds, float)
    X = np.asarray(X, float)
    Y = np.asarray(Y, float).reshape(len(X), -1)
    output_names = list(output_names) if output_names is not None else [f"y{k}" for k in range(Y.shape[1])]
    d = len(names)
    if len(X) % (d + 1):
        raise ValueError(f"a Morris design has a multiple of n + 1 = {d + 1} rows, got {len(X)}")
    n_traj = len(X) // (d + 1)
    real = np.array([not n.startswith(DUMMY_PREFIX) for n in names])
    rows = []
    for k, name in enumerate(output_names):
        y = Y[:, k].reshape(n_traj, d + 1)
        good = np.all(np.isfinite(y), axis=1)
        if not good.any():
            continue
        keep = np.repeat(good, d + 1)
        res = morris_analyze.analyze(
            salib_problem(names, bounds),
            X[keep],
            Y[keep, k],
            num_resamples=int(num_resamples),
            num_levels=int(num_levels),
            seed=int(seed),
        )
        mu, sigma = np.asarray(res["mu"]), np.asarray(res["sigma"])
        imp = np.full(d, np.nan)
        imp[real] = paper_importance(mu[real], sigma[real])
        for j, p in enumerate(names):
            rows.append(
                dict(
                    output=name,
                    parameter=p,
                    mu=mu[j],
                    mu_star=np.asarray(res["mu_star"])[j],
                    sigma=sigma[j],
                    mu_star_conf=np.asarray(res["mu_star_conf"])[j],
                    importance=imp[j],
                    n_trajectories=int(good.sum()),
                    n_dropped=int((~good).sum()),
                )
            )
    return pd.DataFrame(rows)


def importance_ranking(table: pd.DataFrame, output: str = "J1") -> pd.DataFrame:
    """Per parameter: mean importance over sites, mean rank (1 = most important) and the number of sites where
    it is the least important, for one output of a combined Morris table.

    Args:
        table: :func:`~bayes_vmimics.sensitivity.sites.combine` of Morris results (–).
        output: "J1" or "J2" (–).
    """
    t = table[(table["output"] == output) & ~table["parameter"].str.startswith(DUMMY_PREFIX)]
    wide = t.pivot(index="site_id", columns="parameter", values="importance")
    ranks = wide.rank(axis=1, ascending=False)
    least = (ranks == ranks.max(axis=1).to_numpy()[:, None]).sum()
    return pd.DataFrame(
        {"mean_importance": wide.mean(), "mean_rank": ranks.mean(), "n_sites_least": least, "n_sites": len(wide)}
    ).sort_values("mean_importance", ascending=False)


@dataclass(frozen=True)
class Morris:
    """The Morris method of :func:`~bayes_vmimics.sensitivity.sites.analyse_site` on a box.

    Attributes:
        n_trajectories: trajectories (count).
        num_levels: grid levels (count).
    """

    name: ClassVar[str] = "morris"
    uses_bounds: ClassVar[bool] = True
    n_trajectories: int = MORRIS_TRAJECTORIES
    num_levels: int = MORRIS_LEVELS

    def settings(self, names) -> dict:
        """What must match for a finished file to be reused (besides names, seed, bounds)."""
        return dict(n_trajectories=int(self.n_trajectories), num_levels=int(self.num_levels))

    def design(self, names, bounds, seed: int) -> np.ndarray:
        """:func:`morris_design` (parameter units)."""
        return morris_design(names, bounds, n_trajectories=self.n_trajectories, num_levels=self.num_levels, seed=seed)

    def indices(self, X, Y, names, bounds, output_names, seed: int) -> pd.DataFrame:
        """:func:`morris_indices`."""
        return morris_indices(X, Y, names, bounds, output_names=output_names, num_levels=self.num_levels, seed=seed)


__all__ = [
    "MORRIS_LEVELS",
    "MORRIS_TRAJECTORIES",
    "Morris",
    "importance_ranking",
    "morris_design",
    "morris_indices",
    "paper_importance",
]
