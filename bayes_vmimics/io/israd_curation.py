"""The ISRaD site and layer tables: the reader's tables curated by the ISRaD rules and the shared curation.

:func:`build_israd_tables` gives the ISRaD profiles the columns of the He et al. (2016) tables of
:func:`bayes_vmimics.io.sites.build_site_tables` (plus ``entry_name``, ``pro_name``, the gridded covariates and
the ``*_source`` columns), applies the rules of ``bayes_vmimics.io.israd_rules`` and then the same layer filters,
QA rules and pseudo-replicate rules as for He et al. (``bayes_vmimics.io.curation._curate``); the He–ISRaD matches
(``data/source_matches.csv``) keep a profile of both sources once. Documented in ``data/README.md`` §6.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .curation import _curate, _filter_layers, _profile_clay
from .datadir import PROJECT_DATA_DIR
from .forcing import _add_forcing
from .israd import ISRAD_SOURCE, KEYS, IsradTables, read_israd
from .israd_rules import (
    COVARIATE_COLUMNS,
    FOREST_LAND_COVER,
    assign_forest_types,
    bulk_density,
    f14c_values,
    gridded_covariates,
    infinite_depths,
    israd_site_ids,
    koppen_biome,
    load_israd_forest_types,
    mineral_depths,
    organic_carbon,
    overlapping_profiles,
    point_depths,
    profile_exclusions,
)
from .qa import QA_RULES, _attach_qa_flags, _csv_row, _qa_table
from .tables import _LOG_COLUMNS, FOUR_TYPES, SiteTables

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
#: QA rules of this source (decision "flag"; listed in ``qa.QA_RULES``).
QA_PERMAFROST = "permafrost_profile"
QA_PEATLAND = "peatland_profile"


# --------------------------------------------------------------------------------------------------
# the He–ISRaD matches
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


# --------------------------------------------------------------------------------------------------
# the ISRaD tables
# --------------------------------------------------------------------------------------------------
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


# Long (~255 lines of code): one recipe in the order of data/README.md §6 (profile reasons, layer rules, the shared
# curation, profiles without layers, ISRaD flags). Moved whole by issue #34; its steps (layer rules, make_sites, the
# profiles without layers) are the candidates for functions of their own.
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
    """The ISRaD site and layer tables, curated by the rules of ``israd_rules`` and ``curation`` (data/README.md §6).

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
    """The He et al. forcing rules (``forcing._add_forcing``) with ISRaD's gridded values where a measured
    value is missing: clay from SoilGrids 0–30 cm before the forest-type median, each recorded in ``*_source``."""
    s = _add_forcing(sites, entries, fname)
    sg = s["clay_fraction_sg"].astype(float)
    use = ~s["clay_is_measured"] & sg.notna()
    s.loc[use, "clay_pct"] = 100.0 * sg[use]
    s.loc[use, "clay_source"] = "SoilGrids 0-30 cm (gridded, pro_clay_*_cm_SG; no measured clay)"
    s["soil_temperature_source"] = "MAT (" + s["mat_source"] + "); Wang et al. 2021 used daily GSWP3 air temperature"
    return s
