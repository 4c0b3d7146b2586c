"""Calibration results as an ArviZ DataTree (``xarray.DataTree``), netCDF I/O and summary tables.

Groups written by :func:`build_datatree`:

- ``posterior``: the seven parameters, dims (chain, draw); chain = independent ensemble, draw = thinned
  (step, walker) pairs in step-major order (non-dimension coords ``step``, ``walker``).
- ``sample_stats``: ``lp`` (log posterior) (chain, draw); ``acceptance_fraction`` (chain, walker).
- ``log_likelihood``: ``soc`` (chain, draw, soc_obs) and ``f14c`` (chain, draw, c14_obs), pointwise.
- ``observed_data``: ``soc`` (soc_obs) and ``f14c`` (c14_obs) with site and interval coords.
- ``posterior_predictive``: ``soc`` and ``f14c`` per observed interval (noise-free model values, the
  quantity compared with the data), ``soc_observed`` and ``f14c_observed`` (replicated observations: the model
  value plus observation error drawn with the problem's error model; a site-scale discrepancy κ from each
  site's posterior for calibration sites, from its prior for held-out sites), ``soc_grid`` and ``f14c_grid``
  per model layer (grid_point), with coords ``grid_site`` and ``grid_mid_cm``.
- ``convergence``: ``tau`` and ``n_over_tau`` (ensemble, parameter), ``rhat`` (parameter).

Root attributes: study configuration (JSON, ``configuration``: ``validate`` reads the error model and the data
selection from it), the convergence verdict (JSON, ``convergence_verdict``:
:meth:`~bayes_vmimics.convergence.ConvergenceVerdict.to_json`; ``smoke_run`` 1 for a ``--quick`` run,
``verdict_notes`` more failed criteria), data version, seed, package versions, failure counts, how the
run was resumed (``steps_at_start``: per ensemble, the steps stored at the start of each invocation;
``n_evaluations_total`` over all invocations), the best cost of the posterior draws and of the start search
(``cost_name``, ``posterior_best_cost``, ``optimiser_best_cost``; see :func:`mode_lines`), and for synthetic
twins the true parameter values. Files are
written with the h5netcdf engine.

The predictive groups of hierarchical and held-out results, and their scores: :mod:`bayes_vmimics.predictive`.
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .inference.emcee_sampler import select_draws
from .metrics import fit_metrics
from .parameters import PARAMETER_NAMES, PARAMETER_UNITS
from .predictive import _predictive_groups

ENGINE = "h5netcdf"
GROUPS = (
    "posterior",
    "sample_stats",
    "log_likelihood",
    "observed_data",
    "posterior_predictive",
    "convergence",
)


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that determine the numbers."""
    out = {"python": platform.python_version()}
    for pkg in ("bayes_vmimics", "numpy", "scipy", "numba", "emcee", "arviz", "xarray", "h5netcdf", "h5py"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[pkg] = "not installed"
    return out


def build_datatree(
    problem,
    runs,
    *,
    config=None,
    discard: int = 0,
    thin: int = 1,
    max_draws: int = 1000,
    seed: int | None = None,
    data_version: str = "synthetic",
    truth=None,
    convergence: dict | None = None,
    extra_attrs: dict | None = None,
) -> xr.DataTree:
    """Assemble the DataTree of a calibration (see module docstring).

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` that was sampled.
        runs: the ensembles (:class:`~bayes_vmimics.inference.EnsembleRun`), all of one shape.
        config: the :class:`~bayes_vmimics.config.StudyConfig`, stored as JSON (–).
        discard: burn-in steps dropped (count).
        thin: keep every ``thin``-th step (count).
        max_draws: at most this many draws per ensemble (count).
        seed: master seed (integer).
        data_version: label of the data (e.g. hash or file dates) (–).
        truth: true parameter vector of a synthetic twin (parameter units), or None.
        convergence: output of :func:`~bayes_vmimics.inference.ensemble_convergence`.
        extra_attrs: more root attributes (JSON-serialisable values).
    """
    steps, walkers, pos = select_draws(runs, discard=discard, thin=thin, max_draws=max_draws)
    n_ens, n_draw, _ = pos.shape
    lp = np.stack([r.log_prob[steps, walkers] for r in runs])
    sample = {"chain": np.arange(n_ens), "draw": np.arange(n_draw)}
    draw_coords = {"step": ("draw", steps), "walker": ("draw", walkers)}

    n_sites = len(problem.sites)
    per_site = np.broadcast_to(pos[:, :, None, :], (n_ens, n_draw, n_sites, pos.shape[-1]))
    log_lik, observed, pp, n_failed = _predictive_groups(problem, per_site, sample, seed=0 if seed is None else seed)
    soc_unit = observed["soc"].attrs["units"]
    posterior = xr.Dataset(
        {n: (("chain", "draw"), pos[..., i], {"units": PARAMETER_UNITS[n]}) for i, n in enumerate(PARAMETER_NAMES)},
        coords={**sample, **draw_coords},
    )
    n_walkers = runs[0].chain.shape[1]
    sample_stats = xr.Dataset(
        {
            "lp": (("chain", "draw"), lp),
            "acceptance_fraction": (
                ("chain", "walker_index"),
                np.stack([r.acceptance_fraction for r in runs]),
            ),
        },
        coords={**sample, **draw_coords, "walker_index": np.arange(n_walkers)},
    )
    groups = {
        "posterior": posterior,
        "sample_stats": sample_stats,
        "log_likelihood": log_lik,
        "observed_data": observed,
        "posterior_predictive": pp,
    }
    if convergence is not None:
        groups["convergence"] = xr.Dataset(
            {
                "tau": (("chain", "parameter"), convergence["tau"]),
                "n_over_tau": (("chain", "parameter"), convergence["n_over_tau"]),
                "rhat": ("parameter", convergence["rhat"]),
            },
            coords={"chain": np.arange(n_ens), "parameter": list(PARAMETER_NAMES)},
            attrs={
                k: (int(v) if isinstance(v, bool) else v)
                for k, v in convergence.items()
                if isinstance(v, int | float | bool)
            },
        )
    stats = {"n_evaluations": 0, "n_failed": 0}
    for r in runs:
        stats["n_evaluations"] += r.stats.n_evaluations
        stats["n_failed"] += r.stats.n_failed
    # resume bookkeeping: every invocation that wrote the chains, per ensemble (EnsembleRun.resumed_at)
    steps_at_start = [[int(k) for k in getattr(r, "resumed_at", [r.n_resumed_from])] for r in runs]
    total_eval = sum(max(getattr(r, "n_evaluations_total", 0), r.stats.n_evaluations) for r in runs)
    total_failed = sum(max(getattr(r, "n_failed_total", 0), r.stats.n_failed) for r in runs)
    attrs = {
        "title": "bayes_vmimics calibration",
        "created_at": datetime.now(UTC).isoformat(),
        "configuration": json.dumps(config.to_dict() if config is not None else {}),
        "data_version": data_version,
        "seed": -1 if seed is None else int(seed),
        "package_versions": json.dumps(package_versions()),
        "sites": json.dumps(problem.site_ids),
        "soc_unit": soc_unit,
        "c14_enabled": int(problem.c14_enabled),
        "warm_start": int(problem.warm_start),
        "n_evaluations": stats["n_evaluations"],
        "n_failed_steady_state": stats["n_failed"],
        "n_evaluations_total": int(total_eval),
        "n_failed_steady_state_total": int(total_failed),
        "n_invocations": max(len(a) for a in steps_at_start),
        "steps_at_start": json.dumps(steps_at_start),
        "n_steps": int(runs[0].chain.shape[0]),
        "n_failed_predictive": n_failed,
        "discard": int(discard),
        "thin": int(thin),
    }
    if truth is not None:
        attrs["true_parameters"] = json.dumps(dict(zip(PARAMETER_NAMES, map(float, truth), strict=True)))
    attrs.update(extra_attrs or {})
    dt = xr.DataTree.from_dict(groups)
    dt.attrs = attrs
    if convergence is not None:
        from .convergence import result_verdict

        dt.attrs["convergence_verdict"] = result_verdict(dt).to_json()
    return dt


def save_datatree(dt: xr.DataTree, path: str | Path) -> Path:
    """Write to netCDF-4 (h5netcdf engine) through a temporary file renamed at the end, so that an interrupted
    write leaves the previous file (or none), never half a file; returns the path."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        dt.to_netcdf(tmp, engine=ENGINE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_datatree(path: str | Path) -> xr.DataTree:
    """Read a results file written by :func:`save_datatree` (loaded into memory, file closed).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable results file (truncated, another format, emcee's
            ``chains.h5``); the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} not found")
    try:
        with xr.open_datatree(path, engine=ENGINE) as dt:
            dt = dt.load()
    except Exception as err:  # h5py's OSError, xarray's ValueError, decoding errors: all mean "not ours"
        raise ValueError(
            f"{path} is not a readable results file ({type(err).__name__}: {err}); give the results.nc written "
            "by calibrate or hierarchical"
        ) from None
    if "posterior" not in dt.children:
        hint = " (emcee's chain file: give results.nc beside it)" if "ensemble_0" in dt.children else ""
        raise ValueError(f"{path} is not a results file: it has no posterior group{hint}")
    return dt


def posterior_draws(dt: xr.DataTree) -> np.ndarray:
    """All posterior draws as an array (n_samples, 7) in ``PARAMETER_NAMES`` order."""
    post = dt["posterior"]
    return np.stack([post[n].values.ravel() for n in PARAMETER_NAMES], axis=1)


def summary_table(dt: xr.DataTree) -> pd.DataFrame:
    """Posterior mean, sd and 5/50/95 % quantiles per parameter, with R-hat across ensembles, min N/τ and, for
    synthetic twins, the true value and whether it lies in the 90 % interval."""
    x = posterior_draws(dt)
    q = np.quantile(x, [0.05, 0.5, 0.95], axis=0)
    df = pd.DataFrame(
        {"mean": x.mean(0), "sd": x.std(0, ddof=1), "q05": q[0], "q50": q[1], "q95": q[2]},
        index=pd.Index(PARAMETER_NAMES, name="parameter"),
    )
    if "convergence" in dt.children:
        conv = dt["convergence"]
        df["rhat"] = conv["rhat"].values
        df["min_n_over_tau"] = np.fmin.reduce(conv["n_over_tau"].values, axis=0)  # NaN where τ is unknown
    truth = dt.attrs.get("true_parameters")
    if truth:
        t = json.loads(truth)
        df["true"] = [t[n] for n in PARAMETER_NAMES]
        df["in_90"] = (df["true"] >= df["q05"]) & (df["true"] <= df["q95"])
    return df


def correlation(dt: xr.DataTree, a: str = "x_v", b: str = "x_K") -> float:
    """Posterior correlation of two parameters (default x_v–x_K; spec Sect. 13)."""
    post = dt["posterior"]
    return float(np.corrcoef(post[a].values.ravel(), post[b].values.ravel())[0, 1])


def fit_metrics_table(dt: xr.DataTree) -> pd.DataFrame:
    """Paper metrics (P Table 4: RMSE Eq 17, BIC Eq 18, a, b, r²) of the posterior-predictive median
    vs the data, for SOC and (if present) F14C, on the calibration sites."""
    rows = {}
    for var in ("soc", "f14c"):
        if var not in dt["observed_data"].data_vars:
            continue
        o = dt["observed_data"][var]
        m = dt["posterior_predictive"][var].median(("chain", "draw"), skipna=True).values
        site = o[f"{'soc' if var == 'soc' else 'f14c'}_site"].values
        obs_s, mod_s = [], []
        for s in pd.unique(site):
            k = site == s
            obs_s.append(o.values[k])
            mod_s.append(m[k])
        rows[var] = fit_metrics(obs_s, mod_s, n_params=len(PARAMETER_NAMES)).to_dict()
    return pd.DataFrame(rows).T


def format_report(dt: xr.DataTree) -> str:
    """Text report: the convergence verdict (first line, :func:`~bayes_vmimics.convergence.result_verdict`),
    summary table, x_v–x_K correlation, fit metrics, convergence and failure counts."""
    from .convergence import result_verdict

    pd_opts = {"display.width": 160, "display.max_columns": 20, "display.float_format": "{:.4g}".format}
    with pd.option_context(*[v for kv in pd_opts.items() for v in kv]):
        lines = [
            result_verdict(dt).line(),
            "",
            "Posterior summary (5/50/95 % quantiles; R-hat across independent ensembles):",
            str(summary_table(dt)),
            "",
            f"posterior correlation x_v–x_K: {correlation(dt):+.3f}",
            "",
            f"Fit on the calibration sites (posterior-predictive median; units of the data: "
            f"SOC {dt.attrs.get('soc_unit')}):",
            str(fit_metrics_table(dt)),
        ]
    if "convergence" in dt.children:
        c = dt["convergence"].attrs
        lines += [
            "",
            f"acceptance fraction mean {c.get('acceptance_mean', np.nan):.3f} "
            f"(min {c.get('acceptance_min', np.nan):.3f}, max {c.get('acceptance_max', np.nan):.3f}); "
            f"steps kept {c.get('n_kept_steps')}; τ reliable (N/τ ≥ 50 everywhere): "
            f"{bool(c.get('tau_reliable'))}",
        ]
        conv = dt["convergence"]
        if not np.all(np.isfinite(conv["rhat"].values)):
            lines.append(
                "warning: R-hat not computed (NaN): it needs ≥ 2 independent ensembles and ≥ 4 kept steps; "
                "sample longer (--n-steps) or with more ensembles (--n-ensembles)"
            )
        if not np.all(np.isfinite(conv["tau"].values)):
            lines.append("warning: τ unknown (NaN) for some parameter: the chains are too short to estimate it")
    lines += mode_lines(dt)
    lines.append(
        f"non-converged steady states: {dt.attrs.get('n_failed_steady_state')} of "
        f"{dt.attrs.get('n_evaluations')} evaluations in the prior box (→ −inf)"
    )
    lines += resume_lines(dt)
    return "\n".join(lines)


#: An optimiser's cost this much below the best posterior draw's means a missed mode (deviance units).
MODE_GAP = 2.0


def mode_lines(dt: xr.DataTree) -> list[str]:
    """The best cost (J under the paper's error model, else the deviance) of the posterior draws and of the
    optimisers that started the ensembles, with a warning when an optimiser beat every posterior draw by more
    than :data:`MODE_GAP` (the chains missed or have not reached a better mode); empty for results without
    that record."""
    name = dt.attrs.get("cost_name")
    post = dt.attrs.get("posterior_best_cost")
    if name is None or post is None:
        return []
    lines = [f"best posterior draw (of the 3 with highest log posterior): {name} = {float(post):.6g}"]
    opt = dt.attrs.get("optimiser_best_cost")
    if opt is None:
        return lines
    costs = json.loads(dt.attrs.get("optimiser_costs", "[]"))
    lines.append(
        f"best optimum found by the start search ({dt.attrs.get('start')}, {len(costs)} distinct optim"
        f"{'um' if len(costs) == 1 else 'a'}): {name} = {float(opt):.6g}"
    )
    if np.isfinite(post) and float(opt) < float(post) - MODE_GAP:
        lines.append(
            f"warning: an optimiser found {name} = {float(opt):.6g}, better than the best posterior draw's "
            f"{float(post):.6g} by {float(post) - float(opt):.4g}: the chains missed that mode or have not reached "
            "it; sample longer, or start the ensembles at distinct optima (sampler.start = 'multimap', more "
            "sampler.map_starts, calibrate --start-from the optimize result)"
        )
    return lines


def resume_lines(dt: xr.DataTree) -> list[str]:
    """How a calibration's chains were made: resumed or not, the steps each ensemble had at the start of each
    invocation, and the evaluations over all invocations (empty for results without that record)."""
    raw = dt.attrs.get("steps_at_start")
    if raw is None:
        return []
    starts = json.loads(raw)
    n_steps = dt.attrs.get("n_steps")
    total = dt.attrs.get("n_evaluations_total")
    failed = dt.attrs.get("n_failed_steady_state_total")
    if all(a == [0] for a in starts):
        return [f"chains run in one invocation ({n_steps} steps per ensemble)"]
    per = "; ".join(f"ensemble {k}: " + " → ".join(str(x) for x in [*a, n_steps]) for k, a in enumerate(starts))
    return [
        f"resumed chains: steps stored at the start of each invocation, then at the end ({per})",
        f"over all {dt.attrs.get('n_invocations')} invocations: {total} evaluations in the prior box, {failed} with "
        "a non-converged steady state",
    ]
