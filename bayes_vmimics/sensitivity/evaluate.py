"""A site's model outputs for the rows of a design, and the evaluation of a design in chunks through an ordered map.

Every model run is a cold spin-up (whatever the problem's ``warm_start``), so the outputs depend on θ only, not on
how the design was split between processes: the results are reproducible from the seed. A design point whose
steady state (or ¹⁴C run) fails gives NaN outputs; the index modules decide what to drop.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np

from ..parameters import PARAMETER_NAMES, TABLE1
from .cost import PAPER_LAMBDA, PAPER_REL_ERROR, paper_costs
from .executor import MapFn
from .inputs import check_names

#: Depths whose layers' modelled SOC and F14C are analysed besides the costs (cm).
DEFAULT_DEPTHS_CM = (15.0, 35.0, 75.0)


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
    from ..site_evaluation import EvaluationStats

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
        self.names = check_names(names, model=True)
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


def _apply(args):
    func, X = args
    return func(X)


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
        map_fn: ``map_fn(func, iterable)`` returning results in order: ``map`` (default) or an executor's
            ``imap`` (:func:`~bayes_vmimics.sensitivity.executor.open_executor`: local processes or chunks as
            tasks on a Dask cluster) (–).
        chunk_size: rows per task (count); default about 8 tasks per worker, at most 64 rows.
        progress: show a progress bar (bool).
        desc: the bar's label (–).

    Returns:
        Y, shape (n_rows, n_outputs).
    """
    from ..progress import progress_bar

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


__all__ = ["DEFAULT_DEPTHS_CM", "SiteEvaluator", "evaluate_design", "layer_index", "output_names"]
