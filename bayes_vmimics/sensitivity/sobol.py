"""Sobol' indices on a box (beyond the paper): first and total order with bootstrap confidence intervals
(SALib's Saltelli/Sobol'-sequence design and ``sobol`` analysis) of J₁, J₂ and of the modelled SOC and F14C in
the layers holding chosen depths.

A base sample holding a failed run (NaN output) is dropped whole, its n + 2 rows (``n_dropped``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from ..parameters import PARAMETER_NAMES
from .inputs import check_names, default_bounds, salib_problem


def sobol_design(
    names: Sequence[str] = PARAMETER_NAMES, bounds=None, *, n_base: int = 1024, seed: int = 0
) -> np.ndarray:
    """SALib's Sobol'-sequence (Saltelli) design for first and total indices: n_base·(n + 2) rows.

    Args:
        names: the parameters (–).
        bounds: (n, 2) ranges (parameter units); default Table 1.
        n_base: base samples N, a power of 2 for the Sobol' sequence's balance (count).
        seed: seed of the scrambling (–).

    Returns:
        X, shape (n_base · (n + 2), n) (parameter units).
    """
    from SALib.sample import sobol as sobol_sample

    names = check_names(names)
    if n_base < 2 or n_base & (n_base - 1):
        raise ValueError(f"n_base must be a power of 2 (≥ 2) for the Sobol' sequence, got {n_base}")
    bounds = default_bounds(names) if bounds is None else np.asarray(bounds, float)
    return sobol_sample.sample(salib_problem(names, bounds), int(n_base), calc_second_order=False, seed=int(seed))


def sobol_indices(
    Y,
    names: Sequence[str] = PARAMETER_NAMES,
    bounds=None,
    *,
    output_names: Sequence[str] | None = None,
    seed: int = 0,
    num_resamples: int = 200,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """SALib's Sobol' analysis (first and total order, bootstrap intervals) of each output of a
    :func:`sobol_design`. Base samples holding a NaN output are dropped (their n + 2 rows; ``n_dropped``).

    Args:
        Y: outputs, shape (n_rows,) or (n_rows, n_outputs) (output units).
        names: the design's parameters (–).
        bounds: the design's ranges (parameter units); default Table 1.
        output_names: name of each output (–).
        seed: seed of the bootstrap (–).
        num_resamples: bootstrap resamples (count).
        conf_level: level of the intervals (–).

    Returns:
        Long table: output, parameter, S1, S1_conf, ST, ST_conf (half-widths), n_base (used), n_dropped.
    """
    from SALib.analyze import sobol as sobol_analyze

    names = check_names(names)
    bounds = default_bounds(names) if bounds is None else np.asarray(bounds, float)
    d = len(names)
    Y = np.asarray(Y, float)
    Y = Y.reshape(len(Y), -1)
    if len(Y) % (d + 2):
        raise ValueError(f"a Sobol' design without second order has a multiple of n + 2 = {d + 2} rows, got {len(Y)}")
    n_base = len(Y) // (d + 2)
    output_names = list(output_names) if output_names is not None else [f"y{k}" for k in range(Y.shape[1])]
    rows = []
    for k, name in enumerate(output_names):
        y = Y[:, k].reshape(n_base, d + 2)
        good = np.all(np.isfinite(y), axis=1)
        if good.sum() < 2 or np.ptp(y[good]) == 0:
            continue
        res = sobol_analyze.analyze(
            salib_problem(names, bounds),
            y[good].ravel(),
            calc_second_order=False,
            num_resamples=int(num_resamples),
            conf_level=conf_level,
            seed=int(seed),
        )
        for j, p in enumerate(names):
            rows.append(
                dict(
                    output=name,
                    parameter=p,
                    S1=res["S1"][j],
                    S1_conf=res["S1_conf"][j],
                    ST=res["ST"][j],
                    ST_conf=res["ST_conf"][j],
                    n_base=int(good.sum()),
                    n_dropped=int((~good).sum()),
                )
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Sobol:
    """The Sobol' method of :func:`~bayes_vmimics.sensitivity.sites.analyse_site` on a box.

    Attributes:
        n_base: base samples N, a power of 2 (count).
    """

    name: ClassVar[str] = "sobol"
    uses_bounds: ClassVar[bool] = True
    n_base: int = 1024

    def settings(self, names) -> dict:
        """What must match for a finished file to be reused (besides names, seed, bounds)."""
        return dict(n_base=int(self.n_base))

    def design(self, names, bounds, seed: int) -> np.ndarray:
        """:func:`sobol_design` (parameter units)."""
        return sobol_design(names, bounds, n_base=self.n_base, seed=seed)

    def indices(self, X, Y, names, bounds, output_names, seed: int) -> pd.DataFrame:
        """:func:`sobol_indices`."""
        return sobol_indices(Y, names, bounds, output_names=output_names, seed=seed)


__all__ = ["Sobol", "sobol_design", "sobol_indices"]
