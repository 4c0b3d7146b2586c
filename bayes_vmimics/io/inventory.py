"""What the site tables hold: the text summary, the site inventory and the covariate completeness.

The inventory and completeness are those of ``bayes-vmimics sites`` (``bayes_vmimics.sites_cli``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .israd import ISRAD_SOURCE
from .qa import DUPLICATE_REASON, NEAR_DUPLICATE_REASON, qa_summary
from .tables import ALL_TYPES, FOUR_TYPES, SiteTables


# --------------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------------
def summarize(tables: SiteTables) -> str:
    """Plain-text summary: filter counts, counts per forest type, biome, ¹⁴C and split."""
    s, lg = tables.sites, tables.log
    lines = [f"profiles read: {len(s)}; kept mineral layers: {len(tables.layers)}"]
    lines.append("layer exclusions:")
    lay = lg[lg["row"].notna()]
    for reason, n in lay["reason"].value_counts().items():
        lines.append(f"  {n:5d}  {reason}")
    lines.append("profile exclusions:")
    # pseudo-replicates are counted together, not once per kept profile
    label = s["exclusion_reason"].copy()
    for template in (DUPLICATE_REASON, NEAR_DUPLICATE_REASON):
        prefix = template.split("{kept}")[0]
        dup = label.fillna("").str.startswith(prefix) & s.get("duplicate_of", pd.Series(None, index=s.index)).notna()
        n_groups = int(s.loc[dup, "duplicate_of"].nunique())
        label[dup] = f"{template.format(kept='a kept profile')}, {n_groups} group(s)"
    for reason, n in label.value_counts().items():
        lines.append(f"  {n:5d}  {reason}")
    other = lg[lg["row"].isna() & ~lg["reason"].str.startswith("profile:")]
    for reason in other["reason"]:
        lines.append(f"  note: {reason}")
    u = s[s["usable"]]
    lines.append(f"usable profiles: {len(u)} (four types: {int(u['in_four_types'].sum())})")
    tab = pd.crosstab(u["forest_type"], u["biome"], margins=True, margins_name="total")
    lines.append("usable profiles by forest type x biome:\n" + tab.to_string())
    if "source" in u and s["source"].nunique() > 1:
        tab = pd.crosstab(u["forest_type"], u["source"], margins=True, margins_name="total")
        lines.append("usable profiles by forest type x source:\n" + tab.to_string())
    c14 = pd.crosstab(u["forest_type"], u["has_c14"].map({True: "with 14C", False: "without 14C"}))
    lines.append("usable profiles with/without 14C:\n" + c14.to_string())
    lines.append(
        "usable with any gap-filled BD layer: "
        f"{int(u['any_filled_bd'].sum())}; clay measured: {int(u['clay_is_measured'].sum())}; "
        f"litterfall measured: {int(u['litter_above_is_measured'].sum())}"
    )
    if s["split"].notna().any():
        f4 = u[u["in_four_types"]]
        sp = pd.crosstab(f4["forest_type"], [f4["split"], f4["has_c14"].map({True: "14C", False: "no14C"})])
        lines.append("split (four types):\n" + sp.to_string())
    lines.append(qa_summary(tables))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# inventory of the sites (``bayes-vmimics sites``)
# --------------------------------------------------------------------------------------------------
#: Covariates of the completeness target, as (inventory column, category column).
COMPLETENESS_COVARIATES = (("mat_c", "mat_c_source"), ("map_mm", "map_mm_source"), ("clay_fraction", "clay_source"))
#: Categories of a covariate's origin in the inventory: measured (reported by the study or measured on the
#: profile), gridded (a gridded product at the profile's coordinates: WorldClim 2.1, SoilGrids), imputed (filled
#: by a rule: the forest-type median of measured clay, He et al.'s undocumented gap-filling of MAT and MAP).
SOURCE_CATEGORIES = ("measured", "gridded", "imputed")


def _climate_category(s: pd.DataFrame, var: str) -> pd.Series:
    """measured / gridded / imputed of ``mat`` or ``map`` per site, and the detail text."""
    reported = s[f"{var}_is_reported"].fillna(False).astype(bool)
    value = s["mat_c" if var == "mat" else "map_mm"]
    isr = s["source"] == ISRAD_SOURCE
    cat = pd.Series(np.where(reported, "measured", np.where(isr, "gridded", "imputed")), index=s.index, dtype=object)
    return cat.where(value.notna(), None)


def _clay_category(s: pd.DataFrame) -> pd.Series:
    src = s["clay_source"].fillna("").astype(str)
    measured = s["clay_is_measured"].fillna(False).astype(bool)
    cat = np.where(measured, "measured", np.where(src.str.contains("SoilGrids"), "gridded", "imputed"))
    return pd.Series(cat, index=s.index, dtype=object).where(s["clay_pct"].notna(), None)


# ~80 lines of code: one table definition, a column a line.
def site_inventory(tables: SiteTables, forest_types=None) -> pd.DataFrame:
    """One row per profile the curation considered (usable or not), with its type, evidence, layers and covariates.

    Args:
        tables: :func:`build_site_tables` (SiteTables).
        forest_types: keep only these forest types (codes of ``ALL_TYPES``), or None for every profile.

    Returns:
        DataFrame: ``site_id``, ``source``, ``profile_id`` (He rows), ``dataset``, ``entry_name``, ``site_name``,
        ``pro_name`` (ISRaD rows), ``forest_type``, ``forest_type_confidence``, ``forest_type_evidence`` (He:
        ``data/forest_types.csv`` rationale; ISRaD: ``data/israd_forest_types.csv`` evidence), ``usable``,
        ``reason``, ``lat``, ``lon`` (decimal degrees), ``n_layers_soc``, ``n_layers_f14c`` (kept mineral layers
        with SOC, with F14C), ``top_cm``, ``bottom_cm`` (depth range of the kept layers, cm below the mineral
        surface), ``split``, ``mat_c`` (°C), ``map_mm`` (mm yr⁻¹), ``clay_fraction`` (0–1), each with
        ``*_source`` (measured / gridded / imputed) and ``*_source_detail``, the other forcing covariates with
        their sources (litter g C m⁻² yr⁻¹, lignin:N g g⁻¹, soil temperature °C), elevation (m), the gridded
        covariates of ISRaD (or of a matched ISRaD profile), the He–ISRaD match and ``qa_flags`` (the QA rules
        naming the site, ``;``-joined).

    Raises:
        ValueError: an unknown forest type.
    """
    s = tables.sites
    if forest_types is not None:
        bad = [f for f in forest_types if f not in ALL_TYPES]
        if bad:
            raise ValueError(f"--forest-type: unknown forest type(s) {', '.join(bad)} (known: {', '.join(ALL_TYPES)})")
        s = s[s["forest_type"].isin(list(forest_types))]
    s = s.reset_index(drop=True)
    isr = (s["source"] == ISRAD_SOURCE).to_numpy()

    def col(name, default=None):
        return s[name] if name in s else pd.Series(default, index=s.index, dtype=object)

    lay = tables.layers.groupby("site_id").agg(top_cm=("top_cm", "min"), bottom_cm=("bottom_cm", "max"))
    qa = tables.qa.groupby("site_id")["rule"].agg(lambda r: ";".join(dict.fromkeys(r))) if len(tables.qa) else {}
    out = pd.DataFrame(
        {
            "site_id": s["site_id"],
            "source": s["source"],
            "profile_id": col("profile_id").where(~isr, None),
            "dataset": s["dataset"],
            "entry_name": col("entry_name").where(isr, None),
            "site_name": s["site_name"],
            "pro_name": col("pro_name").where(isr, None),
            "forest_type": s["forest_type"],
            "forest_type_confidence": col("forest_type_confidence"),
            "forest_type_evidence": col("forest_type_rationale"),
            "usable": s["usable"].astype(bool),
            "reason": s["exclusion_reason"],
            "lat": s["lat"],
            "lon": s["lon"],
            "n_layers_soc": s["n_layers"].fillna(0).astype(int),
            "n_layers_f14c": s["n_layers_c14"].fillna(0).astype(int),
            "top_cm": s["site_id"].map(lay["top_cm"]),
            "bottom_cm": s["site_id"].map(lay["bottom_cm"]),
            "split": s["split"],
            "mat_c": s["mat_c"],
            "mat_c_source": _climate_category(s, "mat"),
            "mat_c_source_detail": col("mat_source").where(
                isr,
                np.where(
                    col("mat_is_reported", False).fillna(False).astype(bool),
                    "reported by the study",
                    "gap-filled by He et al. 2016 (method not recorded)",
                ),
            ),
            "map_mm": s["map_mm"],
            "map_mm_source": _climate_category(s, "map"),
            "map_mm_source_detail": col("map_source").where(
                isr,
                np.where(
                    col("map_is_reported", False).fillna(False).astype(bool),
                    "reported by the study",
                    "gap-filled by He et al. 2016 (method not recorded)",
                ),
            ),
            "clay_fraction": s["clay_pct"] / 100.0,
            "clay_source": _clay_category(s),
            "clay_source_detail": s["clay_source"],
            "soil_temperature_c": s["soil_temperature_c"],
            "soil_temperature_source": s["soil_temperature_source"],
            "litter_above_g_c_m2_yr": s["litter_above_g_c_m2_yr"],
            "litter_above_source": s["litter_above_source"],
            "litter_below_g_c_m2_yr": s["litter_below_g_c_m2_yr"],
            "litter_below_source": s["litter_below_source"],
            "lignin_n_above": s["lignin_n_above"],
            "lignin_n_below": s["lignin_n_below"],
            "lignin_n_source": s["lignin_n_source"],
            "elevation_m": s["elevation_m"],
            "elevation_source": pd.Series(np.where(s["elevation_m"].notna(), "reported", None), index=s.index),
            "biome": s["biome"],
            "hua2013_zone": s["hua2013_zone"],
            "israd_match": col("israd_match"),
            "israd_site_id": col("israd_site_id"),
        }
    )
    for c in ("clay_fraction_sg", "bd_g_cm3_sg", "mat_c_wc2", "map_mm_wc2", "koppen_present", "soil_order_usda"):
        out[c] = col(c)
    out["qa_flags"] = s["site_id"].map(qa) if len(tables.qa) else None
    return out


def covariate_completeness(inventory: pd.DataFrame) -> pd.DataFrame:
    """Usable four-type sites per forest type × source: counts, with ¹⁴C, and for MAT, MAP and clay the share
    known (measured or gridded) and the share imputed (``COMPLETENESS_COVARIATES``).

    Args:
        inventory: :func:`site_inventory` (DataFrame).

    Returns:
        DataFrame indexed by (``forest_type``, ``source``) with ``usable``, ``with_f14c`` (counts) and, per
        covariate, ``<name>_known`` and ``<name>_imputed`` (fractions 0–1); a row per type with source "all".
    """
    u = inventory[inventory["usable"] & inventory["forest_type"].isin(FOUR_TYPES)]
    rows = []
    for ft in FOUR_TYPES:
        x_ft = u[u["forest_type"] == ft]
        for src in [*sorted(set(u["source"])), "all"]:
            x = x_ft if src == "all" else x_ft[x_ft["source"] == src]
            r = {"forest_type": ft, "source": src, "usable": len(x), "with_f14c": int((x["n_layers_f14c"] > 0).sum())}
            for name, cat in COMPLETENESS_COVARIATES:
                n = max(len(x), 1)
                r[f"{name}_known"] = float(x[cat].isin(["measured", "gridded"]).sum() / n) if len(x) else np.nan
                r[f"{name}_imputed"] = float((x[cat] == "imputed").sum() / n) if len(x) else np.nan
            rows.append(r)
    return pd.DataFrame(rows).set_index(["forest_type", "source"])
