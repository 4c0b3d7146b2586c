"""``hierarchical``: two-stage hierarchical calibration across the sites of one or several forest types.

Stage 1 samples each site alone (emcee, checkpointed; on the process pool or a Dask cluster), stage 2 the
populations of the forest types from those draws (docs/hierarchical.md). Writes ``results.nc``, ``report.txt``
(its first line the convergence verdict), ``population_summary.csv``, ``sites.csv`` and the figures.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..interrupt import deferred_interrupt
from ..rundir import check_out_path
from .common import (
    MAX_CHAINS,
    MAX_DRAWS,
    MAX_PREDICTIVE_DRAWS,
    MAX_PROCESSES,
    MAX_STEPS,
    MAX_WALKERS,
    Progress,
    StudyOptions,
    as_tuple,
    check_choice,
    check_count,
    claim_folder,
    finish,
    hierarchical_stage2,
    mixture_stage2,
    output_folder,
    pages_text,
    study_config,
)

#: Files hierarchical writes into its folder (``fresh`` deletes these, and only these).
HIERARCHICAL_FILES = (
    "stage1/*.npz",
    "stage1/refined/*.npz",
    "replicate_*/stage1/*.npz",
    "replicate_*/stage1/refined/*.npz",
    "results.nc",
    "population_summary.csv",
    "sites.csv",
    "population.png",
    "xv_xk.png",
    "fit_metrics.csv",
    "profiles.png",
    "profiles_*.png",
    "beta.png",
    "report.txt",
)


@dataclass(frozen=True)
class HierarchicalOptions(StudyOptions):
    """Options of :func:`run_hierarchical` (``bayes-vmimics hierarchical``), besides the study's
    (:class:`StudyOptions`).

    Attributes:
        forest_type: forest types of the real sites, one population each; None: the configuration's (names).
        split: sites of data/site_split.csv to fit, "calibration", "validation" or "all"; None: the
            configuration's.
        n_steps: stage-1 emcee steps per site, ≤ 1 000 000; None: 10 000, 1000 with ``quick`` (count).
        n_walkers: stage-1 walkers per site, ≤ 10 000 (count).
        n_processes: worker processes for the sites (Dask workers with a scheduler); None: the configuration's
            (count).
        draws: stage-2 sweeps per chain (NUTS draws with stage2 "mixture"); None: 6000, 1000 with ``quick`` (300
            and 1000 with "mixture") (count).
        stage2: "draws" (Gibbs on the stage-1 draws) or "mixture" (NUTS on a Gaussian-mixture likelihood per site).
        mixture_components: Gaussian components per site with stage2 "mixture", 1 to 50 (count).
        chains: stage-2 chains, 2 to 100 (count).
        refine: second stage-1 pass: "auto", "always" or "never".
        refine_steps: stage-1 steps per site of the second pass; None: n_steps/3, at least 100 (count).
        replicates: independent runs of both stages whose chains are combined, 1 to 100 (count).
        pass1_draws: stage-2 sweeps of the first pass; None: ``draws`` (count).
        predictive_draws: posterior draws for the calibration sites' predictive profiles, 0 = none (count).
        no_progress: no progress bar (bool).
        stage1_dir: stage-1 checkpoint folder; None: ``out``/stage1 (path).
        covariates: regression population: comma-separated site covariates, e.g. "mat,map,clay"; None: none.
        clay_rule: with clay: sites without a measurement keep the filled clay with an indicator ("indicator")
            or are an error ("measured").
        shared_beta: one coefficient matrix B for all forest types (bool).
        beta_sd: prior sd of each coefficient B (logit units per sd).
    """

    forest_type: tuple[str, ...] | None = None
    split: str | None = None
    n_steps: int | None = None
    n_walkers: int = 32
    n_processes: int | None = None
    draws: int | None = None
    stage2: str = "draws"
    mixture_components: int = 2
    chains: int = 4
    refine: str = "auto"
    refine_steps: int | None = None
    replicates: int = 1
    pass1_draws: int | None = None
    predictive_draws: int = 200
    no_progress: bool = False
    stage1_dir: str | Path | None = None
    covariates: str | None = None
    clay_rule: str = "indicator"
    shared_beta: bool = False
    beta_sd: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.forest_type, str):
            raise ValueError(f"forest_type: a sequence of names, got the string {self.forest_type!r}")
        super().__post_init__()
        object.__setattr__(self, "forest_type", as_tuple(self.forest_type))
        check_choice("split", self.split, ("calibration", "validation", "all"))
        check_count("n_steps", self.n_steps, 1, MAX_STEPS)
        check_count("n_walkers", self.n_walkers, 1, MAX_WALKERS)
        check_count("n_processes", self.n_processes, 1, MAX_PROCESSES)
        check_count("draws", self.draws, 1, MAX_DRAWS)
        check_choice("stage2", self.stage2, ("draws", "mixture"))
        check_count("mixture_components", self.mixture_components, 1, 50)
        check_count("chains", self.chains, 2, MAX_CHAINS, " (R-hat compares chains)")
        check_choice("refine", self.refine, ("auto", "always", "never"))
        check_count("refine_steps", self.refine_steps, 1, MAX_STEPS)
        check_count("replicates", self.replicates, 1, MAX_CHAINS)
        check_count("pass1_draws", self.pass1_draws, 1, MAX_DRAWS)
        check_count("predictive_draws", self.predictive_draws, 0, MAX_PREDICTIVE_DRAWS)
        check_choice("clay_rule", self.clay_rule, ("indicator", "measured"))

    def n_workers(self) -> int:
        """Workers of a local Dask cluster: ``n_processes``, else the configuration's (count)."""
        return self.n_processes or study_config(self, "hierarchical")[0].sampler.n_processes


@dataclass(frozen=True)
class HierarchicalResult:
    """What :func:`run_hierarchical` wrote, and its key numbers.

    Attributes:
        out: the output folder (path).
        verdict: the convergence verdict, the report's first line (–).
        results: results.nc (path).
        report: report.txt (path).
        population_summary: population_summary.csv (path).
        sites: sites.csv, the per-site diagnostics (path).
        figures: the figures (paths).
        fit_metrics: fit_metrics.csv, or None without predictive draws (path).
        max_r_hat: largest R-hat of the population parameters (–).
        min_ess_bulk: smallest bulk ESS of the population parameters (count).
        min_ess_tail: smallest tail ESS of the population parameters (count).
        n_sites: calibration sites (count).
        wall_time_s: wall time of the run (s).
    """

    out: Path
    verdict: str
    results: Path
    report: Path
    population_summary: Path
    sites: Path
    figures: tuple[Path, ...]
    fit_metrics: Path | None
    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    n_sites: int
    wall_time_s: float


def run_hierarchical(
    options: HierarchicalOptions, *, scheduler=None, progress: Progress | None = None
) -> HierarchicalResult:
    """Two-stage hierarchical calibration across the sites of one or several forest types.

    Args:
        options: what to calibrate and how (:class:`HierarchicalOptions`).
        scheduler: an open Dask scheduler (:func:`~bayes_vmimics.scheduler.open_scheduler`) for stage 1 (one
            task per site) and the sites' predictive; None: the local process pool.
        progress: where the run reports (default: printed).

    Raises:
        ValueError: an input that cannot run (the message names it); :class:`~bayes_vmimics.rundir.RunFolderError`:
            ``out`` holds another run.
    """
    import pandas as pd

    from ..convergence import result_verdict
    from ..diagnostics import plot_xv_xk
    from ..inference.pymc_models import posterior_convergence, save_results
    from ..inference.replicates import combine_replicates, replicate_seeds
    from ..inference.two_stage import two_stage_hierarchical
    from ..parameter_plots import plot_population
    from ..plotting import plot_profile_pages
    from ..predictive import add_site_predictive
    from ..results import fit_metrics_table
    from ..study import build_hierarchical_study

    o, progress = options, progress or Progress()
    say = progress.say
    t0 = time.perf_counter()
    cfg, _ = study_config(o, "hierarchical")  # warm sets likelihood.warm_start
    if o.out:
        check_out_path(Path(o.out))
    study = build_hierarchical_study(cfg, list(o.forest_type) if o.forest_type else None, o.data_dir)
    problem, forest_types = study.problem, study.forest_types
    n_steps = o.n_steps or (1000 if o.quick else 10_000)
    mixture = o.stage2 == "mixture"
    if mixture:
        if o.refine == "always":
            raise ValueError("--stage2 mixture has no second pass: leave --refine at auto or give never")
        if o.pass1_draws:
            raise ValueError("--pass1-draws belongs to the second pass, which --stage2 mixture does not run")
        stage2 = mixture_stage2(o.quick, o.draws, o.chains)
    else:
        stage2 = hierarchical_stage2(o.quick, o.draws, o.chains)
    draws = stage2["draws"]
    steps2 = o.refine_steps or max(n_steps // 3, 100)
    out = output_folder("hierarchical", o.out, cfg, sorted(set(forest_types)), default_out=o.default_out)
    ckpt = Path(o.stage1_dir) if o.stage1_dir else out / "stage1"
    settings = {"stage1_walkers": o.n_walkers, "stage1_steps": n_steps, "refine_steps": steps2}
    if mixture:
        settings |= {"stage2": "mixture", "mixture_components": o.mixture_components}
    if o.stage1_dir:
        settings["stage1_dir"] = str(ckpt)
    design = regression = None
    if o.covariates:
        # the regression population (issue 20): every site's covariates are checked before stage 1
        from ..covariates import covariate_design, parse_covariates
        from ..inference.regression import RegressionPrior

        if study.synthetic:
            raise ValueError("--covariates needs real sites (--data-dir), not --synthetic")
        if not o.beta_sd > 0:
            raise ValueError(f"--beta-sd must be positive, got {o.beta_sd}")
        names = parse_covariates(o.covariates)
        design = covariate_design(problem.site_ids, forest_types, names, data_dir=study.folder, clay_rule=o.clay_rule)
        regression = {"shared_beta": o.shared_beta, "hyperprior": RegressionPrior(beta_sd=o.beta_sd)}
        settings |= {
            "covariates": list(names),
            "clay_rule": o.clay_rule,
            "shared_beta": bool(o.shared_beta),
            "beta_sd": o.beta_sd,
        }
    claim_folder(
        "hierarchical",
        out,
        cfg,
        study,
        seed=o.seed,
        fresh=o.fresh,
        products=HIERARCHICAL_FILES,
        resumable=("stage1/*.npz", "replicate_*/stage1/*.npz"),
        settings=settings,
    )
    progress.stage(f"finished sites are kept in {ckpt}: rerun the same command to resume from them")
    say(study.describe())
    counts = pd.Series(forest_types).value_counts().sort_index()
    say("sites per forest type: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    n_proc = o.n_processes or cfg.sampler.n_processes
    where = f"{n_proc} process(es)" if scheduler is None else "one Dask task per site"
    say(
        f"stage 1: emcee {o.n_walkers} walkers × {n_steps} steps per site from its MAP, {where}, "
        f"warm starts {'on' if problem.warm_start else 'off'}; finished sites are kept in {ckpt} (rerun to "
        f"resume); stage 2: "
        + (
            f"NUTS on a {o.mixture_components}-component mixture likelihood per site, {o.chains} chains × {draws} draws"
            if mixture
            else f"reweighted stage-1 draws, {o.chains} chains × {draws} sweeps"
            + ("" if o.refine == "never" else f" ({steps2} stage-1 steps in a second pass, if needed)")
        )
    )
    common = dict(n_walkers=o.n_walkers, n_processes=n_proc, progress=not o.no_progress, scheduler=scheduler)
    replicates = []
    for k, seed in enumerate(replicate_seeds(o.seed, o.replicates)):
        # replicate 0 is the plain run (its seed, its folders); the others run both stages again with other seeds
        where_k = ckpt if k == 0 else out / f"replicate_{k}" / "stage1"
        if o.replicates > 1:
            say(f"replicate {k + 1} of {o.replicates} (seed {seed}; stage 1 kept in {where_k})")
        dt_k, s1_k = two_stage_hierarchical(
            problem,
            forest_types,
            stage1=dict(n_steps=n_steps, thin=max(1, n_steps // 400), checkpoint_dir=where_k, **common),
            stage2={**stage2, "n_processes": n_proc if scheduler is None else 1},  # no fork beside a Dask client
            refine=o.refine,
            refine_stage1=dict(n_steps=steps2, thin=max(1, steps2 // 400), checkpoint_dir=where_k / "refined"),
            pass1_draws=o.pass1_draws,
            seed=seed,
            log=say,
            covariates=design,
            regression=regression,
            stage2_engine=o.stage2,
            mixture_components=o.mixture_components,
        )
        replicates.append(dt_k)
        if k == 0:
            s1 = s1_k
    if len(replicates) > 1:
        within = [posterior_convergence(r, ["theta_population", "mu", "sigma"])["max_r_hat"] for r in replicates]
        dt = combine_replicates(replicates)
        say(
            "replicates: max R-hat within each "
            + ", ".join(f"{r:.3f}" for r in within)
            + f"; across them {posterior_convergence(dt, ['theta_population', 'mu', 'sigma'])['max_r_hat']:.3f} "
            "(stage-1 Monte Carlo error; the sites' table and figures use replicate 1's stage 1)"
        )
    else:
        dt = replicates[0]
    progress.stage(f"stage 1 is finished and kept in {ckpt}: rerun the same command to redo only stage 2")
    dt["posterior"].attrs["data"] = study.data_version
    dt.attrs["configuration"] = json.dumps(cfg.to_dict())  # validate scores under the run's own error model
    written = ["results.nc", "population_summary.csv", "sites.csv", "population.png", "xv_xk.png"]
    if o.predictive_draws:
        if scheduler is not None and problem.warm_start:
            say("note: warm starts: the sites' predictive is solved here, not on the cluster")
        # each calibration site with its own θ_s: the fit of the hierarchical model to the data it was given
        dt = add_site_predictive(dt, problem, max_draws=o.predictive_draws, scheduler=scheduler)
    rep = posterior_convergence(dt, ["theta_population", "mu", "sigma"] + (["beta"] if design is not None else []))
    # the verdict from the diagnostics the result holds (population R-hat and ESS, stage-1 N/τ, stage-2 weights),
    # stored with it so that validate carries it
    dt.attrs["smoke_run"] = int(bool(o.quick or cfg.study.name == "quick"))
    verdict = result_verdict(dt)
    dt.attrs["convergence_verdict"] = verdict.to_json()
    if design is not None:
        cols = ", ".join(design.columns)
        dropped = "; ".join(f"{c}: {why}" for c, why in design.scaler.dropped.items())
        say(f"regression population on {cols}" + (f" (left out: {dropped})" if dropped else ""))
    d = dt["stage2_diagnostics"]
    per_site = {
        "site_id": s1.site_ids,
        "forest_type": forest_types,
        "stage1_max_tau_steps": np.nanmax(s1.tau, axis=1),
        "stage1_tau_reliable": s1.tau_reliable,
        "stage1_independent_draws": s1.n_effective,
        "stage1_acceptance": s1.acceptance,
    }
    if mixture:  # the mixtures' resampling ESS and the directions in which a site's likelihood is taken as flat
        per_site["mixture_resample_ess"] = d["resample_ess"].to_numpy()
        per_site["mixture_flat_directions"] = d["flat_directions"].to_numpy()
    else:
        per_site["stage2_mean_weight_ess"] = d["mean_weight_ess"].mean("chain").to_numpy()
        per_site["stage2_weight_ess_q05"] = d["weight_ess_q05"].min("chain").to_numpy()
    if "branch_mismatch_fraction" in dt["stage1"]:
        # warm starts: share of re-solved stage-1 draws whose cold spin-up gives another log-probability
        per_site["stage1_branch_mismatch_fraction"] = dt["stage1"]["branch_mismatch_fraction"].to_numpy()
    sites = pd.DataFrame(per_site)
    summ = rep["summary"]
    pop = summ.loc[[i for i in summ.index if i.startswith("theta_population")]]
    few = sites["stage2_weight_ess_q05"] < 5 if not mixture else False
    bad = sites[~sites["stage1_tau_reliable"] | few]
    report = [verdict.line(), ""]
    if o.predictive_draws:
        fit = fit_metrics_table(dt)
        report.append(
            "site-level posterior predictive (median vs data): "
            + "; ".join(f"{v.upper()} r² {fit.loc[v, 'r2']:.2f}, RMSE {fit.loc[v, 'rmse']:.3g}" for v in fit.index)
        )
    report += [
        pop[["mean", "sd", "eti89_lb", "eti89_ub", "ess_bulk", "r_hat"]].to_string(float_format=lambda v: f"{v:.3g}"),
        f"population parameters: max R-hat {rep['max_r_hat']:.3f}, min bulk ESS {rep['min_ess_bulk']:.0f}, "
        f"min tail ESS {rep['min_ess_tail']:.0f}",
    ]
    if len(bad):
        report.append(
            f"note: {len(bad)} site(s) with a short stage 1 (N < 50 τ) or few effective stage-1 draws under "
            f"the population (see sites.csv); rerun with more --n-steps for them to be trusted"
        )
    written.append("report.txt")
    figures = [out / "population.png", out / "xv_xk.png"]
    with deferred_interrupt():
        (out / "report.txt").write_text("\n".join(report) + "\n")
        if o.predictive_draws:
            fit.to_csv(out / "fit_metrics.csv")
            pages = plot_profile_pages(dt, out / "profiles.png")
            written += ["fit_metrics.csv", pages_text(pages)]
            figures += list(pages)
        save_results(dt, out / "results.nc")
        rep["summary"].to_csv(out / "population_summary.csv")
        sites.to_csv(out / "sites.csv", index=False)
        plot_population(dt, problem.prior, out / "population.png")
        plot_xv_xk(dt, out / "xv_xk.png", prior=problem.prior)
        if design is not None:
            from ..parameter_plots import plot_beta

            plot_beta(dt, out / "beta.png")  # which covariates move which parameters
            written.append("beta.png")
            figures.append(out / "beta.png")
        finish(out)
    say("\n".join(report))
    wall = time.perf_counter() - t0
    say(f"wrote {out / written[0]}, " + ", ".join(written[1:]) + f", run.json (total {wall:.0f} s)")
    return HierarchicalResult(
        out=out,
        verdict=verdict.line(),
        results=out / "results.nc",
        report=out / "report.txt",
        population_summary=out / "population_summary.csv",
        sites=out / "sites.csv",
        figures=tuple(figures),
        fit_metrics=out / "fit_metrics.csv" if o.predictive_draws else None,
        max_r_hat=float(rep["max_r_hat"]),
        min_ess_bulk=float(rep["min_ess_bulk"]),
        min_ess_tail=float(rep["min_ess_tail"]),
        n_sites=len(problem.site_ids),
        wall_time_s=wall,
    )
