"""Global sensitivity analyses of the paper (P §2.3, Figs 2, 7, 8) and a variance-based analysis beyond it.

What it computes, per site of a :class:`~bayes_vmimics.likelihood.CalibrationProblem`:

- **Morris screening** (P §2.3, Fig 2): SALib's Morris design on the Table 1 box (4 levels, 50 trajectories,
  Δ = 2/3 of the range: 400 runs for 7 parameters) and SALib's analysis, of the costs J₁ (SOC, P Eq 15) and
  J₂ (¹⁴C, P Eq 16) separately: μ, μ*, σ and the paper's importance θ_m = √(μ_m² + σ_m²)/σ, with σ the
  standard deviation of √(μ_m² + σ_m²) over the parameters (:func:`paper_importance`).
- **Sobol' indices** (beyond the paper): first and total order with bootstrap confidence intervals (SALib's
  Saltelli/Sobol' sequence design and ``sobol`` analysis) of J₁, J₂ and of the modelled SOC and F14C in the
  layers holding chosen depths.
- **The same under the posterior**: parameters are the posterior draws of a calibration result, which are
  correlated (x_v with x_K above all). The pick-freeze (Saltelli) estimators need independent inputs: their
  resampled rows would combine the x_v of one draw with the x_K of another, i.e. leave the posterior. So the
  posterior variant evaluates the model at the draws themselves and estimates from these given data the
  first-order index S1 = Var(E[Y|θ_i])/Var(Y) (SALib's ``rbd_fast`` on the sample; under dependence S1
  includes what θ_i carries of its correlated partners), optionally with Borgonovo's moment-independent δ
  (SALib's ``delta``, slow), each with bootstrap intervals. Total indices are not defined without a
  conditional sampler and are not reported.
- **±25 % profiles** (P Fig 7): steady-state SOC profile at calibrated parameters and with x_D, α_v, α_r
  each ×0.75 and ×1.25 (:func:`perturbed_profiles`).
- **Input-response curves** (P Fig 8): SOC in the layers at 15 and 35 cm against a relative change of the
  root litter input and of V, diffusion off (:func:`response_curves`).

Costs are the paper's own definition (P Eqs 14–16), computed here from the model's predictions, whatever the
problem's error model: J₁ = Σᵢ (C_obs,i − C_mod,i)²/s₁², s₁ = 0.1·C_obs,i (mg C cm⁻³);
J₂ = λ Σⱼ (F_obs,j − F_mod,j)²/s₂², s₂ = 0.1·F_obs,j, λ = 5 (λ once, spec A14).

Failed steady states. A design point whose steady state (or ¹⁴C run) fails gives NaN outputs (every run is a
cold spin-up, so there is no warm start to retry from). They are counted (``n_failed``) and handled so that
SALib gets a complete design: Morris drops the whole trajectory holding the point (``n_dropped``), Sobol' drops
the whole block of the base sample (its D + 2 rows), the posterior variant drops the draw. Outputs that are
NaN everywhere (J₂ at a site without ¹⁴C) are skipped.

Every model run is a cold spin-up (whatever the problem's ``warm_start``), so the outputs depend on θ only, not
on how the design was split between processes: the results are reproducible from the seed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .constants import C14_WEIGHT, REL_ERROR, SOC_POOLS
from .interrupt import deferred_interrupt, ignore_sigint
from .io.parameters import table3_parameters
from .parameters import PARAMETER_NAMES, TABLE1
from .steady_state import solve_site

#: Relative observation error of the paper's cost, s = 0.1 · observed value (P after Eq 16) (–).
PAPER_REL_ERROR = REL_ERROR
#: λ of the paper's cost, applied once to the ¹⁴C term (P §2.3.1; spec A14) (–).
PAPER_LAMBDA = C14_WEIGHT
#: Depths whose layers' modelled SOC and F14C are analysed besides the costs (cm).
DEFAULT_DEPTHS_CM = (15.0, 35.0, 75.0)
#: The three process parameters of P Fig 7.
PROFILE_PARAMETERS = ("x_D", "alpha_v", "alpha_r")
#: Relative changes of P Fig 7 (–).
PROFILE_CHANGES = (-0.25, 0.25)
#: x_D standing for "diffusion off" in P Fig 8: the lower bound of Table 1 (transport time scale of a 5 cm layer
#: ~25 yr / x_D ≈ 2500 yr). The model needs x_D > 0, and the steady-state solver needs thousands of iterations
#: (4–10 s a solve) at x_D = 1e-4 or 1e-6 and fails at 1e-9. Measured at the EBF site he2016_109 with Table 3
#: parameters: SOC in the 15–20 cm layer 25.72 (x_D = 0.01) against 25.73 (1e-6) mg C cm⁻³, in the 35–40 cm
#: layer 29.4 against 31.7 (7 % lower) (dimensionless).
X_D_OFF = 0.01
#: Paper settings of the Morris design (P §2.3): levels, trajectories (count).
MORRIS_LEVELS = 4
MORRIS_TRAJECTORIES = 50
#: Parameter-name prefix of a control parameter that does not enter the model (e.g. ``dummy``).
DUMMY_PREFIX = "dummy"

MapFn = Callable[[Callable, Iterable], Iterable]


# ----------------------------------------------------------------------------- costs and outputs
def paper_costs(obs, prediction, *, rel_error: float = PAPER_REL_ERROR, c14_weight: float = PAPER_LAMBDA):
    """The paper's costs J₁ and J₂ of one site (P Eqs 15, 16; λ once, spec A14).

    Args:
        obs: the site's :class:`~bayes_vmimics.likelihood.SiteObservations` (–).
        prediction: its :class:`~bayes_vmimics.likelihood.SitePrediction` at the observed intervals (–).
        rel_error: s as a fraction of each observed value (–).
        c14_weight: λ (–).

    Returns:
        (J₁, J₂) (dimensionless); J₂ is NaN when the site has no F14C observation or no simulated F14C.
    """
    c_obs = np.asarray(obs.soc_mg_cm3, float)
    j1 = float(np.sum(((c_obs - prediction.soc_mg_cm3) / (rel_error * c_obs)) ** 2))
    j2 = np.nan
    if obs.f14c is not None:
        ok = np.isfinite(obs.f14c)
        if ok.any():
            f_obs = obs.f14c[ok]
            f_mod = np.asarray(prediction.f14c, float)[ok]
            if np.all(np.isfinite(f_mod)):
                j2 = float(c14_weight * np.sum(((f_obs - f_mod) / (rel_error * f_obs)) ** 2))
    return j1, j2


def layer_index(edges_cm, depth_cm: float) -> int:
    """Index of the layer holding ``depth_cm`` (top ≤ depth < bottom).

    Args:
        edges_cm: layer edges from the surface down, shape (n_layers + 1,) (cm).
        depth_cm: depth below the mineral surface (cm).

    Raises:
        ValueError: the depth is outside the grid.
    """
    edges = np.asarray(edges_cm, float)
    if not edges[0] <= depth_cm < edges[-1]:
        raise ValueError(f"depth {depth_cm:g} cm is outside the model grid [{edges[0]:g}, {edges[-1]:g}) cm")
    return int(np.searchsorted(edges, depth_cm, side="right") - 1)


def output_names(depths_cm: Sequence[float] = DEFAULT_DEPTHS_CM) -> list[str]:
    """Names of the analysed outputs: ``J1``, ``J2``, ``soc_<d>cm`` and ``f14c_<d>cm`` per depth."""
    return ["J1", "J2", *(f"soc_{d:g}cm" for d in depths_cm), *(f"f14c_{d:g}cm" for d in depths_cm)]


def _site_subproblem(problem, index: int):
    """A shallow copy of ``problem`` holding site ``index`` alone (so that a worker receives one site)."""
    from .likelihood import EvaluationStats

    sub = copy.copy(problem)
    sub.sites = [problem.sites[int(index)]]
    sub.stats = EvaluationStats()
    # cold spin-ups only: an output then depends on θ alone, not on the runs before it in the same process
    # (measured on 80 Morris points: warm starts were not faster, 11.4 s against 8.8 s cold)
    sub.warm_start = False
    return sub


class SiteEvaluator:
    """The outputs of one site for rows of a design: a picklable ``f(X) → Y`` for :func:`evaluate_design`.

    Columns of X are the parameters named in ``names`` (any order, any subset of ``PARAMETER_NAMES``, plus
    control parameters whose name starts with ``dummy`` that do not enter the model); parameters not named
    keep their value in ``base_theta``.

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` (–).
        index: the site's position in ``problem.sites`` (count).
        names: parameter name of each column of X (–).
        base_theta: values of the parameters not in ``names``, in ``PARAMETER_NAMES`` order (parameter units);
            default the Table 1 defaults.
        depths_cm: depths whose layers' SOC and F14C are returned besides J₁ and J₂ (cm).
        rel_error: s of the costs as a fraction of the observed value (–).
        c14_weight: λ of the costs (–).
    """

    def __init__(
        self,
        problem,
        index: int,
        names: Sequence[str] = PARAMETER_NAMES,
        *,
        base_theta=None,
        depths_cm: Sequence[float] = DEFAULT_DEPTHS_CM,
        rel_error: float = PAPER_REL_ERROR,
        c14_weight: float = PAPER_LAMBDA,
    ) -> None:
        self.names = _check_names(names, model=True)
        self.columns = [PARAMETER_NAMES.index(n) if n in PARAMETER_NAMES else -1 for n in self.names]
        self.base_theta = (
            np.array([TABLE1[n][2] for n in PARAMETER_NAMES])
            if base_theta is None
            else np.asarray(base_theta, float).copy()
        )
        if self.base_theta.shape != (len(PARAMETER_NAMES),):
            raise ValueError(f"base_theta must hold {len(PARAMETER_NAMES)} values {PARAMETER_NAMES}")
        self.problem = _site_subproblem(problem, index)
        p = self.problem.sites[0]
        self.site_id = p.obs.site_id
        self.depths_cm = tuple(float(d) for d in depths_cm)
        self.layers = [layer_index(p.model.grid.edges_cm, d) for d in self.depths_cm]
        self.rel_error = float(rel_error)
        self.c14_weight = float(c14_weight)
        self.output_names = output_names(self.depths_cm)

    def theta(self, row) -> np.ndarray:
        """The full parameter vector of a design row (parameter units)."""
        th = self.base_theta.copy()
        for col, value in zip(self.columns, np.asarray(row, float), strict=True):
            if col >= 0:
                th[col] = value
        return th

    def _one(self, theta) -> np.ndarray:
        prob = self.problem
        q = prob.predict_site(0, theta)
        y = np.full(len(self.output_names), np.nan)
        if q is None:
            return y
        obs = prob.sites[0].obs
        y[0], y[1] = paper_costs(obs, q, rel_error=self.rel_error, c14_weight=self.c14_weight)
        n = len(self.layers)
        y[2 : 2 + n] = q.soc_grid[self.layers]
        y[2 + n :] = q.f14c_grid[self.layers]
        return y

    def __call__(self, X) -> np.ndarray:
        """Outputs (n_rows, n_outputs) of the rows of X (n_rows, len(names)); NaN rows where the model failed."""
        X = np.atleast_2d(np.asarray(X, float))
        return np.stack([self._one(self.theta(row)) for row in X]) if len(X) else np.empty((0, len(self.output_names)))


def _check_names(names, *, model: bool = False) -> tuple[str, ...]:
    """Distinct names; for the model (``model=True``) each a parameter or a dummy."""
    names = tuple(str(n) for n in names)
    bad = [n for n in names if n not in PARAMETER_NAMES and not n.startswith(DUMMY_PREFIX)]
    if model and bad:
        raise ValueError(f"unknown parameter name(s) {bad}; known: {list(PARAMETER_NAMES)} and '{DUMMY_PREFIX}…'")
    if len(set(names)) != len(names):
        raise ValueError(f"parameter names must be distinct, got {list(names)}")
    if not names:
        raise ValueError("at least one parameter is needed")
    return names


def default_bounds(names: Sequence[str]) -> np.ndarray:
    """Table 1 ranges of ``names`` (a dummy gets [0, 1]), shape (n, 2) (parameter units).

    Raises:
        ValueError: a name that is neither a model parameter nor a dummy (give its bounds).
    """
    bad = [n for n in names if n not in PARAMETER_NAMES and not n.startswith(DUMMY_PREFIX)]
    if bad:
        raise ValueError(f"no Table 1 range for {bad}: give bounds")
    return np.array([TABLE1[n][:2] if n in PARAMETER_NAMES else (0.0, 1.0) for n in names], float)


# ----------------------------------------------------------------------------- parallel evaluation
def _apply(args):
    func, X = args
    return func(X)


@contextlib.contextmanager
def process_map(n_processes: int = 1):
    """A ``map_fn`` over ``n_processes`` worker processes (a ``multiprocessing.Pool`` whose workers ignore
    SIGINT, so Ctrl-C stops the parent cleanly), or the built-in ``map`` for one process.

    Args:
        n_processes: worker processes (count).

    Yields:
        ``map_fn(func, iterable)`` returning results in order (``Pool.imap``).
    """
    if n_processes <= 1:
        yield map
        return
    with Pool(int(n_processes), initializer=ignore_sigint) as pool:
        yield pool.imap


def dask_map(scheduler) -> MapFn:
    """A ``map_fn`` whose tasks (chunks of design rows) run on a Dask cluster: the equivalent of
    :func:`process_map` there. Results come back in order; at most about twice the cluster's threads of chunks
    are in flight at a time (:meth:`~bayes_vmimics.scheduler.DaskScheduler.imap`). Every run is a cold spin-up, so
    the outputs equal those of the process pool.

    Args:
        scheduler: a :class:`~bayes_vmimics.scheduler.DaskScheduler` or a ``dask.distributed.Client`` (–).

    Returns:
        ``map_fn(func, iterable)`` returning results in order.
    """
    from .scheduler import as_scheduler

    sched = as_scheduler(scheduler)
    if sched is None:
        raise ValueError("dask_map needs a Dask scheduler or client, got None (use process_map for the local pool)")
    return sched.imap


def evaluate_design(
    func: Callable[[np.ndarray], np.ndarray],
    X,
    *,
    map_fn: MapFn | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    desc: str = "runs",
) -> np.ndarray:
    """``func`` on the rows of a design, in chunks, through ``map_fn``.

    Args:
        func: picklable ``f(X_chunk) → Y_chunk`` with Y of shape (n_rows,) or (n_rows, n_outputs), e.g. a
            :class:`SiteEvaluator` or an analytic test function (–).
        X: the design, shape (n_rows, n_parameters) (parameter units).
        map_fn: ``map_fn(func, iterable)`` returning results in order: ``map`` (default), ``Pool.imap``
            (:func:`process_map`), or chunks as tasks on a Dask cluster (:func:`dask_map`) (–).
        chunk_size: rows per task (count); default about 8 tasks per worker, at most 64 rows.
        progress: show a progress bar (bool).
        desc: the bar's label (–).

    Returns:
        Y, shape (n_rows, n_outputs).
    """
    from .progress import progress_bar

    X = np.atleast_2d(np.asarray(X, float))
    n = len(X)
    map_fn = map if map_fn is None else map_fn
    if chunk_size is None:
        chunk_size = max(1, min(64, math.ceil(n / 16)))
    chunks = [X[i : i + chunk_size] for i in range(0, n, chunk_size)]
    out = []
    with progress_bar(total=n, desc=desc, unit="run", disable=not progress, leave=False) as bar:
        for y in map_fn(_apply, ((func, c) for c in chunks)):
            y = np.asarray(y, float)
            out.append(y.reshape(len(y), -1))
            bar.update(len(y))
    return np.concatenate(out) if out else np.empty((0, 0))


# ----------------------------------------------------------------------------- Morris
def _salib_problem(names, bounds) -> dict:
    return {"num_vars": len(names), "names": list(names), "bounds": np.asarray(bounds, float).tolist()}


def morris_design(
    names: Sequence[str] = PARAMETER_NAMES,
    bounds=None,
    *,
    n_trajectories: int = MORRIS_TRAJECTORIES,
    num_levels: int = MORRIS_LEVELS,
    seed: int = 0,
) -> np.ndarray:
    """SALib's Morris design (P §2.3: 4 levels, 50 trajectories, Δ = levels/(2(levels − 1)) = 2/3 of the range).

    Args:
        names: the parameters (–).
        bounds: (n, 2) ranges (parameter units); default Table 1.
        n_trajectories: trajectories (count).
        num_levels: grid levels (count).
        seed: seed (–).

    Returns:
        X, shape (n_trajectories · (n + 1), n) (parameter units).
    """
    from SALib.sample import morris as morris_sample

    names = _check_names(names)
    bounds = default_bounds(names) if bounds is None else np.asarray(bounds, float)
    return morris_sample.sample(
        _salib_problem(names, bounds), int(n_trajectories), num_levels=int(num_levels), seed=int(seed)
    )


def paper_importance(mu, sigma) -> np.ndarray:
    """The paper's importance θ_m = √(μ_m² + σ_m²)/σ, σ the (population) standard deviation of √(μ_m² + σ_m²)
    over the parameters (P §2.3 after Eq 13; Lu et al. 2013).

    Args:
        mu: mean elementary effect per parameter (output units per fraction of the range).
        sigma: standard deviation of the elementary effects per parameter (same units).

    Returns:
        θ per parameter (dimensionless); NaN if all parameters have the same √(μ² + σ²).
    """
    r = np.hypot(np.asarray(mu, float), np.asarray(sigma, float))
    s = np.std(r)
    return r / s if s > 0 else np.full(r.shape, np.nan)


def morris_indices(
    X,
    Y,
    names: Sequence[str] = PARAMETER_NAMES,
    bounds=None,
    *,
    output_names: Sequence[str] | None = None,
    num_levels: int = MORRIS_LEVELS,
    seed: int = 0,
    num_resamples: int = 1000,
) -> pd.DataFrame:
    """SALib's Morris analysis of each output, with the paper's importance.

    Trajectories holding a NaN output are dropped for that output (counted in ``n_dropped``); an output that is
    NaN everywhere is skipped.

    Args:
        X: the design of :func:`morris_design`, shape (n_rows, n) (parameter units).
        Y: outputs, shape (n_rows,) or (n_rows, n_outputs) (output units).
        names: parameter of each column of X (–).
        bounds: the design's ranges (parameter units); default Table 1.
        output_names: name of each output (–); default ``y0, y1, …``.
        num_levels: the design's levels (count).
        seed: seed of the bootstrap of μ*'s interval (–).
        num_resamples: bootstrap resamples (count).

    Returns:
        Long table: output, parameter, mu, mu_star, sigma, mu_star_conf (95 %), importance (θ, dummies excluded
        from its σ and given NaN), n_trajectories (used), n_dropped.
    """
    from SALib.analyze import morris as morris_analyze

    names = _check_names(names)
    bounds = default_bounds(names) if bounds is None else np.asarray(bounds, float)
    X = np.asarray(X, float)
    Y = np.asarray(Y, float).reshape(len(X), -1)
    output_names = list(output_names) if output_names is not None else [f"y{k}" for k in range(Y.shape[1])]
    d = len(names)
    if len(X) % (d + 1):
        raise ValueError(f"a Morris design has a multiple of n + 1 = {d + 1} rows, got {len(X)}")
    n_traj = len(X) // (d + 1)
    real = np.array([not n.startswith(DUMMY_PREFIX) for n in names])
    rows = []
    for k, name in enumerate(output_names):
        y = Y[:, k].reshape(n_traj, d + 1)
        good = np.all(np.isfinite(y), axis=1)
        if not good.any():
            continue
        keep = np.repeat(good, d + 1)
        res = morris_analyze.analyze(
            _salib_problem(names, bounds),
            X[keep],
            Y[keep, k],
            num_resamples=int(num_resamples),
            num_levels=int(num_levels),
            seed=int(seed),
        )
        mu, sigma = np.asarray(res["mu"]), np.asarray(res["sigma"])
        imp = np.full(d, np.nan)
        imp[real] = paper_importance(mu[real], sigma[real])
        for j, p in enumerate(names):
            rows.append(
                dict(
                    output=name,
                    parameter=p,
                    mu=mu[j],
                    mu_star=np.asarray(res["mu_star"])[j],
                    sigma=sigma[j],
                    mu_star_conf=np.asarray(res["mu_star_conf"])[j],
                    importance=imp[j],
                    n_trajectories=int(good.sum()),
                    n_dropped=int((~good).sum()),
                )
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- Sobol'
def sobol_design(
    names: Sequence[str] = PARAMETER_NAMES, bounds=None, *, n_base: int = 1024, seed: int = 0
) -> np.ndarray:
    """SALib's Sobol'-sequence (Saltelli) design for first and total indices: n_base·(n + 2) rows.

    Args:
        names: the parameters (–).
        bounds: (n, 2) ranges (parameter units); default Table 1.
        n_base: base samples N, a power of 2 for the Sobol' sequence's balance (count).
        seed: seed of the scrambling (–).

    Returns:
        X, shape (n_base · (n + 2), n) (parameter units).
    """
    from SALib.sample import sobol as sobol_sample

    names = _check_names(names)
    if n_base < 2 or n_base & (n_base - 1):
        raise ValueError(f"n_base must be a power of 2 (≥ 2) for the Sobol' sequence, got {n_base}")
    bounds = default_bounds(names) if bounds is None else np.asarray(bounds, float)
    return sobol_sample.sample(_salib_problem(names, bounds), int(n_base), calc_second_order=False, seed=int(seed))


def sobol_indices(
    Y,
    names: Sequence[str] = PARAMETER_NAMES,
    bounds=None,
    *,
    output_names: Sequence[str] | None = None,
    seed: int = 0,
    num_resamples: int = 200,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """SALib's Sobol' analysis (first and total order, bootstrap intervals) of each output of a
    :func:`sobol_design`. Base samples holding a NaN output are dropped (their n + 2 rows; ``n_dropped``).

    Args:
        Y: outputs, shape (n_rows,) or (n_rows, n_outputs) (output units).
        names: the design's parameters (–).
        bounds: the design's ranges (parameter units); default Table 1.
        output_names: name of each output (–).
        seed: seed of the bootstrap (–).
        num_resamples: bootstrap resamples (count).
        conf_level: level of the intervals (–).

    Returns:
        Long table: output, parameter, S1, S1_conf, ST, ST_conf (half-widths), n_base (used), n_dropped.
    """
    from SALib.analyze import sobol as sobol_analyze

    names = _check_names(names)
    bounds = default_bounds(names) if bounds is None else np.asarray(bounds, float)
    d = len(names)
    Y = np.asarray(Y, float)
    Y = Y.reshape(len(Y), -1)
    if len(Y) % (d + 2):
        raise ValueError(f"a Sobol' design without second order has a multiple of n + 2 = {d + 2} rows, got {len(Y)}")
    n_base = len(Y) // (d + 2)
    output_names = list(output_names) if output_names is not None else [f"y{k}" for k in range(Y.shape[1])]
    rows = []
    for k, name in enumerate(output_names):
        y = Y[:, k].reshape(n_base, d + 2)
        good = np.all(np.isfinite(y), axis=1)
        if good.sum() < 2 or np.ptp(y[good]) == 0:
            continue
        res = sobol_analyze.analyze(
            _salib_problem(names, bounds),
            y[good].ravel(),
            calc_second_order=False,
            num_resamples=int(num_resamples),
            conf_level=conf_level,
            seed=int(seed),
        )
        for j, p in enumerate(names):
            rows.append(
                dict(
                    output=name,
                    parameter=p,
                    S1=res["S1"][j],
                    S1_conf=res["S1_conf"][j],
                    ST=res["ST"][j],
                    ST_conf=res["ST_conf"][j],
                    n_base=int(good.sum()),
                    n_dropped=int((~good).sum()),
                )
            )
    return pd.DataFrame(rows)


def given_data_indices(
    X,
    Y,
    names: Sequence[str] = PARAMETER_NAMES,
    *,
    output_names: Sequence[str] | None = None,
    seed: int = 0,
    num_resamples: int = 100,
    conf_level: float = 0.95,
    with_delta: bool = False,
) -> pd.DataFrame:
    """First-order indices from a sample of dependent inputs, e.g. posterior draws ("given data").

    S1_i = Var(E[Y|θ_i])/Var(Y) by SALib's ``rbd_fast`` on the given sample (the sample is ordered by θ_i and
    the first harmonics of Y along that order measure the conditional mean; Plischke 2010). With dependent
    inputs S1_i also holds what θ_i carries of its correlated partners (tested: x₁ with corr 0.9 to the only
    active input gets S1 = 0.81 = 0.9²). Optionally Borgonovo's moment-independent δ by SALib's ``delta``
    (its "raw" variant: the sample bootstrapped as it is, i.e. as the posterior distributes θ), which is slow
    (~1 min per output and 1000 draws). Rows with a NaN output are dropped for that output.

    Args:
        X: input sample, shape (n_rows, n), e.g. posterior draws (parameter units).
        Y: outputs, shape (n_rows,) or (n_rows, n_outputs) (output units).
        names: parameter of each column of X (–).
        output_names: name of each output (–).
        seed: seed of the bootstrap (–).
        num_resamples: bootstrap resamples (count).
        conf_level: level of the intervals (–).
        with_delta: also compute δ (bool).

    Returns:
        Long table: output, parameter, S1, S1_conf, (delta, delta_conf,) n_rows (used), n_dropped.
    """
    from SALib.analyze import rbd_fast

    names = _check_names(names)
    X = np.asarray(X, float)
    Y = np.asarray(Y, float).reshape(len(X), -1)
    output_names = list(output_names) if output_names is not None else [f"y{k}" for k in range(Y.shape[1])]
    bounds = np.stack([X.min(axis=0), X.max(axis=0)], axis=1)
    bounds[:, 1] = np.maximum(bounds[:, 1], bounds[:, 0] + 1e-12)
    rows = []
    for k, name in enumerate(output_names):
        good = np.isfinite(Y[:, k])
        if good.sum() < 20 or np.ptp(Y[good, k]) == 0:
            continue
        prob = _salib_problem(names, bounds)
        res = rbd_fast.analyze(
            prob, X[good], Y[good, k], num_resamples=int(num_resamples), conf_level=conf_level, seed=int(seed)
        )
        dres = None
        if with_delta:
            from SALib.analyze import delta as delta_analyze

            # SALib prints bin-merge and bias notices (the same facts are in its "notes"): keep them quiet
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore", UserWarning)
                dres = delta_analyze.analyze(
                    prob,
                    X[good],
                    Y[good, k],
                    num_resamples=int(num_resamples),
                    conf_level=conf_level,
                    seed=int(seed),
                    method="delta",
                )
        for j, p in enumerate(names):
            row = dict(output=name, parameter=p, S1=float(res["S1"][j]), S1_conf=float(res["S1_conf"][j]))
            if dres is not None:
                row.update(delta=float(dres["delta_raw"][j]), delta_conf=float(dres["delta_raw_conf"][j]))
            row.update(n_rows=int(good.sum()), n_dropped=int((~good).sum()))
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- one analysis, many sites
@dataclass
class SiteAnalysis:
    """The design, outputs and indices of one analysis at one site.

    Attributes:
        site_id: the site (–).
        method: "morris", "sobol" or "posterior" (–).
        X: the design, shape (n_rows, n_parameters) (parameter units).
        Y: the outputs, shape (n_rows, n_outputs) (output units).
        names: parameter of each column of X (–).
        output_names: name of each output (–).
        indices: the long table of :func:`morris_indices`, :func:`sobol_indices` or :func:`given_data_indices`
            (–).
        settings: what produced it (seed, sizes, bounds), for resuming (–).
        seconds: wall time of the model runs (s).
    """

    site_id: str
    method: str
    X: np.ndarray
    Y: np.ndarray
    names: tuple[str, ...]
    output_names: list[str]
    indices: pd.DataFrame
    settings: dict = field(default_factory=dict)
    seconds: float = float("nan")

    @property
    def n_failed(self) -> int:
        """Design rows where the model failed (every output NaN) (count)."""
        return int(np.all(~np.isfinite(self.Y), axis=1).sum()) if self.Y.size else 0

    def to_dataset(self) -> xr.Dataset:
        """As an xarray Dataset (design, outputs, the indices table as variables over (output, parameter))."""
        ds = xr.Dataset(
            {
                "X": (("run", "parameter"), self.X),
                "Y": (("run", "output"), self.Y),
            },
            coords={"parameter": list(self.names), "output": self.output_names},
        )
        if not self.indices.empty:
            tab = self.indices.set_index(["output", "parameter"])
            for col in tab.columns:
                da = tab[col].to_xarray().reindex(output=self.output_names, parameter=list(self.names))
                ds[f"index_{col}"] = da.astype(float)
        ds.attrs.update(
            site_id=self.site_id,
            method=self.method,
            settings=json.dumps(self.settings, sort_keys=True),
            seconds=float(self.seconds),
            n_failed=self.n_failed,
        )
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> SiteAnalysis:
        """Inverse of :meth:`to_dataset`."""
        cols = [v for v in ds.data_vars if v.startswith("index_")]
        if cols:
            tab = ds[cols].to_dataframe().rename(columns=lambda c: c[len("index_") :]).reset_index()
            tab = tab.dropna(subset=[c for c in tab.columns if c not in ("output", "parameter")], how="all")
            for c in ("n_trajectories", "n_dropped", "n_base", "n_rows"):
                if c in tab:
                    tab[c] = tab[c].astype(int)
        else:
            tab = pd.DataFrame()
        return cls(
            site_id=ds.attrs["site_id"],
            method=ds.attrs["method"],
            X=ds["X"].values,
            Y=ds["Y"].values,
            names=tuple(str(p) for p in ds["parameter"].values),
            output_names=[str(o) for o in ds["output"].values],
            indices=tab,
            settings=json.loads(ds.attrs["settings"]),
            seconds=float(ds.attrs.get("seconds", np.nan)),
        )


def _site_file(out_dir: Path, method: str, site_id: str) -> Path:
    return Path(out_dir) / f"{method}_sites" / f"{site_id}.nc"


def _write_dataset(ds: xr.Dataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".nc.tmp")
    with deferred_interrupt():
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)


def _load_finished(path: Path, settings: dict) -> SiteAnalysis | None:
    """The finished analysis in ``path`` if it was made with ``settings``; None if there is none.

    Raises:
        ValueError: ``path`` holds an analysis made with other settings.
    """
    if not path.is_file():
        return None
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        done = SiteAnalysis.from_dataset(ds.load())
    if done.settings != json.loads(json.dumps(settings, sort_keys=True)):
        raise ValueError(
            f"{path} holds an analysis with other settings ({done.settings}); give another --out, or --fresh to "
            "discard it"
        )
    return done


def analyse_site(
    method: str,
    func: Callable[[np.ndarray], np.ndarray],
    *,
    site_id: str = "function",
    names: Sequence[str] = PARAMETER_NAMES,
    bounds=None,
    output_names: Sequence[str] | None = None,
    seed: int = 0,
    n_trajectories: int = MORRIS_TRAJECTORIES,
    num_levels: int = MORRIS_LEVELS,
    n_base: int = 1024,
    draws=None,
    with_delta: bool = False,
    map_fn: MapFn | None = None,
    progress: bool = True,
    out_dir: str | os.PathLike | None = None,
    extra_settings: dict | None = None,
) -> SiteAnalysis:
    """One sensitivity analysis of ``func``: design → runs through ``map_fn`` → SALib indices; resumable.

    The same code path serves a site (``func`` a :class:`SiteEvaluator`) and an analytic test function.

    Args:
        method: "morris" (Table 1 box), "sobol" (Table 1 box) or "posterior" (``draws``) (–).
        func: picklable ``f(X) → Y`` (–).
        site_id: label, and the per-site file's name (–).
        names: the varied parameters (–).
        bounds: (n, 2) ranges (parameter units); default Table 1 (morris, sobol).
        output_names: name of each output of ``func`` (–); default its ``output_names`` attribute.
        seed: seed of the design and the bootstrap (–).
        n_trajectories: Morris trajectories (count).
        num_levels: Morris levels (count).
        n_base: Sobol' base samples N (count).
        draws: posterior draws, shape (n_draws, len(names)) (parameter units); "posterior" only.
        with_delta: "posterior" only: also Borgonovo's δ (slow; see :func:`given_data_indices`) (bool).
        map_fn: see :func:`evaluate_design` (–).
        progress: progress bar (bool).
        out_dir: if given, the result is written to ``<out_dir>/<method>_sites/<site_id>.nc`` when finished and
            read from there (not recomputed) on a rerun with the same settings (path).
        extra_settings: more settings that must match for a finished file to be reused (–).

    Returns:
        The :class:`SiteAnalysis`.

    Raises:
        ValueError: an unknown method, or a finished file with other settings.
    """
    import time

    names = _check_names(names)
    if method not in ("morris", "sobol", "posterior"):
        raise ValueError(f"method must be 'morris', 'sobol' or 'posterior', got {method!r}")
    if method != "posterior":
        bounds = default_bounds(names) if bounds is None else np.asarray(bounds, float)
        if bounds.shape != (len(names), 2) or np.any(bounds[:, 1] <= bounds[:, 0]):
            raise ValueError(f"bounds must be (n, 2) with lower < upper for {list(names)}, got {bounds.tolist()}")
    settings = dict(method=method, names=list(names), seed=int(seed), **(extra_settings or {}))
    if method == "morris":
        settings.update(n_trajectories=int(n_trajectories), num_levels=int(num_levels), bounds=bounds.tolist())
    elif method == "sobol":
        settings.update(n_base=int(n_base), bounds=bounds.tolist())
    else:
        if draws is None:
            raise ValueError("the posterior variant needs draws (n_draws, n_parameters)")
        draws = np.asarray(draws, float)
        if draws.ndim != 2 or draws.shape[1] != len(names):
            raise ValueError(f"draws must have shape (n_draws, {len(names)}), got {draws.shape}")
        settings.update(n_draws=int(len(draws)), draws_sum=float(np.round(draws.sum(), 6)), with_delta=bool(with_delta))
    path = _site_file(Path(out_dir), method, site_id) if out_dir is not None else None
    if path is not None:
        done = _load_finished(path, settings)
        if done is not None:
            return done
    if method == "morris":
        X = morris_design(names, bounds, n_trajectories=n_trajectories, num_levels=num_levels, seed=seed)
    elif method == "sobol":
        X = sobol_design(names, bounds, n_base=n_base, seed=seed)
    else:
        X = draws
    t0 = time.perf_counter()
    Y = evaluate_design(func, X, map_fn=map_fn, progress=progress, desc=f"{method} {site_id}")
    seconds = time.perf_counter() - t0
    if output_names is None:
        output_names = getattr(func, "output_names", None) or [f"y{k}" for k in range(Y.shape[1])]
    output_names = list(output_names)
    if method == "morris":
        idx = morris_indices(X, Y, names, bounds, output_names=output_names, num_levels=num_levels, seed=seed)
    elif method == "sobol":
        idx = sobol_indices(Y, names, bounds, output_names=output_names, seed=seed)
    else:
        idx = given_data_indices(X, Y, names, output_names=output_names, seed=seed, with_delta=with_delta)
    res = SiteAnalysis(site_id, method, X, Y, names, output_names, idx, settings, seconds)
    if path is not None:
        _write_dataset(res.to_dataset(), path)
    return res


def analyse_sites(
    method: str,
    problem,
    site_indices: Sequence[int] | None = None,
    *,
    names: Sequence[str] = PARAMETER_NAMES,
    base_theta=None,
    depths_cm: Sequence[float] = DEFAULT_DEPTHS_CM,
    draws=None,
    n_processes: int = 1,
    map_fn: MapFn | None = None,
    on_site_done: Callable[[SiteAnalysis], None] | None = None,
    scheduler=None,
    **kwargs,
) -> list[SiteAnalysis]:
    """:func:`analyse_site` for each site of ``problem`` (one after the other; each site's runs in parallel).

    Args:
        method: "morris", "sobol" or "posterior" (–).
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` (–).
        site_indices: positions of the sites in ``problem.sites`` (count); default all.
        names: the varied parameters (–).
        base_theta: values of the parameters not varied (parameter units); default Table 1 defaults.
        depths_cm: depths of the SOC and F14C outputs (cm).
        draws: posterior draws (n_draws, len(names)) or a dict site_id → draws ("posterior") (parameter units).
        n_processes: worker processes when neither ``map_fn`` nor ``scheduler`` is given (count).
        map_fn: see :func:`evaluate_design` (–).
        on_site_done: called with each site's result as it finishes (–).
        scheduler: instead of ``n_processes``, a Dask cluster (:class:`~bayes_vmimics.scheduler.DaskScheduler` or a
            ``dask.distributed.Client``): each site's design runs as chunks of rows, one task each
            (:func:`dask_map`); the per-site files are written here (–).
        **kwargs: passed to :func:`analyse_site` (seed, n_trajectories, n_base, out_dir, progress, …).

    Returns:
        One :class:`SiteAnalysis` per site.
    """
    site_indices = range(len(problem.sites)) if site_indices is None else site_indices
    out = []
    if map_fn is not None:
        ctx = contextlib.nullcontext(map_fn)
    elif scheduler is not None:
        ctx = contextlib.nullcontext(dask_map(scheduler))
    else:
        ctx = process_map(n_processes)
    with ctx as mf:
        for i in site_indices:
            ev = SiteEvaluator(problem, i, names, base_theta=base_theta, depths_cm=depths_cm)
            d = draws.get(ev.site_id) if isinstance(draws, dict) else draws
            res = analyse_site(
                method,
                ev,
                site_id=ev.site_id,
                names=names,
                draws=d,
                map_fn=mf,
                extra_settings=dict(depths_cm=list(ev.depths_cm), base_theta=ev.base_theta.tolist()),
                **kwargs,
            )
            out.append(res)
            if on_site_done is not None:
                on_site_done(res)
    return out


def combine(results: Sequence[SiteAnalysis]) -> pd.DataFrame:
    """The index tables of several sites in one long table, with columns site_id, n_failed and seconds."""
    frames = []
    for r in results:
        t = r.indices.copy()
        t.insert(0, "site_id", r.site_id)
        t["n_failed"] = r.n_failed
        t["seconds"] = r.seconds
        frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def importance_ranking(table: pd.DataFrame, output: str = "J1") -> pd.DataFrame:
    """Per parameter: mean importance over sites, mean rank (1 = most important) and the number of sites where
    it is the least important, for one output of a combined Morris table.

    Args:
        table: :func:`combine` of Morris results (–).
        output: "J1" or "J2" (–).
    """
    t = table[(table["output"] == output) & ~table["parameter"].str.startswith(DUMMY_PREFIX)]
    wide = t.pivot(index="site_id", columns="parameter", values="importance")
    ranks = wide.rank(axis=1, ascending=False)
    least = (ranks == ranks.max(axis=1).to_numpy()[:, None]).sum()
    return pd.DataFrame(
        {"mean_importance": wide.mean(), "mean_rank": ranks.mean(), "n_sites_least": least, "n_sites": len(wide)}
    ).sort_values("mean_importance", ascending=False)


# ----------------------------------------------------------------------------- calibrated parameters
def posterior_parameter_draws(dt, site_id: str | None = None, *, max_draws: int | None = None, seed: int = 0):
    """Posterior draws of θ from a results file (pooled ``calibrate`` result, or a hierarchical result's
    ``theta_site`` of ``site_id``), shape (n_draws, 7) in ``PARAMETER_NAMES`` order (parameter units).

    Args:
        dt: the results DataTree (:func:`bayes_vmimics.results.load_datatree`) (–).
        site_id: the site, for a hierarchical result (–).
        max_draws: keep at most this many draws, chosen at random without replacement (count).
        seed: seed of that choice (–).

    Raises:
        ValueError: no parameter draws (or no ``site_id``) in the result.
    """
    from .results import posterior_draws

    post = dt["posterior"]
    if all(n in post for n in PARAMETER_NAMES):
        x = posterior_draws(dt)
    elif "theta_site" in post:
        th = post["theta_site"]
        sites = [str(s) for s in th["site"].values]
        if site_id is None:
            raise ValueError(
                "a hierarchical result holds per-site parameters (theta_site): give a pooled calibrate result here, "
                "or name the site (sobol --results uses each site's own draws)"
            )
        if site_id not in sites:
            raise ValueError(f"site {site_id!r} is not in the hierarchical result (sites: {sites})")
        th = th.sel(site=site_id)
        if "parameter" in th.coords:
            th = th.sel(parameter=list(PARAMETER_NAMES))
        x = th.transpose(..., "parameter").values.reshape(-1, len(PARAMETER_NAMES))
    else:
        raise ValueError(f"the results file has no parameter draws (posterior variables: {list(post.data_vars)})")
    if max_draws is not None and len(x) > max_draws:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), int(max_draws), replace=False))]
    return x


# ----------------------------------------------------------------------------- Fig 7: ±25 % profiles
def _site_profile(problem, index: int, theta, n_layers: int) -> np.ndarray:
    p = problem.sites[int(index)]
    ss = solve_site(p.model, np.asarray(theta, float), None, on_failure="ignore")
    if not ss.converged:
        return np.full(n_layers, np.nan)
    return ss.pools[list(SOC_POOLS)].sum(axis=0)[:n_layers]


def mean_profile(problem, theta, site_indices: Sequence[int] | None = None) -> tuple[np.ndarray, int]:
    """Mean over sites of the steady-state SOC profile on the problem's base grid (cold spin-ups).

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` (–).
        theta: 7 values in ``PARAMETER_NAMES`` order (parameter units).
        site_indices: the sites (count); default all.

    Returns:
        (profile (n_layers,) (mg C cm⁻³), number of sites whose steady state failed and were left out (count)).
    """
    n = problem.base_grid.n_layers
    idx = range(len(problem.sites)) if site_indices is None else site_indices
    prof = np.array([_site_profile(problem, i, theta, n) for i in idx])
    ok = np.all(np.isfinite(prof), axis=1)
    return (prof[ok].mean(axis=0) if ok.any() else np.full(n, np.nan)), int((~ok).sum())


def perturbed_profiles(
    problem,
    theta,
    *,
    parameters: Sequence[str] = PROFILE_PARAMETERS,
    changes: Sequence[float] = PROFILE_CHANGES,
    site_indices: Sequence[int] | None = None,
) -> xr.Dataset:
    """The mean steady-state SOC profile at ``theta`` and with each of ``parameters`` changed by each relative
    change (P Fig 7: x_D, α_v, α_r by ±25 %).

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` (–).
        theta: the calibrated parameters, ``PARAMETER_NAMES`` order (parameter units).
        parameters: the parameters changed one at a time (–).
        changes: relative changes, e.g. (−0.25, 0.25) (fraction of the value).
        site_indices: the sites averaged (count); default all.

    Returns:
        Dataset with ``base`` (depth) and ``perturbed`` (parameter, change, depth) (mg C cm⁻³), coordinates
        depth (layer midpoints, cm) and edges; attribute ``n_failed``.
    """
    theta = np.asarray(theta, float)
    _check_names(parameters, model=True)
    base, nf = mean_profile(problem, theta, site_indices)
    pert = np.empty((len(parameters), len(changes), base.size))
    for a, name in enumerate(parameters):
        for b, c in enumerate(changes):
            th = theta.copy()
            th[PARAMETER_NAMES.index(name)] *= 1.0 + c
            pert[a, b], f = mean_profile(problem, th, site_indices)
            nf += f
    g = problem.base_grid
    return xr.Dataset(
        {
            "base": ("depth", base, {"units": "mg C cm-3"}),
            "perturbed": (("parameter", "change", "depth"), pert, {"units": "mg C cm-3"}),
            "theta": ("theta_name", theta),
        },
        coords={
            "parameter": list(parameters),
            "change": np.asarray(changes, float),
            "depth": ("depth", np.asarray(g.mid_cm, float), {"units": "cm"}),
            "theta_name": list(PARAMETER_NAMES),
        },
        attrs={"n_failed": nf},
    )


def posterior_profile_band(
    problem, draws, *, site_indices: Sequence[int] | None = None, level: float = 0.9
) -> tuple[np.ndarray, np.ndarray, int]:
    """Central ``level`` band of the mean steady-state SOC profile over posterior draws.

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` (–).
        draws: θ draws, shape (n_draws, 7) (parameter units).
        site_indices: the sites averaged (count); default all.
        level: probability mass of the band (–).

    Returns:
        (lower (n_layers,), upper (n_layers,)) (mg C cm⁻³) and the number of draws left out for a failure.
    """
    profs = []
    for th in np.asarray(draws, float):
        prof, nf = mean_profile(problem, th, site_indices)
        if nf == 0:
            profs.append(prof)
    if not profs:
        n = problem.base_grid.n_layers
        return np.full(n, np.nan), np.full(n, np.nan), len(draws)
    q = np.quantile(np.array(profs), [(1 - level) / 2, (1 + level) / 2], axis=0)
    return q[0], q[1], len(draws) - len(profs)


# ----------------------------------------------------------------------------- Fig 8: input-response curves
def response_curves(
    problem,
    index: int,
    theta,
    *,
    depths_cm: Sequence[float] = (15.0, 35.0),
    multipliers=None,
    n_multipliers: int = 60,
    changes: Sequence[float] = PROFILE_CHANGES,
    x_d_off: float = X_D_OFF,
) -> xr.Dataset:
    """SOC in the layers holding ``depths_cm`` against relative changes of root litter input and of V, with
    diffusion off (P Fig 8), and the points of α_r and α_v changed by ``changes``.

    Diffusion off (x_D = :data:`X_D_OFF`, see there) makes every layer nearly its own steady-state problem,
    driven by its litter input and its V. The
    curves scale the site's root input I_B (litter input of every layer below the top one) or x_v (V in every
    layer) by each multiplier. A change of α_r (α_v) changes a layer's input (V) by the factor the model's rate
    record gives (:meth:`~bayes_vmimics.model.SiteModel.rates`); that factor and the SOC at the changed α are
    the marked points, which lie on the curves for layers below the top one (up to the small coupling that the
    remaining diffusion leaves).

    Args:
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` (–).
        index: the site's position in ``problem.sites`` (count).
        theta: calibrated parameters, ``PARAMETER_NAMES`` order (parameter units).
        depths_cm: depths of the layers shown (cm).
        multipliers: factors of the input or V (–); default ``n_multipliers`` from 0.05 to 3 (or past the
            largest point).
        n_multipliers: number of default multipliers (count).
        changes: relative changes of α_r and α_v for the points (fraction of the value).
        x_d_off: the x_D used for "diffusion off" (–).

    Returns:
        Dataset: ``soc`` (driver, depth, multiplier), ``point_factor`` and ``point_soc`` (driver, depth, change)
        (mg C cm⁻³; factor –), ``soc_base`` (depth); drivers "litter" (α_r points) and "V" (α_v points).
    """
    from .model import SiteModel

    p = problem.sites[int(index)]
    model = p.model
    theta = np.asarray(theta, float).copy()
    theta[PARAMETER_NAMES.index("x_D")] = x_d_off
    layers = [layer_index(model.grid.edges_cm, d) for d in depths_cm]
    if 0 in layers:
        raise ValueError("the top layer also receives aboveground litter: choose depths below it")
    r0 = model.rates(theta)
    pf = np.empty((2, len(layers), len(changes)))
    ths = {}
    for b, c in enumerate(changes):
        for a, (name, field_) in enumerate((("alpha_r", "inputs"), ("alpha_v", "V"))):
            th = theta.copy()
            th[PARAMETER_NAMES.index(name)] *= 1.0 + c
            ths[a, b] = th
            v0, v1 = getattr(r0, field_), getattr(model.rates(th), field_)
            pf[a, :, b] = [v1[j].sum() / v0[j].sum() for j in layers]
    if multipliers is None:  # 0.05 to 3, or further to take in the points
        mult = np.linspace(0.05, max(3.0, 1.05 * float(pf.max())), int(n_multipliers))
    else:
        mult = np.asarray(multipliers, float)

    def soc(m, th):
        ss = solve_site(m, th, None, on_failure="ignore")
        if not ss.converged:
            return np.full(len(layers), np.nan)
        return ss.pools[list(SOC_POOLS)].sum(axis=0)[layers]

    out = np.empty((2, len(layers), mult.size))
    forcing = model.forcing
    for k, f in enumerate(mult):
        fk = dataclasses.replace(forcing, litter_below=forcing.litter_below * f)
        out[0, :, k] = soc(SiteModel(fk, model.grid, problem.profile), theta)
        th = theta.copy()
        th[PARAMETER_NAMES.index("x_v")] *= f
        out[1, :, k] = soc(model, th)
    base = soc(model, theta)
    ps = np.empty_like(pf)
    for (a, b), th in ths.items():
        ps[a, :, b] = soc(model, th)
    edges = np.asarray(model.grid.edges_cm)
    return xr.Dataset(
        {
            "soc": (("driver", "depth", "multiplier"), out, {"units": "mg C cm-3"}),
            "soc_base": ("depth", base, {"units": "mg C cm-3"}),
            "point_factor": (("driver", "depth", "change"), pf),
            "point_soc": (("driver", "depth", "change"), ps, {"units": "mg C cm-3"}),
            "layer_top_cm": ("depth", edges[layers]),
            "layer_bottom_cm": ("depth", edges[np.array(layers) + 1]),
        },
        coords={
            "driver": ["litter", "V"],
            "depth": np.asarray(depths_cm, float),
            "multiplier": mult,
            "change": np.asarray(changes, float),
        },
        attrs={"site_id": p.obs.site_id, "x_D_off": x_d_off, "theta": json.dumps(theta.tolist())},
    )


# ----------------------------------------------------------------------------- figures
_PARAM_LABELS = {
    "x_v": "$x_v$",
    "x_K": "$x_K$",
    "x_d": "$x_d$",
    "x_D": "$x_D$",
    "alpha_r": r"$\alpha_r$",
    "alpha_v": r"$\alpha_v$",
    "beta": r"$\beta$",
}


def plot_importance(table: pd.DataFrame, path, *, title: str = "") -> Path:
    """P Fig 2: importance θ per parameter and site (points), the mean over sites (grey line); J₁ and J₂
    panels.

    Args:
        table: :func:`combine` of Morris results (–).
        path: the PNG (path).
        title: figure title (–).
    """
    import matplotlib.pyplot as plt

    outs = [o for o in ("J1", "J2") if o in set(table["output"])]
    fig, axes = plt.subplots(1, len(outs), figsize=(5.5 * len(outs), 4.2), squeeze=False, sharey=True)
    for ax, o in zip(axes[0], outs, strict=True):
        t = table[(table["output"] == o) & ~table["parameter"].str.startswith(DUMMY_PREFIX)]
        params = [p for p in PARAMETER_NAMES if p in set(t["parameter"])]
        wide = t.pivot(index="site_id", columns="parameter", values="importance")[params]
        x = np.arange(len(params))
        cmap = plt.get_cmap("tab10" if len(wide) <= 10 else "tab20")
        for k, (sid, row) in enumerate(wide.iterrows()):
            ax.plot(x, row.values, "o", ms=4, alpha=0.8, color=cmap(k % cmap.N), label=sid if len(wide) <= 12 else None)
        ax.plot(x, wide.mean().values, "-", color="0.45", lw=2.5, label=f"mean of {len(wide)} sites")
        ax.set_xticks(x, [_PARAM_LABELS.get(p, p) for p in params])
        ax.set_title({"J1": "SOC (J$_1$)", "J2": "$^{14}$C (J$_2$)"}[o])
        ax.set_xlabel("parameter")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(r"importance $\theta_m$")
    axes[0, -1].legend(fontsize=7, loc="upper right", ncol=2 if len(wide) > 6 else 1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_sobol(table: pd.DataFrame, path, *, title: str = "", value: str = "ST") -> Path:
    """Sobol' (or given-data) indices with their intervals: one panel per output, bars per parameter
    (first order S1 and, where present, total ST), averaged over the sites in the table.

    Args:
        table: :func:`combine` of Sobol' or posterior results (–).
        path: the PNG (path).
        title: figure title (–).
        value: unused; kept for symmetry (–).
    """
    import matplotlib.pyplot as plt

    outs = list(dict.fromkeys(table["output"]))
    ncol = min(4, len(outs))
    nrow = math.ceil(len(outs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.9 * nrow), squeeze=False, sharey=True)
    has_st = "ST" in table
    second = "ST" if has_st else ("delta" if "delta" in table else None)
    for ax, o in zip(axes.flat, outs, strict=False):
        t = table[table["output"] == o]
        g = t.groupby("parameter", sort=False)
        params = [p for p in PARAMETER_NAMES if p in g.groups] + [p for p in g.groups if p not in PARAMETER_NAMES]
        m = g.mean(numeric_only=True).reindex(params)
        x = np.arange(len(params))
        w = 0.4 if second else 0.6
        ax.bar(x - (0.2 if second else 0), m["S1"], w, yerr=m["S1_conf"], label="first order S1", capsize=2)
        if second:
            ax.bar(
                x + 0.2,
                m[second],
                w,
                yerr=m[f"{second}_conf"],
                label="total ST" if has_st else "Borgonovo δ",
                color="tab:orange",
                capsize=2,
            )
        ax.set_xticks(x, [_PARAM_LABELS.get(p, p) for p in params], fontsize=8)
        ax.set_title(o, fontsize=9)
        ax.set_ylim(-0.15, 1.15)  # indices live in [0, 1]; a wider interval runs off the panel
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(outs) :]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    n_sites = table["site_id"].nunique() if "site_id" in table else 1
    fig.suptitle((title + " — " if title else "") + f"mean over {n_sites} site(s), bars: 95 % interval", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


_PROFILE_COLOURS = {"x_D": "black", "alpha_v": "tab:red", "alpha_r": "tab:green"}


def plot_profiles_fig7(profiles: dict[str, xr.Dataset], path, *, bands: dict | None = None) -> Path:
    """P Fig 7: per forest type, the mean SOC profile at the calibrated parameters (blue) and with x_D (black),
    α_v (red), α_r (green) each −25 % (solid) and +25 % (dashed); log x-axis; posterior 90 % band if given.

    Args:
        profiles: forest type → :func:`perturbed_profiles` output (–).
        path: the PNG (path).
        bands: forest type → (lower, upper) of :func:`posterior_profile_band` (mg C cm⁻³) (–).
    """
    import matplotlib.pyplot as plt
    import matplotlib.ticker as mticker

    n = len(profiles)
    ncol = min(2, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 4.6 * nrow), squeeze=False)
    for ax, (ft, ds) in zip(axes.flat, profiles.items(), strict=False):
        z = ds["depth"].values
        if bands and ft in bands:
            lo, hi = bands[ft]
            ax.fill_betweenx(z, lo, hi, color="tab:blue", alpha=0.18, lw=0, label="posterior 90 %")
        ax.plot(ds["base"].values, z, color="tab:blue", lw=2.2, label="calibrated")
        for p in ds["parameter"].values:
            for c in ds["change"].values:
                if c == 0:
                    continue
                ls = "-" if c < 0 else "--"
                ax.plot(
                    ds["perturbed"].sel(parameter=p, change=c).values,
                    z,
                    ls,
                    color=_PROFILE_COLOURS.get(str(p), None),
                    lw=1.2,
                    label=f"{_PARAM_LABELS.get(str(p), p)} {c:+.0%}",
                )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(mticker.ScalarFormatter())
        lo, hi = ax.get_xlim()
        show = "123456789" if hi / lo < 3 else "235"  # within a narrow range label every minor tick
        ax.xaxis.set_minor_formatter(mticker.FuncFormatter(lambda v, _, s=show: f"{v:g}" if f"{v:g}"[0] in s else ""))
        ax.invert_yaxis()
        n_sites = int(ds["n_sites"]) if "n_sites" in ds else ds.attrs.get("n_sites", "?")
        ax.set_title(f"{ft} (mean of {n_sites} sites)")
        ax.set_xlabel("SOC (mg C cm$^{-3}$)")
        ax.set_ylabel("depth (cm)")
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def plot_response_fig8(responses: dict[str, xr.Dataset], path) -> Path:
    """P Fig 8: SOC in the layers at 15 cm (black) and 35 cm (grey) against the relative litter input (top row)
    and relative V (bottom row), diffusion off; triangles: α_r (top) and α_v (bottom) +25 % (▲) and −25 % (▼).

    Args:
        responses: label (e.g. forest type) → :func:`response_curves` output (–).
        path: the PNG (path).
    """
    import matplotlib.pyplot as plt

    n = len(responses)
    fig, axes = plt.subplots(2, n, figsize=(4.4 * n, 7.0), squeeze=False)
    shades = ["black", "0.55", "tab:brown", "tab:purple"]
    for col, (label, ds) in enumerate(responses.items()):
        for row, (driver, alpha) in enumerate((("litter", r"$\alpha_r$"), ("V", r"$\alpha_v$"))):
            ax = axes[row, col]
            for k, d in enumerate(ds["depth"].values):
                colour = shades[k % len(shades)]
                top, bot = float(ds["layer_top_cm"][k]), float(ds["layer_bottom_cm"][k])
                ax.plot(
                    ds["multiplier"],
                    ds["soc"].sel(driver=driver, depth=d),
                    color=colour,
                    label=f"layer {top:g}–{bot:g} cm",
                )
                for c in ds["change"].values:
                    ax.plot(
                        ds["point_factor"].sel(driver=driver, depth=d, change=c),
                        ds["point_soc"].sel(driver=driver, depth=d, change=c),
                        "^" if c > 0 else "v",
                        color=colour,
                        ms=8,
                        mec="white",
                    )
            ax.axvline(1.0, color="tab:blue", lw=0.6, ls=":")
            if driver == "V":  # SOC grows steeply as V → 0: a log axis keeps the points readable
                ax.set_yscale("log")
            ax.set_xlabel("relative litter input" if driver == "litter" else "relative V")
            ax.set_ylabel("SOC (mg C cm$^{-3}$)")
            ax.set_title(f"{label}: {ds.attrs['site_id']} ({alpha} ±25 %)", fontsize=9)
            ax.grid(alpha=0.3)
            if col == 0:
                ax.legend(fontsize=7)
    fig.suptitle("diffusion off; ▲ +25 %, ▼ −25 %", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


__all__ = [
    "DEFAULT_DEPTHS_CM",
    "PAPER_LAMBDA",
    "PAPER_REL_ERROR",
    "PROFILE_PARAMETERS",
    "SiteAnalysis",
    "SiteEvaluator",
    "analyse_site",
    "analyse_sites",
    "combine",
    "evaluate_design",
    "given_data_indices",
    "importance_ranking",
    "layer_index",
    "mean_profile",
    "morris_design",
    "morris_indices",
    "paper_costs",
    "paper_importance",
    "perturbed_profiles",
    "plot_importance",
    "plot_profiles_fig7",
    "plot_response_fig8",
    "plot_sobol",
    "posterior_parameter_draws",
    "posterior_profile_band",
    "dask_map",
    "process_map",
    "response_curves",
    "sobol_design",
    "sobol_indices",
    "table3_parameters",
]
