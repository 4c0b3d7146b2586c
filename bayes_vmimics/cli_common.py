"""What every command of the command line shares: option types, the common options, the output folder and its
``run.json`` (:mod:`.rundir`), and the study configuration assembled from the options.

Below :mod:`.cli` and the command modules that register subcommands (:mod:`.crossvalidate_cli`,
:mod:`.sensitivity_cli`), which all import it.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from .rundir import check_out_path, fingerprint, prepare_out, update_run

if TYPE_CHECKING:  # the study modules (pandas, the likelihood) load inside main(), where Ctrl-C is handled
    from .config import StudyConfig
    from .study import Study

DEFAULT_OUT = Path("results")


# ----------------------------------------------------------------------------- option types
def int_at_least(low: int, why: str = ""):
    """argparse ``type=``: an integer ≥ ``low`` (argparse names the option in its message)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be ≥ {low}{why}, got {value}")
        return value

    parse.__name__ = f"integer ≥ {low}"
    return parse


SEED = int_at_least(0)
COUNT = int_at_least(1)
COUNT0 = int_at_least(0)


def scheduler_option(text: str) -> str:
    """argparse ``type=`` of ``--scheduler``: ``processes``, ``dask`` or ``tcp://HOST:PORT``
    (:func:`~bayes_vmimics.scheduler.parse_scheduler`)."""
    from .scheduler import parse_scheduler

    try:
        return parse_scheduler(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def hierarchical_stage2(quick: bool, draws: int | None, chains: int) -> dict:
    """Stage-2 settings of ``hierarchical`` (``draws`` sweeps per chain, default 6 000 or 1 000 with
    ``--quick``; a tenth of them tuning). ``crossvalidate`` samples its first pass with the same settings, so
    that it fits the same second-pass prior and finds the hierarchical run's refined checkpoints (count)."""
    n = draws or (1000 if quick else 6000)
    return {"draws": n, "tune": n // 10, "chains": chains}


def mixture_stage2(quick: bool, draws: int | None, chains: int) -> dict:
    """NUTS settings of ``--stage2 mixture`` (``hierarchical`` and ``crossvalidate``): ``draws`` per chain, default
    1000 or 300 with ``--quick``, after as many tuning steps (count)."""
    n = draws or (300 if quick else 1000)
    return {"draws": n, "tune": n, "chains": chains}


def add_refine_arguments(p: argparse.ArgumentParser, *, what: str = "") -> None:
    """``--refine`` and ``--refine-steps``: the second stage-1 pass (``hierarchical`` and ``crossvalidate``)."""
    p.add_argument(
        "--refine",
        choices=["auto", "always", "never"],
        default="auto",
        help="second stage-1 pass under a normal prior fitted to the first pass's population, needed when the "
        f"population is narrow{what} (auto: when a site's stage-2 weights rest on < 5 draws)",
    )
    p.add_argument(
        "--refine-steps", type=COUNT, default=None, help="stage-1 steps per site of the second pass (default n-steps/3)"
    )


def add_warm_argument(p: argparse.ArgumentParser, *, checks_branches: bool = True) -> None:
    """``--warm``: warm starts in stage 1 (``hierarchical``, which then checks them against cold spin-ups, and
    ``crossvalidate``, which reuses such a run's checkpoints)."""
    text = "warm starts in stage 1: 2-4x faster solves, but some land on another equilibrium than the spin-up"
    if checks_branches:
        text += "; the run then re-solves 100 draws per site cold and reports mismatches (README, 'The steady state')"
    else:
        text += " (hierarchical --warm checks that; give --warm here to reuse such a run's stage-1 checkpoints)"
    p.add_argument("--warm", action="store_true", help=text)


def add_regression_arguments(
    p: argparse.ArgumentParser, *, covariates_default: str | None, covariates_help: str
) -> None:
    """The options of the regression population (issue 20): ``--covariates``, ``--clay-rule``, ``--shared-beta``
    and ``--beta-sd``, shared by ``hierarchical`` and ``crossvalidate``."""
    p.add_argument("--covariates", default=covariates_default, help=covariates_help)
    p.add_argument(
        "--clay-rule",
        choices=["indicator", "measured"],
        default="indicator",
        help="with clay: sites without a measurement keep the forcing's filled clay with the indicator "
        "clay_measured (default), or are an error",
    )
    p.add_argument("--shared-beta", action="store_true", help="one coefficient matrix B for all forest types")
    p.add_argument(
        "--beta-sd", type=float, default=0.5, help="prior sd of each coefficient B (logit units per sd; default 0.5)"
    )


def add_stage2_engine_arguments(p: argparse.ArgumentParser) -> None:
    """``--stage2 draws|mixture`` and ``--mixture-components``: what stage 2 samples (``crossvalidate``)."""
    p.add_argument(
        "--stage2",
        choices=["draws", "mixture"],
        default="draws",
        help="stage 2 on the stage-1 draws themselves (Gibbs; default) or on a Gaussian-mixture likelihood fitted "
        "to each site's draws (NUTS; converges with covariates, docs/covariates.md); with mixture, --draws are NUTS "
        "draws per chain (default 1000, as many tuning steps) and there is no second pass",
    )
    p.add_argument(
        "--mixture-components", type=COUNT, default=2, help="components per site with --stage2 mixture (default 2)"
    )


def add_scheduler_argument(p: argparse.ArgumentParser, *, what: str = "the tasks") -> None:
    """``--scheduler processes|dask|tcp://HOST:PORT`` (default processes). Not part of the run's fingerprint
    (:mod:`.rundir` compares the configuration and settings only), so a run started on the process pool resumes on
    Dask and the other way round."""
    p.add_argument(
        "--scheduler",
        type=scheduler_option,
        default="processes",
        metavar="{processes,dask,tcp://HOST:PORT}",
        help=f"where {what} run: processes (the local process pool, default), dask (a local Dask cluster of "
        "--n-processes workers) or the address of a running Dask scheduler; dask needs "
        'pip install "bayes_vmimics[dask]" (docs/dask.md)',
    )


@contextlib.contextmanager
def scheduler_from_args(args, n_workers: int):
    """The scheduler of ``--scheduler`` (None for the process pool), closed when the block ends; says what it is.

    Args:
        args: parsed arguments with ``scheduler`` (–).
        n_workers: workers of a local Dask cluster (count).

    Raises:
        ValueError: Dask not installed (the message says what to install); ConnectionError: an address where no
            scheduler answers (the CLI prints both and exits with 2).
    """
    from .scheduler import PROCESSES, import_distributed, open_scheduler

    spec = getattr(args, "scheduler", None) or PROCESSES
    if spec != PROCESSES:
        try:
            import_distributed()
        except ModuleNotFoundError as err:
            raise ValueError(f"--scheduler {spec}: {err}") from None
    with open_scheduler(spec, n_workers) as sched:
        if sched is not None:
            print(f"scheduler: {sched.describe()}", flush=True)
        yield sched


# ----------------------------------------------------------------------------- output folders
def out_dir(args, cfg: StudyConfig, types=None) -> Path:
    """``--out``, or the command's default folder: one for the synthetic twin and one per forest type (or
    site list), so that runs on different data never share a folder."""
    if args.out:
        return check_out_path(Path(args.out))
    base = getattr(args, "default_out", None) or str(DEFAULT_OUT / args.command.replace("-", "_"))
    if cfg.study.mode == "synthetic":
        tag = "synthetic"
    elif cfg.data.site_ids:
        tag = "sites"
    else:
        tag = "-".join(types or [cfg.data.forest_type])
    return check_out_path(Path(f"{base}_{tag}"))


#: Configuration sections each command does not read (not compared between invocations into one folder).
UNUSED_SECTIONS = {
    "calibrate": ("optimize",),
    "optimize": ("sampler",),
    "prior-predictive": ("sampler", "optimize"),
    "hierarchical": ("sampler", "optimize"),
    "validate": ("sampler", "optimize", "synthetic"),
    "crossvalidate": ("sampler", "optimize", "synthetic"),
}


def claim(
    args,
    out: Path,
    cfg: StudyConfig,
    study: Study | None,
    *,
    products,
    resumable=(),
    settings=None,
    files=None,
    sites=None,
) -> None:
    """Check ``out`` against this run's fingerprint (see :mod:`.rundir`) and write its ``run.json``."""
    fp = fingerprint(
        args.command,
        seed=args.seed,
        config=cfg.to_dict(),
        sites=list(study.problem.site_ids) if study is not None else list(sites or []),
        data_files={**(study.data_files if study is not None else {}), **(files or {})},
        data_folder=str(study.folder) if study is not None and study.folder is not None else None,
        settings=settings,
        unused_sections=UNUSED_SECTIONS.get(args.command, ()),
    )
    prepare_out(out, fp, fresh=getattr(args, "fresh", False), products=list(products), resumable=list(resumable))


def finish(out: Path, **fields) -> None:
    from datetime import UTC, datetime

    update_run(out, finished_at=datetime.now(UTC).isoformat(timespec="seconds"), **fields)


def config_from_args(args) -> StudyConfig:
    from .config import load_config

    cfg = load_config(args.config) if args.config else load_config("study_quick" if args.quick else "study_default")
    changes: dict[str, dict] = {}
    if getattr(args, "synthetic", False):
        changes.setdefault("study", {})["mode"] = "synthetic"
    if getattr(args, "forest_type", None):
        changes.setdefault("data", {})["forest_type"] = args.forest_type
    if getattr(args, "site_id", None):
        changes.setdefault("data", {})["site_ids"] = list(args.site_id)
    if getattr(args, "split", None):
        changes.setdefault("data", {})["split"] = args.split
    if getattr(args, "max_sites", None) is not None:
        changes.setdefault("data", {})["max_sites"] = args.max_sites
    for key in ("n_steps", "n_walkers", "n_ensembles", "n_processes"):
        v = getattr(args, key, None)
        if v is not None:
            changes.setdefault("sampler", {})[key] = v
    if getattr(args, "no_progress", False):
        changes.setdefault("sampler", {})["progress"] = False
    if getattr(args, "cold", False):
        changes.setdefault("likelihood", {})["warm_start"] = False
    if "sampler" in changes and "n_steps" in changes["sampler"]:
        s = changes["sampler"]
        n = s["n_steps"]
        if cfg.sampler.discard >= n:
            s["discard"] = n // 2
    return cfg.replace(**changes) if changes else cfg


def add_common_arguments(
    p: argparse.ArgumentParser, *, study: bool = True, out: str = "results/<command>_synthetic or _<FOREST_TYPE>"
) -> None:
    p.add_argument("--seed", type=SEED, default=2021, help="random seed, ≥ 0 (default 2021)")
    p.add_argument("--out", default=None, help=f"output folder (default {out})")
    p.add_argument("--quick", action="store_true", help="quick settings (model/study_quick.toml)")
    if not study:
        return
    p.add_argument(
        "--config",
        default=None,
        help="study configuration: a TOML file or a name in model/ (default study_default, "
        "or study_quick with --quick)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="raw-data folder (default $BAYES_VMIMICS_DATA); a folder that does not exist is an error",
    )
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="the synthetic twin: profiles generated by the model from known parameters (no data needed)",
    )
    from .constants import FOREST_TYPES

    p.add_argument(
        "--forest-type",
        choices=FOREST_TYPES,
        default=None,
        help="forest type of the pooled calibration (real data)",
    )
    p.add_argument(
        "--site-id",
        action="append",
        default=None,
        help="calibrate this site (repeat for several); overrides --forest-type",
    )
    p.add_argument("--max-sites", type=COUNT0, default=None, help="use at most this many sites (0 = all)")
    p.add_argument(
        "--cold",
        action="store_true",
        help="no warm starts: deterministic (cold spin-up) log-probability, slower",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="discard the results in --out (chains, checkpoints, run.json) and start again, instead of resuming; "
        "needed when --out holds a run with other inputs",
    )


__all__ = [
    "COUNT",
    "COUNT0",
    "DEFAULT_OUT",
    "SEED",
    "UNUSED_SECTIONS",
    "add_common_arguments",
    "add_scheduler_argument",
    "claim",
    "config_from_args",
    "finish",
    "int_at_least",
    "out_dir",
    "scheduler_from_args",
    "scheduler_option",
]
