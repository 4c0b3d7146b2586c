"""The curation every source shares: layer filters, tidy layers, and QA rules and profile filters (``_curate``).

A source hands ``_curate`` its raw layer rows in the He et al. (2016) shape (``he2016._LAYER_REQUIRED``), with
functions that make its sites table, give the reasons that come first and add the forcing; ``_curate`` returns a
``SiteTables``.

Decisions (documented in ``data/README.md``)
    * Depth reference: the mineral-soil surface is 0 cm (He et al. 2016 ``top_cm_mineral0``). Organic
      layers (bottom ≤ 0) are dropped: the model's aboveground litter input stands for the forest floor.
      Layers straddling 0 (top < 0 < bottom) are dropped too, because their C concentration mixes organic
      and mineral material and cannot be apportioned (none occur in the He et al. file; tested).
    * F14C: computed from Δ14C and the sampling year (``f14c_from_d14c``); the compilation's
      ``f14c_reported`` is mostly percent modern (pMC), so it is used only where Δ14C is missing, divided
      by 100 when > 2.
    * SOC = 0 with no reported value (``soc_pct_reported`` empty) is He et al.'s placeholder for a missing
      value, not a measurement: such layers are dropped like missing SOC (a filter of their own).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..atmosphere import d14c_to_f14c, hua2013_zone
from .qa import (
    BD_RANGE,
    DUPLICATE_REASON,
    MIN_LAYERS,
    NEAR_DUPLICATE_REASON,
    QA_DUPLICATE,
    QA_ISOLATED_LOW,
    QA_MANY_THIN,
    QA_NEAR_DUPLICATE,
    QA_UNIT_SLIP,
    SOC_PCT_MAX,
    SOC_ZERO_REASON,
    _attach_qa_flags,
    _csv_row,
    _depth_label,
    _duplicate_soc_profiles,
    _isolated_low_layers,
    _layer_flags,
    _many_thin_layers,
    _near_duplicate_soc_profiles,
    _qa_table,
    _unit_slips,
)
from .tables import FOUR_TYPES, SiteTables


# --------------------------------------------------------------------------------------------------
# unit conversions
# --------------------------------------------------------------------------------------------------
def soc_volumetric(soc_pct, bd_g_cm3):
    """SOC density from mass concentration and bulk density (PROVENANCE: SOC % × 10 × BD).

    Args:
        soc_pct: organic C concentration (% by mass).
        bd_g_cm3: bulk density of the fine earth over the whole soil volume (g cm⁻³).

    Returns:
        SOC density (mg C cm⁻³), same shape as the inputs.
    """
    return np.asarray(soc_pct, dtype=float) * 10.0 * np.asarray(bd_g_cm3, dtype=float)


#: Δ14C → F14C for a sampling year: the one implementation, :func:`bayes_vmimics.atmosphere.d14c_to_f14c`
#: (PROVENANCE formula); the old name is kept for callers of this module.
f14c_from_d14c = d14c_to_f14c


def _hua_zone(lat: float, lon: float) -> str | None:
    if not (np.isfinite(lat) and np.isfinite(lon)):
        return None
    return hua2013_zone(lat, lon)


# --------------------------------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------------------------------
def _f14c_column(raw: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """F14C per layer: from Δ14C where given, else the reported value (pMC → fraction when > 2)."""
    f = raw["f14c_from_d14c"].copy()
    src = pd.Series(np.where(f.notna(), "d14c", ""), index=raw.index, dtype=object)
    recompute = f.isna() & raw["d14c_permil"].notna() & raw["sample_year"].notna()
    f[recompute] = f14c_from_d14c(raw.loc[recompute, "d14c_permil"], raw.loc[recompute, "sample_year"])
    src[recompute] = "d14c"
    rep = raw["f14c_reported"]
    use_rep = f.isna() & rep.notna()
    f[use_rep] = np.where(rep[use_rep] > 2.0, rep[use_rep] / 100.0, rep[use_rep])
    src[use_rep] = "reported"
    return f, src.replace("", None)


def _filter_layers(raw: pd.DataFrame, fname: str, *, exclude_filled_bd: bool):
    """Apply the layer filters; return kept layers and the log rows."""
    entries = []

    def drop(mask, reason, column=None):
        for i in raw.index[mask & keep]:
            entries.append(
                dict(
                    file=fname,
                    row=_csv_row(i),
                    profile_id=raw.at[i, "profile_id"],
                    column=column,
                    value=None if column is None else raw.at[i, column],
                    reason=reason,
                )
            )
        keep[mask] = False

    keep = pd.Series(True, index=raw.index)
    top, bot = raw["top_cm_mineral0"], raw["bottom_cm_mineral0"]
    drop(bot <= 0, "organic horizon above the mineral-soil surface", "bottom_cm_mineral0")
    drop(
        (top < 0) & (bot > 0),
        "layer straddles the mineral-soil surface (organic + mineral)",
        "top_cm_mineral0",
    )
    drop(raw["soc_pct"].isna(), "missing SOC", "soc_pct")
    # He et al. write 0 where a study gave no organic C (every such layer has soc_pct_reported empty);
    # a file without that column reports nothing, so its zeros are missing values too
    reported = raw["soc_pct_reported"] if "soc_pct_reported" in raw.columns else pd.Series(np.nan, index=raw.index)
    drop((raw["soc_pct"] <= 0) & reported.isna(), SOC_ZERO_REASON, "soc_pct")
    drop(raw["bd_g_cm3"].isna(), "missing bulk density", "bd_g_cm3")
    drop(raw["soc_pct"] > SOC_PCT_MAX, f"implausible SOC > {SOC_PCT_MAX:g} %", "soc_pct")
    lo, hi = BD_RANGE
    drop(
        (raw["bd_g_cm3"] < lo) | (raw["bd_g_cm3"] > hi),
        f"implausible bulk density outside {lo}–{hi} g cm-3",
        "bd_g_cm3",
    )
    if exclude_filled_bd:
        drop(raw["bd_is_filled"], "gap-filled bulk density excluded (exclude_filled_bd)", "bd_is_filled")
    return keep, entries


def _tidy_layers(raw: pd.DataFrame, keep: pd.Series, site_prefix: str) -> pd.DataFrame:
    f14c, f14c_src = _f14c_column(raw)
    k = raw[keep]
    out = pd.DataFrame(
        {
            "site_id": site_prefix + k["profile_id"].astype(str),
            "profile_id": k["profile_id"],
            "horizon": k.get("horizon"),
            "top_cm": k["top_cm_mineral0"].astype(float),
            "bottom_cm": k["bottom_cm_mineral0"].astype(float),
            "soc_pct": k["soc_pct"],
            "soc_g_kg": k["soc_pct"] * 10.0,
            "bd_g_cm3": k["bd_g_cm3"],
            "bd_is_filled": k["bd_is_filled"].astype(bool),
            "soc_mg_cm3": soc_volumetric(k["soc_pct"], k["bd_g_cm3"]),
            "d14c_permil": k["d14c_permil"],
            "f14c": f14c[keep],
            "f14c_source": f14c_src[keep],
            "n_pct": k.get("n_pct"),
            "clay_pct": k["clay_pct"],
            "source_row": [_csv_row(i) for i in k.index],
        }
    )
    out["mid_cm"] = 0.5 * (out["top_cm"] + out["bottom_cm"])
    out["thickness_cm"] = out["bottom_cm"] - out["top_cm"]
    out["qa_flag"] = ""  # QA rules that flag or downweight the layer, ";"-separated (build_site_tables)
    out.insert(2, "layer", out.groupby("profile_id").cumcount())
    return out.reset_index(drop=True)


def _profile_clay(raw: pd.DataFrame) -> pd.Series:
    """Thickness-weighted mean clay (%) over mineral layers with measured clay, per profile."""
    m = raw[(raw["bottom_cm_mineral0"] > 0) & raw["clay_pct"].notna()].copy()
    m["w"] = m["bottom_cm_mineral0"] - m["top_cm_mineral0"].clip(lower=0.0)
    m["cw"] = m["clay_pct"] * m["w"]
    g = m.groupby("profile_id")
    return g["cw"].sum() / g["w"].sum()


# --------------------------------------------------------------------------------------------------
# profiles
# --------------------------------------------------------------------------------------------------
# Long on purpose (~135 lines of code): the rules run in the one order data/README.md §3 documents (isolated layers,
# profile filters, unit slips, pseudo-replicates, flags), each reading the reasons the steps before it gave.
def _curate(
    raw: pd.DataFrame,
    keep: pd.Series,
    entries: list,
    fname: str,
    *,
    site_prefix: str,
    make_sites,
    prior_reasons,
    add_forcing,
    deduplicate: bool,
    qa: bool,
) -> SiteTables:
    """The curation shared by the sources: QA rules, profile filters and pseudo-replicates on He-shaped rows.

    Args:
        raw: layer rows with the He et al. columns (``_LAYER_REQUIRED``), sorted by profile and depth; the
            index is the 0-based data row of the raw file (its CSV line − 2).
        keep: the rows passing the layer filters (bool, aligned with ``raw``); changed in place.
        entries: the log rows so far (list of dicts); appended to.
        fname: raw file name for the log (text).
        site_prefix: ``site_id`` = prefix + ``profile_id`` (text).
        make_sites: ``f(first) -> sites``: the per-profile table (``site_id``, ``profile_id``, ``source``,
            ``dataset``, ``lat``, ``lon``, ``mat_c``, ``map_mm``, ``forest_type``, ``litterfall_above_reported``
            (g C m⁻² yr⁻¹), ``clay_pct_measured`` (%) …) from the first row of each profile (indexed by profile).
        prior_reasons: ``f(sites) -> (reason, detail)``: profile reasons that come before every other filter
            (review, land cover, treatment, forest type …; "" for none) and the text the log appends.
        add_forcing: ``f(sites, entries, fname) -> sites``: forcing columns (``forcing._add_forcing``).
        deduplicate, qa: as :func:`bayes_vmimics.io.sites.build_site_tables` (bool).

    Returns:
        ``SiteTables``; its ``log`` is still the list of entries (the caller makes the frame).
    """
    # QA rows: (profile_id, layer label, source_row, rule, evidence); forest type and site id are added last
    qa_rows: list[tuple] = []
    if qa:
        isolated = _isolated_low_layers(raw, keep)
        for i, evidence in isolated.items():
            entries.append(
                dict(
                    file=fname,
                    row=_csv_row(i),
                    profile_id=raw.at[i, "profile_id"],
                    column="soc_pct",
                    value=raw.at[i, "soc_pct"],
                    reason=f"isolated near-zero layer (QA {QA_ISOLATED_LOW})",
                )
            )
            label = _depth_label(raw.at[i, "top_cm_mineral0"], raw.at[i, "bottom_cm_mineral0"])
            qa_rows.append((raw.at[i, "profile_id"], label, _csv_row(i), QA_ISOLATED_LOW, evidence))
            keep[i] = False
    layers = _tidy_layers(raw, keep, site_prefix)

    g = raw.groupby("profile_id", sort=True)
    sites = make_sites(g.first())
    sites["in_four_types"] = sites["forest_type"].isin(FOUR_TYPES)
    sites["hua2013_zone"] = [_hua_zone(a, b) for a, b in zip(sites["lat"], sites["lon"], strict=True)]

    lg = layers.groupby("profile_id")
    sites["n_layers"] = sites["profile_id"].map(lg.size()).fillna(0).astype(int)
    sites["n_layers_c14"] = sites["profile_id"].map(lg["f14c"].count()).fillna(0).astype(int)
    sites["n_layers_filled_bd"] = sites["profile_id"].map(lg["bd_is_filled"].sum()).fillna(0).astype(int)
    sites["max_depth_cm"] = sites["profile_id"].map(lg["bottom_cm"].max())
    sites["has_c14"] = sites["n_layers_c14"] >= 1
    sites["any_filled_bd"] = sites["n_layers_filled_bd"] > 0

    sites = add_forcing(sites, entries, fname)

    reason, prior_detail = prior_reasons(sites)
    by_prior = reason != ""
    few = sites["n_layers"] < MIN_LAYERS
    reason[(reason == "") & few] = f"fewer than {MIN_LAYERS} mineral layers with SOC and bulk density"
    no_coord = sites["lat"].isna() | sites["lon"].isna()
    reason[(reason == "") & no_coord] = "missing coordinates"
    no_clim = sites["mat_c"].isna() | sites["map_mm"].isna()
    reason[(reason == "") & no_clim] = "missing MAT or MAP (no forcing)"
    structural = ~(few | no_coord | no_clim)
    evidence_of: dict = {}  # sites index -> evidence appended to the log entry
    # likely ×100 unit slips, judged against the distinct SOC profiles of the same forest type
    if qa:
        copies = {q for grp in _duplicate_soc_profiles(layers, sites.loc[structural, "profile_id"]) for q in grp[1:]}
        peers = structural & ~by_prior & ~sites["profile_id"].isin(copies)
        for i, (direction, evidence) in _unit_slips(layers, sites, structural, peers).items():
            if by_prior[i]:
                evidence = f"{evidence}; also {reason[i]}"
            else:
                reason[i] = f"likely unit slip: SOC about 100x too {direction} (QA {QA_UNIT_SLIP})"
                evidence_of[i] = evidence
            qa_rows.append((sites.at[i, "profile_id"], "profile", None, QA_UNIT_SLIP, evidence))
    # pseudo-replicates last: among the profiles passing every other filter, one per SOC profile
    sites["duplicate_of"] = None
    groups: dict = {}
    if deduplicate:
        row_of = pd.Series(sites.index, index=sites["profile_id"])
        for group in _duplicate_soc_profiles(layers, sites.loc[reason == "", "profile_id"]):
            kept = sites.at[row_of[group[0]], "site_id"]
            for pid in group[1:]:
                i = row_of[pid]
                reason[i] = DUPLICATE_REASON.format(kept=kept)
                sites.at[i, "duplicate_of"] = kept
                groups[i] = [sites.at[row_of[q], "site_id"] for q in group]
                n = int(sites.at[i, "n_layers"])
                qa_rows.append(
                    (
                        pid,
                        "profile",
                        None,
                        QA_DUPLICATE,
                        f"{n} kept layers identical (top, bottom, SOC, BD) to {kept} (kept); group of {len(group)}: "
                        + ", ".join(groups[i]),
                    )
                )
        near = _near_duplicate_soc_profiles(layers, sites, sites.loc[reason == "", "profile_id"], site_prefix)
        for host, pid, evidence in near:
            i, kept = row_of[pid], sites.at[row_of[host], "site_id"]
            reason[i] = NEAR_DUPLICATE_REASON.format(kept=kept)
            sites.at[i, "duplicate_of"] = kept
            evidence_of[i] = evidence
            qa_rows.append((pid, "profile", None, QA_NEAR_DUPLICATE, evidence))
    sites["exclusion_reason"] = reason.replace("", None)
    sites["usable"] = reason == ""
    for i in sites.index[~sites["usable"]]:
        text = reason[i]
        if by_prior[i] and prior_detail[i]:
            text = f"{text}: {prior_detail[i]}"
        if i in groups:
            g = groups[i]
            text = (
                f"{text}: group of {len(g)} with identical kept layers (top, bottom, SOC, BD): "
                f"{g[0]} (kept), {', '.join(g[1:])}"
            )
        if i in evidence_of:
            text = f"{text}: {evidence_of[i]}"
        entries.append(
            dict(
                file=fname,
                row=None,
                profile_id=sites.at[i, "profile_id"],
                column=None,
                value=None,
                reason=f"profile: {text}",
            )
        )

    # flags and downweights, on the profiles the calibration may use
    if qa:
        for i, evidence in _many_thin_layers(layers, sites).items():
            qa_rows.append((sites.at[i, "profile_id"], "profile", None, QA_MANY_THIN, evidence))
        usable_layers = layers[layers["profile_id"].isin(sites.loc[sites["usable"], "profile_id"])]
        for j, rule, evidence in _layer_flags(usable_layers):
            label = _depth_label(layers.at[j, "top_cm"], layers.at[j, "bottom_cm"])
            qa_rows.append((layers.at[j, "profile_id"], label, layers.at[j, "source_row"], rule, evidence))
    qa_table = _qa_table(qa_rows, sites)
    _attach_qa_flags(layers, qa_table)
    return SiteTables(sites=sites, layers=layers, log=entries, qa=qa_table)
