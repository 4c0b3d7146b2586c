"""Site forcing: temperature, clay, litter inputs and litter quality (spec Sect. 2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAYS_PER_YEAR = 365


def _positive_scalar(name: str, value, *, allow_zero: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0.0 or (v == 0.0 and not allow_zero):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'} and finite, got {value!r}")
    return v


@dataclass(frozen=True, eq=False)
class SiteForcing:
    """Everything a site contributes to the model besides its parameters.

    Args:
        temperature: soil temperature (°C), the same at all depths (spec A16): a scalar (constant
            forcing; the steady state is then a true fixed point) or 365 daily values (a climatology;
            the steady state is then the periodic annual cycle, P §2.2).
        clay: clay fraction (0–1, mass fraction): one value, or one per model layer (spec A17).
        litter_above: aboveground litter input I_A (g C m⁻² yr⁻¹); enters the top layer.
        litter_below: belowground (root) litter input I_B (g C m⁻² yr⁻¹); distributed by the root profile.
        lignin_n_above: lignin:N mass ratio of aboveground litter (g g⁻¹); must give f_met ≥ 0.
        lignin_n_below: lignin:N mass ratio of root litter (g g⁻¹); must give f_met ≥ 0.
        latitude: site latitude (decimal degrees north, −90–90), optional; used for the ¹⁴C zone.
        longitude: site longitude (decimal degrees east, −180–360), optional.

    Raises:
        ValueError: naming the argument and value, for non-finite or negative inputs, clay outside 0–1,
            lignin:N that gives a negative metabolic fraction (L:N > 0.85/0.013 ≈ 65.4), temperature
            arrays that are not 365 long, zero total litter input, or a latitude outside ±90.
    """

    temperature: float | np.ndarray = 10.0
    clay: float | np.ndarray = 0.2
    litter_above: float = 250.0
    litter_below: float = 250.0
    lignin_n_above: float = 15.0
    lignin_n_below: float = 15.0
    latitude: float | None = None
    longitude: float | None = None

    def __post_init__(self) -> None:
        try:
            t = np.asarray(self.temperature, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"temperature must be a number in °C or {DAYS_PER_YEAR} daily values, got {self.temperature!r:.80}"
            ) from exc
        if t.ndim == 0:
            if not np.isfinite(t):
                raise ValueError(f"temperature must be finite, got {self.temperature!r}")
            if not (-60.0 <= float(t) <= 60.0):
                raise ValueError(f"temperature must be a soil temperature in °C within -60..60, got {float(t)!r}")
            object.__setattr__(self, "temperature", float(t))
        else:
            if t.shape != (DAYS_PER_YEAR,):
                raise ValueError(f"temperature climatology must have {DAYS_PER_YEAR} daily values, got shape {t.shape}")
            if not np.all(np.isfinite(t)):
                raise ValueError("temperature climatology contains non-finite values")
            if t.min() < -60.0 or t.max() > 60.0:
                raise ValueError(f"temperature climatology outside -60..60 °C (min {t.min()!r}, max {t.max()!r})")
            t = t.copy()
            t.flags.writeable = False
            object.__setattr__(self, "temperature", t)

        c = np.asarray(self.clay, dtype=float)
        if c.ndim > 1 or c.size == 0:
            raise ValueError(f"clay must be a scalar or a 1-D per-layer array, got shape {c.shape}")
        if not np.all(np.isfinite(c)) or np.any(c < 0.0) or np.any(c > 1.0):
            raise ValueError(f"clay must be a fraction in 0–1, got {self.clay!r}")
        if c.ndim == 0:
            object.__setattr__(self, "clay", float(c))
        else:
            c = c.copy()
            c.flags.writeable = False
            object.__setattr__(self, "clay", c)

        for name in ("litter_above", "litter_below"):
            object.__setattr__(self, name, _positive_scalar(name, getattr(self, name)))
        if self.litter_above + self.litter_below <= 0.0:
            raise ValueError("litter_above + litter_below must be positive (no carbon enters the soil)")
        for name in ("lignin_n_above", "lignin_n_below"):
            v = _positive_scalar(name, getattr(self, name))
            if v <= 0.0:
                raise ValueError(f"{name} must be > 0 (litter always holds lignin and nitrogen), got {v!r}")
            if 0.85 - 0.013 * v < 0.0:
                raise ValueError(
                    f"{name}={v!r} gives a negative metabolic fraction f_met = 0.85 - 0.013*L:N "
                    f"= {0.85 - 0.013 * v:.3f}; L:N must be ≤ {0.85 / 0.013:.2f}"
                )
            object.__setattr__(self, name, v)
        if self.latitude is not None:
            lat = float(self.latitude)
            if not np.isfinite(lat) or abs(lat) > 90.0:
                raise ValueError(f"latitude must be within -90..90 degrees, got {self.latitude!r}")
            object.__setattr__(self, "latitude", lat)
        if self.longitude is not None:
            lon = float(self.longitude)
            if not np.isfinite(lon) or lon < -180.0 or lon > 360.0:
                raise ValueError(f"longitude must be within -180..360 degrees, got {self.longitude!r}")
            object.__setattr__(self, "longitude", lon)

    @property
    def is_climatology(self) -> bool:
        """True when ``temperature`` holds 365 daily values."""
        return np.ndim(self.temperature) == 1

    @property
    def mean_temperature(self) -> float:
        """Annual-mean temperature (°C)."""
        return float(np.mean(self.temperature))

    @property
    def f_met_above(self) -> float:
        """Metabolic fraction of aboveground litter, max(0, 0.85 − 0.013·L:N) (dimensionless; spec 4.6)."""
        return max(0.0, 0.85 - 0.013 * self.lignin_n_above)

    @property
    def f_met_below(self) -> float:
        """Metabolic fraction of root litter (dimensionless; spec 4.6)."""
        return max(0.0, 0.85 - 0.013 * self.lignin_n_below)

    def clay_profile(self, n_layers: int) -> np.ndarray:
        """Clay fraction per layer (0–1), shape (n_layers,).

        Raises:
            ValueError: a per-layer clay array whose length differs from ``n_layers``.
        """
        c = np.asarray(self.clay, dtype=float)
        if c.ndim == 0:
            return np.full(n_layers, float(c))
        if c.size != n_layers:
            raise ValueError(f"clay has {c.size} per-layer values but the grid has {n_layers} layers")
        return c.copy()

    def replace(self, **changes) -> SiteForcing:
        """A copy with some fields changed (validated again)."""
        kw = {k: getattr(self, k) for k in self.__dataclass_fields__}
        kw.update(changes)
        return SiteForcing(**kw)

    def __repr__(self) -> str:
        t = f"{self.temperature:g}" if not self.is_climatology else f"<365 daily, mean {self.mean_temperature:.2f}>"
        c = f"{self.clay:g}" if np.ndim(self.clay) == 0 else f"<{np.size(self.clay)} layers>"
        return (
            f"SiteForcing(temperature={t}, clay={c}, litter_above={self.litter_above:g}, "
            f"litter_below={self.litter_below:g}, lignin_n_above={self.lignin_n_above:g}, "
            f"lignin_n_below={self.lignin_n_below:g}, latitude={self.latitude}, longitude={self.longitude})"
        )
