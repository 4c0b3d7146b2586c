"""Regression tests of the steady-state solver: brute-force BDF, mass balance, a semi-analytic single-layer
case, warm starts, edge cases of the Table 1 box, failure reporting and the periodic annual cycle."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from reference import bdf_equilibrium
from scipy.optimize import fsolve

from bayes_vmimics import (
    ConvergenceWarning,
    DepthGrid,
    Parameters,
    SiteForcing,
    SiteModel,
    SteadyStateError,
    solve_site,
    solve_steady_state,
)
from bayes_vmimics.annual_cycle import annual_map
from bayes_vmimics.parameters import LOWER, UPPER
from bayes_vmimics.solver_status import SolverStatus
from bayes_vmimics.steady_state import WC22_INITIAL, microbes_cannot_persist

#: statuses that say why there is no steady state to return (model/README.md, "Steady state at β = 1")
REPORTED = {
    SolverStatus.UNBOUNDED,
    SolverStatus.SADDLE,
    SolverStatus.OSCILLATORY,
    SolverStatus.MICROBES_EXTINCT,
    SolverStatus.NOT_SETTLED,
}

GRID10 = DepthGrid.uniform(10, 10.0)

BDF_CASES = {
    # β = 1: microbes die out below a critical depth; deep SOC is then set by diffusion
    "beta1_deep_extinction": (
        Parameters(beta=1.0, alpha_v=30.0, x_D=0.5),
        SiteForcing(temperature=10.0, clay=0.2),
    ),
    "warm_fast_beta2": (Parameters(x_v=30.0, x_K=2.0, beta=2.0), SiteForcing(temperature=30.0, clay=0.7)),
    "cold_slow_strong_diffusion": (
        Parameters(x_v=2.0, x_K=30.0, x_d=0.1, x_D=25.0, alpha_r=1.0),
        SiteForcing(temperature=-5.0, clay=0.5),
    ),
    "default_low_quality_litter": (
        Parameters(),
        SiteForcing(temperature=8.0, clay=0.35, litter_above=150, litter_below=350, lignin_n_above=40),
    ),
    "high_desorption_low_clay": (
        Parameters(x_d=15.0, x_v=15.0, x_K=15.0, beta=1.5),
        SiteForcing(temperature=20.0, clay=0.05),
    ),
    "small_xD_large_alphas": (
        Parameters(x_D=0.01, alpha_r=30.0, alpha_v=30.0, beta=1.3),
        SiteForcing(temperature=10.0, clay=0.02),
    ),
}


@pytest.mark.parametrize("case", sorted(BDF_CASES))
def test_agrees_with_bdf_time_integration(case):
    params, forcing = BDF_CASES[case]
    site = SiteModel(forcing, GRID10)
    ss = solve_site(site, params)
    assert ss.converged, ss.message
    ref, _ = bdf_equilibrium(site, params)
    soc_ref = ref[2:].sum(axis=0)
    np.testing.assert_allclose(ss.soc, soc_ref, rtol=1e-6)
    big = ref > 1e-6 * ref.max()  # every pool that is not extinct
    np.testing.assert_allclose(ss.pools[big], ref[big], rtol=1e-6)
    assert ss.mass_balance_error < 1e-9


def test_beta1_microbes_extinct_at_depth_but_root_found():
    params, forcing = BDF_CASES["beta1_deep_extinction"]
    ss = solve_steady_state(params, forcing, GRID10)
    assert ss.converged
    assert ss.pools[2, 0] > 0.1 and ss.pools[2, -1] < 1e-20  # r-strategists live at the top only
    assert np.all(ss.pools >= 0) and np.all(np.isfinite(ss.pools))


def _box_sample(n, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        u = rng.random(7)
        edge = rng.random(7) < 0.3
        u[edge] = np.round(u[edge])
        theta = LOWER + u * (UPPER - LOWER)
        forcing = SiteForcing(
            temperature=float(rng.choice([-5.0, 0.0, 10.0, 20.0, 30.0])),
            clay=float(rng.choice([0.02, 0.2, 0.5, 0.7])),
            litter_above=rng.uniform(50, 600),
            litter_below=rng.uniform(50, 600),
            lignin_n_above=rng.uniform(5, 60),
            lignin_n_below=rng.uniform(5, 60),
        )
        yield theta, forcing


def test_whole_box_and_edges_converge_or_say_why():
    """Over the Table 1 box and its edges: a finite non-negative root with exact mass balance, or an explicit
    explicit reason. Failures occur only at β = 1 (linear microbial turnover): sustained oscillations around an
    unstable focus, pools that have not settled after thousands of years, columns where microbes cannot persist
    anywhere, and rare saddles that no time stepping left; each is reported rather than returned as a steady
    state."""
    n_ok = 0
    for theta, forcing in _box_sample(120, seed=11):
        ss = solve_site(SiteModel(forcing), theta, on_failure="ignore")
        if ss.converged:
            n_ok += 1
            assert np.all(np.isfinite(ss.pools)) and np.all(ss.pools >= 0)
            assert ss.mass_balance_error < 1e-9
        else:
            assert ss.status in REPORTED, ss.message
            assert theta[6] == pytest.approx(1.0, abs=0.05)  # only near β = 1
    assert n_ok >= 110


#: the synthetic twin's cold end (benchmarks/box_corners.py, "cold")
COLD_SITE = SiteForcing(
    temperature=2.0, clay=0.08, litter_above=90.0, litter_below=60.0, lignin_n_above=40.0, lignin_n_below=40.0
)
#: a cold, clayey site with poor litter (this test file's former "no finite steady state" case)
COLD_CLAY = SiteForcing(
    temperature=-5.0, clay=0.5, litter_above=365.3, litter_below=383.5, lignin_n_above=53.2, lignin_n_below=54.4
)

BETA1_RESCUED = {
    # reported "no finite steady state" before 2026-11-30 (large implicit steps overshot 1e6 mg C cm⁻³); the
    # spin-up reaches a finite, stable steady state (after ~1e4 yr)
    "former_no_finite_steady_state": (
        Parameters(x_v=2.0, x_K=30.0, x_d=0.41, x_D=23.73, alpha_r=19.58, alpha_v=1.0, beta=1.0),
        COLD_CLAY,
    ),
    # Table 1 corner that ended on a saddle
    "corner_saddle": (np.array([2.0, 2.0, 0.1, 25.0, 1.0, 30.0, 1.0]), COLD_SITE),
    # Table 1 corner reported "no finite steady state"
    "corner_overshoot": (np.array([2.0, 30.0, 0.1, 25.0, 1.0, 1.0, 1.0]), COLD_SITE),
}


def _bdf_states(site, params, t_eval_years, rtol=1e-7):
    """BDF from WC22's pools; states (7, n_layers, len(t_eval_years)) at the given times (yr)."""
    from scipy.integrate import solve_ivp

    n = site.n_layers

    def f(_t, y):
        return site.dcdt(np.maximum(y, 0.0).reshape(7, n), params).ravel()

    def jac(_t, y):
        return site.jacobian(np.maximum(y, 0.0).reshape(7, n), params)

    y0 = np.tile(WC22_INITIAL[:, None], (1, n)).ravel()
    t_eval = np.asarray(t_eval_years, dtype=float) * 8760.0
    sol = solve_ivp(f, (0.0, t_eval[-1]), y0, method="BDF", jac=jac, rtol=rtol, atol=1e-12, t_eval=t_eval)
    assert sol.success, sol.message
    return sol.y.reshape(7, n, -1)


@pytest.mark.parametrize("case", sorted(BETA1_RESCUED))
def test_beta1_corners_that_failed_now_agree_with_long_bdf_integration(case):
    params, forcing = BETA1_RESCUED[case]
    site = SiteModel(forcing)
    ss = solve_site(site, params)
    assert ss.converged and ss.status == SolverStatus.CONVERGED, ss.message
    assert ss.mass_balance_error < 1e-9
    # the steady state is stable: no Jacobian eigenvalue with positive real part
    assert np.linalg.eigvals(site.jacobian(ss.pools, params)).real.max() < 1e-10
    ref, _ = bdf_equilibrium(site, params, t_end_years=1e6, rtol=1e-10, atol=1e-14)
    big = ref > 1e-6 * ref.max()
    np.testing.assert_allclose(ss.pools[big], ref[big], rtol=1e-6)


def test_sustained_oscillations_at_beta1_are_reported():
    """A Table 1 corner (β = 1, x_D = 0.01): the only equilibrium is an unstable focus, and a BDF integration
    from WC22's pools oscillates with undiminished amplitude (period ~90 yr) after thousands of years."""
    params = np.array([2.0, 2.0, 0.1, 0.01, 1.0, 1.0, 1.0])
    site = SiteModel(COLD_SITE)
    with pytest.warns(ConvergenceWarning, match="unstable focus"):
        ss = solve_site(site, params)
    assert not ss.converged and ss.status == SolverStatus.OSCILLATORY
    assert ss.residual_norm < 1e-12  # the reported state is an equilibrium ...
    ev = np.linalg.eigvals(site.jacobian(ss.pools, params))
    lead = ev[np.argmax(ev.real)]
    assert lead.real > 0 and abs(lead.imag) > 10 * lead.real  # ... and an unstable focus
    k_microbes = _bdf_states(site, params, np.linspace(3000.0, 5000.0, 401))[3]
    amp = lambda y: (y.max(-1) - y.min(-1)) / y.mean(-1)  # noqa: E731
    first, last = amp(k_microbes[:, :200]).max(), amp(k_microbes[:, 200:]).max()
    assert last > 1.0 and last > 0.5 * first  # K microbes swing by more than their mean, without damping


def test_microbes_that_cannot_grow_anywhere_are_reported_and_warned():
    """x_v far below the Table 1 box at −5 °C: even on saturating substrate ε·V < μ in every layer, so microbes
    die out, chemically protected SOC is never oxidised and the column gains its whole input every year."""
    params = Parameters(x_v=0.03, x_K=30.0, x_d=0.41, x_D=23.73, alpha_r=19.58, alpha_v=1.0, beta=1.0)
    site = SiteModel(COLD_CLAY, GRID10)
    assert microbes_cannot_persist(site.raw_rates(params))
    assert not microbes_cannot_persist(site.raw_rates(BETA1_RESCUED["former_no_finite_steady_state"][0]))
    with pytest.warns(ConvergenceWarning, match="not converged"):
        ss = solve_site(site, params)
    assert not ss.converged and ss.status == SolverStatus.MICROBES_EXTINCT
    assert "microbes die out" in ss.message
    with pytest.raises(SteadyStateError):
        solve_steady_state(params, COLD_CLAY, GRID10, on_failure="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not solve_steady_state(params, COLD_CLAY, GRID10, on_failure="ignore").converged
    # time integration: microbes vanish and the column carbon grows at the input rate
    P = _bdf_states(site, params, [5e3, 1e4], rtol=1e-8)
    assert P[2:4, :, -1].max() < 1e-10
    total = np.einsum("ijt,j->t", P, site.thickness_cm)
    slope = (total[1] - total[0]) / (5e3 * 8760.0)  # mg C cm⁻² h⁻¹
    np.testing.assert_allclose(slope, site.total_input, rtol=1e-3)


def test_warm_start_reproduces_cold_solution():
    forcing = SiteForcing(temperature=12.0, clay=0.25)
    site = SiteModel(forcing)
    base = solve_site(site, Parameters())
    near = Parameters(x_v=4.1, x_K=7.9, x_d=2.05, x_D=0.7, alpha_r=10.3, alpha_v=1.1, beta=1.22)
    warm = solve_site(site, near, base)
    cold = solve_site(site, near)
    assert warm.converged and cold.converged
    assert warm.n_iter < cold.n_iter
    np.testing.assert_allclose(warm.pools, cold.pools, rtol=1e-9)


def test_single_layer_beta1_semi_analytic():
    """One layer, no diffusion, β = 1: given the microbes (C_r, C_k), every substrate balance is a quadratic with a
    closed-form root, and the microbes must satisfy per-capita growth = μ. Solving that 2-D system independently
    reproduces all seven pools of the solver."""
    grid = DepthGrid.uniform(1, 30.0)
    forcing = SiteForcing(
        temperature=15.0,
        clay=0.3,
        litter_above=300.0,
        litter_below=200.0,
        lignin_n_above=20.0,
        lignin_n_below=30.0,
    )
    params = Parameters(x_v=6.0, x_K=6.0, x_d=3.0, beta=1.0)
    site = SiteModel(forcing, grid)
    ss = solve_site(site, params)
    assert ss.converged
    r = site.rates(params)
    V, K, mu, phi, kd, u, eps = r.V[0], r.K[0], r.mu[0], r.phi[0], r.k_des[0], r.inputs[0], r.eps
    fm, fs = 0.05, 0.05
    Im, Is = u[0] / (1 - fm), u[1] / (1 - fs)

    def substrate(source, ar, Kr, ak, Kk):
        # source·(Kr + S)(Kk + S) = S (ar (Kk + S) + ak (Kr + S)), ar = C_r V_r, ak = C_k V_k
        a2 = source - ar - ak
        a1 = source * (Kr + Kk) - ar * Kk - ak * Kr
        a0 = source * Kr * Kk
        return (-a1 - np.sqrt(a1 * a1 - 4 * a2 * a0)) / (2 * a2) if a2 != 0 else -a0 / a1

    def pools(cr, ck):
        Cm = substrate((1 - fm) * Im, cr * V[0], K[0], ck * V[3], K[3])
        Cs = substrate((1 - fs) * Is, cr * V[1], K[1], ck * V[4], K[4])
        Mr, Mk = mu[0] * cr, mu[1] * ck
        Cp = (fm * Im + phi[0] * Mr + phi[3] * Mk) / kd
        Cc = substrate(fs * Is + phi[1] * Mr + phi[4] * Mk, cr * V[1], K[6], ck * V[4], K[7])
        Ca = substrate(
            phi[2] * Mr + phi[5] * Mk + kd * Cp + (fs * Is + phi[1] * Mr + phi[4] * Mk),
            cr * V[2],
            K[2],
            ck * V[5],
            K[5],
        )
        return np.array([Cm, Cs, cr, ck, Cp, Cc, Ca])

    def growth(x):
        C = pools(*x)
        h = lambda S, KK: S / (KK + S)  # noqa: E731
        gr = eps[0] * V[0] * h(C[0], K[0]) + eps[1] * V[1] * h(C[1], K[1]) + eps[2] * V[2] * h(C[6], K[2]) - mu[0]
        gk = eps[3] * V[3] * h(C[0], K[3]) + eps[4] * V[4] * h(C[1], K[4]) + eps[5] * V[5] * h(C[6], K[5]) - mu[1]
        return [gr / mu[0], gk / mu[1]]

    x = fsolve(growth, ss.pools[2:4, 0] * 1.2, xtol=1e-14)
    np.testing.assert_allclose(ss.pools[:, 0], pools(*x), rtol=1e-8)


def test_climatology_gives_periodic_cycle_with_exact_annual_balance():
    days = np.arange(365)
    temperature = 8.0 - 9.0 * np.cos(2 * np.pi * (days - 15) / 365)
    forcing = SiteForcing(temperature=temperature, clay=0.2)
    site = SiteModel(forcing, GRID10)
    params = Parameters()
    ss = solve_site(site, params)
    assert ss.converged, ss.message
    assert ss.mass_balance_error < 1e-8
    # one more year from the 1 January state returns to it
    rates = ss.solver_state["rates"]
    C0 = np.ascontiguousarray(ss.start_of_year.T)
    S = np.empty((1, 1, 7))
    states = np.empty((365, site.n_layers, 7))
    resp = np.empty((365, site.n_layers))
    st, C1 = annual_map(C0, rates, site.day_factors, 1, False, S, states, resp, 1e-12, 1e-12, 0.01)
    assert st == 0
    np.testing.assert_allclose(C1, C0, rtol=1e-8)
    # the annual mean differs from the mean-temperature fixed point (V ∝ e^{0.063 T} is convex), but not wildly
    mean_t = solve_site(SiteModel(forcing.replace(temperature=float(temperature.mean())), GRID10), params)
    rel = np.abs(ss.soc - mean_t.soc) / mean_t.soc
    assert 1e-4 < rel.max() < 0.2
    # a warm start from the periodic solution at nearby parameters converges too
    warm = solve_site(site, Parameters(x_v=4.1), ss)
    assert warm.converged and warm.mass_balance_error < 1e-8


def test_a_warm_start_never_stops_on_a_state_that_is_no_steady_state(data_dir):
    """Real site he2016_157 (ENF): Newton from the steady state of a nearby θ drove the r and K microbes of
    single layers towards the negative root of their linearisation; the positivity clamp held them at ~1e-30
    and the step test reported convergence at a state with RMS relative rate ~1 h⁻¹ (microbes "extinct" in a
    layer between living ones, while diffusion feeds it). The warm start must end on the cold spin-up's root."""
    from bayes_vmimics.config import load_config
    from bayes_vmimics.io import build_site_tables
    from bayes_vmimics.likelihood import CalibrationProblem
    from bayes_vmimics.study import real_site_observations

    cfg = load_config("study_default").replace(data={"site_ids": ["he2016_157"]}, likelihood={"use_c14": False})
    sites = real_site_observations(build_site_tables(data_dir), cfg)
    model = CalibrationProblem(sites, use_c14=False, max_obs_depth_cm=100.0).sites[0].model
    theta = np.array([22.84069573169985, 3.4226404852689183, 0.16000782854468804, 0.1794563862901939,
                      1.6086147624942708, 1.0198083095131858, 1.2639162752368551])  # fmt: skip
    near = np.array([22.537264515897228, 3.1715150140128507, 0.11752980504090228, 0.04936031034918937,
                     6.933986848496604, 4.555045713125101, 1.5432285649393382])  # fmt: skip
    cold = solve_site(model, theta)
    warm = solve_site(model, theta, initial=solve_site(model, near))
    assert cold.converged and warm.converged
    assert warm.residual_norm < 1e-12
    np.testing.assert_allclose(warm.pools, cold.pools, rtol=1e-8, atol=1e-12)


def test_kernel_status_codes_are_the_enum_values():
    from bayes_vmimics import _core
    from bayes_vmimics.steady_state import STATUS_MESSAGES

    kernel = (_core.ST_CONVERGED, _core.ST_MAX_ITER, _core.ST_NON_FINITE, _core.ST_SINGULAR, _core.ST_UNBOUNDED)
    assert kernel + (_core.ST_SADDLE,) == tuple(SolverStatus)[:6]
    assert set(STATUS_MESSAGES) == set(SolverStatus)
    ss = solve_steady_state(Parameters(), SiteForcing(temperature=10.0, clay=0.2))
    assert ss.status is SolverStatus.CONVERGED and ss.message == STATUS_MESSAGES[SolverStatus.CONVERGED]
