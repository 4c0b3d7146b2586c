"""Summarise a calibration: posterior table, x_v–x_K correlation, fit metrics (the paper's Table 4, Wang et al.
2021) and the profile figure, from a results file written by 02_calibrate.py (written next to it unless --out is given).

Example:
    python analyses/03_summarise.py results/02_calibrate_synthetic/results.nc
"""

from __future__ import annotations

import sys

from bayes_vmimics.cli import run_command
from bayes_vmimics.cli_common import DEFAULT_OUT


def main(argv: list[str] | None = None) -> int:
    return run_command(
        "summarise",
        argv,
        prog="03_summarise.py",
        description=__doc__,
        default_out=str(DEFAULT_OUT / "03_summarise"),
    )


if __name__ == "__main__":
    sys.exit(main())
