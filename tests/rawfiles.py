"""Synthetic raw files of the He et al. (2016) layout for the curation tests (test_sites, test_exclusions,
test_curation_filters): one layer row, a forest-type table, and a count from the curation summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_vmimics.io import inventory as INV


def raw_layer(pid, top, bottom, soc=2.0, bd=1.2, **kw) -> dict:
    """One raw layer row of profile ``pid`` (dataset ``Study_<pid>``, clay 20 %); ``kw`` overrides columns."""
    row = dict(
        profile_id=pid,
        dataset=f"Study_{pid}",
        doi="10.0/test",
        site=f"site {pid}",
        country="XX",
        lat=45.0 + pid,
        lon=10.0,
        mat_c=8.0,
        map_mm=900.0,
        veg_class="temperate forest",
        veg_local="beech",
        top_cm_mineral0=top,
        bottom_cm_mineral0=bottom,
        sample_year=2005.0,
        d14c_permil=50.0,
        f14c_reported=np.nan,
        f14c_from_d14c=np.nan,
        soc_pct=soc,
        bd_g_cm3=bd,
        bd_is_filled=False,
        clay_pct=20.0,
        litterfall_above=np.nan,
        n_pct=0.1,
        horizon="A",
    )
    row.update(kw)
    return row


def write_forest_types(tmp_path, pids, ft="DBF", name="ft.csv"):
    """A forest-type table giving every profile in ``pids`` the type ``ft``; returns its path."""
    p = tmp_path / name
    pd.DataFrame(dict(profile_id=pids, forest_type=ft, biome="temperate", confidence="high", rationale="test")).to_csv(
        p, index=False
    )
    return p


def summary_count(tables, label: str, *, exact: bool = False) -> int:
    """The count ``summarize`` prints on the line whose text starts with (``exact``: equals) ``label``; 0 if
    there is no such line."""
    for line in INV.summarize(tables).splitlines():
        n, _, text = line.strip().partition("  ")
        if (text == label if exact else text.startswith(label)) and n.isdigit():
            return int(n)
    return 0
