"""``bayes-vmimics sites``: the inventory of every profile the curation considered, a summary and a site map.

The command only parses its arguments and calls the library: :func:`bayes_vmimics.io.sites.build_site_tables`,
:func:`~bayes_vmimics.io.inventory.site_inventory`, :func:`~bayes_vmimics.io.inventory.covariate_completeness` and
:func:`bayes_vmimics.site_map.plot_site_map`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = (
    "Write one row per profile the curation considered (usable or not) with its source, forest type and the "
    "evidence for it, the reason it is not usable, coordinates, layers with SOC and F14C, depth range, split, "
    "the covariates (MAT, MAP, clay, litter, lignin:N, ...) with their origin (measured / gridded / imputed) "
    "and the QA flags; print the usable sites per forest type x source with the covariate completeness; and "
    "draw a site map (PNG beside the CSV)."
)


def add_sites_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sites`` on the subparsers of ``bayes-vmimics`` (argparse)."""
    p = subparsers.add_parser(
        "sites", help="inventory of the sites of every source, with a map", description=DESCRIPTION
    )
    p.add_argument("--data-dir", default=None, help="raw-data folder (default: $BAYES_VMIMICS_DATA)")
    p.add_argument(
        "--sources",
        default=None,
        help="comma-separated sources, from he2016,israd, or 'all' (default: every source in the data folder)",
    )
    p.add_argument(
        "--forest-type",
        nargs="+",
        default=None,
        metavar="FT",
        help="keep only these forest types (ENF EBF DBF BNF DNF MIX UNK NFO; default every profile)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("sites.csv"),
        help="output CSV (default sites.csv); the map is written beside it as <name>_map.png",
    )
    p.set_defaults(func=cmd_sites)
    return p


def _sources(text: str | None):
    from .io.sites import SOURCES

    if text is None:
        return None
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    if names == ("all",):
        return "all"
    bad = [n for n in names if n not in SOURCES]
    if bad or not names:
        raise ValueError(f"--sources: {', '.join(bad) or 'empty'} not a source (known: {', '.join(SOURCES)}, or all)")
    return names


def format_completeness(table) -> str:
    """The completeness table as text: counts and percentages (known = measured or gridded)."""
    lines = [
        f"{'type':4} {'source':7} {'usable':>6} {'F14C':>5}   "
        + "   ".join(f"{n:>6} known/imputed" for n in ("MAT", "MAP", "clay"))
    ]
    for (ft, src), r in table.iterrows():
        cells = []
        for name in ("mat_c", "map_mm", "clay_fraction"):
            k, i = r[f"{name}_known"], r[f"{name}_imputed"]
            cells.append("    –  /  –        " if k != k else f"{100 * k:6.0f} % / {100 * i:3.0f} %   ")
        lines.append(f"{ft:4} {src:7} {int(r['usable']):6d} {int(r['with_f14c']):5d}   " + "   ".join(cells))
    return "\n".join(lines)


def cmd_sites(args) -> int:
    """Run ``bayes-vmimics sites`` (arguments of :func:`add_sites_parser`); returns the exit status."""
    from .io.inventory import covariate_completeness, site_inventory
    from .io.sites import build_site_tables
    from .site_map import plot_site_map

    sources = _sources(args.sources)
    types = None if args.forest_type is None else [t for x in args.forest_type for t in x.split(",") if t]
    if types is not None:
        from .io.tables import ALL_TYPES

        bad = [t for t in types if t not in ALL_TYPES]
        if bad:
            raise ValueError(f"--forest-type: unknown forest type {', '.join(bad)} (known: {', '.join(ALL_TYPES)})")
    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise ValueError(f"--out {out}: give a .csv file name")
    tables = build_site_tables(args.data_dir, sources=sources)
    inv = site_inventory(tables, types)
    out.parent.mkdir(parents=True, exist_ok=True)
    inv.to_csv(out, index=False)
    png = plot_site_map(inv, out.with_name(out.stem + "_map.png"))
    comp = covariate_completeness(inv)
    n_usable = int((inv["usable"] & inv["forest_type"].isin(["ENF", "EBF", "DBF", "BNF"])).sum())
    print(
        f"{len(inv)} profiles considered ({', '.join(sorted(set(inv['source'])))}); {n_usable} usable of the four types"
    )
    print(
        "usable sites per forest type x source; covariates known (measured or gridded) / imputed by a documented rule:"
    )
    print(format_completeness(comp))
    print(f"wrote {out} and {png}")
    return 0
