"""ISRaD as a second source of real forest soil profiles: the reader.

The International Soil Radiocarbon Database (Lawrence et al. 2020, ESSD 12, 61–76, doi:10.5194/essd-12-61-2020)
in its ISRaD.extra build (von Fromm et al. 2024, doi:10.1111/gcb.17320) is read from four template tables in
a subfolder of the data folder (``israd_extra_2023-02-08/``: ``metadata.csv``, ``site.csv``, ``profile.csv``,
``layer.csv``; an R ``NA`` is an empty cell, ``Inf`` the text ``inf``), joined on
``entry_name`` → ``site_name`` → ``pro_name`` → ``lyr_name``.

The curation rules are in ``bayes_vmimics.io.israd_rules``, the site and layer tables in
``bayes_vmimics.io.israd_curation`` (:func:`~bayes_vmimics.io.israd_curation.build_israd_tables`).
ISRaD.extra's gap-filled values (``*_fill_extra``, ``*_filled`` columns) are never read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .datadir import DataFolderError, read_table, resolve_data_dir
from .qa import _csv_row, _require_columns, _require_numeric

#: Source key of the ISRaD profiles (``source`` column, ``build_site_tables(sources=...)``).
ISRAD_SOURCE = "israd"


#: Subfolders of the data folder holding ISRaD tables start with this (the newest by name is used).
ISRAD_DIR_PREFIX = "israd"
#: The four template tables read, and the columns each must have.
KEYS = ("entry_name", "site_name", "pro_name", "lyr_name")
REQUIRED_COLUMNS = {
    "metadata": ("entry_name", "doi", "bibliographical_reference"),
    "site": ("entry_name", "site_name", "site_lat", "site_long", "site_elevation"),
    "profile": (
        "entry_name",
        "site_name",
        "pro_name",
        "pro_lat",
        "pro_long",
        "pro_elevation",
        "pro_country",
        "pro_treatment",
        "pro_deforested",
        "pro_land_cover",
        "pro_lc_leaf_type",
        "pro_lc_phenology",
        "pro_veg_note",
        "pro_permafrost",
        "pro_peatland",
        "pro_MAT",
        "pro_MAP",
        "pro_usda_soil_order",
        "pro_BIO1_C_WC2.1",
        "pro_BIO12_mmyr_WC2.1",
        "pro_MAT_CRUTSv323",
        "pro_MAP_CRUTSv323",
        "pro_PET_mmyr",
        "pro_soilMoist_mm_TC",
        "pro_clay_0_cm_SG",
        "pro_clay_10_cm_SG",
        "pro_clay_30_cm_SG",
        "pro_bd_0_cm_SG",
        "pro_bd_10_cm_SG",
        "pro_bd_30_cm_SG",
        "pro_coarse_0_cm_SG",
        "pro_coarse_10_cm_SG",
        "pro_coarse_30_cm_SG",
        "pro_KG_present_short",
        "pro_0.5_USDA_soilorder",
        "pro_landCover_0.5_deg_MODISreclass1",
    ),
    "layer": (
        "entry_name",
        "site_name",
        "pro_name",
        "lyr_name",
        "lyr_obs_date_y",
        "lyr_all_org_neg",
        "lyr_top",
        "lyr_bot",
        "lyr_hzn",
        "lyr_bd_samp",
        "lyr_bd_tot",
        "lyr_c_org",
        "lyr_c_tot",
        "lyr_c_inorg",
        "lyr_ph_h2o",
        "lyr_ph",
        "lyr_ph_cacl",
        "lyr_14c",
        "lyr_fraction_modern",
        "lyr_clay_tot_psa",
        "lyr_n_tot",
    ),
}
#: Numeric columns (parsed as floats; ``inf`` allowed, any other text an error naming file, row and column).
NUMERIC_COLUMNS = {
    "site": ("site_lat", "site_long", "site_elevation"),
    "profile": tuple(
        c
        for c in REQUIRED_COLUMNS["profile"]
        if c.startswith(("pro_lat", "pro_long", "pro_elevation", "pro_deforested", "pro_MAT", "pro_MAP"))
        or c.endswith(("_WC2.1", "_SG", "_CRUTSv323", "_mmyr", "_TC"))
    ),
    "layer": (
        "lyr_obs_date_y",
        "lyr_top",
        "lyr_bot",
        "lyr_bd_samp",
        "lyr_bd_tot",
        "lyr_c_org",
        "lyr_c_tot",
        "lyr_c_inorg",
        "lyr_ph_h2o",
        "lyr_ph",
        "lyr_ph_cacl",
        "lyr_14c",
        "lyr_fraction_modern",
        "lyr_clay_tot_psa",
        "lyr_n_tot",
    ),
}


# --------------------------------------------------------------------------------------------------
# reader
# --------------------------------------------------------------------------------------------------
@dataclass
class IsradTables:
    """The four ISRaD template tables as read (columns ``REQUIRED_COLUMNS``; index = 0-based data row).

    Attributes:
        folder: the folder read (path).
        metadata, site, profile, layer: the tables (DataFrames).
    """

    folder: Path
    metadata: pd.DataFrame
    site: pd.DataFrame
    profile: pd.DataFrame
    layer: pd.DataFrame


def find_israd_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The newest ISRaD subfolder of the data folder (``israd*``, newest = last by name), or None.

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).

    Returns:
        The folder (path), or None when the data folder has no ``israd*`` subfolder.
    """
    folder = resolve_data_dir(data_dir)
    dirs = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.lower().startswith(ISRAD_DIR_PREFIX))
    return dirs[-1] if dirs else None


def _read_table(folder: Path, name: str) -> pd.DataFrame:
    path = folder / f"{name}.csv"
    if not path.is_file():
        raise DataFolderError(f"ISRaD table {path.name!r} not found in {str(folder)!r}; see data/README.md §6")
    need = REQUIRED_COLUMNS[name]
    header = read_table(path, nrows=0).columns
    _require_columns(pd.DataFrame(columns=header), path, need)
    # R NA is an empty cell; a key such as "NA" or "null" stays text
    df = pd.read_csv(path, usecols=list(need), keep_default_na=False, na_values=[""], dtype=str)
    df = _require_numeric(df, path, NUMERIC_COLUMNS.get(name, ()))
    keys = [k for k in KEYS if k in df.columns]
    empty = df[keys].isna().any(axis=1)
    if empty.any():
        i = empty.idxmax()
        col = next(k for k in keys if pd.isna(df.at[i, k]))
        raise ValueError(f"{path}: row {_csv_row(i)}, column {col!r}: empty key")
    dup = df.duplicated(keys)
    if name == "metadata":  # an entry may have two metadata rows (Gaudinski_2001): the first is used
        df = df[~dup]
    elif dup.any():
        i = dup.idxmax()
        raise ValueError(f"{path}: row {_csv_row(i)}, columns {keys}: duplicate key {tuple(df.loc[i, keys])}")
    df.attrs["path"] = str(path)
    return df


def read_israd(data_dir: str | os.PathLike | None = None, *, israd_dir: str | os.PathLike | None = None):
    """Read and check the four ISRaD template tables.

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path); its newest ``israd*`` subfolder
            is read.
        israd_dir: read this folder instead (path).

    Returns:
        ``IsradTables``.

    Raises:
        DataFolderError: no ISRaD folder, or a table missing (the message names it).
        ValueError: a missing column, a non-numeric value, an empty or duplicate key, or a row whose parent
            (layer → profile → site → entry) is missing, naming file, row and column.
    """
    if israd_dir is not None:
        folder = Path(israd_dir).expanduser().resolve()
        if not folder.is_dir():
            raise DataFolderError(f"ISRaD folder {str(folder)!r} does not exist")
    else:
        folder = find_israd_dir(data_dir)
        if folder is None:
            raise DataFolderError(
                f"no {ISRAD_DIR_PREFIX}* subfolder in data folder {str(resolve_data_dir(data_dir))!r}; "
                "see data/README.md §6"
            )
    t = {name: _read_table(folder, name) for name in REQUIRED_COLUMNS}
    for child, parent, keys in (
        ("layer", "profile", list(KEYS[:3])),
        ("profile", "site", list(KEYS[:2])),
        ("site", "metadata", list(KEYS[:1])),
    ):
        have = pd.MultiIndex.from_frame(t[parent][keys])
        orphan = ~pd.MultiIndex.from_frame(t[child][keys]).isin(have)
        if orphan.any():
            i = int(np.argmax(orphan))
            raise ValueError(
                f"{t[child].attrs['path']}: row {_csv_row(i)}, column {keys[-1]!r}: no row "
                f"{tuple(t[child].loc[i, keys])} in {parent}.csv"
            )
    return IsradTables(folder, t["metadata"], t["site"], t["profile"], t["layer"])
