"""Two-stage hierarchical calibration of one forest type on real sites: wall time of each stage, R-hat and
minimum bulk ESS of the population parameters, ESS per second, and the stage-1 diagnostics. Prints figures;
asserts nothing. Long: start it in the background.

    python benchmarks/bench_two_stage.py --data-dir ../shared/data --forest-type ENF --split all \
        --n-steps 10000 --processes 2 [--warm] [--c14] [--out results/two_stage_ENF.nc]

Stage 1 includes the per-site MAP search that centres each site's walkers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayes_vmimics.cli import real_site_observations
from bayes_vmimics.config import load_config
from bayes_vmimics.inference.pymc_models import convergence_report, save_results
from bayes_vmimics.inference.two_stage import sample_population, site_posterior_samples
from bayes_vmimics.io import build_site_tables, load_atmosphere
from bayes_vmimics.likelihood import CalibrationProblem


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--forest-type", default="ENF")
    ap.add_argument("--split", default="all", choices=["calibration", "validation", "all"])
    ap.add_argument("--max-sites", type=int, default=0, help="at most this many sites (0 = all)")
    ap.add_argument("--n-walkers", type=int, default=32)
    ap.add_argument("--n-steps", type=int, default=10000)
    ap.add_argument("--thin", type=int, default=25)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--draws", type=int, default=20000)
    ap.add_argument("--tune", type=int, default=2000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--c14", action="store_true", help="include the ¹⁴C term")
    ap.add_argument("--warm", action="store_true", help="warm starts (faster; see the README on equilibria)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="write the DataTree to this netCDF file")
    args = ap.parse_args()

    cfg = load_config("study_default").replace(
        data={"forest_type": args.forest_type, "split": args.split, "max_sites": args.max_sites},
        likelihood={"use_c14": args.c14},
    )
    sites = real_site_observations(build_site_tables(args.data_dir), cfg)
    atm = load_atmosphere("hua2013", args.data_dir) if args.c14 else None
    problem = CalibrationProblem(
        sites, use_c14=args.c14, atmosphere=atm, max_obs_depth_cm=100.0, warm_start=args.warm
    )
    n = len(problem.sites)
    n_c14 = sum(1 for p in problem.sites if p.c14_index.size) if args.c14 else 0
    print(
        f"{args.forest_type}: {n} sites ({args.split}), ¹⁴C {'on' if args.c14 else 'off'} ({n_c14} with ¹⁴C), "
        f"warm starts {'on' if args.warm else 'off'}"
    )

    t0 = time.perf_counter()
    s1 = site_posterior_samples(
        problem,
        n_walkers=args.n_walkers,
        n_steps=args.n_steps,
        thin=args.thin,
        seed=args.seed,
        n_processes=args.processes,
    )
    t1 = time.perf_counter() - t0
    tau = np.nanmax(s1.tau, axis=1)
    print(
        f"stage 1: {args.n_walkers} walkers × {args.n_steps} steps per site on {args.processes} process(es): "
        f"{t1:.0f} s; max τ per site {tau.min():.0f}–{tau.max():.0f} steps (median {np.median(tau):.0f}); "
        f"N/τ ≥ 50 for {int(s1.tau_reliable.sum())}/{n} sites; independent draws per site ≈ "
        f"{s1.n_effective.min():.0f}–{s1.n_effective.max():.0f}; acceptance "
        f"{s1.acceptance.min():.2f}–{s1.acceptance.max():.2f}; {s1.z.shape[1]} kept draws per site"
    )
    t0 = time.perf_counter()
    dt = sample_population(
        s1,
        [args.forest_type] * n,
        problem.prior,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        thin=5,
        seed=args.seed,
    )
    t2 = time.perf_counter() - t0
    wall = t1 + t2
    rep = convergence_report(dt, ["theta_population", "mu", "sigma"])
    d = dt["stage2_diagnostics"]
    print(f"stage 2: {args.chains} chains × ({args.tune} tune + {args.draws} sweeps), thinned by 5: {t2:.0f} s")
    print(
        f"  max R-hat (population) {rep['max_r_hat']:.4f}   min bulk ESS {rep['min_ess_bulk']:.0f}   "
        f"min tail ESS {rep['min_ess_tail']:.0f}   (theta_population, mu, sigma)"
    )
    print(
        f"  stage-1 weights: mean Kish ESS per site {float(d['mean_weight_ess'].min()):.0f}–"
        f"{float(d['mean_weight_ess'].max()):.0f}, 5 % quantile ≥ {float(d['weight_ess_q05'].min()):.1f}"
    )
    print(f"total wall {wall:.0f} s; min bulk ESS per second {rep['min_ess_bulk'] / wall:.3f}")
    summ = rep["summary"]
    pop = summ.loc[[i for i in summ.index if i.startswith("theta_population")]]
    print(pop[["mean", "sd", "eti89_lb", "eti89_ub", "ess_bulk", "r_hat"]].to_string(float_format=lambda v: f"{v:.3g}"))
    if args.out:
        save_results(dt, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
