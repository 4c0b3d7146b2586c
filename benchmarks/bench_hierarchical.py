"""Hierarchical PyMC (NUTS) calibration of one forest type on real sites, against the pooled emcee run on the
same sites: wall time, R-hat, minimum bulk ESS of the population parameters, divergences, ESS per second.
Prints figures; asserts nothing. Long: start it in the background.

    python benchmarks/bench_hierarchical.py --data-dir ../shared/data --forest-type ENF --n-sites 20 \
        --draws 300 --tune 300 --chains 2 --cores 2 [--c14] [--split all] [--init adapt_full]

Both samplers start near the MAP (NUTS: per-site MAPs, emcee: a ball around the pooled MAP); the MAP
search is included in the wall times.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayes_vmimics.config import load_config
from bayes_vmimics.inference.emcee_sampler import ensemble_convergence as emcee_report
from bayes_vmimics.inference.emcee_sampler import run_ensembles
from bayes_vmimics.inference.initial import pooled_map_estimate, theta_from_logit
from bayes_vmimics.inference.pymc_models import (
    build_hierarchical_model,
    map_initial_values,
    posterior_convergence,
    sample,
)
from bayes_vmimics.io import build_site_tables, load_atmosphere
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.study import real_site_observations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--forest-type", default="ENF")
    ap.add_argument("--n-sites", type=int, default=20)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--tune", type=int, default=300)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--split", default="calibration", choices=["calibration", "validation", "all"])
    ap.add_argument("--parametrization", default="centred", choices=["centred", "non_centred"])
    ap.add_argument("--init", default="adapt_diag", help="NUTS mass-matrix adaptation (adapt_diag, adapt_full)")
    ap.add_argument("--max-treedepth", type=int, default=7)
    ap.add_argument("--c14", action="store_true", help="include the ¹⁴C term")
    ap.add_argument("--emcee-steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warm", action="store_true", help="warm starts (as bench_two_stage.py --warm)")
    ap.add_argument("--skip-nuts", action="store_true", help="only the pooled emcee run")
    args = ap.parse_args()

    cfg = load_config("study_default")
    cfg = cfg.replace(
        data={"forest_type": args.forest_type, "split": args.split, "max_sites": args.n_sites},
        likelihood={"use_c14": args.c14},
    )
    tables = build_site_tables(args.data_dir)
    sites = real_site_observations(tables, cfg)
    atm = load_atmosphere("hua2013", args.data_dir) if args.c14 else None
    problem = CalibrationProblem(sites, use_c14=args.c14, atmosphere=atm, max_obs_depth_cm=100.0, warm_start=args.warm)
    n = len(problem.sites)
    n_c14 = sum(1 for p in problem.sites if p.c14_index.size) if args.c14 else 0
    print(
        f"{args.forest_type}: {n} sites ({args.split}), ¹⁴C {'on' if args.c14 else 'off'} ({n_c14} with ¹⁴C), "
        f"warm starts {'on' if args.warm else 'off'}"
    )
    if not args.skip_nuts:
        run_nuts(problem, args)
    run_pooled_emcee(problem, args)


def run_nuts(problem, args) -> None:
    n = len(problem.sites)

    model = build_hierarchical_model(problem, [args.forest_type] * n, parametrization=args.parametrization)
    t0 = time.perf_counter()
    initvals = map_initial_values(model, args.chains, seed=args.seed)
    t_map = time.perf_counter() - t0
    dt = sample(
        model,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        cores=args.cores,
        max_treedepth=args.max_treedepth,
        random_seed=args.seed,
        init=args.init,
        initvals=initvals,
    )
    wall = time.perf_counter() - t0
    ss = dt["sample_stats"]
    print(
        f"  per-site MAP start {t_map:.0f} s; tree depth mean {float(ss['tree_depth'].mean()):.1f}, "
        f"leapfrog steps/draw {float(ss['n_steps'].mean()):.0f}, step size {float(ss['step_size'].mean()):.3g}"
    )
    rep = posterior_convergence(dt, ["theta_population"])
    print(
        f"hierarchical NUTS ({args.parametrization}, {args.init}): {args.chains} chains × ({args.tune} tune + "
        f"{args.draws} draws) on {args.cores} core(s), treedepth ≤ {args.max_treedepth}: wall {wall:.0f} s"
    )
    print(
        f"  max R-hat (population) {rep['max_r_hat']:.3f}   min bulk ESS {rep['min_ess_bulk']:.0f}   "
        f"min tail ESS {rep['min_ess_tail']:.0f}   divergences {rep['divergences']}"
    )
    print(f"  min bulk ESS per second {rep['min_ess_bulk'] / wall:.3f}")


def run_pooled_emcee(problem, args) -> None:
    t0 = time.perf_counter()
    around = theta_from_logit(problem.prior, pooled_map_estimate(problem, seed=args.seed))
    runs = run_ensembles(
        problem,
        problem.prior,
        n_ensembles=2,
        seed=args.seed,
        n_walkers=28,
        n_steps=args.emcee_steps,
        progress=False,
        around=around,
        n_processes=args.cores,
    )
    wall_e = time.perf_counter() - t0
    rep_e = emcee_report(runs, problem.prior.names, discard=args.emcee_steps // 2)
    tau = float(np.nanmax(rep_e["tau"]))
    n_samples = 2 * 28 * rep_e["n_kept_steps"]
    ess = n_samples / tau  # conservative: every walker's draws thinned by the largest τ
    print(
        f"pooled emcee (2 ensembles × 28 walkers × {args.emcee_steps} steps from the pooled MAP, "
        f"{args.cores} process(es), second half kept): wall "
        f"{wall_e:.0f} s, max τ {tau:.0f} steps, ESS ≈ {ess:.0f}, ESS/s ≈ {ess / wall_e:.3f}, "
        f"max R-hat {np.nanmax(rep_e['rhat']):.3f}, τ reliable (N/τ ≥ 50): {rep_e['tau_reliable']}"
    )


if __name__ == "__main__":
    main()
