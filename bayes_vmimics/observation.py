"""Observation operator: model layers → observed depth intervals and units (P Eqs 15–16; spec Sect. 10).

An observed interval [top, bottom] overlaps model layers in arbitrary, possibly partial ways. The operator
is a weight matrix built once,

    W[i, j] = overlap(interval i, layer j) / (bottom_i − top_i)          (cm / cm),

so each row sums to 1 and every prediction is a cheap matrix–vector product (the likelihood calls it
10⁴–10⁵ times):

- SOC density (mg C cm⁻³): ``W @ Σ_{r,k,p,c,a} C`` — the thickness-weighted mean of total SOC (microbes +
  SOM, litter excluded; P Eq 15, spec Sect. 10, constants ``SOC_POOLS``).
- SOC concentration (g C kg⁻¹ soil): the density divided by the interval's bulk density (g cm⁻³), since
  1 mg cm⁻³ / 1 g cm⁻³ = 1 g kg⁻¹ (spec Sect. 10; PROVENANCE "Conversions").
- F14C: ``(W @ Σ_{p,c,a} ¹⁴C) / (W @ Σ_{p,c,a} C)`` — the ¹⁴C-weighted ("pool-size weighted") ratio over the
  interval and the pools a + p + c only, microbes excluded (P §2.2 and Eq 16 text, spec A13, constants
  ``C14_POOLS``). ¹⁴C pools are in C × F14C units (mg C cm⁻³).

Gradients (for adjoint methods): with ``S = Σ_{SOC pools} C`` (n_layers,), ``d soc_mg_cm3 / d C[q, :] = W``
for every SOC pool q (0 for litter pools); ``soc_g_kg`` adds a row scaling by 1/BD. For F14C with
``N = W @ Σ_{p,c,a} ¹⁴C`` and ``D = W @ Σ_{p,c,a} C``: ``dF_i/d¹⁴C[q, j] = W[i, j] / D_i`` and
``dF_i/dC[q, j] = −W[i, j] N_i / D_i²`` for q in p, c, a. ``weights`` exposes W (read-only).

Depths are cm below the mineral-soil surface, as in :class:`~bayes_vmimics.grid.DepthGrid`; organic
horizons (negative depths in the data) are outside the model and must be handled by the caller.
"""

from __future__ import annotations

import numpy as np

from .constants import C14_POOLS, N_POOLS, SOC_POOLS
from .grid import DepthGrid

_SOC = slice(min(SOC_POOLS), max(SOC_POOLS) + 1)
_C14 = slice(min(C14_POOLS), max(C14_POOLS) + 1)
if tuple(range(N_POOLS))[_SOC] != SOC_POOLS or tuple(range(N_POOLS))[_C14] != C14_POOLS:  # pragma: no cover
    raise ImportError("observation.py assumes SOC_POOLS and C14_POOLS are contiguous pool ranges")


def _intervals(top_cm, bottom_cm) -> tuple[np.ndarray, np.ndarray]:
    top = np.atleast_1d(np.asarray(top_cm, dtype=float))
    bot = np.atleast_1d(np.asarray(bottom_cm, dtype=float))
    if top.ndim != 1 or top.shape != bot.shape or top.size == 0:
        raise ValueError(
            f"top_cm and bottom_cm must be non-empty 1-D arrays of equal length, got shapes {top.shape}, {bot.shape}"
        )
    for name, a in (("top_cm", top), ("bottom_cm", bot)):
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise ValueError(f"{name} must be finite; interval {bad[0]} has {float(a[bad[0]])!r}")
    bad = np.flatnonzero(top < 0.0)
    if bad.size:
        i = bad[0]
        raise ValueError(
            f"negative depth: interval {i} has top_cm = {float(top[i])!r}; "
            "depths are cm below the mineral-soil surface "
            "(organic horizons above it are not part of the model grid)"
        )
    bad = np.flatnonzero(top >= bot)
    if bad.size:
        i = bad[0]
        raise ValueError(
            f"interval {i} has top_cm = {float(top[i])!r} >= bottom_cm = {float(bot[i])!r}; top must be above bottom"
        )
    return top, bot


def required_grid(grid: DepthGrid, bottoms_cm, extend: bool = True) -> DepthGrid:
    """A grid deep enough for observations reaching down to ``max(bottoms_cm)``.

    Args:
        grid: the model grid (–).
        bottoms_cm: bottom depths of the observed intervals (cm).
        extend: if True, add layers as thick as the deepest one (``DepthGrid.extended_to``); if False,
            raise when an observation lies below the grid (–).

    Returns:
        ``grid`` itself when it is deep enough, else the extended grid.

    Raises:
        ValueError: bottoms not finite or empty; an observation below the grid and ``extend`` is False.
    """
    b = np.atleast_1d(np.asarray(bottoms_cm, dtype=float))
    if b.size == 0 or not np.all(np.isfinite(b)):
        raise ValueError(f"bottoms_cm must be a non-empty array of finite depths, got {b.tolist()}")
    deepest = float(b.max())
    if deepest <= grid.depth_cm:
        return grid
    if not extend:
        raise ValueError(
            f"observation reaches {deepest!r} cm, below the model grid ({grid.depth_cm!r} cm); "
            "deepen the grid or pass extend=True"
        )
    return grid.extended_to(deepest)


class ObservationOperator:
    """Maps model pools on a depth grid onto observed depth intervals (P Eqs 15–16; spec Sect. 10).

    Args:
        grid: the model grid; it must reach the deepest ``bottom_cm`` (see :func:`required_grid`) (–).
        top_cm: top of each observed interval, ≥ 0, shape (n_obs,) (cm).
        bottom_cm: bottom of each observed interval, > top, shape (n_obs,) (cm).
        bulk_density_g_cm3: bulk density of each interval, shape (n_obs,), or None; needed only by
            :meth:`soc_g_kg`, where missing (NaN) or non-positive values raise (g cm⁻³).

    Raises:
        ValueError: top ≥ bottom, negative or non-finite depths, an interval below the grid (never
            extrapolated), bulk density of the wrong length.
    """

    def __init__(self, grid: DepthGrid, top_cm, bottom_cm, bulk_density_g_cm3=None) -> None:
        top, bot = _intervals(top_cm, bottom_cm)
        below = np.flatnonzero(bot > grid.depth_cm)
        if below.size:
            i = below[0]
            raise ValueError(
                f"interval {i} ({float(top[i])!r}–{float(bot[i])!r} cm) reaches below the model grid "
                f"({grid.depth_cm!r} cm); "
                "build the grid with required_grid(grid, bottom_cm) — values are never extrapolated"
            )
        e = grid.edges_cm
        overlap = np.minimum(bot[:, None], e[None, 1:]) - np.maximum(top[:, None], e[None, :-1])
        w = np.clip(overlap, 0.0, None) / (bot - top)[:, None]
        w.flags.writeable = False
        self.grid = grid
        self.top_cm = top
        self.bottom_cm = bot
        self._w = w
        self._wt = np.ascontiguousarray(w.T)
        self._inv_bd = None
        self._bd_error = "bulk_density_g_cm3 was not given to the ObservationOperator; g C kg⁻¹ needs it"
        self.bulk_density_g_cm3 = None
        if bulk_density_g_cm3 is not None:
            bd = np.atleast_1d(np.asarray(bulk_density_g_cm3, dtype=float))
            if bd.shape != top.shape:
                raise ValueError(f"bulk_density_g_cm3 must have shape {top.shape} (one per interval), got {bd.shape}")
            self.bulk_density_g_cm3 = bd
            bad = np.flatnonzero(~np.isfinite(bd) | (bd <= 0.0))
            if bad.size:
                i = bad[0]
                self._bd_error = (
                    f"bulk density of interval {i} ({float(top[i])!r}–{float(bot[i])!r} cm) "
                    f"is {float(bd[i])!r}; g C kg⁻¹ needs a finite positive value for every interval "
                    f"(bad intervals: {bad.tolist()})"
                )
            else:
                self._bd_error = None
                self._inv_bd = 1.0 / bd

    @property
    def n_obs(self) -> int:
        """Number of observed intervals."""
        return self._w.shape[0]

    @property
    def weights(self) -> np.ndarray:
        """W, shape (n_obs, n_layers): overlap thickness / interval thickness (cm cm⁻¹); rows sum to 1.

        Read-only. ``soc_mg_cm3(pools) == W @ pools[SOC_POOLS].sum(0)``, so W is also the Jacobian of the
        SOC density with respect to each SOC pool's layer values (module docstring).
        """
        return self._w

    def _check(self, pools, name: str) -> np.ndarray:
        x = np.asarray(pools, dtype=float)
        if x.ndim < 2 or x.shape[-2:] != (N_POOLS, self._w.shape[1]):
            raise ValueError(
                f"{name} must have shape (..., {N_POOLS}, n_layers={self._w.shape[1]}) "
                f"(pools m, s, r, k, p, c, a), "
                f"got {x.shape}"
            )
        return x

    def soc_mg_cm3(self, pools) -> np.ndarray:
        """Total SOC density per interval: thickness-weighted mean of r + k + p + c + a (P Eq 15).

        Args:
            pools: carbon pools, shape (7, n_layers) or (..., 7, n_layers) (mg C cm⁻³).

        Returns:
            Shape (n_obs,) or (..., n_obs) (mg C cm⁻³).
        """
        x = self._check(pools, "pools")
        return x[..., _SOC, :].sum(axis=-2) @ self._wt

    def soc_g_kg(self, pools) -> np.ndarray:
        """Total SOC concentration per interval: SOC density / bulk density (spec Sect. 10).

        Args:
            pools: carbon pools, shape (7, n_layers) or (..., 7, n_layers) (mg C cm⁻³).

        Returns:
            Shape (n_obs,) or (..., n_obs) (g C kg⁻¹ soil).

        Raises:
            ValueError: no bulk density given, or one is missing (NaN) or non-positive.
        """
        if self._bd_error is not None:
            raise ValueError(self._bd_error)
        return self.soc_mg_cm3(pools) * self._inv_bd

    def f14c(self, pools, c14_pools) -> np.ndarray:
        """Modelled F14C per interval: Σ ¹⁴C / Σ C over the interval and pools p, c, a (P Eq 16; spec A13).

        Args:
            pools: carbon pools, shape (7, n_layers) or (..., 7, n_layers) (mg C cm⁻³).
            c14_pools: ¹⁴C pools of the same shape, in C × F14C units (mg C cm⁻³).

        Returns:
            Shape (n_obs,) or (..., n_obs) (–); NaN where the interval holds no p + c + a carbon.
        """
        c = self._check(pools, "pools")
        c14 = self._check(c14_pools, "c14_pools")
        num = c14[..., _C14, :].sum(axis=-2) @ self._wt
        den = c[..., _C14, :].sum(axis=-2) @ self._wt
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = num / den
        empty = ~(den > 0.0)
        if empty.any():
            ratio = np.where(empty, np.nan, ratio)
        return ratio

    def __repr__(self) -> str:
        return f"ObservationOperator(n_obs={self.n_obs}, grid={self.grid!r})"
