r"""Held-out scores of a ``validate`` run split by data source (He et al. 2016 sites, ISRaD sites, all), from the
predictive draws it stored in ``validation/held_out.nc``.

Use it to score the same held-out sites under two populations, e.g. He et al.'s validation sites under a
population fitted on He's sites alone and under one fitted on the combined set. r² is the squared correlation of
observed and predictive median (as ``validate``); RMSE is of the predictive median (SOC in mg C cm⁻³, F14C
unitless); 50 / 90 % coverage is by the stored replicated draws with observation error (``soc_observed``,
``f14c_observed``), which are fewer than ``validate`` scores with, so coverage can differ from ``validate``'s
by a few points.

Usage::

    python analyses/16_held_out_by_source.py results/hier_BNF_calibration/validation/held_out.nc
"""

from __future__ import annotations

import argparse

import numpy as np
import xarray as xr

SOURCES = {"he2016": "he2016_", "israd": "israd_", "all": ""}


def scores_by_source(path) -> list[dict]:
    """One row per variable and source: sites, observations, r², RMSE and 50/90 % coverage."""
    rows = []
    with xr.open_datatree(path) as dt:
        for var in ("soc", "f14c"):
            obs_ds = dt["observed_data"]
            obs = obs_ds[var].values
            sites = obs_ds[f"{var}_site"].values
            model = dt["posterior_predictive"][var].values.reshape(-1, obs.size)
            replicated = dt["posterior_predictive"][f"{var}_observed"].values.reshape(-1, obs.size)
            for source, prefix in SOURCES.items():
                k = np.array([str(s).startswith(prefix) for s in sites])
                if k.sum() < 3:
                    continue
                med = np.median(model[:, k], axis=0)
                q05, q25, q75, q95 = np.quantile(replicated[:, k], [0.05, 0.25, 0.75, 0.95], axis=0)
                y = obs[k]
                rows.append(
                    {
                        "variable": var,
                        "source": source,
                        "n_sites": len(set(sites[k])),
                        "n_obs": int(k.sum()),
                        "r2": float(np.corrcoef(y, med)[0, 1] ** 2),
                        "rmse": float(np.sqrt(np.mean((y - med) ** 2))),
                        "coverage_50": float(np.mean((y >= q25) & (y <= q75))),
                        "coverage_90": float(np.mean((y >= q05) & (y <= q95))),
                    }
                )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("held_out", help="validation/held_out.nc of a validate run")
    args = ap.parse_args()
    for r in scores_by_source(args.held_out):
        print(
            f"{r['variable']:5s} {r['source']:7s} sites {r['n_sites']:3d} obs {r['n_obs']:4d}  r² {r['r2']:.2f}  "
            f"RMSE {r['rmse']:.3g}  50 / 90 % {100 * r['coverage_50']:.0f} / {100 * r['coverage_90']:.0f}"
        )


if __name__ == "__main__":
    main()
