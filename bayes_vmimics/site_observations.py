"""One site's observations, the input of a calibration, and the checks they pass before entering the likelihood.

:class:`SiteObservations` checks its own values (finite, positive, non-overlapping intervals, each named);
:func:`_check_c14_inputs` checks that F14C observations can enter the ¹⁴C term (atmospheric record, zone,
sampling year). ¹⁴C uses ``bayes_vmimics.radiocarbon`` (imported lazily): :func:`radiocarbon_available` says
whether it can be imported.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .forcing import SiteForcing


def radiocarbon_available() -> bool:
    """Whether ``bayes_vmimics.radiocarbon`` can be imported."""
    return _simulate_radiocarbon() is not None


def _simulate_radiocarbon():
    try:
        from .radiocarbon import simulate_radiocarbon
    except ModuleNotFoundError as exc:
        if exc.name in ("bayes_vmimics.radiocarbon", __package__ + ".radiocarbon"):
            return None
        raise
    return simulate_radiocarbon


def _check_c14_inputs(sites: Sequence[SiteObservations], atmosphere) -> None:
    """F14C observations must be able to enter the ¹⁴C term (with ``use_c14``): an atmospheric record, a zone in
    it and a sampling year at most :data:`~bayes_vmimics.atmosphere.ATMOSPHERE_HOLD_YEARS` past its end.

    Raises:
        ValueError: naming the sites, for a missing record, zone or sampling year, a zone the record lacks or a
            sampling year too far past its end.

    Warns:
        AtmosphereHeldWarning: sampling years past the end of the record, within the tolerance (site, year and
            the record's last year named): the atmosphere is held at its last value there.
    """
    from .atmosphere import ATMOSPHERE_HOLD_YEARS, AtmosphereHeldWarning, canonical_zone

    with_f14c = [s for s in sites if s.f14c is not None and np.isfinite(s.f14c).any()]
    if not with_f14c or _simulate_radiocarbon() is None:
        return
    if atmosphere is None:
        ids = ", ".join(s.site_id for s in with_f14c[:10]) + (" …" if len(with_f14c) > 10 else "")
        raise ValueError(
            f"{len(with_f14c)} site(s) have F14C observations ({ids}) but no atmospheric ¹⁴C record was given "
            "(atmosphere=None), so the ¹⁴C term would be off: pass atmosphere=load_atmosphere(...) "
            "(bayes_vmimics.io), or use_c14=False to calibrate on SOC only"
        )
    name = getattr(atmosphere, "name", "the atmospheric record")
    last = getattr(atmosphere, "last_year", None)
    zones = getattr(atmosphere, "zones", None)
    errors, held = [], []
    for s in with_f14c:
        if s.zone is None:
            errors.append(f"site {s.site_id}: F14C observed but no atmospheric zone")
        elif zones is not None:
            try:
                known = canonical_zone(s.zone) in zones
            except ValueError:
                known = False
            if not known:
                errors.append(f"site {s.site_id}: zone {s.zone!r} not in the atmospheric record {list(zones)}")
        if s.sample_year is None or not np.isfinite(s.sample_year):
            errors.append(f"site {s.site_id}: F14C observed but no sampling year")
        elif last is not None and s.sample_year > last + ATMOSPHERE_HOLD_YEARS:
            errors.append(
                f"site {s.site_id}: sampling year {s.sample_year:g} is more than {ATMOSPHERE_HOLD_YEARS} years "
                f"after the end of the atmospheric record {name!r} ({last})"
            )
        elif last is not None and np.floor(s.sample_year) > last:  # a calendar year the record lacks
            held.append(f"{s.site_id} ({s.sample_year:g})")
    if errors:
        raise ValueError(
            "F14C observations that cannot enter the ¹⁴C term: "
            + "; ".join(errors)
            + ". Fix the observations, leave the site out, or pass use_c14=False to calibrate on SOC only"
        )
    if held:
        warnings.warn(
            f"{len(held)} site(s) sampled after the atmospheric record {name!r} ends in {last}: "
            f"{', '.join(held)}; their atmospheric F14C is held at its {last} value for the years after it "
            "(P §2.5.3)",
            AtmosphereHeldWarning,
            stacklevel=3,
        )


@dataclass(eq=False)
class SiteObservations:
    """One site's forcing and observed profile (the input of a calibration).

    Attributes:
        site_id: identifier (–).
        forcing: the site's forcing (see :class:`SiteForcing`).
        top_cm: top of each observed interval, shape (n_obs,) (cm below the mineral surface).
        bottom_cm: bottom of each interval, shape (n_obs,) (cm).
        soc_mg_cm3: observed SOC density, shape (n_obs,) (mg C cm⁻³).
        bd_g_cm3: bulk density, shape (n_obs,), or None (g cm⁻³); needed for ``soc_unit="g_kg"``.
        f14c: observed F14C, shape (n_obs,), NaN where not measured, or None (–).
        zone: Hua et al. (2013) atmospheric zone, e.g. "NH1" (–).
        sample_year: year of sampling (year AD).
        forest_type: the site's forest type, one of ``constants.FOREST_TYPES`` for real sites, or None (–).

    Raises:
        ValueError: naming the site, the layer (index and depths) and the value, for an observed SOC that is
            not finite and positive (NaN, inf, ≤ 0), an F14C that is inf or ≤ 0 (NaN means not measured), a
            bulk density that is inf or ≤ 0, non-finite or negative depths, a top not above its bottom, or two
            overlapping intervals; arrays of unequal length.
    """

    site_id: str
    forcing: SiteForcing
    top_cm: np.ndarray
    bottom_cm: np.ndarray
    soc_mg_cm3: np.ndarray
    bd_g_cm3: np.ndarray | None = None
    f14c: np.ndarray | None = None
    zone: str | None = None
    sample_year: float | None = None
    forest_type: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.site_id, str) or not self.site_id.strip():
            raise ValueError(
                f"site_id must be a non-empty string (it names the site in every message), got {self.site_id!r}"
            )
        self.top_cm = np.asarray(self.top_cm, dtype=float)
        self.bottom_cm = np.asarray(self.bottom_cm, dtype=float)
        self.soc_mg_cm3 = np.asarray(self.soc_mg_cm3, dtype=float)
        n = self.top_cm.shape
        if self.bottom_cm.shape != n or self.soc_mg_cm3.shape != n or self.top_cm.ndim != 1:
            raise ValueError(f"site {self.site_id}: top_cm, bottom_cm and soc_mg_cm3 must be 1-D of equal length")
        self._check_depths()
        # every observed value is checked here, naming the layer: a NaN, inf or non-positive value would
        # otherwise make σ (relative to it) or the log posterior NaN or −inf at every θ, with only a numpy warning
        bad = ~(np.isfinite(self.soc_mg_cm3) & (self.soc_mg_cm3 > 0))
        if bad.any():
            raise ValueError(self._bad_values("observed SOC", self.soc_mg_cm3, bad, "finite and positive", "mg C cm⁻³"))
        if self.bd_g_cm3 is not None:
            self.bd_g_cm3 = np.asarray(self.bd_g_cm3, dtype=float)
            if self.bd_g_cm3.shape != n:
                raise ValueError(f"site {self.site_id}: bd_g_cm3 must have shape {n}")
            bd = self.bd_g_cm3
            bad = ~np.isnan(bd) & ~(np.isfinite(bd) & (bd > 0))
            if bad.any():
                raise ValueError(
                    self._bad_values("bulk density", bd, bad, "finite and positive, or NaN where unknown", "g cm⁻³")
                )
        if self.f14c is not None:
            self.f14c = np.asarray(self.f14c, dtype=float)
            if self.f14c.shape != n:
                raise ValueError(f"site {self.site_id}: f14c must have shape {n}")
            bad = ~np.isnan(self.f14c) & ~(np.isfinite(self.f14c) & (self.f14c > 0))
            if bad.any():
                raise ValueError(
                    self._bad_values("observed F14C", self.f14c, bad, "finite and positive, or NaN where not measured")
                )

    def _layer(self, i: int) -> str:
        return f"layer {i} ({self.top_cm[i]:g}–{self.bottom_cm[i]:g} cm)"

    def _bad_values(self, what: str, values: np.ndarray, bad: np.ndarray, must: str, unit: str = "") -> str:
        idx = np.flatnonzero(bad)
        shown = "; ".join(f"{self._layer(i)}: {float(values[i])!r}" for i in idx[:5])
        more = f" and {idx.size - 5} more" if idx.size > 5 else ""
        unit = f" ({unit})" if unit else ""
        return f"site {self.site_id}: {what} must be {must}{unit}; {shown}{more}"

    def _check_depths(self) -> None:
        """Finite depths, top ≥ 0, top < bottom, and no two intervals overlapping (each named)."""
        top, bot, sid = self.top_cm, self.bottom_cm, self.site_id
        bad = np.flatnonzero(~np.isfinite(top) | ~np.isfinite(bot))
        if bad.size:
            i = bad[0]
            raise ValueError(f"site {sid}: layer {i} has non-finite depths top_cm = {top[i]!r}, bottom_cm = {bot[i]!r}")
        bad = np.flatnonzero(top < 0)
        if bad.size:
            raise ValueError(
                f"site {sid}: {self._layer(bad[0])} starts above the mineral-soil surface (top_cm < 0); depths are "
                "cm below it (organic horizons are not part of the model)"
            )
        bad = np.flatnonzero(top >= bot)
        if bad.size:
            raise ValueError(f"site {sid}: {self._layer(bad[0])} has its top at or below its bottom")
        order = np.argsort(top, kind="stable")
        over = np.flatnonzero(top[order][1:] < bot[order][:-1] - 1e-6)  # as the curation's depth check
        if over.size:
            i, j = order[over[0]], order[over[0] + 1]
            raise ValueError(
                f"site {sid}: {self._layer(i)} and {self._layer(j)} overlap; observed intervals must not overlap "
                "(each would count the same soil twice)"
            )

    @property
    def has_c14(self) -> bool:
        """At least one finite F14C observation, with zone and sampling year known."""
        return (
            self.f14c is not None
            and bool(np.isfinite(self.f14c).any())
            and self.zone is not None
            and self.sample_year is not None
            and np.isfinite(self.sample_year)
        )
