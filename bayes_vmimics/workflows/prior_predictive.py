"""``prior-predictive``: the prior predictive check.

Draw parameters from the prior, solve every site, and report the share of non-converged steady states and how
well the prior-predictive SOC and F14C cover the observations. Writes ``prior_predictive.npz``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..interrupt import deferred_interrupt
from ..parameters import PARAMETER_NAMES
from ..rundir import check_out_path
from .common import (
    MAX_PREDICTIVE_DRAWS,
    Progress,
    StudyOptions,
    check_count,
    claim_folder,
    finish,
    output_folder,
    study_config,
)


@dataclass(frozen=True)
class PriorPredictiveOptions(StudyOptions):
    """Options of :func:`run_prior_predictive` (``bayes-vmimics prior-predictive``), besides the study's
    (:class:`StudyOptions`).

    Attributes:
        n_draws: prior draws, 1 to 100 000; None: 500, 50 with ``quick`` (count).
    """

    n_draws: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("n_draws", self.n_draws, 1, MAX_PREDICTIVE_DRAWS)


@dataclass(frozen=True)
class PriorPredictiveResult:
    """What :func:`run_prior_predictive` wrote, and its key numbers.

    Attributes:
        out: the output folder (path).
        draws: prior_predictive.npz: θ, predicted and observed SOC and F14C (path).
        n_draws: prior draws (count).
        n_failed: draws with a non-converged steady state (count).
        coverage: share of observations inside the prior-predictive 90 % range, per variable ("SOC", "F14C") (–).
        wall_time_s: wall time of the run (s).
    """

    out: Path
    draws: Path
    n_draws: int
    n_failed: int
    coverage: dict[str, float]
    wall_time_s: float


def run_prior_predictive(options: PriorPredictiveOptions, *, progress: Progress | None = None) -> PriorPredictiveResult:
    """Draw parameters from the prior, solve every site, report convergence and the SOC/F14C spread.

    Args:
        options: what to draw (:class:`PriorPredictiveOptions`).
        progress: where the run reports (default: printed).

    Raises:
        ValueError: an input that cannot run (the message names it); :class:`~bayes_vmimics.rundir.RunFolderError`:
            ``out`` holds another run.
    """
    from ..study import build_study

    o, progress = options, progress or Progress()
    say = progress.say
    t0 = time.perf_counter()
    cfg, _ = study_config(o, "prior-predictive")
    if o.out:
        check_out_path(Path(o.out))
    study = build_study(cfg, o.data_dir)
    problem = study.problem
    n = o.n_draws if o.n_draws else (50 if o.quick else 500)
    out = output_folder("prior-predictive", o.out, cfg, default_out=o.default_out)
    claim_folder(
        "prior-predictive",
        out,
        cfg,
        study,
        seed=o.seed,
        fresh=o.fresh,
        products=("prior_predictive.npz",),
        settings={"n_draws": n},
    )
    progress.stage("no result was written: rerun the same command to start again")
    say(study.describe())
    rng = np.random.default_rng(o.seed)
    draws = problem.prior.sample(rng, n)
    obs = problem.observations()
    soc = np.full((n, obs["soc"].size), np.nan)
    c14 = np.full((n, obs["f14c"].size), np.nan)
    failed = 0
    for i, th in enumerate(draws):
        pred = problem.predict(th, grid_outputs=False)
        if pred is None:
            failed += 1
            continue
        soc[i] = np.concatenate([q.soc for q in pred])
        c14[i] = np.concatenate([q.f14c[p.c14_index] for p, q in zip(problem.sites, pred, strict=True)])
    with deferred_interrupt():
        np.savez(
            out / "prior_predictive.npz",
            theta=draws,
            soc=soc,
            f14c=c14,
            soc_obs=obs["soc"],
            f14c_obs=obs["f14c"],
            names=np.array(PARAMETER_NAMES),
        )
        finish(out)
    say(f"{n} prior draws, {failed} with a non-converged steady state")
    coverage = {}
    for name, pred, ob in (("SOC", soc, obs["soc"]), ("F14C", c14, obs["f14c"])):
        if ob.size:
            q = np.nanquantile(pred, [0.05, 0.95], axis=0)
            cover = np.mean((ob >= q[0]) & (ob <= q[1]))
            coverage[name] = float(cover)
            say(
                f"{name}: prior-predictive 90 % range covers {cover:.0%} of {ob.size} observations; "
                f"median model/obs ratio {np.nanmedian(pred / ob):.3g}"
            )
    wall = time.perf_counter() - t0
    say(f"wrote {out / 'prior_predictive.npz'} (wall time {wall:.1f} s)")
    return PriorPredictiveResult(
        out=out, draws=out / "prior_predictive.npz", n_draws=n, n_failed=failed, coverage=coverage, wall_time_s=wall
    )
