"""The calibration/validation split of the sites: seeded, stratified, grouped by location, saved in ``data/``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .datadir import PROJECT_DATA_DIR
from .he2016 import HE2016_SOURCE
from .qa import _read_csv, _require_columns
from .tables import _LOG_COLUMNS, FOUR_TYPES, SiteTables

#: Default seed of the saved calibration/validation split.
DEFAULT_SPLIT_SEED = 2021
#: The saved calibration/validation split (repository ``data/``).
SPLIT_FILE = "site_split.csv"
#: Columns of the saved split.
SPLIT_COLUMNS = ("site_id", "profile_id", "forest_type", "has_c14", "group", "split", "seed")


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
