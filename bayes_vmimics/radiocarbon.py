"""Radiocarbon: ¹⁴C of every pool from the 1950 spin-up to the sampling year (P §2.2, Eq 16; spec Sect. 11).

¹⁴C pools are carried in units of carbon × F14C (mg C cm⁻³), so that F14C of a pool is ¹⁴C / C.

Tracer mode (default; spec Sect. 11, "recommended")
    ¹⁴C is a passive isotope tracer on the carbon steady state C: every carbon flux of spec Sect. 5 carries
    its donor's ¹⁴C/C ratio (uptake with the same ε / 1 − ε split into microbes and CO₂, necromass,
    desorption, oxidation, and diffusion with the same operator as carbon), litter enters with the litter
    F14C, and every pool decays at λ₁₄ = ln 2 / 5730 yr⁻¹. With ``B_j`` the specific transfer matrix of
    layer j (``_core.transfer_blocks``: the solver's flux structure, not re-derived here) and the diffusion
    couplings ``lo``, ``up`` of the carbon model, the ¹⁴C state X (n_layers, 7) obeys the *linear* system

        dX/dt = M X + u·F_litter(t),   M = blockdiag(B_j) + Diffusion − λ₁₄ I,

    with u the litter inputs per pool. M is constant in time for a constant-temperature site. For a daily
    temperature climatology, M uses the flux-averaged operator B̄[j, i, d] = ⟨B_day[j, i, d] C_day[j, d]⟩ /
    ⟨C_day[j, d]⟩ (means over the 365 days of the periodic cycle), which reproduces the annual-mean fluxes of
    every pool exactly ((B̄ + Diffusion) C̄ + u = 0); it neglects the covariance of the seasonal cycles of
    ¹⁴C/C and of the fluxes, which is small because ¹⁴C/C varies little within a year.

    * 1950 steady state: X₁ solves M X₁ = −u (one block-tridiagonal solve); the state for a constant litter
      F14C f is f·X₁ (:func:`f14c_steady_state`).
    * Transient: within a calendar year the litter F14C f_Y is constant, so D = X − f_Y X₁ obeys dD/dt = M D
      exactly. D is advanced by the L-stable, stiffly accurate 3-stage SDIRK method of Alexander (1977; third
      order, all stages share one matrix ``I − γ h M``, factored once per call with the block-tridiagonal
      solver; 3 block solves per step). Default 4 steps per year: with the Hua et al. (2013) NH1 record,
      halving the step changes the p + c + a F14C by ≤ 1.3e-5 at the default parameters and by ≤ 6e-5 at the
      corners of P Table 1 tried (fast uptake x_v = 30, x_K = 2, β = 1; x_D = 25), and the error against the
      exact matrix exponential is ≤ 1.5e-5 (``benchmarks/bench_radiocarbon.py``). Per-pool F14C of the fast
      pools (litter, microbes) right after a bomb-year jump is less accurate (~5e-4).

Paper mode (P §2.2 as the spec reads it; for replicating P's Figs 3–4)
    An independent run of the *nonlinear* model in which the litter inputs are multiplied by the litter F14C
    and every pool additionally decays with λ₁₄: spin-up to its steady state with the 1950 atmosphere, then
    the same implicit SDIRK scheme (stage equations solved by Newton's method with the analytic Jacobian of
    ``_core.full_rhs``) to the sampling year; F14C = (¹⁴C run) / (carbon run). Constant-temperature sites
    only.

    Why it differs from tracer mode: the 14C run is the carbon model with scaled inputs, and the model is not
    linear in its inputs (Michaelis–Menten uptake ∝ C_mic·C_sub/(K + C_sub), density-dependent turnover
    μ C^β). Scaling inputs by f does not scale the pools by f: the 14C run's pools are C(f·u), whose relative
    response to the input differs between pools, so modelled F14C = C_i(f·u)/C_i(u) ≠ f even for a constant
    atmosphere f without decay. The discrepancy is of first order in (1 − f) times the input elasticity
    (1 − ∂ln C_i/∂ln u), which is large in MIMICS: the chemically protected and available SOC stocks barely
    respond to inputs, so paper-mode F14C is pulled towards 1 (at default parameters, a constant 1950
    atmosphere f = 0.974 without decay gives 0.991–0.997 instead of 0.974). Decay, which acts like a ~10–50 %
    loss of "carbon" at depth in the 14C run, and the bomb peak (f up to ~1.9, when the 14C run's microbes
    respond as if inputs had nearly doubled) are damped the same way: NH1 surface F14C in 1975 is 1.15 in
    paper mode against 1.35 in tracer mode. Tracer mode carries ¹⁴C on the actual carbon fluxes and is exact
    for an isotope.

Time convention
    Model time is the decimal year AD; calendar year Y is the interval [Y, Y + 1). Litter formed in year Y has
    the atmosphere of year Y − 1 (P §2.2, §2.5.3; ``AtmosphericRecord.litter_f14c``). The spin-up uses the
    atmospheric F14C of 1950 (P §2.2: "the fraction modern of atmospheric ¹⁴C in 1950"); the transient starts
    on 1 January 1950. ``sampling_year`` is the decimal year of the returned state: the years 1950 …
    floor(sampling_year) − 1 are integrated whole and the fraction sampling_year − floor(sampling_year) of the
    last year with that year's litter F14C. An integer year Y is therefore 1 January of Y (the end of Y − 1);
    pass Y + 0.5 for a sample taken at an unknown date within Y.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from . import _core
from .atmosphere import AtmosphericRecord
from .constants import C14_POOLS, HOURS_PER_YEAR, LAMBDA_14C_PER_HOUR, N_POOLS
from .model import SiteModel, parameter_vector

#: First year of the transient; the spin-up uses the atmosphere of this year (P §2.2).
SPIN_UP_YEAR = 1950
#: Radiocarbon modes of :func:`simulate_radiocarbon`.
MODES: tuple[str, ...] = ("tracer", "paper")
#: Default implicit steps per calendar year (count).
DEFAULT_STEPS_PER_YEAR = 4

NP = _core.NP
_C14 = list(C14_POOLS)
_SHRINK = 0.01  # paper-mode Newton: a step shrinks a pool at most 100× (as the carbon solver's default)

# ---- stiffly accurate, L-stable SDIRK tables (lower-triangular A, diagonal γ; the last row is b) ----
_G3 = 0.43586652150845899942  # root of γ³ − 3γ² + 3γ/2 − 1/6 in (1/6, 1/2) (Alexander 1977, L-stable order 3)
_SDIRK3 = np.array(
    [
        [_G3, 0.0, 0.0],
        [(1.0 - _G3) / 2.0, _G3, 0.0],
        [-1.5 * _G3 * _G3 + 4.0 * _G3 - 0.25, 1.5 * _G3 * _G3 - 5.0 * _G3 + 1.25, _G3],
    ]
)
_G2 = 1.0 - 1.0 / math.sqrt(2.0)  # L-stable order 2
_SDIRK2 = np.array([[_G2, 0.0], [1.0 - _G2, _G2]])
SCHEMES = {"sdirk3": _SDIRK3, "sdirk2": _SDIRK2, "euler": np.array([[1.0]])}
DEFAULT_SCHEME = "sdirk3"


@dataclass(frozen=True)
class RadiocarbonResult:
    """¹⁴C state at the sampling year (returned by :func:`simulate_radiocarbon`).

    Attributes:
        c14_pools: ¹⁴C per pool and layer (7, n_layers), pool order m, s, r, k, p, c, a, in carbon × F14C
            units at the sampling year (mg C cm⁻³).
        pools: the carbon pools used, (7, n_layers) (mg C cm⁻³); for a climatology site the annual mean.
        sampling_year: decimal year AD of the state (year).
        mode: "tracer" or "paper".
    """

    c14_pools: np.ndarray
    pools: np.ndarray
    sampling_year: float
    mode: str

    @property
    def f14c(self) -> np.ndarray:
        """F14C of the SOM pools p + c + a per layer (P Eq 16 set; spec A13), shape (n_layers,) (–)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.c14_pools[_C14].sum(axis=0) / self.pools[_C14].sum(axis=0)

    @property
    def f14c_pools(self) -> np.ndarray:
        """F14C of every pool, ¹⁴C / C, shape (7, n_layers); NaN for an empty pool (–)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.c14_pools / self.pools


# ------------------------------------------------------------------------------------------------------------
# compiled kernels
# ------------------------------------------------------------------------------------------------------------


@njit(cache=True)
def _flux_averaged_blocks(states, day_factors, substeps, V, K, mu, eps, phi, kdes, beta, Bbar, Cbar):
    """B̄[j, i, d] = Σ_t B_t[j, i, d]·C_t[j, d] / Σ_t C_t[j, d] into Bbar (N,7,7) (h⁻¹) and the mean state into
    Cbar (N,7) (mg C cm⁻³), over the states (365·substeps, N, 7) of the periodic cycle; state t is paired with
    the rates of its day t // substeps, as in the annual-cycle solver."""
    nd, N = states.shape[0], states.shape[1]
    Bd = np.empty((N, NP, NP))
    Bbar[:, :, :] = 0.0
    Cbar[:, :] = 0.0
    for t in range(nd):
        day = t // substeps
        _core.transfer_blocks(
            states[t],
            V,
            K,
            mu,
            eps,
            phi,
            kdes,
            beta,
            day_factors[day, 0],
            day_factors[day, 1],
            day_factors[day, 2],
            Bd,
        )
        for j in range(N):
            for d in range(NP):
                c = states[t, j, d]
                Cbar[j, d] += c
                for i in range(NP):
                    Bbar[j, i, d] += Bd[j, i, d] * c
    for j in range(N):
        for d in range(NP):
            if Cbar[j, d] > 0.0:
                for i in range(NP):
                    Bbar[j, i, d] /= Cbar[j, d]
            else:  # an empty pool: its specific rates at the mean state (it carries no flux either way)
                _core.transfer_blocks(states[0], V, K, mu, eps, phi, kdes, beta, 1.0, 1.0, 1.0, Bd)
                for i in range(NP):
                    Bbar[j, i, d] = Bd[j, i, d]
            Cbar[j, d] /= nd


@njit(cache=True)
def factor_shifted(B, lo, up, shift, G, Ginv):
    """Factor the blocks of M − shift·I, M = blockdiag(B_j) + Diffusion − λ₁₄ I (shift in h⁻¹; G scratch).
    Returns the determinant sign of btd_factor (0 if singular)."""
    _core.assemble(B, lo, up, shift + LAMBDA_14C_PER_HOUR, G)
    return _core.btd_factor(G, Ginv, lo, up)


@njit(cache=True)
def _sdirk_linear(Ginv, lo, up, D, n_steps, inv_gh, a, Y, K, Ystore, k0):
    """``n_steps`` steps of the SDIRK table ``a`` (stiffly accurate) for dD/dt = M D, D (N,7) in place.

    Ginv factors M − I/(γh) (inv_gh = 1/(γh) in h⁻¹). Stage i: (I − γhM) Y_i = D + Σ_{k<i} a_ik hK_k, solved
    as (M − I/(γh)) Y_i = −(D + Σ a_ik hK_k)/(γh); then hK_i = (Y_i − D − Σ a_ik hK_k)/γ; D ← Y_s.
    Y (N,7) and K (s,N,7) are scratch. If ``Ystore`` (n_steps_total, s, N, 7) is not empty, every stage value
    Y_i of step m is stored at ``Ystore[k0 + m, i]`` (for the discrete adjoint, ``gradients``).
    """
    s = a.shape[0]
    N = D.shape[0]
    g = a[0, 0]
    store = Ystore.shape[0] > 0
    for m in range(n_steps):
        for i in range(s):
            for j in range(N):
                for p in range(NP):
                    v = D[j, p]
                    for k in range(i):
                        v += a[i, k] * K[k, j, p]
                    Y[j, p] = -v * inv_gh
            _core.btd_solve(Ginv, lo, up, Y)
            if store:
                for j in range(N):
                    for p in range(NP):
                        Ystore[k0 + m, i, j, p] = Y[j, p]
            if i < s - 1:
                for j in range(N):
                    for p in range(NP):
                        v = D[j, p]
                        for k in range(i):
                            v += a[i, k] * K[k, j, p]
                        K[i, j, p] = (Y[j, p] - v) / g
        for j in range(N):
            for p in range(NP):
                D[j, p] = Y[j, p]


@njit(cache=True)
def tracer_transient(Ginv_full, Ginv_part, lo, up, X1, X, f, n_full, n_part, inv_gh_full, inv_gh_part, a, Ystore):
    """March the tracer from X (N,7; in place) through the years of f: f[:-1] whole years with ``n_full``
    steps each, the last entry a (possibly empty) partial year with ``n_part`` steps. Within a year the
    litter F14C is f_Y, so D = X − f_Y X₁ obeys dD/dt = M D exactly (M X₁ = −u). ``Ystore``: an empty
    (0, s, N, 7) array, or (n_steps, s, N, 7) to keep every stage value for the discrete adjoint (the one forward
    pass of both the value and the gradient)."""
    N = X.shape[0]
    s = a.shape[0]
    D = np.empty((N, NP))
    Y = np.empty((N, NP))
    K = np.empty((s, N, NP))
    ny = f.size
    k_step = 0
    for y in range(ny):
        last = y == ny - 1
        n = n_part if last else n_full
        if n == 0:
            continue
        fy = f[y]
        for j in range(N):
            for p in range(NP):
                D[j, p] = X[j, p] - fy * X1[j, p]
        if last:
            _sdirk_linear(Ginv_part, lo, up, D, n, inv_gh_part, a, Y, K, Ystore, k_step)
        else:
            _sdirk_linear(Ginv_full, lo, up, D, n, inv_gh_full, a, Y, K, Ystore, k_step)
        k_step += n
        for j in range(N):
            for p in range(NP):
                X[j, p] = fy * X1[j, p] + D[j, p]


def no_stage_store(a, n_layers: int) -> np.ndarray:
    """The empty ``Ystore`` of :func:`tracer_transient` (no stages kept)."""
    return np.empty((0, a.shape[0], n_layers, NP))


@njit(cache=True)
def _paper_spinup(X, rates, lam):
    """Steady state of the 14C run, f(X) − λX = 0, from the start X (N,7; in place), f the carbon model with the
    rate record ``rates`` (its inputs already × the litter F14C): Newton's method (``_core.newton_solve``, the
    carbon solver's kernel with the extra loss λ), with backward-Euler pseudo-time continuation (dt growing
    from 1e3 h) as fallback. Returns the status (0 ok)."""
    N = X.shape[0]
    work = _core.workspace(N)
    day = (1.0, 1.0, 1.0)
    X0 = X.copy()
    st, _k = _core.newton_solve(X0, X, rates, day, 0.0, lam, 50, 1e-12, 1e-12, _SHRINK, work)
    if st == 0:
        return 0
    X[:, :] = X0
    C = X0.copy()
    dt = 1e3
    for _ in range(2000):
        if dt > 1e14:
            st, _k = _core.newton_solve(C, X, rates, day, 0.0, lam, 50, 1e-12, 1e-12, _SHRINK, work)
            if st == 0:
                return 0
            X[:, :] = C
            dt = 1e6
            continue
        st, _k = _core.newton_solve(C, X, rates, day, 1.0 / dt, lam, 10, 1e-10, 1e-12, _SHRINK, work)
        if st == 0:
            C[:, :] = X
            dt *= 10.0
        else:
            X[:, :] = C
            dt *= 0.25
            if dt < 1e-3:
                return 1
    return 1


@njit(cache=True)
def _paper_transient(X, rates, u, lam, f, n_full, n_part, h_full, h_part, a):
    """The 14C run from X (N,7; in place) through the years of f (as in tracer_transient), with the SDIRK
    table ``a`` whose stage equations Y_i − γh (f(Y_i) − λY_i) = X_n + Σ a_ik hK_k are solved by Newton's
    method (``_core.newton_solve``). ``rates.inputs`` is overwritten with the year's inputs u·f_Y; h in hours.
    Returns the status (0 ok)."""
    N = X.shape[0]
    s = a.shape[0]
    g = a[0, 0]
    work = _core.workspace(N)
    day = (1.0, 1.0, 1.0)
    us = rates.inputs
    rhs = np.empty((N, NP))
    Y = np.empty((N, NP))
    Kst = np.empty((s, N, NP))
    ny = f.size
    for y in range(ny):
        last = y == ny - 1
        n = n_part if last else n_full
        h = h_part if last else h_full
        for j in range(N):
            for p in range(NP):
                us[j, p] = u[j, p] * f[y]
        inv_gh = 1.0 / (g * h)
        for _ in range(n):
            Y[:, :] = X
            for i in range(s):
                for j in range(N):
                    for p in range(NP):
                        v = X[j, p]
                        for k in range(i):
                            v += a[i, k] * Kst[k, j, p]
                        rhs[j, p] = v
                st, _k = _core.newton_solve(rhs, Y, rates, day, inv_gh, lam, 30, 1e-11, 1e-12, _SHRINK, work)
                if st != 0:
                    return st
                for j in range(N):
                    for p in range(NP):
                        Kst[i, j, p] = (Y[j, p] - rhs[j, p]) / g
            X[:, :] = Y
    return 0


# ------------------------------------------------------------------------------------------------------------
# Python API
# ------------------------------------------------------------------------------------------------------------


def _check_inputs(steady_state, site: SiteModel):
    if not isinstance(site, SiteModel):
        raise TypeError(f"site must be the SiteModel the steady state was solved with, got {type(site).__name__}")
    internal = getattr(steady_state, "solver_state", None)
    if not isinstance(internal, dict) or "C" not in internal or "rates" not in internal:
        raise TypeError(f"steady_state must be a SteadyState from solve_site, got {type(steady_state).__name__}")
    if not steady_state.converged:
        raise ValueError(f"the carbon steady state did not converge ({steady_state.message}); no radiocarbon on it")
    if steady_state.pools.shape != (N_POOLS, site.n_layers):
        raise ValueError(
            f"steady state has {steady_state.pools.shape[1]} layers but the site {site.n_layers}; "
            "pass the SiteModel the steady state was solved with"
        )
    return internal


def _check_params(site: SiteModel, params, rates) -> None:
    """The steady state's rates must be those of ``params`` (a mismatch would silently mix two models)."""
    if params is None:
        return
    mine = site.raw_rates(parameter_vector(params))
    for name, x, y in zip(("V", "K", "mu", "phi", "k_des", "inputs"), mine[:6], rates[:6], strict=True):
        if np.max(np.abs(x - y)) > 1e-12 * np.max(np.abs(y)):
            raise ValueError(
                f"params do not match the steady state (rate {name} differs); pass the parameters the steady "
                "state was solved with"
            )


def _tracer_operator(internal, site: SiteModel):
    """(B (N,7,7) h⁻¹, C (N,7) mg C cm⁻³, u (N,7) mg C cm⁻³ h⁻¹, lo, up (N,) h⁻¹) of the tracer system."""
    V, K, mu, phi, kdes, u, eps, lo, up, beta, _ = internal["rates"]
    if "daily_states" in internal and site.day_factors is not None:
        states = np.ascontiguousarray(internal["daily_states"], dtype=np.float64)
        N = states.shape[1]
        B = np.empty((N, NP, NP))
        C = np.empty((N, NP))
        substeps = int(internal.get("substeps_per_day", 1))
        if states.shape[0] != site.day_factors.shape[0] * substeps:
            raise ValueError(
                f"daily_states has {states.shape[0]} states, expected {site.day_factors.shape[0]} days × "
                f"{substeps} substeps"
            )
        _flux_averaged_blocks(
            states, np.ascontiguousarray(site.day_factors), substeps, V, K, mu, eps, phi, kdes, beta, B, C
        )
    else:
        if site.day_factors is not None:
            raise NotImplementedError(
                "radiocarbon for a temperature-climatology site needs the periodic daily states "
                "(steady_state.solver_state['daily_states']) of the annual-cycle solver"
            )
        C = internal["C"]
        B = np.empty((C.shape[0], NP, NP))
        _core.transfer_blocks(C, V, K, mu, eps, phi, kdes, beta, 1.0, 1.0, 1.0, B)
    return B, C, u, lo, up


def _unit_steady_state(B, u, lo, up, decay: bool) -> np.ndarray:
    """X₁ (N,7): the tracer steady state for litter F14C = 1, M X₁ = −u (with or without λ₁₄)."""
    N = B.shape[0]
    G = np.empty((N, NP, NP))
    Ginv = np.empty((N, NP, NP))
    shift = 0.0 if decay else -LAMBDA_14C_PER_HOUR
    if factor_shifted(B, lo, up, shift, G, Ginv) == 0:
        raise np.linalg.LinAlgError("the tracer matrix is singular (a pool with no outflow, e.g. extinct microbes)")
    X1 = -np.ascontiguousarray(u, dtype=np.float64)
    _core.btd_solve(Ginv, lo, up, X1)
    return X1


def f14c_steady_state(steady_state, site: SiteModel, litter_f14c: float, *, decay: bool = True) -> np.ndarray:
    """Tracer-mode ¹⁴C pools in equilibrium with a constant litter F14C.

    Solves (blockdiag(B_j) + Diffusion − λ₁₄ I) X = −u·F_litter on the carbon steady state (module docstring).

    Args:
        steady_state: converged :class:`~bayes_vmimics.steady_state.SteadyState` of ``site`` (–).
        site: the :class:`~bayes_vmimics.model.SiteModel` the steady state was solved with (–).
        litter_f14c: F14C of all litter inputs, > 0 (–).
        decay: include radioactive decay λ₁₄ = ln 2 / 5730 yr⁻¹ (bool).

    Returns:
        ¹⁴C pools (7, n_layers) in carbon × F14C units (mg C cm⁻³); without decay they equal
        ``litter_f14c`` × the carbon pools.

    Raises:
        ValueError: steady state not converged or not of this site; litter F14C not positive and finite.
        NotImplementedError: a climatology site whose steady state lacks the periodic daily states.
    """
    internal = _check_inputs(steady_state, site)
    f = float(litter_f14c)
    if not np.isfinite(f) or f <= 0.0:
        raise ValueError(f"litter_f14c must be positive and finite, got {litter_f14c!r}")
    B, _, u, lo, up = _tracer_operator(internal, site)
    return (f * _unit_steady_state(B, u, lo, up, decay)).T.copy()


def year_plan(sampling_year, steps_per_year):
    """Validated (s, years, n_full, n_part, h_full, h_part): years 1950 … floor(s) (the last one partial) and
    the step sizes (h)."""
    try:
        s = float(sampling_year)
    except (TypeError, ValueError):
        raise ValueError(f"sampling_year must be a number (decimal year AD), got {sampling_year!r}") from None
    if not np.isfinite(s):
        raise ValueError(f"sampling_year must be finite, got {sampling_year!r}")
    if s < SPIN_UP_YEAR:
        raise ValueError(
            f"sampling_year {s!r} is before {SPIN_UP_YEAR}: the model is spun up to equilibrium with the "
            f"{SPIN_UP_YEAR} atmosphere and integrated forward from 1 January {SPIN_UP_YEAR} (P §2.2)"
        )
    if isinstance(steps_per_year, bool) or int(steps_per_year) != steps_per_year or steps_per_year < 1:
        raise ValueError(f"steps_per_year must be a positive integer, got {steps_per_year!r}")
    n_full = int(steps_per_year)
    last = math.floor(s)
    frac = s - last
    years = np.arange(SPIN_UP_YEAR, last + 1, dtype=np.int64)
    n_part = math.ceil(frac * n_full - 1e-9) if frac > 0.0 else 0
    h_full = HOURS_PER_YEAR / n_full
    h_part = frac * HOURS_PER_YEAR / n_part if n_part else h_full
    return s, years, n_full, n_part, h_full, h_part


def simulate_radiocarbon(
    steady_state,
    site: SiteModel,
    params,
    atmosphere: AtmosphericRecord,
    zone: str,
    sampling_year: float,
    *,
    mode: str = "tracer",
    steps_per_year: int = DEFAULT_STEPS_PER_YEAR,
    decay: bool = True,
) -> RadiocarbonResult:
    """¹⁴C of every pool at the sampling year: 1950 spin-up, then the transient (P §2.2; spec Sect. 11).

    Args:
        steady_state: converged :class:`~bayes_vmimics.steady_state.SteadyState` of ``site`` (–).
        site: the :class:`~bayes_vmimics.model.SiteModel` the steady state was solved with (–).
        params: the parameters the steady state was solved with, a
            :class:`~bayes_vmimics.parameters.Parameters` or 7 values; checked against the steady state's
            rates; may be None in tracer mode (–).
        atmosphere: atmospheric F14C record (:class:`~bayes_vmimics.atmosphere.AtmosphericRecord`) (–).
        zone: atmospheric zone of the site, one of ``atmosphere.zones`` (e.g. "NH1") or "SH1-2" (–).
        sampling_year: decimal year of the returned state, ≥ 1950. The years 1950 … floor(sampling_year) − 1
            are integrated whole, then the fraction sampling_year − floor(sampling_year) of the last year with
            that year's litter F14C; an integer year Y is 1 January of Y. Years after the end of the record
            are allowed: the atmosphere is held at the record's last year (P §2.5.3: 2010 level after 2010)
            (year AD).
        mode: "tracer" (default: ¹⁴C as an isotope tracer on the carbon fluxes) or "paper" (an independent
            nonlinear run with inputs × F14C, as P; constant-temperature sites only) (–).
        steps_per_year: implicit SDIRK steps per calendar year (count).
        decay: include radioactive decay λ₁₄ = ln 2 / 5730 yr⁻¹ (bool; False only for tests).

    Returns:
        :class:`RadiocarbonResult`; ``.f14c`` is the F14C of p + c + a per layer.

    Raises:
        ValueError: sampling year before 1950 or not finite; unknown zone or mode; steady state not converged
            or not of this site; params that do not match the steady state; bad ``steps_per_year``.
        NotImplementedError: paper mode on a temperature-climatology site, or a climatology steady state
            without periodic daily states.
        RuntimeError: the paper-mode Newton iteration failed.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    internal = _check_inputs(steady_state, site)
    s, years, n_full, n_part, h_full, h_part = year_plan(sampling_year, steps_per_year)
    if not isinstance(atmosphere, AtmosphericRecord):
        raise TypeError(f"atmosphere must be an AtmosphericRecord, got {type(atmosphere).__name__}")
    f_spin = atmosphere.f14c(zone, SPIN_UP_YEAR)  # raises ValueError for an unknown zone
    f_years = np.ascontiguousarray(atmosphere.litter_f14c(zone, years), dtype=np.float64)
    a = SCHEMES[DEFAULT_SCHEME]
    g = a[0, 0]
    lam = LAMBDA_14C_PER_HOUR if decay else 0.0
    if mode == "tracer":
        if params is not None:
            _check_params(site, params, internal["rates"])
        B, C, u, lo, up = _tracer_operator(internal, site)
        X1 = _unit_steady_state(B, u, lo, up, decay)
        X = f_spin * X1
        N = C.shape[0]
        G = np.empty((N, NP, NP))
        Ginv_full = np.empty((N, NP, NP))
        shift = 0.0 if decay else -LAMBDA_14C_PER_HOUR
        factor_shifted(B, lo, up, shift + 1.0 / (g * h_full), G, Ginv_full)
        if n_part:
            Ginv_part = np.empty((N, NP, NP))
            factor_shifted(B, lo, up, shift + 1.0 / (g * h_part), G, Ginv_part)
        else:
            Ginv_part = Ginv_full
        tracer_transient(
            Ginv_full,
            Ginv_part,
            lo,
            up,
            X1,
            X,
            f_years,
            n_full,
            n_part,
            1.0 / (g * h_full),
            1.0 / (g * h_part),
            a,
            no_stage_store(a, N),
        )
    else:
        if site.day_factors is not None:
            raise NotImplementedError(
                "paper mode is implemented for constant-temperature sites only; use mode='tracer'"
            )
        if params is None:
            raise ValueError("paper mode needs params (the parameters the steady state was solved with)")
        rates = internal["rates"]
        _check_params(site, params, rates)
        C = internal["C"]
        u = rates.inputs
        X = np.ascontiguousarray(C * f_spin)
        rates14 = rates._replace(inputs=np.ascontiguousarray(u * f_spin))  # the 14C run's own inputs (mutable)
        st = _paper_spinup(X, rates14, lam)
        if st != 0:
            raise RuntimeError("paper mode: the 14C run's spin-up to steady state did not converge")
        st = _paper_transient(X, rates14, u, lam, f_years, n_full, n_part, h_full, h_part, a)
        if st != 0:
            raise RuntimeError(f"paper mode: Newton's method failed in the transient (status {st})")
    return RadiocarbonResult(c14_pools=X.T.copy(), pools=C.T.copy(), sampling_year=s, mode=mode)
