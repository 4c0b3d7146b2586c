"""The cold steady state from coarser grids (numba): pairs of layers merged, a spin-up on the coarsest grid,
then Newton on each finer one, each start interpolated from the coarser solution (log C linear in depth).
Called by :func:`bayes_vmimics.fixed_point.coarse_start`; the method is described in ``docs/steady_state.md``.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from ._core import CTINY, NP, ST_CONVERGED, ST_MAX_ITER, ST_SADDLE, build_rates, rates_rhs, steady_state_iterate


# ---------------------------------------------------------------------------------------------------------
# a cold start near the answer: the steady state on coarser grids, prolonged to the fine one
# ---------------------------------------------------------------------------------------------------------
@njit(cache=True)
def coarsen_grid(edges_cm, clay):
    """The grid with adjacent pairs of layers merged (an odd last layer kept): edges (M+1,) (cm) and the
    thickness-weighted clay fraction per coarse layer (M,), M = ⌈N/2⌉."""
    n = clay.size
    m = (n + 1) // 2
    edges = np.empty(m + 1)
    cl = np.empty(m)
    for J in range(m):
        j0 = 2 * J
        j1 = min(j0 + 2, n)
        edges[J] = edges_cm[j0]
        s = 0.0
        for j in range(j0, j1):
            s += clay[j] * (edges_cm[j + 1] - edges_cm[j])
        cl[J] = s / (edges_cm[j1] - edges_cm[j0])
    edges[m] = edges_cm[n]
    return edges, cl


@njit(cache=True)
def prolong(Cc, edges_c, edges_f):
    """Pools Cc (M,7) on the grid with edges ``edges_c`` (cm) carried to the grid with edges ``edges_f``:
    linear interpolation of log C between layer midpoints (constant beyond the outer midpoints), so that every
    pool stays positive. Returns (N,7) (mg C cm⁻³)."""
    m = Cc.shape[0]
    n = edges_f.size - 1
    X = np.empty((n, NP))
    zc = np.empty(m)
    for J in range(m):
        zc[J] = 0.5 * (edges_c[J] + edges_c[J + 1])
    J = 0
    for j in range(n):
        z = 0.5 * (edges_f[j] + edges_f[j + 1])
        while J < m - 2 and z > zc[J + 1]:
            J += 1
        if m == 1 or z <= zc[0]:
            for i in range(NP):
                X[j, i] = max(Cc[0, i], 1e-30)
        elif z >= zc[m - 1]:
            for i in range(NP):
                X[j, i] = max(Cc[m - 1, i], 1e-30)
        else:
            w = (z - zc[J]) / (zc[J + 1] - zc[J])
            for i in range(NP):
                a = np.log(max(Cc[J, i], 1e-30))
                b = np.log(max(Cc[J + 1, i], 1e-30))
                X[j, i] = np.exp(a + w * (b - a))
    return X


@njit(cache=True)
def invadable(C, rates, tiny, rate):
    """Whether a microbial pool (r or K) that is negligible at C (≤ ``tiny``, mg C cm⁻³) has a per-capita
    rate of change above ``rate`` (h⁻¹): microbes "extinct" where they could grow, i.e. a root of dC/dt = 0
    only because the pool is ~0 (unstable: an invasion would leave it)."""
    N = C.shape[0]
    F = np.empty((N, NP))
    A = np.empty((N, NP, NP))
    resp = np.empty(N)
    rates_rhs(C, rates, (1.0, 1.0, 1.0), F, A, resp, False)
    for j in range(N):
        for i in range(2, 4):
            if C[j, i] <= tiny and F[j, i] > rate * C[j, i]:
                return True
    return False


#: the rate record of a coarse grid built inside compiled code (same fields as ``model.Rates``, which this
#: module cannot import)
GridRates = namedtuple(
    "GridRates", ("V", "K", "mu", "phi", "k_des", "inputs", "eps", "lower", "upper", "beta", "f_met")
)


@njit(cache=True)
def grid_rates(theta, kc, T, clay, edges_cm, IA, IB, fmetA, fmetB, npp, fixed_beta):
    """:func:`build_rates` as a :data:`GridRates` record (arguments and units as there)."""
    V, K, mu, phi, kdes, u, eps, lo, up, beta, fbar = build_rates(
        theta, kc, T, clay, edges_cm, IA, IB, fmetA, fmetB, npp, fixed_beta
    )
    return GridRates(V, K, mu, phi, kdes, u, eps, lo, up, beta, fbar)


@njit(cache=True)
def coarse_cascade(
    theta, kc, T, clay, edges_cm, IA, IB, fmetA, fmetB, npp, fixed_beta, rates, levels, c0, dt0, max_iter, rtol,
    atol, shrink, growth, invasion_rate, coarse_growth, coarse_tol,
):  # fmt: skip
    """Cold steady state through coarser grids: merge adjacent layers ``levels`` times (while ≥ 4 layers
    remain), spin up on the coarsest grid from the pools ``c0`` (7,) in every layer (growing implicit steps from
    dt0 h, as :func:`steady_state_iterate`), then on each finer grid run pure Newton (≤ 30 iterations) from the
    coarser solution carried over by :func:`prolong`; the finest grid is the site's (``rates``, the model's
    rate record on ``edges_cm``). Site arguments as in :func:`build_rates`.

    Returns (status, n_iter, fn, Ginv, C): status 0 when every level converged to a root that is neither a saddle
    nor has negligible microbes that could invade (growth per capita above ``invasion_rate`` h⁻¹, see
    :func:`invadable`), else the failing level's status (or ST_SADDLE for an invadable root; the caller then
    spins up on the site's grid); n_iter the iterations on all levels (count; a coarse one costs less);
    fn, Ginv, C the relative residual norm (h⁻¹), Jacobian factors and pools (N,7) (mg C cm⁻³) on the site's
    grid.
    """
    edges_list = [edges_cm]
    clay_list = [clay]
    e, c = edges_cm, clay
    for _ in range(levels):
        if c.size < 4:
            break
        e, c = coarsen_grid(e, c)
        edges_list.append(e)
        clay_list.append(c)
    nlev = len(edges_list) - 1
    N = clay.size
    empty = np.empty((N, NP))
    if nlev == 0:
        return ST_MAX_ITER, 0, np.inf, np.empty((N, NP, NP)), empty
    m = clay_list[nlev].size
    Cc = np.empty((m, NP))
    for j in range(m):
        for i in range(NP):
            Cc[j, i] = c0[i]
    rc = grid_rates(theta, kc, T, clay_list[nlev], edges_list[nlev], IA, IB, fmetA, fmetB, npp, fixed_beta)
    st, n_iter, fn, Ginv = steady_state_iterate(Cc, rc, dt0, max_iter, rtol, atol, shrink, coarse_growth, coarse_tol)
    if st != ST_CONVERGED:
        return st, n_iter, fn, Ginv, empty
    for L in range(nlev - 1, 0, -1):
        X = prolong(Cc, edges_list[L + 1], edges_list[L])
        rl = grid_rates(theta, kc, T, clay_list[L], edges_list[L], IA, IB, fmetA, fmetB, npp, fixed_beta)
        st, k, fn, Ginv = steady_state_iterate(X, rl, -1.0, 30, rtol, atol, shrink, growth)
        n_iter += k
        if st != ST_CONVERGED:
            return st, n_iter, fn, Ginv, empty
        Cc = X
    X = prolong(Cc, edges_list[1], edges_list[0])
    st, k, fn, Ginv = steady_state_iterate(X, rates, -1.0, 30, rtol, atol, shrink, growth)
    n_iter += k
    if st == ST_CONVERGED and invadable(X, rates, CTINY, invasion_rate):
        st = ST_SADDLE
    return st, n_iter, fn, Ginv, X
