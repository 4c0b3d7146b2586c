"""What every command of the command line shares: option types, the common options, the scheduler of
``--scheduler``, and the parsed arguments' view of what the workflows share (:mod:`.workflows.common`: the study
configuration, the output folder and its ``run.json``).

Below :mod:`.cli` and the command modules that register subcommands (:mod:`.crossvalidate_cli`,
:mod:`.sensitivity_cli`), which all import it; above :mod:`.workflows`, which knows nothing of argparse.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from .workflows.common import (
    DEFAULT_OUT,
    MAX_CHAINS,
    MAX_DRAWS,
    MAX_PREDICTIVE_DRAWS,
    MAX_PROCESSES,
    MAX_STEPS,
    MAX_WALKERS,
    POOLED_COMMANDS,
    UNUSED_SECTIONS,
    claim_folder,
    count_problem,
    finish,
    hierarchical_stage2,
    mixture_stage2,
    output_folder,
    study_config,
)

if TYPE_CHECKING:  # the study modules (pandas, the likelihood) load inside main(), where Ctrl-C is handled
    from .config import StudyConfig
    from .study import Study


# ----------------------------------------------------------------------------- option types
def int_at_least(low: int, why: str = "", *, high: int | None = None):
    """argparse ``type=``: an integer ≥ ``low`` and, if given, ≤ ``high`` (argparse names the option in its
    message). The upper bound refuses counts that would run for years (a typo such as ``--n-steps 1000000000000``)
    before anything starts."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        problem = count_problem(value, low, high, why)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = f"integer ≥ {low}" if high is None else f"integer in [{low}, {high}]"
    return parse


SEED = int_at_least(0)
COUNT = int_at_least(1)
COUNT0 = int_at_least(0)

STEPS = int_at_least(1, high=MAX_STEPS)
WALKERS = int_at_least(1, high=MAX_WALKERS)
DRAWS = int_at_least(1, high=MAX_DRAWS)
PREDICTIVE = int_at_least(1, high=MAX_PREDICTIVE_DRAWS)
PREDICTIVE0 = int_at_least(0, high=MAX_PREDICTIVE_DRAWS)
PROCESSES = int_at_least(1, high=MAX_PROCESSES)


def bound_text(high: int) -> str:
    """``"≤ 1 000 000"``: an upper bound as the help texts state it."""
    return f"≤ {high:_}".replace("_", " ")


class ForestTypesAction(argparse.Action):
    """``--forest-type``, where a command accepts several: repeatable (``--forest-type ENF --forest-type EBF``),
    space-separated (``--forest-type ENF EBF``) or comma-separated (``--forest-type ENF,EBF``); the value is a list
    without repeats. Given as ``--forest-types`` (the old spelling of ``hierarchical`` and ``crossvalidate``, kept
    hidden), it says so on stderr."""

    def __call__(self, parser, namespace, values, option_string=None):
        import sys

        from .constants import FOREST_TYPES

        items = [v.strip() for text in values for v in str(text).split(",") if v.strip()]
        bad = [v for v in items if v not in FOREST_TYPES]
        if bad:
            parser.error(f"argument --forest-type: invalid choice {bad[0]!r} (choose from {', '.join(FOREST_TYPES)})")
        if option_string == "--forest-types":
            print(
                "note: --forest-types is the old spelling of --forest-type (repeatable or comma-separated)",
                file=sys.stderr,
            )
        current = list(getattr(namespace, self.dest, None) or [])
        setattr(namespace, self.dest, list(dict.fromkeys(current + items)))


def add_forest_types_argument(p: argparse.ArgumentParser, *, help: str) -> None:
    """``--forest-type`` of the commands that accept several forest types (``hierarchical``, ``crossvalidate``,
    ``sensitivity``), with ``--forest-types`` as a hidden old spelling."""
    from .constants import FOREST_TYPES

    p.add_argument(
        "--forest-type",
        nargs="+",
        action=ForestTypesAction,
        default=None,
        metavar="TYPE",
        help=f"{help}; one or several of {', '.join(FOREST_TYPES)}, space- or comma-separated or repeated",
    )
    p.add_argument("--forest-types", nargs="+", action=ForestTypesAction, dest="forest_type", help=argparse.SUPPRESS)


def scheduler_option(text: str) -> str:
    """argparse ``type=`` of ``--scheduler``: ``processes``, ``dask`` or ``tcp://HOST:PORT``
    (:func:`~bayes_vmimics.scheduler.parse_scheduler`)."""
    from .scheduler import parse_scheduler

    try:
        return parse_scheduler(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_refine_arguments(p: argparse.ArgumentParser, *, what: str = "") -> None:
    """``--refine`` and ``--refine-steps``: the second stage-1 pass (``hierarchical`` and ``crossvalidate``)."""
    p.add_argument(
        "--refine",
        choices=["auto", "always", "never"],
        default="auto",
        help="second stage-1 pass under a normal prior fitted to the first pass's population, needed when the "
        f"population is narrow{what} (auto, the default: when a site's stage-2 weights rest on < 5 draws)",
    )
    p.add_argument(
        "--refine-steps",
        type=STEPS,
        default=None,
        help=f"stage-1 steps per site of the second pass, {bound_text(MAX_STEPS)} (default n-steps/3, at least 100)",
    )


def warm_help(*, checks_branches: bool = True) -> str:
    """Help of ``--warm`` in stage 1 (``hierarchical``, which then checks the warm starts against cold spin-ups,
    and ``crossvalidate``, which reuses such a run's checkpoints)."""
    text = "warm starts in stage 1: 2-4x faster solves, but some land on another equilibrium than the spin-up"
    if checks_branches:
        return text + "; the run then re-solves 100 draws per site cold and reports mismatches (docs/steady_state.md)"
    return text + " (hierarchical --warm checks that; give --warm here to reuse such a run's stage-1 checkpoints)"


def add_regression_arguments(
    p: argparse.ArgumentParser, *, covariates_default: str | None, covariates_help: str
) -> None:
    """The options of the regression population: ``--covariates``, ``--clay-rule``, ``--shared-beta`` and
    ``--beta-sd``, shared by ``hierarchical`` and ``crossvalidate``."""
    p.add_argument("--covariates", default=covariates_default, help=covariates_help)
    p.add_argument(
        "--clay-rule",
        choices=["indicator", "measured"],
        default="indicator",
        help="with clay: sites without a measurement keep the forcing's filled clay with the indicator "
        "clay_measured (default), or are an error",
    )
    p.add_argument(
        "--shared-beta",
        action="store_true",
        help="one coefficient matrix B for all forest types (default: one per forest type)",
    )
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
        "--mixture-components",
        type=int_at_least(1, high=50),
        default=2,
        help="Gaussian components per site with --stage2 mixture, 1 to 50 (default 2); not used otherwise",
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
    """``--out``, or the command's default folder (:func:`~bayes_vmimics.workflows.common.output_folder`)."""
    return output_folder(args.command, args.out, cfg, types, default_out=getattr(args, "default_out", None))


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
    """Check ``out`` against this run's fingerprint and write its ``run.json``
    (:func:`~bayes_vmimics.workflows.common.claim_folder` with the command, ``--seed`` and ``--fresh``)."""
    claim_folder(
        args.command,
        out,
        cfg,
        study,
        seed=args.seed,
        fresh=getattr(args, "fresh", False),
        products=products,
        resumable=resumable,
        settings=settings,
        files=files,
        sites=sites,
    )


def data_sources(text: str) -> tuple[str, ...]:
    """``--sources``: a comma-separated list of data sources ("he2016", "israd"), or "all" for every source present
    in the data folder (the empty tuple) (str → tuple of str)."""
    from .config import DATA_SOURCES

    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if names == ("all",):
        return ()
    bad = [n for n in names if n not in DATA_SOURCES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown source(s) {', '.join(bad) or '(none given)'}: choose from {', '.join(DATA_SOURCES)} or all"
        )
    return names


def config_from_args(args) -> StudyConfig:
    """The study configuration of a command's options (:func:`~bayes_vmimics.workflows.common.study_config`);
    a note that the burn-in was cut (``--quick`` with few ``--n-steps``) goes to ``args.burn_in_note``.

    Raises:
        ValueError: ``calibrate --n-steps`` not above the burn-in of a full run (the message names both numbers).
    """
    cfg, args.burn_in_note = study_config(args, getattr(args, "command", None))
    return cfg


def add_common_arguments(
    p: argparse.ArgumentParser,
    *,
    study: bool = True,
    out: str = "results/<command>_synthetic or _<FOREST_TYPE>",
    quick: str = "quick settings (model/study_quick.toml): a smoke run that tests the pipeline in minutes and is "
    "never converged",
    seed: str = "random seed, ≥ 0 (default 2021)",
    several_forest_types: bool = False,
    warm: str | None = None,
) -> None:
    """The options every command shares: ``--seed``, ``--out``, ``--quick`` and, for commands that build a study,
    ``--config``, ``--data-dir``, ``--synthetic``, ``--forest-type``, ``--site-id``, ``--max-sites``, the pair
    ``--warm``/``--cold`` and ``--fresh``.

    Args:
        p: the command's parser (–).
        study: add the study options (bool).
        out: the default of ``--out``, as the help states it (–).
        quick: the help of ``--quick``: its effect on this command (–).
        seed: the help of ``--seed`` (–).
        several_forest_types: ``--forest-type`` takes several types (:class:`ForestTypesAction`) (bool).
        warm: help of ``--warm`` where it does more than the configuration's warm starts (–).
    """
    p.add_argument("--seed", type=SEED, default=2021, help=seed)
    p.add_argument("--out", default=None, help=f"output folder (default {out})")
    p.add_argument("--quick", action="store_true", help=quick)
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
        "--sources",
        type=data_sources,
        default=None,
        help="data sources to combine, comma-separated: he2016 (He et al. 2016), israd (ISRaD); default: the "
        "configuration's [data] sources, else every source present in the data folder",
    )
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="the synthetic twin: profiles generated by the model from known parameters (no data needed)",
    )
    from .constants import FOREST_TYPES

    if several_forest_types:
        add_forest_types_argument(
            p, help="forest types of the real sites, one population each (default: the configuration's, ENF)"
        )
    else:
        p.add_argument(
            "--forest-type",
            choices=FOREST_TYPES,
            default=None,
            help="forest type of the pooled calibration on real sites, one type (default: the configuration's, ENF)",
        )
    p.add_argument(
        "--site-id",
        action="append",
        default=None,
        help="calibrate this site (repeat for several); overrides --forest-type",
    )
    p.add_argument("--max-sites", type=COUNT0, default=None, help="use at most this many sites (0 = all)")
    pair = p.add_mutually_exclusive_group()
    pair.add_argument(
        "--warm",
        action="store_const",
        const=True,
        dest="warm",
        default=None,
        help=(
            warm
            or "warm starts: each solve starts from a nearby converged steady state, 2-4x faster, but the "
            "log-probability may then depend on the evaluation history near folds"
        )
        + " (default: the configuration's likelihood.warm_start, off in study_default and study_quick)",
    )
    pair.add_argument(
        "--cold",
        action="store_const",
        const=False,
        dest="warm",
        help="cold spin-ups: every solve from the same start, a deterministic log-probability (the default unless "
        "the configuration sets likelihood.warm_start = true)",
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
    "DRAWS",
    "MAX_CHAINS",
    "MAX_DRAWS",
    "MAX_PREDICTIVE_DRAWS",
    "MAX_PROCESSES",
    "MAX_STEPS",
    "MAX_WALKERS",
    "PREDICTIVE",
    "POOLED_COMMANDS",
    "PREDICTIVE0",
    "PROCESSES",
    "SEED",
    "STEPS",
    "WALKERS",
    "ForestTypesAction",
    "add_forest_types_argument",
    "bound_text",
    "UNUSED_SECTIONS",
    "add_common_arguments",
    "add_refine_arguments",
    "add_regression_arguments",
    "add_stage2_engine_arguments",
    "add_scheduler_argument",
    "claim",
    "config_from_args",
    "finish",
    "hierarchical_stage2",
    "int_at_least",
    "mixture_stage2",
    "out_dir",
    "scheduler_from_args",
    "scheduler_option",
    "warm_help",
]
