"""Steady state of vertically resolved MIMICS: the root of dC/dt = 0 of the full 7·N system (P §2.2).

Constant temperature: the steady state is a fixed point, found by Newton's method on the block-tridiagonal
system with the analytic Jacobian, globalised by pseudo-transient continuation (see
``_core.steady_state_iterate``). Daily temperature climatology: the steady state is the periodic annual
cycle (P §2.2), found by Newton–shooting on the one-year map, warm-started from the annual-mean root
(see :mod:`bayes_vmimics.annual_cycle`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _core
from .constants import HOURS_PER_YEAR, N_POOLS, SOC_POOLS, ModelConstants
from .forcing import SiteForcing
from .grid import DepthGrid
from .model import SiteModel, _theta

#: WC22's initial pools (lines 451-453): 16.5 × fractions for (m, s, r, k, p, c, a), mg C cm⁻³ (spec Sect. 8).
WC22_INITIAL = 16.5 * np.array([0.1, 0.1, 0.025, 0.025, 0.1125, 0.375, 0.2625])

STATUS_MESSAGES = {
    0: "converged",
    1: "maximum number of iterations reached",
    2: "non-finite values in the iteration",
    3: "singular Jacobian",
    4: "no finite steady state: pools grow without bound (microbes cannot persist anywhere in the column)",
    5: "the iteration ended on an unstable equilibrium (a saddle), which time integration would leave",
}


class ConvergenceWarning(RuntimeWarning):
    """The steady-state solver did not converge."""


class SteadyStateError(RuntimeError):
    """Raised by ``on_failure="raise"`` when the steady-state solver does not converge."""


@dataclass(frozen=True, eq=False)
class SteadyState:
    """Result of :func:`solve_steady_state`.

    Attributes:
        pools: steady-state pools (7, n_layers), pool order m, s, r, k, p, c, a (mg C cm⁻³); for a
            temperature climatology, the annual mean over the periodic cycle.
        converged: whether the solver met its tolerance.
        residual_norm: RMS relative rate |dC/dt|/(C + 1e-8) at the solution (h⁻¹); for a climatology, the
            largest relative change of the 1 January state over one simulated year (dimensionless).
        n_iter: iterations used: implicit/Newton steps; for a climatology, those of the annual-mean solve plus one
            per Newton–shooting iteration (each a simulated year).
        respiration: heterotrophic respiration per layer (n_layers,) (mg C cm⁻³ h⁻¹), annual mean.
        mass_balance_error: |total input − total respiration| / total input (dimensionless).
        message: solver status in words.
        grid: the layers used (cm).
        start_of_year: for a climatology, the periodic state on 1 January (7, n_layers) (mg C cm⁻³); else
            equal to ``pools``.
    """

    pools: np.ndarray
    converged: bool
    residual_norm: float
    n_iter: int
    respiration: np.ndarray
    mass_balance_error: float
    message: str
    grid: DepthGrid
    start_of_year: np.ndarray | None = None
    _internal: dict = field(default_factory=dict, repr=False)

    @property
    def soc(self) -> np.ndarray:
        """Total SOC per layer, microbes + SOM (r + k + p + c + a) (n_layers,) (mg C cm⁻³; P Eq 15)."""
        return self.pools[list(SOC_POOLS)].sum(axis=0)

    @property
    def respiration_g_m2_yr(self) -> np.ndarray:
        """Respiration per layer (n_layers,) (g C m⁻² yr⁻¹)."""
        return self.respiration * self.grid.thickness_cm * HOURS_PER_YEAR * 10.0

    def raise_if_failed(self) -> SteadyState:
        """Return self, or raise :class:`SteadyStateError` if not converged."""
        if not self.converged:
            raise SteadyStateError(f"steady state not found: {self.message} (residual {self.residual_norm:.3g} h⁻¹)")
        return self


def _initial_internal(site: SiteModel, initial) -> tuple[np.ndarray, bool]:
    """Start state (N, 7) and whether it is a warm start."""
    n = site.n_layers
    if initial is None:
        return np.ascontiguousarray(np.tile(WC22_INITIAL, (n, 1))), False
    if isinstance(initial, SteadyState):
        initial = initial.start_of_year if initial.start_of_year is not None else initial.pools
    C = np.asarray(initial, dtype=np.float64)
    if C.shape != (N_POOLS, n):
        raise ValueError(f"initial must have shape (7, {n}) (pool, layer), got {C.shape}")
    if not np.all(np.isfinite(C)) or np.any(C < 0):
        raise ValueError("initial pools must be finite and non-negative (mg C cm⁻³)")
    C = np.ascontiguousarray(C.T)
    # keep every pool strictly positive so that the positivity safeguard can move it
    np.maximum(C, 1e-30, out=C)
    return C, True


@dataclass
class SolverOptions:
    """Tolerances of the steady-state iteration.

    Attributes:
        rtol: converged when the last Newton step changes no pool by more than rtol·(|C| + atol) (relative).
        atol: absolute pool scale in that test (mg C cm⁻³).
        max_iter: maximum Newton/PTC steps (count).
        dt0_cold: first pseudo-time step of a cold start (h).
        shrink: a step may shrink a pool at most to this fraction of its value (positivity safeguard).
        growth: factor by which an accepted pseudo-time step enlarges dt (dimensionless).
        substeps_per_day: implicit steps per day for a temperature climatology (count; 1 = daily steps).
    """

    rtol: float = 1e-10
    atol: float = 1e-12
    max_iter: int = 1000
    dt0_cold: float = 100.0
    shrink: float = 0.01
    growth: float = 10.0
    substeps_per_day: int = 1


DEFAULT_OPTIONS = SolverOptions()


def solve_site(
    site: SiteModel,
    params,
    initial=None,
    *,
    options: SolverOptions = DEFAULT_OPTIONS,
    on_failure: str = "warn",
) -> SteadyState:
    """Steady state of a prepared :class:`SiteModel` (see :func:`solve_steady_state`)."""
    theta = _theta(params)
    C, warm = _initial_internal(site, initial)
    if site.day_factors is not None:
        from .annual_cycle import solve_periodic

        res = solve_periodic(site, theta, C, warm, options)
        if warm and not res.converged:
            C, _ = _initial_internal(site, None)
            res = solve_periodic(site, theta, C, False, options)
    else:
        res = _solve_constant(site, theta, C, warm, options)
    if not res.converged:
        if on_failure == "raise":
            res.raise_if_failed()
        elif on_failure == "warn":
            warnings.warn(f"steady state not converged: {res.message}", ConvergenceWarning, stacklevel=3)
        elif on_failure != "ignore":
            raise ValueError(f"on_failure must be 'warn', 'raise' or 'ignore', got {on_failure!r}")
    return res


def _iterate(site: SiteModel, rates, C, dt0, options):
    """Run the compiled steady-state iteration from C (internal layout, overwritten) at constant temperature."""
    V, K, mu, phi, kdes, u, eps, lo, up, beta, _ = rates
    return _core.steady_state_iterate(
        C, V, K, mu, phi, kdes, u, eps, lo, up, beta, 1.0, 1.0, 1.0, site.thickness_cm, dt0,
        options.max_iter, options.rtol, options.atol, options.shrink, options.growth,
    )  # fmt: skip


def _solve_constant(site: SiteModel, theta, C, warm, options) -> SteadyState:
    rates = site.raw_rates(theta)
    status, n_iter, fn, Ginv = _iterate(site, rates, C, np.inf if warm else options.dt0_cold, options)
    if warm and status != 0:
        # a warm start that failed even with its own time-step fallback (or ended on a saddle): cold start
        C, _ = _initial_internal(site, None)
        status, n2, fn, Ginv = _iterate(site, rates, C, options.dt0_cold, options)
        n_iter += n2
    return _result(site, rates, C, status, n_iter, fn, Ginv)


def _result(site: SiteModel, rates, C, status, n_iter, fn, Ginv, *, respiration=None, mean_pools=None):
    n = site.n_layers
    if respiration is None:
        V, K, mu, phi, kdes, u, eps, lo, up, beta, _ = rates
        F = np.empty_like(C)
        A = np.empty((n, N_POOLS, N_POOLS))
        respiration = np.empty(n)
        _core.full_rhs(C, V, K, mu, phi, kdes, u, eps, lo, up, beta, 1.0, 1.0, 1.0, F, A, respiration, False)
    dz = site.thickness_cm
    total_in = site.total_input
    total_out = float(np.sum(respiration * dz))
    mb = abs(total_in - total_out) / total_in
    pools = (mean_pools if mean_pools is not None else C).T.copy()
    converged = status == 0 and bool(np.all(np.isfinite(pools)))
    return SteadyState(
        pools=pools,
        converged=converged,
        residual_norm=float(fn),
        n_iter=int(n_iter),
        respiration=respiration,
        mass_balance_error=float(mb),
        message=STATUS_MESSAGES.get(int(status), f"status {status}"),
        grid=site.grid,
        start_of_year=C.T.copy(),
        _internal={"C": C, "Ginv": Ginv, "rates": rates},
    )


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
