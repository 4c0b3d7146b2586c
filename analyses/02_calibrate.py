"""Bayesian calibration with emcee (the main job; the same as `bayes-vmimics calibrate`).

With --synthetic: a synthetic twin; with a data folder (--data-dir or $BAYES_VMIMICS_DATA): pooled
calibration of a forest type on its calibration sites. Writes run.json (what produced the folder), chains.h5
(resumable: rerun the same command to continue, also after Ctrl-C), results.nc, summary.csv, report.txt and
profiles.png to --out (default results/02_calibrate_synthetic or results/02_calibrate_<FOREST_TYPE>).

Example:
    python analyses/02_calibrate.py --quick --synthetic
    python analyses/02_calibrate.py --quick --data-dir ../shared/data --forest-type ENF
"""

from __future__ import annotations

import sys

from bayes_vmimics.cli import run_command
from bayes_vmimics.cli_common import DEFAULT_OUT


def main(argv: list[str] | None = None) -> int:
    return run_command(
        "calibrate",
        argv,
        prog="02_calibrate.py",
        description=__doc__,
        default_out=str(DEFAULT_OUT / "02_calibrate"),
    )


if __name__ == "__main__":
    sys.exit(main())
