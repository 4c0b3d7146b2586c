"""Two-stage hierarchical calibration of one forest type on real sites: wall time of each stage, R-hat and
minimum bulk ESS of the population parameters, ESS per second, and the stage-1 diagnostics. Prints figures;
asserts nothing. Long: start it in the background.

    python benchmarks/bench_two_stage.py --data-dir ../shared/data --forest-type ENF --split all \
        --n-steps 10000 --processes 2 [--warm] [--c14] [--out results/two_stage_ENF.nc]

``--synthetic N`` replaces the real sites by N synthetic ones (six layers to 100 cm, 10 % noise) whose
parameters are drawn from a known population (μ at the synthetic twin's default parameters, σ =
``--synthetic-sigma`` logit units): the run then also prints where the true population parameters fall
in the posterior. This measures the sampler at a site count the data do not reach (≥ 40 per type).
``--synthetic-from RESULTS.nc`` takes μ and σ instead from the posterior means of a real run's population
(one forest type), so the N synthetic sites vary as that forest type's sites do.

Stage 1 includes the per-site MAP search that centres each site's walkers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayes_vmimics.config import load_config
from bayes_vmimics.inference.initial import logit_from_theta
from bayes_vmimics.inference.pymc_models import posterior_convergence, save_results
from bayes_vmimics.inference.two_stage import two_stage_hierarchical
from bayes_vmimics.io import build_site_tables, load_atmosphere
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.priors import BoxPrior
from bayes_vmimics.results import load_datatree
from bayes_vmimics.study import real_site_observations
from bayes_vmimics.synthetic import make_synthetic_sites, population_site_parameters, true_parameters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="raw data folder (needed unless --synthetic)")
    ap.add_argument("--synthetic", type=int, default=0, help="N synthetic sites from a known population")
    ap.add_argument("--synthetic-sigma", type=float, default=0.3, help="population sd (logit units)")
    ap.add_argument(
        "--synthetic-from",
        default=None,
        help="a real run's results.nc: the synthetic population's μ and σ are its posterior means "
        "(instead of the twin's defaults and --synthetic-sigma)",
    )
    ap.add_argument("--forest-type", default="ENF")
    ap.add_argument("--split", default="all", choices=["calibration", "validation", "all"])
    ap.add_argument("--max-sites", type=int, default=0, help="at most this many sites (0 = all)")
    ap.add_argument("--n-walkers", type=int, default=32)
    ap.add_argument("--n-steps", type=int, default=10000)
    ap.add_argument("--thin", type=int, default=25)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--draws", type=int, default=6000, help="stage-2 sweeps (default 6000, as hierarchical)")
    ap.add_argument("--tune", type=int, default=2000, help="stage-2 tuning sweeps (default 2000)")
    ap.add_argument("--stage2-thin", type=int, default=5, help="stage-2 thinning (default 5)")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--c14", action="store_true", help="include the ¹⁴C term")
    ap.add_argument("--warm", action="store_true", help="warm starts (faster; see the README on equilibria)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--refine", default="auto", choices=["auto", "always", "never"], help="second pass")
    ap.add_argument("--refine-steps", type=int, default=3000, help="stage-1 steps per site of the second pass")
    ap.add_argument("--pass1-draws", type=int, default=None, help="stage-2 sweeps of pass 1 (default --draws)")
    ap.add_argument("--checkpoint-dir", default=None, help="keep each pass's stage 1 here (resumable)")
    ap.add_argument("--out", default=None, help="write the DataTree to this netCDF file")
    args = ap.parse_args()

    mu_true = None
    if args.synthetic:
        if args.c14:
            ap.error("--synthetic runs are SOC only")
        mu_true, sigma_true = logit_from_theta(BoxPrior(), true_parameters()), args.synthetic_sigma
        if args.synthetic_from:
            post = load_datatree(args.synthetic_from)["posterior"]
            if post.sizes["forest_type"] != 1:
                ap.error("--synthetic-from needs a result with one forest type")
            mu_true = post["mu"].mean(("chain", "draw")).to_numpy().ravel()
            sigma_true = post["sigma"].mean(("chain", "draw")).to_numpy().ravel()
            print(
                "synthetic population from "
                f"{args.synthetic_from}: μ {np.round(mu_true, 2).tolist()}, σ {np.round(sigma_true, 2).tolist()}"
            )
        rng = np.random.default_rng(args.seed)
        thetas = population_site_parameters(args.synthetic, mu_true, sigma_true, rng=rng)
        sites = make_synthetic_sites(args.synthetic, thetas, rng=rng)
        args.forest_type, args.split = "synthetic", "all"
    else:
        if args.data_dir is None:
            ap.error("--data-dir is needed for real sites")
        cfg = load_config("study_default").replace(
            data={"forest_type": args.forest_type, "split": args.split, "max_sites": args.max_sites},
            likelihood={"use_c14": args.c14},
        )
        sites = real_site_observations(build_site_tables(args.data_dir), cfg)
    atm = load_atmosphere("hua2013", args.data_dir) if args.c14 else None
    problem = CalibrationProblem(sites, use_c14=args.c14, atmosphere=atm, max_obs_depth_cm=100.0, warm_start=args.warm)
    n = len(problem.sites)
    n_c14 = sum(1 for p in problem.sites if p.c14_index.size) if args.c14 else 0
    print(
        f"{args.forest_type}: {n} sites ({args.split}), ¹⁴C {'on' if args.c14 else 'off'} ({n_c14} with ¹⁴C), "
        f"warm starts {'on' if args.warm else 'off'}"
    )

    types = [args.forest_type] * n
    # the passes are the library's own (two_stage_hierarchical); the log callback timestamps each stage
    t_start = time.perf_counter()
    marks: list[tuple[float, str]] = []

    def log(msg: str) -> None:
        marks.append((time.perf_counter(), msg))
        print(f"[{time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    ckpt = args.checkpoint_dir
    dt, s1 = two_stage_hierarchical(
        problem,
        types,
        stage1=dict(
            n_walkers=args.n_walkers,
            n_steps=args.n_steps,
            thin=args.thin,
            n_processes=args.processes,
            checkpoint_dir=f"{ckpt}/pass1" if ckpt else None,
        ),
        stage2=dict(draws=args.draws, tune=args.tune, chains=args.chains, thin=args.stage2_thin),
        refine=args.refine,
        refine_stage1=dict(n_steps=args.refine_steps, checkpoint_dir=f"{ckpt}/pass2" if ckpt else None),
        pass1_draws=args.pass1_draws,
        seed=args.seed,
        log=log,
    )
    wall = time.perf_counter() - t_start
    marks.append((time.perf_counter(), "end"))
    print("wall time per stage:")
    for (t0, msg), (t1, _) in zip(marks[:-1], marks[1:], strict=True):
        print(f"  {t1 - t0:7.0f} s  {msg}")
    rep = posterior_convergence(dt, ["theta_population", "mu", "sigma"])
    d = dt["stage2_diagnostics"]
    tau = np.nanmax(s1.tau, axis=1)
    print(
        f"last stage 1: {args.n_walkers} walkers per site; max τ per site {tau.min():.0f}–{tau.max():.0f} steps "
        f"(median {np.median(tau):.0f}); N/τ ≥ 50 for {int(s1.tau_reliable.sum())}/{n} sites; independent draws "
        f"per site ≈ {s1.n_effective.min():.0f}–{s1.n_effective.max():.0f}; acceptance "
        f"{s1.acceptance.min():.2f}–{s1.acceptance.max():.2f}; {s1.z.shape[1]} kept draws per site"
    )
    if "branch_mismatch_fraction" in dt["stage1"]:
        print(
            "warm starts, stage-1 draws re-solved cold: mismatch fraction per site ≤ "
            f"{float(dt['stage1']['branch_mismatch_fraction'].max()):.3f}"
        )
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
    if mu_true is not None:
        mu = dt["posterior"]["mu"].stack(sample=("chain", "draw")).transpose(..., "sample").values
        mu = mu.reshape(mu_true.size, -1)
        q = (mu < mu_true[:, None]).mean(axis=1)
        print("true population location: posterior quantile of μ per parameter (0.5 = centre):")
        names = dt["posterior"]["mu"].coords["parameter"].values
        print("  " + "  ".join(f"{n} {v:.2f}" for n, v in zip(names, q, strict=True)))
    if args.out:
        save_results(dt, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
