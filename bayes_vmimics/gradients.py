"""Exact gradients of the per-site log-likelihood with respect to the seven parameters (adjoint method).

Everything here is analytic; finite differences appear only in the tests.

Steady state (implicit function theorem)
    The steady state C*(θ) solves F(C*, θ) = 0 (P Eq 1 with dC/dt = 0). For a scalar L(C*, θ),

        dL/dθ = ∂L/∂θ|_C − λᵀ ∂F/∂θ,        Jᵀ λ = ∂L/∂C,    J = ∂F/∂C at C*,

    one transposed block-tridiagonal solve with the factors of J that the Newton solver already computed
    (``SteadyState.solver_state["Ginv"]``, :func:`~bayes_vmimics._core.btd_solve_transposed`).
    ∂F/∂θ (N, 7 pools, 7 parameters) is the tangent of ``_core.layer_fluxes`` and of the diffusion term
    along the tangents of the rate constants (:func:`rate_tangents`): x_v scales every V (P Eqs 6–7), x_K
    every K, x_d the desorption rate (P Eq 12), x_D the diffusivity (P Eq 10); α_v enters V through
    exp(−α_v z̄) and α_r the root fractions ρ_j (corrected P Eq 11, spec A2), hence the inputs u, the layer
    metabolic fraction f̄, the turnover coefficients μ = a·g·exp(b f̄) (P Eqs 8–9) and the DBT necromass
    fractions (derivative 0 where the min() cap of spec 4.5 is active); β enters M = μ C^β (∂M/∂β = M ln C).

Radiocarbon (tracer mode, discrete adjoint)
    The tracer state at the sampling year is a linear function of the litter inputs computed by a fixed
    sequence of block-tridiagonal solves (``radiocarbon``: 1950 steady state M X₁ = −u, then 3-stage SDIRK
    steps of dD/dt = M D per year). Its discrete adjoint runs the steps backwards with transposed solves and
    accumulates M̄ (on M's sparsity: the 7×7 blocks B̄_j and the diffusion couplings) and ū. M depends on
    C* through the specific transfer blocks B_j(C*, θ) (``_core.layer_transfer``), so B̄ gives both an
    explicit ∂L/∂θ and a ∂L/∂C that is folded into the same transposed steady-state solve. The gradient is
    the exact derivative of the *discrete* ¹⁴C computation (the one the likelihood evaluates).

Units: C in mg C cm⁻³, rates in h⁻¹, parameters in their Table 1 units (α in m⁻¹); gradients are in
log-likelihood units per parameter unit.

This module sits below :mod:`~bayes_vmimics.likelihood`, which calls it for
``CalibrationProblem.site_log_likelihood_and_gradient``: it imports nothing from there. ``problem`` arguments are
:class:`~bayes_vmimics.likelihood.CalibrationProblem` instances and ``p`` their
:class:`~bayes_vmimics.site_evaluation.PreparedSite` entries.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import _core
from .constants import C14_POOLS, SOC_POOLS
from .model import SiteModel
from .parameters import PARAMETER_NAMES

NP = _core.NP
NPAR = len(PARAMETER_NAMES)
_SOC = np.array(SOC_POOLS)
_C14 = np.array(C14_POOLS)


# ------------------------------------------------------------------------------------------------------------
# tangents of the rate constants (∂rates/∂θ)
# ------------------------------------------------------------------------------------------------------------


@njit(cache=True)
def rate_tangents(theta, kc, clay, edges_cm, IA, IB, fmetA, fmetB, fixed_beta, V, K, mu, phi, kdes, lo, up, fbar):
    """Derivatives of the rate constants of ``_core.build_rates`` with respect to each parameter.

    Args: theta (7,) parameters; kc packed constants; clay (N,); edges_cm (N+1,) (cm); IA, IB litter inputs
    (mg C cm⁻² h⁻¹); fmetA, fmetB metabolic fractions; fixed_beta (<= 0: β is calibrated); V, K, mu, phi,
    kdes, lo, up, fbar the rates at theta (units of ``build_rates``).

    Returns (dV (7,N,6), dK (7,N,8), dmu (7,N,2), dphi (7,N,6), dkdes (7,N), du (7,N,7), dlo (7,N),
    dup (7,N), dbeta (7,)): first index the parameter, units rate unit per parameter unit.
    """
    n = clay.size
    dV = np.zeros((NPAR, n, 6))
    dK = np.zeros((NPAR, n, 8))
    dmu = np.zeros((NPAR, n, 2))
    dphi = np.zeros((NPAR, n, 6))
    dkdes = np.zeros((NPAR, n))
    du = np.zeros((NPAR, n, NP))
    dlo = np.zeros((NPAR, n))
    dup = np.zeros((NPAR, n))
    dbeta = np.zeros(NPAR)
    xv, xk, xd, xD, ar = theta[0], theta[1], theta[2], theta[3], theta[4]
    # x_v, x_K, x_d, x_D are pure scale factors (P Eqs 6-7, 10, 12; spec 4.1, 4.2, 4.4, 7)
    for j in range(n):
        for i in range(6):
            dV[_core.P_XV, j, i] = V[j, i] / xv
        for i in range(8):
            dK[_core.P_XK, j, i] = K[j, i] / xk
        dkdes[_core.P_XD, j] = kdes[j] / xd
        dlo[_core.P_XDIFF, j] = lo[j] / xD
        dup[_core.P_XDIFF, j] = up[j] / xD
    # alpha_v: V ∝ exp(−α_v z̄_j), z̄ in m (spec 4.1, A1)
    if kc[_core.KC_VDEPTH] > 0.5:
        for j in range(n):
            zm = 0.5 * (edges_cm[j] + edges_cm[j + 1]) * 0.01
            for i in range(6):
                dV[_core.P_AV, j, i] = -zm * V[j, i]
    # beta
    if fixed_beta <= 0.0:
        dbeta[_core.P_BETA] = 1.0
    # alpha_r: root fractions ρ_j (corrected P Eq 11, spec A2) → inputs, f̄, μ, φ
    h = edges_cm[n] * 0.01
    eh = math.exp(-ar * h)
    den = 1.0 - eh
    dden = h * eh
    fm, fs = kc[_core.KC_FDIRECT], kc[_core.KC_FDIRECT + 1]
    dbt = kc[_core.KC_DBTFLAG] > 0.5
    p = _core.P_AR
    for j in range(n):
        z0 = edges_cm[j] * 0.01
        z1 = edges_cm[j + 1] * 0.01
        e0 = math.exp(-ar * z0)
        e1 = math.exp(-ar * z1)
        num = e0 - e1
        dnum = -z0 * e0 + z1 * e1
        drho = (dnum * den - num * dden) / (den * den)
        dz = edges_cm[j + 1] - edges_cm[j]
        A = IA / (edges_cm[1] - edges_cm[0]) if j == 0 else 0.0
        B = IB * (num / den) / dz
        dB = IB * drho / dz
        Im = fmetA * A + fmetB * B
        dIm = fmetB * dB
        dIs = (1.0 - fmetB) * dB
        du[p, j, 0] = (1.0 - fm) * dIm
        du[p, j, 1] = (1.0 - fs) * dIs
        du[p, j, 4] = fm * dIm
        du[p, j, 5] = fs * dIs
        dfb = (dIm * (A + B) - Im * dB) / ((A + B) * (A + B)) if A + B > 0.0 else 0.0
        if dfb == 0.0:
            continue
        dmu[p, j, 0] = mu[j, 0] * kc[_core.KC_TAUR + 1] * dfb
        dmu[p, j, 1] = mu[j, 1] * kc[_core.KC_TAUK + 1] * dfb
        rp, kp = phi[j, 0], phi[j, 3]
        if dbt:
            b4 = kc[_core.KC_DBT + 4]
            vr = kc[_core.KC_DBT + 2] * 0.1 * math.exp(-b4 * fbar[j])
            vk = kc[_core.KC_DBT + 3] * 0.3 * math.exp(-b4 * fbar[j])
            # min(1 − rp, v) picks v only when v < 1 − rp (Python's min keeps the first of equals)
            drc = -b4 * vr * dfb if vr < 1.0 - rp else 0.0
            dkc = -b4 * vk * dfb if vk < 1.0 - kp else 0.0
        else:
            drc = -3.0 * phi[j, 1] * dfb
            dkc = -3.0 * phi[j, 4] * dfb
        dphi[p, j, 1] = drc
        dphi[p, j, 2] = -drc
        dphi[p, j, 4] = dkc
        dphi[p, j, 5] = -dkc
    return dV, dK, dmu, dphi, dkdes, du, dlo, dup, dbeta


# ------------------------------------------------------------------------------------------------------------
# ∂F/∂θ: tangent of the right-hand side along rate tangents
# ------------------------------------------------------------------------------------------------------------


@njit(cache=True)
def _layer_flux_tangent(c, V, K, mu, phi, kdes, u, eps, beta, dV, dK, dmu, dphi, dkdes, du, dbeta, df):
    """Tangent of ``_core.layer_fluxes`` (constant forcing) at fixed state c along rate tangents, into df (7,)."""
    Cm, Cs, Cr, Ck, Cp, Cc, Ca = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    # saturations h = S/(K + S) and their tangents dh = −S dK/(K + S)² (P Eqs 4-5)
    hrm = Cm / (K[0] + Cm)
    hrs = Cs / (K[1] + Cs)
    hra = Ca / (K[2] + Ca)
    hkm = Cm / (K[3] + Cm)
    hks = Cs / (K[4] + Cs)
    hka = Ca / (K[5] + Ca)
    hor = Cc / (K[6] + Cc)
    hok = Cc / (K[7] + Cc)
    dhrm = -hrm * dK[0] / (K[0] + Cm)
    dhrs = -hrs * dK[1] / (K[1] + Cs)
    dhra = -hra * dK[2] / (K[2] + Ca)
    dhkm = -hkm * dK[3] / (K[3] + Cm)
    dhks = -hks * dK[4] / (K[4] + Cs)
    dhka = -hka * dK[5] / (K[5] + Ca)
    dhor = -hor * dK[6] / (K[6] + Cc)
    dhok = -hok * dK[7] / (K[7] + Cc)
    dFrm = Cr * (dV[0] * hrm + V[0] * dhrm)
    dFrs = Cr * (dV[1] * hrs + V[1] * dhrs)
    dFra = Cr * (dV[2] * hra + V[2] * dhra)
    dFkm = Ck * (dV[3] * hkm + V[3] * dhkm)
    dFks = Ck * (dV[4] * hks + V[4] * dhks)
    dFka = Ck * (dV[5] * hka + V[5] * dhka)
    dFox = Cr * (dV[1] * hor + V[1] * dhor) + Ck * (dV[4] * hok + V[4] * dhok)
    # M = μ C^β (P Eqs 8-9, spec A8): dM = dμ C^β + M ln C dβ (0 at C = 0)
    if Cr > 0.0:
        pr = np.exp(beta * np.log(Cr))
        Mr = mu[0] * pr
        dMr = dmu[0] * pr + Mr * np.log(Cr) * dbeta
    else:
        Mr = 0.0
        dMr = 0.0
    if Ck > 0.0:
        pk = np.exp(beta * np.log(Ck))
        Mk = mu[1] * pk
        dMk = dmu[1] * pk + Mk * np.log(Ck) * dbeta
    else:
        Mk = 0.0
        dMk = 0.0
    dFdes = dkdes * Cp
    df[0] = du[0] - dFrm - dFkm
    df[1] = du[1] - dFrs - dFks
    df[2] = eps[0] * dFrm + eps[1] * dFrs + eps[2] * dFra - dMr
    df[3] = eps[3] * dFkm + eps[4] * dFks + eps[5] * dFka - dMk
    df[4] = du[4] + dphi[0] * Mr + phi[0] * dMr + dphi[3] * Mk + phi[3] * dMk - dFdes
    df[5] = du[5] + dphi[1] * Mr + phi[1] * dMr + dphi[4] * Mk + phi[4] * dMk - dFox
    df[6] = dphi[2] * Mr + phi[2] * dMr + dphi[5] * Mk + phi[5] * dMk + dFdes + dFox - dFra - dFka


@njit(cache=True)
def rhs_parameter_jacobian(C, V, K, mu, phi, kdes, u, eps, lo, up, beta, dV, dK, dmu, dphi, dkdes, du, dlo, dup, dbeta):
    """∂F/∂θ of the whole column at state C (N,7): shape (N, 7 pools, 7 parameters) (mg C cm⁻³ h⁻¹ per
    parameter unit). Rates and their tangents as returned by ``build_rates`` and :func:`rate_tangents`."""
    n = C.shape[0]
    out = np.zeros((n, NP, NPAR))
    df = np.empty(NP)
    for p in range(NPAR):
        for j in range(n):
            _layer_flux_tangent(
                C[j], V[j], K[j], mu[j], phi[j], kdes[j], u[j], eps, beta,
                dV[p, j], dK[p, j], dmu[p, j], dphi[p, j], dkdes[p, j], du[p, j], dbeta[p], df,
            )  # fmt: skip
            for i in range(NP):
                d = df[i]
                if j > 0:
                    d += dlo[p, j] * (C[j - 1, i] - C[j, i])
                if j < n - 1:
                    d += dup[p, j] * (C[j + 1, i] - C[j, i])
                out[j, i, p] = d
    return out


# ------------------------------------------------------------------------------------------------------------
# tangent of the specific transfer blocks B_j (for the ¹⁴C adjoint)
# ------------------------------------------------------------------------------------------------------------


@njit(cache=True)
def _transfer_tangent(c, V, K, mu, eps, phi, kdes, beta, dc, dV, dK, dmu, dphi, dkdes, dbeta, dB):
    """Tangent of ``_core.layer_transfer`` (constant forcing) along state tangent dc (7,) and rate tangents,
    into dB (7,7) (h⁻¹ per unit of the direction)."""
    Cm, Cs, Cr, Ck, Cc, Ca = c[0], c[1], c[2], c[3], c[5], c[6]
    dCm, dCs, dCr, dCk, dCc, dCa = dc[0], dc[1], dc[2], dc[3], dc[5], dc[6]
    for a in range(NP):
        for b in range(NP):
            dB[a, b] = 0.0
    # r = Cmic·V/(K + S): dr = (dCmic V + Cmic dV)/(K + S) − r (dK + dS)/(K + S)
    q = K[0] + Cm
    rm = Cr * V[0] / q
    drm = (dCr * V[0] + Cr * dV[0]) / q - rm * (dK[0] + dCm) / q
    q = K[1] + Cs
    rs = Cr * V[1] / q
    drs = (dCr * V[1] + Cr * dV[1]) / q - rs * (dK[1] + dCs) / q
    q = K[2] + Ca
    ra = Cr * V[2] / q
    dra = (dCr * V[2] + Cr * dV[2]) / q - ra * (dK[2] + dCa) / q
    q = K[3] + Cm
    km = Ck * V[3] / q
    dkm = (dCk * V[3] + Ck * dV[3]) / q - km * (dK[3] + dCm) / q
    q = K[4] + Cs
    ks = Ck * V[4] / q
    dks = (dCk * V[4] + Ck * dV[4]) / q - ks * (dK[4] + dCs) / q
    q = K[5] + Ca
    ka = Ck * V[5] / q
    dka = (dCk * V[5] + Ck * dV[5]) / q - ka * (dK[5] + dCa) / q
    q = K[6] + Cc
    o1 = Cr * V[1] / q
    dox = (dCr * V[1] + Cr * dV[1]) / q - o1 * (dK[6] + dCc) / q
    q = K[7] + Cc
    o2 = Ck * V[4] / q
    dox += (dCk * V[4] + Ck * dV[4]) / q - o2 * (dK[7] + dCc) / q
    # turnover per unit biomass μ C^(β−1)
    if Cr > 0.0:
        pr = np.exp((beta - 1.0) * np.log(Cr))
        tr = mu[0] * pr
        dtr = dmu[0] * pr + tr * ((beta - 1.0) * dCr / Cr + np.log(Cr) * dbeta)
    else:
        tr = mu[0] if beta == 1.0 else 0.0
        dtr = dmu[0] if beta == 1.0 else 0.0
    if Ck > 0.0:
        pk = np.exp((beta - 1.0) * np.log(Ck))
        tk = mu[1] * pk
        dtk = dmu[1] * pk + tk * ((beta - 1.0) * dCk / Ck + np.log(Ck) * dbeta)
    else:
        tk = mu[1] if beta == 1.0 else 0.0
        dtk = dmu[1] if beta == 1.0 else 0.0
    dB[0, 0] = -(drm + dkm)
    dB[1, 1] = -(drs + dks)
    dB[6, 6] = -(dra + dka)
    dB[2, 0] = eps[0] * drm
    dB[2, 1] = eps[1] * drs
    dB[2, 6] = eps[2] * dra
    dB[3, 0] = eps[3] * dkm
    dB[3, 1] = eps[4] * dks
    dB[3, 6] = eps[5] * dka
    dB[2, 2] = -dtr
    dB[3, 3] = -dtk
    dB[4, 2] = dphi[0] * tr + phi[0] * dtr
    dB[5, 2] = dphi[1] * tr + phi[1] * dtr
    dB[6, 2] = dphi[2] * tr + phi[2] * dtr
    dB[4, 3] = dphi[3] * tk + phi[3] * dtk
    dB[5, 3] = dphi[4] * tk + phi[4] * dtk
    dB[6, 3] = dphi[5] * tk + phi[5] * dtk
    dB[4, 4] = -dkdes
    dB[6, 4] = dkdes
    dB[5, 5] = -dox
    dB[6, 5] = dox


@njit(cache=True)
def _transfer_pullback(
    C, V, K, mu, eps, phi, kdes, beta, dV, dK, dmu, dphi, dkdes, dbeta, Bbar, Cbar, thbar
):  # fmt: skip
    """Pull B̄ (N,7,7) back through B(C, θ): Cbar (N,7) += Σ B̄ ∂B/∂C, thbar (7,) += Σ B̄ ∂B/∂θ."""
    n = C.shape[0]
    dB = np.empty((NP, NP))
    dc = np.zeros(NP)
    z6 = np.zeros(6)
    z8 = np.zeros(8)
    z2 = np.zeros(2)
    for j in range(n):
        for d in range(NP):
            if d == 4:  # B does not depend on C_p
                continue
            dc[d] = 1.0
            _transfer_tangent(C[j], V[j], K[j], mu[j], eps, phi[j], kdes[j], beta, dc, z6, z8, z2, z6, 0.0, 0.0, dB)
            dc[d] = 0.0
            s = 0.0
            for a in range(NP):
                for b in range(NP):
                    s += Bbar[j, a, b] * dB[a, b]
            Cbar[j, d] += s
        for p in range(NPAR):
            _transfer_tangent(
                C[j], V[j], K[j], mu[j], eps, phi[j], kdes[j], beta, dc,
                dV[p, j], dK[p, j], dmu[p, j], dphi[p, j], dkdes[p, j], dbeta[p], dB,
            )  # fmt: skip
            s = 0.0
            for a in range(NP):
                for b in range(NP):
                    s += Bbar[j, a, b] * dB[a, b]
            thbar[p] += s


# ------------------------------------------------------------------------------------------------------------
# ¹⁴C tracer transient: the discrete adjoint of radiocarbon.tracer_transient (whose forward pass, with its stage
# values stored, serves the value and the gradient)
# ------------------------------------------------------------------------------------------------------------


@njit(cache=True)
def _accumulate_mbar(w, Y, Bbar, lobar, upbar):
    """M̄ += −w Yᵀ restricted to M's sparsity: blocks B̄_j and the diffusion couplings lo, up."""
    N = w.shape[0]
    for j in range(N):
        for a in range(NP):
            wa = -w[j, a]
            for b in range(NP):
                Bbar[j, a, b] += wa * Y[j, b]
        if j > 0:
            s = 0.0
            for p in range(NP):
                s -= w[j, p] * (Y[j - 1, p] - Y[j, p])
            lobar[j] += s
        if j < N - 1:
            s = 0.0
            for p in range(NP):
                s -= w[j, p] * (Y[j + 1, p] - Y[j, p])
            upbar[j] += s


@njit(cache=True)
def _tracer_adjoint(
    Ginv_full, Ginv_part, lo, up, f, n_full, n_part, inv_gh_full, inv_gh_part, a, Ystore, Xbar, X1bar, Bbar, lobar,
    upbar,
):  # fmt: skip
    """Discrete adjoint of :func:`~bayes_vmimics.radiocarbon.tracer_transient`. Xbar (N,7): adjoint of the final X
    (overwritten with the adjoint of the initial X). Accumulates X1bar (N,7), Bbar (N,7,7), lobar, upbar (N,).

    A stage (I − γhM) Y_i = v_i gives v̄_i = (I − γhM)⁻ᵀ Ȳ_i and M̄ += γh v̄_i Y_iᵀ; with w the solution of
    (M − I/(γh))ᵀ w = Ȳ_i (the stored factors), γh v̄_i = −w.
    """
    N = Xbar.shape[0]
    s = a.shape[0]
    g = a[0, 0]
    Dbar = np.empty((N, NP))
    Dnew = np.empty((N, NP))
    Kbar = np.empty((s, N, NP))
    w = np.empty((N, NP))
    ny = f.size
    for y in range(ny - 1, -1, -1):
        last = y == ny - 1
        n = n_part if last else n_full
        if n == 0:
            continue
        fy = f[y]
        Ginv = Ginv_part if last else Ginv_full
        inv_gh = inv_gh_part if last else inv_gh_full
        base = y * n_full
        for j in range(N):
            for p in range(NP):
                Dbar[j, p] = Xbar[j, p]
                X1bar[j, p] += fy * Xbar[j, p]
        for k_step in range(base + n - 1, base - 1, -1):
            Kbar[:, :, :] = 0.0
            Dnew[:, :] = 0.0
            for i in range(s - 1, -1, -1):
                if i == s - 1:
                    for j in range(N):
                        for p in range(NP):
                            w[j, p] = Dbar[j, p]
                else:
                    for j in range(N):
                        for p in range(NP):
                            w[j, p] = Kbar[i, j, p] / g
                _core.btd_solve_transposed(Ginv, lo, up, w)
                _accumulate_mbar(w, Ystore[k_step, i], Bbar, lobar, upbar)
                for j in range(N):
                    for p in range(NP):
                        vb = -w[j, p] * inv_gh
                        if i < s - 1:
                            vb -= Kbar[i, j, p] / g
                        Dnew[j, p] += vb
                        for k in range(i):
                            Kbar[k, j, p] += a[i, k] * vb
            for j in range(N):
                for p in range(NP):
                    Dbar[j, p] = Dnew[j, p]
        for j in range(N):
            for p in range(NP):
                Xbar[j, p] = Dbar[j, p]
                X1bar[j, p] -= fy * Dbar[j, p]


# ------------------------------------------------------------------------------------------------------------
# Python API
# ------------------------------------------------------------------------------------------------------------


def rate_tangents_of(site: SiteModel, theta, rates) -> tuple:
    """:func:`rate_tangents` for a prepared site at θ (7,) with the rate tuple ``rates`` of θ."""
    V, K, mu, phi, kdes, u, eps, lo, up, beta, fbar = rates
    return rate_tangents(
        np.asarray(theta, dtype=np.float64), site.kc, site.clay, site.edges_cm, site.IA, site.IB, site.fmetA,
        site.fmetB, site.fixed_beta, V, K, mu, phi, kdes, lo, up, fbar,
    )  # fmt: skip


def rhs_parameter_derivative(site: SiteModel, pools, params) -> np.ndarray:
    """∂(dC/dt)/∂θ at state ``pools`` for a constant-temperature site.

    Args:
        site: the prepared site (annual-mean temperature is used) (–).
        pools: state (7, n_layers), pool order m, s, r, k, p, c, a (mg C cm⁻³).
        params: 7 values in ``PARAMETER_NAMES`` order (parameter units).

    Returns:
        Array (7 pools, n_layers, 7 parameters) (mg C cm⁻³ h⁻¹ per parameter unit).
    """
    theta = np.asarray(params, dtype=np.float64)
    C = site._check_pools(pools)
    rates = site.raw_rates(theta)
    tang = rate_tangents_of(site, theta, rates)
    V, K, mu, phi, kdes, u, eps, lo, up, beta, _ = rates
    dF = rhs_parameter_jacobian(C, V, K, mu, phi, kdes, u, eps, lo, up, beta, *tang)
    return np.transpose(dF, (1, 0, 2)).copy()


def _tracer_value_and_pullback(problem, p, ss, rates, tang):
    """Tracer-mode ¹⁴C at the sampling year (bitwise as ``simulate_radiocarbon``) and a closure that pulls
    X̄ (N,7) back to (C̄ (N,7), explicit θ̄ (7,))."""
    from . import radiocarbon as rc

    internal = ss.solver_state
    V, K, mu, phi, kdes, u, eps, lo, up, beta, _ = rates
    C = internal["C"]
    N = C.shape[0]
    atm = problem.atmosphere
    _, years, n_full, n_part, h_full, h_part = rc.year_plan(p.obs.sample_year, rc.DEFAULT_STEPS_PER_YEAR)
    f_spin = atm.f14c(p.obs.zone, rc.SPIN_UP_YEAR)
    f_years = np.ascontiguousarray(atm.litter_f14c(p.obs.zone, years), dtype=np.float64)
    a = rc.SCHEMES[rc.DEFAULT_SCHEME]
    g = a[0, 0]
    B = np.empty((N, NP, NP))
    _core.transfer_blocks(C, V, K, mu, eps, phi, kdes, beta, 1.0, 1.0, 1.0, B)
    G = np.empty((N, NP, NP))
    Ginv0 = np.empty((N, NP, NP))
    if rc.factor_shifted(B, lo, up, 0.0, G, Ginv0) == 0:
        raise np.linalg.LinAlgError("the tracer matrix is singular")
    X1 = -np.ascontiguousarray(u, dtype=np.float64)
    _core.btd_solve(Ginv0, lo, up, X1)
    X = f_spin * X1
    Ginv_full = np.empty((N, NP, NP))
    rc.factor_shifted(B, lo, up, 1.0 / (g * h_full), G, Ginv_full)
    if n_part:
        Ginv_part = np.empty((N, NP, NP))
        rc.factor_shifted(B, lo, up, 1.0 / (g * h_part), G, Ginv_part)
    else:
        Ginv_part = Ginv_full
    n_steps = n_full * (f_years.size - 1) + n_part
    Ystore = np.empty((max(n_steps, 1), a.shape[0], N, NP))
    args = (Ginv_full, Ginv_part, lo, up)
    tail = (f_years, n_full, n_part, 1.0 / (g * h_full), 1.0 / (g * h_part), a, Ystore)
    rc.tracer_transient(*args, X1, X, *tail)

    def pullback(Xbar):
        Xbar = np.ascontiguousarray(Xbar, dtype=np.float64).copy()
        X1bar = np.zeros((N, NP))
        Bbar = np.zeros((N, NP, NP))
        lobar = np.zeros(N)
        upbar = np.zeros(N)
        _tracer_adjoint(*args, *tail, Xbar, X1bar, Bbar, lobar, upbar)
        X1bar += f_spin * Xbar
        # M X₁ = −u:  r = M⁻ᵀ X̄₁, ū = −r, M̄ += −r X₁ᵀ
        r = X1bar
        _core.btd_solve_transposed(Ginv0, lo, up, r)
        _accumulate_mbar(r, X1, Bbar, lobar, upbar)
        ubar = -r
        dV, dK, dmu, dphi, dkdes, du, dlo, dup, dbeta = tang
        Cbar = np.zeros((N, NP))
        thbar = np.zeros(NPAR)
        _transfer_pullback(C, V, K, mu, eps, phi, kdes, beta, dV, dK, dmu, dphi, dkdes, dbeta, Bbar, Cbar, thbar)
        thbar += np.einsum("jq,pjq->p", ubar, du) + dlo @ lobar + dup @ upbar
        return Cbar, thbar

    return X, pullback


def _site_value_and_gradient(p, soc: np.ndarray, f14c: np.ndarray | None, gradient: bool):
    """Log-likelihood of one site from its predictions, by the error model (:mod:`bayes_vmimics.errors`), and
    its derivatives with respect to the SOC and the F14C predictions (None unless ``gradient``)."""
    soc_val, gs = p.soc_errors.log_likelihood_and_gradient(soc, gradient=gradient)
    if p.c14_index.size:
        c14_val, gf = p.c14_errors.log_likelihood_and_gradient(f14c[p.c14_index], gradient=gradient)
    else:
        c14_val, gf = 0.0, None
    return soc_val + c14_val, gs, gf


def _check_problem(problem, p) -> bool:
    if p.model.day_factors is not None:
        raise NotImplementedError(
            f"site {p.obs.site_id}: gradients are implemented for constant-temperature sites only "
            "(the periodic annual cycle of a temperature climatology is not differentiated)"
        )
    use_c14 = bool(problem.c14_enabled and p.obs.has_c14 and p.c14_index.size)
    if use_c14 and problem.c14_mode != "tracer":
        raise NotImplementedError(f"¹⁴C gradients are implemented for c14_mode='tracer' only, got {problem.c14_mode!r}")
    return use_c14


def site_log_likelihood(problem, site: int, theta) -> float:
    """Log-likelihood of one site at θ, by the problem's own NumPy path (``solve_site`` and
    ``simulate_radiocarbon``) and its error model; −inf if the steady state (or ¹⁴C run) fails.

    Args:
        problem: the calibration problem (–).
        site: index of the site in ``problem.sites`` (–).
        theta: 7 values in ``PARAMETER_NAMES`` order (parameter units).
    """
    theta = np.asarray(theta, dtype=float)
    p = problem.sites[site]
    ss = problem.solve_state(p, theta, problem.prior.to_unit(theta))
    if not ss.converged:
        return -np.inf
    soc_mg = p.operator.soc_mg_cm3(ss.pools)
    soc = soc_mg if problem.soc_unit == "mg_cm3" else soc_mg / p.obs.bd_g_cm3
    f14c = None
    if problem.c14_enabled and p.obs.has_c14:
        try:
            f14c = p.operator.f14c(ss.pools, problem.c14_pools(p, ss, theta))
        except RuntimeError:
            return -np.inf
    total, _, _ = _site_value_and_gradient(p, soc, f14c, False)
    return float(total) if np.isfinite(total) else -np.inf


def site_log_likelihoods(problem, thetas) -> np.ndarray:
    """Per-site log-likelihoods, site s at its own θ_s (NumPy path of :func:`site_log_likelihood`).

    Args:
        problem: the calibration problem (–).
        thetas: shape (n_sites, 7), or (7,) shared by all sites (parameter units).

    Returns:
        Shape (n_sites,) (log-likelihood units); −inf where a site fails.
    """
    th = _broadcast_thetas(problem, thetas)
    return np.array([site_log_likelihood(problem, s, th[s]) for s in range(len(problem.sites))])


def site_log_likelihood_and_gradient(problem, site: int, theta) -> tuple[float, np.ndarray]:
    """Log-likelihood of one site and its exact gradient with respect to θ (adjoint method).

    The value equals :func:`site_log_likelihood` bit for bit (same solver, same arithmetic). Any error model
    of :mod:`bayes_vmimics.errors`: it supplies d log L / d prediction, pulled back through the observation
    operator, the ¹⁴C tracer adjoint and the steady state.

    Args:
        problem: the calibration problem; the site must have a constant temperature (–).
        site: index of the site in ``problem.sites`` (–).
        theta: 7 values in ``PARAMETER_NAMES`` order (parameter units).

    Returns:
        (log L (log-likelihood units), d log L / dθ (7,) (per parameter unit)); (−inf, zeros) when the
        steady state does not converge.

    Raises:
        NotImplementedError: a temperature-climatology site, or ¹⁴C in paper mode.
    """
    theta = np.asarray(theta, dtype=np.float64)
    p = problem.sites[site]
    use_c14 = _check_problem(problem, p)
    ss = problem.solve_state(p, theta, problem.prior.to_unit(theta))
    if not ss.converged:
        return -np.inf, np.zeros(NPAR)
    internal = ss.solver_state
    rates = internal["rates"]
    C = internal["C"]
    N = C.shape[0]
    tang = rate_tangents_of(p.model, theta, rates)
    W = p.operator.weights
    soc_mg = p.operator.soc_mg_cm3(ss.pools)
    soc = soc_mg if problem.soc_unit == "mg_cm3" else soc_mg / p.obs.bd_g_cm3
    Cbar = np.zeros((N, NP))
    thbar = np.zeros(NPAR)
    f14c = None
    if use_c14:
        X, pull = _tracer_value_and_pullback(problem, p, ss, rates, tang)
        f14c = p.operator.f14c(ss.pools, X.T)
    total, gs, gf = _site_value_and_gradient(p, soc, f14c, True)
    total = float(total)
    if not np.isfinite(total):
        return -np.inf, np.zeros(NPAR)
    # SOC term (P Eq 15): gs_i = d log L / d soc_i from the error model (−(soc_i − y_i)/σ_i² for the paper's);
    # d soc_i / d C[j, q] = W[i, j] (/ BD_i) for q in SOC
    if problem.soc_unit == "g_kg":
        gs = gs / p.obs.bd_g_cm3
    col = W.T @ gs
    Cbar[:, _SOC] += col[:, None]
    if use_c14:
        # F_i = N_i / D_i over pools p, c, a (P Eq 16, spec A13)
        idx = p.c14_index
        Wi = W[idx]
        Nn = Wi @ X[:, _C14].sum(axis=1)
        Dd = Wi @ C[:, _C14].sum(axis=1)
        Xbar = np.zeros((N, NP))
        Xbar[:, _C14] = (Wi.T @ (gf / Dd))[:, None]
        Cbar[:, _C14] -= (Wi.T @ (gf * Nn / (Dd * Dd)))[:, None]
        cb, tb = pull(Xbar)
        Cbar += cb
        thbar += tb
    # implicit function theorem: Jᵀ λ = C̄, dL/dθ = θ̄ − λᵀ ∂F/∂θ
    V, K, mu, phi, kdes, u, eps, lo, up, beta, _ = rates
    lam = np.ascontiguousarray(Cbar)
    _core.btd_solve_transposed(internal["Ginv"], lo, up, lam)
    dF = rhs_parameter_jacobian(C, V, K, mu, phi, kdes, u, eps, lo, up, beta, *tang)
    grad = thbar - np.einsum("jq,jqp->p", lam, dF)
    return total, grad


def _broadcast_thetas(problem, thetas) -> np.ndarray:
    th = np.asarray(thetas, dtype=np.float64)
    S = len(problem.sites)
    if th.shape == (NPAR,):
        th = np.broadcast_to(th, (S, NPAR))
    if th.shape != (S, NPAR):
        raise ValueError(f"thetas must have shape ({S}, {NPAR}) or ({NPAR},), got {th.shape}")
    return th


def site_log_likelihoods_and_gradients(problem, thetas) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`site_log_likelihood_and_gradient`: site s at θ_s.

    Args:
        problem: the calibration problem (–).
        thetas: shape (n_sites, 7), or (7,) shared by all sites (parameter units).

    Returns:
        (values (n_sites,), gradients (n_sites, 7)); row s is d log L_s / dθ_s.
    """
    th = _broadcast_thetas(problem, thetas)
    S = th.shape[0]
    vals = np.empty(S)
    grads = np.empty((S, NPAR))
    for s in range(S):
        vals[s], grads[s] = site_log_likelihood_and_gradient(problem, s, th[s])
    return vals, grads


def log_likelihood_and_gradient(problem, theta) -> tuple[float, np.ndarray]:
    """Pooled log-likelihood (all sites share θ) and its exact gradient.

    Args:
        problem: the calibration problem (–).
        theta: 7 values in ``PARAMETER_NAMES`` order (parameter units).

    Returns:
        (Σ_s log L_s, its gradient (7,)); equals ``problem.log_likelihood(theta)`` up to the order of the
        floating-point sum over sites (exactly for one site); (−inf, zeros) on a failed solve.
    """
    vals, grads = site_log_likelihoods_and_gradients(problem, theta)
    if not np.all(np.isfinite(vals)):
        return -np.inf, np.zeros(NPAR)
    return float(vals.sum()), grads.sum(axis=0)


__all__ = [
    "log_likelihood_and_gradient",
    "rate_tangents",
    "rhs_parameter_derivative",
    "rhs_parameter_jacobian",
    "site_log_likelihood",
    "site_log_likelihood_and_gradient",
    "site_log_likelihoods",
    "site_log_likelihoods_and_gradients",
]
