"""The paper's sensitivity analyses (the same as `bayes-vmimics sensitivity ...`).

    morris    Morris screening of J1 (SOC) and J2 (14C) per site with 14C (P Sect. 2.3, Fig 2)
    sobol     Sobol' first/total indices on the Table 1 box; with --results, given-data indices under a posterior
    profiles  SOC profiles with x_D, alpha_v, alpha_r +-25 % per forest type (the paper's Fig 7)
    response  SOC at 15 and 35 cm against litter input and V, diffusion off (the paper's Fig 8)

Outputs (CSV, netCDF, PNG) go to --out (default results/sensitivity); analyses/13_sensitivity.ipynb plots them.
Morris and Sobol' write one file per site as it finishes and skip finished sites on a rerun.

Examples:
    python analyses/06_sensitivity.py morris --data-dir ../shared/data --forest-type DBF --n-processes 2
    python analyses/06_sensitivity.py sobol --site-id he2016_74 --n-base 1024 --dummy --n-processes 2
    python analyses/06_sensitivity.py sobol --forest-type DBF --results results/calibrate_DBF/results.nc
    python analyses/06_sensitivity.py profiles --quick
    python analyses/06_sensitivity.py response --forest-type EBF BNF
"""

from __future__ import annotations

import sys

from bayes_vmimics.sensitivity_cli import main

if __name__ == "__main__":
    sys.exit(main())
