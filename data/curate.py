"""Thin wrapper: build the tidy site tables from the raw data folder (logic in ``bayes_vmimics.io.sites``).

Usage: ``python data/curate.py [--data-dir DIR] [--out DIR] [--write-qa]``; ``--write-qa`` rewrites the
committed QA table ``data/qa_flags.csv``. The full command with the summary and the split is
``analyses/00_prepare_data.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bayes_vmimics.io.inventory import summarize
from bayes_vmimics.io.qa import write_qa_table
from bayes_vmimics.io.sites import build_site_tables

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=None, help="raw-data folder (default: $BAYES_VMIMICS_DATA)")
    ap.add_argument("--out", type=Path, default=Path("results/data"), help="output folder")
    ap.add_argument("--write-qa", action="store_true", help="overwrite data/qa_flags.csv with the QA findings")
    a = ap.parse_args()
    t = build_site_tables(a.data_dir)
    a.out.mkdir(parents=True, exist_ok=True)
    t.sites.to_csv(a.out / "sites.csv", index=False)
    t.layers.to_csv(a.out / "layers.csv", index=False)
    t.log.to_csv(a.out / "exclusions.csv", index=False)
    t.qa.to_csv(a.out / "qa_flags.csv", index=False)
    if a.write_qa:
        print(f"wrote {write_qa_table(t)}")
    print(summarize(t))
