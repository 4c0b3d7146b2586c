"""The He et al. (2016) forest compilation: loader, project tables and curation into ``SiteTables``.

The raw layer file is read from the data folder (``--data-dir`` or ``$BAYES_VMIMICS_DATA``; see
``data/README.md``); its forest types and reviewed exclusions are the project's own tables in the repository's
``data/`` folder. The layer filters, QA rules and pseudo-replicate rules are the shared curation
(``bayes_vmimics.io.curation``).

Decisions (documented in ``data/README.md``)
    * Profiles excluded by review: ``data/profile_exclusions.csv`` lists profiles whose raw values are judged
      wrong (e.g. SOC units); they are dropped as a profile filter, never corrected.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .curation import _curate, _filter_layers, _profile_clay
from .datadir import PROJECT_DATA_DIR, data_file
from .forcing import _add_forcing
from .qa import (
    _as_bool,
    _check_depths,
    _check_non_negative,
    _check_range,
    _csv_row,
    _read_csv,
    _require_columns,
    _require_numeric,
)
from .tables import _LOG_COLUMNS, ALL_TYPES, SiteTables

HE2016_FILE = "he2016_forest_layers.csv"
#: Source key of the He et al. (2016) profiles (``source`` column, ``build_site_tables(sources=...)``).
HE2016_SOURCE = "he2016"
#: Columns of the profile-exclusion table (``data/profile_exclusions.csv``), all required, no others.
EXCLUSION_COLUMNS = ("profile_id", "site_id", "dataset", "reason", "evidence", "decision")
#: Decisions the profile-exclusion table may record.
EXCLUSION_DECISIONS = ("exclude",)
_LAYER_REQUIRED = (
    "profile_id",
    "dataset",
    "doi",
    "site",
    "country",
    "lat",
    "lon",
    "mat_c",
    "map_mm",
    "veg_class",
    "veg_local",
    "top_cm_mineral0",
    "bottom_cm_mineral0",
    "sample_year",
    "d14c_permil",
    "f14c_reported",
    "f14c_from_d14c",
    "soc_pct",
    "bd_g_cm3",
    "bd_is_filled",
    "clay_pct",
    "litterfall_above",
)


# --------------------------------------------------------------------------------------------------
# raw loaders
# --------------------------------------------------------------------------------------------------
def load_he2016_layers(data_dir: str | os.PathLike | None = None, *, path: str | os.PathLike | None = None):
    """Read and validate the He et al. (2016) forest layer file (raw rows, all columns).

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).
        path: read this file instead of ``he2016_forest_layers.csv`` in the data folder (path).

    Returns:
        The raw rows as a DataFrame, the index being the 0-based data row (CSV line − 2).

    Raises:
        DataFolderError: folder or file missing.
        ValueError: naming file, row and column, for a missing column, a non-numeric value, missing or
            non-monotonic depths, or negative SOC, bulk density, clay or litterfall.
    """
    p = Path(path) if path is not None else data_file(HE2016_FILE, data_dir)
    df = _read_csv(p)
    _require_columns(df, p, _LAYER_REQUIRED)
    if df.empty:
        raise ValueError(f"{p}: only a header line, no data rows (restore the file; see data/README.md)")
    numeric = [
        "lat",
        "lon",
        "mat_c",
        "map_mm",
        "top_cm_mineral0",
        "bottom_cm_mineral0",
        "sample_year",
        "d14c_permil",
        "f14c_reported",
        "f14c_from_d14c",
        "soc_pct",
        "bd_g_cm3",
        "clay_pct",
        "litterfall_above",
    ]
    numeric += [c for c in ("soc_pct_reported",) if c in df.columns]  # optional: SOC as originally reported
    df = _require_numeric(df, p, numeric)
    df["bd_is_filled"] = _as_bool(df["bd_is_filled"], p, "bd_is_filled")
    _check_depths(df, p, "profile_id", "top_cm_mineral0", "bottom_cm_mineral0")
    _check_non_negative(df, p, ["soc_pct", "bd_g_cm3", "clay_pct", "litterfall_above"])
    _check_range(df, p, "clay_pct", 0.0, 100.0, "%")
    _check_range(df, p, "lat", -90.0, 90.0, "degrees north")
    _check_range(df, p, "lon", -180.0, 360.0, "degrees east")
    _check_range(df, p, "mat_c", -60.0, 60.0, "°C")
    _check_range(df, p, "map_mm", 0.0, 15000.0, "mm yr⁻¹")
    df.attrs["path"] = str(p)
    return df


def load_forest_types(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read the reviewable forest-type table (``data/forest_types.csv``).

    Args:
        path: alternative table (path); default the repository's ``data/forest_types.csv``.

    Returns:
        One row per He et al. (2016) profile with ``forest_type``, ``biome``, ``confidence``, ``rationale``.

    Raises:
        ValueError: missing column, duplicate profile, or a forest type outside ``ALL_TYPES``.
    """
    p = Path(path) if path is not None else PROJECT_DATA_DIR / "forest_types.csv"
    ft = _read_csv(p)
    _require_columns(ft, p, ["profile_id", "forest_type", "biome", "confidence", "rationale"])
    dup = ft["profile_id"].duplicated()
    if dup.any():
        i = dup.idxmax()
        raise ValueError(f"{p}: row {_csv_row(i)}, column 'profile_id': duplicate profile {ft.at[i, 'profile_id']}")
    bad = ~ft["forest_type"].isin(ALL_TYPES)
    if bad.any():
        i = bad.idxmax()
        raise ValueError(
            f"{p}: row {_csv_row(i)}, column 'forest_type': {ft.at[i, 'forest_type']!r} not in {ALL_TYPES}"
        )
    return ft


def load_profile_exclusions(path: str | os.PathLike | None = None, raw: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read the reviewable profile-exclusion table (``data/profile_exclusions.csv``).

    Each row records a He et al. (2016) profile judged unusable on review, with the evidence; the curation
    drops it as a profile filter and never changes its values.

    Args:
        path: alternative table (path); default the repository's ``data/profile_exclusions.csv``.
        raw: the raw layer rows (:func:`load_he2016_layers`) to check the table against, or None to skip
            that check (DataFrame).

    Returns:
        The table (columns ``EXCLUSION_COLUMNS``; ``profile_id`` as integers), ``attrs["path"]`` its path.

    Raises:
        ValueError: naming the file, row and column, for a missing or unknown column, a missing or
            non-integer profile id, a duplicate profile, an empty reason or evidence, a decision outside
            ``EXCLUSION_DECISIONS``, and (with ``raw``) a profile absent from the raw file or a ``site_id`` or
            ``dataset`` that does not match it.
    """
    p = Path(path) if path is not None else PROJECT_DATA_DIR / "profile_exclusions.csv"
    ex = _read_csv(p)
    _require_columns(ex, p, EXCLUSION_COLUMNS)
    unknown = [c for c in ex.columns if c not in EXCLUSION_COLUMNS]
    if unknown:
        raise ValueError(
            f"{p}: row 1 (header): unknown column(s) {', '.join(repr(c) for c in unknown)} "
            f"(allowed: {', '.join(EXCLUSION_COLUMNS)})"
        )
    ids = pd.to_numeric(ex["profile_id"], errors="coerce")
    bad = ids.isna() | (ids != ids.round())
    if bad.any():
        i = bad.idxmax()
        raise ValueError(f"{p}: row {_csv_row(i)}, column 'profile_id': not a profile id ({ex.at[i, 'profile_id']!r})")
    ex["profile_id"] = ids.astype(int)
    dup = ex["profile_id"].duplicated()
    if dup.any():
        i = dup.idxmax()
        raise ValueError(f"{p}: row {_csv_row(i)}, column 'profile_id': duplicate profile {ex.at[i, 'profile_id']}")
    for c in ("reason", "evidence"):
        empty = ex[c].isna() | (ex[c].astype(str).str.strip() == "")
        if empty.any():
            i = empty.idxmax()
            raise ValueError(f"{p}: row {_csv_row(i)}, column {c!r}: empty (profile {ex.at[i, 'profile_id']})")
    bad = ~ex["decision"].isin(EXCLUSION_DECISIONS)
    if bad.any():
        i = bad.idxmax()
        raise ValueError(
            f"{p}: row {_csv_row(i)}, column 'decision': {ex.at[i, 'decision']!r} not in {EXCLUSION_DECISIONS}"
        )
    if raw is not None:
        raw_name = Path(raw.attrs.get("path", "the raw file")).name
        first = raw.groupby("profile_id")["dataset"].first()
        for i in ex.index:
            pid = ex.at[i, "profile_id"]
            if pid not in first.index:
                raise ValueError(
                    f"{p}: row {_csv_row(i)}, column 'profile_id': profile {pid} is not in {raw_name} "
                    "(pass another table, or exclusions=False, to build_site_tables)"
                )
            if ex.at[i, "site_id"] != f"he2016_{pid}":
                raise ValueError(
                    f"{p}: row {_csv_row(i)}, column 'site_id': {ex.at[i, 'site_id']!r} does not match profile "
                    f"{pid} (expected 'he2016_{pid}')"
                )
            if ex.at[i, "dataset"] != first[pid]:
                raise ValueError(
                    f"{p}: row {_csv_row(i)}, column 'dataset': {ex.at[i, 'dataset']!r} does not match "
                    f"{raw_name}, where profile {pid} is {first[pid]!r}"
                )
    ex.attrs["path"] = str(p)
    return ex


# --------------------------------------------------------------------------------------------------
# curation
# --------------------------------------------------------------------------------------------------
# ~80 lines of code: most are the two functions it hands to the shared curation (make_sites, prior_reasons).
def _build_he2016_tables(
    data_dir: str | os.PathLike | None = None,
    *,
    exclude_filled_bd: bool = False,
    path: str | os.PathLike | None = None,
    forest_types: str | os.PathLike | None = None,
    exclusions: str | os.PathLike | bool | None = None,
    deduplicate: bool = True,
    qa: bool = True,
) -> SiteTables:
    """The He et al. (2016) tables without the split (arguments as :func:`build_site_tables`)."""
    raw = load_he2016_layers(data_dir, path=path)
    fname = Path(raw.attrs["path"]).name
    if exclusions is False:
        excluded = pd.DataFrame(columns=list(EXCLUSION_COLUMNS))
        review_label = ""
    elif exclusions is True:
        raise TypeError("exclusions: give a table path, None (the repository table) or False (none)")
    else:
        excluded = load_profile_exclusions(exclusions, raw=raw)
        review_label = "data/profile_exclusions.csv" if exclusions is None else Path(exclusions).name

    def make_sites(first: pd.DataFrame) -> pd.DataFrame:
        sites = pd.DataFrame(
            {
                "site_id": "he2016_" + first.index.astype(str),
                "profile_id": first.index,
                "source": HE2016_SOURCE,
                "source_reference": "He et al. 2016 (doi:10.1126/science.aad4273)",
                "dataset": first["dataset"],
                "doi": first["doi"],
                "site_name": first["site"].astype(str).str.strip(),
                "country": first["country"],
                "lat": first["lat"],
                "lon": first["lon"],
                "elevation_m": first.get("elevation_m"),
                "sample_year": first["sample_year"],
                "mat_c": first["mat_c"],
                "mat_is_reported": first["mat_c_reported"].notna() if "mat_c_reported" in first else False,
                "map_mm": first["map_mm"],
                "map_is_reported": first["map_mm_reported"].notna() if "map_mm_reported" in first else False,
                "veg_class": first["veg_class"],
                "veg_local": first["veg_local"],
                "litterfall_above_reported": first["litterfall_above"],
                "clay_pct_measured": _profile_clay(raw).reindex(first.index),
            }
        ).reset_index(drop=True)
        ft = load_forest_types(forest_types)
        missing = sorted(set(sites["profile_id"]) - set(ft["profile_id"]))
        if missing:
            raise ValueError(f"data/forest_types.csv: column 'profile_id': no row for profile(s) {missing}")
        ftx = ft.set_index("profile_id")
        for c in ("forest_type", "biome", "confidence", "rationale"):
            sites[c if c != "confidence" else "forest_type_confidence"] = sites["profile_id"].map(ftx[c]).to_numpy()
        return sites.rename(columns={"rationale": "forest_type_rationale"})

    def prior_reasons(sites: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        # the review comes first: a profile in the exclusion table is counted there even if another filter applies
        review = excluded.set_index("profile_id")
        reason = pd.Series("", index=sites.index, dtype=object)
        detail = pd.Series("", index=sites.index, dtype=object)
        by_review = sites["profile_id"].isin(review.index)
        reason[by_review] = f"excluded by review ({review_label})"
        for i in sites.index[by_review]:
            r = review.loc[sites.at[i, "profile_id"]]
            detail[i] = f"{r['reason']} ({r['evidence']})"
        return reason, detail

    keep, entries = _filter_layers(raw, fname, exclude_filled_bd=exclude_filled_bd)
    tables = _curate(
        raw,
        keep,
        entries,
        fname,
        site_prefix="he2016_",
        make_sites=make_sites,
        prior_reasons=prior_reasons,
        add_forcing=_add_forcing,
        deduplicate=deduplicate,
        qa=qa,
    )
    tables.log = pd.DataFrame(tables.log, columns=_LOG_COLUMNS)
    return tables
