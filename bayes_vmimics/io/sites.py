"""Real site data: raw forest-soil profiles → tidy site and layer tables (project issue 4).

Raw files are read from the data folder (``--data-dir`` or ``$BAYES_VMIMICS_DATA``; see
``data/README.md``); the small tables this project authors itself (forest-type mapping, profile
exclusions, lignin:N, litter partition, calibration/validation split) live in the repository's ``data/``
folder.

Sources
    Every source present in the data folder by default (He et al. 2016, and ISRaD when the folder has an ``israd*``
    subfolder: ``bayes_vmimics.io.israd``, ``data/README.md`` §6), curated by the same filters and QA rules
    (``_curate``); ``build_site_tables(sources=("he2016",))`` gives the He-only tables of the paper comparison.

Tables
    ``sites``: one row per profile, every profile of the source kept, with ``usable`` and
    ``exclusion_reason``; ``layers``: one row per kept mineral-soil layer, with its QA flags (``qa_flag``);
    ``log``: one row per excluded layer or profile with the reason; ``qa``: one row per QA finding (rule,
    decision, evidence), committed as ``data/qa_flags.csv``. Columns are described in ``data/README.md``.

Decisions (documented in ``data/README.md``)
    * Depth reference: the mineral-soil surface is 0 cm (He et al. 2016 ``top_cm_mineral0``). Organic
      layers (bottom ≤ 0) are dropped: the model's aboveground litter input stands for the forest floor.
      Layers straddling 0 (top < 0 < bottom) are dropped too, because their C concentration mixes organic
      and mineral material and cannot be apportioned (none occur in the He et al. file; tested).
    * F14C: computed from Δ14C and the sampling year (``f14c_from_d14c``); the compilation's
      ``f14c_reported`` is mostly percent modern (pMC), so it is used only where Δ14C is missing, divided
      by 100 when > 2.
    * Soil temperature is MAT (°C); Wang et al. (2021) used daily GSWP3 air temperature.
    * Litter input: measured aboveground litterfall where reported (taken as g C m⁻² yr⁻¹, leaf
      litterfall; see README), else NPP of the Miami model (Lieth 1975) × 0.47 g C g⁻¹, split above/below
      by ``data/litter_partition.csv``; lignin:N from ``data/lignin_n.csv``; clay measured or the median
      of measured profiles of the same forest type. Every estimate carries a flag.
    * Profiles excluded by review: ``data/profile_exclusions.csv`` lists profiles whose raw values are judged
      wrong (e.g. SOC units); they are dropped as a profile filter, never corrected.
    * SOC = 0 with no reported value (``soc_pct_reported`` empty) is He et al.'s placeholder for a missing
      value, not a measurement: such layers are dropped like missing SOC (a filter of their own).
    * Duplicate SOC profiles (pseudo-replicates): usable profiles whose kept layers carry identical depths,
      SOC and bulk density (often with different ¹⁴C) are one SOC profile; the lowest profile id is kept.
      Partial copies (same dataset and place, the same SOC at the same depths) are dropped too.
    * QA rules (``QA_RULES``; thresholds as module constants): isolated near-zero layers and likely ×100 unit
      slips are excluded, profiles of many thin layers downweighted, implausible values flagged; every
      finding is listed with its evidence, nothing is dropped silently.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..atmosphere import d14c_to_f14c, hua2013_zone
from ..constants import FOREST_TYPES
from ..forcing import SiteForcing
from ..resources import project_data_dir
from .datadir import data_file, read_table

log = logging.getLogger(__name__)

#: The project's own small tables (repository ``data/``, packaged as ``bayes_vmimics.project_tables``).
PROJECT_DATA_DIR = project_data_dir()

HE2016_FILE = "he2016_forest_layers.csv"
#: Source keys of the ``source`` column and of ``build_site_tables(sources=...)``.
HE2016_SOURCE = "he2016"
ISRAD_SOURCE = "israd"
SOURCES = (HE2016_SOURCE, ISRAD_SOURCE)
#: Sources of ``build_site_tables(sources=None)``: every source present in the data folder (He et al. alone when it
#: has no ISRaD subfolder); ``sources=("he2016",)`` gives the He-only tables (the paper comparison).
DEFAULT_SOURCES = "all"
MCFARLANE_FILE = "he2016_mcfarlane2013_layers.csv"
HOWLAND_FILE = "israd_gaudinski2001_howland_layers.csv"
SIX_SITES_FILE = "six_sites_metadata.csv"

#: The four forest types of Wang et al. (2021) Sect. 2.5.2 (ENF, EBF, DBF, BNF).
FOUR_TYPES = FOREST_TYPES
#: Explicit classes kept out of the four-type analyses.
OTHER_TYPES = ("DNF", "MIX", "UNK", "NFO")
ALL_TYPES = FOUR_TYPES + OTHER_TYPES

#: Quality limits (issue 4).
MIN_LAYERS = 3
SOC_PCT_MAX = 60.0
BD_RANGE = (0.05, 2.2)
#: Carbon fraction of dry plant matter (g C g⁻¹) used with the Miami model.
CARBON_FRACTION = 0.47
#: Plausible ratio of reported aboveground litterfall to the Miami-based aboveground estimate.
LITTERFALL_RATIO_RANGE = (0.2, 3.0)
#: Default seed of the saved calibration/validation split.
DEFAULT_SPLIT_SEED = 2021
#: The saved calibration/validation split (repository ``data/``).
SPLIT_FILE = "site_split.csv"
#: Columns of the saved split.
SPLIT_COLUMNS = ("site_id", "profile_id", "forest_type", "has_c14", "group", "split", "seed")
#: Columns of the profile-exclusion table (``data/profile_exclusions.csv``), all required, no others.
EXCLUSION_COLUMNS = ("profile_id", "site_id", "dataset", "reason", "evidence", "decision")
#: Decisions the profile-exclusion table may record.
EXCLUSION_DECISIONS = ("exclude",)
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
    # ISRaD only (bayes_vmimics.io.israd): profile flags from pro_permafrost and pro_peatland
    "permafrost_profile": "flag",
    "peatland_profile": "flag",
}
#: Columns of the QA table (``SiteTables.qa``, ``data/qa_flags.csv``).
QA_COLUMNS = ("site_id", "profile_id", "dataset", "forest_type", "layer", "source_row", "rule", "decision", "evidence")
#: The committed QA table, generated by :func:`write_qa_table` (``analyses/00_prepare_data.py --write-qa``).
QA_TABLE_FILE = "qa_flags.csv"

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


@dataclass
class SiteTables:
    """Tidy site data.

    Attributes:
        sites: one row per profile (columns in ``data/README.md``).
        layers: one row per kept mineral layer (columns in ``data/README.md``).
        log: excluded layers and profiles: ``file``, ``row`` (1-based CSV line, header = line 1; empty
            for profile-level entries), ``profile_id``, ``column``, ``value``, ``reason``.
        qa: one row per QA finding (columns ``QA_COLUMNS``; rules ``QA_RULES``): every layer and profile the
            QA rules exclude, downweight or flag, with the evidence; ``data/qa_flags.csv`` is this table for
            the raw files. The layers' own findings are in ``layers["qa_flag"]``.
    """

    sites: pd.DataFrame
    layers: pd.DataFrame
    log: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_LOG_COLUMNS))
    qa: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(QA_COLUMNS)))

    def usable_sites(self, *, four_types_only: bool = True) -> pd.DataFrame:
        """Usable profiles, by default only those of the four forest types."""
        s = self.sites[self.sites["usable"]]
        if four_types_only:
            s = s[s["forest_type"].isin(FOUR_TYPES)]
        return s


_LOG_COLUMNS = ["file", "row", "profile_id", "column", "value", "reason"]


# --------------------------------------------------------------------------------------------------
# unit conversions and small published models
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


def miami_npp(mat_c, map_mm):
    """Net primary production of the Miami model (Lieth 1975).

    NPP = min(3000 / (1 + exp(1.315 − 0.119 T)), 3000 (1 − exp(−0.000664 P))).

    Args:
        mat_c: mean annual air temperature T (°C).
        map_mm: mean annual precipitation P (mm yr⁻¹).

    Returns:
        NPP (g dry matter m⁻² yr⁻¹).
    """
    t = np.asarray(mat_c, dtype=float)
    p = np.asarray(map_mm, dtype=float)
    npp_t = 3000.0 / (1.0 + np.exp(1.315 - 0.119 * t))
    npp_p = 3000.0 * (1.0 - np.exp(-0.000664 * p))
    return np.minimum(npp_t, npp_p)


def _hua_zone(lat: float, lon: float) -> str | None:
    if not (np.isfinite(lat) and np.isfinite(lon)):
        return None
    return hua2013_zone(lat, lon)


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


def _load_type_table(name: str, columns) -> pd.DataFrame:
    p = PROJECT_DATA_DIR / name
    t = _read_csv(p)
    _require_columns(t, p, ["forest_type", *columns])
    missing = set(ALL_TYPES) - set(t["forest_type"])
    if missing:
        raise ValueError(f"{p}: column 'forest_type': no row for {sorted(missing)}")
    return t.set_index("forest_type")


def load_lignin_n() -> pd.DataFrame:
    """Lignin:N per forest type (``data/lignin_n.csv``; g g⁻¹), indexed by forest type."""
    t = _load_type_table("lignin_n.csv", ["lignin_n_above", "lignin_n_below", "source"])
    if (t[["lignin_n_above", "lignin_n_below"]] > 0.85 / 0.013).any().any():
        raise ValueError("data/lignin_n.csv: lignin:N above 65.38 gives a negative metabolic fraction")
    return t


def load_litter_partition() -> pd.DataFrame:
    """Belowground fraction of total litter input per forest type (``data/litter_partition.csv``; 0–1)."""
    t = _load_type_table("litter_partition.csv", ["frac_below", "source"])
    if ((t["frac_below"] < 0) | (t["frac_below"] > 1)).any():
        raise ValueError("data/litter_partition.csv: column 'frac_below' must be within 0–1")
    return t


# --------------------------------------------------------------------------------------------------
# curation
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


def _add_forcing(sites: pd.DataFrame, log_entries: list, fname: str) -> pd.DataFrame:
    """Litter inputs, lignin:N, clay fallback and soil temperature, each flagged."""
    lig = load_lignin_n()
    part = load_litter_partition()
    s = sites
    npp_dm = miami_npp(s["mat_c"], s["map_mm"])
    s["npp_miami_g_c_m2_yr"] = npp_dm * CARBON_FRACTION
    frac_below = s["forest_type"].map(part["frac_below"]).astype(float)
    s["frac_below"] = frac_below
    est_above = s["npp_miami_g_c_m2_yr"] * (1.0 - frac_below)
    s["litter_below_g_c_m2_yr"] = s["npp_miami_g_c_m2_yr"] * frac_below
    s["litter_below_source"] = "Miami NPP x frac_below"
    measured = s["litterfall_above_reported"].notna() & (s["litterfall_above_reported"] > 0)
    ratio = s["litterfall_above_reported"] / est_above
    lo, hi = LITTERFALL_RATIO_RANGE
    implaus = measured & ((ratio < lo) | (ratio > hi))
    for i in s.index[implaus]:
        log_entries.append(
            dict(
                file=fname,
                row=None,
                profile_id=s.at[i, "profile_id"],
                column="litterfall_above",
                value=s.at[i, "litterfall_above_reported"],
                reason=(f"reported litterfall / Miami estimate = {ratio[i]:.2f} outside {lo}–{hi}; estimate used"),
            )
        )
    use = measured & ~implaus
    s["litter_above_g_c_m2_yr"] = np.where(use, s["litterfall_above_reported"], est_above)
    s["litter_above_is_measured"] = use.astype(bool)
    s["litter_above_source"] = np.where(
        use, "reported litterfall (assumed g C m-2 yr-1)", "Miami NPP x 0.47 x (1 - frac_below)"
    )
    s["lignin_n_above"] = s["forest_type"].map(lig["lignin_n_above"]).astype(float)
    s["lignin_n_below"] = s["forest_type"].map(lig["lignin_n_below"]).astype(float)
    s["lignin_n_is_measured"] = False
    s["lignin_n_source"] = "data/lignin_n.csv (per forest type)"
    # clay fallback: median of measured profiles of the same forest type, else of all measured profiles
    meas = s["clay_pct_measured"]
    med_type = s.assign(c=meas).groupby("forest_type")["c"].median()
    med_all = float(meas.median()) if meas.notna().any() else float("nan")
    fb = s["forest_type"].map(med_type)
    fb_src = np.where(fb.notna(), "median of measured profiles of the same forest type", "median of all measured")
    fb = fb.fillna(med_all)
    s["clay_is_measured"] = meas.notna()
    s["clay_pct"] = meas.fillna(fb)
    s["clay_source"] = np.where(meas.notna(), "measured (thickness-weighted mean of mineral layers)", fb_src)
    s["soil_temperature_c"] = s["mat_c"]
    s["soil_temperature_source"] = "MAT (compilation); Wang et al. 2021 used daily GSWP3 air temperature"
    return s


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


def build_site_tables(
    data_dir: str | os.PathLike | None = None,
    *,
    sources: tuple[str, ...] | str | None = None,
    exclude_filled_bd: bool = False,
    path: str | os.PathLike | None = None,
    forest_types: str | os.PathLike | None = None,
    exclusions: str | os.PathLike | bool | None = None,
    split: str | os.PathLike | None = None,
    deduplicate: bool = True,
    qa: bool = True,
    israd_dir: str | os.PathLike | None = None,
    israd_forest_types: str | os.PathLike | pd.DataFrame | None = None,
    matches: str | os.PathLike | pd.DataFrame | bool | None = None,
) -> SiteTables:
    """Build the tidy site and layer tables from the He et al. (2016) forest compilation and, on request, ISRaD.

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).
        sources: the sources to combine, a tuple from ``SOURCES`` (``"he2016"``, ``"israd"``); ``"all"`` for
            every source present in the data folder (ISRaD: an ``israd*`` subfolder, or ``israd_dir``); None
            for ``DEFAULT_SOURCES`` (``"all"``); ``("he2016",)`` for the He-only tables (tuple of str, "all" or
            None).
        exclude_filled_bd: drop layers whose bulk density was gap-filled by He et al. (bool).
        path: use this raw layer file instead of the one in the data folder (path).
        forest_types: alternative forest-type table (path); default ``data/forest_types.csv``.
        exclusions: alternative profile-exclusion table (path); default ``data/profile_exclusions.csv``;
            ``False`` applies none (path or False).
        split: calibration/validation table to attach to the sites of every source (path); default
            ``data/site_split.csv`` if present.
        deduplicate: after the other filters, keep one profile of each group of pseudo-replicates and mark
            the others not usable, with ``duplicate_of`` naming the kept site: identical kept layers
            (:func:`_duplicate_soc_profiles`; the lowest profile id is kept), then partial copies
            (:func:`_near_duplicate_soc_profiles`) (bool).
        qa: apply the QA rules ``QA_RULES`` other than the pseudo-replicate ones: exclude isolated near-zero
            layers and profiles with a likely ×100 unit slip, and flag or downweight layers (column
            ``qa_flag``); every finding is a row of ``SiteTables.qa`` (bool).
        israd_dir: the ISRaD folder (path); default the newest ``israd*`` subfolder of the data folder.
        israd_forest_types: the ISRaD forest-type table (path or DataFrame); default
            ``data/israd_forest_types.csv`` (absent: no ISRaD profile has a forest type).
        matches: He–ISRaD matches (path or DataFrame, columns of ``bayes_vmimics.io.israd.MATCH_COLUMNS`` and
            ``match``); default ``data/source_matches.csv`` if present; ``False`` for none (path, DataFrame or False).

    Returns:
        ``SiteTables`` with every profile in ``sites`` (``usable`` flags those passing all filters; ``source``
        says "he2016" or "israd"), the kept mineral layers of all profiles in ``layers`` (with ``qa_flag``),
        the exclusions in ``log`` and the QA findings in ``qa``. With ``sources=("he2016",)`` every row and site
        id is the He-only build's; with ISRaD, the ISRaD profiles follow (ids ``israd_…``; see
        :func:`bayes_vmimics.io.israd.build_israd_tables`) and He profiles matched to an ISRaD profile carry
        the match and its gridded covariates.

    Raises:
        DataFolderError: folder or raw file missing (also a requested ISRaD folder or table).
        ValueError: bad raw file (naming file, row and column), a profile missing from the
            forest-type table, a bad exclusion table (see :func:`load_profile_exclusions`), an unknown source.
    """
    srcs = resolve_sources(sources, data_dir, israd_dir=israd_dir)
    he = None
    if "he2016" in srcs:
        he = _build_he2016_tables(
            data_dir,
            exclude_filled_bd=exclude_filled_bd,
            path=path,
            forest_types=forest_types,
            exclusions=exclusions,
            deduplicate=deduplicate,
            qa=qa,
        )
    if "israd" not in srcs:
        return _attach_split(he, split)
    from .israd import build_israd_tables, combine_tables, load_source_matches

    m = load_source_matches(matches if he is not None else False)
    isr = build_israd_tables(
        data_dir,
        israd_dir=israd_dir,
        forest_types=israd_forest_types,
        matches=m,
        he_sites=None if he is None else he.sites,
        deduplicate=deduplicate,
        qa=qa,
    )
    return _attach_split(isr if he is None else combine_tables(he, isr, m), split)


def resolve_sources(
    sources: tuple[str, ...] | str | None,
    data_dir: str | os.PathLike | None = None,
    *,
    israd_dir: str | os.PathLike | None = None,
) -> tuple[str, ...]:
    """The sources :func:`build_site_tables` combines.

    Args:
        sources: a tuple (or one name) from ``SOURCES``; ``"all"`` for every source present in the data folder
            (``he2016``: its layer file; ``israd``: ``israd_dir`` or an ``israd*`` subfolder); None for
            ``DEFAULT_SOURCES`` ("all") (tuple of str, str or None).
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).
        israd_dir: explicit ISRaD folder (path).

    Returns:
        The sources, in ``SOURCES`` order (tuple of str).

    Raises:
        ValueError: an unknown or empty source list, or ``"all"`` with no source present.
    """
    if sources is None:
        sources = DEFAULT_SOURCES
    if isinstance(sources, str) and sources == "all":
        from .datadir import resolve_data_dir
        from .israd import find_israd_dir

        folder = resolve_data_dir(data_dir)
        present = []
        if (folder / HE2016_FILE).is_file():
            present.append("he2016")
        if israd_dir is not None or find_israd_dir(folder) is not None:
            present.append("israd")
        if not present:
            raise ValueError(f"sources='all': no source in data folder {str(folder)!r} (see data/README.md)")
        return tuple(present)
    names = (sources,) if isinstance(sources, str) else tuple(sources)
    bad = [n for n in names if n not in SOURCES]
    if bad or not names:
        raise ValueError(f"sources: {bad or 'empty'} not in {SOURCES} (or 'all')")
    return tuple(n for n in SOURCES if n in names)


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


def _attach_split(tables: SiteTables, split: str | os.PathLike | None = None) -> SiteTables:
    """Attach the saved split (``split`` or ``data/site_split.csv``) to the sites of every source, as ``split``.

    The saved split is kept as is: its rows of profiles that are no longer usable stay in it and are skipped (a
    note in ``log``); rows of sources not built are ignored.
    """
    sites = tables.sites
    split_path = Path(split) if split is not None else PROJECT_DATA_DIR / SPLIT_FILE
    sites["split"] = None
    if split_path.is_file():
        sp = _read_csv(split_path)
        _require_columns(sp, split_path, ["site_id", "split"])
        sites["split"] = sites["site_id"].map(sp.set_index("site_id")["split"])
        stale = sites.loc[sites["split"].notna() & ~sites["usable"].astype(bool), "site_id"]
        if len(stale):
            shown = ", ".join(stale.iloc[:10]) + (f" and {len(stale) - 10} more" if len(stale) > 10 else "")
            note = dict(
                file=split_path.name,
                row=None,
                profile_id=None,
                column="site_id",
                value=", ".join(stale),
                reason=f"{len(stale)} saved split row(s) name profiles that are not usable, skipped: {shown}",
            )
            tables.log = pd.concat([tables.log, pd.DataFrame([note], columns=_LOG_COLUMNS)], ignore_index=True)
    return tables


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
        add_forcing: ``f(sites, entries, fname) -> sites``: forcing columns (:func:`_add_forcing`).
        deduplicate, qa: as :func:`build_site_tables` (bool).

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


# --------------------------------------------------------------------------------------------------
# calibration / validation split
# --------------------------------------------------------------------------------------------------
def calibration_split(sites: pd.DataFrame, seed: int = DEFAULT_SPLIT_SEED) -> pd.DataFrame:
    """Seeded, stratified split of usable four-type profiles into calibration and validation halves.

    Profiles at the same coordinates (rounded to 0.01°) form one group and go to the same half, so
    replicate pits of one site never sit on both sides. Strata are forest type × (any ¹⁴C in the
    group); within a stratum the groups are shuffled with ``np.random.default_rng(seed)`` and each is
    given to the half holding fewer profiles so far (ties to calibration).

    Args:
        sites: the ``sites`` table of :func:`build_site_tables` (needs ``site_id``, ``forest_type``,
            ``usable``, ``has_c14``, ``lat``, ``lon``).
        seed: random seed (integer).

    Returns:
        DataFrame with ``site_id``, ``profile_id``, ``forest_type``, ``has_c14``, ``group``, ``split``
        ("calibration" or "validation") and ``seed``, sorted by ``site_id``.
    """
    s = sites[sites["usable"] & sites["forest_type"].isin(FOUR_TYPES)].copy()
    s = _by_profile_id(s)
    s["group"] = (
        s["forest_type"] + ":" + s["lat"].round(2).map("{:.2f}".format) + "," + s["lon"].round(2).map("{:.2f}".format)
    )
    gc14 = s.groupby("group")["has_c14"].transform("any")
    s["_stratum_c14"] = gc14
    rng = np.random.default_rng(seed)
    assign: dict[str, str] = {}
    for ft in FOUR_TYPES:
        counts = {"calibration": 0, "validation": 0}
        for c14 in (True, False):
            st = s[(s["forest_type"] == ft) & (s["_stratum_c14"] == c14)]
            sizes = st.groupby("group").size().sort_index()
            order = rng.permutation(len(sizes))
            for k in order:
                grp = sizes.index[k]
                half = "calibration" if counts["calibration"] <= counts["validation"] else "validation"
                assign[grp] = half
                counts[half] += int(sizes.iloc[k])
    s["split"] = s["group"].map(assign)
    s["seed"] = int(seed)
    cols = ["site_id", "profile_id", "forest_type", "has_c14", "group", "split", "seed"]
    return _by_profile_id(s[cols]).reset_index(drop=True)


def _location(lat, lon) -> pd.Series:
    """Location key of a split group: coordinates rounded to 0.01° (about 1 km), as text "lat,lon"."""
    la, lo = np.round(np.asarray(lat, dtype=float), 2), np.round(np.asarray(lon, dtype=float), 2)
    return pd.Series([f"{a:.2f},{b:.2f}" for a, b in zip(la, lo, strict=True)], dtype=object)


def load_saved_split(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The saved split (``data/site_split.csv`` or ``path``) as read, every column as text, or an empty table.

    Args:
        path: another split file (path).

    Returns:
        DataFrame with columns ``SPLIT_COLUMNS`` (text), in file order.
    """
    p = Path(path) if path is not None else PROJECT_DATA_DIR / SPLIT_FILE
    if not p.is_file():
        return pd.DataFrame(columns=list(SPLIT_COLUMNS))
    sp = pd.read_csv(p, dtype=str, keep_default_na=False)
    _require_columns(sp, p, list(SPLIT_COLUMNS))
    return sp[list(SPLIT_COLUMNS)]


def split_all_sources(
    sites: pd.DataFrame, saved: pd.DataFrame | None = None, seed: int = DEFAULT_SPLIT_SEED
) -> pd.DataFrame:
    """The calibration/validation split of every usable four-type site: the saved rows unchanged, new sites added.

    Every row of ``saved`` is kept exactly as it is (the He et al. split of the paper comparison, rows of profiles
    no longer usable included). The usable four-type sites not in it (the ISRaD profiles) are split per forest
    type by the grouped rule of :func:`calibration_split`, with groups by **location across entries and forest
    types** (coordinates rounded to 0.01°: Beem-Miller 2022 and Nave 2021 sample NEON sites at the same
    coordinates): a group at the location of a saved row, or holding the ISRaD profile of a He profile's "same
    study nearby" pair (``israd_match``, ``israd_site_id``), goes to that row's half (the first such row by the
    saved order); the other groups are shuffled with ``np.random.default_rng(seed)`` within each forest type ×
    (any ¹⁴C in the group) and each given to the half holding fewer new profiles of the type so far (ties to
    calibration), the pinned groups counted first. The new sites are thus balanced per forest type within their
    source, and the saved halves are not changed.

    Args:
        sites: the ``sites`` table of :func:`build_site_tables` (``site_id``, ``profile_id``, ``forest_type``,
            ``usable``, ``has_c14``, ``lat``, ``lon``; optional ``israd_match``, ``israd_site_id``).
        saved: the saved split (:func:`load_saved_split`); None: :func:`calibration_split` of the He et al. sites.
        seed: random seed (integer).

    Returns:
        DataFrame with ``SPLIT_COLUMNS``: the saved rows first (as given), then the new sites sorted by
        ``site_id``; ``group`` of a new site is ``<forest type>:<lat>,<lon>`` as for the saved rows.
    """
    if saved is None:
        he = sites[sites.get("source", pd.Series(HE2016_SOURCE, index=sites.index)) == HE2016_SOURCE]
        saved = calibration_split(he, seed=seed).astype(str)
    saved = saved[list(SPLIT_COLUMNS)].reset_index(drop=True)
    u = sites[sites["usable"].astype(bool) & sites["forest_type"].isin(FOUR_TYPES)]
    new = u[~u["site_id"].isin(saved["site_id"])].copy()
    new["_loc"] = _location(new["lat"].to_numpy(float), new["lon"].to_numpy(float)).to_numpy()
    # pins: the half of a saved row at the same location, or of the He profile of a "same study nearby" pair
    known = sites.set_index("site_id")
    pin: dict[str, str] = {}
    half_of = dict(zip(saved["site_id"], saved["split"], strict=True))
    for sid in saved["site_id"]:
        if sid in known.index and pd.notna(known.at[sid, "lat"]) and pd.notna(known.at[sid, "lon"]):
            loc = _location([float(known.at[sid, "lat"])], [float(known.at[sid, "lon"])]).iloc[0]
            pin.setdefault(loc, half_of[sid])
    if "israd_match" in sites:
        nearby = sites[(sites["israd_match"] == "same study nearby") & sites["site_id"].isin(half_of)]
        loc_of = dict(zip(new["site_id"], new["_loc"], strict=True))
        for he_id, ir_id in zip(nearby["site_id"], nearby["israd_site_id"], strict=True):
            if ir_id in loc_of:
                pin.setdefault(loc_of[ir_id], half_of[he_id])
    rng = np.random.default_rng(seed)
    assign: dict[str, str] = {}
    for ft in FOUR_TYPES:
        x = new[new["forest_type"] == ft]
        sizes = x.groupby("_loc").size().sort_index()
        gc14 = x.groupby("_loc")["has_c14"].any().reindex(sizes.index)
        counts = {"calibration": 0, "validation": 0}
        for loc, n in sizes.items():
            half = assign.get(loc) or pin.get(loc)
            if half is not None:
                assign[loc] = half
                counts[half] += int(n)
        for c14 in (True, False):
            free = [loc for loc in sizes.index if gc14[loc] == c14 and loc not in assign]
            for k in rng.permutation(len(free)):
                loc = free[k]
                half = "calibration" if counts["calibration"] <= counts["validation"] else "validation"
                assign[loc] = half
                counts[half] += int(sizes[loc])
    new["split"] = new["_loc"].map(assign)
    new["group"] = new["forest_type"] + ":" + new["_loc"]
    new["seed"] = str(int(seed))
    new["profile_id"] = new["profile_id"].astype(str)
    new["has_c14"] = new["has_c14"].astype(bool).astype(str)
    rows = new.sort_values("site_id")[list(SPLIT_COLUMNS)]
    return pd.concat([saved, rows.astype(str)], ignore_index=True)


def write_split(split: pd.DataFrame, path: str | os.PathLike | None = None) -> Path:
    """Write a split (:func:`split_all_sources`) to ``path`` (default ``data/site_split.csv``), saved rows unchanged.

    Args:
        split: the split, every column as text (DataFrame).
        path: output file (path).

    Returns:
        The path written.
    """
    p = Path(path) if path is not None else PROJECT_DATA_DIR / SPLIT_FILE
    split[list(SPLIT_COLUMNS)].to_csv(p, index=False, lineterminator="\n")
    return p


def _by_profile_id(s: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by ``profile_id``: He et al.'s integer ids in order, then text ids (ISRaD site ids) in order."""
    if s["profile_id"].map(lambda p: isinstance(p, str)).any():
        return s.loc[sorted(s.index, key=lambda i: (isinstance(s.at[i, "profile_id"], str), s.at[i, "profile_id"]))]
    return s.sort_values("profile_id")


# --------------------------------------------------------------------------------------------------
# forcing for the model
# --------------------------------------------------------------------------------------------------
def site_forcing(site_row) -> SiteForcing:
    """Model forcing of one site from a row of the ``sites`` table.

    Args:
        site_row: a row (``pd.Series`` or mapping) with ``soil_temperature_c`` (°C), ``clay_pct`` (%),
            ``litter_above_g_c_m2_yr`` and ``litter_below_g_c_m2_yr`` (g C m⁻² yr⁻¹), ``lignin_n_above``
            and ``lignin_n_below`` (g g⁻¹), ``lat`` and ``lon`` (decimal degrees).

    Returns:
        ``SiteForcing`` with temperature = MAT, clay as a fraction (0–1).

    Raises:
        ValueError: a required value is missing or out of range (message names the site).
    """
    r = site_row
    sid = r.get("site_id", "?") if hasattr(r, "get") else "?"
    need = (
        "soil_temperature_c",
        "clay_pct",
        "litter_above_g_c_m2_yr",
        "litter_below_g_c_m2_yr",
        "lignin_n_above",
        "lignin_n_below",
    )
    vals = {}
    for k in need:
        v = r[k] if k in r else None
        if v is None or (isinstance(v, float) and math.isnan(v)):
            raise ValueError(f"site {sid}: column {k!r} is missing; cannot build SiteForcing")
        vals[k] = float(v)
    lat = r["lat"] if "lat" in r else None
    lon = r["lon"] if "lon" in r else None
    lat = None if lat is None or pd.isna(lat) else float(lat)
    lon = None if lon is None or pd.isna(lon) else float(lon)
    try:
        return SiteForcing(
            temperature=vals["soil_temperature_c"],
            clay=vals["clay_pct"] / 100.0,
            litter_above=vals["litter_above_g_c_m2_yr"],
            litter_below=vals["litter_below_g_c_m2_yr"],
            lignin_n_above=vals["lignin_n_above"],
            lignin_n_below=vals["lignin_n_below"],
            latitude=lat,
            longitude=lon,
        )
    except ValueError as exc:
        raise ValueError(f"site {sid}: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# named example sites
# --------------------------------------------------------------------------------------------------
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
