"""K-fold cross-validation by site of the hierarchical populations, with and without site covariates (the same
as `bayes-vmimics crossvalidate`).

Stage 1 runs once for every selected site (checkpointed; a hierarchical run's stage1 folder is reused with
--stage1-dir when the sites and settings match). The sites of each forest type are then split at random
(--seed) into --folds folds; per fold, stage 2 is run on the other sites for the population without covariates
and for the regression population z_s ~ N(μ_t + B_t x_s, σ_t²) (covariates of docs/covariates.md), and every
held-out site is predicted as a new site of its forest type and scored (RMSE, r², lppd, 50/90 % coverage,
under the study's error model). Writes cv_scores.csv (all held-out predictions together, and mean ± se over
folds), cv_fold_scores.csv, cv_folds.csv, cv_stage2.csv, cv_beta.csv, regression.nc, beta_summary.csv, beta.png
and run.json to --out (default results/07_crossvalidate_<FOREST_TYPES>).

Examples:
    python analyses/07_crossvalidate.py --data-dir ../shared/data --forest-type ENF --folds 5 \\
        --covariates mat,map,clay --n-processes 2
    # quick: 8 ENF sites, short stage 1, short stage 2 (a smoke run, not a measurement)
    python analyses/07_crossvalidate.py --data-dir ../shared/data --forest-type ENF --quick --max-sites 8 \\
        --folds 4 --n-steps 300 --draws 300 --predictive-draws 40
"""

from __future__ import annotations

import sys

from bayes_vmimics.cli import run_command


def main(argv: list[str] | None = None) -> int:
    return run_command(
        "crossvalidate", argv, prog="07_crossvalidate.py", description=__doc__, default_out="results/07_crossvalidate"
    )


if __name__ == "__main__":
    sys.exit(main())
