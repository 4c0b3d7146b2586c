"""The tidy site tables every source yields: ``SiteTables``, their log and QA columns, the forest-type classes.

A source (``bayes_vmimics.io.he2016``, ``bayes_vmimics.io.israd_curation``) turns its raw files into a
``SiteTables``; ``bayes_vmimics.io.sites.build_site_tables`` combines them. Columns are described in
``data/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..constants import FOREST_TYPES

#: The four forest types of Wang et al. (2021) Sect. 2.5.2 (ENF, EBF, DBF, BNF).
FOUR_TYPES = FOREST_TYPES
#: Explicit classes kept out of the four-type analyses.
OTHER_TYPES = ("DNF", "MIX", "UNK", "NFO")
ALL_TYPES = FOUR_TYPES + OTHER_TYPES
#: Columns of the QA table (``SiteTables.qa``, ``data/qa_flags.csv``).
QA_COLUMNS = ("site_id", "profile_id", "dataset", "forest_type", "layer", "source_row", "rule", "decision", "evidence")
_LOG_COLUMNS = ["file", "row", "profile_id", "column", "value", "reason"]


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
