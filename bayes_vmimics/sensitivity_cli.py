"""Command line of the sensitivity analyses: ``bayes-vmimics sensitivity {morris,sobol,profiles,response} …``.

- ``morris``: the paper's Morris screening (P §2.3, Fig 2) of J₁ and J₂ at every selected site with ¹⁴C:
  ``morris_indices.csv`` (μ, μ*, σ, importance θ per site, output and parameter), ``morris_ranking.csv``
  (mean importance and rank over sites), ``morris_importance.png`` (Fig 2) and ``morris_sites/<site>.nc``.
- ``sobol``: Sobol' first and total indices of J₁, J₂ and SOC/F14C at ``--depths`` on the Table 1 box
  (``sobol_indices.csv``, ``sobol_indices.png``, ``sobol_sites/``); with ``--results``, given-data first-order
  indices (and Borgonovo's δ with ``--delta``) under the posterior draws of that calibration result instead
  (``posterior_indices.csv``, ``posterior_indices.png``, ``posterior_sites/``).
- ``profiles``: P Fig 7, the mean steady-state SOC profile per forest type at the calibrated parameters and
  with x_D, α_v, α_r ±25 % (``profiles.nc``, ``fig7_profiles.png``); with ``--results``, the posterior
  median as calibrated parameters and the posterior 90 % band.
- ``response``: P Fig 8, SOC in the layers at 15 and 35 cm against relative litter input and V, diffusion
  off (``response.nc``, ``fig8_response.png``).

Calibrated parameters are the paper's Table 3 per forest type unless ``--results`` gives a pooled result.
Morris and Sobol' write one file per site when it finishes; a rerun with the same settings skips finished
sites (``--fresh`` discards them). Their runs go to the process pool (``--n-processes``) or, with ``--scheduler
dask`` or ``tcp://HOST:PORT``, to a Dask cluster in chunks of design rows. Ctrl-C stops cleanly (worker processes
ignore SIGINT).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import sensitivity as sa
from .cli_common import (
    MAX_PROCESSES,
    add_forest_types_argument,
    add_scheduler_argument,
    bound_text,
    int_at_least,
    scheduler_from_args,
)
from .constants import FOREST_TYPES
from .io.parameters import table3_parameters
from .parameters import PARAMETER_NAMES

DEFAULT_OUT = Path("results/sensitivity")

#: ``sensitivity --help``: what the command does, in plain text (the module docstring is for the API docs).
DESCRIPTION = (
    "The paper's sensitivity analyses (Wang et al. 2021): morris, its Morris screening of J1 and J2 per site "
    "(the paper's Fig 2); sobol, Sobol' first and total indices on the Table 1 box, or given-data indices under "
    "a calibration posterior (--results); profiles, the mean SOC profile with x_D, alpha_v, alpha_r +-25 % (the "
    "paper's Fig 7); response, SOC at 15 and 35 cm against litter input and V, diffusion off (the paper's Fig 8). "
    "Calibrated parameters are the paper's Table 3 per forest type unless --results gives a pooled result. "
    "'bayes-vmimics sensitivity ANALYSIS --help' lists each analysis's options and files."
)

#: --quick settings per analysis (small designs that finish in seconds to a minute).
QUICK = {
    "n_trajectories": 6,
    "n_base": 32,
    "max_sites": 2,
    "band_draws": 8,
    "n_multipliers": 15,
    "max_draws": 200,
}


def add_sensitivity_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``sensitivity {morris,sobol,profiles,response}`` to an argparse ``subparsers`` object.

    Args:
        subparsers: the result of ``parser.add_subparsers()`` (–).

    Returns:
        The ``sensitivity`` parser (its ``func`` is :func:`cmd_sensitivity`).
    """
    p = subparsers.add_parser(
        "sensitivity",
        help="the paper's sensitivity analyses (Morris screening of its Fig 2, its Figs 7 and 8) and Sobol' indices",
        description=DESCRIPTION,
    )
    sub = p.add_subparsers(dest="analysis", required=True)
    helps = {
        "morris": "Morris screening of J1 and J2 per site (the paper's Fig 2); writes morris_indices.csv, "
        "morris_ranking.csv, morris_importance.png",
        "sobol": "Sobol' indices on the Table 1 box, or given-data indices under a posterior (--results); writes "
        "sobol_indices.csv and .png (posterior_indices.* with --results)",
        "profiles": "SOC profiles with x_D, alpha_v, alpha_r +-25 %% (the paper's Fig 7); writes profiles.nc, "
        "fig7_profiles.png",
        "response": "SOC at 15 and 35 cm against litter input and V, diffusion off (the paper's Fig 8); writes "
        "response.nc, fig8_response.png",
    }
    for name, text in helps.items():
        q = sub.add_parser(name, help=text, description=text.replace("%%", "%"))
        _add_common_arguments(q, name)
        _add_analysis_arguments(q, name)
        q.set_defaults(func=cmd_sensitivity)
    return p


def _add_common_arguments(q: argparse.ArgumentParser, name: str) -> None:
    """The options every analysis takes (data, sites, parameters' source, seed, output, processes, --quick)."""
    q.add_argument("--data-dir", default=None, help="raw-data folder (default $BAYES_VMIMICS_DATA)")
    add_forest_types_argument(
        q,
        help="forest types whose sites are used (default: all four; response: EBF and BNF as in the paper's Fig 8)",
    )
    q.add_argument(
        "--site-id",
        action="append",
        default=None,
        help="use this site (repeat for several) instead of a forest type's sites",
    )
    q.add_argument(
        "--split",
        choices=["calibration", "validation", "all"],
        default="all" if name in ("morris", "sobol") else "calibration",
        help="half of data/site_split.csv (default: all for morris/sobol, calibration for profiles/response)",
    )
    q.add_argument(
        "--max-sites",
        type=int_at_least(0),
        default=None,
        help="at most this many sites per type (default: all, 2 with --quick; 0 = all)",
    )
    q.add_argument(
        "--synthetic",
        action="store_true",
        help="the synthetic twin's sites ([synthetic] of the configuration) instead of real sites; its true "
        "parameters are the calibrated ones (no data needed unless the twin has ¹⁴C)",
    )
    q.add_argument("--config", default=None, help="study configuration (default model/study_default.toml)")
    q.add_argument(
        "--results",
        action="append",
        default=None,
        help="calibration results.nc (pooled): posterior variant (sobol), posterior median and 90 %% band "
        "(profiles, response); repeat once per --forest-type",
    )
    q.add_argument(
        "--seed",
        type=int_at_least(0),
        default=2021,
        help="random seed of the designs and of the posterior draws used, ≥ 0 (default 2021)",
    )
    q.add_argument("--out", default=None, help=f"output folder (default {DEFAULT_OUT})")
    q.add_argument(
        "--n-processes",
        type=int_at_least(1, high=MAX_PROCESSES),
        default=1,
        help=f"worker processes, {bound_text(MAX_PROCESSES)} (default 1); with --scheduler dask: Dask workers",
    )
    if name in ("morris", "sobol"):
        add_scheduler_argument(q, what="the model runs (chunks of design rows)")
    quick = {
        "morris": f"{QUICK['n_trajectories']} trajectories",
        "sobol": f"N = {QUICK['n_base']} base samples, {QUICK['max_draws']} posterior draws",
        "profiles": f"{QUICK['band_draws']} posterior draws in the band",
        "response": f"{QUICK['n_multipliers']} multipliers per curve",
    }[name]
    q.add_argument(
        "--quick",
        action="store_true",
        help=f"small designs and few sites ({quick}, {QUICK['max_sites']} sites per type): a smoke run",
    )
    q.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_analysis_arguments(q: argparse.ArgumentParser, name: str) -> None:
    """The options of one analysis ``name``: design sizes, depths, dummy, --fresh, --delta, --band-draws."""
    if name in ("morris", "sobol"):
        q.add_argument(
            "--depths",
            type=float,
            nargs="+",
            default=list(sa.DEFAULT_DEPTHS_CM),
            help="depths (cm) whose layers' SOC and F14C are analysed besides J1 and J2 (default 15 35 75)",
        )
        q.add_argument(
            "--dummy",
            action="store_true",
            help="add a parameter 'dummy' that does not enter the model (its index is the estimator's noise floor)",
        )
        q.add_argument("--fresh", action="store_true", help="discard finished per-site files in --out")
    if name == "morris":
        q.add_argument(
            "--trajectories",
            type=int_at_least(2, high=100_000),
            default=None,
            help="Morris trajectories per site, 2 to 100 000 (default 50 as in the paper's §2.3, 6 with --quick)",
        )
    if name == "sobol":
        q.add_argument(
            "--n-base",
            type=int_at_least(2, high=2**20),
            default=None,
            help="Sobol' base samples N, a power of 2, ≤ 1 048 576; runs = N·(n_parameters + 2) (default 1024, 32 "
            "with --quick)",
        )
        q.add_argument(
            "--max-draws",
            type=int_at_least(20, high=1_000_000),
            default=None,
            help="posterior draws used with --results, 20 to 1 000 000 (default 1000, 200 with --quick)",
        )
        q.add_argument(
            "--delta",
            action="store_true",
            help="with --results: also Borgonovo's delta (SALib delta; about a minute per output and site)",
        )
    if name == "profiles":
        q.add_argument(
            "--band-draws",
            type=int_at_least(2, high=100_000),
            default=None,
            help="posterior draws of the band with --results, 2 to 100 000 (default 100, 8 with --quick)",
        )


# ----------------------------------------------------------------------------- helpers
def _config(args):
    from .config import load_config

    return load_config(args.config or "study_default")


def _types(args, default=FOREST_TYPES) -> list[str]:
    if args.synthetic:
        return ["synthetic"]
    return list(dict.fromkeys(args.forest_type or default))


def _problems(args, cfg, *, types, use_c14: bool = True):
    """[(label, forest type, problem, true θ of a synthetic twin or None)]: one problem per forest type, one for
    --site-id, or the synthetic twin."""
    from .study import build_problem

    if not use_c14:
        cfg = cfg.replace(likelihood={"use_c14": False})
    max_sites = args.max_sites if args.max_sites is not None else (QUICK["max_sites"] if args.quick else 0)
    if args.synthetic:
        changes = {"study": {"mode": "synthetic"}}
        if max_sites:
            changes["synthetic"] = {"n_sites": max_sites}
        problem, truth, _ = build_problem(cfg.replace(**changes), args.data_dir)
        return [("synthetic", "synthetic", problem, truth)]
    if args.site_id:
        c = cfg.replace(data={"site_ids": list(args.site_id), "max_sites": 0})
        return [("sites", types[0] if args.forest_type else None, build_problem(c, args.data_dir)[0], None)]
    out = []
    for ft in types:
        c = cfg.replace(data={"forest_type": ft, "split": args.split, "max_sites": max_sites, "site_ids": []})
        out.append((ft, ft, build_problem(c, args.data_dir)[0], None))
    return out


def _forest_type_of_sites(args) -> dict[str, str]:
    """site id → forest type, from the site tables (for --site-id runs)."""
    from .io.datadir import locate_data_dir
    from .io.sites import build_site_tables

    folder = locate_data_dir(args.data_dir, required=True)
    s = build_site_tables(folder).sites
    return dict(zip(s["site_id"], s["forest_type"], strict=True))


def _out(args) -> Path:
    out = Path(args.out) if args.out else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    return out


def _results_for(args, types) -> dict[str, str]:
    res = args.results or []
    if not res:
        return {}
    if len(res) != len(types):
        raise ValueError(
            f"--results given {len(res)} time(s) for {len(types)} forest type(s) {types}: give one pooled result per "
            "--forest-type, in the same order"
        )
    return dict(zip(types, res, strict=True))


def _theta_and_draws(args, ft: str, results: dict, *, max_draws: int, truth=None):
    """(calibrated θ, posterior draws or None, label of the source)."""
    from .results import load_datatree

    if ft in results:
        dt = load_datatree(results[ft])
        draws = sa.posterior_parameter_draws(dt, max_draws=max_draws, seed=args.seed)
        return np.median(sa.posterior_parameter_draws(dt), axis=0), draws, f"posterior median of {results[ft]}"
    if truth is not None:
        return np.asarray(truth, float), None, "true parameters of the synthetic twin"
    return table3_parameters(ft, args.data_dir), None, "Table 3 of Wang et al. (2021)"


# ----------------------------------------------------------------------------- commands
def cmd_sensitivity(args) -> int:
    """Run ``bayes-vmimics sensitivity <analysis>`` (see the module docstring).

    Returns:
        0 on success.

    Raises:
        ValueError: an input error (the message names it; the CLI prints it and exits with 2).
    """
    # read by cli.main on Ctrl-C
    args.resume_hint = "finished sites are kept in --out: rerun the same command to resume"
    return {"morris": _cmd_screening, "sobol": _cmd_screening, "profiles": _cmd_profiles, "response": _cmd_response}[
        args.analysis
    ](args)


def _cmd_screening(args) -> int:
    with scheduler_from_args(args, args.n_processes) as sched:
        return _screening(args, sched)


def _screening(args, scheduler) -> int:
    cfg = _config(args)
    out = _out(args)
    types = _types(args)
    if args.analysis == "morris" and args.results:
        raise ValueError("--results does not apply to morris (the paper's screening is on the Table 1 box)")
    posterior = args.analysis == "sobol" and bool(args.results)
    method = "posterior" if posterior else args.analysis
    names = (*PARAMETER_NAMES, "dummy") if args.dummy else PARAMETER_NAMES
    if args.fresh:
        shutil.rmtree(out / f"{method}_sites", ignore_errors=True)
    kwargs = _screening_options(args, method, out)
    max_draws = getattr(args, "max_draws", None) or (QUICK["max_draws"] if args.quick else 1000)
    results = _results_for(args, types) if posterior and not args.site_id else {}
    if posterior and args.site_id:
        if len(args.results) != 1:
            raise ValueError("with --site-id give one --results (its posterior is used for every site)")
        results = {None: args.results[0]}
    tables, notes = [], []
    t_all = time.perf_counter()
    site_types = _forest_type_of_sites(args) if args.site_id else {}
    for label, ft, problem, _ in _problems(args, cfg, types=types):
        every = args.site_id or args.synthetic  # named sites, or a twin: J2 is skipped where there is no ¹⁴C
        idx = [i for i, p in enumerate(problem.sites) if every or (problem.c14_enabled and p.obs.has_c14)]
        skipped = len(problem.sites) - len(idx)
        if skipped:
            notes.append(f"{label}: {skipped} site(s) without ¹⁴C observations left out (J2 undefined)")
        if not idx:
            notes.append(f"{label}: no site with ¹⁴C")
            continue
        draws = None
        if posterior:
            draws = _posterior_draws(args, results[ft if ft in results else None], problem, idx, max_draws)

        def done(res, ft=ft):
            print(
                f"{method} {res.site_id} ({ft or site_types.get(res.site_id, '?')}): {len(res.X)} runs, "
                f"{res.n_failed} failed, {res.seconds:.1f} s",
                flush=True,
            )

        res = sa.analyse_sites(
            method,
            problem,
            idx,
            names=names,
            depths_cm=args.depths,
            draws=draws,
            n_processes=args.n_processes,
            scheduler=scheduler,
            on_site_done=done,
            **kwargs,
        )
        t = sa.combine(res)
        t.insert(1, "forest_type", [ft or site_types.get(s, "?") for s in t["site_id"]])
        tables.append(t)
    if not tables:
        raise ValueError("no site with ¹⁴C observations selected: " + "; ".join(notes))
    _write_screening(args, method, pd.concat(tables, ignore_index=True), notes, t_all, out)
    return 0


def _screening_options(args, method: str, out: Path) -> dict:
    """The keyword arguments of :func:`~bayes_vmimics.sensitivity.sites.analyse_sites` for ``method``."""
    kwargs: dict = dict(seed=args.seed, progress=not args.no_progress, out_dir=out)
    if method == "morris":
        kwargs["n_trajectories"] = args.trajectories or (QUICK["n_trajectories"] if args.quick else 50)
    elif method == "sobol":
        kwargs["n_base"] = args.n_base or (QUICK["n_base"] if args.quick else 1024)
    else:
        kwargs["with_delta"] = args.delta
    return kwargs


def _posterior_draws(args, results_file, problem, idx, max_draws: int):
    """The draws of the posterior variant: one array for a pooled result, site id → draws for a hierarchical one."""
    from .results import load_datatree

    dt = load_datatree(results_file)
    if "theta_site" in dt["posterior"]:
        ids = problem.site_ids
        draws = {ids[i]: sa.posterior_parameter_draws(dt, ids[i], max_draws=max_draws, seed=args.seed) for i in idx}
    else:
        draws = sa.posterior_parameter_draws(dt, max_draws=max_draws, seed=args.seed)
    if args.dummy:
        raise ValueError("--dummy applies to the Table 1 box (morris, sobol without --results)")
    return draws


def _write_screening(args, method: str, table: pd.DataFrame, notes: list[str], t_all: float, out: Path) -> None:
    """The tables, figure and run record of a Morris, Sobol' or posterior run, and its summary lines."""
    stem = {"morris": "morris", "sobol": "sobol", "posterior": "posterior"}[method]
    table.to_csv(out / f"{stem}_indices.csv", index=False)
    written = [out / f"{stem}_indices.csv"]
    n_sites = table["site_id"].nunique()
    if method == "morris":
        rank = pd.concat(
            {o: sa.importance_ranking(table, o) for o in ("J1", "J2") if o in set(table["output"])}, names=["output"]
        )
        rank.to_csv(out / "morris_ranking.csv")
        written += [out / "morris_ranking.csv"]
        written.append(
            sa.plot_importance(table, out / "morris_importance.png", title=f"Morris importance, {n_sites} site(s)")
        )
        for o, r in rank.groupby(level="output"):
            r = r.droplevel("output")
            print(f"{o}: mean importance " + ", ".join(f"{p} {v:.2f}" for p, v in r["mean_importance"].items()))
            print(
                f"{o}: sites where each parameter is least important: "
                + ", ".join(f"{p} {int(v)}" for p, v in r["n_sites_least"].items() if v)
            )
    else:
        title = (
            "Sobol' indices (Table 1 box)"
            if method == "sobol"
            else "given-data first-order S1" + (" and δ" if args.delta else "") + " under the posterior"
        )
        written.append(sa.plot_sobol(table, out / f"{stem}_indices.png", title=title))
    runs = table.drop_duplicates("site_id")
    info = {
        "analysis": method,
        "sites": int(n_sites),
        "failed_runs": int(runs["n_failed"].sum()),
        "model_seconds": float(runs["seconds"].sum()),
        "wall_seconds": time.perf_counter() - t_all,
        "notes": notes,
    }
    (out / f"{stem}_run.json").write_text(json.dumps(info, indent=1))
    for n in notes:
        print("note:", n)
    print(
        f"{method}: {n_sites} site(s), {info['failed_runs']} failed run(s); wrote " + ", ".join(str(w) for w in written)
    )


def _cmd_profiles(args) -> int:
    import xarray as xr

    cfg = _config(args)
    out = _out(args)
    types = _types(args)
    results = _results_for(args, types)
    band_draws = args.band_draws or (QUICK["band_draws"] if args.quick else 100)
    profiles, bands, datasets = {}, {}, []
    for label, ft, problem, truth in _problems(args, cfg, types=types, use_c14=False):
        ft = ft or _single_type(args)
        theta, draws, source = _theta_and_draws(args, ft, results, max_draws=band_draws, truth=truth)
        ds = sa.perturbed_profiles(problem, theta)
        ds["n_sites"] = len(problem.sites)
        ds.attrs.update(theta_source=source, sites=json.dumps(problem.site_ids))
        if draws is not None:
            lo, hi, nf = sa.posterior_profile_band(problem, draws)
            ds["band_lower"] = ("depth", lo)
            ds["band_upper"] = ("depth", hi)
            ds.attrs.update(band_draws=len(draws), band_failed_draws=nf, band_level=0.9)
            bands[label] = (lo, hi)
        profiles[label] = ds
        datasets.append(ds.expand_dims(forest_type=[label]))
        print(
            f"profiles {label}: {len(problem.sites)} site(s), θ from {source}, {ds.attrs['n_failed']} failed solve(s)"
        )
    merged = xr.concat(datasets, dim="forest_type", combine_attrs="drop")
    merged.attrs["theta_source"] = json.dumps({k: v.attrs["theta_source"] for k, v in profiles.items()})
    merged.to_netcdf(out / "profiles.nc", engine="h5netcdf")
    fig = sa.plot_profiles_fig7(profiles, out / "fig7_profiles.png", bands=bands)
    print(f"wrote {out / 'profiles.nc'} and {fig}")
    return 0


def _single_type(args) -> str:
    ids = args.site_id or []
    types = {_forest_type_of_sites(args).get(s) for s in ids}
    if len(types) != 1 or None in types:
        raise ValueError(f"the sites {ids} are of forest types {sorted(map(str, types))}: give one --forest-type")
    return types.pop()


def _cmd_response(args) -> int:
    import xarray as xr

    cfg = _config(args)
    out = _out(args)
    types = _types(args, default=("EBF", "BNF"))
    results = _results_for(args, types)
    n_mult = QUICK["n_multipliers"] if args.quick else 60
    responses = {}
    for _label, ft, problem, truth in _problems(args, cfg, types=types, use_c14=False):
        ft = ft or _single_type(args)
        theta, _, source = _theta_and_draws(args, ft, results, max_draws=10, truth=truth)
        for i in range(len(problem.sites) if args.site_id else 1):
            ds = sa.response_curves(problem, i, theta, n_multipliers=n_mult)
            ds.attrs["theta_source"] = source
            key = f"{ft}" if not args.site_id else f"{ft} {problem.site_ids[i]}"
            responses[key] = ds
            print(f"response {key}: site {ds.attrs['site_id']}, θ from {source}")
    # each case has its own multipliers: store them as a variable over an index "k", not as a shared coordinate
    cases = [
        d.assign_coords(k=("multiplier", np.arange(d.sizes["multiplier"])))
        .swap_dims(multiplier="k")
        .reset_coords("multiplier")
        .expand_dims(case=[key])
        for key, d in responses.items()
    ]
    merged = xr.concat(cases, dim="case", combine_attrs="drop", join="outer")
    merged["site_id"] = ("case", [d.attrs["site_id"] for d in responses.values()])
    merged.to_netcdf(out / "response.nc", engine="h5netcdf")
    fig = sa.plot_response_fig8(responses, out / "fig8_response.png")
    print(f"wrote {out / 'response.nc'} and {fig}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m bayes_vmimics.sensitivity_cli morris …``), with the same error and
    Ctrl-C handling as ``bayes-vmimics``."""
    import sys

    from .interrupt import EXIT_INTERRUPTED

    parser = argparse.ArgumentParser(prog="bayes-vmimics")
    add_sensitivity_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sensitivity", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(
            "\nbayes-vmimics sensitivity: interrupted (Ctrl-C); finished sites are kept: rerun the same command "
            "to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as exc:
        print(f"bayes-vmimics sensitivity: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.exit(main())
