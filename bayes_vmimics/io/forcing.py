"""Model forcing of the sites: litter inputs, lignin:N, clay fallback and soil temperature, each flagged.

Decisions (documented in ``data/README.md``)
    * Soil temperature is MAT (°C); Wang et al. (2021) used daily GSWP3 air temperature.
    * Litter input: measured aboveground litterfall where reported (taken as g C m⁻² yr⁻¹, leaf
      litterfall; see README), else NPP of the Miami model (Lieth 1975) × 0.47 g C g⁻¹, split above/below
      by ``data/litter_partition.csv``; lignin:N from ``data/lignin_n.csv``; clay measured or the median
      of measured profiles of the same forest type. Every estimate carries a flag.

``_add_forcing`` gives these columns to the sites of every source (ISRaD adds its gridded values:
``bayes_vmimics.io.israd_curation``); :func:`site_forcing` turns a row of the ``sites`` table into the model's
``SiteForcing``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..forcing import SiteForcing
from .datadir import PROJECT_DATA_DIR
from .qa import _read_csv, _require_columns
from .tables import ALL_TYPES

#: Carbon fraction of dry plant matter (g C g⁻¹) used with the Miami model.
CARBON_FRACTION = 0.47
#: Plausible ratio of reported aboveground litterfall to the Miami-based aboveground estimate.
LITTERFALL_RATIO_RANGE = (0.2, 3.0)


# --------------------------------------------------------------------------------------------------
# small published models and the project's forcing tables
# --------------------------------------------------------------------------------------------------
def miami_npp(mat_c, map_mm):
    """Net primary production of the Miami model (Lieth 1975).

    NPP = min(3000 / (1 + exp(1.315 − 0.119 T)), 3000 (1 − exp(−0.000664 P))).

    Args:
        mat_c: mean annual air temperature T (°C).
        map_mm: mean annual precipitation P (mm yr⁻¹).

    Returns:
        NPP (g dry matter m⁻² yr⁻¹).
    """
    t = np.asarray(mat_c, dtype=float)
    p = np.asarray(map_mm, dtype=float)
    npp_t = 3000.0 / (1.0 + np.exp(1.315 - 0.119 * t))
    npp_p = 3000.0 * (1.0 - np.exp(-0.000664 * p))
    return np.minimum(npp_t, npp_p)


def _load_type_table(name: str, columns) -> pd.DataFrame:
    p = PROJECT_DATA_DIR / name
    t = _read_csv(p)
    _require_columns(t, p, ["forest_type", *columns])
    missing = set(ALL_TYPES) - set(t["forest_type"])
    if missing:
        raise ValueError(f"{p}: column 'forest_type': no row for {sorted(missing)}")
    return t.set_index("forest_type")


def load_lignin_n() -> pd.DataFrame:
    """Lignin:N per forest type (``data/lignin_n.csv``; g g⁻¹), indexed by forest type."""
    t = _load_type_table("lignin_n.csv", ["lignin_n_above", "lignin_n_below", "source"])
    if (t[["lignin_n_above", "lignin_n_below"]] > 0.85 / 0.013).any().any():
        raise ValueError("data/lignin_n.csv: lignin:N above 65.38 gives a negative metabolic fraction")
    return t


def load_litter_partition() -> pd.DataFrame:
    """Belowground fraction of total litter input per forest type (``data/litter_partition.csv``; 0–1)."""
    t = _load_type_table("litter_partition.csv", ["frac_below", "source"])
    if ((t["frac_below"] < 0) | (t["frac_below"] > 1)).any():
        raise ValueError("data/litter_partition.csv: column 'frac_below' must be within 0–1")
    return t


# --------------------------------------------------------------------------------------------------
# forcing columns of the sites table
# --------------------------------------------------------------------------------------------------
def _add_forcing(sites: pd.DataFrame, log_entries: list, fname: str) -> pd.DataFrame:
    """Litter inputs, lignin:N, clay fallback and soil temperature, each flagged."""
    lig = load_lignin_n()
    part = load_litter_partition()
    s = sites
    npp_dm = miami_npp(s["mat_c"], s["map_mm"])
    s["npp_miami_g_c_m2_yr"] = npp_dm * CARBON_FRACTION
    frac_below = s["forest_type"].map(part["frac_below"]).astype(float)
    s["frac_below"] = frac_below
    est_above = s["npp_miami_g_c_m2_yr"] * (1.0 - frac_below)
    s["litter_below_g_c_m2_yr"] = s["npp_miami_g_c_m2_yr"] * frac_below
    s["litter_below_source"] = "Miami NPP x frac_below"
    measured = s["litterfall_above_reported"].notna() & (s["litterfall_above_reported"] > 0)
    ratio = s["litterfall_above_reported"] / est_above
    lo, hi = LITTERFALL_RATIO_RANGE
    implaus = measured & ((ratio < lo) | (ratio > hi))
    for i in s.index[implaus]:
        log_entries.append(
            dict(
                file=fname,
                row=None,
                profile_id=s.at[i, "profile_id"],
                column="litterfall_above",
                value=s.at[i, "litterfall_above_reported"],
                reason=(f"reported litterfall / Miami estimate = {ratio[i]:.2f} outside {lo}–{hi}; estimate used"),
            )
        )
    use = measured & ~implaus
    s["litter_above_g_c_m2_yr"] = np.where(use, s["litterfall_above_reported"], est_above)
    s["litter_above_is_measured"] = use.astype(bool)
    s["litter_above_source"] = np.where(
        use, "reported litterfall (assumed g C m-2 yr-1)", "Miami NPP x 0.47 x (1 - frac_below)"
    )
    s["lignin_n_above"] = s["forest_type"].map(lig["lignin_n_above"]).astype(float)
    s["lignin_n_below"] = s["forest_type"].map(lig["lignin_n_below"]).astype(float)
    s["lignin_n_is_measured"] = False
    s["lignin_n_source"] = "data/lignin_n.csv (per forest type)"
    # clay fallback: median of measured profiles of the same forest type, else of all measured profiles
    meas = s["clay_pct_measured"]
    med_type = s.assign(c=meas).groupby("forest_type")["c"].median()
    med_all = float(meas.median()) if meas.notna().any() else float("nan")
    fb = s["forest_type"].map(med_type)
    fb_src = np.where(fb.notna(), "median of measured profiles of the same forest type", "median of all measured")
    fb = fb.fillna(med_all)
    s["clay_is_measured"] = meas.notna()
    s["clay_pct"] = meas.fillna(fb)
    s["clay_source"] = np.where(meas.notna(), "measured (thickness-weighted mean of mineral layers)", fb_src)
    s["soil_temperature_c"] = s["mat_c"]
    s["soil_temperature_source"] = "MAT (compilation); Wang et al. 2021 used daily GSWP3 air temperature"
    return s


# --------------------------------------------------------------------------------------------------
# forcing for the model
# --------------------------------------------------------------------------------------------------
def site_forcing(site_row) -> SiteForcing:
    """Model forcing of one site from a row of the ``sites`` table.

    Args:
        site_row: a row (``pd.Series`` or mapping) with ``soil_temperature_c`` (°C), ``clay_pct`` (%),
            ``litter_above_g_c_m2_yr`` and ``litter_below_g_c_m2_yr`` (g C m⁻² yr⁻¹), ``lignin_n_above``
            and ``lignin_n_below`` (g g⁻¹), ``lat`` and ``lon`` (decimal degrees).

    Returns:
        ``SiteForcing`` with temperature = MAT, clay as a fraction (0–1).

    Raises:
        ValueError: a required value is missing or out of range (message names the site).
    """
    r = site_row
    sid = r.get("site_id", "?") if hasattr(r, "get") else "?"
    need = (
        "soil_temperature_c",
        "clay_pct",
        "litter_above_g_c_m2_yr",
        "litter_below_g_c_m2_yr",
        "lignin_n_above",
        "lignin_n_below",
    )
    vals = {}
    for k in need:
        v = r[k] if k in r else None
        if v is None or (isinstance(v, float) and math.isnan(v)):
            raise ValueError(f"site {sid}: column {k!r} is missing; cannot build SiteForcing")
        vals[k] = float(v)
    lat = r["lat"] if "lat" in r else None
    lon = r["lon"] if "lon" in r else None
    lat = None if lat is None or pd.isna(lat) else float(lat)
    lon = None if lon is None or pd.isna(lon) else float(lon)
    try:
        return SiteForcing(
            temperature=vals["soil_temperature_c"],
            clay=vals["clay_pct"] / 100.0,
            litter_above=vals["litter_above_g_c_m2_yr"],
            litter_below=vals["litter_below_g_c_m2_yr"],
            lignin_n_above=vals["lignin_n_above"],
            lignin_n_below=vals["lignin_n_below"],
            latitude=lat,
            longitude=lon,
        )
    except ValueError as exc:
        raise ValueError(f"site {sid}: {exc}") from exc
