"""Predictive validation of a hierarchical result on held-out sites (the same as `bayes-vmimics validate`).

Each site of the validation half of data/site_split.csv, of the result's forest types, is predicted as a new
site of its forest type: at every posterior draw its parameters are drawn from the population (μ_t, σ_t) and
its steady state is solved with its own forcing. Scores against the held-out data (RMSE, r², log pointwise
predictive density, coverage of the 50 and 90 % predictive intervals with the likelihood's observation
error) go to held_out_scores.csv; the predictive profiles to held_out_profiles.png and held_out.nc, in a
folder 'validation' beside the results file (or --out).

Example (a hierarchical run on the calibration half, then its validation):
    python analyses/04_hierarchical.py --data-dir ../shared/data --forest-type ENF --out results/enf
    python analyses/05_validate.py results/enf --data-dir ../shared/data
"""

from __future__ import annotations

import sys

from bayes_vmimics.cli import run_command


def main(argv: list[str] | None = None) -> int:
    return run_command("validate", argv, prog="05_validate.py", description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
