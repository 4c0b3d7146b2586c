"""Posterior predictive groups of a result, and their scores: the calibration sites of a hierarchical result
each at its own θ (:func:`add_site_predictive`), held-out sites as new sites of their population
(:func:`add_held_out_predictive`) or at a shared θ (:func:`add_shared_held_out_predictive`), and the held-out
scores (:func:`held_out_scores`, :func:`held_out_by_depth`).

The groups ``log_likelihood``, ``observed_data`` and ``posterior_predictive`` have the layout of
:func:`~bayes_vmimics.results.build_datatree` (see :mod:`bayes_vmimics.results`), which builds them with the same
code (:func:`_predictive_groups`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .parameters import PARAMETER_NAMES


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
    :class:`~bayes_vmimics.site_evaluation.SitePrediction` without the solver's state (the predictive groups do not
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
    :func:`~bayes_vmimics.results.build_datatree` (so :func:`~bayes_vmimics.plotting.plot_profiles` and
    :func:`~bayes_vmimics.results.fit_metrics_table` work on them). New sites of a forest type:
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
        A DataTree in the layout of :func:`~bayes_vmimics.results.build_datatree` (so
        :func:`~bayes_vmimics.results.fit_metrics_table`, :func:`held_out_scores` and
        :func:`~bayes_vmimics.plotting.plot_profiles` work on it): ``posterior`` with ``theta_site``
        (chain, draw, site, parameter) (parameter units), the drawn parameters of the held-out sites;
        ``log_likelihood`` (the held-out data's pointwise log predictive density per draw);
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
        dt: the result of :func:`add_held_out_predictive` (or :func:`add_site_predictive`,
            :func:`~bayes_vmimics.results.build_datatree`, :func:`add_shared_held_out_predictive`) (–).
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
