"""Write ``data/source_matches.csv``: He et al. (2016) profiles that are also in ISRaD (logic in
``bayes_vmimics.io.matching``; the rule is in ``match_he_israd``'s docstring and ``docs/israd_matching.md``).

Usage: ``python data/source_matches.py [--data-dir DIR] [--check]``. ``--check`` writes nothing and exits with
status 1 if the committed table differs from what the code generates (``tests/test_matching.py`` checks the same).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from bayes_vmimics.io.matching_inputs import build_source_matches

OUT = Path(__file__).resolve().parent / "source_matches.csv"

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=None, help="raw-data folder (default: $BAYES_VMIMICS_DATA)")
    ap.add_argument("--check", action="store_true", help="compare with the committed table, write nothing")
    a = ap.parse_args()
    t = build_source_matches(a.data_dir)
    counts = t["match"].value_counts().to_dict()
    if a.check:
        same = OUT.is_file() and pd.read_csv(OUT, keep_default_na=False).astype(str).equals(
            t.astype(str).reset_index(drop=True)
        )
        print(f"{OUT}: {'current' if same else 'differs from the code; rerun without --check'}")
        sys.exit(0 if same else 1)
    t.to_csv(OUT, index=False)
    print(f"wrote {OUT}: {len(t)} pairs {counts}")
