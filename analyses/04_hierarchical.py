"""Two-stage hierarchical calibration across sites (the same as `bayes-vmimics hierarchical`).

Stage 1 samples every site alone (emcee from its MAP; finished sites are checkpointed in --out/stage1, so a
rerun resumes); stage 2 samples the forest-type populations from those draws (no model solves). Writes
results.nc (DataTree: mu, sigma, theta_population, theta_site, and the calibration sites' posterior
predictive), population_summary.csv (R-hat, ESS), sites.csv (per-site diagnostics), population.png,
profiles.png, fit_metrics.csv (site-level fit) and run.json to --out (default
results/04_hierarchical_<FOREST_TYPES>, or results/04_hierarchical_synthetic with --synthetic).

Example:
    python analyses/04_hierarchical.py --data-dir ../shared/data --forest-type ENF --config study_default \\
        --n-processes 2
    python analyses/04_hierarchical.py --data-dir ../shared/data --forest-type ENF,EBF,DBF,BNF
"""

from __future__ import annotations

import sys

from bayes_vmimics.cli import run_command
from bayes_vmimics.cli_common import DEFAULT_OUT


def main(argv: list[str] | None = None) -> int:
    return run_command(
        "hierarchical",
        argv,
        prog="04_hierarchical.py",
        description=__doc__,
        default_out=str(DEFAULT_OUT / "04_hierarchical"),
    )


if __name__ == "__main__":
    sys.exit(main())
