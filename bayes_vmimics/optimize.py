"""Point-estimate baseline reproducing the paper's workflow (P §2.3.1): global minimisation of the cost J
(Eqs 14–16, λ once) over the prior box, then the paper's metrics (RMSE Eq 17, BIC Eq 18, regression a, b, r²).

P used SCE-UA (Duan et al. 1993). No well-kept SCE-UA package is a dependency of this project, so scipy's
differential evolution (a population-based global optimiser of the same family) is used; for log-uniform
priors the search runs in log space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import differential_evolution

from .likelihood import CalibrationProblem
from .metrics import FitMetrics, fit_metrics
from .parameters import PARAMETER_NAMES


@dataclass
class PointEstimate:
    """Result of :func:`fit_point_estimate`.

    Attributes:
        theta: best parameters in ``PARAMETER_NAMES`` order (parameter units).
        cost: the cost at ``theta``: the deviance −2 (log L − log L of a perfect fit), which is the paper's J
            under the ``paper`` error model (–).
        soc_metrics: SOC fit (P Table 4), unit of the likelihood's SOC.
        c14_metrics: F14C fit, or None without ¹⁴C.
        n_evaluations: cost evaluations (count).
        n_failed: of them, non-converged (J = +inf) (count).
        message: optimiser message.
        cost_name: "J" under the ``paper`` error model, else "deviance" (:func:`cost_name`) (–).
    """

    theta: np.ndarray
    cost: float
    soc_metrics: FitMetrics
    c14_metrics: FitMetrics | None
    n_evaluations: int
    n_failed: int
    message: str
    cost_name: str = "J"

    def to_dict(self) -> dict:
        """Plain dict (parameters by name)."""
        return {
            "parameters": dict(zip(PARAMETER_NAMES, map(float, self.theta), strict=True)),
            self.cost_name: self.cost,
            "cost_name": self.cost_name,
            "soc": self.soc_metrics.to_dict(),
            "f14c": None if self.c14_metrics is None else self.c14_metrics.to_dict(),
            "n_evaluations": self.n_evaluations,
            "n_failed": self.n_failed,
            "message": self.message,
        }


def cost_name(problem: CalibrationProblem) -> str:
    """Name of :meth:`~bayes_vmimics.likelihood.CalibrationProblem.cost`: "J" (the paper's J₁ + λJ₂, P Eq 14)
    only under the ``paper`` error model, "deviance" under any other."""
    import dataclasses

    from .errors import ErrorModel

    return "J" if dataclasses.replace(problem.error_model, name="paper") == ErrorModel() else "deviance"


def metrics_at(problem: CalibrationProblem, theta) -> tuple[FitMetrics, FitMetrics | None]:
    """SOC and F14C fit metrics (P §2.4) of the model at θ over the problem's sites."""
    pred = problem.predict(theta, grid_outputs=False)
    if pred is None:
        raise RuntimeError("steady state not converged at theta")
    soc = fit_metrics([p.soc_obs for p in problem.sites], [q.soc for q in pred])
    c14 = None
    idx = [i for i, p in enumerate(problem.sites) if p.c14_index.size]
    if idx:
        c14 = fit_metrics(
            [problem.sites[i].c14_obs for i in idx], [pred[i].f14c[problem.sites[i].c14_index] for i in idx]
        )
    return soc, c14


def fit_point_estimate(
    problem: CalibrationProblem,
    *,
    seed: int = 0,
    maxiter: int = 200,
    popsize: int = 15,
    polish: bool = True,
    tol: float = 1e-6,
) -> PointEstimate:
    """Minimise the cost (J under the paper's error model, else the deviance) over the prior box with
    differential evolution (stand-in for P's SCE-UA).

    Args:
        problem: the calibration problem (its prior gives the box and log-scaled parameters).
        seed: seed of the optimiser (integer; via ``np.random.default_rng``).
        maxiter: generations (count).
        popsize: population size multiplier (count).
        polish: finish with L-BFGS-B (bool).
        tol: relative convergence tolerance of the population's cost spread (–).
    """
    prior = problem.prior
    lo = np.where(prior.is_log, np.log(prior.lower), prior.lower)
    hi = np.where(prior.is_log, np.log(prior.upper), prior.upper)
    counts = {"n": 0, "failed": 0}

    def to_theta(z):
        return np.clip(np.where(prior.is_log, np.exp(z), z), prior.lower, prior.upper)

    def cost(z):
        counts["n"] += 1
        j = problem.cost(to_theta(z))
        if not np.isfinite(j):
            counts["failed"] += 1
            return 1e300
        return j

    res = differential_evolution(
        cost,
        list(zip(lo, hi, strict=True)),
        seed=np.random.default_rng(seed),
        maxiter=maxiter,
        popsize=popsize,
        polish=polish,
        tol=tol,
    )
    theta = to_theta(res.x)
    soc, c14 = metrics_at(problem, theta)
    return PointEstimate(
        theta,
        float(problem.cost(theta)),
        soc,
        c14,
        counts["n"],
        counts["failed"],
        str(res.message),
        cost_name(problem),
    )
