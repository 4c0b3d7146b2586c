"""Loaders of the atmospheric 14C records in the raw-data folder (data/PROVENANCE files 1–4; spec Sect. 11).

Each returns an :class:`~bayes_vmimics.atmosphere.AtmosphericRecord` of calendar-year mean F14C for the five
Hua et al. (2013) zones, with every gap fill and mapping written into its ``notes``.

- ``hua2013`` (default; P §2.5.3): ``atm14c_hua2013_annual.csv``, calendar-year means of Hua et al. (2013)
  Table S3. Gaps (SH1-2 in 1952; NH1–NH3 in 2010–2011, after the NH record ends at 2009.62) are filled
  from Hua et al. (2021) (``fill="hua2021"``) or by linear interpolation inside the record and holding the
  last value after it (``fill="interpolate"``). The record is cut after 2010 by default because P §2.5.3
  uses 1950–2010 and holds the 2010 level afterwards; the SH 2011 means rest on Jan–Mar only.
- ``hua2021``: ``atm14c_hua2021_annual.csv``, calendar-year means of the Hua et al. (2021) monthly smoothed
  curves, 1950–2019, no gaps.
- ``graven2017``: ``atm14c_graven2017_annual.csv``, the CMIP6 forcing of Graven et al. (2017), 1850–2015,
  three latitude bands mapped onto the five zones by ``GRAVEN2017_ZONE_BANDS``.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..atmosphere import ZONES, AtmosphericRecord
from .datadir import data_file, read_table

HUA2013_FILE = "atm14c_hua2013_annual.csv"
HUA2021_FILE = "atm14c_hua2021_annual.csv"
GRAVEN2017_FILE = "atm14c_graven2017_annual.csv"

#: Graven et al. (2017) band used for each Hua zone. Graven's bands: NH north of 30°N, Tropics 30°S–30°N,
#: SH south of 30°S. NH1 (> ~40°N) lies in NH; NH2 (23.4–40°N) lies mostly (30–40°N) in NH; NH3 and SH3
#: (between the tropics) lie in Tropics; SH1-2 (south of ~23.4°S) lies mostly in SH.
GRAVEN2017_ZONE_BANDS: dict[str, str] = {
    "NH1": "NH",
    "NH2": "NH",
    "NH3": "Tropics",
    "SH12": "SH",
    "SH3": "Tropics",
}

_FILLS = ("hua2021", "interpolate")


def _read(name: str, data_dir) -> pd.DataFrame:
    return read_table(data_file(name, data_dir))


def _zone_table(df: pd.DataFrame, year_col: str = "year") -> tuple[np.ndarray, np.ndarray]:
    years = df[year_col].to_numpy()
    values = np.vstack([df[f"f14c_{z}"].to_numpy(dtype=float) for z in ZONES])
    return years, values


def load_hua2021(data_dir: str | os.PathLike | None = None) -> AtmosphericRecord:
    """Hua et al. (2021/2022) five-zone record, calendar-year means 1950–2019 (PROVENANCE file 3).

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).

    Raises:
        DataFolderError: folder or file missing.
        ValueError: the file has gaps or non-consecutive years.
    """
    years, values = _zone_table(_read(HUA2021_FILE, data_dir))
    notes = (
        f"Hua et al. (2022, Radiocarbon 64, 723-745) {HUA2021_FILE}: calendar-year means of the monthly "
        f"smoothed zonal curves, {years[0]}-{years[-1]}; no gaps filled. "
        f"Held at {years[0]} before and at {years[-1]} after."
    )
    return AtmosphericRecord("hua2021", years, values, ZONES, notes)


def load_hua2013(
    data_dir: str | os.PathLike | None = None, *, fill: str = "hua2021", last_year: int | None = 2010
) -> AtmosphericRecord:
    """Hua et al. (2013) five-zone record, calendar-year means from 1950 (PROVENANCE files 1–2; P §2.5.3).

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).
        fill: how to fill the gaps (SH12 in 1952; NH1–NH3 in 2010–2011): ``"hua2021"`` takes the Hua et al.
            (2021) calendar-year mean of the same zone and year; ``"interpolate"`` interpolates linearly
            inside the record and holds a zone's last value after its data end (–).
        last_year: drop years after this one; 2010 as in P §2.5.3 ("remained at 2010 level after 2010"),
            None keeps the file's last year, 2011 (year AD).

    Returns:
        The record; its ``notes`` list every filled value.

    Raises:
        DataFolderError: folder or a needed file missing.
        ValueError: unknown ``fill``; ``last_year`` before the first year of the file.
    """
    if fill not in _FILLS:
        raise ValueError(f"fill must be one of {list(_FILLS)}, got {fill!r}")
    years, values = _zone_table(_read(HUA2013_FILE, data_dir))
    if last_year is not None:
        if last_year < years[0]:
            raise ValueError(f"last_year {last_year!r} is before the first year of {HUA2013_FILE} ({years[0]})")
        keep = years <= last_year
        years, values = years[keep], values[:, keep]
    gaps = np.argwhere(~np.isfinite(values))
    filled: list[str] = []
    if fill == "hua2021":
        y21, v21 = _zone_table(_read(HUA2021_FILE, data_dir))
        for i, j in gaps:
            k = np.flatnonzero(y21 == years[j])
            if k.size == 0:
                raise ValueError(f"cannot fill {ZONES[i]} {years[j]} from {HUA2021_FILE}: year not in that file")
            values[i, j] = v21[i, k[0]]
            filled.append(f"{ZONES[i]} {years[j]} = {values[i, j]:.5f}")
        how = f"filled from Hua et al. (2021) {HUA2021_FILE} (same zone, calendar-year mean of smoothed curve)"
    else:
        for i in np.unique(gaps[:, 0]) if gaps.size else []:
            ok = np.isfinite(values[i])
            values[i] = np.interp(years, years[ok], values[i, ok])  # holds the end values outside
            filled += [f"{ZONES[i]} {years[j]} = {values[i, j]:.5f}" for j in np.flatnonzero(~ok)]
        how = "filled by linear interpolation between neighbouring years, last value held after a zone's data"
    notes = (
        f"Hua et al. (2013, Radiocarbon 55, 2059-2072) Table S3 as calendar-year means ({HUA2013_FILE}), "
        f"{years[0]}-{years[-1]}"
        + (f" (cut after {last_year}, P 2.5.3)" if last_year is not None else "")
        + f". Gaps {how}: "
        + ("; ".join(filled) if filled else "none")
        + ". Caveat: NH1-NH3 means for 2008 and 2009 rest on 4 May-Aug points each. "
        f"Held at {years[0]} before and at {years[-1]} after the record (P 2.5.3)."
    )
    return AtmosphericRecord("hua2013", years, values, ZONES, notes)


def load_graven2017(data_dir: str | os.PathLike | None = None) -> AtmosphericRecord:
    """Graven et al. (2017) CMIP6 14CO2 forcing, 1850–2015, mapped onto the Hua zones (PROVENANCE file 4).

    The file's ``year_ad`` (x.5, annual means) gives the calendar year ``floor(year_ad)``. The three bands
    are mapped onto the five zones by ``GRAVEN2017_ZONE_BANDS`` (NH1, NH2 → NH; NH3, SH3 → Tropics;
    SH12 → SH).

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).

    Raises:
        DataFolderError: folder or file missing.
    """
    df = _read(GRAVEN2017_FILE, data_dir)
    years = np.floor(df["year_ad"].to_numpy(dtype=float)).astype(np.int64)
    values = np.vstack([df[f"f14c_{GRAVEN2017_ZONE_BANDS[z]}"].to_numpy(dtype=float) for z in ZONES])
    mapping = ", ".join(f"{z}->{b}" for z, b in GRAVEN2017_ZONE_BANDS.items())
    notes = (
        f"Graven et al. (2017, GMD 10, 4405-4417) {GRAVEN2017_FILE}, {years[0]}-{years[-1]}; "
        f"bands NH (>30N), Tropics (30S-30N), SH (<30S) mapped onto Hua zones: {mapping}. No gaps filled. "
        f"Held at {years[0]} before and at {years[-1]} after the record."
    )
    return AtmosphericRecord("graven2017", years, values, ZONES, notes)


#: Loaders by record name, for ``load_atmosphere`` and configuration files.
LOADERS = {"hua2013": load_hua2013, "hua2021": load_hua2021, "graven2017": load_graven2017}


def load_atmosphere(name: str = "hua2013", data_dir: str | os.PathLike | None = None, **kwargs) -> AtmosphericRecord:
    """Load an atmospheric 14C record by name.

    Args:
        name: ``"hua2013"`` (default, as P §2.5.3), ``"hua2021"`` or ``"graven2017"`` (–).
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).
        **kwargs: passed to the loader (e.g. ``fill``, ``last_year`` of :func:`load_hua2013`).

    Raises:
        ValueError: unknown record name.
        DataFolderError: folder or file missing.
    """
    try:
        loader = LOADERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown atmospheric 14C record {name!r}; choose one of {sorted(LOADERS)}") from None
    return loader(data_dir, **kwargs)
