"""Periodic steady state under a daily temperature climatology (P §2.2: "ran the model to steady state"
with the 1981–2010 daily climatology; spec Sect. 8).

The state on 1 January, C0, is periodic when Φ(C0) = C0, where Φ is the one-year map: 365 daily
backward-Euler steps (``substeps`` per day) with that day's rates. We solve Φ(C0) − C0 = 0 by
Newton–shooting, warm-started from the annual-mean-temperature fixed point. The monodromy matrix
M = ∂Φ/∂C0 is propagated exactly through the implicit steps (S ← (I − hJ)⁻¹ S) once, then reused
(chord iterations), which converge fast because the starting point is already close.

Backward Euler pairs each step's end state with the rates of its day, so over a periodic orbit the mean of
dC/dt over those (state, day) pairs is exactly zero; the reported annual-mean pools and respiration are
means over the same pairs, which keeps the annual carbon balance exact.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from numba import njit

from . import _core
from ._core import NP
from .fixed_point import make_result, solve_constant

SHOOT_RTOL = 1e-9
SHOOT_MAX = 12


@njit(cache=True)
def annual_map(C0, rates, day_factors, substeps, want_sens, S, states, resp_out, rtol, atol, shrink):
    """Integrate one year from C0 (N,7) with implicit daily steps; return (status, C_end).

    ``rates`` is the ``model.Rates`` record at the annual-mean temperature, ``day_factors`` (365, 3) the day
    multipliers of V and the two K families. If want_sens, S (7N, N, 7) is the identity on entry and holds the
    monodromy matrix (columns S[c]) on exit. states (n_steps, N, 7) and resp_out (n_steps, N) receive each
    step's end state and respiration.
    """
    N = C0.shape[0]
    work = _core.workspace(N)
    F, A, G, Ginv, _delta, resp = work
    lo, up = rates.lower, rates.upper
    C = C0.copy()
    X = C0.copy()
    h = 24.0 / substeps
    inv_dt = 1.0 / h
    n_days = day_factors.shape[0]
    k = 0
    for d in range(n_days):
        day = (day_factors[d, 0], day_factors[d, 1], day_factors[d, 2])
        for _ in range(substeps):
            X[:, :] = C
            st, _it = _core.newton_solve(C, X, rates, day, inv_dt, 0.0, 30, rtol, atol, shrink, work)
            if st != 0:
                return st, C
            # respiration (and, for the sensitivity, the Jacobian) at the converged end state
            _core.rates_rhs(X, rates, day, F, A, resp, want_sens)
            for j in range(N):
                resp_out[k, j] = resp[j]
                for i in range(NP):
                    states[k, j, i] = X[j, i]
            if want_sens:
                _core.assemble(A, lo, up, inv_dt, G)
                if _core.btd_factor(G, Ginv, lo, up) == 0:
                    return 3, C
                # S <- (I − hJ)⁻¹ S = −(1/h) (J − I/h)⁻¹ S
                for c in range(S.shape[0]):
                    _core.btd_solve(Ginv, lo, up, S[c])
                    for j in range(N):
                        for i in range(NP):
                            S[c, j, i] *= -inv_dt
            C[:, :] = X
            k += 1
    return 0, C


def solve_periodic(site, theta, C, warm, options):
    """Periodic steady state of a climatology site (see module docstring).

    Args:
        site: the prepared :class:`~bayes_vmimics.model.SiteModel` with a temperature climatology (–).
        theta: parameters, 7 values in ``PARAMETER_NAMES`` order (parameter units).
        C: start state on 1 January (n_layers, 7), internal layout (mg C cm⁻³).
        warm: whether C is a warm start (else the annual-mean fixed point is solved first) (bool).
        options: a :class:`~bayes_vmimics.fixed_point.SolverOptions` (–).

    Returns:
        :class:`~bayes_vmimics.fixed_point.SteadyState`.
    """
    rates = site.raw_rates(theta)
    n_iter = 0
    if not warm:
        # annual-mean-temperature fixed point as the starting orbit point
        mean_res = solve_constant(site, theta, C, False, options)
        n_iter += mean_res.n_iter
        if not mean_res.converged:
            return mean_res
        C = np.ascontiguousarray(mean_res.start_of_year.T)
    N = site.n_layers
    M = NP * N
    substeps = options.substeps_per_day
    n_steps = 365 * substeps
    states = np.empty((n_steps, N, NP))
    resp = np.empty((n_steps, N))
    S = np.empty((M, N, NP))
    inner_tol = 1e-12
    status, mono_lu = 1, None
    C0 = C.copy()
    fn = np.inf
    for _shoot in range(SHOOT_MAX):
        want = mono_lu is None
        if want:
            S[:] = np.eye(M).reshape(M, N, NP)
        st, C1 = annual_map(
            C0,
            rates,
            site.day_factors,
            substeps,
            want,
            S,
            states,
            resp,
            inner_tol,
            options.atol,
            options.shrink,
        )
        n_iter += 1  # one simulated year per Newton–shooting iteration
        if st != 0:
            status = st
            break
        g = (C1 - C0).ravel()
        fn = float(np.max(np.abs(g) / (np.abs(C0.ravel()) + options.atol)))
        if fn < SHOOT_RTOL:
            status = 0
            break
        if want:
            Mmat = S.reshape(M, M).T - np.eye(M)
            mono_lu = sla.lu_factor(Mmat)
        step = sla.lu_solve(mono_lu, -g).reshape(N, NP)
        C0 = np.maximum(C0 + step, options.shrink * C0)
    if status == 0:
        # the orbit through C1 (= C0 to tolerance): states hold one period
        mean_pools = states.mean(axis=0)
        mean_resp = resp.mean(axis=0)
        res = make_result(
            site,
            rates,
            np.ascontiguousarray(C0),
            0,
            n_iter,
            fn,
            None,
            respiration=mean_resp,
            mean_pools=mean_pools,
        )
        res.solver_state["daily_states"] = states
        res.solver_state["daily_respiration"] = resp
        res.solver_state["substeps_per_day"] = substeps
        return res
    return make_result(site, rates, np.ascontiguousarray(C0), status, n_iter, fn, None)
