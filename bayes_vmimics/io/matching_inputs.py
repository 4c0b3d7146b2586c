"""The inputs of the He–ISRaD matching, read from the raw CSV files with pandas alone, and the ISRaD forest candidates.

:func:`load_matching_frames` builds the tidy inputs of :func:`bayes_vmimics.io.matching.match_he_israd` (it does not
use the ISRaD reader ``bayes_vmimics.io.israd``); :func:`build_source_matches` is the committed table
``data/source_matches.csv`` (written by ``data/source_matches.py``). :func:`israd_forest_candidates` lists the ISRaD
forest profiles that carry a usable SOC and bulk density profile, and :func:`assign_israd_forest_types` checks the
forest-type table ``data/israd_forest_types.csv`` against them (``data/israd_forest_types.py``).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..resources import project_data_dir
from .datadir import data_file, resolve_data_dir
from .matching import ISRAD_KEYS, match_he_israd

__all__ = [
    "ISRAD_DIR",
    "KNOWN_TYPES",
    "assign_israd_forest_types",
    "build_source_matches",
    "israd_forest_candidates",
    "load_israd_tables",
    "load_matching_frames",
]

#: Folder of the ISRaD_extra tables in the raw-data folder (PROVENANCE.md file 10).
ISRAD_DIR = "israd_extra_2023-02-08"


def load_israd_tables(data_dir: str | os.PathLike | None = None) -> dict[str, pd.DataFrame]:
    """Read the four ISRaD_extra tables (``metadata``, ``site``, ``profile``, ``layer``) as they are.

    Args:
        data_dir: the raw-data folder (path), or None for ``$BAYES_VMIMICS_DATA``.

    Returns:
        Dict of table name → DataFrame (R ``NA`` as NaN, ``inf`` as infinity).

    Raises:
        DataFolderError: the folder or a table is missing.
    """
    return {
        t: pd.read_csv(data_file(f"{ISRAD_DIR}/{t}.csv", data_dir), low_memory=False)
        for t in ("metadata", "site", "profile", "layer")
    }


def _israd_values(layer: pd.DataFrame) -> pd.DataFrame:
    """Tidy ISRaD layer values: SOC (organic, else total C; %), Δ14C (‰), F14C, BD (g cm⁻³) and depths (cm)."""
    lyr = layer
    d14c = lyr["lyr_14c"].astype(float)
    fm = lyr["lyr_fraction_modern"].astype(float)
    year = lyr["lyr_obs_date_y"].astype(float)
    lam = 1.0 / 8267.0  # PROVENANCE.md: Δ14C = 1000 (F14C exp(λc (1950 − y)) − 1)
    d14c = d14c.fillna(1000.0 * (fm * np.exp(lam * (1950.0 - year)) - 1.0))
    fm = fm.fillna((d14c / 1000.0 + 1.0) * np.exp(lam * (year - 1950.0)))
    return pd.DataFrame(
        {
            **{k: lyr[k] for k in ISRAD_KEYS},
            "top_cm": lyr["lyr_top"].astype(float),
            "bottom_cm": lyr["lyr_bot"].astype(float),
            "soc_pct": lyr["lyr_c_org"].astype(float).fillna(lyr["lyr_c_tot"].astype(float)),
            "bd_g_cm3": lyr["lyr_bd_samp"].astype(float).fillna(lyr["lyr_bd_tot"].astype(float)),
            "d14c": d14c,
            "f14c": fm,
        }
    )


def israd_forest_candidates(tables: dict[str, pd.DataFrame] | None = None, data_dir=None) -> pd.DataFrame:
    """The ISRaD forest profiles usable for a calibration: ``pro_land_cover == "forest"`` with ≥ 3 mineral layers
    (top ≥ 0 cm and bottom > 0 cm) that each give organic or total C (``lyr_c_org`` / ``lyr_c_tot``) and bulk
    density (``lyr_bd_samp`` / ``lyr_bd_tot``) — the curation's rule (≥ 3 layers with SOC and BD), so that every
    profile it may use has a row; ¹⁴C is not required (``n_layers_c14`` counts the layers that carry it:
    ``lyr_14c`` / ``lyr_fraction_modern``). Gap-filled ``*_filled`` columns of ISRaD_extra are not used. (Requiring
    ¹⁴C in the 3 layers, the former rule, gave 200 profiles in 44 entries and left 39 profiles the curation keeps,
    e.g. Perez_2006, Trumbore_2006, Schrumpf_2013, without a forest type.)

    Args:
        tables: the output of :func:`load_israd_tables`, or None to read it from ``data_dir``.
        data_dir: the raw-data folder (path), or None for ``$BAYES_VMIMICS_DATA``; used only without ``tables``.

    Returns:
        One row per candidate profile: the keys ``entry_name``, ``site_name``, ``pro_name``, ``n_layers`` and
        ``n_layers_c14`` (counts), ``lat``, ``lon`` (decimal degrees) and the profile's recorded columns
        (``pro_*``, MODIS ``Description``), sorted by the keys.
    """
    t = load_israd_tables(data_dir) if tables is None else tables
    v = _israd_values(t["layer"])
    ok = v["soc_pct"].notna() & v["bd_g_cm3"].notna() & (v["top_cm"] >= 0) & (v["bottom_cm"] > 0)
    c14 = ok & (t["layer"]["lyr_14c"].notna() | t["layer"]["lyr_fraction_modern"].notna())
    keys = list(ISRAD_KEYS)
    n = v[ok].groupby(keys).size().rename("n_layers").reset_index()
    n14 = v[c14].groupby(keys).size().rename("n_layers_c14").reset_index()
    n = n.merge(n14, on=keys, how="left").fillna({"n_layers_c14": 0}).astype({"n_layers_c14": int})
    pro = t["profile"]
    cand = n[n["n_layers"] >= 3].merge(pro[pro["pro_land_cover"] == "forest"], on=keys)
    cand = cand.rename(columns={"pro_lat": "lat", "pro_long": "lon"})
    return cand.sort_values(keys).reset_index(drop=True)


def load_matching_frames(data_dir: str | os.PathLike | None = None) -> dict[str, pd.DataFrame]:
    """Build the four tidy inputs of :func:`match_he_israd` from the raw files.

    He et al. (2016): every profile of ``he2016_forest_layers.csv`` (site id ``he2016_<profile_id>`` as in
    ``build_site_tables``), all layers with depths in He et al.'s mineral-0 reference (``top_cm_mineral0``),
    SOC ``soc_pct`` (%; 0 without a reported value is missing) and Δ14C
    (``d14c_permil``) with its F14C (``f14c_from_d14c``). ISRaD: every profile with coordinates (all land
    covers: a He profile may be in ISRaD without being a forest candidate), all layers, SOC = ``lyr_c_org`` else
    ``lyr_c_tot``, Δ14C = ``lyr_14c`` else computed from ``lyr_fraction_modern`` and ``lyr_obs_date_y``.

    Args:
        data_dir: the raw-data folder (path), or None for ``$BAYES_VMIMICS_DATA``.

    Returns:
        Dict with ``he_sites``, ``he_layers``, ``israd_sites``, ``israd_layers`` (columns as
        :func:`match_he_israd` documents them; depths cm, SOC %, Δ14C ‰, coordinates decimal degrees).
    """
    folder = resolve_data_dir(data_dir)
    he = pd.read_csv(data_file("he2016_forest_layers.csv", folder), low_memory=False)
    he["site_id"] = "he2016_" + he["profile_id"].astype(str)
    first = he.groupby("profile_id", sort=True).first().reset_index()
    he_sites = first[["site_id", "profile_id", "dataset", "lat", "lon"]].reset_index(drop=True)
    # He et al.'s soc_pct is in % (soc_pct_reported keeps some studies' g kg⁻¹); 0 without a reported value is
    # their placeholder for a missing value (data/README.md, "SOC = 0 means missing")
    soc_reported = (he["soc_pct"] > 0) | he["soc_pct_reported"].notna()
    he_layers = pd.DataFrame(
        {
            "site_id": he["site_id"],
            "top_cm": he["top_cm_mineral0"].astype(float),
            "bottom_cm": he["bottom_cm_mineral0"].astype(float),
            "soc_pct": he["soc_pct"].astype(float).where(soc_reported, np.nan),
            "d14c": he["d14c_permil"].astype(float),
            "f14c": he["f14c_from_d14c"].astype(float),
        }
    )
    t = load_israd_tables(folder)
    pro = t["profile"]
    israd_sites = pro[[*ISRAD_KEYS, "pro_lat", "pro_long"]].rename(columns={"pro_lat": "lat", "pro_long": "lon"})
    israd_layers = _israd_values(t["layer"]).drop(columns="bd_g_cm3")
    return {"he_sites": he_sites, "he_layers": he_layers, "israd_sites": israd_sites, "israd_layers": israd_layers}


def build_source_matches(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The committed table ``data/source_matches.csv``: :func:`match_he_israd` on :func:`load_matching_frames`.

    Args:
        data_dir: the raw-data folder (path), or None for ``$BAYES_VMIMICS_DATA``.

    Returns:
        The pairs (columns :data:`MATCH_COLUMNS`; distance in km).
    """
    return match_he_israd(**load_matching_frames(data_dir))


#: Forest-type codes of ``data/israd_forest_types.csv``: the four types and the "other" classes of
#: ``data/forest_types.csv`` (``bayes_vmimics.io.tables.ALL_TYPES``).
KNOWN_TYPES = ("ENF", "EBF", "DBF", "BNF", "DNF", "MIX", "UNK", "NFO")
FOREST_TYPE_COLUMNS = ("entry_name", "site_name", "pro_name", "forest_type", "evidence", "confidence")


def assign_israd_forest_types(candidates: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Give every ISRaD forest candidate its forest type from ``data/israd_forest_types.csv``, checking the table.

    A table row covers a whole entry (``site_name`` and ``pro_name`` empty), a site (``pro_name`` empty) or one
    profile. The table has no rules of its own: the judgement and its evidence are in its rows.

    Args:
        candidates: one row per profile with ``entry_name``, ``site_name``, ``pro_name``
            (:func:`israd_forest_candidates`).
        table: the forest-type table, or None to read ``data/israd_forest_types.csv`` (empty cells as "").

    Returns:
        ``candidates``' keys with ``forest_type``, ``confidence``, ``evidence`` and ``table_row`` (the CSV line of
        the covering row, header = 1).

    Raises:
        ValueError: wrong columns, an unknown code or confidence, a duplicate row, a row that covers no
            candidate, or a candidate covered by no row or by more than one (the message lists them).
    """
    if table is None:
        table = pd.read_csv(project_data_dir() / "israd_forest_types.csv", dtype=str, keep_default_na=False)
    if tuple(table.columns) != FOREST_TYPE_COLUMNS:
        raise ValueError(f"israd_forest_types: columns {list(table.columns)}, expected {list(FOREST_TYPE_COLUMNS)}")
    t = table.fillna("").astype(str).reset_index(drop=True)
    errors = [f"line {i + 2}: unknown forest_type {v!r}" for i, v in t["forest_type"].items() if v not in KNOWN_TYPES]
    errors += [
        f"line {i + 2}: confidence {v!r} is not high/medium/low"
        for i, v in t["confidence"].items()
        if v not in ("high", "medium", "low")
    ]
    errors += [f"line {i + 2}: empty evidence" for i, v in t["evidence"].items() if not v.strip()]
    errors += [f"line {i + 2}: duplicate row" for i in t.index[t.duplicated(list(ISRAD_KEYS))]]
    errors += [
        f"line {i + 2}: pro_name without site_name" for i in t.index[(t["site_name"] == "") & (t["pro_name"] != "")]
    ]
    cand = candidates[list(ISRAD_KEYS)].astype(str).reset_index(drop=True)
    cover: dict[int, list[int]] = {j: [] for j in cand.index}
    used = set()
    for i, r in t.iterrows():
        hit = cand["entry_name"] == r["entry_name"]
        if r["site_name"]:
            hit &= cand["site_name"] == r["site_name"]
        if r["pro_name"]:
            hit &= cand["pro_name"] == r["pro_name"]
        for j in cand.index[hit]:
            cover[j].append(i)
            used.add(i)
    errors += [f"line {i + 2}: covers no candidate profile" for i in t.index if i not in used]
    for j, rows in cover.items():
        if len(rows) != 1:
            key = " / ".join(cand.loc[j])
            errors.append(
                f"candidate {key}: covered by {len(rows)} rows" + (f" (lines {[i + 2 for i in rows]})" if rows else "")
            )
    if errors:
        raise ValueError("israd_forest_types.csv: " + "; ".join(errors))
    out = cand.copy()
    row = [cover[j][0] for j in cand.index]
    for c in ("forest_type", "confidence", "evidence"):
        out[c] = t.loc[row, c].to_numpy()
    out["table_row"] = [i + 2 for i in row]
    return out
