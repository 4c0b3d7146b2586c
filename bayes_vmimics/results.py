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
:meth:`~bayes_vmimics.diagnostics.ConvergenceVerdict.to_json`; ``smoke_run`` 1 for a ``--quick`` run,
``verdict_notes`` more failed criteria), data version, seed, package versions, failure counts, how the
run was resumed (``steps_at_start``: per ensemble, the steps stored at the start of each invocation;
``n_evaluations_total`` over all invocations), the best cost of the posterior draws and of the start search
(``cost_name``, ``posterior_best_cost``, ``optimiser_best_cost``; see :func:`mode_lines`), and for synthetic
twins the true parameter values. Files are
written with the h5netcdf engine.
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


def _obs_coords(obs: dict, kind: str) -> dict:
    dim = f"{kind}_obs" if kind == "soc" else "c14_obs"
    return {
        dim: np.arange(obs[kind].size),
        f"{kind}_site": (dim, obs[f"{kind}_site"].astype(str)),
        f"{kind}_top_cm": (dim, obs[f"{kind}_top_cm"]),
        f"{kind}_bottom_cm": (dim, obs[f"{kind}_bottom_cm"]),
    }


_REPLICATED = "replicated observation: model value plus observation error of the problem's error model"


def _solve_block(task) -> list:
    """A cluster task: one site (a problem holding it alone) at a block of θ (n, 7) (parameter units). Per θ, its
    :class:`~bayes_vmimics.likelihood.SitePrediction` without the solver's state (the predictive groups do not
    read it), or None where the steady state failed."""
    import dataclasses
    import pickle

    problem_bytes, thetas = task
    problem = pickle.loads(problem_bytes)
    out = []
    for th in thetas:
        q = problem.predict_site(0, th)
        out.append(None if q is None else dataclasses.replace(q, steady_state=None))
    return out


def _predict_on_cluster(problem, thetas: np.ndarray, scheduler) -> np.ndarray:
    """Every site's prediction at every draw, solved on a Dask cluster: one task per site and block of draws,
    carrying that site alone. Returns an object array (n_chain, n_draw, n_sites) of predictions (None where a
    steady state failed). Cold solves only (the caller checks): a prediction then depends on θ alone, so the
    blocks give what one process solving draw after draw gives."""
    import contextlib
    import copy
    import pickle

    from .scheduler import as_scheduler

    sched = as_scheduler(scheduler)
    n_ens, n_draw, n_sites = thetas.shape[:3]
    flat = thetas.reshape(n_ens * n_draw, n_sites, thetas.shape[-1])
    n = flat.shape[0]
    # about 4 tasks per worker thread over all sites, whole draws per task
    n_blocks = min(n, max(1, -(-4 * sched.n_threads() // n_sites)))
    edges = np.linspace(0, n, n_blocks + 1).round().astype(int)
    blocks = [(s, lo, hi) for s in range(n_sites) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]

    def tasks():
        for s in range(n_sites):
            sub = copy.copy(problem)
            sub.sites = [problem.sites[s]]
            payload = pickle.dumps(sub)
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                yield payload, flat[lo:hi, s]

    out = np.empty((n, n_sites), dtype=object)
    with contextlib.closing(sched.as_completed(_solve_block, tasks())) as finished:
        for i, res in finished:
            s, lo, hi = blocks[i]
            for j, q in enumerate(res):
                out[lo + j, s] = q
    return out.reshape(n_ens, n_draw, n_sites)


def _predictive_groups(
    problem, thetas: np.ndarray, sample: dict, *, new_site: bool = False, seed: int = 0, scheduler=None
):
    """Pointwise log-likelihood, observed data and posterior predictive of every site, draw by draw.

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem`.
        thetas: parameters per draw and site, shape (n_chain, n_draw, n_sites, 7) (parameter units).
        sample: ``{"chain": ..., "draw": ...}`` coordinates.
        new_site: the sites are new to the result (held out): the pointwise ``log_likelihood`` is then the
            log predictive density of a new site and the replicated observations draw a site-scale
            discrepancy κ from its prior; False (calibration sites): the likelihood's pointwise terms and κ from
            each site's posterior (bool).
        seed: seed of the observation-error draws of ``soc_observed`` / ``f14c_observed`` (integer).
        scheduler: None (solve here, draw after draw), or a Dask cluster
            (:class:`~bayes_vmimics.scheduler.DaskScheduler` or a ``dask.distributed.Client``) that solves blocks
            of draws per site as tasks; the observation errors are still drawn here, in the same order, so the
            result is the same. Only for cold solves: a warm-starting problem solves here, since its solutions
            depend on the solves before them (–).

    Returns:
        ``(log_likelihood, observed_data, posterior_predictive, n_failed)``: three Datasets in the layout of
        the module docstring and the number of draws whose steady state (of any site) did not converge
        (their values are NaN). ``posterior_predictive`` also holds ``soc_observed`` and ``f14c_observed``:
        replicated observations, the model value plus observation error of the problem's error model.
    """
    obs = problem.observations()
    n_ens, n_draw = thetas.shape[:2]
    n_soc, n_c14 = obs["soc"].size, obs["f14c"].size
    grid_site = np.concatenate([np.full(p.model.n_layers, p.obs.site_id) for p in problem.sites]).astype(str)
    grid_mid = np.concatenate([p.model.grid.mid_cm for p in problem.sites])
    n_grid = grid_mid.size
    ll_soc = np.full((n_ens, n_draw, n_soc), np.nan)
    ll_c14 = np.full((n_ens, n_draw, n_c14), np.nan)
    pp_soc = np.full((n_ens, n_draw, n_soc), np.nan)
    pp_c14 = np.full((n_ens, n_draw, n_c14), np.nan)
    pp_soc_grid = np.full((n_ens, n_draw, n_grid), np.nan)
    pp_c14_grid = np.full((n_ens, n_draw, n_grid), np.nan)
    rep_soc, rep_c14 = np.full_like(pp_soc, np.nan), np.full_like(pp_c14, np.nan)
    rng = np.random.default_rng(seed)
    n_failed = 0
    solved = None
    if scheduler is not None and not problem.warm_start:
        solved = _predict_on_cluster(problem, thetas, scheduler)
    for c in range(n_ens):
        for d in range(n_draw):
            if solved is not None:
                pred = list(solved[c, d])
            else:
                pred = [problem.predict_site(s, thetas[c, d, s]) for s in range(len(problem.sites))]
            if any(q is None for q in pred):
                n_failed += 1
                continue
            pp_soc[c, d] = np.concatenate([q.soc for q in pred])
            pp_c14[c, d] = np.concatenate([q.f14c[p.c14_index] for p, q in zip(problem.sites, pred, strict=True)])
            if new_site:
                ll_soc[c, d] = problem.pointwise_log_predictive_density("soc", pp_soc[c, d], new_site=True)
                if n_c14:
                    ll_c14[c, d] = problem.pointwise_log_predictive_density("f14c", pp_c14[c, d], new_site=True)
            else:
                pw = problem.pointwise_from_predictions(pred)
                ll_soc[c, d] = pw["soc"]
                ll_c14[c, d] = pw["f14c"]
            rep_soc[c, d] = problem.sample_observation_noise("soc", pp_soc[c, d], rng, new_site=new_site)
            if n_c14:
                rep_c14[c, d] = problem.sample_observation_noise("f14c", pp_c14[c, d], rng, new_site=new_site)
            pp_soc_grid[c, d] = np.concatenate([q.soc_grid for q in pred])
            pp_c14_grid[c, d] = np.concatenate([q.f14c_grid for q in pred])

    soc_unit = "mg C cm-3" if problem.soc_unit == "mg_cm3" else "g C kg-1"
    soc_c, c14_c = _obs_coords(obs, "soc"), _obs_coords({**obs, "f14c": obs["f14c"]}, "f14c")
    log_lik = xr.Dataset({"soc": (("chain", "draw", "soc_obs"), ll_soc)}, coords={**sample, **soc_c})
    observed = xr.Dataset({"soc": ("soc_obs", obs["soc"], {"units": soc_unit})}, coords=soc_c)
    pp = xr.Dataset(
        {
            "soc": (("chain", "draw", "soc_obs"), pp_soc, {"units": soc_unit}),
            "soc_observed": (("chain", "draw", "soc_obs"), rep_soc, {"units": soc_unit, "long_name": _REPLICATED}),
            "soc_grid": (("chain", "draw", "grid_point"), pp_soc_grid, {"units": "mg C cm-3"}),
            "f14c_grid": (("chain", "draw", "grid_point"), pp_c14_grid, {"units": "1"}),
        },
        coords={
            **sample,
            **soc_c,
            "grid_point": np.arange(n_grid),
            "grid_site": ("grid_point", grid_site),
            "grid_mid_cm": ("grid_point", grid_mid),
        },
    )
    if n_c14:
        log_lik["f14c"] = xr.DataArray(ll_c14, dims=("chain", "draw", "c14_obs"), coords={**sample, **c14_c})
        observed["f14c"] = xr.DataArray(obs["f14c"], dims=("c14_obs",), coords=c14_c, attrs={"units": "1"})
        pp["f14c"] = xr.DataArray(
            pp_c14, dims=("chain", "draw", "c14_obs"), coords={**sample, **c14_c}, attrs={"units": "1"}
        )
        pp["f14c_observed"] = xr.DataArray(
            rep_c14,
            dims=("chain", "draw", "c14_obs"),
            coords={**sample, **c14_c},
            attrs={"units": "1", "long_name": _REPLICATED},
        )
    pp.attrs["observation_error"] = f"error model {problem.error_model.name!r}, " + (
        "new sites (κ from its prior)" if new_site else "own sites"
    )
    return log_lik, observed, pp, n_failed


def add_site_predictive(dt: xr.DataTree, problem, *, max_draws: int = 200, scheduler=None) -> xr.DataTree:
    """Posterior predictive of the calibration sites of a hierarchical result, each site with its own θ_s.

    Works on the two-stage and the PyMC hierarchical results (``posterior/theta_site`` with dims chain,
    draw, site, parameter). The draws are thinned evenly to at most ``max_draws`` in total; the added groups
    ``log_likelihood``, ``observed_data`` and ``posterior_predictive`` have the layout of
    :func:`build_datatree` (so :func:`~bayes_vmimics.plotting.plot_profiles` and :func:`fit_metrics_table`
    work on them). New sites of a forest type:
    :func:`~bayes_vmimics.inference.pymc_models.predict_new_site`.

    Args:
        dt: hierarchical result (–).
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` of the result's sites, in any
            order (–).
        max_draws: at most this many posterior draws in total (count).
        scheduler: None (solve here), or a Dask cluster that solves blocks of draws per site as tasks (cold
            solves only; same result) (:class:`~bayes_vmimics.scheduler.DaskScheduler` or a
            ``dask.distributed.Client``) (–).

    Returns:
        A new DataTree: ``dt``'s groups plus the three predictive groups; attribute ``n_failed_predictive``
        counts draws whose steady state did not converge (NaN there), ``soc_unit`` the SOC unit.

    Raises:
        ValueError: ``dt`` has no ``theta_site``, or its sites and the problem's differ.
    """
    post = dt["posterior"]
    if "theta_site" not in post.data_vars:
        raise ValueError("the result has no posterior 'theta_site' (not a hierarchical result)")
    if max_draws < 1:
        raise ValueError(f"max_draws must be ≥ 1, got {max_draws}")
    th = post["theta_site"].transpose("chain", "draw", "site", "parameter")
    sites_dt = [str(v) for v in th["site"].values]
    missing, extra = sorted(set(sites_dt) - set(problem.site_ids)), sorted(set(problem.site_ids) - set(sites_dt))
    if missing or extra:
        raise ValueError(f"the problem's sites must be the result's: missing {missing}, not in the result {extra}")
    th = th.sel(site=list(problem.site_ids))
    idx = _thinned_draws(th.sizes["chain"], th.sizes["draw"], max_draws)
    thetas = th.isel(draw=idx).values
    sample = {"chain": th["chain"].values, "draw": th["draw"].values[idx]}
    log_lik, observed, pp, n_failed = _predictive_groups(problem, thetas, sample, scheduler=scheduler)
    groups = {node.path: node.to_dataset(inherit=False) for node in dt.subtree}
    groups.update({"log_likelihood": log_lik, "observed_data": observed, "posterior_predictive": pp})
    out = xr.DataTree.from_dict(groups)
    out.attrs = {**dt.attrs, "soc_unit": observed["soc"].attrs["units"], "n_failed_predictive": n_failed}
    return out


def _thinned_draws(n_chain: int, n_draw: int, max_draws: int) -> np.ndarray:
    """Indices of evenly spaced draws, the same in every chain, at most ``max_draws`` over all chains."""
    per_chain = max(1, min(n_draw, max_draws // n_chain))
    return np.unique(np.linspace(0, n_draw - 1, per_chain).round().astype(int))


def _held_out_tree(
    problem, th, sample: dict, forest_types, *, seed: int, population: str, scheduler=None
) -> xr.DataTree:
    """The DataTree of a held-out prediction from per-site θ draws (chain, draw, site, 7): the site parameters,
    the pointwise log-likelihood, the observed data and the posterior predictive (with observation error of a
    new site); solved here or on ``scheduler`` (see :func:`_predictive_groups`)."""
    log_lik, observed, pp, n_failed = _predictive_groups(
        problem, th, sample, new_site=True, seed=seed, scheduler=scheduler
    )
    theta = xr.Dataset(
        {"theta_site": (("chain", "draw", "site", "parameter"), th)},
        coords={
            **sample,
            "site": list(problem.site_ids),
            "parameter": list(PARAMETER_NAMES),
            "forest_type": ("site", forest_types),
        },
    )
    out = xr.DataTree.from_dict(
        {"posterior": theta, "log_likelihood": log_lik, "observed_data": observed, "posterior_predictive": pp}
    )
    out.attrs = {
        "held_out_forest_types": ",".join(dict.fromkeys(forest_types)),
        "soc_unit": observed["soc"].attrs["units"],
        "n_failed_predictive": n_failed,
        "seed": int(seed),
        "population": population,
    }
    return out


def add_held_out_predictive(
    dt: xr.DataTree, problem, forest_types, *, max_draws: int = 200, seed: int = 0, covariates=None, scheduler=None
) -> xr.DataTree:
    """Posterior predictive of held-out sites from a hierarchical result: the basis of predictive validation.

    Each held-out site is a *new* site of its forest type t: at every kept posterior draw its parameters are
    drawn from the population, θ = box(sigmoid(μ_t + σ_t η)), η ~ N(0, I), independently per site and draw
    (:func:`~bayes_vmimics.population.sample_new_site_parameters`), and its steady state is solved
    with its own forcing. Nothing of the held-out data enters; the prediction uses only what the calibration
    sites taught about the forest type. Works on two-stage, PyMC and emcee hierarchical results.

    Args:
        dt: hierarchical result with ``posterior`` ``mu`` and ``sigma`` (chain, draw, forest_type, parameter)
            (logit units) (–).
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` of the held-out sites; none of them
            may be a calibration site of ``dt`` (–).
        forest_types: forest type of each held-out site, in the problem's order; each must be in ``dt`` (–).
        max_draws: at most this many posterior draws in total (count).
        seed: seed of the new sites' population draws (integer).
        covariates: for a regression population (``posterior`` with ``beta``; issue 20), the held-out sites'
            covariates standardised with the result's scaler, shape (n_sites, J), in the problem's order: their
            parameters are then drawn from the regression at their covariates, θ = box(sigmoid(μ_t + x_s B_t +
            σ_t η)) (:func:`~bayes_vmimics.population_regression.sample_new_site_parameters_regression`); must be
            None for a population without covariates (standardised units).
        scheduler: None (solve here), or a Dask cluster that solves blocks of draws per site as tasks (cold
            solves only; same result) (:class:`~bayes_vmimics.scheduler.DaskScheduler` or a
            ``dask.distributed.Client``) (–).

    Returns:
        A DataTree in the layout of :func:`build_datatree` (so :func:`fit_metrics_table`,
        :func:`held_out_scores` and :func:`~bayes_vmimics.plotting.plot_profiles` work on it): ``posterior``
        with ``theta_site`` (chain, draw, site, parameter) (parameter units), the drawn parameters of the
        held-out sites; ``log_likelihood`` (the held-out data's pointwise log predictive density per draw);
        ``observed_data``; ``posterior_predictive``. Attributes: ``held_out_forest_types``, ``soc_unit``,
        ``n_failed_predictive`` (draws whose steady state failed at some site; NaN there).

    Raises:
        ValueError: no population (not a hierarchical result), a forest type the result lacks, a held-out
            site that is a calibration site of the result, or ``forest_types`` of the wrong length.
    """
    from .population import sample_new_site_parameters

    post = dt["posterior"]
    if "mu" not in post.data_vars or "sigma" not in post.data_vars:
        raise ValueError("the result has no population 'mu'/'sigma' (not a hierarchical result)")
    if max_draws < 1:
        raise ValueError(f"max_draws must be ≥ 1, got {max_draws}")
    forest_types = [str(t) for t in forest_types]
    if len(forest_types) != len(problem.sites):
        raise ValueError(f"{len(forest_types)} forest types for {len(problem.sites)} held-out sites")
    if "theta_site" in post.data_vars:
        both = sorted(set(problem.site_ids) & {str(v) for v in post["site"].values})
        if both:
            raise ValueError(f"held-out site(s) {both} are calibration sites of the result: nothing is held out")
    regression = "beta" in post.data_vars
    if regression and covariates is None:
        raise ValueError(
            "the result is a regression population (posterior 'beta'): give the held-out sites' covariates"
        )
    if not regression and covariates is not None:
        raise ValueError("covariates given, but the result is a population without covariates (no 'beta')")
    rng = np.random.default_rng(seed)
    idx = _thinned_draws(post.sizes["chain"], post.sizes["draw"], max_draws)
    if regression:
        from .population_regression import sample_new_site_parameters_regression

        x = np.asarray(getattr(covariates, "X", covariates), dtype=float)
        if x.ndim != 2 or x.shape[0] != len(problem.sites):
            raise ValueError(f"covariates must have one row per held-out site ({len(problem.sites)}), got {x.shape}")
        th = sample_new_site_parameters_regression(dt, forest_types, x, problem.prior, rng)[:, idx]
    else:
        # one independent population draw per site and posterior draw; sample_new_site_parameters names the
        # forest types the result lacks
        th = np.stack(
            [sample_new_site_parameters(dt, t, problem.prior, rng).isel(draw=idx).values for t in forest_types],
            axis=2,
        )
    sample = {"chain": post["chain"].values, "draw": post["draw"].values[idx]}
    population = "regression on covariates" if regression else "forest type"
    return _held_out_tree(problem, th, sample, forest_types, seed=seed, population=population, scheduler=scheduler)


#: Why held-out SOC is scored in mg C cm⁻³, not the paper's g C kg⁻¹ (P Table 4); also a column of the scores.
SOC_UNIT_NOTE = (
    "SOC in mg C cm-3, the unit the likelihood compares (P Eq 15); g C kg-1 would need the bulk density, which "
    "is missing or filled for many layers"
)


def held_out_scores(dt: xr.DataTree, problem, *, seed: int = 0, new_site: bool = True) -> pd.DataFrame:
    """Scores of a posterior predictive against its data, per variable (SOC, F14C), under the problem's error
    model (:func:`~bayes_vmimics.scoring.score_predictions`, the one code path of every kind of result): the
    paper's fit metrics of the predictive median (RMSE, BIC, a, b, r²), plus

    - ``lppd``: log pointwise predictive density per observation, mean over observations: log of the
      predictive density averaged over the draws (draws whose steady state failed are left out) (nats);
    - ``coverage_50``, ``coverage_90``: share of observations inside the central 50 % and 90 % predictive
      intervals, which include the observation error of the problem's error model (a new site's κ from its
      prior under the site-scale discrepancy). A calibrated prediction covers 50 % and 90 % (–);
    - ``n_sites``, ``n_obs``, ``n_draws``, ``n_failed_draws`` (count); ``unit`` and, for SOC, ``note`` (why
      mg C cm⁻³).

    Args:
        dt: the result of :func:`add_held_out_predictive` (or :func:`add_site_predictive`, :func:`build_datatree`,
            :func:`add_shared_held_out_predictive`) (–).
        problem: the problem of the same sites, in the same order, for the data and the error model (–).
        seed: seed of the observation-error draws of the intervals (integer).
        new_site: the sites are new to the result (held out, True) or its own calibration sites (bool).

    Raises:
        ValueError: the predictive and the problem have different observations.
    """
    from .scoring import score_predictions

    table = score_predictions(problem, _predictive_draws(dt, problem), seed=seed, new_site=new_site)
    unit = dt.attrs.get("soc_unit", "mg C cm-3")
    table["unit"] = [unit if v == "soc" else "1 (F14C)" for v in table.index]
    table["note"] = [SOC_UNIT_NOTE if v == "soc" and unit == "mg C cm-3" else "" for v in table.index]
    return table


def _predictive_draws(dt: xr.DataTree, problem) -> dict[str, np.ndarray]:
    """The posterior predictive of ``dt`` as ``{"soc": (n_draws, n_soc), "f14c": …}``, checked against the
    problem's observations."""
    obs = problem.observations()
    preds = {}
    for var in ("soc", "f14c"):
        n = obs[var].size
        if var not in dt["posterior_predictive"].data_vars:
            if n:
                raise ValueError(f"the predictive has no {var!r} but the problem has {n} {var} observations")
            preds[var] = np.empty((1, 0))
            continue
        pred = dt["posterior_predictive"][var].transpose("chain", "draw", ...).values
        if pred.shape[-1] != n or not np.array_equal(dt["observed_data"][var].values, obs[var]):
            raise ValueError(f"the predictive's {var} observations are not the problem's: give the same sites")
        preds[var] = pred.reshape(-1, n)
    return preds


def held_out_by_depth(dt: xr.DataTree, problem, *, seed: int = 0, new_site: bool = True) -> pd.DataFrame:
    """:func:`held_out_scores` broken down by depth band, with the side of the misses
    (:func:`~bayes_vmimics.scoring.score_by_depth`: median ratio of predictive median to observed, 50/90 %
    coverage and the shares of observations above and below each interval; depths in cm).

    Args:
        dt, problem, seed, new_site: as :func:`held_out_scores`.
    """
    from .scoring import score_by_depth

    return score_by_depth(problem, _predictive_draws(dt, problem), seed=seed, new_site=new_site)


def add_shared_held_out_predictive(
    problem, thetas, forest_types, *, kind: str, max_draws: int = 200, seed: int = 0, scheduler=None
) -> xr.DataTree:
    """Posterior predictive of held-out sites from a point estimate or a pooled posterior: every site gets the
    same θ at each draw (the result's own), solved with its own forcing.

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` of the held-out sites (–).
        thetas: θ draws, shape (n_chain, n_draw, 7), or (7,) for a point estimate (parameter units).
        forest_types: forest type of each held-out site, in the problem's order (–).
        kind: what the draws are, e.g. "point estimate" or "pooled posterior" (recorded) (–).
        max_draws: at most this many draws in total (count).
        seed: seed of the replicated observations (integer).
        scheduler: as in :func:`add_held_out_predictive` (–).

    Returns:
        A DataTree in the layout of :func:`add_held_out_predictive` (``posterior/theta_site``; the held-out
        data's log predictive density under the error model for a new site in ``log_likelihood``).
    """
    th = np.asarray(thetas, dtype=float)
    if th.ndim == 1:
        th = th[None, None, :]
    if th.ndim != 3 or th.shape[-1] != len(PARAMETER_NAMES):
        raise ValueError(f"thetas must have shape (n_chain, n_draw, {len(PARAMETER_NAMES)}) or (7,), got {th.shape}")
    if not np.all(np.isfinite(th)):
        raise ValueError("thetas hold non-finite values")
    forest_types = [str(t) for t in forest_types]
    if len(forest_types) != len(problem.sites):
        raise ValueError(f"{len(forest_types)} forest types for {len(problem.sites)} held-out sites")
    idx = _thinned_draws(th.shape[0], th.shape[1], max_draws)
    th = th[:, idx]
    per_site = np.broadcast_to(th[:, :, None, :], (*th.shape[:2], len(problem.sites), th.shape[-1])).copy()
    sample = {"chain": np.arange(th.shape[0]), "draw": idx}
    out = _held_out_tree(problem, per_site, sample, forest_types, seed=seed, population=kind, scheduler=scheduler)
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
        from .diagnostics import result_verdict

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
    """Text report: the convergence verdict (first line, :func:`~bayes_vmimics.diagnostics.result_verdict`),
    summary table, x_v–x_K correlation, fit metrics, convergence and failure counts."""
    from .diagnostics import result_verdict

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
