"""List the ISRaD forest profiles that need a forest type, with the recorded fields the assignments rest on, and
check that ``data/israd_forest_types.csv`` covers every one of them exactly once with a known code.

The candidates are ``bayes_vmimics.io.matching_inputs.israd_forest_candidates``: ``pro_land_cover == "forest"`` and
≥ 3 mineral layers with organic or total C, bulk density and ¹⁴C (200 profiles in 44 entries of ISRaD_extra
2023-02-08). The judgements (forest type, evidence, confidence) are written by hand in the CSV; this script has
no classification rules. Evidence order: recorded leaf type / phenology (``pro_lc_leaf_type``,
``pro_lc_phenology``); vegetation notes (``pro_veg_note``, ``site_note``, ``pro_note``, treatment notes); the
publication (``metadata.csv``); place and climate (Köppen ``pro_KG_present_short``, MAT); MODIS land cover at
0.5° (``pro_landCover_0.5_deg_MODISreclass1`` / ``Description``) as weak support only. See
``docs/israd_matching.md``.

Usage: ``python data/israd_forest_types.py [--data-dir DIR] [--list FILE]``: checks the table and prints the
counts per forest type; ``--list FILE`` also writes the candidates with their recorded fields (CSV) for review.
Exit status 1 if the table does not cover the candidates exactly once.
"""

from __future__ import annotations

import argparse
import sys

from bayes_vmimics.io.matching import ISRAD_KEYS
from bayes_vmimics.io.matching_inputs import (
    assign_israd_forest_types,
    israd_forest_candidates,
    load_israd_tables,
)

#: Recorded columns the assignments use, in the order of the evidence hierarchy.
RECORDED = (
    "pro_lc_leaf_type",
    "pro_lc_phenology",
    "pro_veg_note",
    "site_note",
    "pro_note",
    "pro_treatment_note",
    "bibliographical_reference",
    "doi",
    "pro_country",
    "lat",
    "lon",
    "pro_elevation",
    "pro_KG_present_short",
    "pro_MAT",
    "pro_BIO1_C_WC2.1",
    "pro_landCover_0.5_deg_MODISreclass1",
    "Description",
)


def candidates_with_fields(data_dir=None):
    """The candidate profiles with the recorded fields of :data:`RECORDED` (site and metadata columns joined)."""
    t = load_israd_tables(data_dir)
    c = israd_forest_candidates(t)
    c = c.merge(t["site"][["entry_name", "site_name", "site_note"]], on=["entry_name", "site_name"], how="left")
    c = c.merge(t["metadata"][["entry_name", "bibliographical_reference", "doi"]], on="entry_name", how="left")
    return c[[*ISRAD_KEYS, "n_layers", "n_layers_c14", *RECORDED]]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=None, help="raw-data folder (default: $BAYES_VMIMICS_DATA)")
    ap.add_argument("--list", default=None, help="write the candidates and their recorded fields to this CSV")
    a = ap.parse_args()
    cand = candidates_with_fields(a.data_dir)
    if a.list:
        cand.to_csv(a.list, index=False)
        print(f"wrote {a.list}: {len(cand)} candidate profiles")
    try:
        typed = assign_israd_forest_types(cand)
    except ValueError as err:
        print(err)
        sys.exit(1)
    print(f"{len(typed)} candidate profiles in {typed['entry_name'].nunique()} entries, each covered once")
    print(typed.groupby("forest_type").size().rename("profiles").to_string())
    print(typed.groupby(["forest_type", "confidence"]).size().unstack(fill_value=0).to_string())
