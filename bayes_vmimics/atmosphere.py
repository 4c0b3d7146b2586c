"""Atmospheric radiocarbon: zonal F14C records, the litter 14C signal and Δ14C ↔ F14C (spec Sect. 11).

Pure: nothing here reads files (the loaders are in ``bayes_vmimics.io.atmosphere``).

Records
    An :class:`AtmosphericRecord` holds calendar-year mean F14C for the five zones of Hua et al. (2013):
    NH1, NH2, NH3, SH12 (SH zones 1–2) and SH3. Values are a step function of the calendar year; before
    the first year of the record the first value is held and after the last year the last value (P §2.5.3:
    "same as in 1950 before 1950, and remained at 2010 level after 2010"). ``strict=True`` turns any year
    outside the record into an error instead.

Litter
    Litter carbon formed in year Y carries the atmosphere of year Y − 1 (P §2.2 and §2.5.3; spec Sect. 11).

Zones (spec A19, low confidence)
    :func:`hua2013_zone` approximates the zone map of Hua et al. (2013, Fig. 1; zones of Hua & Barbetti
    2004): NH zone 1 north of ~40°N, NH zone 2 from ~40°N to the Tropic of Cancer, NH zone 3 from the
    Tropic of Cancer to the mean position of the (austral-)summer ITCZ, i.e. the southernmost reach of
    northern-hemisphere air; SH zone 3 from that ITCZ to about the Tropic of Capricorn; SH zones 1–2
    south of it. The ITCZ line is replaced by this rule (latitude φ in °N, longitude λ in °E, wrapped to
    [−180, 180)):

    ======================================  =======
    condition                               zone
    ======================================  =======
    φ ≥ 40                                  NH1
    23.44 ≤ φ < 40                          NH2
    0 ≤ φ < 23.44                           NH3 (everywhere)
    −10 < φ < 0 and 10 ≤ λ ≤ 150            NH3 (Africa–Indian Ocean–Maritime Continent monsoon sector)
    −23.44 < φ < 0 otherwise                SH3
    φ ≤ −23.44                              SH12
    ======================================  =======

    Why the monsoon sector: in austral summer the ITCZ swings south of the equator over Africa, the
    Indian Ocean, Indonesia and northern Australia, and air north of it is northern-hemisphere air. Hua
    et al. (2012, GRL 39, L19806) show that teak at Muna, Sulawesi (4.9°S, 122.5°E) records NH air brought
    by the Asian winter monsoon. Over the eastern Pacific and the Atlantic the ITCZ stays north of the
    equator all year, so the southern tropics there are SH3. South America is left SH3 although the South
    American summer monsoon brings some NH air (Marsh et al. 2018, Radiocarbon 60, 925–940): mixed air
    there is closer to SH3 than to NH3. Consequences for the study sites: Harvard Forest, Bartlett,
    MI-coarse and Howland (42–46°N) → NH1; Ozark (38.7°N) → NH2; Kissoko (Congo, ≈4.8°S 11.9°E) → NH3
    (the spec's proposal was SH3, PROVENANCE notes NH3 as possible; this rule picks NH3); Misiones
    (≈27°S) → SH12. Check any site within a few degrees of a boundary against Hua et al. (2013) Fig. 1.

Δ14C and F14C (Stuiver & Polach 1977; Reimer et al. 2004; data/PROVENANCE "Conversions")
    F14C = (Δ14C/1000 + 1) · exp(λ_c (y − 1950)) with λ_c = 1/8267 yr⁻¹ and y the sampling year.
    λ_c belongs to the reporting convention only; the model decays 14C with ln 2 / 5730 yr⁻¹ (P §2.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The five zones of Hua et al. (2013), in array order. "SH12" stands for SH zones 1–2.
ZONES: tuple[str, ...] = ("NH1", "NH2", "NH3", "SH12", "SH3")
#: Accepted spellings of zone names besides those in ``ZONES`` (exact match, no case folding).
ZONE_ALIASES: dict[str, str] = {"SH1-2": "SH12", "SH1_2": "SH12"}

#: Years past the end of an atmospheric record for which a sampling year is accepted in a calibration: the record
#: is held at its last value there (P §2.5.3: "remained at 2010 level after 2010"; two EBF sites were sampled in
#: 2011). A later sampling year is an error, not an extrapolation (year).
ATMOSPHERE_HOLD_YEARS = 5


class AtmosphereHeldWarning(UserWarning):
    """A site is sampled after the end of the atmospheric record, within :data:`ATMOSPHERE_HOLD_YEARS`: its
    atmospheric F14C is held at the record's last value for the years past the end."""


#: λ_c = 1/8267 yr⁻¹: the decay constant of the Δ14C reporting convention (Stuiver & Polach 1977).
LAMBDA_C_PER_YEAR = 1.0 / 8267.0

#: Latitude boundaries of the zone rule (°N): ~40°N (Hua 2013), Tropic of Cancer / Capricorn (23.44°).
NH1_SOUTH_EDGE_DEG = 40.0
TROPIC_DEG = 23.44
#: Southern reach (°N) of NH3 in the austral-summer monsoon sector, and the sector's longitudes (°E).
MONSOON_NH3_SOUTH_EDGE_DEG = -10.0
MONSOON_LON_DEG: tuple[float, float] = (10.0, 150.0)


def canonical_zone(zone: str) -> str:
    """Return the name in ``ZONES`` for ``zone`` ("SH1-2" → "SH12").

    Args:
        zone: zone name, one of ``ZONES`` or ``ZONE_ALIASES`` (–).

    Raises:
        ValueError: unknown zone name (the message lists the valid ones).
    """
    if isinstance(zone, str):
        if zone in ZONES:
            return zone
        if zone in ZONE_ALIASES:
            return ZONE_ALIASES[zone]
    raise ValueError(f"unknown atmospheric 14C zone {zone!r}; valid zones are {list(ZONES)} (or 'SH1-2')")


def hua2013_zone(lat: float, lon: float) -> str:
    """Hua et al. (2013) atmospheric 14C zone of a site (rule and caveats in the module docstring; spec A19).

    Args:
        lat: latitude, −90 to 90 (°N).
        lon: longitude, any finite value, wrapped to [−180, 180) (°E; west negative).

    Returns:
        One of ``ZONES``.

    Raises:
        ValueError: latitude outside [−90, 90] or not finite; longitude not finite.
    """
    try:
        phi = float(lat)
        lam = float(lon)
    except (TypeError, ValueError):
        raise ValueError(f"lat and lon must be numbers, got lat={lat!r}, lon={lon!r}") from None
    if not np.isfinite(phi) or not -90.0 <= phi <= 90.0:
        raise ValueError(f"latitude must be within [-90, 90] degrees north, got {phi!r}")
    if not np.isfinite(lam):
        raise ValueError(f"longitude must be finite (degrees east), got {lam!r}")
    lam = (lam + 180.0) % 360.0 - 180.0
    if phi >= NH1_SOUTH_EDGE_DEG:
        return "NH1"
    if phi >= TROPIC_DEG:
        return "NH2"
    if phi >= 0.0:
        return "NH3"
    # Southern hemisphere: north of the austral-summer ITCZ is NH air (module docstring).
    lo, hi = MONSOON_LON_DEG
    if phi > MONSOON_NH3_SOUTH_EDGE_DEG and lo <= lam <= hi:
        return "NH3"
    if phi > -TROPIC_DEG:
        return "SH3"
    return "SH12"


def _check_years(year, what: str) -> np.ndarray:
    y = np.asarray(year, dtype=float)
    if not np.all(np.isfinite(y)):
        bad = y[~np.isfinite(y)] if y.ndim else y
        raise ValueError(f"{what} must be finite, got {np.atleast_1d(bad).tolist()}")
    return y


def d14c_to_f14c(d14c_permil, year):
    """Convert Δ14C to F14C (fraction modern) for a sampling year (Reimer et al. 2004; PROVENANCE).

    F14C = (Δ14C/1000 + 1) · exp(λ_c (year − 1950)), λ_c = 1/8267 yr⁻¹.

    Args:
        d14c_permil: Δ14C, scalar or array (‰).
        year: sampling (or measurement) year as the source defines it, broadcast with ``d14c_permil``
            (decimal year AD).

    Returns:
        F14C with the broadcast shape (–); a float for scalar inputs.

    Raises:
        ValueError: a year is not finite.
    """
    y = _check_years(year, "year")
    f = (np.asarray(d14c_permil, dtype=float) / 1000.0 + 1.0) * np.exp(LAMBDA_C_PER_YEAR * (y - 1950.0))
    return f[()] if f.ndim == 0 else f


def f14c_to_d14c(f14c, year):
    """Convert F14C (fraction modern) to Δ14C for a sampling year (inverse of :func:`d14c_to_f14c`).

    Δ14C = 1000 · (F14C · exp(λ_c (1950 − year)) − 1), λ_c = 1/8267 yr⁻¹.

    Args:
        f14c: fraction modern, scalar or array (–).
        year: sampling (or measurement) year, broadcast with ``f14c`` (decimal year AD).

    Returns:
        Δ14C with the broadcast shape (‰); a float for scalar inputs.

    Raises:
        ValueError: a year is not finite.
    """
    y = _check_years(year, "year")
    d = 1000.0 * (np.asarray(f14c, dtype=float) * np.exp(LAMBDA_C_PER_YEAR * (1950.0 - y)) - 1.0)
    return d[()] if d.ndim == 0 else d


@dataclass(frozen=True, eq=False)
class AtmosphericRecord:
    """Calendar-year mean atmospheric F14C per Hua et al. (2013) zone (spec Sect. 11).

    Args:
        name: short name of the record, e.g. ``"hua2013"`` (–).
        years: consecutive calendar years, strictly increasing by 1 (year AD, int).
        values: F14C per zone and year, shape ``(len(zones), len(years))``, all finite and positive, or a
            dict zone → 1-D array of ``len(years)`` (–). (Named ``values`` because ``f14c`` is the look-up
            method.)
        zones: zone names, the rows of ``values``; defaults to ``ZONES`` (–).
        notes: provenance and gap-filling choices, free text (–).

    Raises:
        ValueError: years not consecutive integers, shape mismatch, non-finite or non-positive F14C,
            unknown or repeated zone names.
    """

    name: str
    years: np.ndarray
    values: np.ndarray
    zones: tuple[str, ...] = ZONES
    notes: str = ""
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        zones = tuple(canonical_zone(z) for z in self.zones)
        if isinstance(self.values, dict):
            given = {canonical_zone(z): v for z, v in self.values.items()}
            if len(given) != len(self.values):
                raise ValueError(f"values dict has repeated zones: {list(self.values)}")
            if self.zones == ZONES and set(given) != set(ZONES):
                zones = tuple(z for z in ZONES if z in given)
            missing = [z for z in zones if z not in given]
            if missing or set(given) - set(zones):
                raise ValueError(f"values dict zones {list(given)} do not match zones {list(zones)}")
            f = np.array([np.asarray(given[z], dtype=float) for z in zones])
        else:
            f = np.array(self.values, dtype=float)
        if len(set(zones)) != len(zones):
            raise ValueError(f"zones must be distinct, got {list(self.zones)}")
        y_raw = np.asarray(self.years)
        if y_raw.ndim != 1 or y_raw.size == 0:
            raise ValueError(f"years must be a non-empty 1-D array, got shape {y_raw.shape}")
        y = y_raw.astype(np.int64)
        if not np.array_equal(y, y_raw) or np.any(np.diff(y) != 1):
            raise ValueError(
                f"years must be consecutive integer calendar years, got {y_raw[:3].tolist()}…{y_raw[-3:].tolist()}"
            )
        if f.shape != (len(zones), y.size):
            raise ValueError(f"values must have shape (n_zones, n_years) = {(len(zones), y.size)}, got {f.shape}")
        bad = ~np.isfinite(f) | (f <= 0.0)
        if np.any(bad):
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"{self.name}: F14C must be finite and positive; zone {zones[i]} year {y[j]} "
                f"has {float(f[i, j])!r} "
                "(fill gaps before building the record)"
            )
        y.flags.writeable = False
        f.flags.writeable = False
        object.__setattr__(self, "years", y)
        object.__setattr__(self, "values", f)
        object.__setattr__(self, "zones", zones)
        object.__setattr__(self, "_index", {z: i for i, z in enumerate(zones)})

    @property
    def first_year(self) -> int:
        """First calendar year of the record (year AD)."""
        return int(self.years[0])

    @property
    def last_year(self) -> int:
        """Last calendar year of the record (year AD)."""
        return int(self.years[-1])

    def _row(self, zone: str) -> np.ndarray:
        z = canonical_zone(zone)
        if z not in self._index:
            raise ValueError(f"zone {zone!r} is not in record {self.name!r} (zones {list(self.zones)})")
        return self.values[self._index[z]]

    def f14c(self, zone: str, year, *, strict: bool = False):
        """Atmospheric F14C of ``zone`` in calendar year(s) ``year``.

        A step function of the calendar year: decimal years are floored (1995.7 → 1995). Before the record
        the first year's value is held, after it the last year's (P §2.5.3: 1950 level before 1950, 2010
        level after 2010), unless ``strict``.

        Args:
            zone: zone name, one of ``ZONES`` or "SH1-2" (–).
            year: calendar year(s), scalar or array (year AD).
            strict: if True, raise for any year outside ``first_year``–``last_year`` (–).

        Returns:
            F14C, float for a scalar year or an array shaped like ``year`` (–).

        Raises:
            ValueError: unknown zone, non-finite year, or (``strict``) a year outside the record.
        """
        row = self._row(zone)
        y = _check_years(year, "year")
        yi = np.floor(y).astype(np.int64)
        if strict:
            outside = (yi < self.first_year) | (yi > self.last_year)
            if np.any(outside):
                raise ValueError(
                    f"year(s) {np.atleast_1d(y[outside] if y.ndim else y).tolist()} "
                    f"outside the {self.name} record "
                    f"{self.first_year}–{self.last_year}; with strict=False the value is held at "
                    f"{self.first_year} before and at {self.last_year} after the record (P §2.5.3)"
                )
        out = row[np.clip(yi - self.first_year, 0, self.years.size - 1)]
        return float(out) if out.ndim == 0 else out

    def litter_f14c(self, zone: str, years, *, strict: bool = False):
        """F14C of litter formed in calendar year(s) ``years``: the atmosphere of the year before.

        P §2.2 and §2.5.3: "14C in plant litter lagged behind the atmospheric 14C by 1 year"; spec Sect. 11.

        Args:
            zone: zone name, one of ``ZONES`` (–).
            years: calendar year(s) of litter input, scalar or array; decimals are floored (year AD).
            strict: if True, raise when ``years − 1`` lies outside the record instead of holding the end
                values (–).

        Returns:
            F14C, float or array shaped like ``years`` (–).
        """
        return self.f14c(zone, np.asarray(_check_years(years, "years")) - 1.0, strict=strict)

    def annual_series(self, zone: str, first_year: int, last_year: int, *, strict: bool = False):
        """Atmospheric F14C for every calendar year from ``first_year`` to ``last_year`` inclusive.

        Args:
            zone: zone name, one of ``ZONES`` (–).
            first_year: first calendar year (year AD).
            last_year: last calendar year, ≥ ``first_year`` (year AD).
            strict: if True, raise for years outside the record instead of holding the end values (–).

        Returns:
            ``(years, f14c)``: int array of the years (year AD) and their F14C (–).

        Raises:
            ValueError: ``last_year < first_year`` or non-integer years.
        """
        for v, n in ((first_year, "first_year"), (last_year, "last_year")):
            if not np.isfinite(float(v)) or int(v) != v:
                raise ValueError(f"{n} must be an integer calendar year, got {v}")
        if last_year < first_year:
            raise ValueError(f"last_year ({last_year}) is before first_year ({first_year})")
        years = np.arange(int(first_year), int(last_year) + 1, dtype=np.int64)
        return years, self.f14c(zone, years, strict=strict)

    def __repr__(self) -> str:
        return (
            f"AtmosphericRecord(name={self.name!r}, years={self.first_year}–{self.last_year}, zones={list(self.zones)})"
        )
