"""Fit metrics of Wang et al. (2021) §2.4: RMSE (Eq 17), BIC (Eq 18) and regression mod ~ obs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def rmse_eq17(observed: Sequence[np.ndarray], modelled: Sequence[np.ndarray]) -> float:
    """RMSE of P Eq 17: sqrt( (1/N) Σ_sites (1/M_s) Σ_layers (obs − mod)² ).

    Args:
        observed: per site, the observed values (M_s,) (any unit, the same as ``modelled``).
        modelled: per site, the modelled values (M_s,).

    Returns:
        The RMSE (unit of the inputs).
    """
    if len(observed) != len(modelled) or not observed:
        raise ValueError("observed and modelled must be non-empty lists of equal length (one array per site)")
    per_site = [float(np.mean((np.asarray(o) - np.asarray(m)) ** 2)) for o, m in zip(observed, modelled, strict=True)]
    return float(np.sqrt(np.mean(per_site)))


def bic_eq18(rmse: float, n_sites: int, n_params: int) -> float:
    """BIC of P Eq 18: 2 N log(RMSE) + 2 N_p (N sites, N_p calibrated parameters; natural log)."""
    return float(2.0 * n_sites * np.log(rmse) + 2.0 * n_params)


def regression(observed, modelled) -> tuple[float, float, float]:
    """Least-squares line modelled = a + b · observed over all layers, and r² (P §2.4).

    Returns:
        (a, b, r²): intercept (unit of the inputs), slope and squared correlation (–).
    """
    x = np.asarray(observed, dtype=float).ravel()
    y = np.asarray(modelled, dtype=float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan"), float("nan")
    b, a = np.polyfit(x, y, 1)
    r = np.corrcoef(x, y)[0, 1]
    return float(a), float(b), float(r * r)


@dataclass(frozen=True)
class FitMetrics:
    """Paper-style fit metrics (P Table 4).

    Attributes:
        rmse: Eq 17 (unit of the data).
        bic: Eq 18 (–).
        a: regression intercept (unit of the data).
        b: regression slope (–).
        r2: squared correlation (–).
        n_sites: sites (count).
        n_obs: layers (count).
    """

    rmse: float
    bic: float
    a: float
    b: float
    r2: float
    n_sites: int
    n_obs: int

    def to_dict(self) -> dict:
        """As a plain dict."""
        return asdict(self)


def fit_metrics(observed: Sequence[np.ndarray], modelled: Sequence[np.ndarray], n_params: int = 7) -> FitMetrics:
    """RMSE, BIC, a, b, r² of per-site observed and modelled arrays (P §2.4)."""
    observed = [np.asarray(o, dtype=float) for o in observed]
    modelled = [np.asarray(m, dtype=float) for m in modelled]
    rmse = rmse_eq17(observed, modelled)
    a, b, r2 = regression(np.concatenate(observed), np.concatenate(modelled))
    return FitMetrics(
        rmse,
        bic_eq18(rmse, len(observed), n_params),
        a,
        b,
        r2,
        len(observed),
        int(sum(o.size for o in observed)),
    )
