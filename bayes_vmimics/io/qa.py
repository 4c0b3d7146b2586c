"""Quality of the site data: raw-file checks, quality limits, QA rules and the QA table (data/README.md §3).

Raw-file checks (``_require_columns``, ``_require_numeric``, ``_check_*``) raise a ``ValueError`` naming file, row
and column; every source and project table is read through them.

Decisions (documented in ``data/README.md``)
    * Duplicate SOC profiles (pseudo-replicates): usable profiles whose kept layers carry identical depths,
      SOC and bulk density (often with different ¹⁴C) are one SOC profile; the lowest profile id is kept.
      Partial copies (same dataset and place, the same SOC at the same depths) are dropped too.
    * QA rules (``QA_RULES``; thresholds as module constants): isolated near-zero layers and likely ×100 unit
      slips are excluded, profiles of many thin layers downweighted, implausible values flagged; every
      finding is listed with its evidence, nothing is dropped silently.

The rules are applied to every source by the shared curation (``bayes_vmimics.io.curation._curate``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .datadir import PROJECT_DATA_DIR, read_table
from .tables import QA_COLUMNS, SiteTables

#: Quality limits (issue 4).
MIN_LAYERS = 3
SOC_PCT_MAX = 60.0
BD_RANGE = (0.05, 2.2)
#: Layer filter: SOC = 0 where the compilation has no reported value (``soc_pct_reported`` empty).
SOC_ZERO_REASON = "SOC = 0 without a reported value (treated as missing)"
#: Profile filter for pseudo-replicates; ``{kept}`` is the site id of the profile kept from the group.
DUPLICATE_REASON = "duplicate SOC profile of {kept} (pseudo-replicate)"
#: Decimals to which the kept layers are rounded before profiles are compared for duplicates: depths
#: (cm) to 0.01, SOC (%) and bulk density (g cm⁻³) to 0.001. This is finer than the studies report
#: (depths 0.1 cm, SOC 0.01 %, BD 0.01 g cm⁻³), so only the same numbers match, never two similar
#: measurements, and coarser than the float noise of He et al.'s derived columns (the file is written
#: with at most 5 decimals). The groups of the current file are the same for 1 to 5 decimals.
DUPLICATE_DECIMALS = {"top_cm": 2, "bottom_cm": 2, "soc_pct": 3, "bd_g_cm3": 3}
#: Profile filter for partial copies (near-duplicates); ``{kept}`` is the site id of the profile kept.
NEAR_DUPLICATE_REASON = "near-duplicate SOC profile of {kept} (partial copy, pseudo-replicate)"


# --------------------------------------------------------------------------------------------------
# QA rules (data/README.md §3 "QA rules"): each rule has a name (the ``rule`` column of data/qa_flags.csv
# and of ``SiteTables.qa``, and the token in the layer column ``qa_flag``), a decision and its thresholds.
# --------------------------------------------------------------------------------------------------
#: Rule: an interior layer whose SOC is below 1/``ISOLATED_LOW_RATIO`` of both neighbouring kept layers and
#: of the profile median (e.g. he2016_13: 0.0085 % between 1.28 % and 0.76 %, a typo or a ×100 slip).
#: Decision: the layer is excluded. A profile's deepest or shallowest layer is never isolated.
QA_ISOLATED_LOW = "isolated_near_zero_layer"
ISOLATED_LOW_RATIO = 20.0
#: Rule: a whole profile about 100× too low (or high), like fractions stored as percent: its median SOC
#: density is below 1/``UNIT_SLIP_RATIO`` (above ``UNIT_SLIP_RATIO`` ×) the median of the profile medians of
#: the other profiles of its forest type (at least ``UNIT_SLIP_MIN_PEERS``), and for a low profile every
#: layer × 100 is still a possible SOC (≤ ``SOC_PCT_MAX``), so a deep profile with a rich topsoil is not
#: taken for a slip. Decision: the profile is excluded (not corrected). The evidence gives C:N, bulk density
#: and the profile's dataset peers for review.
QA_UNIT_SLIP = "unit_slip_x100"
UNIT_SLIP_RATIO = 20.0
UNIT_SLIP_MIN_PEERS = 3
#: Rule: identical kept layers (depths, SOC, BD; ``DUPLICATE_DECIMALS``) as a profile kept. Decision: exclude.
QA_DUPLICATE = "duplicate_soc_profile"
#: Rule: same dataset and coordinates (0.01°) as a kept profile, and every kept layer has the kept profile's
#: SOC at the same depths (``DUPLICATE_DECIMALS``; bulk density may differ): a partial copy of one SOC
#: profile (Harkness 1986, Meathop Wood). The profile with the most layers is kept (ties: lowest id).
#: Decision: exclude.
QA_NEAR_DUPLICATE = "near_duplicate_soc_profile"
#: Rule: so many thin layers that the profile outweighs the others of its forest type under a per-layer
#: error: more than ``MANY_LAYERS_FACTOR`` × the median number of layers of the usable profiles of its
#: forest type, with a median thickness below ``THIN_LAYER_CM`` (he2016_462: 52 layers of 2 cm).
#: Decision: downweight (the likelihood's depth weighting evens them out; no layer is dropped).
QA_MANY_THIN = "many_thin_layers"
MANY_LAYERS_FACTOR = 3.0
THIN_LAYER_CM = 5.0
#: Rule: SOC below ``SOC_LOW_PCT`` % (the studies report 0.01 % steps; e.g. he2016_203: 0.01–0.02 % down to
#: 320 cm): a relative error is meaningless there. Decision: flag (an absolute error floor handles it).
QA_SOC_LOW = "soc_near_detection_limit"
SOC_LOW_PCT = 0.05
#: Rule: measured bulk density below ``LOW_BD_G_CM3`` with SOC below ``LOW_BD_SOC_PCT`` %: a mineral layer
#: that light is volcanic (andic) or rich in organic matter, so either SOC or BD is suspect (he2016_205,
#: 216). Decision: flag.
QA_LOW_BD_LOW_SOC = "low_bd_low_soc"
LOW_BD_G_CM3 = 0.5
LOW_BD_SOC_PCT = 1.0
#: Rule: C:N (``soc_pct / n_pct``) outside ``CN_RANGE`` or N = 0 where N is given: the N column holds
#: something else (often C:N itself) or one of the two is in other units. N is not used by the model.
#: Decision: flag.
QA_CN = "cn_implausible"
CN_RANGE = (3.0, 100.0)
#: Rule: SOC more than ``SOC_INCREASE_FACTOR`` × that of the kept layer directly above: a buried or spodic
#: (Bh) horizon, or an error. Decision: flag.
QA_SOC_INCREASE = "soc_increase_with_depth"
SOC_INCREASE_FACTOR = 5.0
#: Rule: a layer with SOC above ``CONSTANT_BD_SOC_PCT`` % in a profile whose kept layers (at least three) all
#: carry one bulk density: a carbon-rich horizon is lighter than the subsoil below it, so that bulk density is
#: probably one value for the whole profile, and the layer's SOC density (mg C cm⁻³) is too high. The evidence
#: gives the bulk density of the mixing rule of Adams (1973, J. Soil Sci. 24, 10-17),
#: 100 / (OM/0.244 + (100 − OM)/BD_min), with OM = 1.724 × SOC % and BD_min the profile's bulk density
#: (he2016_139: A1 17.4 % C at 1.28 g cm⁻³, where the rule gives 0.56). Decision: flag (never corrected).
QA_CONSTANT_BD = "constant_bd_carbon_rich"
CONSTANT_BD_SOC_PCT = 5.0
#: Every QA rule with its decision, in the order of the QA table.
QA_RULES = {
    QA_ISOLATED_LOW: "exclude",
    QA_UNIT_SLIP: "exclude",
    QA_DUPLICATE: "exclude",
    QA_NEAR_DUPLICATE: "exclude",
    QA_MANY_THIN: "downweight",
    QA_SOC_LOW: "flag",
    QA_LOW_BD_LOW_SOC: "flag",
    QA_CN: "flag",
    QA_SOC_INCREASE: "flag",
    QA_CONSTANT_BD: "flag",
    # ISRaD only (bayes_vmimics.io.israd_curation): profile flags from pro_permafrost and pro_peatland
    "permafrost_profile": "flag",
    "peatland_profile": "flag",
}
#: The committed QA table, generated by :func:`write_qa_table` (``analyses/00_prepare_data.py --write-qa``).
QA_TABLE_FILE = "qa_flags.csv"


# --------------------------------------------------------------------------------------------------
# raw-file validation
# --------------------------------------------------------------------------------------------------
def _csv_row(idx: int) -> int:
    """1-based CSV line number of DataFrame index ``idx`` (header is line 1)."""
    return int(idx) + 2


def _read_csv(path: Path) -> pd.DataFrame:
    return read_table(path)


def _require_columns(df: pd.DataFrame, path: Path, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: row 1 (header): missing column(s) {', '.join(repr(c) for c in missing)}")


def _require_numeric(df: pd.DataFrame, path: Path, columns) -> pd.DataFrame:
    df = df.copy()
    for c in columns:
        conv = pd.to_numeric(df[c], errors="coerce")
        bad = conv.isna() & df[c].notna()
        if bad.any():
            i = bad.idxmax()
            raise ValueError(f"{path}: row {_csv_row(i)}, column {c!r}: not a number ({df.at[i, c]!r})")
        df[c] = conv
    return df


def _check_depths(df: pd.DataFrame, path: Path, group: str, top: str, bottom: str) -> None:
    """Each layer must have top < bottom and layers of a profile must be ordered without overlap."""
    for col in (top, bottom):
        if df[col].isna().any():
            i = df[col].isna().idxmax()
            raise ValueError(f"{path}: row {_csv_row(i)}, column {col!r}: missing depth")
    bad = df[bottom] <= df[top]
    if bad.any():
        i = bad.idxmax()
        raise ValueError(
            f"{path}: row {_csv_row(i)}, column {bottom!r}: bottom depth {df.at[i, bottom]!r} is not below "
            f"top depth {df.at[i, top]!r}"
        )
    for _, g in df.groupby(group, sort=False):
        t = g[top].to_numpy()
        b = g[bottom].to_numpy()
        for k in range(1, len(g)):
            if t[k] < t[k - 1] or t[k] < b[k - 1] - 1e-6:
                i = g.index[k]
                raise ValueError(
                    f"{path}: row {_csv_row(i)}, column {top!r}: non-monotonic depths in profile "
                    f"{g[group].iloc[0]!r} (top {t[k]!r} cm after layer {t[k - 1]!r}–{b[k - 1]!r} cm)"
                )


def _check_non_negative(df: pd.DataFrame, path: Path, columns) -> None:
    for c in columns:
        bad = df[c] < 0
        if bad.any():
            i = bad.idxmax()
            raise ValueError(f"{path}: row {_csv_row(i)}, column {c!r}: negative value {df.at[i, c]!r}")


def _check_range(df: pd.DataFrame, path: Path, column: str, low: float, high: float, unit: str) -> None:
    bad = (df[column] < low) | (df[column] > high)
    if bad.any():
        i = bad.idxmax()
        raise ValueError(
            f"{path}: row {_csv_row(i)}, column {column!r}: {float(df.at[i, column]):g} outside [{low:g}, {high:g}] "
            f"{unit}"
        )


def _as_bool(series: pd.Series, path: Path, column: str) -> pd.Series:
    if series.dtype == bool:
        return series
    m = {"true": True, "false": False, "1": True, "0": False}
    s = series.astype(str).str.strip().str.lower()
    bad = ~s.isin(list(m))
    if bad.any():
        i = bad.idxmax()
        raise ValueError(f"{path}: row {_csv_row(i)}, column {column!r}: not a boolean ({series[i]!r})")
    return s.map(m).astype(bool)


# --------------------------------------------------------------------------------------------------
# QA rules, each a function
# --------------------------------------------------------------------------------------------------
def _duplicate_soc_profiles(layers: pd.DataFrame, profile_ids) -> list[list]:
    """Groups of profiles whose kept layers are the same SOC profile.

    Two profiles match when their kept layers, from the top, have the same ``top_cm``, ``bottom_cm``
    (mineral-surface reference), ``soc_pct`` and ``bd_g_cm3`` after rounding to ``DUPLICATE_DECIMALS``:
    what the calibration sees, whatever their organic layers, ¹⁴C or metadata.

    Args:
        layers: the ``layers`` table (kept mineral layers).
        profile_ids: the profiles to compare (e.g. those passing every other filter).

    Returns:
        One list per group of two or more profiles, each sorted by profile id; groups sorted by their first id.
    """
    cols = list(DUPLICATE_DECIMALS)
    lay = layers[layers["profile_id"].isin(list(profile_ids))].sort_values(["profile_id", "top_cm"])
    rounded = lay[cols].round(DUPLICATE_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    groups: dict[tuple, list] = {}
    for pid, g in rounded.groupby(lay["profile_id"], sort=True):
        groups.setdefault(tuple(map(tuple, g.to_numpy())), []).append(pid)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def _g(x) -> str:
    """A number for the evidence text (4 significant digits)."""
    return f"{x:.4g}"


def _span(values, unit: str = "") -> str:
    v = pd.Series(values, dtype=float).dropna()
    if v.empty:
        return "n/a"
    lo, hi = v.min(), v.max()
    return (f"{_g(lo)}" if lo == hi else f"{_g(lo)}-{_g(hi)}") + unit


def _depth_label(top, bottom) -> str:
    """Layer label of the QA table: "top-bottom" (cm below the mineral-soil surface)."""
    return f"{top:g}-{bottom:g}"


def _isolated_low_layers(raw: pd.DataFrame, keep: pd.Series) -> dict:
    """Rule ``QA_ISOLATED_LOW`` on the kept rows: {raw index: evidence} of interior layers whose SOC is below
    1/``ISOLATED_LOW_RATIO`` of both neighbouring kept layers and of the profile median."""
    k = raw[keep].sort_values(["profile_id", "top_cm_mineral0"])
    found = {}
    for _, g in k.groupby("profile_id", sort=True):
        c = g["soc_pct"].to_numpy(float)
        top, bot = g["top_cm_mineral0"].to_numpy(float), g["bottom_cm_mineral0"].to_numpy(float)
        med = float(np.median(c))
        for j in range(1, len(c) - 1):
            if c[j] < min(c[j - 1], c[j + 1], med) / ISOLATED_LOW_RATIO:
                found[g.index[j]] = (
                    f"SOC {_g(c[j])} % between {_g(c[j - 1])} % ({_depth_label(top[j - 1], bot[j - 1])} cm) and "
                    f"{_g(c[j + 1])} % ({_depth_label(top[j + 1], bot[j + 1])} cm), profile median {_g(med)} %: "
                    f"< 1/{ISOLATED_LOW_RATIO:g} of each; x100 = {_g(100 * c[j])} %"
                )
    return found


def _unit_slips(layers: pd.DataFrame, sites: pd.DataFrame, candidates: pd.Series, peers: pd.Series) -> dict:
    """Rule ``QA_UNIT_SLIP``: {sites index: (direction, evidence)} of candidate profiles about 100× off.

    Args:
        layers: the kept layers.
        sites: the sites table (``profile_id``, ``forest_type``, ``dataset``).
        candidates: profiles to test (bool, aligned with ``sites``).
        peers: profiles that form the forest-type reference (bool, aligned with ``sites``).
    """
    lay = layers[layers["profile_id"].isin(sites.loc[candidates | peers, "profile_id"])]
    g = lay.groupby("profile_id")
    med_density = g["soc_mg_cm3"].median()
    med_pct = g["soc_pct"].median()
    found = {}
    for i in sites.index[candidates]:
        pid, ft, ds = sites.at[i, "profile_id"], sites.at[i, "forest_type"], sites.at[i, "dataset"]
        others = sites.loc[peers & (sites["forest_type"] == ft) & (sites["profile_id"] != pid), "profile_id"]
        if len(others) < UNIT_SLIP_MIN_PEERS:
            continue
        ref = float(med_density.reindex(others).median())
        ratio = float(med_density[pid]) / ref
        p = lay[lay["profile_id"] == pid]
        low = ratio < 1.0 / UNIT_SLIP_RATIO and bool((p["soc_pct"] * 100.0 <= SOC_PCT_MAX).all())
        high = ratio > UNIT_SLIP_RATIO
        if not (low or high):
            continue
        n = pd.to_numeric(p["n_pct"], errors="coerce")
        n = n.where(n > 0)
        cn = (p["soc_pct"] / n).dropna()
        same_ds = sites.loc[
            (sites["dataset"] == ds) & (sites["profile_id"] != pid) & (candidates | peers), "profile_id"
        ]
        ds_text = (
            f"{len(same_ds)} other profile(s) of {ds}: median SOC {_g(float(med_pct.reindex(same_ds).median()))} %"
            if len(same_ds)
            else f"no other profile of {ds}"
        )
        scale = 100.0 if low else 0.01
        filled = int(p["bd_is_filled"].sum())
        found[i] = (
            "low" if low else "high",
            f"median SOC density {_g(float(med_density[pid]))} mg C cm-3 = "
            + (f"1/{1 / ratio:.0f} of" if low and ratio > 0 else f"{ratio:.0f} x")
            + f" the median of {len(others)} other {ft} profiles ({_g(ref)}); {len(p)} layers "
            f"{_depth_label(p['top_cm'].min(), p['bottom_cm'].max())} cm: SOC {_span(p['soc_pct'], ' %')} "
            f"(x{scale:g} = {_span(p['soc_pct'] * scale, ' %')}), "
            + (f"C:N {_span(cn)}" if len(cn) else "no N")
            + f", BD {_span(p['bd_g_cm3'])} g cm-3 ({'measured' if filled == 0 else f'{filled} gap-filled'}); "
            + ds_text,
        )
    return found


def _near_duplicate_soc_profiles(
    layers: pd.DataFrame, sites: pd.DataFrame, profile_ids, site_prefix: str = "he2016_"
) -> list[tuple]:
    """Partial copies of one SOC profile (rule ``QA_NEAR_DUPLICATE``).

    Among ``profile_ids``, profiles of the same dataset and coordinates (rounded to 0.01°) are compared by
    their kept layers' (``top_cm``, ``bottom_cm``, ``soc_pct``) rounded to ``DUPLICATE_DECIMALS``; bulk density
    is left out (Harkness 1986 profile 370 has two BD values swapped). Profiles are visited from the most
    layers down (ties: lowest id); one whose layers are all among a kept profile's is its copy.

    Returns:
        ``(kept_id, copy_id, evidence)`` per copy, sorted by copy id.
    """
    cols = ["top_cm", "bottom_cm", "soc_pct"]
    dec = {c: DUPLICATE_DECIMALS[c] for c in cols}
    lay = layers[layers["profile_id"].isin(list(profile_ids))].sort_values(["profile_id", "top_cm"])
    keys = {pid: g for pid, g in lay.groupby("profile_id")}
    sets = {pid: set(map(tuple, (g[cols].round(dec) + 0.0).to_numpy())) for pid, g in keys.items()}
    s = sites[sites["profile_id"].isin(keys)].copy()
    s["_loc"] = s["dataset"].astype(str) + ":" + s["lat"].round(2).astype(str) + "," + s["lon"].round(2).astype(str)
    out = []
    for _, grp in s.groupby("_loc", sort=True):
        order = sorted(grp["profile_id"], key=lambda q: (-len(sets[q]), q))
        kept: list = []
        for pid in order:
            host = next((k for k in kept if sets[pid] <= sets[k]), None)
            if host is None:
                kept.append(pid)
                continue
            a, b = keys[pid], keys[host].set_index(["top_cm", "bottom_cm"])
            bd_host = b["bd_g_cm3"].reindex(list(zip(a["top_cm"], a["bottom_cm"], strict=True))).to_numpy()
            n_bd = int((np.round(a["bd_g_cm3"].to_numpy(), 3) != np.round(bd_host, 3)).sum())
            r = grp.set_index("profile_id")
            out.append(
                (
                    host,
                    pid,
                    f"all {len(a)} kept layers ({_depth_label(a['top_cm'].min(), a['bottom_cm'].max())} cm, SOC "
                    f"{', '.join(_g(x) for x in a['soc_pct'])} %) have the SOC of {site_prefix}{host} "
                    f"({len(sets[host])} layers) at the same depths; same dataset ({r.at[pid, 'dataset']}) and "
                    f"coordinates ({_g(r.at[pid, 'lat'])}, {_g(r.at[pid, 'lon'])}); BD differs in {n_bd} layer(s); "
                    f"sampled {_g(r.at[pid, 'sample_year'])} vs {_g(r.at[host, 'sample_year'])}",
                )
            )
    return sorted(out, key=lambda x: x[1])


def _many_thin_layers(layers: pd.DataFrame, sites: pd.DataFrame) -> dict:
    """Rule ``QA_MANY_THIN`` on the usable profiles: {sites index: evidence}."""
    u = sites[sites["usable"]]
    med_n = u.groupby("forest_type")["n_layers"].median()
    thick = layers.groupby("profile_id")["thickness_cm"].median()
    found = {}
    for i in u.index:
        ft, n, pid = u.at[i, "forest_type"], int(u.at[i, "n_layers"]), u.at[i, "profile_id"]
        t = float(thick[pid])
        if n > MANY_LAYERS_FACTOR * med_n[ft] and t < THIN_LAYER_CM:
            n_type = int(u.loc[u["forest_type"] == ft, "n_layers"].sum())
            found[i] = (
                f"{n} layers (median thickness {_g(t)} cm) > {MANY_LAYERS_FACTOR:g} x the median {_g(med_n[ft])} "
                f"layers of the {int((u['forest_type'] == ft).sum())} usable {ft} profiles; {n} of their "
                f"{n_type} layers ({100 * n / n_type:.0f} %)"
            )
    return found


def _layer_flags(layers: pd.DataFrame) -> list[tuple]:
    """The layer flag rules (``QA_SOC_LOW``, ``QA_LOW_BD_LOW_SOC``, ``QA_CN``, ``QA_SOC_INCREASE``,
    ``QA_CONSTANT_BD``) on ``layers``: ``(layers index, rule, evidence)``."""
    out = []
    lay = layers.sort_values(["profile_id", "top_cm"])
    for i in lay.index[lay["soc_pct"] < SOC_LOW_PCT]:
        out.append((i, QA_SOC_LOW, f"SOC {_g(lay.at[i, 'soc_pct'])} % < {SOC_LOW_PCT:g} %"))
    low = (lay["bd_g_cm3"] < LOW_BD_G_CM3) & (lay["soc_pct"] < LOW_BD_SOC_PCT) & ~lay["bd_is_filled"]
    for i in lay.index[low]:
        out.append(
            (
                i,
                QA_LOW_BD_LOW_SOC,
                f"measured BD {_g(lay.at[i, 'bd_g_cm3'])} g cm-3 < {LOW_BD_G_CM3:g} with SOC "
                f"{_g(lay.at[i, 'soc_pct'])} % < {LOW_BD_SOC_PCT:g} %",
            )
        )
    n = pd.to_numeric(lay["n_pct"], errors="coerce") if "n_pct" in lay else pd.Series(np.nan, index=lay.index)
    lo, hi = CN_RANGE
    with np.errstate(divide="ignore"):
        cn = lay["soc_pct"] / n
    bad_cn = n.notna() & ((n <= 0) | (cn < lo) | (cn > hi))
    for i in lay.index[bad_cn]:
        what = "N = 0" if n[i] <= 0 else f"C:N {_g(cn[i])} outside {lo:g}-{hi:g}"
        out.append((i, QA_CN, f"{what} (SOC {_g(lay.at[i, 'soc_pct'])} %, N {_g(n[i])} %)"))
    prev = lay.groupby("profile_id")["soc_pct"].shift(1)
    prev_depth = lay.groupby("profile_id")["top_cm"].shift(1)
    up = prev.notna() & (lay["soc_pct"] > SOC_INCREASE_FACTOR * prev)
    for i in lay.index[up]:
        out.append(
            (
                i,
                QA_SOC_INCREASE,
                f"SOC {_g(lay.at[i, 'soc_pct'])} % > {SOC_INCREASE_FACTOR:g} x the {_g(prev[i])} % of the layer "
                f"above (from {_g(prev_depth[i])} cm)",
            )
        )
    by_profile = lay.groupby("profile_id")["bd_g_cm3"]
    n_layers = by_profile.transform("size")
    one_bd = (by_profile.transform("nunique") == 1) & (n_layers >= 3)
    for i in lay.index[one_bd & (lay["soc_pct"] > CONSTANT_BD_SOC_PCT)]:
        bd, c = lay.at[i, "bd_g_cm3"], lay.at[i, "soc_pct"]
        om = 1.724 * c
        bd_adams = 100.0 / (om / 0.244 + (100.0 - om) / bd)
        kind = "filled" if lay.at[i, "bd_is_filled"] else "measured"
        out.append(
            (
                i,
                QA_CONSTANT_BD,
                f"SOC {_g(c)} % > {CONSTANT_BD_SOC_PCT:g} % at BD {_g(bd)} g cm-3 ({kind}), the one BD of all "
                f"{n_layers[i]} layers of the profile; Adams (1973) with that BD as mineral BD "
                f"gives {_g(bd_adams)} g cm-3, i.e. {_g(10.0 * c * bd_adams)} instead of {_g(10.0 * c * bd)} mg C cm-3",
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# the QA table
# --------------------------------------------------------------------------------------------------
def _qa_table(rows: list[tuple], sites: pd.DataFrame) -> pd.DataFrame:
    """The QA table from ``(profile_id, layer, source_row, rule, evidence)`` rows: sorted by rule (in
    ``QA_RULES`` order), profile and depth; ``decision`` from ``QA_RULES``."""
    q = pd.DataFrame(rows, columns=["profile_id", "layer", "source_row", "rule", "evidence"])
    s = sites.set_index("profile_id")
    q["site_id"] = q["profile_id"].map(s["site_id"])
    q["dataset"] = q["profile_id"].map(s["dataset"])
    q["forest_type"] = q["profile_id"].map(s["forest_type"])
    q["decision"] = q["rule"].map(QA_RULES)
    q["source_row"] = pd.array(q["source_row"], dtype="Int64")
    q["_rule"] = q["rule"].map({r: k for k, r in enumerate(QA_RULES)})
    q["_top"] = [float(x.split("-")[0]) if x != "profile" else -1.0 for x in q["layer"]]
    q = q.sort_values(["_rule", "profile_id", "_top"], kind="stable")
    return q[list(QA_COLUMNS)].reset_index(drop=True)


def _attach_qa_flags(layers: pd.DataFrame, qa_table: pd.DataFrame) -> None:
    """Fill ``layers["qa_flag"]``: the QA rules that name the layer (by CSV row) or its whole profile."""
    flags: dict[int, list] = {}
    by_row = layers.reset_index().set_index("source_row")["index"]
    by_profile = layers.groupby("profile_id").groups
    for r in qa_table.itertuples():
        idx = list(by_profile.get(r.profile_id, [])) if r.layer == "profile" else [by_row.get(r.source_row)]
        for j in idx:
            if j is not None and not pd.isna(j):
                flags.setdefault(int(j), []).append(r.rule)
    order = {r: k for k, r in enumerate(QA_RULES)}
    layers["qa_flag"] = [";".join(sorted(set(flags.get(j, [])), key=order.get)) for j in layers.index]


def write_qa_table(tables: SiteTables, path: str | os.PathLike | None = None) -> Path:
    """Write the QA table of ``tables`` (default: the repository's ``data/qa_flags.csv``).

    Args:
        tables: the result of :func:`build_site_tables` with the default tables (SiteTables).
        path: output file (path).

    Returns:
        The path written.
    """
    p = Path(path) if path is not None else PROJECT_DATA_DIR / QA_TABLE_FILE
    p.write_text(qa_table_text(tables), encoding="utf-8")
    return p


def qa_table_text(tables: SiteTables) -> str:
    """The QA table of ``tables`` as CSV text, exactly as :func:`write_qa_table` writes it."""
    return tables.qa.to_csv(index=False, lineterminator="\n")


def qa_summary(tables: SiteTables) -> str:
    """Counts of the QA table per rule: findings, profiles, layers, and the decision (plain text)."""
    q = tables.qa
    lines = [f"QA findings ({QA_TABLE_FILE}; rules in data/README.md): {len(q)}"]
    for rule, decision in QA_RULES.items():
        x = q[q["rule"] == rule]
        if x.empty:
            continue
        n_lay = int((x["layer"] != "profile").sum())
        what = f"{n_lay} layer(s) of {x['profile_id'].nunique()} profile(s)" if n_lay else f"{len(x)} profile(s)"
        lines.append(f"  {len(x):5d}  {rule} ({decision}): {what}")
    return "\n".join(lines)
