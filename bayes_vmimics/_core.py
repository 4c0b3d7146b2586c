"""Compiled numerical core (numba): rate constants, right-hand side, analytic Jacobian, block-tridiagonal
linear algebra, the steady-state iteration, its cold start through coarser grids and the dense Jacobian of the
stability check.

Internal layout: states are ``(n_layers, 7)`` (layer-major, pools m, s, r, k, p, c, a) so that each layer's
7×7 Jacobian block is contiguous; the public API uses ``(7, n_layers)``. Units: mg C cm⁻³, hours, cm (metres
only inside the α exponentials, spec A1).

Equation references: P = Wang et al. (2021); "spec" = shared/spec/MODEL_SPEC.md.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# ---- layout of the packed constants vector (ModelConstants.pack) ----
KC_AV, KC_VSLOPE, KC_VINT = 0, 1, 2
KC_MR, KC_MK = 3, 6
KC_AK, KC_KINT, KC_KSLOPE_MS, KC_KSLOPE_S = 9, 10, 11, 12
KC_KDIVR, KC_KDIVK = 13, 16
KC_PS, KC_KO = 19, 20
KC_EPSR, KC_EPSK = 22, 25
KC_TAUR, KC_TAUK = 28, 30
KC_CLIP = 32
KC_DBTFLAG, KC_DBT = 34, 35
KC_FDIRECT = 40
KC_DESBASE, KC_DESCLAY = 42, 43
KC_D0, KC_VDEPTH = 44, 45

# parameter vector order (parameters.PARAMETER_NAMES)
P_XV, P_XK, P_XD, P_XDIFF, P_AR, P_AV, P_BETA = 0, 1, 2, 3, 4, 5, 6

# column layout of the K array: the 6 uptake K (rm, rs, ra, km, ks, ka) then oxidation (or, ok)
# K columns that scale with exp(K_slope_ms·T) and with exp(K_slope_s·T) (climatology day multipliers)
K_MS_COLS = (0, 2, 3, 5)
K_S_COLS = (1, 4, 6, 7)

NP = 7
CFLOOR = 1e-8  # mg C cm⁻³, scale floor of the relative residual norm (WC22's pool floor, spec A18)
CMAX = 1e6  # mg C cm⁻³ (1 kg C per cm³): beyond any soil; a pool above it means the pools diverge
CTINY = 1e-12  # mg C cm⁻³: a pool below this that a Newton step drives negative counts as extinct


@njit(cache=True)
def root_fractions(alpha_r, edges_m):
    """ρ_j of corrected P Eq 11 (spec 6.3, A2): per-layer integral of exp(−α_r z), normalised to sum 1."""
    n = edges_m.size - 1
    rho = np.empty(n)
    h = edges_m[n]
    denom = 1.0 - np.exp(-alpha_r * h)
    for j in range(n):
        rho[j] = (np.exp(-alpha_r * edges_m[j]) - np.exp(-alpha_r * edges_m[j + 1])) / denom
    return rho


@njit(cache=True)
def build_rates(theta, kc, T, clay, edges_cm, IA, IB, fmetA, fmetB, npp, fixed_beta):
    """Per-layer rate constants at temperature T (°C).

    Args: theta (7,) parameters; kc packed constants; clay (N,) fraction; edges_cm (N+1,);
    IA, IB litter inputs (mg C cm⁻² h⁻¹); fmetA, fmetB metabolic fractions; npp (g C m⁻² yr⁻¹) for
    g_NPP; fixed_beta (<= 0: use theta's β).

    Returns V (N,6) h⁻¹, K (N,8) mg cm⁻³, mu (N,2), phi (N,6), kdes (N,) h⁻¹, u (N,7) mg cm⁻³ h⁻¹,
    eps (6,), lo (N,), up (N,) h⁻¹ (diffusion couplings), beta, fbar (N,) layer f_met.
    """
    n = clay.size
    xv, xk, xd, xD, ar, av = theta[0], theta[1], theta[2], theta[3], theta[4], theta[5]
    beta = theta[6] if fixed_beta <= 0.0 else fixed_beta
    dz = np.empty(n)
    zmid = np.empty(n)
    edges_m = np.empty(n + 1)
    for j in range(n + 1):
        edges_m[j] = edges_cm[j] * 0.01
    for j in range(n):
        dz[j] = edges_cm[j + 1] - edges_cm[j]
        zmid[j] = 0.5 * (edges_cm[j] + edges_cm[j + 1])
    # V (P Eqs 6-7, spec 4.1)
    fv = kc[KC_AV] * np.exp(kc[KC_VSLOPE] * T + kc[KC_VINT])
    V = np.empty((n, 6))
    for j in range(n):
        dv = np.exp(-av * zmid[j] * 0.01) if kc[KC_VDEPTH] > 0.5 else 1.0
        for i in range(3):
            V[j, i] = xv * kc[KC_MR + i] * fv * dv
            V[j, 3 + i] = xv * kc[KC_MK + i] * fv * dv
    # K (spec 4.2)
    kms = xk * kc[KC_AK] * np.exp(kc[KC_KSLOPE_MS] * T + kc[KC_KINT])
    ks = xk * kc[KC_AK] * np.exp(kc[KC_KSLOPE_S] * T + kc[KC_KINT])
    K = np.empty((n, 8))
    for j in range(n):
        ps = kc[KC_PS] * np.exp(-2.0 * np.sqrt(clay[j]))
        K[j, 0] = kms / kc[KC_KDIVR]
        K[j, 1] = ks / kc[KC_KDIVR + 1]
        K[j, 2] = kms / (kc[KC_KDIVR + 2] * ps)
        K[j, 3] = kms / kc[KC_KDIVK]
        K[j, 4] = ks / kc[KC_KDIVK + 1]
        K[j, 5] = kms / (kc[KC_KDIVK + 2] * ps)
        K[j, 6] = kc[KC_KO] * K[j, 1]
        K[j, 7] = kc[KC_KO + 1] * K[j, 4]
    # litter inputs (P Eq 1, 11 corrected; spec 6.1-6.3)
    rho = root_fractions(ar, edges_m)
    fm, fs = kc[KC_FDIRECT], kc[KC_FDIRECT + 1]
    u = np.zeros((n, 7))
    fbar = np.empty(n)
    for j in range(n):
        A = IA / dz[0] if j == 0 else 0.0
        B = IB * rho[j] / dz[j]
        Im = fmetA * A + fmetB * B
        Is = (1.0 - fmetA) * A + (1.0 - fmetB) * B
        fbar[j] = Im / (A + B) if A + B > 0.0 else fmetB
        u[j, 0] = (1.0 - fm) * Im
        u[j, 1] = (1.0 - fs) * Is
        u[j, 4] = fm * Im
        u[j, 5] = fs * Is
    # microbial turnover (P Eqs 8-9, spec 4.3, A6)
    g = np.sqrt(npp / 100.0)
    g = min(max(g, kc[KC_CLIP]), kc[KC_CLIP + 1])
    mu = np.empty((n, 2))
    phi = np.empty((n, 6))
    kdes = np.empty(n)
    dbt = kc[KC_DBTFLAG] > 0.5
    for j in range(n):
        mu[j, 0] = kc[KC_TAUR] * g * np.exp(kc[KC_TAUR + 1] * fbar[j])
        mu[j, 1] = kc[KC_TAUK] * g * np.exp(kc[KC_TAUK + 1] * fbar[j])
        # necromass partitioning (spec 4.5): DBT (default) or Wieder 2015
        rp = 0.3 * np.exp(1.3 * clay[j])
        kp = 0.2 * np.exp(0.8 * clay[j])
        if dbt:
            rp *= kc[KC_DBT]
            kp *= kc[KC_DBT + 1]
            rc = min(1.0 - rp, kc[KC_DBT + 2] * 0.1 * np.exp(-kc[KC_DBT + 4] * fbar[j]))
            kcf = min(1.0 - kp, kc[KC_DBT + 3] * 0.3 * np.exp(-kc[KC_DBT + 4] * fbar[j]))
        else:
            rc = 0.1 * np.exp(-3.0 * fbar[j])
            kcf = 0.3 * np.exp(-3.0 * fbar[j])
        phi[j, 0], phi[j, 1], phi[j, 2] = rp, rc, 1.0 - rp - rc
        phi[j, 3], phi[j, 4], phi[j, 5] = kp, kcf, 1.0 - kp - kcf
        # desorption (P Eq 12, spec 4.4)
        kdes[j] = xd * kc[KC_DESBASE] * np.exp(-kc[KC_DESCLAY] * clay[j])
    eps = np.empty(6)
    for i in range(3):
        eps[i] = kc[KC_EPSR + i]
        eps[3 + i] = kc[KC_EPSK + i]
    # diffusion couplings (P Eq 10, spec 7): flux between j and j+1 is D (C_{j+1}-C_j)/(zmid_{j+1}-zmid_j)
    D = xD * kc[KC_D0]
    lo = np.zeros(n)
    up = np.zeros(n)
    for j in range(n - 1):
        c = D / (zmid[j + 1] - zmid[j])
        up[j] = c / dz[j]
        lo[j + 1] = c / dz[j + 1]
    return V, K, mu, phi, kdes, u, eps, lo, up, beta, fbar


@njit(cache=True)
def layer_fluxes(c, V, K, mu, phi, kdes, u, eps, beta, sv, skm, sks, f, J, want_jac):
    """Reaction part of dC/dt for one layer (spec 5.1) into f (7,), its Jacobian into J (7,7) if want_jac.

    sv, skm, sks are day multipliers of V and of the two K families (1 for constant forcing).
    Returns the layer's respiration R_r + R_k (P Eqs 2-3; mg C cm⁻³ h⁻¹).
    """
    Cm, Cs, Cr, Ck, Cp, Cc, Ca = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    vrm, vrs, vra = V[0] * sv, V[1] * sv, V[2] * sv
    vkm, vks, vka = V[3] * sv, V[4] * sv, V[5] * sv
    krm, krs, kra = K[0] * skm, K[1] * sks, K[2] * skm
    kkm, kks, kka = K[3] * skm, K[4] * sks, K[5] * skm
    kor, kok = K[6] * sks, K[7] * sks
    # Michaelis-Menten saturations (P Eqs 4-5)
    hrm = Cm / (krm + Cm)
    hrs = Cs / (krs + Cs)
    hra = Ca / (kra + Ca)
    hkm = Cm / (kkm + Cm)
    hks = Cs / (kks + Cs)
    hka = Ca / (kka + Ca)
    hor = Cc / (kor + Cc)
    hok = Cc / (kok + Cc)
    Frm = Cr * vrm * hrm
    Frs = Cr * vrs * hrs
    Fra = Cr * vra * hra
    Fkm = Ck * vkm * hkm
    Fks = Ck * vks * hks
    Fka = Ck * vka * hka
    Fox = Cr * vrs * hor + Ck * vks * hok  # oxidation SOM_c -> SOM_a (spec 5, flux 10)
    # density-dependent turnover (P Eqs 8-9, spec A8: β applied to the flux)
    if Cr > 0.0:
        Mr = mu[0] * np.exp(beta * np.log(Cr))
        dMr = beta * Mr / Cr
    else:
        Mr = 0.0
        dMr = mu[0] if beta == 1.0 else 0.0
    if Ck > 0.0:
        Mk = mu[1] * np.exp(beta * np.log(Ck))
        dMk = beta * Mk / Ck
    else:
        Mk = 0.0
        dMk = mu[1] if beta == 1.0 else 0.0
    Fdes = kdes * Cp
    erm, ers, era, ekm, eks, eka = eps[0], eps[1], eps[2], eps[3], eps[4], eps[5]
    prp, prc, pra, pkp, pkc, pka = phi[0], phi[1], phi[2], phi[3], phi[4], phi[5]
    f[0] = u[0] - Frm - Fkm
    f[1] = u[1] - Frs - Fks
    f[2] = erm * Frm + ers * Frs + era * Fra - Mr
    f[3] = ekm * Fkm + eks * Fks + eka * Fka - Mk
    f[4] = u[4] + prp * Mr + pkp * Mk - Fdes
    f[5] = u[5] + prc * Mr + pkc * Mk - Fox
    f[6] = pra * Mr + pka * Mk + Fdes + Fox - Fra - Fka
    resp = (1 - erm) * Frm + (1 - ers) * Frs + (1 - era) * Fra + (1 - ekm) * Fkm + (1 - eks) * Fks + (1 - eka) * Fka
    if want_jac:
        for a in range(7):
            for b in range(7):
                J[a, b] = 0.0
        # partial derivatives of the uptake fluxes: d/dC_mic and d/dC_substrate
        dFrm_r, dFrm_m = vrm * hrm, Cr * vrm * krm / ((krm + Cm) * (krm + Cm))
        dFrs_r, dFrs_s = vrs * hrs, Cr * vrs * krs / ((krs + Cs) * (krs + Cs))
        dFra_r, dFra_a = vra * hra, Cr * vra * kra / ((kra + Ca) * (kra + Ca))
        dFkm_k, dFkm_m = vkm * hkm, Ck * vkm * kkm / ((kkm + Cm) * (kkm + Cm))
        dFks_k, dFks_s = vks * hks, Ck * vks * kks / ((kks + Cs) * (kks + Cs))
        dFka_k, dFka_a = vka * hka, Ck * vka * kka / ((kka + Ca) * (kka + Ca))
        dFox_r = vrs * hor
        dFox_k = vks * hok
        dFox_c = Cr * vrs * kor / ((kor + Cc) * (kor + Cc)) + Ck * vks * kok / ((kok + Cc) * (kok + Cc))
        J[0, 0] = -dFrm_m - dFkm_m
        J[0, 2] = -dFrm_r
        J[0, 3] = -dFkm_k
        J[1, 1] = -dFrs_s - dFks_s
        J[1, 2] = -dFrs_r
        J[1, 3] = -dFks_k
        J[2, 0] = erm * dFrm_m
        J[2, 1] = ers * dFrs_s
        J[2, 6] = era * dFra_a
        J[2, 2] = erm * dFrm_r + ers * dFrs_r + era * dFra_r - dMr
        J[3, 0] = ekm * dFkm_m
        J[3, 1] = eks * dFks_s
        J[3, 6] = eka * dFka_a
        J[3, 3] = ekm * dFkm_k + eks * dFks_k + eka * dFka_k - dMk
        J[4, 2] = prp * dMr
        J[4, 3] = pkp * dMk
        J[4, 4] = -kdes
        J[5, 2] = prc * dMr - dFox_r
        J[5, 3] = pkc * dMk - dFox_k
        J[5, 5] = -dFox_c
        J[6, 2] = pra * dMr + dFox_r - dFra_r
        J[6, 3] = pka * dMk + dFox_k - dFka_k
        J[6, 4] = kdes
        J[6, 5] = dFox_c
        J[6, 6] = -dFra_a - dFka_a
    return resp


@njit(cache=True)
def full_rhs(C, V, K, mu, phi, kdes, u, eps, lo, up, beta, sv, skm, sks, F, A, resp, want_jac):
    """dC/dt of the whole column (reaction + diffusion, P Eq 1) into F (N,7); local Jacobian blocks into
    A (N,7,7) (diffusion NOT included; it is added by the solver); per-layer respiration into resp (N,)."""
    n = C.shape[0]
    for j in range(n):
        resp[j] = layer_fluxes(
            C[j], V[j], K[j], mu[j], phi[j], kdes[j], u[j], eps, beta, sv, skm, sks, F[j], A[j], want_jac
        )
    # diffusion, conservative finite volumes with zero-flux top and bottom (spec 7, A9)
    for j in range(n):
        for i in range(NP):
            d = 0.0
            if j > 0:
                d += lo[j] * (C[j - 1, i] - C[j, i])
            if j < n - 1:
                d += up[j] * (C[j + 1, i] - C[j, i])
            F[j, i] += d


# ---------------------------------------------------------------------------------------------------------
# dense 7x7 LU and block-tridiagonal (block Thomas) solver for  blocks_j x_{j} + lo_j x_{j-1} + up_j x_{j+1}
# ---------------------------------------------------------------------------------------------------------


@njit(cache=True)
def inv7(a, out):
    """Inverse of a 7×7 matrix by Gauss–Jordan elimination with partial pivoting (a is destroyed).
    Returns the sign of det(a) (+1 or −1), or 0 if singular. Fixed size so that the compiler unrolls loops."""
    sign = 1
    for i in range(NP):
        for k in range(NP):
            out[i, k] = 1.0 if i == k else 0.0
    for k in range(NP):
        p = k
        big = abs(a[k, k])
        for i in range(k + 1, NP):
            v = abs(a[i, k])
            if v > big:
                big = v
                p = i
        if big == 0.0 or not np.isfinite(big):
            return 0
        if a[p, k] < 0.0:
            sign = -sign
        if p != k:
            sign = -sign
            for q in range(NP):
                t = a[k, q]
                a[k, q] = a[p, q]
                a[p, q] = t
                t = out[k, q]
                out[k, q] = out[p, q]
                out[p, q] = t
        inv = 1.0 / a[k, k]
        for q in range(NP):
            a[k, q] *= inv
            out[k, q] *= inv
        for i in range(NP):
            if i != k:
                l = a[i, k]
                if l != 0.0:
                    for q in range(NP):
                        a[i, q] -= l * a[k, q]
                        out[i, q] -= l * out[k, q]
    return sign


@njit(cache=True)
def btd_factor(G, Ginv, lo, up):
    """Factor the block-tridiagonal matrix with diagonal blocks G (N,7,7; destroyed), sub-diagonal lo_j·I and
    super-diagonal up_j·I (block Thomas). Ginv (N,7,7) receives the inverses of the Schur complements
    S_0 = G_0, S_j = G_j − lo_j·up_{j−1}·S_{j−1}⁻¹. Returns the sign of the determinant of the whole
    matrix (+1 or −1; the product of the blocks' signs), or 0 if a block is singular."""
    N = G.shape[0]
    sign = 1
    for j in range(N):
        if j > 0:
            c = lo[j] * up[j - 1]
            if c != 0.0:
                for a in range(NP):
                    for b in range(NP):
                        G[j, a, b] -= c * Ginv[j - 1, a, b]
        sj = inv7(G[j], Ginv[j])
        if sj == 0:
            return 0
        sign *= sj
    return sign


@njit(cache=True)
def btd_solve(Ginv, lo, up, b):
    """Solve with the factors of btd_factor; b (N,7) is overwritten by the solution."""
    N = b.shape[0]
    t = np.empty(NP)
    for j in range(N):
        # y_j = S_j⁻¹ (b_j − lo_j y_{j−1})
        for i in range(NP):
            t[i] = b[j, i] - (lo[j] * b[j - 1, i] if j > 0 else 0.0)
        for i in range(NP):
            s = 0.0
            for k in range(NP):
                s += Ginv[j, i, k] * t[k]
            b[j, i] = s
    for j in range(N - 2, -1, -1):
        # x_j = y_j − up_j S_j⁻¹ x_{j+1}
        for i in range(NP):
            s = 0.0
            for k in range(NP):
                s += Ginv[j, i, k] * b[j + 1, k]
            t[i] = s
        for i in range(NP):
            b[j, i] -= up[j] * t[i]


@njit(cache=True)
def btd_solve_transposed(Ginv, lo, up, b):
    """Solve Mᵀ x = b with the factors of M from btd_factor; b (N,7) is overwritten by the solution.

    With M = L U (block Thomas: L unit lower with blocks lo_j S_{j−1}⁻¹, U upper with diagonal S_j and
    super-diagonal up_j I), Mᵀ = Uᵀ Lᵀ: forward through Uᵀ, then backward through Lᵀ."""
    N = b.shape[0]
    t = np.empty(NP)
    # Uᵀ z = b:  S_jᵀ z_j = b_j − up_{j−1} z_{j−1}
    for j in range(N):
        for i in range(NP):
            t[i] = b[j, i] - (up[j - 1] * b[j - 1, i] if j > 0 else 0.0)
        for i in range(NP):
            s = 0.0
            for k in range(NP):
                s += Ginv[j, k, i] * t[k]
            b[j, i] = s
    # Lᵀ x = z:  x_j = z_j − lo_{j+1} S_j⁻ᵀ x_{j+1}
    for j in range(N - 2, -1, -1):
        for i in range(NP):
            s = 0.0
            for k in range(NP):
                s += Ginv[j, k, i] * b[j + 1, k]
            t[i] = s
        for i in range(NP):
            b[j, i] -= lo[j + 1] * t[i]


@njit(cache=True)
def assemble(A, lo, up, shift, G):
    """G_j = A_j − (lo_j + up_j + shift)·I: diagonal blocks of (J_reaction + J_diffusion − shift·I)."""
    N, n = A.shape[0], A.shape[1]
    for j in range(N):
        for a in range(n):
            for b in range(n):
                G[j, a, b] = A[j, a, b]
            G[j, a, a] -= lo[j] + up[j] + shift


@njit(cache=True)
def wnorm(F, C):
    """Root-mean-square relative rate |F_i| / (|C_i| + CFLOOR) (h⁻¹)."""
    s = 0.0
    N, n = F.shape[0], F.shape[1]
    for j in range(N):
        for i in range(n):
            r = F[j, i] / (abs(C[j, i]) + CFLOOR)
            s += r * r
    return np.sqrt(s / (N * n))


@njit(cache=True)
def rates_rhs(C, rates, day, F, A, resp, want_jac):
    """:func:`full_rhs` with the rate record ``rates`` (``model.Rates``) and day multipliers ``day`` = (s_V,
    s_K(m, a), s_K(s)) (1 for constant forcing)."""
    full_rhs(
        C, rates.V, rates.K, rates.mu, rates.phi, rates.k_des, rates.inputs, rates.eps, rates.lower, rates.upper,
        rates.beta, day[0], day[1], day[2], F, A, resp, want_jac,
    )  # fmt: skip


@njit(cache=True)
def workspace(N):
    """Scratch arrays of :func:`newton_solve` for N layers: (F (N,7), A, G, Ginv (N,7,7), delta (N,7), resp (N,))."""
    return (
        np.empty((N, NP)),
        np.empty((N, NP, NP)),
        np.empty((N, NP, NP)),
        np.empty((N, NP, NP)),
        np.empty((N, NP)),
        np.empty(N),
    )


@njit(cache=True)
def newton_solve(C, X, rates, day, inv_dt, lam, max_inner, rtol, atol, shrink, work):
    """Solve X − C − dt·(F(X) − λX) = 0 for X by Newton's method from the X given (X (N,7) in place).

    A backward-Euler step from C of the model with rates ``rates`` (``model.Rates``) and day multipliers ``day``
    (:func:`rates_rhs`); inv_dt = 1/dt (h⁻¹), 0 for the steady state F(X) − λX = 0; λ an extra first-order
    loss of every pool (h⁻¹; 0 for carbon, λ₁₄ for the paper-mode ¹⁴C run). ``work`` from :func:`workspace`;
    on return its F, A hold the right-hand side and reaction Jacobian at the last iterate and Ginv the
    block-Thomas factors of the last Newton matrix.

    Returns (status, n_iter): status 0 converged (a full, unclipped step with max |δ|/(|X| + atol) < rtol),
    1 not converged in max_inner, 2 non-finite, 3 singular.
    """
    F, A, G, Ginv, delta, resp = work
    lo, up = rates.lower, rates.upper
    N = X.shape[0]
    for it in range(1, max_inner + 1):
        rates_rhs(X, rates, day, F, A, resp, True)
        assemble(A, lo, up, lam + inv_dt, G)
        if btd_factor(G, Ginv, lo, up) == 0:
            return 3, it
        for j in range(N):
            for i in range(NP):
                # residual of (J − (λ + 1/dt) I) δ = (X − C)/dt − (F(X) − λX)
                delta[j, i] = inv_dt * (X[j, i] - C[j, i]) - (F[j, i] - lam * X[j, i])
        btd_solve(Ginv, lo, up, delta)
        step = 0.0
        clipped = False
        for j in range(N):
            for i in range(NP):
                d = delta[j, i]
                if not np.isfinite(d):
                    return 2, it
                x0 = X[j, i]
                xn = x0 + d
                if xn < shrink * x0:
                    # positivity: shrink by at most the factor `shrink`. A negligible pool (≤ CTINY) that the
                    # step drives down is going extinct: keep it positive (so that it could regrow) but do
                    # not count the limited step against convergence, unless, in the steady-state solve
                    # (inv_dt = 0), its rate is positive: then it is being fed (e.g. by diffusion from a
                    # neighbouring layer) or can invade, and Newton only pushes it towards the negative root
                    # of its linearisation. Accepting that stagnation reported states that are no steady
                    # state at all (RMS relative rate ~0.2 h⁻¹; microbes "extinct" in one layer between
                    # living ones) after warm starts on real sites.
                    xn = shrink * x0
                    if x0 > CTINY or (inv_dt == 0.0 and F[j, i] - lam * x0 > 0.0):
                        clipped = True
                X[j, i] = xn
                s = abs(xn - x0) / (abs(x0) + atol)
                if s > step:
                    step = s
        if step < rtol and not clipped:
            return 0, it
    return 1, max_inner


# status codes the kernels return (the values of ``solver_status.SolverStatus``, which this module cannot import)
ST_CONVERGED, ST_MAX_ITER, ST_NON_FINITE, ST_SINGULAR, ST_UNBOUNDED, ST_SADDLE = 0, 1, 2, 3, 4, 5


@njit(cache=True)
def steady_state_iterate(C, rates, dt0, max_iter, rtol, atol, shrink, growth, inner_tol=1e-6):
    """Find the root of dC/dt = 0 from the start C (N,7, overwritten with the result) at constant forcing.

    Globalisation: implicit (backward-Euler) time steps of the true dynamics, each solved by Newton's method,
    with a time step that grows by ``growth`` after every easy step and shrinks by 4 after a failed one, so
    that the iterate follows the physical attractor from C; once dt exceeds 1e14 h (far beyond every process
    time scale) the step is pure Newton on dC/dt = 0. dt0 = inf starts with pure Newton (warm starts),
    falling back to time steps from 1e3 h. A step never shrinks a pool below ``shrink`` times its value
    (positivity). Converged when a full Newton step on dC/dt = 0 has max |δ_i|/(|C_i| + atol) < rtol.
    dt0 < 0 runs pure Newton only (at most min(30, max_iter) iterations, no time-step fallback; C is left
    unchanged when it fails).

    Args: C (N,7) start (mg C cm⁻³); rates the ``model.Rates`` record; dt0 first step (h); max_iter (count);
    rtol, atol, shrink, growth as in ``SolverOptions``; inner_tol the relative step at which an implicit step's
    Newton solve stops (dimensionless).

    Returns (status, n_iter, rel_residual_norm, Ginv (N,7,7) block-Thomas factors of the steady-state Jacobian):
    status 0 converged, 1 max_iter reached, 2 non-finite values, 3 singular Jacobian, 4 no finite steady state,
    5 unstable equilibrium (saddle).
    """
    N = C.shape[0]
    work = workspace(N)
    F, A, G, Ginv, _delta, resp = work
    lo, up = rates.lower, rates.upper
    X = np.empty((N, NP))
    day = (1.0, 1.0, 1.0)
    newton_only = dt0 < 0.0
    dt = np.inf if newton_only else dt0
    newton_dt_switch = 1e14  # h
    n_total = 0
    status = ST_MAX_ITER
    while n_total < max_iter:
        X[:, :] = C
        if dt >= newton_dt_switch:
            st, k = newton_solve(C, X, rates, day, 0.0, 0.0, min(30, max_iter - n_total), rtol, atol, shrink, work)
            n_total += k
            if st == 0:
                C[:, :] = X
                status = ST_CONVERGED
                break
            if newton_only:
                status = st if st != 0 else ST_MAX_ITER
                break
            dt = 1e3 if not np.isfinite(dt0) or dt0 >= newton_dt_switch else dt0
            continue
        st, k = newton_solve(C, X, rates, day, 1.0 / dt, 0.0, min(8, max_iter - n_total), inner_tol, atol, shrink, work)
        n_total += k
        if st == 0:
            C[:, :] = X
            if np.max(X) > CMAX:
                # denser than any soil: no finite steady state (e.g. microbes extinct in the whole column,
                # so litter accumulates without bound)
                status = ST_UNBOUNDED
                break
            dt = dt * (growth if k <= 4 else 2.0)
        else:
            dt *= 0.25
            if dt < 1e-3:
                status = ST_NON_FINITE if st == 2 else ST_MAX_ITER
                break
    rates_rhs(C, rates, day, F, A, resp, True)
    fn = wnorm(F, C)
    if not np.isfinite(fn):
        status = ST_NON_FINITE
    # factor the Jacobian at the result (no shift), for adjoint and tracer use; its determinant's sign is a
    # stability test: a stable equilibrium of the 7N-dimensional system has sign(det J) = (−1)^(7N), so the
    # other sign proves an odd number of positive real eigenvalues (a saddle, e.g. past a fold)
    assemble(A, lo, up, 0.0, G)
    sign = btd_factor(G, Ginv, lo, up)
    if status == ST_CONVERGED:
        if sign == 0:
            status = ST_SINGULAR
        elif sign != (1 if (NP * N) % 2 == 0 else -1):
            status = ST_SADDLE
    return status, n_total, fn, Ginv


@njit(cache=True)
def implicit_march(C, rates, dt, n_steps, shrink, mean, max_newton):
    """``n_steps`` backward-Euler steps of length dt (h) of the true dynamics from C (N,7; in place), each
    solved by Newton's method (a failed step is retried in quarters, down to dt/1000). ``mean`` (N,7) receives
    the average of the states at the ends of the last ⌈n_steps/2⌉ steps (e.g. the centre of an oscillation).

    At most ``max_newton`` Newton iterations are spent (count; a deterministic bound on the cost, ~10–15 µs
    each for 20 layers); when they run out C holds the state reached and ``mean`` the average so far.

    Returns (status, n_newton): status 0 after all steps, ST_MAX_ITER when the iteration budget ran out, or the
    status of a step that failed even at the smallest length; n_newton the Newton iterations used (count)."""
    N = C.shape[0]
    work = workspace(N)
    X = np.empty((N, NP))
    day = (1.0, 1.0, 1.0)
    mean[:, :] = 0.0
    n_mean = 0
    used = 0
    status = ST_CONVERGED
    for step in range(n_steps):
        h = dt
        remaining = dt
        while remaining > 0.0:
            if used >= max_newton:
                status = ST_MAX_ITER
                break
            h = min(h, remaining)
            X[:, :] = C
            st, k = newton_solve(C, X, rates, day, 1.0 / h, 0.0, min(12, max_newton - used), 1e-9, 1e-12, shrink, work)
            used += k
            if st == 0:
                C[:, :] = X
                remaining -= h
            else:
                h *= 0.25
                if h < dt * 1e-3:
                    status = st
                    break
        if status != ST_CONVERGED:
            break
        if 2 * step >= n_steps - 1:
            n_mean += 1
            for j in range(N):
                for i in range(NP):
                    mean[j, i] += C[j, i]
    if n_mean == 0:
        mean[:, :] = C
    else:
        for j in range(N):
            for i in range(NP):
                mean[j, i] /= n_mean
    return status, used


@njit(cache=True)
def dense_jacobian(C, rates):
    """Dense Jacobian ∂(dC/dt)/∂C (7N, 7N) (h⁻¹) at C (N,7) (mg C cm⁻³), flattened layer-major
    (index = 7·layer + pool; a permutation of ``SiteModel.jacobian``'s pool-major order, with the same
    eigenvalues): the reaction blocks on the diagonal, diffusion coupling the same pool of adjacent layers."""
    N = C.shape[0]
    F = np.empty((N, NP))
    A = np.empty((N, NP, NP))
    resp = np.empty(N)
    rates_rhs(C, rates, (1.0, 1.0, 1.0), F, A, resp, True)
    lo, up = rates.lower, rates.upper
    J = np.zeros((N * NP, N * NP))
    for j in range(N):
        for a in range(NP):
            for b in range(NP):
                J[j * NP + a, j * NP + b] = A[j, a, b]
            J[j * NP + a, j * NP + a] -= lo[j] + up[j]
            if j > 0:
                J[j * NP + a, (j - 1) * NP + a] = lo[j]
            if j < N - 1:
                J[j * NP + a, (j + 1) * NP + a] = up[j]
    return J


@njit(cache=True)
def layer_transfer(c, V, K, mu, eps, phi, kdes, beta, sv, skm, sks, B):
    """Specific transfer matrix of one layer at state c: B[i, d] = (carbon flux from pool d to pool i) / C_d
    for i ≠ d, and B[d, d] = −(all carbon leaving pool d, respiration included) / C_d (h⁻¹).

    Every flux of spec Sect. 5 is attributed to its donor (uptake: the substrate; oxidation: SOM_c; necromass:
    the microbes; desorption: SOM_p), so that B @ c equals the reaction part of dC/dt without the litter
    inputs. A tracer carried at its donor's tracer/C ratio (¹⁴C) obeys dX/dt = B X + inputs (spec Sect. 11).
    The specific rates are formed without dividing by C_d, so empty pools are handled.
    """
    Cm, Cs, Cr, Ck, Cc, Ca = c[0], c[1], c[2], c[3], c[5], c[6]
    vrm, vrs, vra = V[0] * sv, V[1] * sv, V[2] * sv
    vkm, vks, vka = V[3] * sv, V[4] * sv, V[5] * sv
    krm, krs, kra = K[0] * skm, K[1] * sks, K[2] * skm
    kkm, kks, kka = K[3] * skm, K[4] * sks, K[5] * skm
    kor, kok = K[6] * sks, K[7] * sks
    for a in range(NP):
        for b in range(NP):
            B[a, b] = 0.0
    # uptake per unit substrate (h⁻¹)
    rm = Cr * vrm / (krm + Cm)
    rs = Cr * vrs / (krs + Cs)
    ra = Cr * vra / (kra + Ca)
    km = Ck * vkm / (kkm + Cm)
    ks = Ck * vks / (kks + Cs)
    ka = Ck * vka / (kka + Ca)
    ox = Cr * vrs / (kor + Cc) + Ck * vks / (kok + Cc)
    # turnover per unit biomass: μ C^(β−1)
    if Cr > 0.0:
        tr = mu[0] * np.exp((beta - 1.0) * np.log(Cr))
    else:
        tr = mu[0] if beta == 1.0 else 0.0
    if Ck > 0.0:
        tk = mu[1] * np.exp((beta - 1.0) * np.log(Ck))
    else:
        tk = mu[1] if beta == 1.0 else 0.0
    B[0, 0] = -(rm + km)
    B[1, 1] = -(rs + ks)
    B[6, 6] = -(ra + ka)
    B[2, 0] = eps[0] * rm
    B[2, 1] = eps[1] * rs
    B[2, 6] = eps[2] * ra
    B[3, 0] = eps[3] * km
    B[3, 1] = eps[4] * ks
    B[3, 6] = eps[5] * ka
    B[2, 2] = -tr
    B[3, 3] = -tk
    B[4, 2] = phi[0] * tr
    B[5, 2] = phi[1] * tr
    B[6, 2] = phi[2] * tr
    B[4, 3] = phi[3] * tk
    B[5, 3] = phi[4] * tk
    B[6, 3] = phi[5] * tk
    B[4, 4] = -kdes
    B[6, 4] = kdes
    B[5, 5] = -ox
    B[6, 5] = ox


@njit(cache=True)
def transfer_blocks(C, V, K, mu, eps, phi, kdes, beta, sv, skm, sks, Bout):
    """layer_transfer for every layer: Bout (N,7,7) (h⁻¹) at state C (N,7)."""
    for j in range(C.shape[0]):
        layer_transfer(C[j], V[j], K[j], mu[j], eps, phi[j], kdes[j], beta, sv, skm, sks, Bout[j])
