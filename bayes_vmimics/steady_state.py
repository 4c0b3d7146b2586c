"""Steady state of vertically resolved MIMICS: the root of dC/dt = 0 of the full 7·N system (P §2.2).

Constant temperature: the steady state is a fixed point, found by Newton's method on the block-tridiagonal
system with the analytic Jacobian, globalised by pseudo-transient continuation (a spin-up; see
``_core.steady_state_iterate`` and :mod:`bayes_vmimics.fixed_point`); a cold solve runs that spin-up on a coarser
grid and Newton on the finer ones first (``SolverOptions.coarse_levels``), ending on the same equilibrium.
Daily temperature climatology: the steady state is the periodic annual cycle (P §2.2), found by Newton–shooting
on the one-year map, warm-started from the annual-mean root (see :mod:`bayes_vmimics.annual_cycle`).
"""

from __future__ import annotations

import warnings

from .annual_cycle import solve_periodic
from .constants import ModelConstants
from .fixed_point import (
    DEFAULT_OPTIONS,
    WC22_INITIAL,
    ConvergenceWarning,
    SolverOptions,
    SteadyState,
    SteadyStateError,
    initial_state,
    microbes_cannot_persist,
    solve_constant,
)
from .forcing import SiteForcing
from .grid import DepthGrid
from .model import SiteModel, parameter_vector
from .solver_status import STATUS_MESSAGES, SolverStatus


def solve_site(
    site: SiteModel,
    params,
    initial=None,
    *,
    options: SolverOptions = DEFAULT_OPTIONS,
    on_failure: str = "warn",
) -> SteadyState:
    """Steady state of a prepared :class:`SiteModel` (see :func:`solve_steady_state`)."""
    if on_failure not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_failure must be 'warn', 'raise' or 'ignore', got {on_failure!r}")
    theta = parameter_vector(params)
    C, warm = initial_state(site, initial)
    if site.day_factors is not None:
        res = solve_periodic(site, theta, C, warm, options)
        if warm and not res.converged:
            C, _ = initial_state(site, None)
            res = solve_periodic(site, theta, C, False, options)
    else:
        res = solve_constant(site, theta, C, warm, options)
    if not res.converged:
        if on_failure == "raise":
            res.raise_if_failed()
        elif on_failure == "warn":
            warnings.warn(f"steady state not converged: {res.message}", ConvergenceWarning, stacklevel=3)
    return res


def solve_steady_state(
    params,
    forcing: SiteForcing,
    grid: DepthGrid | None = None,
    *,
    profile: str | ModelConstants = "paper",
    initial=None,
    options: SolverOptions | None = None,
    on_failure: str = "warn",
) -> SteadyState:
    """Steady state of vertically resolved MIMICS for one site.

    Args:
        params: :class:`Parameters` (or 7 values in ``PARAMETER_NAMES`` order; α in m⁻¹).
        forcing: site forcing (temperature °C, clay fraction, litter g C m⁻² yr⁻¹, lignin:N g g⁻¹).
        grid: layers (cm); default 20 × 5 cm for the "paper" profile.
        profile: constants profile "paper" (default), "wc22", "w15", or a :class:`ModelConstants`.
        initial: warm start: a previous :class:`SteadyState` or pools (7, n_layers) (mg C cm⁻³), e.g. the
            solution at a nearby parameter vector. Default: WC22's initial pools in every layer (cold start).
        options: solver tolerances (:class:`SolverOptions`).
        on_failure: "warn" (default; a :class:`ConvergenceWarning`), "raise" (:class:`SteadyStateError`) or
            "ignore" when the solver does not converge; the result's ``converged`` says so in every case.

    Returns:
        :class:`SteadyState` with ``pools`` (7, n_layers) (mg C cm⁻³), ``converged``, ``residual_norm``,
        ``n_iter`` and per-layer ``respiration`` (mg C cm⁻³ h⁻¹).

    Example:
        >>> from bayes_vmimics import Parameters, SiteForcing, solve_steady_state
        >>> ss = solve_steady_state(Parameters(), SiteForcing(temperature=10.0, clay=0.2))
        >>> ss.converged, ss.pools.shape
        (True, (7, 20))
    """
    site = SiteModel(forcing, grid, profile)
    return solve_site(site, params, initial, options=options or DEFAULT_OPTIONS, on_failure=on_failure)


__all__ = [
    "DEFAULT_OPTIONS",
    "STATUS_MESSAGES",
    "WC22_INITIAL",
    "ConvergenceWarning",
    "SolverOptions",
    "SolverStatus",
    "SteadyState",
    "SteadyStateError",
    "microbes_cannot_persist",
    "solve_site",
    "solve_steady_state",
]
