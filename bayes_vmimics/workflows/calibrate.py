"""``calibrate``: the pooled posterior of the seven parameters sampled with emcee (the main job).

Independent ensembles of walkers, R-hat across them; the ensembles run one after another over
``n_processes`` worker processes, or as tasks on a Dask cluster (``scheduler``). Writes ``run.json``,
``chains.h5`` (resumable), ``results.nc``, ``summary.csv``, ``report.txt`` (its first line the convergence verdict)
and the figures ``profiles.png``, ``posterior_marginals.png``, ``xv_xk.png`` and ``pair.png``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..interrupt import deferred_interrupt
from ..parameters import PARAMETER_NAMES
from ..rundir import check_out_path
from .common import (
    MAX_CHAINS,
    MAX_PROCESSES,
    MAX_STEPS,
    MAX_WALKERS,
    Progress,
    StudyOptions,
    check_count,
    claim_folder,
    finish,
    output_folder,
    study_config,
)

#: Files calibrate writes into its folder (``fresh`` deletes these, and only these).
CALIBRATE_FILES = (
    "chains.h5",
    "results.nc",
    "summary.csv",
    "report.txt",
    "profiles.png",
    "posterior_marginals.png",
    "xv_xk.png",
    "pair.png",
)
FIGURES = ("profiles.png", "posterior_marginals.png", "xv_xk.png", "pair.png")

#: Optima whose cost (J or deviance) exceeds the best by more than this start no ensemble (deviance units).
MODE_MASS_GAP = 100.0


@dataclass(frozen=True)
class CalibrateOptions(StudyOptions):
    """Options of :func:`run_calibrate` (``bayes-vmimics calibrate``), besides the study's (:class:`StudyOptions`);
    None means the configuration's ``[sampler]`` value.

    Attributes:
        n_steps: steps per ensemble, ≤ 1 000 000 (count).
        discard: burn-in steps dropped from every ensemble, below ``n_steps`` (count).
        n_walkers: walkers per ensemble, ≤ 10 000 (count).
        n_ensembles: independent ensembles, 2 to 100: R-hat compares them (count).
        n_processes: worker processes of each ensemble's log-probability, ≤ 1024 (count).
        no_progress: no progress bar (bool).
        start_from: an ``optimize`` result (point_estimate.json or its folder) whose optimum joins the MAP optima
            the ensembles start from (path).
    """

    n_steps: int | None = None
    discard: int | None = None
    n_walkers: int | None = None
    n_ensembles: int | None = None
    n_processes: int | None = None
    no_progress: bool = False
    start_from: str | Path | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("n_steps", self.n_steps, 1, MAX_STEPS)
        check_count("discard", self.discard, 0)
        check_count("n_walkers", self.n_walkers, 1, MAX_WALKERS)
        why = " (R-hat compares independent ensembles, so it needs at least 2; 4 recommended)"
        check_count("n_ensembles", self.n_ensembles, 2, MAX_CHAINS, why)
        check_count("n_processes", self.n_processes, 1, MAX_PROCESSES)

    def n_workers(self) -> int:
        """Workers of a local Dask cluster: the configuration's ``sampler.n_processes`` (count)."""
        return study_config(self, "calibrate")[0].sampler.n_processes


@dataclass(frozen=True)
class CalibrateResult:
    """What :func:`run_calibrate` wrote, and its key numbers.

    Attributes:
        out: the output folder (path).
        verdict: the convergence verdict, the report's first line (–).
        results: results.nc, the ArviZ DataTree (path).
        report: report.txt (path).
        summary: summary.csv (path).
        figures: the figures (paths).
        chains: chains.h5, the emcee chains (resumable) (path).
        max_r_hat: largest R-hat across the ensembles over the parameters (–; NaN if not computable).
        min_n_over_tau: smallest kept steps / autocorrelation time over ensembles and parameters (–).
        acceptance_mean: mean acceptance fraction of the walkers (–).
        posterior_best_cost: lowest cost (J or deviance) among the best posterior draws (–).
        wall_time_s: wall time of the run (s).
    """

    out: Path
    verdict: str
    results: Path
    report: Path
    summary: Path
    figures: tuple[Path, ...]
    chains: Path
    max_r_hat: float
    min_n_over_tau: float
    acceptance_mean: float
    posterior_best_cost: float
    wall_time_s: float


def pooled_map_start(problem, seed: int, say=print):
    """θ of the pooled MAP (walkers start around it), or None (start from the prior) where the problem has
    no exact gradient (temperature-climatology sites, paper-mode ¹⁴C)."""
    from ..inference.initial import pooled_map_estimate, theta_from_logit

    t0 = time.perf_counter()
    try:
        z = pooled_map_estimate(problem, seed=seed)
    except NotImplementedError as err:
        say(f"walkers start from the prior box (no MAP start: {err})")
        return None
    theta = theta_from_logit(problem.prior, z)
    vals = ", ".join(f"{n}={v:.3g}" for n, v in zip(PARAMETER_NAMES, theta, strict=True))
    say(f"walkers start around the pooled MAP ({time.perf_counter() - t0:.1f} s): {vals}")
    return theta


def multimap_starts(problem, seed: int, n_starts: int, n_ensembles: int, extra=None, say=print):
    """Distinct pooled posterior optima from ``n_starts`` local optimisations (plus ``extra`` θ, e.g. the
    ``optimize`` optimum), one per ensemble (cycled), and each optimum's cost; (None, []) where the problem has
    no exact gradient and no ``extra`` (walkers then start from the prior box)."""
    from ..inference.initial import distinct_optima, logit_from_theta, multistart_map_estimates, theta_from_logit
    from ..optimize import cost_name

    t0 = time.perf_counter()
    zs = []
    try:
        zs = [z for z, _ in multistart_map_estimates(problem, n_starts=n_starts, seed=seed)]
    except NotImplementedError as err:
        say(f"no multi-start MAP search: {err}")
    zs += [logit_from_theta(problem.prior, th) for th in (extra or [])]
    if not zs:
        say("walkers start from the prior box")
        return None, []
    thetas = [theta_from_logit(problem.prior, z) for z in zs]
    costs = np.array([problem.cost(th) for th in thetas])
    keep = distinct_optima(np.array(zs), -costs)
    # a mode whose cost is MODE_MASS_GAP above the best holds ~exp(−MODE_MASS_GAP/2) of its mass: an ensemble
    # started there would stay there and make R-hat fail for a mode the posterior does not have
    dropped = [i for i in keep if costs[i] > costs[keep[0]] + MODE_MASS_GAP]
    keep = [i for i in keep if i not in dropped]
    thetas, costs = [thetas[i] for i in keep], costs[keep]
    name = cost_name(problem)
    say(
        f"walkers start around the pooled MAP: {len(thetas)} distinct optim{'um' if len(thetas) == 1 else 'a'} "
        f"from {n_starts} local optimisations"
        + (f" and {len(extra)} given start(s)" if extra else "")
        + f" ({time.perf_counter() - t0:.1f} s); ensemble k starts around optimum k mod {len(thetas)}:"
    )
    if dropped:
        say(
            f"  ({len(dropped)} more optim{'um' if len(dropped) == 1 else 'a'} left out: {name} more than "
            f"{MODE_MASS_GAP:g} above the best, negligible posterior mass)"
        )
    for k, (th, c) in enumerate(zip(thetas, costs, strict=True)):
        vals = ", ".join(f"{n}={v:.3g}" for n, v in zip(PARAMETER_NAMES, th, strict=True))
        say(f"  optimum {k}: {name} = {c:.6g}; {vals}")
    return [thetas[k % len(thetas)] for k in range(n_ensembles)], [float(c) for c in costs]


def best_draw_cost(problem, runs, discard: int, n_top: int = 3) -> float:
    """Lowest cost (J or deviance) among the ``n_top`` posterior draws (after ``discard``) of highest log
    posterior, re-evaluated (the log posterior includes the prior, so its maximum need not be the cost's
    minimum)."""
    lp = np.concatenate([r.log_prob[discard:].ravel() for r in runs])
    pos = np.concatenate([r.chain[discard:].reshape(-1, r.chain.shape[-1]) for r in runs])
    ok = np.isfinite(lp)
    if not ok.any():
        return float("nan")
    lp, pos = lp[ok], pos[ok]
    top = np.argsort(-lp, kind="stable")[:n_top]
    return float(min(problem.cost(pos[i]) for i in top))


def point_estimate_theta(path) -> np.ndarray:
    """θ of an ``optimize`` result (point_estimate.json or its folder) (parameter units)."""
    path = Path(path)
    path = path / "point_estimate.json" if path.is_dir() else path
    try:
        params = json.loads(path.read_text())["parameters"]
        return np.array([float(params[n]) for n in PARAMETER_NAMES])
    except (OSError, ValueError, KeyError, TypeError) as err:
        why = f"{type(err).__name__}: {err}"
        raise ValueError(f"--start-from {path}: not a readable point_estimate.json ({why})") from None


def run_calibrate(options: CalibrateOptions, *, scheduler=None, progress: Progress | None = None) -> CalibrateResult:
    """Sample the posterior with emcee and write results, summary, report and figures.

    Args:
        options: what to calibrate and how (:class:`CalibrateOptions`).
        scheduler: an open Dask scheduler (:func:`~bayes_vmimics.scheduler.open_scheduler`) that runs one task per
            ensemble; None: the local process pool.
        progress: where the run reports (default: printed).

    Raises:
        ValueError: an input that cannot run (the message names it); :class:`~bayes_vmimics.rundir.RunFolderError`:
            ``out`` holds another run.
    """
    from ..diagnostics import plot_xv_xk, save_pair_plot
    from ..inference import ensemble_convergence, run_ensembles
    from ..inference.emcee_sampler import check_backend
    from ..optimize import cost_name
    from ..parameter_plots import plot_marginals
    from ..plotting import plot_profiles
    from ..results import build_datatree, format_report, save_datatree, summary_table
    from ..study import build_study

    o, progress = options, progress or Progress()
    say = progress.say
    t0 = time.perf_counter()
    cfg, burn_in_note = study_config(o, "calibrate")
    if o.out:
        check_out_path(Path(o.out))
    if cfg.sampler.n_ensembles < 2:
        raise ValueError(
            f"sampler.n_ensembles = {cfg.sampler.n_ensembles}: R-hat compares independent ensembles, so a "
            "calibration needs at least 2 (4 recommended)"
        )
    study = build_study(cfg, o.data_dir)
    problem = study.problem
    out = output_folder("calibrate", o.out, cfg, default_out=o.default_out)
    extra = [point_estimate_theta(o.start_from)] if o.start_from else []
    if extra and cfg.sampler.start == "prior":
        raise ValueError("--start-from needs sampler.start = 'map' or 'multimap', not 'prior'")
    start_settings = {"start_from": [float(v) for v in extra[0]]} if extra else None
    claim_folder(
        "calibrate",
        out,
        cfg,
        study,
        seed=o.seed,
        fresh=o.fresh,
        products=CALIBRATE_FILES,
        resumable=("chains.h5",),
        settings=start_settings,
    )
    progress.stage(
        f"the chains so far are kept in {out / 'chains.h5'}: rerun the same command to resume them "
        "(the result equals an uninterrupted run)"
    )
    if not o.fresh:
        check_backend(out / "chains.h5")  # a damaged chain file is named now, before the MAP search
    say(study.describe())
    s = cfg.sampler
    where = f"{s.n_processes} process(es)" if scheduler is None else "one Dask task per ensemble"
    say(
        f"emcee: {s.n_ensembles} ensembles × {s.n_walkers} walkers × {s.n_steps} steps (burn-in {s.discard}, "
        f"{s.n_steps - s.discard} kept per ensemble), move {s.move!r}, {where}, warm starts "
        f"{'on' if cfg.likelihood.warm_start else 'off'}; output {out}"
    )
    if burn_in_note:
        say(f"note: {burn_in_note}; a smoke run, never converged")
    smoke = bool(o.quick or cfg.study.name == "quick")
    if smoke:
        say("note: --quick settings: a smoke run that tests the pipeline; its results are not converged")
    around, opt_costs = None, []
    if s.start == "map" and not extra:
        around = pooled_map_start(problem, o.seed, say)
        if around is not None:
            opt_costs = [float(problem.cost(around))]
    elif s.start in ("map", "multimap"):
        # "map" with start_from: the pooled MAP (L-BFGS-B from 4 starts) and the given optimum
        n_starts = s.map_starts if s.start == "multimap" else 4
        around, opt_costs = multimap_starts(problem, o.seed, n_starts, s.n_ensembles, extra, say)
    runs = run_ensembles(
        problem,
        problem.prior,
        around=around,
        n_ensembles=s.n_ensembles,
        seed=o.seed,
        backend_path=out / "chains.h5",
        progress=s.progress,
        n_walkers=s.n_walkers,
        n_steps=s.n_steps,
        move=s.move,
        resume=not o.fresh,
        n_processes=s.n_processes,
        scheduler=scheduler,
    )
    if any(r.n_resumed_from for r in runs):
        per = ", ".join(f"ensemble {k}: {r.n_resumed_from}" for k, r in enumerate(runs))
        say(f"resumed from the steps stored in {out / 'chains.h5'} ({per}; now {s.n_steps} each)")
    conv = ensemble_convergence(runs, PARAMETER_NAMES, discard=s.discard)
    attrs = {"notes": json.dumps(study.notes)} if study.notes else {}
    best = best_draw_cost(problem, runs, s.discard)
    attrs |= {"cost_name": cost_name(problem), "start": s.start, "posterior_best_cost": best}
    attrs |= {"smoke_run": int(smoke), "verdict_notes": json.dumps([burn_in_note] if burn_in_note else [])}
    if opt_costs:
        attrs |= {"optimiser_best_cost": min(opt_costs), "optimiser_costs": json.dumps(opt_costs)}
    dt = build_datatree(
        problem,
        runs,
        config=cfg,
        discard=s.discard,
        thin=s.thin,
        max_draws=s.max_draws,
        seed=o.seed,
        data_version=study.data_version,
        truth=study.truth,
        convergence=conv,
        extra_attrs=attrs,
    )
    with deferred_interrupt():
        save_datatree(dt, out / "results.nc")
        summary_table(dt).to_csv(out / "summary.csv")
        report = format_report(dt)
        (out / "report.txt").write_text(report + "\n")
        plot_profiles(dt, out / "profiles.png")
        plot_marginals(dt, out / "posterior_marginals.png", prior=problem.prior)
        plot_xv_xk(dt, out / "xv_xk.png", prior=problem.prior)
        save_pair_plot(dt, out / "pair.png")
        finish(out, steps_at_start=[r.resumed_at for r in runs], n_evaluations_total=dt.attrs["n_evaluations_total"])
    say(report)
    wall = time.perf_counter() - t0
    say(
        f"wrote {out / 'results.nc'}, summary.csv, report.txt, profiles.png, posterior_marginals.png, xv_xk.png, "
        f"pair.png, chains.h5, run.json "
        f"(wall time {wall:.1f} s)"
    )
    rhat, n_over_tau = np.asarray(conv["rhat"]), np.asarray(conv["n_over_tau"])
    return CalibrateResult(
        out=out,
        verdict=report.splitlines()[0],
        results=out / "results.nc",
        report=out / "report.txt",
        summary=out / "summary.csv",
        figures=tuple(out / f for f in FIGURES),
        chains=out / "chains.h5",
        max_r_hat=float(np.nanmax(rhat)) if np.isfinite(rhat).any() else float("nan"),
        min_n_over_tau=float(np.nanmin(n_over_tau)) if np.isfinite(n_over_tau).any() else float("nan"),
        acceptance_mean=conv["acceptance_mean"],
        posterior_best_cost=best,
        wall_time_s=wall,
    )
