"""ISRaD as a second source of real forest soil profiles: reader and curation as code.

The International Soil Radiocarbon Database (Lawrence et al. 2020, ESSD 12, 61–76, doi:10.5194/essd-12-61-2020)
in its ISRaD.extra build (von Fromm et al. 2024, doi:10.1111/gcb.17320) is read from four template tables in
a subfolder of the data folder (``israd_extra_2023-02-08/``: ``metadata.csv``, ``site.csv``, ``profile.csv``,
``layer.csv``; an R ``NA`` is an empty cell, ``Inf`` the text ``inf``), joined on
``entry_name`` → ``site_name`` → ``pro_name`` → ``lyr_name``.

The curation turns them into site and layer tables with the columns of the He et al. (2016) tables of
:func:`bayes_vmimics.io.sites.build_site_tables` (plus ``entry_name``, ``pro_name``, the gridded covariates and
the ``*_source`` columns), and then applies the same layer filters, QA rules and pseudo-replicate rules
(``sites._curate``). Each ISRaD-specific rule is a function below, documented in ``data/README.md`` §6:

* :func:`mineral_depths` — organic horizons are not mineral layers (negative depths, and organic horizons
  recorded at positive depths where ``lyr_all_org_neg`` is not "yes", which shift the profile);
* :func:`infinite_depths`, :func:`point_depths` — ``inf`` depths and layers without thickness are excluded with
  a reason;
* :func:`organic_carbon` with :func:`carbonate_free` — ``lyr_c_org``, else ``lyr_c_tot`` where carbonate is
  ruled out;
* :func:`bulk_density` — ``lyr_bd_samp``, else ``lyr_bd_tot``;
* :func:`f14c_values` — ``lyr_fraction_modern``, else Δ14C (``lyr_14c``) with the sampling year;
* :func:`profile_exclusions` — not forest, treatment, deforested;
* :func:`assign_forest_types` — the forest-type table ``data/israd_forest_types.csv``, never guessed;
* :func:`overlapping_profiles` — profiles whose candidate layers overlap are not one profile;
* :func:`israd_site_ids` — filesystem-safe, unique and stable ids ``israd_<entry>__<site>__<profile>``;
* :func:`gridded_covariates` — ISRaD.extra's covariates with names and units.

ISRaD.extra's gap-filled values (``*_fill_extra``, ``*_filled`` columns) are never read.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atmosphere import d14c_to_f14c
from .datadir import DataFolderError, read_table, resolve_data_dir
from .sites import (
    _LOG_COLUMNS,
    DUPLICATE_DECIMALS,
    DUPLICATE_REASON,
    FOUR_TYPES,
    HE2016_SOURCE,
    ISRAD_SOURCE,
    MIN_LAYERS,
    PROJECT_DATA_DIR,
    QA_DUPLICATE,
    QA_RULES,
    SiteTables,
    _add_forcing,
    _attach_qa_flags,
    _csv_row,
    _curate,
    _filter_layers,
    _profile_clay,
    _qa_table,
    _require_columns,
    _require_numeric,
)

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
#: ``pro_land_cover`` value of the forest profiles (the only candidates for the four forest types).
FOREST_LAND_COVER = "forest"
#: ``pro_treatment`` value of undisturbed profiles; any other value is a treatment.
CONTROL_TREATMENT = "control"
#: Carbonate rule of :func:`carbonate_free`: ``lyr_c_inorg`` must be 0 or empty and the pH below these
#: (water or unspecified pH: 7.0; CaCl₂ pH, about 0.5 lower than in water: 6.5), or empty.
CARBONATE_PH_WATER = 7.0
CARBONATE_PH_CACL2 = 6.5
#: The ISRaD forest-type table (written from the source publications by a reviewer; applied verbatim).
FOREST_TYPE_FILE = "israd_forest_types.csv"
FOREST_TYPE_COLUMNS = ("entry_name", "site_name", "pro_name", "forest_type", "evidence", "confidence")
#: The committed He–ISRaD matches (``bayes_vmimics.io.matching.match_he_israd``).
MATCH_FILE = "source_matches.csv"
MATCH_COLUMNS = ("he_site_id", "entry_name", "site_name", "pro_name", "distance_km", "evidence")
#: ``match`` values of the matches table (``bayes_vmimics.io.matching``): the same profile in both sources (the He
#: profile is used, the ISRaD one is not), or a profile of the same study nearby (both may be used; the He
#: profile borrows the gridded covariates). A table without a ``match`` column holds same-profile pairs only.
MATCH_SAME_PROFILE = "same profile"
MATCH_NEARBY = "same study nearby"
#: Profile reason of the ISRaD profile of a matched pair; ``{he}`` is the He et al. site id.
SAME_PROFILE_REASON = "same profile as {he}"
#: Longest slug of an ISRaD site id before a hash replaces the tail (characters).
SITE_ID_MAX = 96
#: QA rules of this source (decision "flag"; appended to ``sites.QA_RULES``).
QA_PERMAFROST = "permafrost_profile"
QA_PEATLAND = "peatland_profile"
#: The gridded covariates (ISRaD.extra) as site columns: new name → (ISRaD column, units, product).
COVARIATES = {
    "mat_c_wc2": ("pro_BIO1_C_WC2.1", "°C", "WorldClim 2.1 BIO1"),
    "map_mm_wc2": ("pro_BIO12_mmyr_WC2.1", "mm yr-1", "WorldClim 2.1 BIO12"),
    "mat_c_cru": ("pro_MAT_CRUTSv323", "°C", "CRU TS 3.23"),
    "map_mm_cru": ("pro_MAP_CRUTSv323", "mm yr-1", "CRU TS 3.23"),
    "pet_mm_yr": ("pro_PET_mmyr", "mm yr-1", "ISRaD.extra PET"),
    "soil_moisture_mm_tc": ("pro_soilMoist_mm_TC", "mm", "TerraClimate"),
    "koppen_present": ("pro_KG_present_short", "-", "Beck et al. 2018 Köppen-Geiger"),
    "soil_order_usda_grid": ("pro_0.5_USDA_soilorder", "-", "USDA soil order, 0.5 deg grid"),
    "land_cover_modis_05deg": ("pro_landCover_0.5_deg_MODISreclass1", "-", "MODIS land cover, 0.5 deg"),
}
#: Covariate columns derived from SoilGrids/LandGIS at 0, 10 and 30 cm (trapezoidal mean over 0–30 cm).
SOILGRIDS_COLUMNS = ("clay_fraction_sg", "bd_g_cm3_sg", "coarse_vol_pct_sg")
#: All covariate columns a site gets from its ISRaD profile (also a matched He profile).
COVARIATE_COLUMNS = (*COVARIATES, *SOILGRIDS_COLUMNS, "soil_order_usda")


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


# --------------------------------------------------------------------------------------------------
# curation rules, each a function
# --------------------------------------------------------------------------------------------------
def israd_site_ids(keys: pd.DataFrame) -> pd.Series:
    """Site ids of ISRaD profiles: ``israd_<entry>__<site>__<profile>``, filesystem-safe, unique and stable.

    Each part is lower-cased and every run of characters outside ``a-z0-9`` becomes ``_``. An id longer than
    ``SITE_ID_MAX`` is cut and ends in ``_`` + the first 8 hex digits of the SHA-1 of ``entry|site|profile``;
    ids that still collide (two profiles with the same slug) all get that hash. The id depends only on the
    profile's own keys and on which other profiles share its slug.

    Args:
        keys: DataFrame with ``entry_name``, ``site_name``, ``pro_name`` (text).

    Returns:
        The ids (text), aligned with ``keys``.
    """

    def slug(x) -> str:
        return re.sub(r"[^a-z0-9]+", "_", str(x).lower()).strip("_") or "x"

    full = keys["entry_name"].astype(str) + "|" + keys["site_name"].astype(str) + "|" + keys["pro_name"].astype(str)
    digest = full.map(lambda s: hashlib.sha1(s.encode("utf-8")).hexdigest()[:8])
    base = (
        "israd_" + keys["entry_name"].map(slug) + "__" + keys["site_name"].map(slug) + "__" + keys["pro_name"].map(slug)
    )
    long = base.str.len() > SITE_ID_MAX
    base = base.where(~long, base.str[:SITE_ID_MAX] + "_" + digest)
    clash = base.duplicated(keep=False) & ~long
    return base.where(~clash, base + "_" + digest)


def infinite_depths(layer: pd.DataFrame) -> pd.Series:
    """Rule: a layer with an infinite (``inf``) or missing top or bottom depth is excluded (no depth interval).

    Args:
        layer: ISRaD layer rows with ``lyr_top``, ``lyr_bot`` (cm).

    Returns:
        True where the layer has no finite depth interval (bool Series).
    """
    return ~(np.isfinite(layer["lyr_top"]) & np.isfinite(layer["lyr_bot"]))


def point_depths(layer: pd.DataFrame) -> pd.Series:
    """Rule: a layer whose bottom is not below its top (``lyr_bot`` ≤ ``lyr_top``, e.g. a point sample of a peat
    core at 6–6 cm) has no thickness and is excluded.

    Args:
        layer: ISRaD layer rows with finite ``lyr_top``, ``lyr_bot`` (cm).

    Returns:
        True where the layer has no positive thickness (bool Series).
    """
    return layer["lyr_bot"] <= layer["lyr_top"]


def mineral_depths(layer: pd.DataFrame) -> pd.DataFrame:
    """Depths below the mineral-soil surface, and the organic horizons that are not mineral layers.

    ISRaD records organic horizons with negative depths (0 cm = mineral surface) where ``lyr_all_org_neg`` is
    "yes". Rule: in every profile, a layer with bottom ≤ 0 is organic; in a profile where ``lyr_all_org_neg``
    is not "yes" and no layer lies above 0, the layers from the top of the profile down whose horizon label
    (``lyr_hzn``) starts with "O" are organic horizons recorded at positive depths: the profile's depths are shifted
    up by the bottom of the lowest of them, so that they end at 0 (and are dropped as organic) and the mineral
    surface is 0. Rows with infinite depths are left as they are (see :func:`infinite_depths`).

    Args:
        layer: ISRaD layer rows with the keys, ``lyr_top``, ``lyr_bot`` (cm), ``lyr_all_org_neg``, ``lyr_hzn``.

    Returns:
        DataFrame aligned with ``layer``: ``top_cm``, ``bottom_cm`` (cm below the mineral-soil surface),
        ``shift_cm`` (cm subtracted; 0 for most), ``organic`` (bool: bottom ≤ 0 after the shift).
    """
    top, bot = layer["lyr_top"].astype(float), layer["lyr_bot"].astype(float)
    not_neg = layer["lyr_all_org_neg"].fillna("").astype(str).str.strip().str.lower() != "yes"
    o_label = layer["lyr_hzn"].fillna("").astype(str).str.strip().str.match(r"^O")
    finite = np.isfinite(top) & np.isfinite(bot)
    shift = pd.Series(0.0, index=layer.index)
    keys = list(KEYS[:3])
    # a profile with layers above 0 already counts depths from the mineral surface
    has_neg = (top < 0).groupby([layer[k] for k in keys]).transform("any")
    cand = finite & not_neg & (top >= 0) & ~has_neg
    for _, g in layer[cand].assign(_t=top[cand]).sort_values("_t").groupby(keys, sort=False):
        n = 0
        for j in g.index:
            if not o_label[j]:
                break
            n += 1
        if n:
            shift[layer[keys].eq(g.iloc[0][keys]).all(axis=1)] = float(bot[g.index[n - 1]])
    out = pd.DataFrame({"top_cm": top - shift, "bottom_cm": bot - shift, "shift_cm": shift}, index=layer.index)
    out["organic"] = out["bottom_cm"] <= 0
    return out


def carbonate_free(layer: pd.DataFrame) -> pd.Series:
    """Rule: carbonate is ruled out where ``lyr_c_inorg`` is 0 or empty and the pH is below 7 or absent.

    The pH is ``lyr_ph_h2o``, else ``lyr_ph`` (method unspecified, taken as water), compared with
    ``CARBONATE_PH_WATER`` (7.0), else ``lyr_ph_cacl`` compared with ``CARBONATE_PH_CACL2`` (6.5; CaCl₂ pH is
    about 0.5 below water pH). Forest mineral soils below pH 7 hold no carbonate; with no pH and no inorganic C
    the layer counts as carbonate-free (stated in ``data/README.md`` §6).

    Args:
        layer: ISRaD layer rows with ``lyr_c_inorg`` (% by mass), ``lyr_ph_h2o``, ``lyr_ph``, ``lyr_ph_cacl``
            (pH units).

    Returns:
        True where total C may be taken as organic C (bool Series).
    """
    inorg_ok = layer["lyr_c_inorg"].isna() | (layer["lyr_c_inorg"] == 0)
    ph_w = layer["lyr_ph_h2o"].fillna(layer["lyr_ph"])
    ph_ok = np.where(
        ph_w.notna(),
        ph_w < CARBONATE_PH_WATER,
        layer["lyr_ph_cacl"].isna() | (layer["lyr_ph_cacl"] < CARBONATE_PH_CACL2),
    )
    return inorg_ok & pd.Series(ph_ok, index=layer.index)


def organic_carbon(layer: pd.DataFrame) -> pd.DataFrame:
    """Organic C concentration: ``lyr_c_org``, else ``lyr_c_tot`` where :func:`carbonate_free`.

    Args:
        layer: ISRaD layer rows with ``lyr_c_org``, ``lyr_c_tot`` (% by mass) and the columns of
            :func:`carbonate_free`.

    Returns:
        DataFrame aligned with ``layer``: ``soc_pct`` (% by mass; NaN where unknown), ``soc_source``
        ("lyr_c_org", "lyr_c_tot (carbonate-free)" or None) and ``carbonate_possible`` (bool: total C given,
        no organic C, carbonate not ruled out; such a layer has no SOC).
    """
    org, tot = layer["lyr_c_org"], layer["lyr_c_tot"]
    free = carbonate_free(layer)
    use_tot = org.isna() & tot.notna() & free
    soc = org.where(org.notna(), tot.where(use_tot))
    src = pd.Series(None, index=layer.index, dtype=object)
    src[org.notna()] = "lyr_c_org"
    src[use_tot] = "lyr_c_tot (carbonate-free)"
    return pd.DataFrame(
        {"soc_pct": soc, "soc_source": src, "carbonate_possible": org.isna() & tot.notna() & ~free},
        index=layer.index,
    )


def bulk_density(layer: pd.DataFrame) -> pd.DataFrame:
    """Bulk density: ``lyr_bd_samp`` (fine earth), else ``lyr_bd_tot`` (whole soil); never a filled value.

    Args:
        layer: ISRaD layer rows with ``lyr_bd_samp``, ``lyr_bd_tot`` (g cm⁻³).

    Returns:
        DataFrame aligned with ``layer``: ``bd_g_cm3`` (g cm⁻³; NaN where neither) and ``bd_source``.
    """
    samp, tot = layer["lyr_bd_samp"], layer["lyr_bd_tot"]
    src = pd.Series(None, index=layer.index, dtype=object)
    src[tot.notna()] = "lyr_bd_tot"
    src[samp.notna()] = "lyr_bd_samp"
    return pd.DataFrame({"bd_g_cm3": samp.fillna(tot), "bd_source": src}, index=layer.index)


def f14c_values(layer: pd.DataFrame) -> pd.DataFrame:
    """F14C per layer: ``lyr_fraction_modern``, else from Δ14C (``lyr_14c``) and the sampling year.

    Δ14C → F14C with :func:`bayes_vmimics.atmosphere.d14c_to_f14c` and ``lyr_obs_date_y`` (year AD).

    Args:
        layer: ISRaD layer rows with ``lyr_fraction_modern`` (fraction), ``lyr_14c`` (‰), ``lyr_obs_date_y``.

    Returns:
        DataFrame aligned with ``layer``: ``f14c`` (fraction modern), ``f14c_source`` ("fraction_modern",
        "d14c" or None) and ``d14c_permil`` (‰, as reported).
    """
    fm = layer["lyr_fraction_modern"].astype(float).copy()
    src = pd.Series(np.where(fm.notna(), "fraction_modern", None), index=layer.index, dtype=object)
    calc = fm.isna() & layer["lyr_14c"].notna() & layer["lyr_obs_date_y"].notna()
    if calc.any():
        fm[calc] = d14c_to_f14c(layer.loc[calc, "lyr_14c"], layer.loc[calc, "lyr_obs_date_y"])
        src[calc] = "d14c"
    return pd.DataFrame({"f14c": fm, "f14c_source": src, "d14c_permil": layer["lyr_14c"]}, index=layer.index)


def profile_exclusions(profile: pd.DataFrame) -> pd.Series:
    """Rule: only undisturbed forest profiles are candidates; the first reason that applies, in this order.

    * ``pro_land_cover`` is not "forest" (``FOREST_LAND_COVER``): not a forest profile;
    * ``pro_treatment`` is not "control": a treatment profile (experiment, fire, harvest …);
    * ``pro_deforested`` > 0 (%): disturbed.

    Args:
        profile: ISRaD profile rows with ``pro_land_cover``, ``pro_treatment``, ``pro_deforested`` (%).

    Returns:
        The reason (text; "" for a candidate), aligned with ``profile``.
    """
    reason = pd.Series("", index=profile.index, dtype=object)
    lc = profile["pro_land_cover"]
    not_forest = lc.fillna("") != FOREST_LAND_COVER
    reason[not_forest] = [f"land cover {x!r} (pro_land_cover), not forest" for x in lc[not_forest].fillna("empty")]
    tr = profile["pro_treatment"].fillna(CONTROL_TREATMENT)
    treated = (reason == "") & (tr != CONTROL_TREATMENT)
    reason[treated] = [f"treatment profile (pro_treatment = {x!r})" for x in tr[treated]]
    defo = (reason == "") & (profile["pro_deforested"] > 0)
    reason[defo] = [f"disturbed: pro_deforested = {x:g} %" for x in profile.loc[defo, "pro_deforested"]]
    return reason


def load_israd_forest_types(path: str | os.PathLike | pd.DataFrame | None = None) -> pd.DataFrame:
    """Read the ISRaD forest-type table (``data/israd_forest_types.csv``).

    Args:
        path: another table (path or DataFrame); default the repository's table.

    Returns:
        The table (columns ``FOREST_TYPE_COLUMNS``; empty ``site_name`` / ``pro_name`` as ""), or an empty table
        when the repository table does not exist yet.

    Raises:
        ValueError: a missing column, an empty entry or forest type, or two rows for the same key.
    """
    if isinstance(path, pd.DataFrame):
        t, p = path.copy(), Path("<DataFrame>")
    else:
        p = Path(path) if path is not None else PROJECT_DATA_DIR / FOREST_TYPE_FILE
        if path is None and not p.is_file():
            return pd.DataFrame(columns=list(FOREST_TYPE_COLUMNS))
        t = pd.read_csv(p, keep_default_na=False, na_values=[""], dtype=str)
    missing = [c for c in FOREST_TYPE_COLUMNS if c not in t.columns]
    if missing:
        raise ValueError(f"{p}: row 1 (header): missing column(s) {', '.join(repr(c) for c in missing)}")
    for c in ("entry_name", "forest_type"):
        empty = t[c].isna() | (t[c].astype(str).str.strip() == "")
        if empty.any():
            i = empty.idxmax()
            raise ValueError(f"{p}: row {_csv_row(i)}, column {c!r}: empty")
    for c in ("site_name", "pro_name"):
        t[c] = t[c].fillna("").astype(str)
    t["forest_type"] = t["forest_type"].astype(str).str.strip()
    dup = t.duplicated(["entry_name", "site_name", "pro_name"])
    if dup.any():
        i = dup.idxmax()
        raise ValueError(
            f"{p}: row {_csv_row(i)}, columns entry_name/site_name/pro_name: duplicate key "
            f"{tuple(t.loc[i, ['entry_name', 'site_name', 'pro_name']])}"
        )
    t.attrs["path"] = str(p)
    return t


def assign_forest_types(profile: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Forest type of each ISRaD profile from the forest-type table, never guessed.

    The most specific row applies: (entry, site, profile), else (entry, site, "") for every profile of the
    site, else (entry, "", "") for every profile of the entry.

    Args:
        profile: ISRaD profile rows with ``entry_name``, ``site_name``, ``pro_name``.
        table: :func:`load_israd_forest_types`.

    Returns:
        DataFrame aligned with ``profile``: ``forest_type`` (None where no row), ``forest_type_confidence``,
        ``forest_type_rationale`` (the evidence), ``forest_type_reason`` ("" for one of ``FOUR_TYPES``; else
        why the profile is not usable).
    """
    out = pd.DataFrame(index=profile.index, columns=["forest_type", "forest_type_confidence", "forest_type_rationale"])
    t = table.set_index(["entry_name", "site_name", "pro_name"])
    for level in (("site_name", "pro_name"), ("site_name",), ()):
        key = [profile["entry_name"]] + [
            profile[c] if c in level else pd.Series("", index=profile.index) for c in ("site_name", "pro_name")
        ]
        idx = pd.MultiIndex.from_arrays(key)
        hit = idx.isin(t.index) & out["forest_type"].isna().to_numpy()
        if hit.any():
            rows = t.loc[idx[hit]]
            out.loc[hit, "forest_type"] = rows["forest_type"].to_numpy()
            out.loc[hit, "forest_type_confidence"] = rows["confidence"].to_numpy()
            out.loc[hit, "forest_type_rationale"] = rows["evidence"].to_numpy()
    ft = out["forest_type"]
    reason = pd.Series("", index=profile.index, dtype=object)
    reason[ft.isna()] = f"no forest type in data/{FOREST_TYPE_FILE} (not guessed)"
    other = ft.notna() & ~ft.isin(FOUR_TYPES)
    reason[other] = [f"forest type {x} (not one of {', '.join(FOUR_TYPES)})" for x in ft[other]]
    out["forest_type_reason"] = reason
    return out


def overlapping_profiles(layers: pd.DataFrame) -> dict:
    """Rule: a profile whose candidate layers overlap in depth is not one profile (replicate or nested samples).

    Args:
        layers: candidate layers with ``profile_id``, ``top_cm``, ``bottom_cm`` (cm below the mineral surface).

    Returns:
        {profile_id: reason} of the profiles with two overlapping layers (the first pair named).
    """
    found = {}
    for pid, g in layers.sort_values(["profile_id", "top_cm", "bottom_cm"]).groupby("profile_id", sort=True):
        t, b = g["top_cm"].to_numpy(float), g["bottom_cm"].to_numpy(float)
        for k in range(1, len(g)):
            if t[k] < b[k - 1] - 1e-6:
                found[pid] = (
                    f"overlapping layers ({t[k - 1]:g}-{b[k - 1]:g} and {t[k]:g}-{b[k]:g} cm): replicate or nested "
                    "samples, not one profile"
                )
                break
    return found


def gridded_covariates(profile: pd.DataFrame) -> pd.DataFrame:
    """ISRaD.extra's gridded covariates of each profile, with names and units (``COVARIATES``).

    SoilGrids/LandGIS values at 0, 10 and 30 cm are averaged over 0–30 cm by the trapezoidal rule,
    (5 x₀ + 15 x₁₀ + 10 x₃₀) / 30: ``clay_fraction_sg`` (clay %, / 100: fraction 0–1), ``bd_g_cm3_sg`` (bulk
    density in 10 kg m⁻³ = cg cm⁻³, / 100: g cm⁻³), ``coarse_vol_pct_sg`` (coarse fragments, % by volume).
    ``soil_order_usda`` is the reported ``pro_usda_soil_order``.

    Args:
        profile: ISRaD profile rows with the columns of ``COVARIATES`` and ``pro_{clay,bd,coarse}_{0,10,30}_cm_SG``.

    Returns:
        DataFrame aligned with ``profile``, columns ``COVARIATE_COLUMNS``.
    """
    out = pd.DataFrame({new: profile[old] for new, (old, _, _) in COVARIATES.items()}, index=profile.index)

    def trap(var: str) -> pd.Series:
        x0, x10, x30 = (profile[f"pro_{var}_{d}_cm_SG"].astype(float) for d in (0, 10, 30))
        return (5.0 * x0 + 15.0 * x10 + 10.0 * x30) / 30.0

    out["clay_fraction_sg"] = trap("clay") / 100.0
    out["bd_g_cm3_sg"] = trap("bd") / 100.0
    out["coarse_vol_pct_sg"] = trap("coarse")
    out["soil_order_usda"] = profile["pro_usda_soil_order"]
    return out


def koppen_biome(koppen: pd.Series) -> pd.Series:
    """Biome of a Köppen–Geiger class: A tropical, B arid, C temperate, D..a/b temperate, D..c/d boreal, E polar.

    Args:
        koppen: short Köppen–Geiger codes (text, e.g. "Dfc").

    Returns:
        The biome (text; None where the code is empty).
    """

    def one(k) -> str | None:
        if not isinstance(k, str) or not k:
            return None
        if k[0] == "D":
            return "boreal" if k[-1] in "cd" else "temperate"
        return {"A": "tropical", "B": "arid", "C": "temperate", "E": "polar"}.get(k[0])

    return koppen.map(one)


# --------------------------------------------------------------------------------------------------
# the ISRaD tables
# --------------------------------------------------------------------------------------------------
def load_source_matches(path: str | os.PathLike | pd.DataFrame | bool | None = None) -> pd.DataFrame:
    """He–ISRaD matches (``data/source_matches.csv``, written by ``data/source_matches.py``).

    Args:
        path: another table (path or DataFrame), None for the repository table (empty if absent), False for none.

    Returns:
        The matches: at least ``MATCH_COLUMNS`` and ``match`` (``MATCH_SAME_PROFILE`` where the table has no
        such column), keys as text, ``distance_km`` (km) numeric, sorted by ``distance_km``.

    Raises:
        ValueError: a missing column, an unknown ``match`` value, or an ISRaD profile in two same-profile pairs.
    """
    if path is False:
        return pd.DataFrame(columns=[*MATCH_COLUMNS, "match"])
    if isinstance(path, pd.DataFrame):
        m, p = path.copy(), Path("<DataFrame>")
    else:
        p = Path(path) if path is not None else PROJECT_DATA_DIR / MATCH_FILE
        if path is None and not p.is_file():
            return pd.DataFrame(columns=[*MATCH_COLUMNS, "match"])
        m = pd.read_csv(p, keep_default_na=False, na_values=[""], dtype=str)
    missing = [c for c in MATCH_COLUMNS if c not in m.columns]
    if missing:
        raise ValueError(f"{p}: row 1 (header): missing column(s) {', '.join(repr(c) for c in missing)}")
    if "match" not in m.columns:
        m["match"] = MATCH_SAME_PROFILE
    bad = ~m["match"].isin([MATCH_SAME_PROFILE, MATCH_NEARBY])
    if bad.any():
        i = bad.idxmax()
        raise ValueError(f"{p}: row {_csv_row(i)}, column 'match': {m.at[i, 'match']!r} not a known match")
    for c in ("entry_name", "site_name", "pro_name"):
        m[c] = m[c].fillna("").astype(str)
    same = m[m["match"] == MATCH_SAME_PROFILE]
    dup = same.duplicated(["entry_name", "site_name", "pro_name"])
    if dup.any():
        i = dup.idxmax()
        raise ValueError(
            f"{p}: row {_csv_row(i)}, column 'pro_name': ISRaD profile "
            f"{tuple(same.loc[i, ['entry_name', 'site_name', 'pro_name']])} is the same profile as two He profiles"
        )
    m["distance_km"] = pd.to_numeric(m["distance_km"], errors="coerce")
    return m.sort_values("distance_km", kind="stable").reset_index(drop=True)


def israd_profiles(t: IsradTables) -> pd.DataFrame:
    """The profile table joined with site and metadata, with ``site_id`` and the covariates.

    Args:
        t: :func:`read_israd`.

    Returns:
        One row per ISRaD profile (profile.csv order).
    """
    keys = list(KEYS[:3])
    p = t.profile.merge(t.site, on=list(KEYS[:2]), how="left", validate="many_to_one")
    p = p.merge(t.metadata, on="entry_name", how="left", validate="many_to_one")
    p["site_id"] = israd_site_ids(p[keys]).to_numpy()
    p["lat"] = p["pro_lat"].fillna(p["site_lat"])
    p["lon"] = p["pro_long"].fillna(p["site_long"])
    p["elevation_m"] = p["pro_elevation"].fillna(p["site_elevation"])
    cov = gridded_covariates(p)
    return pd.concat([p, cov], axis=1)


def build_israd_tables(
    data_dir: str | os.PathLike | None = None,
    *,
    israd_dir: str | os.PathLike | None = None,
    forest_types: str | os.PathLike | pd.DataFrame | None = None,
    matches: str | os.PathLike | pd.DataFrame | bool | None = False,
    he_sites: pd.DataFrame | None = None,
    deduplicate: bool = True,
    qa: bool = True,
) -> SiteTables:
    """The ISRaD site and layer tables, curated by the rules of this module and of ``sites`` (data/README.md §6).

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).
        israd_dir: the ISRaD folder (path); default the newest ``israd*`` subfolder.
        forest_types: the forest-type table (path or DataFrame); default ``data/israd_forest_types.csv``.
        matches: He–ISRaD matches (path, DataFrame, None for ``data/source_matches.csv``, False for none); a
            matched ISRaD profile is not usable ("same profile as he2016_N").
        he_sites: the He et al. sites table, to say in the log whether the matched He profile is usable.
        deduplicate, qa: as :func:`bayes_vmimics.io.sites.build_site_tables` (bool).

    Returns:
        ``SiteTables`` with every ISRaD profile in ``sites`` (``source`` = "israd"; non-forest profiles with their
        reason only), the kept mineral layers of the forest profiles in ``layers``, the exclusions in ``log``
        and the QA findings in ``qa``.
    """
    t = read_israd(data_dir, israd_dir=israd_dir)
    fname = f"{t.folder.name}/layer.csv"
    prof = israd_profiles(t)
    keys = list(KEYS[:3])

    # profile reasons, in order: land cover / treatment / deforested, matched, forest type, overlapping layers
    reason = profile_exclusions(prof)
    ft = assign_forest_types(prof, load_israd_forest_types(forest_types))
    prof = pd.concat([prof, ft], axis=1)
    m = load_source_matches(matches)
    m = m[m["match"] == MATCH_SAME_PROFILE]
    he_usable = {} if he_sites is None else dict(zip(he_sites["site_id"], he_sites["usable"], strict=True))
    he_reason = {} if he_sites is None else dict(zip(he_sites["site_id"], he_sites["exclusion_reason"], strict=True))
    idx = pd.MultiIndex.from_frame(prof[keys].astype(str))
    hit = m.set_index(keys).reindex(idx)
    prof["he_match"] = hit["he_site_id"].to_numpy()
    prof["he_match_km"] = hit["distance_km"].to_numpy().astype(float)
    matched = prof["he_match"].notna() & (reason == "")
    for i in prof.index[matched]:
        he = prof.at[i, "he_match"]
        text = SAME_PROFILE_REASON.format(he=he)
        if he in he_usable and not he_usable[he]:
            text += f" (the he2016 profile is not usable either: {he_reason[he]})"
        reason[i] = text
    reason[(reason == "")] = prof.loc[reason == "", "forest_type_reason"]

    # layers of the forest profiles (the others are listed with their reason only)
    forest = prof["pro_land_cover"].fillna("") == FOREST_LAND_COVER
    lay = t.layer.rename_axis("_row").reset_index().merge(prof.loc[forest, [*keys, "site_id"]], on=keys, how="inner")
    lay = lay.set_index("_row").rename_axis(None)
    entries: list = []

    def log_layers(mask, column, reason_text):
        for i in lay.index[mask]:
            entries.append(
                dict(
                    file=fname,
                    row=_csv_row(i),
                    profile_id=lay.at[i, "site_id"],
                    column=column,
                    value=lay.at[i, column],
                    reason=reason_text,
                )
            )

    inf = infinite_depths(lay)
    log_layers(inf & np.isinf(lay["lyr_bot"]), "lyr_bot", "infinite depth (lyr_bot = inf): no depth interval")
    log_layers(inf & ~np.isinf(lay["lyr_bot"]), "lyr_top", "infinite or missing depth: no depth interval")
    lay = lay[~inf]
    point = point_depths(lay)
    log_layers(point, "lyr_bot", "no depth interval (lyr_bot <= lyr_top: a point sample)")
    lay = lay[~point]
    dep = mineral_depths(lay)
    shifted = dep[dep["shift_cm"] > 0].join(lay["site_id"]).groupby("site_id")["shift_cm"].first()
    for pid, s in shifted.items():
        entries.append(
            dict(
                file=fname,
                row=None,
                profile_id=pid,
                column="lyr_top",
                value=s,
                reason=f"depths shifted up by {s:g} cm: organic horizons recorded at positive depths "
                "(lyr_all_org_neg not 'yes')",
            )
        )
    c = organic_carbon(lay)
    bd = bulk_density(lay)
    f = f14c_values(lay)
    mineral = ~dep["organic"]
    log_layers(
        mineral & c["carbonate_possible"],
        "lyr_c_tot",
        "total C only and carbonate not ruled out (lyr_c_inorg > 0 or pH >= 7): no organic C",
    )
    zero = mineral & (c["soc_pct"] <= 0)
    log_layers(zero, "lyr_c_org", "SOC <= 0 (treated as missing: a relative error is meaningless)")
    drop = (mineral & c["carbonate_possible"]) | zero
    lay, dep, c, bd, f = (x[~drop] for x in (lay, dep, c, bd, f))

    raw = pd.DataFrame(
        {
            "profile_id": lay["site_id"],
            "dataset": lay["entry_name"],
            "horizon": lay["lyr_hzn"],
            "top_cm_mineral0": dep["top_cm"],
            "bottom_cm_mineral0": dep["bottom_cm"],
            "sample_year": lay["lyr_obs_date_y"].astype(float),
            "d14c_permil": f["d14c_permil"],
            "f14c_reported": np.nan,
            "f14c_from_d14c": f["f14c"],  # the value of f14c_values (fraction modern first), kept by the core
            "soc_pct": c["soc_pct"],
            "soc_pct_reported": c["soc_pct"],
            "bd_g_cm3": bd["bd_g_cm3"],
            "bd_is_filled": False,
            "clay_pct": lay["lyr_clay_tot_psa"],
            "n_pct": lay["lyr_n_tot"],
            "soc_source": c["soc_source"],
            "bd_source": bd["bd_source"],
            "f14c_source_israd": f["f14c_source"],
        },
        index=lay.index,
    )
    raw = raw.sort_values(["profile_id", "top_cm_mineral0", "bottom_cm_mineral0"], kind="stable")
    keep, more = _filter_layers(raw, fname, exclude_filled_bd=False)
    entries.extend(more)
    overlap = overlapping_profiles(
        raw[keep].rename(columns={"top_cm_mineral0": "top_cm", "bottom_cm_mineral0": "bottom_cm"})
    )
    row_of = pd.Series(prof.index, index=prof["site_id"])
    for pid, text in overlap.items():
        if reason[row_of[pid]] == "":
            reason[row_of[pid]] = text

    pinfo = prof.set_index("site_id")

    def make_sites(first: pd.DataFrame) -> pd.DataFrame:
        p = pinfo.loc[first.index]
        sy = raw.groupby("profile_id")["sample_year"].min().reindex(first.index)
        mat_rep = p["pro_MAT"].notna()
        map_rep = p["pro_MAP"].notna()
        sites = pd.DataFrame(
            {
                "site_id": first.index,
                "profile_id": first.index,
                "source": ISRAD_SOURCE,
                "source_reference": "ISRaD " + p["entry_name"] + " (Lawrence et al. 2020, doi:10.5194/essd-12-61-2020)",
                "dataset": p["entry_name"],
                "doi": p["doi"],
                "site_name": p["site_name"],
                "country": p["pro_country"],
                "lat": p["lat"],
                "lon": p["lon"],
                "elevation_m": p["elevation_m"],
                "sample_year": sy,
                "mat_c": p["pro_MAT"].fillna(p["mat_c_wc2"]),
                "mat_is_reported": mat_rep,
                "mat_source": np.where(mat_rep, "reported (pro_MAT)", "WorldClim 2.1 BIO1 (gridded)"),
                "map_mm": p["pro_MAP"].fillna(p["map_mm_wc2"]),
                "map_is_reported": map_rep,
                "map_source": np.where(map_rep, "reported (pro_MAP)", "WorldClim 2.1 BIO12 (gridded)"),
                "veg_class": p["pro_land_cover"],
                "veg_local": _veg_text(p),
                "litterfall_above_reported": np.nan,
                "clay_pct_measured": _profile_clay(raw).reindex(first.index),
                "forest_type": p["forest_type"],
                "biome": koppen_biome(p["koppen_present"]),
                "forest_type_confidence": p["forest_type_confidence"],
                "forest_type_rationale": p["forest_type_rationale"],
                **{c: p[c] for c in COVARIATE_COLUMNS},
            }
        ).reset_index(drop=True)
        return sites

    def prior(sites: pd.DataFrame):
        r = sites["profile_id"].map(pd.Series(reason.to_numpy(), index=prof["site_id"])).fillna("")
        return r.astype(object), pd.Series("", index=sites.index, dtype=object)

    tables = _curate(
        raw,
        keep,
        entries,
        fname,
        site_prefix="",
        make_sites=make_sites,
        prior_reasons=prior,
        add_forcing=_israd_forcing,
        deduplicate=deduplicate,
        qa=qa,
    )
    sites, layers, entries = tables.sites, tables.layers, tables.log
    # the ISRaD columns of each kept layer
    layers["f14c_source"] = raw.loc[raw.index[keep], "f14c_source_israd"].to_numpy()
    layers["soc_source"] = raw.loc[raw.index[keep], "soc_source"].to_numpy()
    layers["bd_source"] = raw.loc[raw.index[keep], "bd_source"].to_numpy()
    layers["obs_year"] = raw.loc[raw.index[keep], "sample_year"].to_numpy()
    layers["source"] = ISRAD_SOURCE

    # profiles with no processed layer: non-forest profiles, forest profiles without layers
    rest = prof[~prof["site_id"].isin(sites["site_id"])]
    if len(rest):
        r = reason[rest.index].where(reason[rest.index] != "", "no mineral layers in layer.csv")
        extra = pd.DataFrame(
            {
                "site_id": rest["site_id"],
                "profile_id": rest["site_id"],
                "source": ISRAD_SOURCE,
                "dataset": rest["entry_name"],
                "doi": rest["doi"],
                "site_name": rest["site_name"],
                "country": rest["pro_country"],
                "lat": rest["lat"],
                "lon": rest["lon"],
                "elevation_m": rest["elevation_m"],
                "veg_class": rest["pro_land_cover"],
                "forest_type": rest["forest_type"],
                "in_four_types": rest["forest_type"].isin(FOUR_TYPES),
                "n_layers": 0,
                "n_layers_c14": 0,
                "has_c14": False,
                "usable": False,
                "exclusion_reason": r,
            }
        )
        for i, row in extra.iterrows():
            entries.append(
                dict(
                    file=f"{t.folder.name}/profile.csv",
                    row=_csv_row(i),
                    profile_id=row["site_id"],
                    column=None,
                    value=None,
                    reason=f"profile: {row['exclusion_reason']}",
                )
            )
        sites = pd.concat([sites, extra], ignore_index=True)

    # ISRaD keys, flags and covariates on every site
    info = prof.set_index("site_id")
    for c in ("entry_name", "pro_name"):
        sites[c] = sites["site_id"].map(info[c])
    sites["permafrost"] = sites["site_id"].map(info["pro_permafrost"].fillna("").str.lower().eq("yes"))
    sites["peatland"] = sites["site_id"].map(info["pro_peatland"].fillna("").str.lower().eq("yes"))
    sites["he_match"] = sites["site_id"].map(info["he_match"])
    sites["he_match_km"] = sites["site_id"].map(info["he_match_km"])
    for c in COVARIATE_COLUMNS:
        sites[c] = sites["site_id"].map(info[c])
    sites["split"] = None

    q = tables.qa
    if qa:
        rows = []
        u = sites[sites["usable"]]
        for rule, col, text in (
            (QA_PERMAFROST, "permafrost", "pro_permafrost = yes"),
            (QA_PEATLAND, "peatland", "pro_peatland = yes"),
        ):
            for i in u.index[u[col].astype(bool)]:
                rows.append((u.at[i, "profile_id"], "profile", None, rule, text))
        if rows:
            q = pd.concat([q, _qa_table(rows, sites)], ignore_index=True)
            order = {r: k for k, r in enumerate(QA_RULES)}
            q = q.assign(_r=q["rule"].map(order)).sort_values(["_r", "profile_id"], kind="stable")
            q = q.drop(columns="_r").reset_index(drop=True)
            _attach_qa_flags(layers, q)
    return SiteTables(sites=sites, layers=layers, log=pd.DataFrame(entries, columns=_LOG_COLUMNS), qa=q)


def _veg_text(p: pd.DataFrame) -> pd.Series:
    parts = [p["pro_lc_leaf_type"], p["pro_lc_phenology"], p["pro_veg_note"]]
    return pd.Series(
        ["; ".join(str(x) for x in xs if isinstance(x, str) and x) or None for xs in zip(*parts, strict=True)],
        index=p.index,
    )


def _israd_forcing(sites: pd.DataFrame, entries: list, fname: str) -> pd.DataFrame:
    """The He et al. forcing rules (:func:`sites._add_forcing`) with ISRaD's gridded values where a measured
    value is missing: clay from SoilGrids 0–30 cm before the forest-type median, each recorded in ``*_source``."""
    s = _add_forcing(sites, entries, fname)
    sg = s["clay_fraction_sg"].astype(float)
    use = ~s["clay_is_measured"] & sg.notna()
    s.loc[use, "clay_pct"] = 100.0 * sg[use]
    s.loc[use, "clay_source"] = "SoilGrids 0-30 cm (gridded, pro_clay_*_cm_SG; no measured clay)"
    s["soil_temperature_source"] = "MAT (" + s["mat_source"] + "); Wang et al. 2021 used daily GSWP3 air temperature"
    return s


def combine_tables(he: SiteTables, isr: SiteTables, matches: pd.DataFrame | None = None) -> SiteTables:
    """He et al. and ISRaD tables in one: He rows first, unchanged, with their ISRaD match and its covariates.

    A He profile in ``matches`` gets ``israd_site_id``, ``israd_match`` ("same profile" or "same study nearby"),
    ``israd_match_km`` (km), ``entry_name``, ``pro_name`` and the gridded covariates of that ISRaD profile
    (``COVARIATE_COLUMNS``); its forcing is unchanged. Layers get ``source`` and ``obs_year`` (year AD).

    Args:
        he: the He et al. tables (SiteTables).
        isr: :func:`build_israd_tables` (SiteTables).
        matches: :func:`load_source_matches` (DataFrame; None or empty: no match).

    Returns:
        ``SiteTables`` of both sources.
    """
    hs = he.sites.copy()
    keys = ["entry_name", "site_name", "pro_name"]
    for c in ("israd_site_id", "israd_match", "entry_name", "pro_name"):
        hs[c] = None
    hs["israd_match_km"] = np.nan
    for c in COVARIATE_COLUMNS:
        hs[c] = (
            np.nan
            if c not in ("koppen_present", "soil_order_usda_grid", "land_cover_modis_05deg", "soil_order_usda")
            else None
        )
    if matches is not None and len(matches):
        ir = isr.sites[isr.sites["source"] == ISRAD_SOURCE]
        ir_key = pd.MultiIndex.from_frame(ir[keys].astype(str))
        by_key = pd.Series(ir["site_id"].to_numpy(), index=ir_key)
        m = matches.drop_duplicates("he_site_id")
        m = m[m["he_site_id"].isin(hs["site_id"])]
        m_key = pd.MultiIndex.from_frame(m[keys].astype(str))
        ids = pd.Series(by_key.reindex(m_key).to_numpy(), index=m["he_site_id"].to_numpy())
        info = ir.set_index("site_id")
        row = hs["site_id"].map(ids)
        hs["israd_site_id"] = row
        hs["israd_match"] = hs["site_id"].map(pd.Series(m["match"].to_numpy(), index=m["he_site_id"].to_numpy()))
        hs["israd_match_km"] = hs["site_id"].map(
            pd.Series(m["distance_km"].to_numpy(), index=m["he_site_id"].to_numpy())
        )
        for c in ("entry_name", "pro_name", *COVARIATE_COLUMNS):
            hs[c] = row.map(info[c])
    he_layers = he.layers.assign(
        source=HE2016_SOURCE, obs_year=he.layers["site_id"].map(he.sites.set_index("site_id")["sample_year"])
    )
    isr_sites, isr_log, isr_qa = cross_source_duplicates(hs, he.layers, isr.sites.copy(), isr.layers, isr.log, isr.qa)
    if len(isr_qa):
        _attach_qa_flags(isr.layers, isr_qa)
    return SiteTables(
        sites=pd.concat([hs, isr_sites], ignore_index=True),
        layers=pd.concat([he_layers, isr.layers], ignore_index=True),
        log=pd.concat([he.log, isr_log], ignore_index=True),
        qa=pd.concat([he.qa, isr_qa], ignore_index=True),
    )


def _layer_signatures(layers: pd.DataFrame, site_ids) -> pd.Series:
    """Kept layers of each site as text at ``DUPLICATE_DECIMALS`` (top, bottom, SOC, BD), indexed by site id."""
    lay = layers[layers["site_id"].isin(list(site_ids))].sort_values(["site_id", "top_cm"])
    r = lay[list(DUPLICATE_DECIMALS)].round(DUPLICATE_DECIMALS) + 0.0
    return r.astype(str).agg(",".join, axis=1).groupby(lay["site_id"]).agg("|".join)


def cross_source_duplicates(he_sites, he_layers, isr_sites, isr_layers, isr_log, isr_qa):
    """Rule: a usable ISRaD profile whose kept layers equal those of a He et al. profile (the duplicate rule of
    ``sites``: top, bottom, SOC, BD at ``DUPLICATE_DECIMALS``) is the same SOC profile, missed by the matches
    table: not usable, ``duplicate_of`` the He profile kept (its own ``duplicate_of`` if it is a copy itself).

    Args:
        he_sites, he_layers: the He et al. tables (DataFrames).
        isr_sites, isr_layers, isr_log, isr_qa: the ISRaD tables (DataFrames); ``isr_sites`` is changed in place.

    Returns:
        ``(isr_sites, isr_log, isr_qa)`` with the duplicates marked, logged and in the QA table.
    """
    he_ok = he_sites.loc[he_sites["n_layers"] >= MIN_LAYERS, "site_id"]
    he_sig = _layer_signatures(he_layers, he_ok)
    first_he = {}
    for sid, sig in he_sig.items():
        first_he.setdefault(sig, sid)
    ir_sig = _layer_signatures(isr_layers, isr_sites.loc[isr_sites["usable"], "site_id"])
    kept_of = he_sites.set_index("site_id")["duplicate_of"]
    rows, entries = [], []
    for sid, sig in ir_sig.items():
        he = first_he.get(sig)
        if he is None:
            continue
        kept = kept_of.get(he) or he
        i = isr_sites.index[isr_sites["site_id"] == sid][0]
        isr_sites.at[i, "usable"] = False
        isr_sites.at[i, "exclusion_reason"] = DUPLICATE_REASON.format(kept=kept)
        isr_sites.at[i, "duplicate_of"] = kept
        evidence = (
            f"{int(isr_sites.at[i, 'n_layers'])} kept layers identical (top, bottom, SOC, BD) to {he} (he2016)"
            + (f", a copy of {kept} (kept)" if kept != he else " (kept)")
            + "; the same profile in both sources, not in data/source_matches.csv"
        )
        rows.append(
            dict(
                site_id=sid,
                profile_id=sid,
                dataset=isr_sites.at[i, "dataset"],
                forest_type=isr_sites.at[i, "forest_type"],
                layer="profile",
                source_row=pd.NA,
                rule=QA_DUPLICATE,
                decision=QA_RULES[QA_DUPLICATE],
                evidence=evidence,
            )
        )
        entries.append(
            dict(
                file=isr_log["file"].iloc[0] if len(isr_log) else ISRAD_SOURCE,
                row=None,
                profile_id=sid,
                column=None,
                value=None,
                reason=f"profile: {DUPLICATE_REASON.format(kept=kept)}: {evidence}",
            )
        )
    if rows:
        isr_qa = pd.concat([isr_qa, pd.DataFrame(rows)], ignore_index=True)
        order = {r: k for k, r in enumerate(QA_RULES)}
        isr_qa = isr_qa.assign(_r=isr_qa["rule"].map(order)).sort_values(["_r", "profile_id"], kind="stable")
        isr_qa = isr_qa.drop(columns="_r").reset_index(drop=True)
        isr_log = pd.concat([isr_log, pd.DataFrame(entries, columns=_LOG_COLUMNS)], ignore_index=True)
    return isr_sites, isr_log, isr_qa
