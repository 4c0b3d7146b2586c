"""The seven calibrated parameters of Wang et al. (2021), Table 1 (spec Sect. 3)."""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

import numpy as np

#: Parameter names in the package's canonical order (also the order of gradient vectors).
PARAMETER_NAMES: tuple[str, ...] = ("x_v", "x_K", "x_d", "x_D", "alpha_r", "alpha_v", "beta")

#: Table 1 of Wang et al. (2021): (minimum, maximum, default) per parameter. alpha in m^-1 (spec A1).
TABLE1: dict[str, tuple[float, float, float]] = {
    "x_v": (2.0, 30.0, 4.0),
    "x_K": (2.0, 30.0, 8.0),
    "x_d": (0.1, 15.0, 2.0),
    "x_D": (0.01, 25.0, 0.75),
    "alpha_r": (1.0, 30.0, 10.0),
    "alpha_v": (1.0, 30.0, 1.0),
    "beta": (1.0, 2.0, 1.2),
}

#: Units of each parameter, for docs and output attributes.
PARAMETER_UNITS: dict[str, str] = {
    "x_v": "1",
    "x_K": "1",
    "x_d": "1",
    "x_D": "1",
    "alpha_r": "m-1",
    "alpha_v": "m-1",
    "beta": "1",
}

LOWER = np.array([TABLE1[n][0] for n in PARAMETER_NAMES])
UPPER = np.array([TABLE1[n][1] for n in PARAMETER_NAMES])
DEFAULTS = np.array([TABLE1[n][2] for n in PARAMETER_NAMES])


@dataclass(frozen=True)
class Parameters:
    """Calibrated scalers of vertically resolved MIMICS (P Table 1).

    Values outside the Table 1 box are allowed (for sensitivity studies); ``check_bounds`` reports them.

    Args:
        x_v: scaler of the maximum uptake rates V (dimensionless; Table 1 range 2–30, default 4).
        x_K: scaler of all half-saturation constants K (dimensionless; 2–30, default 8).
        x_d: scaler of the desorption rate of physically protected SOC (dimensionless; 0.1–15, default 2).
        x_D: scaler of the diffusivity D = x_D·D0 (dimensionless; 0.01–25, default 0.75).
        alpha_r: e-folding rate of root litter input with depth (m⁻¹; 1–30, default 10).
        alpha_v: e-folding rate of V with depth (m⁻¹; 1–30, default 1).
        beta: exponent of density-dependent microbial turnover (dimensionless; 1–2, default 1.2).

    Raises:
        ValueError: a value is not finite, or is not positive (all seven must be > 0; beta ≥ 1 is not
            enforced here, see ``check_bounds``).
    """

    x_v: float = 4.0
    x_K: float = 8.0
    x_d: float = 2.0
    x_D: float = 0.75
    alpha_r: float = 10.0
    alpha_v: float = 1.0
    beta: float = 1.2

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"parameter {f.name} must be a number, got {v!r}") from None
            if not np.isfinite(v) or v <= 0.0:
                raise ValueError(f"parameter {f.name} must be positive and finite, got {v!r}")
            object.__setattr__(self, f.name, v)

    @classmethod
    def from_array(cls, values) -> Parameters:
        """Build from a length-7 vector in ``PARAMETER_NAMES`` order (units as in the class docstring)."""
        v = np.asarray(values, dtype=float).ravel()
        if v.size != len(PARAMETER_NAMES):
            raise ValueError(f"expected {len(PARAMETER_NAMES)} parameter values {PARAMETER_NAMES}, got {v.size}")
        return cls(*v.tolist())

    @classmethod
    def from_dict(cls, values: dict) -> Parameters:
        """Build from a mapping name → value; missing names take Table 1 defaults, unknown names are errors."""
        unknown = set(values) - set(PARAMETER_NAMES)
        if unknown:
            raise ValueError(f"unknown parameter name(s) {sorted(unknown)}; known: {list(PARAMETER_NAMES)}")
        return cls(**{k: float(v) for k, v in values.items()})

    def to_array(self) -> np.ndarray:
        """The values as a float vector in ``PARAMETER_NAMES`` order."""
        return np.array(astuple(self), dtype=float)

    def to_dict(self) -> dict[str, float]:
        """The values as a dict name → value."""
        return dict(zip(PARAMETER_NAMES, astuple(self), strict=True))

    def out_of_bounds(self) -> dict[str, tuple[float, float, float]]:
        """Parameters outside the Table 1 box, as name → (value, min, max); empty if all inside."""
        return {
            n: (v, TABLE1[n][0], TABLE1[n][1])
            for n, v in self.to_dict().items()
            if not (TABLE1[n][0] <= v <= TABLE1[n][1])
        }

    def check_bounds(self, *, raise_error: bool = False) -> bool:
        """Whether all parameters lie inside the Table 1 box (inclusive).

        Args:
            raise_error: if True, raise ``ValueError`` naming every parameter outside its range.
        """
        bad = self.out_of_bounds()
        if bad and raise_error:
            msg = ", ".join(f"{n}={v:g} outside [{lo:g}, {hi:g}]" for n, (v, lo, hi) in bad.items())
            raise ValueError(f"parameter(s) outside the Table 1 prior range: {msg}")
        return not bad
