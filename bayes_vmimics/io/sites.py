"""Real site data: raw forest-soil profiles of every source → one set of tidy site and layer tables (project issue 4).

Raw files are read from the data folder (``--data-dir`` or ``$BAYES_VMIMICS_DATA``; see
``data/README.md``); the small tables this project authors itself (forest-type mapping, profile
exclusions, lignin:N, litter partition, calibration/validation split) live in the repository's ``data/``
folder.

Sources
    Every source present in the data folder by default (He et al. 2016, and ISRaD when the folder has an ``israd*``
    subfolder: ``bayes_vmimics.io.israd``, ``data/README.md`` §6), curated by the same filters and QA rules
    (``bayes_vmimics.io.curation._curate``); ``build_site_tables(sources=("he2016",))`` gives the He-only tables of
    the paper comparison.

Tables
    ``sites``: one row per profile, every profile of the source kept, with ``usable`` and
    ``exclusion_reason``; ``layers``: one row per kept mineral-soil layer, with its QA flags (``qa_flag``);
    ``log``: one row per excluded layer or profile with the reason; ``qa``: one row per QA finding (rule,
    decision, evidence), committed as ``data/qa_flags.csv``. Columns are described in ``data/README.md``.

The data layer, by concern: ``tables`` (``SiteTables``), ``qa`` (raw-file checks, QA rules, QA table),
``curation`` (the curation all sources share), ``forcing`` (litter, lignin:N, clay, temperature), ``he2016`` and
``israd`` / ``israd_rules`` / ``israd_curation`` (one source each), ``matching`` (He–ISRaD pairs), ``split``
(calibration/validation), ``inventory`` (summary and inventory), ``example_sites``; this module combines the
sources.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from .datadir import resolve_data_dir
from .he2016 import HE2016_FILE, HE2016_SOURCE, _build_he2016_tables
from .israd import ISRAD_SOURCE, find_israd_dir
from .israd_curation import build_israd_tables, load_source_matches
from .israd_rules import COVARIATE_COLUMNS
from .qa import DUPLICATE_DECIMALS, DUPLICATE_REASON, MIN_LAYERS, QA_DUPLICATE, QA_RULES, _attach_qa_flags
from .split import _attach_split
from .tables import _LOG_COLUMNS, SiteTables

log = logging.getLogger(__name__)

#: Source keys of the ``source`` column and of ``build_site_tables(sources=...)``.
SOURCES = (HE2016_SOURCE, ISRAD_SOURCE)


#: Sources of ``build_site_tables(sources=None)``: every source present in the data folder (He et al. alone when it
#: has no ISRaD subfolder); ``sources=("he2016",)`` gives the He-only tables (the paper comparison).
DEFAULT_SOURCES = "all"


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
            (:func:`bayes_vmimics.io.qa._duplicate_soc_profiles`; the lowest profile id is kept), then partial copies
            (:func:`bayes_vmimics.io.qa._near_duplicate_soc_profiles`) (bool).
        qa: apply the QA rules ``QA_RULES`` other than the pseudo-replicate ones: exclude isolated near-zero
            layers and profiles with a likely ×100 unit slip, and flag or downweight layers (column
            ``qa_flag``); every finding is a row of ``SiteTables.qa`` (bool).
        israd_dir: the ISRaD folder (path); default the newest ``israd*`` subfolder of the data folder.
        israd_forest_types: the ISRaD forest-type table (path or DataFrame); default
            ``data/israd_forest_types.csv`` (absent: no ISRaD profile has a forest type).
        matches: He–ISRaD matches (path or DataFrame, columns of ``bayes_vmimics.io.israd_curation.MATCH_COLUMNS`` and
            ``match``); default ``data/source_matches.csv`` if present; ``False`` for none (path, DataFrame or False).

    Returns:
        ``SiteTables`` with every profile in ``sites`` (``usable`` flags those passing all filters; ``source``
        says "he2016" or "israd"), the kept mineral layers of all profiles in ``layers`` (with ``qa_flag``),
        the exclusions in ``log`` and the QA findings in ``qa``. With ``sources=("he2016",)`` every row and site
        id is the He-only build's; with ISRaD, the ISRaD profiles follow (ids ``israd_…``; see
        :func:`bayes_vmimics.io.israd_curation.build_israd_tables`) and He profiles matched to an ISRaD profile carry
        the match and its gridded covariates.

    Raises:
        DataFolderError: folder or raw file missing (also a requested ISRaD folder or table).
        ValueError: bad raw file (naming file, row and column), a profile missing from the
            forest-type table, a bad exclusion table (see ``he2016.load_profile_exclusions``), an unknown source.
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


# --------------------------------------------------------------------------------------------------
# the sources in one
# --------------------------------------------------------------------------------------------------
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
    ``qa``: top, bottom, SOC, BD at ``DUPLICATE_DECIMALS``) is the same SOC profile, missed by the matches
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
