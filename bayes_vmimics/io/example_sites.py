"""Named example sites outside the curated tables: Howland Forest (ISRaD) and the McFarlane et al. (2013) rows."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .curation import _filter_layers, _hua_zone, _tidy_layers
from .datadir import data_file
from .forcing import _add_forcing
from .he2016 import HE2016_SOURCE, load_he2016_layers
from .qa import MIN_LAYERS, _check_depths, _check_non_negative, _csv_row, _read_csv, _require_columns, _require_numeric
from .sites import build_site_tables
from .tables import _LOG_COLUMNS, SiteTables

MCFARLANE_FILE = "he2016_mcfarlane2013_layers.csv"
HOWLAND_FILE = "israd_gaudinski2001_howland_layers.csv"
SIX_SITES_FILE = "six_sites_metadata.csv"


def _single_site_forcing(sites: pd.DataFrame, entries: list, fname: str) -> pd.DataFrame:
    """Forcing columns for example sites (clay fallback from the He et al. forest-type medians)."""
    return _add_forcing(sites, entries, fname)


def load_howland_profile(data_dir: str | os.PathLike | None = None, *, profile: str = "Tower Pit") -> SiteTables:
    """Howland Forest (Gaudinski 2001, ISRaD): one profile with SOC, bulk density and ¹⁴C.

    The ISRaD depths already use the mineral-soil surface as 0 (negative = organic horizons), so the
    same layer filters as for He et al. apply. Spruce–hemlock forest at 45.2°N → ENF.

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).
        profile: ISRaD profile name (text); "Tower Pit" is the only one with ¹⁴C.

    Returns:
        ``SiteTables`` with one site and its kept mineral layers.

    Raises:
        DataFolderError: folder or file missing.
        ValueError: unknown profile, or a bad file (naming file, row and column).
    """
    p = data_file(HOWLAND_FILE, data_dir)
    raw = _read_csv(p)
    cols = ["site_name", "lat", "lon", "profile", "sample_year", "top_cm", "bottom_cm", "bd_g_cm3", "soc_pct"]
    _require_columns(raw, p, [*cols, "d14c_permil", "f14c", "mat_c", "map_mm", "horizon"])
    raw = _require_numeric(raw, p, ["top_cm", "bottom_cm", "bd_g_cm3", "soc_pct", "d14c_permil", "f14c"])
    if profile not in set(raw["profile"]):
        raise ValueError(f"{p}: column 'profile': no profile {profile!r} (have {sorted(set(raw['profile']))})")
    _check_depths(raw, p, "profile", "top_cm", "bottom_cm")
    _check_non_negative(raw, p, ["soc_pct", "bd_g_cm3"])
    r = raw[raw["profile"] == profile].copy()
    r = r.rename(columns={"top_cm": "top_cm_mineral0", "bottom_cm": "bottom_cm_mineral0", "f14c": "f14c_reported"})
    r["profile_id"] = "howland_" + profile.lower().replace(" ", "_")
    r["bd_is_filled"] = False
    r["f14c_from_d14c"] = np.nan
    r["clay_pct"] = np.nan
    r["n_pct"] = np.nan
    keep, entries = _filter_layers(r, p.name, exclude_filled_bd=False)
    layers = _tidy_layers(r, keep, "")
    f = r.iloc[0]
    sites = pd.DataFrame(
        [
            dict(
                site_id=r["profile_id"].iloc[0],
                profile_id=r["profile_id"].iloc[0],
                source="ISRaD Gaudinski_2001 (Lawrence et al. 2020, doi:10.5194/essd-12-61-2020)",
                dataset="Gaudinski_2001",
                doi="10.5194/essd-12-61-2020",
                site_name=f"{f['site_name']}, {profile}",
                country="US",
                lat=float(f["lat"]),
                lon=float(f["lon"]),
                sample_year=float(f["sample_year"]),
                mat_c=float(f["mat_c"]),
                map_mm=float(f["map_mm"]),
                forest_type="ENF",
                biome="temperate",
                forest_type_rationale="spruce-hemlock forest, Maine (45 N): temperate evergreen needleleaf",
                in_four_types=True,
                litterfall_above_reported=np.nan,
                clay_pct_measured=np.nan,
            )
        ]
    )
    sites["hua2013_zone"] = [_hua_zone(sites.at[0, "lat"], sites.at[0, "lon"])]
    sites = _single_site_forcing(sites, entries, p.name)
    _fill_clay_from_he2016(sites, data_dir)
    sites["n_layers"] = len(layers)
    sites["n_layers_c14"] = int(layers["f14c"].count())
    sites["has_c14"] = sites["n_layers_c14"] >= 1
    sites["usable"] = len(layers) >= MIN_LAYERS
    sites["usable_for"] = "SOC and 14C"
    return SiteTables(sites=sites, layers=layers, log=pd.DataFrame(entries, columns=_LOG_COLUMNS))


def _fill_clay_from_he2016(sites: pd.DataFrame, data_dir) -> None:
    """Replace the clay fallback of example sites by the He et al. median of the same forest type."""
    need = sites["clay_pct"].isna()
    if not need.any():
        return
    try:
        he = build_site_tables(data_dir, sources=(HE2016_SOURCE,))
    except (OSError, ValueError):  # pragma: no cover - He file absent: leave NaN, flagged
        return
    med = he.sites[he.sites["clay_is_measured"]].groupby("forest_type")["clay_pct"].median()
    sites.loc[need, "clay_pct"] = sites.loc[need, "forest_type"].map(med)
    sites.loc[need, "clay_is_measured"] = False
    sites.loc[need, "clay_source"] = "median of measured He et al. 2016 profiles of the same forest type"


def load_mcfarlane_sites(data_dir: str | os.PathLike | None = None) -> SiteTables:
    """The McFarlane et al. (2013) sites as carried by He et al. (2016): ¹⁴C checks only.

    These rows have no bulk density (and %C at two layers only), so no SOC density profile can be
    built: ``soc_mg_cm3`` is NaN and ``usable_for`` says "14C check only". Organic layers are dropped as
    for He et al. Site ids follow ``six_sites_metadata.csv`` where the site is one of Wang et al.'s six
    (MI-Fine, not in the paper, gets ``mi_fine``). Litterfall is the reported value, taken as leaf
    litterfall in g C m⁻² yr⁻¹ (units unverified; PROVENANCE file 7).

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).

    Returns:
        ``SiteTables`` (``usable`` is False for SOC calibration; ``has_c14`` True).
    """
    p = data_file(MCFARLANE_FILE, data_dir)
    raw = load_he2016_layers(path=p)
    meta = _read_csv(data_file(SIX_SITES_FILE, data_dir))
    named = meta[meta["he2016_site_name"].notna()]
    name_to_id = dict(zip(named["he2016_site_name"].str.strip(), named["site_id"], strict=True))
    entries: list = []
    mineral = raw["bottom_cm_mineral0"] > 0
    straddle = (raw["top_cm_mineral0"] < 0) & mineral
    for i in raw.index[~mineral | straddle]:
        entries.append(
            dict(
                file=p.name,
                row=_csv_row(i),
                profile_id=raw.at[i, "profile_id"],
                column="bottom_cm_mineral0",
                value=raw.at[i, "bottom_cm_mineral0"],
                reason="organic horizon above the mineral-soil surface",
            )
        )
    keep = mineral & ~straddle
    layers = _tidy_layers(raw, keep, "")
    sid = {
        pid: name_to_id.get(str(n).strip(), "mi_fine" if "Fine" in str(n) else str(n))
        for pid, n in raw.groupby("profile_id")["site"].first().items()
    }
    layers["site_id"] = layers["profile_id"].map(sid)
    first = raw.groupby("profile_id").first()
    sites = pd.DataFrame(
        {
            "site_id": first.index.map(sid),
            "profile_id": first.index,
            "source": "He et al. 2016 compilation, McFarlane et al. 2013 rows",
            "dataset": first["dataset"],
            "doi": first["doi"],
            "site_name": first["site"].str.strip(),
            "country": first["country"],
            "lat": first["lat"],
            "lon": first["lon"],
            "sample_year": first["sample_year"],
            "mat_c": first["mat_c"],
            "map_mm": first["map_mm"],
            "forest_type": "DBF",
            "biome": "temperate",
            "forest_type_rationale": "veg_local: deciduous broadleaf forests (McFarlane et al. 2013)",
            "in_four_types": True,
            "litterfall_above_reported": first["litterfall_above"],
            "clay_pct_measured": first["clay_pct"],
        }
    ).reset_index(drop=True)
    sites["hua2013_zone"] = [_hua_zone(a, b) for a, b in zip(sites["lat"], sites["lon"], strict=True)]
    sites = _add_forcing(sites, entries, p.name)
    lg = layers.groupby("profile_id")
    sites["n_layers"] = sites["profile_id"].map(lg.size()).fillna(0).astype(int)
    sites["n_layers_c14"] = sites["profile_id"].map(lg["f14c"].count()).fillna(0).astype(int)
    sites["has_c14"] = sites["n_layers_c14"] >= 1
    sites["usable"] = False
    sites["usable_for"] = "14C check only (no bulk density)"
    return SiteTables(sites=sites, layers=layers, log=pd.DataFrame(entries, columns=_LOG_COLUMNS))
