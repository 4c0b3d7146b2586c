"""``summarise``: the report of a ``calibrate`` results file (the convergence verdict first), with
``summary.csv`` and, unless ``quick``, the figures redrawn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..interrupt import deferred_interrupt
from ..rundir import check_out_path
from .common import Progress, check_count

FIGURES = ("profiles.png", "posterior_marginals.png", "xv_xk.png", "pair.png")


@dataclass(frozen=True)
class SummariseOptions:
    """Options of :func:`run_summarise` (``bayes-vmimics summarise``).

    Attributes:
        results: results.nc of a calibrate run, or the folder holding it (path).
        out: output folder; None: the results file's folder (path).
        quick: the report and summary.csv only, no figures (bool).
        seed: not used: summarise draws nothing at random (accepted so that the analyses scripts share options).
    """

    results: str | Path
    out: str | Path | None = None
    quick: bool = False
    seed: int = 2021

    def __post_init__(self) -> None:
        check_count("seed", self.seed, 0)


@dataclass(frozen=True)
class SummariseResult:
    """What :func:`run_summarise` wrote.

    Attributes:
        out: the output folder (path).
        verdict: the convergence verdict, the report's first line (–).
        report: the report's text (–).
        summary: summary.csv (path).
        figures: the figures redrawn, none with ``quick`` (paths).
    """

    out: Path
    verdict: str
    report: str
    summary: Path
    figures: tuple[Path, ...]


def run_summarise(options: SummariseOptions, *, progress: Progress | None = None) -> SummariseResult:
    """Print the report of a results file (the convergence verdict first) and redraw summary.csv and, unless
    ``quick``, its figures.

    Raises:
        ValueError: a hierarchical result (summarise reads calibrate's); OSError: no readable results file.
    """
    from ..diagnostics import plot_xv_xk, save_pair_plot
    from ..parameter_plots import plot_marginals
    from ..plotting import plot_profiles, result_prior
    from ..results import format_report, load_datatree, summary_table

    o, progress = options, progress or Progress()
    path = Path(o.results)
    if path.is_dir():
        path = path / "results.nc"
    dt = load_datatree(path)
    if "convergence" not in dt.children and "mu" in dt["posterior"].data_vars:
        raise ValueError(f"{path} is a hierarchical result: summarise reads calibrate's results (see its sites.csv)")
    out = check_out_path(Path(o.out)) if o.out else path.parent
    out.mkdir(parents=True, exist_ok=True)
    with deferred_interrupt():
        summary_table(dt).to_csv(out / "summary.csv")
        if not o.quick:
            plot_profiles(dt, out / "profiles.png")
            prior = result_prior(dt)
            plot_marginals(dt, out / "posterior_marginals.png", prior=prior)
            plot_xv_xk(dt, out / "xv_xk.png", prior=prior)
            save_pair_plot(dt, out / "pair.png")
    report = format_report(dt)
    progress.say(report)
    figures = "" if o.quick else ", profiles.png, posterior_marginals.png, xv_xk.png and pair.png"
    progress.say(f"wrote {out / 'summary.csv'}{figures}" + (" (--quick: no figures)" if o.quick else ""))
    return SummariseResult(
        out=out,
        verdict=report.splitlines()[0],
        report=report,
        summary=out / "summary.csv",
        figures=() if o.quick else tuple(out / f for f in FIGURES),
    )
