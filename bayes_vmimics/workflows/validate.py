"""``validate``: predictive validation of any result on held-out sites of its forest type(s).

The result is an ``optimize`` point estimate, a pooled ``calibrate`` posterior or a ``hierarchical`` population,
scored under its own error model (the configuration stored with it, or ``config``). Writes ``held_out.nc``,
``held_out_scores.csv``, ``held_out_by_depth.csv`` and ``held_out_profiles.png`` (pages for many sites).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..interrupt import deferred_interrupt
from ..parameters import PARAMETER_NAMES
from ..rundir import check_out_path
from .common import (
    MAX_PREDICTIVE_DRAWS,
    MAX_PROCESSES,
    Progress,
    check_choice,
    check_count,
    claim_folder,
    finish,
    pages_text,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..config import StudyConfig

#: Files validate writes into its folder (``fresh`` deletes these, and only these).
VALIDATE_FILES = (
    "held_out.nc",
    "held_out_scores.csv",
    "held_out_by_depth.csv",
    "held_out_profiles.png",
    "held_out_profiles_*.png",
)


@dataclass(frozen=True)
class ValidateOptions:
    """Options of :func:`run_validate` (``bayes-vmimics validate``).

    Attributes:
        results: the result: results.nc (calibrate, hierarchical), point_estimate.json (optimize) or the folder
            holding it (path).
        seed: seed of the held-out sites' population draws and of the observation errors of the intervals, ≥ 0 (–).
        out: output folder; None: a folder "validation" beside the results file (path).
        quick: study_quick instead of study_default where the result stores no configuration (bool).
        config: study configuration of the held-out sites; None: the one stored with the result (path or name).
        fit_discrepancy_prior: fit the held-out sites' κ prior on the result's calibration sites; None: on for a
            site-scale discrepancy error model (bool).
        data_dir: raw-data folder; None: $BAYES_VMIMICS_DATA (path).
        max_sites: at most this many held-out sites per forest type, 0 = all (count).
        split: half of data/site_split.csv to predict, "validation" or "calibration".
        predictive_draws: posterior draws of the prediction, 1 to 100 000 (count).
        fresh: overwrite a validation in ``out`` made with other inputs (bool).
        n_processes: workers of a local Dask cluster; None: the machine's cores (count).
    """

    results: str | Path
    seed: int = 2021
    out: str | Path | None = None
    quick: bool = False
    config: str | Path | None = None
    fit_discrepancy_prior: bool | None = None
    data_dir: str | Path | None = None
    max_sites: int | None = None
    split: str = "validation"
    predictive_draws: int = 200
    fresh: bool = False
    n_processes: int | None = None

    def __post_init__(self) -> None:
        check_count("seed", self.seed, 0)
        check_count("max_sites", self.max_sites, 0)
        check_choice("split", self.split, ("validation", "calibration"))
        check_count("predictive_draws", self.predictive_draws, 1, MAX_PREDICTIVE_DRAWS)
        check_count("n_processes", self.n_processes, 1, MAX_PROCESSES)

    def n_workers(self) -> int:
        """Workers of a local Dask cluster: ``n_processes``, else the machine's cores (count)."""
        return self.n_processes or os.cpu_count() or 1


@dataclass(frozen=True)
class ValidateResult:
    """What :func:`run_validate` wrote, and its key numbers.

    Attributes:
        out: the output folder (path).
        verdict: the convergence verdict of the scored result (–).
        kind: "point estimate", "pooled posterior" or "hierarchical population".
        held_out: held_out.nc, the held-out sites' predictive (path).
        scores: held_out_scores.csv (path).
        by_depth: held_out_by_depth.csv (path).
        figures: the pages of held-out profiles (paths).
        table: the scores per variable: rmse, r2, lppd, coverage_50, coverage_90, … (pandas DataFrame).
        wall_time_s: wall time of the run (s).
    """

    out: Path
    verdict: str
    kind: str
    held_out: Path
    scores: Path
    by_depth: Path
    figures: tuple[Path, ...]
    table: pd.DataFrame
    wall_time_s: float


#: The kinds of result validate scores.
RESULT_KINDS = ("point estimate", "pooled posterior", "hierarchical population")


def load_result(path: Path) -> dict:
    """What ``validate`` scores: an ``optimize`` point estimate (``point_estimate.json`` or its folder), a pooled
    ``calibrate`` posterior or a ``hierarchical`` population (``results.nc`` or its folder), with the
    configuration stored in it (or in ``run.json`` beside it)."""
    from ..convergence import ConvergenceVerdict, convergence_verdict, result_verdict
    from ..results import load_datatree

    if path.is_dir():
        for name in ("results.nc", "point_estimate.json"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise FileNotFoundError(
                f"{path} holds neither results.nc (calibrate, hierarchical) nor point_estimate.json (optimize)"
            )
    res = {
        "path": path,
        "dt": None,
        "theta": None,
        "config": None,
        "config_source": None,
        "sites": None,
        "verdict": None,
    }
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{path} is not a readable point estimate ({type(err).__name__}: {err})") from None
        params = data.get("parameters") if isinstance(data, dict) else None
        if not isinstance(params, dict) or sorted(params) != sorted(PARAMETER_NAMES):
            raise ValueError(
                f"{path} is not an optimize point estimate: it needs 'parameters' with {list(PARAMETER_NAMES)}"
            )
        res |= {"kind": RESULT_KINDS[0], "theta": np.array([float(params[n]) for n in PARAMETER_NAMES])}
        if isinstance(data.get("convergence_verdict"), dict):
            res["verdict"] = ConvergenceVerdict.from_json(json.dumps(data["convergence_verdict"]))
        else:  # a point estimate written before the verdict was stored: its optimiser's message
            res["verdict"] = convergence_verdict(optimiser_message=str(data.get("message", "no message stored")))
        if data.get("configuration"):
            res |= {"config": data["configuration"], "config_source": f"the result's own ({path.name})"}
    else:
        dt = load_datatree(path)
        post = dt["posterior"]
        if "mu" in post.data_vars:
            kind = RESULT_KINDS[2]
            types = [str(t) for t in post["mu"].coords["forest_type"].values]
            if "synthetic" in types:
                raise ValueError(f"{path} is a synthetic-twin result: it has no held-out sites")
            res["types"] = types
        elif all(n in post.data_vars for n in PARAMETER_NAMES):
            kind = RESULT_KINDS[1]
            res["theta"] = np.stack([post[n].transpose("chain", "draw").values for n in PARAMETER_NAMES], axis=-1)
        else:
            raise ValueError(
                f"{path} is neither a hierarchical result (population 'mu') nor a pooled calibration (posterior "
                f"{', '.join(PARAMETER_NAMES)}): validate scores the results of optimize, calibrate and hierarchical"
            )
        res |= {"kind": kind, "dt": dt, "verdict": result_verdict(dt)}
        raw = dt.attrs.get("configuration") or dt["posterior"].attrs.get("configuration")
        if raw and json.loads(raw):
            res |= {"config": json.loads(raw), "config_source": f"the result's own ({path.name} attribute)"}
        if dt.attrs.get("sites"):
            res["sites"] = json.loads(dt.attrs["sites"])
        elif "theta_site" in post.data_vars:
            res["sites"] = [str(v) for v in post["site"].values]
    run = path.parent / "run.json"
    if run.is_file():
        try:
            fp = json.loads(run.read_text())
        except ValueError:
            fp = {}
        if res["config"] is None and fp.get("configuration"):
            res |= {"config": fp["configuration"], "config_source": f"the result's own ({run})"}
        if res["sites"] is None and fp.get("sites"):
            res["sites"] = list(fp["sites"])
    return res


def _validation_config(o, res: dict) -> tuple[StudyConfig, str]:
    """The configuration of the result: ``--config`` if given, else the one stored with the result, else the
    default (said so)."""
    from ..config import config_from_dict, load_config

    if o.config:
        return load_config(o.config), f"--config {o.config} (given; overrides any stored with the result)"
    if res["config"] is not None:
        try:
            return config_from_dict(res["config"]), res["config_source"]
        except ValueError as err:
            raise ValueError(f"{res['config_source']}: {err}; give the run's configuration with --config") from None
    name = "study_quick" if o.quick else "study_default"
    return load_config(name), f"{name} (the result stores no configuration; give --config for the run's own)"


def result_types(res: dict, cfg: StudyConfig) -> list[str]:
    """Forest types whose held-out sites the result predicts."""
    if res["kind"] == RESULT_KINDS[2]:
        return res["types"]
    if cfg.study.mode == "synthetic":
        raise ValueError(f"{res['path']} is a synthetic-twin result: it has no held-out sites")
    if cfg.data.site_ids:
        raise ValueError(
            f"{res['path']} was calibrated on a list of sites (data.site_ids): it has no forest type whose held-out "
            "sites it predicts; give --config with the forest type to predict"
        )
    stored = ((res.get("config") or {}).get("data") or {}).get("forest_type")
    if stored and stored != cfg.data.forest_type:
        raise ValueError(
            f"{res['path']} was calibrated on forest type {stored}, but the configuration given predicts "
            f"{cfg.data.forest_type}: set [data] forest_type = {stored!r} in it (or leave out --config)"
        )
    return [cfg.data.forest_type]


def _fit_kappa_prior(res: dict, cfg: StudyConfig, types, data_dir) -> tuple[dict, str]:
    """Fitted κ prior (a, median κ) per variable on the result's calibration sites at its posterior median
    (each site at its own θ for a hierarchical result), and a sentence saying so."""
    from ..scoring import fit_discrepancy_prior_sites
    from ..study import build_hierarchical_study

    study = build_hierarchical_study(cfg, types, data_dir)
    problem = study.problem
    if res["sites"] is not None and sorted(res["sites"]) != sorted(problem.site_ids):
        raise ValueError(
            f"the calibration sites of the configuration ({len(problem.site_ids)}) are not the result's "
            f"({len(res['sites'])}): give the run's configuration with --config, or --no-fit-discrepancy-prior"
        )
    if res["kind"] == RESULT_KINDS[2]:
        post = res["dt"]["posterior"]
        if "theta_site" not in post.data_vars:
            raise ValueError(f"{res['path']} has no per-site θ (theta_site): use --no-fit-discrepancy-prior")
        theta = post["theta_site"].median(("chain", "draw")).sel(site=problem.site_ids)
        theta = theta.transpose("site", "parameter").values
        where = "each at its own posterior median θ_s"
    elif res["kind"] == RESULT_KINDS[1]:
        theta = np.median(res["theta"].reshape(-1, len(PARAMETER_NAMES)), axis=0)
        where = "at the posterior median"
    else:
        theta = res["theta"]
        where = "at the point estimate"
    fitted = fit_discrepancy_prior_sites(problem, theta)
    text = "; ".join(f"{v.upper()} a = {a:.3g}, median κ = {m:.3g}" for v, (a, m) in fitted.items())
    return fitted, f"κ prior of the held-out sites fitted on {len(problem.sites)} calibration sites {where}: {text}"


def run_validate(options: ValidateOptions, *, scheduler=None, progress: Progress | None = None) -> ValidateResult:
    """Predictive validation of a result on held-out sites of its forest type(s).

    Args:
        options: the result to score and how (:class:`ValidateOptions`).
        scheduler: an open Dask scheduler (:func:`~bayes_vmimics.scheduler.open_scheduler`) that solves the
            held-out sites (blocks of draws per site; cold solves only); None: solved here.
        progress: where the run reports (default: printed).

    Raises:
        ValueError: a result or configuration that cannot be scored (the message names it);
            :class:`~bayes_vmimics.rundir.RunFolderError`: ``out`` holds another validation, or is the result's
            own folder.
    """
    from ..errors import ErrorModel
    from ..plotting import plot_profile_pages
    from ..predictive import (
        add_held_out_predictive,
        add_shared_held_out_predictive,
        held_out_by_depth,
        held_out_scores,
    )
    from ..results import fit_metrics_table, save_datatree
    from ..rundir import RunFolderError
    from ..scoring import discrepancy_prior_keys
    from ..study import build_hierarchical_study, file_sha256

    o, progress = options, progress or Progress()
    say = progress.say
    t0 = time.perf_counter()
    if o.out:
        check_out_path(Path(o.out))
    res = load_result(Path(o.results))
    path, kind, dt = res["path"], res["kind"], res["dt"]
    post = dt["posterior"] if dt is not None else None
    cfg, cfg_source = _validation_config(o, res)
    types = result_types(res, cfg)
    error_model = ErrorModel.from_config(cfg.likelihood)
    site_scale = error_model.discrepancy == "site_scale"
    fit_kappa = site_scale if o.fit_discrepancy_prior is None else bool(o.fit_discrepancy_prior)
    if fit_kappa and not site_scale:
        raise ValueError(
            f"--fit-discrepancy-prior: the result's error model {error_model.name!r} has no site-scale discrepancy"
        )
    held_data = {"split": o.split, "site_ids": [], "max_sites": o.max_sites or 0}
    cfg = cfg.replace(data=held_data, study={"mode": "data"})
    kappa, kappa_text = None, None
    if fit_kappa:
        calib_cfg, _ = _validation_config(o, res)
        kappa, kappa_text = _fit_kappa_prior(res, calib_cfg, types, o.data_dir)
        cfg = cfg.replace(likelihood=discrepancy_prior_keys(kappa))
    study = build_hierarchical_study(cfg, types, o.data_dir)
    problem, forest_types = study.problem, study.forest_types
    out = Path(o.out) if o.out else path.parent / "validation"
    if out.resolve() == path.parent.resolve():
        raise RunFolderError(f"--out {out} is the result's own folder: give another folder")
    settings = {
        "split": o.split,
        "predictive_draws": o.predictive_draws,
        "configuration_source": cfg_source,
        "fit_discrepancy_prior": bool(fit_kappa),
    }
    claim_folder(
        "validate",
        out,
        cfg,
        study,
        seed=o.seed,
        fresh=o.fresh,
        products=VALIDATE_FILES,
        settings=settings,
        files={"result": file_sha256(path)},
    )
    progress.stage("no result was written: rerun the same command to start again")
    verdict = res["verdict"]
    say(f"{path}: {kind}, forest type(s) {', '.join(types)}")
    say(f"the scored result's {verdict.line()}")
    say(f"configuration: {cfg_source}; error model {problem.error_model.name!r}")
    if kappa_text:
        say(kappa_text)
    say("held-out sites: " + study.describe() + f"; {o.split} half of data/site_split.csv")
    if scheduler is not None and problem.warm_start:
        say(
            "note: warm starts: the held-out sites are solved here, not on the cluster (each solve would depend "
            "on the ones before it)"
        )
    covariates, drawn_from = None, "the population"
    if kind == RESULT_KINDS[2] and "beta" in post.data_vars:
        from ..covariates import CovariateScaler, site_covariate_table

        if "covariates" not in dt.children or "scaler" not in dt["covariates"].attrs:
            raise ValueError(f"{path} is a regression population without its covariate scaler (group 'covariates')")
        scaler = CovariateScaler.from_json(dt["covariates"].attrs["scaler"])
        # the held-out sites standardised with the calibration sites' statistics; a missing covariate names the site
        covariates = scaler.transform(site_covariate_table(study.folder), problem.site_ids, forest_types)
        drawn_from = f"the regression population at the site's covariates: {', '.join(scaler.columns)}"
    if kind == RESULT_KINDS[2]:
        held = add_held_out_predictive(
            dt,
            problem,
            forest_types,
            max_draws=o.predictive_draws,
            seed=o.seed,
            covariates=covariates,
            scheduler=scheduler,
        )
        what = f"each a new site of its forest type (parameters drawn from {drawn_from})"
    else:
        held = add_shared_held_out_predictive(
            problem,
            res["theta"],
            forest_types,
            kind=kind,
            max_draws=o.predictive_draws,
            seed=o.seed,
            scheduler=scheduler,
        )
        what = f"all with the {kind}'s parameters" + (" (its draws)" if kind == RESULT_KINDS[1] else "")
    held.attrs |= {"configuration": json.dumps(cfg.to_dict()), "configuration_source": cfg_source, "result": kind}
    scores = held_out_scores(held, problem, seed=o.seed)
    by_depth = held_out_by_depth(held, problem, seed=o.seed)
    scores.insert(0, "result", kind)
    # the verdict of the result being scored travels with its scores
    scores.insert(1, "result_verdict", verdict.label)
    scores.insert(2, "result_smoke_run", verdict.smoke_run)
    scores.insert(3, "result_verdict_failed", "; ".join(verdict.failed))
    held.attrs["result_convergence_verdict"] = verdict.to_json()
    scores["error_model"] = problem.error_model.name
    if kappa is not None:
        scores["kappa_prior_shape"] = [kappa.get(v, (np.nan, np.nan))[0] for v in scores.index]
        scores["kappa_prior_median"] = [kappa.get(v, (np.nan, np.nan))[1] for v in scores.index]
        held.attrs["kappa_prior"] = json.dumps({v: list(map(float, x)) for v, x in kappa.items()})
    with deferred_interrupt():
        save_datatree(held, out / "held_out.nc")
        scores.to_csv(out / "held_out_scores.csv")
        by_depth.to_csv(out / "held_out_by_depth.csv", index=False)
        pages = plot_profile_pages(held, out / "held_out_profiles.png")
        finish(out)
    cols = ["n_sites", "n_obs", "rmse", "r2", "lppd", "coverage_50", "coverage_90"]
    if not verdict.converged or verdict.smoke_run:
        say(
            f"note: these scores are of a result that is {verdict.label}"
            + (" (a smoke run)" if verdict.smoke_run else "")
            + ": they test the pipeline, they are not a result"
        )
    say(f"held-out sites, {what}; observation error of the error model {problem.error_model.name!r}:")
    say(scores[cols].to_string(float_format=lambda v: f"{v:.3g}"))
    say("by depth (median of predictive median / observed; share of observations inside, above and below the 50 %")
    say("interval; calibrated: 50 % inside, 25 % on each side):")
    depth_cols = ["variable", "top_cm", "bottom_cm", "n_obs", "median_ratio", "coverage_50", "above_50", "below_50"]
    say(by_depth[depth_cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if dt is not None and "posterior_predictive" in dt.children and "observed_data" in dt.children:
        fit = fit_metrics_table(dt)
        say("calibration sites (from the result):")
        say(fit[["rmse", "r2"]].to_string(float_format=lambda v: f"{v:.3g}"))
    if held.attrs["n_failed_predictive"]:
        say(f"note: {held.attrs['n_failed_predictive']} draws with a failed steady state at some site were left out")
    wall = time.perf_counter() - t0
    say(
        f"wrote {out / 'held_out.nc'}, held_out_scores.csv, held_out_by_depth.csv, {pages_text(pages)}, run.json "
        f"(wall time {wall:.0f} s)"
    )
    return ValidateResult(
        out=out,
        verdict=verdict.line(),
        kind=kind,
        held_out=out / "held_out.nc",
        scores=out / "held_out_scores.csv",
        by_depth=out / "held_out_by_depth.csv",
        figures=tuple(pages),
        table=scores,
        wall_time_s=wall,
    )
