"""Prior predictive check: draw the seven parameters from the prior, solve every site's steady state
(and ¹⁴C where observed) and report how often the prior-predictive 90 % range covers the observations.

Writes prior_predictive.npz and run.json to --out (default results/01_prior_predictive_synthetic, or
results/01_prior_predictive_<FOREST_TYPE> on real data).

Example:
    python analyses/01_prior_predictive.py --quick --synthetic           # synthetic twin
    python analyses/01_prior_predictive.py --data-dir ../shared/data --forest-type ENF
"""

from __future__ import annotations

import sys

from bayes_vmimics.cli import run_command
from bayes_vmimics.cli_common import DEFAULT_OUT


def main(argv: list[str] | None = None) -> int:
    return run_command(
        "prior-predictive",
        argv,
        prog="01_prior_predictive.py",
        description=__doc__,
        default_out=str(DEFAULT_OUT / "01_prior_predictive"),
    )


if __name__ == "__main__":
    sys.exit(main())
