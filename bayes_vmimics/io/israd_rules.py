"""ISRaD curation rules, each a function (documented in ``data/README.md`` §6).

The curation (``bayes_vmimics.io.israd_curation``) turns the ISRaD tables into site and layer tables with the
columns of the He et al. (2016) tables and then applies the shared layer filters, QA rules and pseudo-replicate
rules (``bayes_vmimics.io.curation._curate``). The ISRaD-specific rules:

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
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..atmosphere import d14c_to_f14c
from .datadir import PROJECT_DATA_DIR
from .israd import KEYS
from .qa import _csv_row
from .tables import FOUR_TYPES

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
#: Longest slug of an ISRaD site id before a hash replaces the tail (characters).
SITE_ID_MAX = 96
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
