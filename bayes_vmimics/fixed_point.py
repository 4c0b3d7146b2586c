"""The constant-temperature steady state (a fixed point of dC/dt) and the solver's result record.

A cold solve first finds the steady state on coarser grids (:func:`coarse_start`: spin-up on a grid with adjacent
layers merged, then Newton on each finer grid; ``_coarse.coarse_cascade``) and falls back to the spin-up on the
site's grid (:func:`~bayes_vmimics._core.steady_state_iterate`: implicit time steps of growing length, then
Newton) when that fails or ends on an unstable or invadable root; both end on the same equilibrium (verified in
``tests/test_steady_start.py`` and ``docs/steady_state.md``). Near β = 1 (linear microbial turnover, the lower
edge of P Table 1) that equilibrium can be unstable, or the iteration can fail; then :func:`solve_constant`
follows the true dynamics (backward-Euler time steps, ``_core.implicit_march``, within an iteration budget) and
judges the equilibrium it reaches by the eigenvalues of its Jacobian: stable (returned), an unstable focus
(sustained oscillations; reported), or a saddle (left along its unstable direction). Evidence from long BDF
integrations: ``model/README.md``.

Used by :mod:`bayes_vmimics.annual_cycle` and :mod:`bayes_vmimics.steady_state` (which re-exports the public
names); imports go one way: ``steady_state → annual_cycle → fixed_point → _core``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla

try:  # a 140 × 140 eigenproblem runs ~4× slower on 2 BLAS threads of a busy machine than on one
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - optional
    ThreadpoolController = None

from . import _coarse, _core
from .constants import HOURS_PER_YEAR, N_POOLS, SOC_POOLS
from .grid import DepthGrid
from .model import Rates, SiteModel
from .solver_status import SolverStatus, status_message

#: WC22's initial pools (lines 451-453): 16.5 × fractions for (m, s, r, k, p, c, a), mg C cm⁻³ (spec Sect. 8).
WC22_INITIAL = 16.5 * np.array([0.1, 0.1, 0.025, 0.025, 0.1125, 0.375, 0.2625])


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
        status: the solver's outcome (:class:`~bayes_vmimics.solver_status.SolverStatus`); ``message`` says it
            in words.
        solver_state: what the gradients and the ¹⁴C run reuse: the pools in the solver's layout ``C``
            (n_layers, 7), the block-Thomas factors ``Ginv`` of the Jacobian and the rate record ``rates``
            (and, for a climatology, the daily states) (–).
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
    status: SolverStatus = SolverStatus.CONVERGED
    solver_state: dict = field(default_factory=dict, repr=False)

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


def initial_state(site: SiteModel, initial) -> tuple[np.ndarray, bool]:
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
        stability_beta: a converged constant-temperature equilibrium with β at or below this value is also
            checked for stability by all eigenvalues of its Jacobian (dense, LAPACK on one thread: ~3 ms for 20
            layers on an idle core); unstable equilibria are left by time stepping or reported. Over the 128
            corners of P Table 1 at three climates, unstable "converged" equilibria occur at β = 1 (26 of 318)
            and β = 1.01 (6), none at β ≥ 1.02 (``benchmarks/box_corners.py``). 0 disables the check
            (dimensionless).
        rescue_years: simulated time of each time-stepping stretch of the rescue path that follows a failed
            or unstable solve (yr).
        rescue_step_years: backward-Euler step of those stretches (yr).
        rescue_max_iter: Newton iterations the whole rescue may spend (count; ~10–15 µs each for 20 layers). A
            rescue that runs out ends ``NOT_SETTLED`` (or ``SADDLE`` while still leaving an unstable
            equilibrium). The default bounds a failing solve at ~0.15–0.3 s and changes no status on the box
            corners (the longest rescues that end ``CONVERGED`` or ``OSCILLATORY`` there use ≤ 14 000);
            3000 bounds it at ~50 ms but then 46 of the 192 β = 1 corners end ``NOT_SETTLED`` instead of
            ``CONVERGED`` (22) or ``OSCILLATORY`` (24) (``docs/steady_state.md``).
        coarse_levels: a cold start first finds the steady state on a grid with adjacent layers merged this
            many times (spin-up from WC22's pools there), then runs Newton on each finer grid
            (:func:`coarse_start`); it falls back to the spin-up on the site's grid when that fails or ends on
            an unstable root. 0: spin-up on the site's grid only (count).
        coarse_growth: ``growth`` of the spin-up on the coarsest grid (dimensionless).
        coarse_inner_tol: relative step at which each implicit step of the coarsest spin-up stops its Newton
            solve (dimensionless; 1e-6 on the site's grid).
    """

    rtol: float = 1e-10
    atol: float = 1e-12
    max_iter: int = 1000
    dt0_cold: float = 100.0
    shrink: float = 0.01
    growth: float = 10.0
    substeps_per_day: int = 1
    stability_beta: float = 1.05
    rescue_years: float = 2000.0
    rescue_step_years: float = 1.0
    rescue_max_iter: int = 20_000
    coarse_levels: int = 2
    coarse_growth: float = 100.0
    coarse_inner_tol: float = 1e-3


DEFAULT_OPTIONS = SolverOptions()

#: an eigenvalue with real part above this is unstable (h⁻¹); the slowest stable modes seen are ~−3e-10 h⁻¹
UNSTABLE_RATE = 1e-10

#: a negligible microbial pool growing faster than this per capita (h⁻¹) could invade: the root is rejected
INVASION_RATE = 1e-8


def iterate(rates: Rates, C: np.ndarray, dt0: float, options: SolverOptions, max_iter: int | None = None):
    """Run the compiled steady-state iteration from C (internal layout, overwritten) at constant temperature.

    Returns (status, n_iter, relative residual norm (h⁻¹), Ginv block-Thomas factors of the Jacobian)."""
    return _core.steady_state_iterate(
        C, rates, dt0, options.max_iter if max_iter is None else max_iter, options.rtol, options.atol,
        options.shrink, options.growth,
    )  # fmt: skip


def solve_constant(site: SiteModel, theta, C: np.ndarray, warm: bool, options: SolverOptions) -> SteadyState:
    """Steady state at the annual-mean temperature from the start C (n_layers, 7) (mg C cm⁻³; overwritten)."""
    rates = site.raw_rates(theta)
    check = rates.beta <= options.stability_beta
    n_iter = 0
    if not warm and options.coarse_levels > 0:
        found, n_iter, fn, Ginv = coarse_start(site, theta, rates, options)
        if found is not None and not (check and is_unstable(rates, found)):
            return make_result(site, rates, found, 0, n_iter, fn, Ginv)
        # no root from the coarse grids, or an unstable one (where the dynamics lead from WC22's pools is then
        # the spin-up's and the rescue's business): spin up on the site's grid
    status, n2, fn, Ginv = iterate(rates, C, np.inf if warm else options.dt0_cold, options)
    n_iter += n2
    if warm and status != 0:
        # a warm start that failed even with its own time-step fallback (or ended on a saddle): cold start
        C, _ = initial_state(site, None)
        status, n2, fn, Ginv = iterate(rates, C, options.dt0_cold, options)
        n_iter += n2
    if status == 0 and not (check and is_unstable(rates, C)):
        return make_result(site, rates, C, status, n_iter, fn, Ginv)
    status, n2, fn, Ginv, C = _rescue(site, rates, C, status, options)
    return make_result(site, rates, C, status, n_iter + n2, fn, Ginv)


def coarse_start(site: SiteModel, theta, rates: Rates, options: SolverOptions):
    """The cold steady state from coarser grids (``_coarse.coarse_cascade``): spin-up from WC22's pools on the
    grid with adjacent layers merged ``options.coarse_levels`` times (20 × 5 cm → 5 × 20 cm for 2), then pure
    Newton on each finer grid from the coarser solution (log C interpolated in depth), ending on the site's grid.
    A root that is a saddle or has negligible microbes that could invade (``INVASION_RATE``) is rejected.

    Returns (C (n_layers, 7) or None, n_iter, fn, Ginv): the steady state on the site's grid with its relative
    residual norm (h⁻¹) and Jacobian factors, or None when a level failed or the root was rejected (the caller
    then spins up on the site's grid); n_iter counts the iterations on every level (a coarse one costs less)."""
    status, n_iter, fn, Ginv, C = _coarse.coarse_cascade(
        np.asarray(theta, dtype=np.float64), site.kc, float(site.T_mean), site.clay, site.edges_cm,
        float(site.IA), float(site.IB), float(site.fmetA), float(site.fmetB), float(site.npp),
        float(site.fixed_beta), rates, int(options.coarse_levels), WC22_INITIAL, float(options.dt0_cold),
        int(options.max_iter), float(options.rtol), float(options.atol), float(options.shrink),
        float(options.growth), INVASION_RATE, float(options.coarse_growth), float(options.coarse_inner_tol),
    )  # fmt: skip
    if status != 0:
        return None, n_iter, fn, Ginv
    return C, n_iter, fn, Ginv


_CONTROLLER = []


def _one_blas_thread():
    """A context that runs BLAS/LAPACK on one thread. The controller is built once (building one inspects every
    loaded library, ~1 ms); entering its limit costs ~10 µs."""
    if ThreadpoolController is None:  # pragma: no cover - optional dependency
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def _leading_eigen(rates: Rates, C: np.ndarray, vectors: bool = False):
    """Eigenvalue of the Jacobian at C (n_layers, 7) with the largest real part (h⁻¹) and, with ``vectors``,
    its eigenvector as (n_layers, 7) (real part; arbitrary norm).

    All 7·N eigenvalues of the dense Jacobian (built by ``_core.dense_jacobian`` in the layer-major order, so
    an eigenvector reshapes to (n_layers, 7) directly) by LAPACK on one thread: ~3 ms for 20 layers."""
    J = _core.dense_jacobian(C, rates)
    with _one_blas_thread():
        if not vectors:
            ev = sla.eigvals(J, overwrite_a=True, check_finite=False)
            return ev[np.argmax(ev.real)], None
        ev, vec = sla.eig(J, overwrite_a=True, check_finite=False)
    k = int(np.argmax(ev.real))
    return ev[k], np.ascontiguousarray(vec[:, k].real.reshape(C.shape))


def is_unstable(rates: Rates, C: np.ndarray) -> bool:
    """Whether the Jacobian at the equilibrium C (n_layers, 7) has an eigenvalue with real part above
    ``UNSTABLE_RATE`` (h⁻¹)."""
    lam, _ = _leading_eigen(rates, C)
    return bool(lam.real > UNSTABLE_RATE)


def microbes_cannot_persist(rates: Rates) -> bool:
    """True when, with linear turnover (β = 1), neither microbial group can grow in any layer even on
    saturating substrate: ε_m V_m + ε_s V_s + ε_a V_a < μ for r and for K everywhere. Then total microbial
    biomass decays exponentially (diffusion only moves it), chemically protected SOC is never oxidised and
    the pools grow without bound: there is no finite steady state (a proof, not a numerical verdict)."""
    if rates.beta != 1.0:
        return False  # β > 1: per-capita turnover μ C^(β−1) → 0 as C → 0, so microbes always persist
    e, V, mu = rates.eps, rates.V, rates.mu
    gr = e[0] * V[:, 0] + e[1] * V[:, 1] + e[2] * V[:, 2] - mu[:, 0]
    gk = e[3] * V[:, 3] + e[4] * V[:, 4] + e[5] * V[:, 5] - mu[:, 1]
    return bool(gr.max() < 0.0 and gk.max() < 0.0)


def _rescue(site: SiteModel, rates: Rates, C: np.ndarray, status: int, options: SolverOptions):
    """After a failed or unstable solve ending at C: follow the true dynamics to an equilibrium and judge it.

    Each round either judges an equilibrium by the eigenvalue of its Jacobian with the largest real part —
    stable: done; an unstable focus (complex, Re > 0): sustained oscillations, reported; a real unstable
    direction (a saddle, or microbes extinct in layers they could invade): step off along the eigenvector
    (alternating sides) and integrate for 50 e-folding times — or, with no equilibrium at hand, integrates
    ``rescue_years`` of backward-Euler steps of ``rescue_step_years``; then it looks for an equilibrium from
    the state reached (Newton from the time-mean of the stretch; failing that, growing implicit steps from one
    step length, then Newton). At most four rounds and ``rescue_max_iter`` Newton iterations in all (a
    deterministic bound on the cost); a rescue that runs out of them ends ``NOT_SETTLED`` (or ``SADDLE`` when
    it was still leaving an unstable equilibrium). Returns (status, n_iter, fn, Ginv, C).
    """
    if status == SolverStatus.UNBOUNDED and microbes_cannot_persist(rates):
        fn, Ginv = _residual(rates, C)
        return SolverStatus.MICROBES_EXTINCT, 0, fn, Ginv, C
    step = options.rescue_step_years * HOURS_PER_YEAR
    n_stretch = max(int(round(options.rescue_years / options.rescue_step_years)), 1)
    budget = int(options.rescue_max_iter)
    n_iter = 0
    if status not in (SolverStatus.CONVERGED, SolverStatus.SADDLE):
        # restart from the initial pools: after an overshoot (UNBOUNDED) or on the slow manifold where the
        # iteration stalled (microbes at ~1e-30 in some layers, which the rescue's steps do not leave)
        state, _ = initial_state(site, None)
    else:
        state = np.ascontiguousarray(C.copy())
    on_equilibrium = status in (SolverStatus.CONVERGED, SolverStatus.SADDLE)
    st, X = status, state
    fn, Ginv = _residual(rates, X)
    mean = np.empty_like(state)
    dt, n_steps, sign = step, n_stretch, 1.0
    for _round in range(4):
        if not on_equilibrium:
            mst, k = _core.implicit_march(state, rates, dt, n_steps, options.shrink, mean, budget - n_iter)
            n_iter += k
            if mst != 0:
                break  # a step failed, or the iteration budget ran out
            # an equilibrium near the time-mean of the last half of the stretch (the centre of an
            # oscillation), by Newton; failing that, by growing implicit steps from the state reached
            X = np.maximum(mean, 1e-30)
            st, k, fn, Ginv = iterate(rates, X, np.inf, options, max_iter=min(60, budget - n_iter))
            n_iter += k
            if st not in (SolverStatus.CONVERGED, SolverStatus.SADDLE) and n_iter < budget:
                X = state.copy()
                st, k, fn, Ginv = iterate(rates, X, step, options, max_iter=min(options.max_iter, budget - n_iter))
                n_iter += k
        on_equilibrium = False
        if st in (SolverStatus.CONVERGED, SolverStatus.SADDLE):
            lam, _ = _leading_eigen(rates, X)
            if lam.real <= UNSTABLE_RATE:
                return SolverStatus.CONVERGED, n_iter, fn, Ginv, X
            if abs(lam.imag) > 1e-3 * lam.real:
                return SolverStatus.OSCILLATORY, n_iter, fn, Ginv, X
            if n_iter >= budget:
                break
            lam, v = _leading_eigen(rates, X, vectors=True)
            # a step of at most 1e-3 relative along the eigenvector; negligible pools get a positive seed
            scale = np.max(np.abs(v) / (X + 1e-8))
            state = np.maximum(X + sign * 1e-3 * v / scale, 1e-30)
            seeded = np.maximum(state, 1e-6 * np.abs(v) / scale)
            state = np.ascontiguousarray(np.where(X <= _core.CTINY, seeded, state))
            sign = -sign
            dt, n_steps = 0.2 / lam.real, 250
        elif st == SolverStatus.UNBOUNDED and microbes_cannot_persist(rates):
            return SolverStatus.MICROBES_EXTINCT, n_iter, fn, Ginv, X
        elif n_iter >= budget:
            break
        else:
            dt, n_steps = step, n_stretch
    if st == SolverStatus.CONVERGED:
        st = SolverStatus.SADDLE  # an unstable equilibrium that no round could leave
    elif st in (SolverStatus.MAX_ITER, SolverStatus.UNBOUNDED) and n_iter > 0:
        st = SolverStatus.NOT_SETTLED
    return st, n_iter, fn, Ginv, X


def _residual(rates: Rates, C: np.ndarray):
    """(relative residual norm (h⁻¹), Ginv factors of the Jacobian) at C."""
    n = C.shape[0]
    F = np.empty_like(C)
    A = np.empty((n, N_POOLS, N_POOLS))
    G = np.empty((n, N_POOLS, N_POOLS))
    Ginv = np.empty((n, N_POOLS, N_POOLS))
    resp = np.empty(n)
    _core.full_rhs(C, *rates[:10], 1.0, 1.0, 1.0, F, A, resp, True)
    _core.assemble(A, rates.lower, rates.upper, 0.0, G)
    _core.btd_factor(G, Ginv, rates.lower, rates.upper)
    return float(_core.wnorm(F, C)), Ginv


def make_result(site: SiteModel, rates: Rates, C, status, n_iter, fn, Ginv, *, respiration=None, mean_pools=None):
    """The :class:`SteadyState` of a solve ending at C (n_layers, 7) with kernel status ``status``."""
    n = site.n_layers
    if respiration is None:
        # the rate arrays unpacked: numba's dispatch of a tuple argument costs ~4 µs, of arrays ~0
        F = np.empty_like(C)
        A = np.empty((n, N_POOLS, N_POOLS))
        respiration = np.empty(n)
        _core.full_rhs(C, *rates[:10], 1.0, 1.0, 1.0, F, A, respiration, False)
    dz = site.thickness_cm
    total_in = site.total_input
    total_out = float(np.sum(respiration * dz))
    mb = abs(total_in - total_out) / total_in
    pools = (mean_pools if mean_pools is not None else C).T.copy()
    converged = status == 0 and bool(np.all(np.isfinite(pools)))
    try:
        st = SolverStatus(int(status))
    except ValueError:
        st = SolverStatus.NON_FINITE
    if status == 0 and not converged:
        st = SolverStatus.NON_FINITE
    return SteadyState(
        pools=pools,
        converged=converged,
        residual_norm=float(fn),
        n_iter=int(n_iter),
        respiration=respiration,
        mass_balance_error=float(mb),
        message=status_message(st),
        grid=site.grid,
        start_of_year=C.T.copy(),
        status=st,
        solver_state={"C": C, "Ginv": Ginv, "rates": rates},
    )
