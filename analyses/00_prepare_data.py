"""Build the tidy site tables from the raw data folder and print a summary.

Writes to ``--out`` (default ``results/data/``):
    sites.csv, layers.csv, exclusions.csv       forest profiles of every source in the data folder (``--sources``)
    qa_flags.csv                                the QA findings (as data/qa_flags.csv)
    split.csv                                   calibration/validation split for ``--seed``
    howland_sites.csv, howland_layers.csv       Howland Forest "Tower Pit" (SOC + BD + 14C)
    mcfarlane_sites.csv, mcfarlane_layers.csv   McFarlane et al. (2013) sites (14C checks only)

The saved split in ``data/site_split.csv`` is the reference. ``--write-split`` adds rows for the usable sites it
does not list yet (the ISRaD profiles; ``split_all_sources``) and keeps every saved row, so the He et al. split of
the paper comparison never changes. Without it the script reports whether the split for ``--seed`` matches the
saved one.

The QA table ``data/qa_flags.csv`` (every layer and profile the QA rules exclude, downweight or flag, with
the rule and the evidence; ``data/README.md``) is generated from the raw files: ``--write-qa`` rewrites it,
otherwise the script reports whether the committed table is current. It also lists the usable profiles per
forest type (calibration / validation / with 14C) and the QA counts per rule.

Example:
    python analyses/00_prepare_data.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bayes_vmimics.io.datadir import PROJECT_DATA_DIR
from bayes_vmimics.io.example_sites import load_howland_profile, load_mcfarlane_sites
from bayes_vmimics.io.inventory import summarize
from bayes_vmimics.io.qa import QA_TABLE_FILE, qa_table_text, write_qa_table
from bayes_vmimics.io.sites import SOURCES, build_site_tables
from bayes_vmimics.io.split import DEFAULT_SPLIT_SEED, SPLIT_FILE, load_saved_split, split_all_sources, write_split
from bayes_vmimics.io.tables import FOUR_TYPES


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="raw-data folder (default: $BAYES_VMIMICS_DATA)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SPLIT_SEED, help="seed of the calibration/validation split")
    ap.add_argument("--out", type=Path, default=Path("results/data"), help="output folder for the tidy CSVs")
    ap.add_argument("--quick", action="store_true", help="skip the example sites (Howland, McFarlane)")
    ap.add_argument(
        "--exclude-filled-bd",
        action="store_true",
        help="drop layers with bulk density gap-filled by He et al.",
    )
    ap.add_argument(
        "--sources",
        default=None,
        help=f"comma-separated sources from {','.join(SOURCES)} (default: every source in the data folder)",
    )
    ap.add_argument(
        "--write-split",
        action="store_true",
        help="add rows for the usable sites data/site_split.csv lacks (saved rows unchanged) and write it",
    )
    ap.add_argument("--write-qa", action="store_true", help=f"overwrite data/{QA_TABLE_FILE} with the QA findings")
    args = ap.parse_args(argv)

    sources = None if args.sources is None else tuple(x.strip() for x in args.sources.split(",") if x.strip())
    tables = build_site_tables(args.data_dir, sources=sources, exclude_filled_bd=args.exclude_filled_bd)
    saved = PROJECT_DATA_DIR / SPLIT_FILE
    old = load_saved_split(saved)
    split = split_all_sources(tables.sites, old if len(old) else None, seed=args.seed)
    if args.write_split:
        if args.exclude_filled_bd or sources is not None:
            ap.error(
                "--write-split writes the reference split: it cannot be combined with --exclude-filled-bd or --sources"
            )
        print(
            f"wrote {write_split(split, saved)} ({len(split) - len(old)} new row(s), {len(old)} saved rows unchanged)"
        )
    elif saved.is_file():
        # the saved split is the reference: subsets (e.g. --exclude-filled-bd) keep their assignment
        if not args.exclude_filled_bd:
            same = old[["site_id", "split"]].equals(split[["site_id", "split"]])
            verdict = "matches" if same else "DIFFERS FROM (rebuild with --write-split)"
            print(f"split for seed {args.seed} {verdict} {saved}")
        print(f"using the saved split {saved} (seed {old['seed'].iloc[0]})")
    split = split[split["site_id"].isin(tables.sites["site_id"])].reset_index(drop=True)
    tables.sites["split"] = tables.sites["site_id"].map(split.set_index("site_id")["split"])
    qa_path = PROJECT_DATA_DIR / QA_TABLE_FILE
    if args.write_qa:
        if args.exclude_filled_bd:
            ap.error("--write-qa writes the reference QA table and cannot be combined with --exclude-filled-bd")
        print(f"wrote {write_qa_table(tables, qa_path)}")
    elif not args.exclude_filled_bd:
        current = qa_path.is_file() and qa_path.read_text(encoding="utf-8") == qa_table_text(tables)
        print(f"QA table {qa_path} {'is current' if current else 'IS STALE (rebuild with --write-qa)'}")

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tables.sites.to_csv(out / "sites.csv", index=False)
    tables.layers.to_csv(out / "layers.csv", index=False)
    tables.log.to_csv(out / "exclusions.csv", index=False)
    tables.qa.to_csv(out / "qa_flags.csv", index=False)
    split.to_csv(out / "split.csv", index=False)
    print(summarize(tables))

    u = tables.usable_sites()
    print(f"usable four-type profiles: {len(u)} (target >= 150); with 14C: {int(u['has_c14'].sum())}")
    for ft in FOUR_TYPES:
        for src in sorted(set(u["source"])):
            x = u[(u["forest_type"] == ft) & (u["source"] == src)]
            cal, val = x[x["split"] == "calibration"], x[x["split"] == "validation"]
            print(
                f"  {ft} {src}: calibration {len(cal)} ({int(cal['has_c14'].sum())} with 14C), "
                f"validation {len(val)} ({int(val['has_c14'].sum())} with 14C)"
            )
    # the saved split is never rebuilt silently: its rows of profiles that are no longer usable are listed
    saved_ids = load_saved_split(saved).set_index("site_id")["split"]
    gone = tables.sites[tables.sites["site_id"].isin(saved_ids.index) & ~tables.sites["usable"]]
    gone = gone.assign(split=gone["site_id"].map(saved_ids))
    if len(gone):
        print(f"saved split rows of profiles not usable ({len(gone)}; kept in {saved.name}, skipped):")
        for reason, x in gone.groupby(gone["exclusion_reason"].str.replace(r" of he2016_\d+", "", regex=True)):
            ids = ", ".join(f"{r.site_id} ({r.forest_type} {r.split})" for r in x.itertuples())
            print(f"  {reason}: {ids}")

    if not args.quick:
        how = load_howland_profile(args.data_dir)
        how.sites.to_csv(out / "howland_sites.csv", index=False)
        how.layers.to_csv(out / "howland_layers.csv", index=False)
        mcf = load_mcfarlane_sites(args.data_dir)
        mcf.sites.to_csv(out / "mcfarlane_sites.csv", index=False)
        mcf.layers.to_csv(out / "mcfarlane_layers.csv", index=False)
        print(f"Howland Tower Pit: {len(how.layers)} mineral layers, {int(how.layers['f14c'].count())} with 14C")
        print(
            f"McFarlane et al. 2013: {len(mcf.sites)} sites, {len(mcf.layers)} mineral layers "
            f"({int(mcf.layers['f14c'].count())} with 14C; no bulk density: 14C checks only)"
        )
    print(f"tables written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
