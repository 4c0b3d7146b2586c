"""Command line of the cross-validation by site: ``bayes-vmimics crossvalidate …``.

Stage 1 once for every selected site (emcee per site, checkpointed in ``--stage1-dir``, default
``--out/stage1``; the hierarchical run's own ``stage1`` folder is reused when the sites, configuration,
``--seed``, ``--n-steps`` and ``--n-walkers`` are the same), then K-fold cross-validation by site
(:func:`~bayes_vmimics.crossvalidation.crossvalidate_sites`): per fold, stage 2 of the population without
covariates and of the regression population on the training sites, and each held-out site predicted as a
new site of its forest type. Last, the regression population on all sites, for the coefficients B. Stage 1
runs on the process pool (``--n-processes``) or on a Dask cluster (``--scheduler``).

Second pass (``--refine``, as in ``hierarchical``): when the population of all sites is narrow, few of a
site's stage-1 draws (taken under the box prior) fall inside it, the stage-2 weights rest on a handful of draws
and stage 2 does not mix. Stage 1 is then run once more for every site under a normal prior fitted to the
population of all sites (:func:`~bayes_vmimics.inference.stage1.refined_stage1_prior`), and all folds use
those draws. That prior is only a proposal: stage 2 divides it out of every weight, so fitting it on all sites
(held-out ones included) changes the Monte Carlo error of a fold, not the posterior it estimates, and no
held-out data enter a prediction. The first pass uses ``hierarchical``'s stage-2 settings and seed, so with
``--stage1-dir`` at a ``hierarchical`` run's ``stage1`` folder (same sites, configuration, ``--warm``, ``--seed``,
``--n-steps``, ``--n-walkers``) both passes come from its checkpoints.

Writes to ``--out``: ``cv_scores.csv`` (per method, forest type and variable: scores of all held-out
predictions together and the mean ± se over folds), ``cv_fold_scores.csv``, ``cv_folds.csv`` (site → fold),
``cv_scores.png`` (r², lppd and 90 % coverage of held-out SOC per type and method), ``cv_predictions.csv`` and
``cv_predictions.png`` (every held-out observation's predictive median and quantiles; the figure by depth),
``cv_depth_scores.csv`` (the scores by depth band), ``cv_stage2.csv`` (R-hat, ESS, stage-2 weight ESS per fold
and method), ``cv_beta.csv`` (B per fold),
``regression.nc`` (the regression population on all sites), ``beta_summary.csv`` and ``beta.png`` (which
covariates move which parameters), ``run.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

#: ``crossvalidate --help``: what the command does, in plain text (the module docstring is for the API docs).
DESCRIPTION = (
    "K-fold cross-validation by site of the hierarchical populations. Stage 1 (emcee) runs once for every "
    "selected site, checkpointed in --stage1-dir (default --out/stage1; a hierarchical run's own stage1 folder is "
    "reused when the sites, configuration, --seed, --n-steps and --n-walkers are the same). Then, per fold, "
    "stage 2 of the population without covariates and of the regression population on the training sites, and "
    "each held-out site predicted as a new site of its forest type; last, the regression population on all "
    "sites, for the coefficients B. Writes cv_scores.csv, cv_scores.png, cv_predictions.png, cv_stage2.csv "
    "(R-hat, ESS and stage-2 weight ESS per fold and method), beta_summary.csv, beta.png and the other files "
    "listed in docs/covariates.md to --out."
)

CROSSVALIDATE_FILES = (
    "stage1/*.npz",
    "stage1/refined/*.npz",
    "cv_scores.csv",
    "cv_fold_scores.csv",
    "cv_folds.csv",
    "cv_stage2.csv",
    "cv_beta.csv",
    "cv_predictions.csv",
    "cv_depth_scores.csv",
    "regression.nc",
    "beta_summary.csv",
    "beta.png",
    "cv_scores.png",
    "cv_predictions.png",
)


def add_crossvalidate_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``crossvalidate`` to an argparse ``subparsers`` object (its ``func`` is :func:`cmd_crossvalidate`).

    Args:
        subparsers: the result of ``parser.add_subparsers()`` (–).

    Returns:
        The ``crossvalidate`` parser.
    """
    from .cli_common import (
        DRAWS,
        MAX_CHAINS,
        MAX_DRAWS,
        MAX_PREDICTIVE_DRAWS,
        MAX_PROCESSES,
        MAX_STEPS,
        MAX_WALKERS,
        PREDICTIVE,
        PROCESSES,
        STEPS,
        WALKERS,
        add_common_arguments,
        add_refine_arguments,
        add_regression_arguments,
        add_scheduler_argument,
        add_stage2_engine_arguments,
        bound_text,
        int_at_least,
        warm_help,
    )
    from .covariates import COVARIATES, DEFAULT_COVARIATES

    p = subparsers.add_parser(
        "crossvalidate",
        help="K-fold cross-validation by site of the hierarchical populations, with and without covariates",
        description=DESCRIPTION,
    )
    add_common_arguments(
        p,
        out="results/crossvalidate_<FOREST_TYPES>",
        several_forest_types=True,
        quick="quick settings (model/study_quick.toml: at most 6 sites), 1000 stage-1 steps per site and 500 "
        "stage-2 sweeps per fold (300 NUTS draws with --stage2 mixture): a smoke run",
        warm=warm_help(checks_branches=False),
    )
    p.add_argument(
        "--split",
        choices=["all", "calibration", "validation"],
        default="all",
        help="sites of data/site_split.csv to cross-validate (default all; 'calibration' reuses the stage 1 of a "
        "hierarchical run on the calibration half)",
    )
    p.add_argument(
        "--folds",
        type=int_at_least(2, " (every site held out once)", high=1000),
        default=5,
        help="K, 2 to 1000 (at most the number of sites) (default 5)",
    )
    add_regression_arguments(
        p,
        covariates_default=",".join(DEFAULT_COVARIATES),
        covariates_help=f"comma-separated site covariates of the regression (default {','.join(DEFAULT_COVARIATES)}); "
        f"known: {', '.join(COVARIATES)} (docs/covariates.md)",
    )
    p.add_argument(
        "--n-steps",
        type=STEPS,
        default=None,
        help=f"stage-1 emcee steps per site, {bound_text(MAX_STEPS)} (default 10000, 1000 with --quick)",
    )
    p.add_argument(
        "--n-walkers",
        type=WALKERS,
        default=32,
        help=f"stage-1 walkers per site, {bound_text(MAX_WALKERS)} (default 32)",
    )
    p.add_argument(
        "--n-processes",
        type=PROCESSES,
        default=None,
        help=f"worker processes for stage 1 (with --scheduler dask: workers), {bound_text(MAX_PROCESSES)} "
        "(default: the configuration's, 1, 2 with --quick)",
    )
    add_scheduler_argument(p, what="the stage-1 sites")
    p.add_argument(
        "--stage1-dir",
        default=None,
        help="stage-1 checkpoint folder (default --out/stage1), e.g. a hierarchical run's stage1 folder",
    )
    add_refine_arguments(p, what="; one pass for all sites, used by every fold")
    p.add_argument(
        "--draws",
        type=DRAWS,
        default=None,
        help=f"stage-2 sweeps per chain and fold, {bound_text(MAX_DRAWS)} (default 4000, 500 with --quick; with "
        "--stage2 mixture NUTS draws, default 1000, 300 with --quick)",
    )
    add_stage2_engine_arguments(p)
    p.add_argument(
        "--chains",
        type=int_at_least(2, " (R-hat)", high=MAX_CHAINS),
        default=4,
        help=f"stage-2 chains, 2 to {MAX_CHAINS} (default 4)",
    )
    p.add_argument(
        "--predictive-draws",
        type=PREDICTIVE,
        default=200,
        help=f"posterior draws per held-out site, 1 to {MAX_PREDICTIVE_DRAWS} (default 200)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        choices=["population", "regression", "table3", "own"],
        default=["population", "regression", "table3"],
        help="what predicts the held-out sites: the population without covariates, the regression population, and "
        "as a reference the paper's Table 3 parameters of the forest type (default these three); 'own' adds a "
        "reference: each site from its own stage-1 posterior, which has seen its data (not a prediction)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_crossvalidate)
    return p


def cmd_crossvalidate(args) -> int:
    """K-fold cross-validation by site (see the module docstring); stage 1 on the process pool or on a Dask cluster
    (``--scheduler``)."""
    from .cli_common import config_from_args, scheduler_from_args

    with scheduler_from_args(args, args.n_processes or config_from_args(args).sampler.n_processes) as sched:
        return _crossvalidate(args, sched)


def _crossvalidate(args, scheduler) -> int:
    import numpy as np
    import pandas as pd

    from .cli_common import claim, config_from_args, finish, hierarchical_stage2, mixture_stage2, out_dir
    from .covariates import CovariateScaler, covariate_design, parse_covariates, site_covariate_table
    from .crossvalidation import crossvalidate_sites, site_folds
    from .inference.pymc_models import posterior_convergence, save_results
    from .inference.regression import RegressionPrior, sample_regression_population
    from .inference.stage1 import refined_stage1_prior, site_posterior_samples
    from .inference.two_stage import needs_refinement, sample_population
    from .interrupt import deferred_interrupt
    from .io.sites import build_site_tables
    from .rundir import check_out_path
    from .study import build_hierarchical_study

    t0 = time.perf_counter()
    cfg = config_from_args(args).replace(data={"split": args.split})  # --warm / --cold: likelihood.warm_start
    if cfg.study.mode == "synthetic":
        raise ValueError("crossvalidate needs real sites with covariates (--data-dir), not --synthetic")
    names = parse_covariates(args.covariates)
    if not args.beta_sd > 0:
        raise ValueError(f"--beta-sd must be positive, got {args.beta_sd}")
    if args.out:
        check_out_path(Path(args.out))
    study = build_hierarchical_study(cfg, args.forest_type, args.data_dir)
    problem, forest_types = study.problem, study.forest_types
    # every site's covariates are checked before stage 1 (a missing value names the site and the covariate)
    table = site_covariate_table(study.folder, tables=build_site_tables(study.folder))
    CovariateScaler.fit(table, problem.site_ids, forest_types, names, clay_rule=args.clay_rule)
    try:  # the folds are dealt before stage 1, so that too few sites for --folds is said at once
        site_folds(forest_types, args.folds, seed=args.seed)
    except ValueError as err:
        raise ValueError(f"--folds {args.folds}: {err}") from None
    n_steps = args.n_steps or (1000 if args.quick else 10_000)
    mixture = args.stage2 == "mixture"
    if mixture:
        draws = mixture_stage2(args.quick, args.draws, args.chains)["draws"]
    else:
        draws = args.draws or (500 if args.quick else 4000)
    steps2 = args.refine_steps or max(n_steps // 3, 100)
    out = out_dir(args, cfg, sorted(set(forest_types)))
    ckpt = Path(args.stage1_dir) if args.stage1_dir else out / "stage1"
    settings = {
        "stage1_walkers": args.n_walkers,
        "stage1_steps": n_steps,
        "folds": args.folds,
        "covariates": list(names),
        "clay_rule": args.clay_rule,
        "shared_beta": bool(args.shared_beta),
        "beta_sd": args.beta_sd,
        "refine": "never" if mixture else args.refine,
        "stage2": args.stage2,
        "mixture_components": args.mixture_components if mixture else None,
        "warm": bool(args.warm),
        "refine_steps": steps2,
        "draws": draws,
        "chains": args.chains,
        "predictive_draws": args.predictive_draws,
        "methods": list(args.methods),
    }
    claim(
        args,
        out,
        cfg,
        study,
        products=CROSSVALIDATE_FILES,
        resumable=("stage1/*.npz", "stage1/refined/*.npz"),
        settings=settings,
    )
    args.resume_hint = f"finished sites are kept in {ckpt}: rerun the same command to resume from them"
    print(study.describe())
    counts = pd.Series(forest_types).value_counts().sort_index()
    print("sites per forest type: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    n_proc = args.n_processes or cfg.sampler.n_processes
    where = f"{n_proc} process(es)" if scheduler is None else "one Dask task per site"
    print(
        f"stage 1: emcee {args.n_walkers} walkers × {n_steps} steps per site, {where}, checkpoints in "
        f"{ckpt}; then {args.folds}-fold cross-validation by site ({', '.join(args.methods)}; covariates "
        f"{', '.join(names)}), stage 2 {args.chains} chains × {draws} "
        + ("NUTS draws on mixture likelihoods" if mixture else "sweeps")
        + " per fold"
    )
    # the settings of `hierarchical` (thin, discard, seed), so that its checkpoints are found again
    s1 = site_posterior_samples(
        problem,
        seed=args.seed,
        n_walkers=args.n_walkers,
        n_steps=n_steps,
        thin=max(1, n_steps // 400),
        n_processes=n_proc,
        scheduler=scheduler,
        checkpoint_dir=ckpt,
        progress=not args.no_progress,
    )
    args.resume_hint = f"stage 1 is finished and kept in {ckpt}: rerun the same command to redo only the folds"
    # stage-2 chains on a fork pool, not beside a Dask client (its threads)
    n_chain_proc = n_proc if scheduler is None else 1
    tune = draws if mixture else max(draws // 4, 100)
    stage2 = dict(draws=draws, tune=tune, chains=args.chains, n_processes=n_chain_proc)
    reference = None
    if "table3" in args.methods:
        from .io.parameters import table3_parameters

        reference = {t: table3_parameters(t, study.folder) for t in sorted(set(forest_types))}
    if mixture and args.refine == "always":
        print("no second pass with --stage2 mixture: the mixtures smooth over the stage-1 draws")
    if args.refine != "never" and not mixture:
        # hierarchical's own first pass (same sweeps and seed): the same fitted prior finds its refined checkpoints
        pass1 = sample_population(
            s1,
            forest_types,
            problem.prior,
            seed=args.seed,
            n_processes=n_chain_proc,
            **hierarchical_stage2(args.quick, None, args.chains),
        )
        q05 = float(pass1["stage2_diagnostics"]["weight_ess_q05"].min())
        if args.refine == "always" or needs_refinement(pass1):
            why = "asked for" if args.refine == "always" else f"smallest stage-2 weight ESS (5 % quantile) {q05:.1f}"
            print(
                f"second pass ({why}): stage 1 again, {steps2} steps per site under a normal prior fitted to the "
                f"population of all sites (a proposal that stage 2 divides out); kept in {ckpt / 'refined'}"
            )
            s1 = site_posterior_samples(
                problem,
                seed=args.seed + 1,
                n_walkers=args.n_walkers,
                n_steps=steps2,
                thin=max(1, steps2 // 400),
                stage1_prior=refined_stage1_prior(pass1, forest_types),
                n_processes=n_proc,
                scheduler=scheduler,
                checkpoint_dir=ckpt / "refined",
                progress=not args.no_progress,
            )
        else:
            print(f"no second pass needed (smallest stage-2 weight ESS, 5 % quantile, {q05:.1f} ≥ 5)")
    hyper = RegressionPrior(beta_sd=args.beta_sd)
    cv = crossvalidate_sites(
        problem,
        s1,
        forest_types,
        n_folds=args.folds,
        seed=args.seed,
        covariates=names,
        covariate_table=table,
        clay_rule=args.clay_rule,
        shared_beta=args.shared_beta,
        hyperprior=hyper,
        stage2=stage2,
        predictive_draws=args.predictive_draws,
        methods=args.methods,
        reference_parameters=reference,
        stage2_engine=args.stage2,
        mixture_components=args.mixture_components,
        log=print,
    )
    print("regression population on all sites (for the coefficients B)")
    design = covariate_design(problem.site_ids, forest_types, names, table=table, clay_rule=args.clay_rule)
    if mixture:
        from .inference.mixture_stage2 import sample_mixture_population

        full = sample_mixture_population(
            cv.mixtures,  # the folds' mixtures: each site's depends on its own stage-1 draws only
            forest_types,
            problem.prior,
            X=design,
            shared_beta=args.shared_beta,
            hyperprior=hyper,
            seed=args.seed,
            stage1=s1,
            **stage2,
        )
    else:
        full = sample_regression_population(
            s1,
            design,
            forest_types,
            problem.prior,
            shared_beta=args.shared_beta,
            hyperprior=hyper,
            seed=args.seed,
            **stage2,
        )
    full["posterior"].attrs["data"] = study.data_version
    rep = posterior_convergence(full, ["mu", "sigma"])
    beta_rep = posterior_convergence(full, ["beta"])  # B's own table, for beta_summary.csv
    beta_summary = beta_rep["summary"]
    with deferred_interrupt():
        cv.write(out)
        save_results(full, out / "regression.nc")
        beta_summary.to_csv(out / "beta_summary.csv")
        from .parameter_plots import plot_beta

        plot_beta(full, out / "beta.png")
        finish(out)
    from .convergence import convergence_verdict

    # the verdict over every fold's stage 2 and the regression on all sites (stage-1 N/τ per site as in sites.csv)
    st2 = cv.stage2
    verdict = convergence_verdict(
        rhat=[*st2["max_r_hat"].dropna(), rep["max_r_hat"], beta_rep["max_r_hat"]],
        ess_bulk=[*st2["min_ess_bulk"].dropna(), rep["min_ess_bulk"], beta_rep["min_ess_bulk"]],
        n_over_tau=(s1.n_steps - s1.discard) / np.nanmax(s1.tau, axis=1),
        weight_ess_q05=None if mixture else st2["min_weight_ess_q05"].dropna().to_numpy(),
        divergences=int(st2["divergences"].sum()) if mixture else None,
        sites=s1.site_ids,
        smoke_run=bool(args.quick or cfg.study.name == "quick"),
    )
    print(verdict.line())
    cols = ["method", "forest_type", "variable", "r2_all", "rmse_all", "lppd_all", "coverage_50_all"]
    cols += ["coverage_90_all", "r2_fold_mean", "r2_fold_se", "lppd_fold_mean", "lppd_fold_se"]
    print(f"{args.folds}-fold cross-validation by site (every site held out once; *_all: all held-out predictions):")
    print(cv.scores[[c for c in cols if c in cv.scores]].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if mixture:
        why = f"NUTS divergences {int(cv.stage2['divergences'].sum())}"
    else:
        why = f"smallest stage-2 weight ESS (5 % quantile) {cv.stage2['min_weight_ess_q05'].min():.1f}"
    print(
        f"stage 2 over folds: max R-hat {cv.stage2['max_r_hat'].max():.3f}, {why}; regression on all sites: max "
        f"R-hat {max(rep['max_r_hat'], beta_rep['max_r_hat']):.3f}"
    )
    away = beta_summary[(beta_summary["eti89_lb"] > 0) | (beta_summary["eti89_ub"] < 0)]
    print(f"coefficients whose 89 % interval excludes 0: {len(away)} of {len(beta_summary)}")
    if len(away):
        print(away[["mean", "sd", "eti89_lb", "eti89_ub"]].to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"wrote {out / 'cv_scores.csv'} and the other files of the folder (total {time.perf_counter() - t0:.0f} s)")
    return 0
