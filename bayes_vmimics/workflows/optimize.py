"""``optimize``: the point-estimate baseline (the paper's workflow).

Minimise the cost (the paper's J under its error model, else the deviance) by differential evolution and report
it with the paper's fit metrics (RMSE, BIC, a, b, r²) and the verdict of the optimiser's own convergence test.
Writes ``point_estimate.json`` (which ``validate`` and ``calibrate --start-from`` read) and ``report.txt``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..interrupt import deferred_interrupt
from ..parameters import PARAMETER_NAMES
from ..rundir import check_out_path
from .common import Progress, StudyOptions, claim_folder, finish, output_folder, study_config


@dataclass(frozen=True)
class OptimizeOptions(StudyOptions):
    """Options of :func:`run_optimize` (``bayes-vmimics optimize``): the study's (:class:`StudyOptions`); the
    optimiser's settings are the configuration's ``[optimize]`` section, ``seed`` its random seed."""


@dataclass(frozen=True)
class OptimizeResult:
    """What :func:`run_optimize` wrote, and its key numbers.

    Attributes:
        out: the output folder (path).
        verdict: the verdict of the optimiser's convergence test, the report's first line (–).
        point_estimate: point_estimate.json (path).
        report: report.txt (path).
        cost_name: "J" or "deviance".
        cost: the cost at the optimum (–).
        theta: the optimum, parameter name → value (parameter units).
        wall_time_s: wall time of the run (s).
    """

    out: Path
    verdict: str
    point_estimate: Path
    report: Path
    cost_name: str
    cost: float
    theta: dict[str, float]
    wall_time_s: float


def run_optimize(options: OptimizeOptions, *, progress: Progress | None = None) -> OptimizeResult:
    """Point-estimate baseline: minimise the cost, report it and RMSE, BIC, a, b, r², with the verdict of the
    optimiser's own convergence test.

    Args:
        options: what to fit (:class:`OptimizeOptions`).
        progress: where the run reports (default: printed).

    Raises:
        ValueError: an input that cannot run (the message names it); :class:`~bayes_vmimics.rundir.RunFolderError`:
            ``out`` holds another run.
    """
    from ..convergence import convergence_verdict
    from ..optimize import fit_point_estimate
    from ..study import build_study

    o, progress = options, progress or Progress()
    t0 = time.perf_counter()
    cfg, _ = study_config(o, "optimize")
    if o.out:
        check_out_path(Path(o.out))
    study = build_study(cfg, o.data_dir)
    problem, truth = study.problem, study.truth
    out = output_folder("optimize", o.out, cfg, default_out=o.default_out)
    claim_folder(
        "optimize", out, cfg, study, seed=o.seed, fresh=o.fresh, products=("point_estimate.json", "report.txt")
    )
    progress.stage("no result was written: rerun the same command to start again")
    progress.say(study.describe())
    c = cfg.optimize
    pe = fit_point_estimate(problem, seed=o.seed, maxiter=c.maxiter, popsize=c.popsize, polish=c.polish)
    res = pe.to_dict()
    # validate reads the study (error model, data selection) from here
    res["error_model"] = problem.error_model.name
    res["configuration"] = cfg.to_dict()
    if truth is not None:
        res["true_parameters"] = dict(zip(PARAMETER_NAMES, map(float, truth), strict=True))
    verdict = convergence_verdict(optimiser_message=pe.message, smoke_run=bool(o.quick or cfg.study.name == "quick"))
    res["convergence_verdict"] = json.loads(verdict.to_json())
    lines = [
        verdict.line(),
        "",
        f"{pe.cost_name} = {pe.cost:.4g}  ({pe.n_evaluations} evaluations, {pe.n_failed} non-converged steady "
        f"states; {pe.message})",
    ]
    for i, n in enumerate(PARAMETER_NAMES):
        t = f"   true {truth[i]:.4g}" if truth is not None else ""
        lines.append(f"  {n:8s} {pe.theta[i]:10.4g}{t}")
    for name, m in (("SOC", pe.soc_metrics), ("F14C", pe.c14_metrics)):
        if m is not None:
            lines.append(f"{name}: RMSE {m.rmse:.4g}  BIC {m.bic:.4g}  a {m.a:.4g}  b {m.b:.4g}  r² {m.r2:.3f}")
    report = "\n".join(lines)
    with deferred_interrupt():
        (out / "point_estimate.json").write_text(json.dumps(res, indent=2) + "\n")
        (out / "report.txt").write_text(report + "\n")
        finish(out)
    progress.say(report)
    wall = time.perf_counter() - t0
    progress.say(f"wrote {out / 'point_estimate.json'}, report.txt (wall time {wall:.1f} s)")
    return OptimizeResult(
        out=out,
        verdict=verdict.line(),
        point_estimate=out / "point_estimate.json",
        report=out / "report.txt",
        cost_name=pe.cost_name,
        cost=float(pe.cost),
        theta=dict(zip(PARAMETER_NAMES, map(float, pe.theta), strict=True)),
        wall_time_s=wall,
    )
