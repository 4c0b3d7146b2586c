r"""Cross-validation by site of all forest types together, with one covariate effect B shared by the types.

``bayes-vmimics crossvalidate --forest-type ENF EBF DBF BNF --shared-beta`` does the same from scratch. This script
instead re-uses the stage-1 draws of ``bayes-vmimics hierarchical`` runs, one per forest type and half (a stage-1
checkpoint's key holds the site's index in its problem, so the command would run stage 1 again for a problem
of all types). Stage 1 depends on nothing but the site's own data, so the draws are the same whichever problem
the site belongs to.

Each run folder must hold ``run.json`` and its first-pass checkpoints ``stage1/<site>_<key>.npz`` (box prior),
exactly one per site; the runs must share their model, likelihood and stage-1 settings. Give one run per type
(all on the same half of ``data/site_split.csv``), or two per type, one on each half (``hierarchical --split
validation`` runs the second), to cross-validate every site. The sites of every type are split at random
(``--seed``) into ``--folds`` folds, and per fold stage 2 runs on the training sites of all types for the
population without covariates and for the regression population with B shared across types
(``--per-type-beta``: one B per type, as ``crossvalidate`` per type); every held-out site is predicted at its
covariates and scored (RMSE in mg C cm⁻³, r², lppd in nats per observation, 50/90 % coverage) under the runs'
error model.

Writes ``cv_scores.csv`` (and its figure ``cv_scores.png``), ``cv_fold_scores.csv``, ``cv_folds.csv``,
``cv_stage2.csv`` (R-hat, ESS and stage-2 weight ESS per fold and method), ``cv_beta.csv``,
``cv_predictions.csv`` (every held-out observation's predictive; figure ``cv_predictions.png``, by depth) and
``cv_depth_scores.csv`` (the scores by depth band) to ``--out``.

Usage (every site of both halves; without the ``--split validation`` runs, the calibration half only)::

    for FT in ENF EBF DBF BNF; do
      for HALF in calibration validation; do
        bayes-vmimics hierarchical --data-dir DATA --forest-type $FT --split $HALF --warm --n-steps 6000 --seed 1 \
            --stage2 mixture --out results/hier_${FT}_$HALF
      done
    done
    python analyses/15_pooled_crossvalidation.py --data-dir DATA --runs results/hier_*_calibration \
        results/hier_*_validation --covariates mat,map,clay --per-type-beta --stage2 mixture --draws 1000 \
        --n-processes 2 --seed 1 --out results/cv_pooled
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bayes_vmimics.config import config_from_dict
from bayes_vmimics.covariates import parse_covariates, site_covariate_table
from bayes_vmimics.crossvalidation import crossvalidate_sites, problem_subset
from bayes_vmimics.inference.regression import RegressionPrior
from bayes_vmimics.inference.site_draws import SitePosteriorSamples
from bayes_vmimics.io.sites import build_site_tables
from bayes_vmimics.study import build_hierarchical_study

#: Sections that must agree between the runs (the data section may differ only in its forest type).
SHARED_SECTIONS = ("model", "likelihood", "priors")


def read_runs(runs: list[Path]) -> tuple[dict, dict[str, list[str]], dict]:
    """The shared configuration, the sites of each forest type and the stage-1 settings of hierarchical runs.

    A forest type may have two runs, one on each half of ``data/site_split.csv`` ("calibration" and
    "validation"): their sites are then taken together, and the returned configuration selects ``split = "all"``.
    Every type must cover the same halves.

    Raises:
        ValueError: a folder that is not a hierarchical run, two runs of one forest type on the same half, types
            that cover different halves, or runs that differ in model, likelihood, priors or stage-1 settings (the
            message names the runs and the section).
    """
    config, sites, settings, first, halves = None, {}, None, None, {}
    for run in runs:
        path = run / "run.json"
        if not path.is_file():
            raise ValueError(f"{run}: no run.json (give the folders of bayes-vmimics hierarchical runs)")
        info = json.loads(path.read_text())
        if info.get("command") != "hierarchical":
            raise ValueError(f"{run}: a {info.get('command')!r} run, not a hierarchical one")
        cfg = info["configuration"]
        ft, split = cfg["data"]["forest_type"], cfg["data"]["split"]
        seen = halves.setdefault(ft, set())
        if split in seen or "all" in seen or (split == "all" and seen):
            raise ValueError(f"{run}: a second run of forest type {ft} on the same sites ({split} half)")
        seen.add(split)
        s1 = {k: info["settings"][k] for k in ("stage1_walkers", "stage1_steps")}
        if config is None:
            config, settings, first = cfg, s1, run
        else:
            for sec in SHARED_SECTIONS:
                if cfg[sec] != config[sec]:
                    raise ValueError(f"{run} and {first} differ in their [{sec}] configuration")
            if s1 != settings:
                raise ValueError(f"{run} and {first} differ in their stage-1 settings: {s1} against {settings}")
        sites.setdefault(ft, []).extend(info["sites"])
    covered = {ft: frozenset(h) for ft, h in halves.items()}
    if len(set(covered.values())) > 1:
        told = ", ".join(f"{ft}: {'+'.join(sorted(h))}" for ft, h in covered.items())
        raise ValueError(f"the forest types' runs cover different halves of data/site_split.csv ({told})")
    config = json.loads(json.dumps(config))  # a copy: the data section is rewritten below
    split = next(iter(covered.values()))  # the halves every type covers: one, or calibration and validation
    config["data"]["split"] = "all" if len(split) > 1 else next(iter(split))
    return config, sites, settings


def load_stage1(runs: list[Path], site_ids: list[str], forest_types: list[str], settings: dict):
    """The first-pass stage-1 draws of ``site_ids`` from their runs' checkpoints (:class:`SitePosteriorSamples`).

    Raises:
        FileNotFoundError: a site without exactly one checkpoint in the ``stage1`` folders of its type's runs.
    """
    folders: dict[str, list[Path]] = {}
    for r in runs:
        ft = json.loads((r / "run.json").read_text())["configuration"]["data"]["forest_type"]
        folders.setdefault(ft, []).append(r / "stage1")
    z, tau, acc, lp = [], [], [], []
    for site, ft in zip(site_ids, forest_types, strict=True):
        files = sorted(f for d in folders[ft] for f in d.glob(f"{site}_*.npz"))
        if len(files) != 1:
            where = " and ".join(str(d) for d in folders[ft])
            raise FileNotFoundError(f"{where}: {len(files)} checkpoints for site {site} (need one)")
        with np.load(files[0]) as f:
            z.append(f["z"])
            tau.append(f["tau"])
            acc.append(float(f["acceptance"]))
            lp.append(f["log_prob"] if "log_prob" in f.files else np.full(f["z"].shape[0], np.nan))
    n_steps = int(settings["stage1_steps"])
    # hierarchical's stage-1 settings: half discarded, thinned to 400 kept steps per walker
    return SitePosteriorSamples(
        list(site_ids),
        np.stack(z),
        np.stack(tau),
        np.array(acc),
        int(settings["stage1_walkers"]),
        n_steps,
        n_steps // 2,
        max(1, n_steps // 400),
        log_prob=np.stack(lp),
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="raw-data folder (default $BAYES_VMIMICS_DATA)")
    ap.add_argument(
        "--runs",
        nargs="+",
        type=Path,
        required=True,
        help="hierarchical run folders: one per type, or one per type and half (calibration and validation)",
    )
    ap.add_argument("--covariates", default="mat,map,clay", help="covariates (docs/covariates.md)")
    ap.add_argument("--per-type-beta", action="store_true", help="one B per forest type (default: shared)")
    ap.add_argument("--beta-sd", type=float, default=0.5, help="prior sd of B (logit units per covariate sd)")
    ap.add_argument("--folds", type=int, default=5, help="number of folds per forest type")
    ap.add_argument("--draws", type=int, default=1500, help="stage-2 sweeps per chain (tune: a quarter)")
    ap.add_argument("--chains", type=int, default=4, help="stage-2 chains")
    ap.add_argument(
        "--stage2",
        choices=("draws", "mixture"),
        default="draws",
        help="stage 2 on the stage-1 draws (Gibbs) or on a Gaussian-mixture likelihood per site (NUTS; "
        "--draws are then NUTS draws per chain, after as many tuning steps)",
    )
    ap.add_argument("--mixture-components", type=int, default=2, help="components per site of --stage2 mixture")
    ap.add_argument(
        "--methods",
        nargs="+",
        choices=["population", "regression", "own"],
        default=["population", "regression"],
        help="what predicts the held-out sites (default population regression); 'own' adds a reference: each site "
        "from its own stage-1 posterior, which has seen its data (not a prediction)",
    )
    ap.add_argument("--predictive-draws", type=int, default=200, help="posterior draws per held-out site")
    ap.add_argument("--n-processes", type=int, default=1, help="processes for the stage-2 chains")
    ap.add_argument("--seed", type=int, default=1, help="seed of the split, stage 2 and the predictive draws")
    ap.add_argument(
        "--exclude-sites",
        nargs="+",
        default=[],
        metavar="SITE",
        help="leave these sites of the runs out (e.g. a site that lacks a covariate: docs/covariates.md)",
    )
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    config, sites, settings = read_runs(args.runs)
    cfg = config_from_dict(config)
    study = build_hierarchical_study(cfg, list(sites), args.data_dir)  # the order of --runs
    problem, forest_types = study.problem, study.forest_types
    for ft, ids in sites.items():
        now = [s for s, t in zip(problem.site_ids, forest_types, strict=True) if t == ft]
        if sorted(now) != sorted(ids):
            raise ValueError(f"the {ft} sites of the data folder differ from its run's ({len(now)} against {len(ids)})")
    excluded = set(args.exclude_sites)
    unknown = sorted(excluded - set(problem.site_ids))
    if unknown:
        raise ValueError(f"--exclude-sites: {', '.join(unknown)} not among the runs' sites")
    if excluded:
        keep = [i for i, s in enumerate(problem.site_ids) if s not in excluded]
        problem, forest_types = problem_subset(problem, keep), [forest_types[i] for i in keep]
        print(f"left out (--exclude-sites): {', '.join(args.exclude_sites)}")
    s1 = load_stage1(args.runs, list(problem.site_ids), list(forest_types), settings)
    tune = args.draws if args.stage2 == "mixture" else max(args.draws // 4, 100)  # NUTS tunes as long as it samples
    names = parse_covariates(args.covariates)
    print(study.describe())
    counts = ", ".join(f"{t} {forest_types.count(t)}" for t in sorted(sites))
    print(
        f"{args.folds}-fold cross-validation by site of {counts}"
        f" sites; B {'per type' if args.per_type_beta else 'shared by the types'}; stage 2 ({args.stage2}) "
        f"{args.chains} chains × {args.draws} {'sweeps' if args.stage2 == 'draws' else 'NUTS draws'} per fold"
    )
    cv = crossvalidate_sites(
        problem,
        s1,
        forest_types,
        n_folds=args.folds,
        seed=args.seed,
        covariates=names,
        covariate_table=site_covariate_table(study.folder, tables=build_site_tables(study.folder)),
        shared_beta=not args.per_type_beta,
        hyperprior=RegressionPrior(beta_sd=args.beta_sd),
        stage2=dict(draws=args.draws, tune=tune, chains=args.chains, n_processes=args.n_processes),
        predictive_draws=args.predictive_draws,
        methods=tuple(args.methods),
        stage2_engine=args.stage2,
        mixture_components=args.mixture_components,
        log=print,
    )
    cv.write(args.out)
    cols = ["method", "forest_type", "variable", "r2_all", "rmse_all", "lppd_all", "coverage_50_all", "coverage_90_all"]
    cols += ["r2_fold_mean", "r2_fold_se"]
    with np.printoptions(precision=3):
        print(cv.scores[cols].round(3).to_string(index=False))
        print(cv.stage2.round(3).to_string(index=False))
    print(f"wrote {args.out / 'cv_scores.csv'} and the other files (total {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
