"""The two stage-2 samplers on the same stage-1 draws: the reweighting one (approximate, no model solves) and
Metropolis-within-Gibbs with model solves (exact, slow). Prints each one's R-hat, bulk ESS and the 5/50/95 %
posterior quantiles of μ and the median of σ (logit units), so a gap between them beyond Monte Carlo error
shows the reweighting's approximation error. Asserts nothing. Long: start it in the background.

    python benchmarks/compare_stage2.py --data-dir ../shared/data --forest-type ENF --every 3 \
        --n-steps 4000 --thin 10 --draws 6000 --checkpoint-dir /tmp/s1enf

``--every k`` keeps every k-th usable site (k = 3: 12 of the 35 ENF sites), so that the exact sampler gets
far enough to compare. Stage 1 runs on all sites of the type (cold spin-ups, or warm starts with
``--warm``; checkpointed in ``--checkpoint-dir``, so a rerun reuses it); the exact stage 2 solves cold.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayes_vmimics.cli import real_site_observations
from bayes_vmimics.config import load_config
from bayes_vmimics.inference.mwg import sample_population_mwg
from bayes_vmimics.inference.pymc_models import convergence_report
from bayes_vmimics.inference.two_stage import sample_population, site_posterior_samples
from bayes_vmimics.io import build_site_tables
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.parameters import PARAMETER_NAMES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="raw data folder")
    ap.add_argument("--forest-type", default="ENF")
    ap.add_argument("--every", type=int, default=3, help="keep every k-th usable site")
    ap.add_argument("--n-steps", type=int, default=4000, help="stage-1 emcee steps per site")
    ap.add_argument("--thin", type=int, default=10, help="stage-1 thinning")
    ap.add_argument("--draws", type=int, default=6000, help="exact stage 2: sweeps per chain after 1000 tuning")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--checkpoint-dir", default=None, help="stage-1 checkpoints (resumable)")
    ap.add_argument("--warm", action="store_true", help="warm starts in stage 1 (2-4x faster)")
    args = ap.parse_args()

    cfg = load_config("study_default").replace(
        data={"forest_type": args.forest_type, "split": "all", "max_sites": 0}, likelihood={"use_c14": False}
    )
    sites = real_site_observations(build_site_tables(args.data_dir), cfg)
    problem = CalibrationProblem(sites, use_c14=False, max_obs_depth_cm=100.0, warm_start=args.warm)
    s1 = site_posterior_samples(
        problem,
        n_walkers=32,
        n_steps=args.n_steps,
        thin=args.thin,
        seed=args.seed,
        n_processes=args.processes,
        checkpoint_dir=f"{args.checkpoint_dir}/pass 1" if args.checkpoint_dir else None,
    )
    keep = list(range(0, len(sites), args.every))
    sub = CalibrationProblem([sites[i] for i in keep], use_c14=False, max_obs_depth_cm=100.0)
    s1 = s1.subset(keep)
    types = [args.forest_type] * len(keep)
    print(f"{args.forest_type}: {len(keep)} of {len(sites)} sites; {s1.z.shape[1]} stage-1 draws per site")

    t0 = time.perf_counter()
    weights = sample_population(s1, types, sub.prior, draws=20_000, tune=2_000, chains=4, thin=5, seed=args.seed)
    t_w = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact = sample_population_mwg(
        s1, types, sub, draws=args.draws, tune=1_000, chains=4, thin=2, seed=args.seed, n_processes=args.processes
    )
    t_e = time.perf_counter() - t0
    for name, dt, wall in (("reweighting", weights, t_w), ("exact (mwg)", exact, t_e)):
        rep = convergence_report(dt, ["mu", "sigma"])
        mu = dt["posterior"]["mu"].values[..., 0, :].reshape(-1, len(PARAMETER_NAMES))
        sd = dt["posterior"]["sigma"].values[..., 0, :].reshape(-1, len(PARAMETER_NAMES))
        print(
            f"{name}: {wall:.0f} s; max R-hat {rep['max_r_hat']:.4f}, min bulk ESS {rep['min_ess_bulk']:.0f} "
            "(mu, sigma)"
        )
        for label, q in (("μ  5 %", 0.05), ("μ 50 %", 0.5), ("μ 95 %", 0.95)):
            vals = np.quantile(mu, q, axis=0)
            print(f"  {label}: " + "  ".join(f"{n} {v:.2f}" for n, v in zip(PARAMETER_NAMES, vals, strict=True)))
        print(
            "  σ 50 %: "
            + "  ".join(f"{n} {v:.2f}" for n, v in zip(PARAMETER_NAMES, np.median(sd, axis=0), strict=True))
        )
        ess = rep["summary"].loc[[f"mu[{args.forest_type}, {n}]" for n in PARAMETER_NAMES], ["ess_bulk", "r_hat"]]
        pairs = zip(PARAMETER_NAMES, ess["ess_bulk"], ess["r_hat"], strict=True)
        print("  μ bulk ESS, R-hat: " + "  ".join(f"{n} {e:.0f}, {r:.3f}" for n, e, r in pairs))


if __name__ == "__main__":
    main()
