"""One site as the calibration problem evaluates it: its prepared data, its model output at one θ, and the
problem's evaluation counters (:class:`PreparedSite`, :class:`SitePrediction`, :class:`EvaluationStats`; the
problem is :class:`~bayes_vmimics.likelihood.CalibrationProblem`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ObservationErrors
from .model import SiteModel
from .observation import ObservationOperator
from .parameters import PARAMETER_NAMES
from .site_observations import SiteObservations
from .steady_state import SteadyState


@dataclass(eq=False)
class PreparedSite:
    """One site of a :class:`~bayes_vmimics.likelihood.CalibrationProblem`, ready to evaluate
    (``problem.sites[i]``): its observations, model, observation operator, observed values in the compared units
    with their observation errors, and the warm-start cache. Built by the problem; read by
    :mod:`bayes_vmimics.gradients`."""

    obs: SiteObservations
    model: SiteModel
    operator: ObservationOperator
    soc_obs: np.ndarray  # in the compared unit
    soc_errors: ObservationErrors  # σ, weights and the SOC term (bayes_vmimics.errors)
    c14_index: np.ndarray  # intervals with F14C used in the likelihood
    c14_obs: np.ndarray
    c14_errors: ObservationErrors
    cache_u: np.ndarray = field(default_factory=lambda: np.empty((0, len(PARAMETER_NAMES))))
    cache_states: list = field(default_factory=list)
    cache_next: int = 0


@dataclass
class EvaluationStats:
    """Counters of a :class:`~bayes_vmimics.likelihood.CalibrationProblem` (in the process that evaluated).

    Attributes:
        n_evaluations: likelihood evaluations inside the prior support (count).
        n_failed: of them, evaluations with a non-converged steady state (→ −inf) (count).
        n_solves: steady-state solves (count).
        n_warm: of them, warm-started (count).
        failed_sites: site id → number of non-converged solves.
    """

    n_evaluations: int = 0
    n_failed: int = 0
    n_solves: int = 0
    n_warm: int = 0
    failed_sites: dict[str, int] = field(default_factory=dict)

    def merge(self, other: EvaluationStats) -> None:
        """Add another counter (e.g. from a worker process)."""
        self.n_evaluations += other.n_evaluations
        self.n_failed += other.n_failed
        self.n_solves += other.n_solves
        self.n_warm += other.n_warm
        for k, v in other.failed_sites.items():
            self.failed_sites[k] = self.failed_sites.get(k, 0) + v


@dataclass
class SitePrediction:
    """Model output of one site at one θ.

    Attributes:
        soc: SOC per observed interval in the compared unit, shape (n_obs,) (mg C cm⁻³ or g C kg⁻¹).
        soc_mg_cm3: SOC density per observed interval, shape (n_obs,) (mg C cm⁻³).
        f14c: F14C per observed interval, shape (n_obs,); NaN without ¹⁴C simulation (–).
        soc_grid: SOC density per model layer, shape (n_layers,) (mg C cm⁻³).
        f14c_grid: F14C of pools p + c + a per model layer, shape (n_layers,); NaN without ¹⁴C (–).
        steady_state: the solver's result.
    """

    soc: np.ndarray
    soc_mg_cm3: np.ndarray
    f14c: np.ndarray
    soc_grid: np.ndarray
    f14c_grid: np.ndarray
    steady_state: SteadyState
