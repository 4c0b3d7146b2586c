"""Radiocarbon: tracer and paper modes against analytic and dense references (spec Sect. 11; P §2.2).

The references are independent of the block-tridiagonal code: the tracer matrix is assembled densely here
from the per-layer transfer blocks and the diffusion couplings (and that assembly is itself checked against
``SiteModel.dcdt``); steady states use ``numpy.linalg.solve`` and transients the exact matrix exponential.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

from bayes_vmimics import _core
from bayes_vmimics.atmosphere import ZONES, AtmosphericRecord
from bayes_vmimics.constants import C14_POOLS, LAMBDA_14C_PER_HOUR
from bayes_vmimics.forcing import SiteForcing
from bayes_vmimics.model import SiteModel
from bayes_vmimics.observation import ObservationOperator
from bayes_vmimics.parameters import Parameters
from bayes_vmimics.radiocarbon import (
    RadiocarbonResult,
    _flux_averaged_blocks,
    f14c_steady_state,
    simulate_radiocarbon,
)
from bayes_vmimics.steady_state import solve_site

HOURS_PER_YEAR = 8760.0
YEARS = np.arange(1950, 2011)


def _record(values_by_year) -> AtmosphericRecord:
    """A record with the same F14C series in every zone, 1950–2010."""
    v = np.asarray(values_by_year, dtype=float)
    return AtmosphericRecord("test", YEARS, np.tile(v, (len(ZONES), 1)))


def _constant(f: float) -> AtmosphericRecord:
    return _record(np.full(YEARS.size, f))


def _bomb() -> AtmosphericRecord:
    """A synthetic bomb curve: 0.975 to 1955, a linear rise to 1.9 in 1963, then relaxation towards 1."""
    y = YEARS.astype(float)
    f = np.where(y < 1955, 0.975, 0.975 + (1.9 - 0.975) * (y - 1955) / 8.0)
    return _record(np.where(y > 1963, 1.0 + 0.9 * np.exp(-(y - 1963) / 16.0), f))


@pytest.fixture(scope="module")
def case():
    params = Parameters()
    site = SiteModel(SiteForcing(temperature=10.0, clay=0.2))
    ss = solve_site(site, params, on_failure="raise")
    return site, params, ss


def _dense_tracer_matrix(site, params, C):
    """M = blockdiag(B_j) + Diffusion (7N × 7N, layer-major index j·7 + pool), without decay (h⁻¹)."""
    V, K, mu, phi, kdes, u, eps, lo, up, beta, _ = site.raw_rates(params)
    n = C.shape[0]
    B = np.empty((n, 7, 7))
    _core.transfer_blocks(C, V, K, mu, eps, phi, kdes, beta, 1.0, 1.0, 1.0, B)
    M = np.zeros((7 * n, 7 * n))
    for j in range(n):
        M[7 * j : 7 * j + 7, 7 * j : 7 * j + 7] = B[j] - (lo[j] + up[j]) * np.eye(7)
        if j > 0:
            M[7 * j : 7 * j + 7, 7 * (j - 1) : 7 * j] = lo[j] * np.eye(7)
        if j < n - 1:
            M[7 * j : 7 * j + 7, 7 * (j + 1) : 7 * (j + 2)] = up[j] * np.eye(7)
    return M, u.ravel()


def _exact_transient(M, u, f_spin, f_years, sampling_year):
    """Exact propagation: within year Y, X − f_Y X₁ decays with exp(M t) (M X₁ = −u)."""
    X1 = np.linalg.solve(M, -u)
    X = f_spin * X1
    E = sla.expm(M * HOURS_PER_YEAR)
    last = int(np.floor(sampling_year))
    for k in range(last - 1950):
        X = f_years[k] * X1 + E @ (X - f_years[k] * X1)
    frac = sampling_year - last
    if frac > 0:
        f = f_years[last - 1950]
        X = f * X1 + sla.expm(M * HOURS_PER_YEAR * frac) @ (X - f * X1)
    return X


def _f14c_som(X, C):
    """F14C of p + c + a per layer from layer-major flat vectors."""
    n = C.size // 7
    x, c = X.reshape(n, 7), C.reshape(n, 7)
    return x[:, list(C14_POOLS)].sum(1) / c[:, list(C14_POOLS)].sum(1)


# ---------------------------------------------------------------- the dense reference is the carbon model
def test_dense_tracer_operator_reproduces_carbon_rhs(case):
    site, params, ss = case
    rng = np.random.default_rng(3)
    C = ss.pools * rng.uniform(0.5, 1.5, size=ss.pools.shape)  # an arbitrary state, not the steady state
    M, u = _dense_tracer_matrix(site, params, np.ascontiguousarray(C.T))
    np.testing.assert_allclose(M @ C.T.ravel() + u, site.dcdt(C, params).T.ravel(), rtol=1e-10, atol=1e-16)


# ---------------------------------------------------------------- steady states
def test_unit_atmosphere_without_decay_gives_one_everywhere(case):
    site, params, ss = case
    x = f14c_steady_state(ss, site, 1.0, decay=False)
    np.testing.assert_allclose(x / ss.pools, 1.0, rtol=1e-9)
    for mode in ("tracer", "paper"):
        r = simulate_radiocarbon(ss, site, params, _constant(1.0), "NH1", 1987.5, mode=mode, decay=False)
        np.testing.assert_allclose(r.f14c_pools, 1.0, rtol=1e-9)
        np.testing.assert_allclose(r.f14c, 1.0, rtol=1e-9)


def test_decay_only_matches_dense_linear_solve(case):
    site, params, ss = case
    M, u = _dense_tracer_matrix(site, params, ss.solver_state["C"])
    M -= LAMBDA_14C_PER_HOUR * np.eye(M.shape[0])
    ref = np.linalg.solve(M, -0.97 * u).reshape(-1, 7).T
    got = f14c_steady_state(ss, site, 0.97)
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    f = got[list(C14_POOLS)].sum(0) / ss.pools[list(C14_POOLS)].sum(0)
    # decay makes deep SOM older: F14C falls with depth and stays below the litter's
    assert np.all(np.diff(f) < 0) and f[0] < 0.97 and f[-1] < 0.9


def test_spin_up_is_a_true_steady_state(case):
    site, params, ss = case
    f = 0.9743
    spin = f14c_steady_state(ss, site, f)
    r = simulate_radiocarbon(ss, site, params, _constant(f), "NH1", 2004.25)
    np.testing.assert_allclose(r.c14_pools, spin, rtol=1e-10)
    # paper mode: the 14C run's spin-up solves dC/dt(X; inputs × f) − λX = 0 ...
    p0 = simulate_radiocarbon(ss, site, params, _constant(f), "NH1", 1950.0, mode="paper")
    X = p0.c14_pools
    u = site.rates(params).inputs.T
    resid = site.dcdt(X, params) + (f - 1.0) * u - LAMBDA_14C_PER_HOUR * X
    assert np.max(np.abs(resid)) < 1e-10 * np.max(u)
    # ... and stays there under a constant atmosphere
    p1 = simulate_radiocarbon(ss, site, params, _constant(f), "NH1", 2004.25, mode="paper")
    np.testing.assert_allclose(p1.c14_pools, X, rtol=1e-9)


def test_tracer_and_paper_modes_with_a_constant_1950_atmosphere(case):
    """Both modes are stationary at their spin-up; they coincide only for F14C = 1 without decay.

    The paper mode's 14C run is the nonlinear carbon model with inputs × f, whose pools do not scale with f
    (MIMICS SOM stocks barely respond to inputs), so its F14C is not f even without decay (module docstring).
    """
    site, params, ss = case
    f = 0.9743
    t = simulate_radiocarbon(ss, site, params, _constant(f), "NH1", 2000.0, decay=False)
    p = simulate_radiocarbon(ss, site, params, _constant(f), "NH1", 2000.0, mode="paper", decay=False)
    np.testing.assert_allclose(t.f14c, f, rtol=1e-10)  # the tracer is exactly the litter's F14C
    assert np.all(p.f14c > f + 0.01) and np.all(p.f14c < 1.0)  # the documented paper-mode bias towards 1
    # both modes agree that decay lowers F14C more at depth
    td = simulate_radiocarbon(ss, site, params, _constant(f), "NH1", 2000.0)
    pd = simulate_radiocarbon(ss, site, params, _constant(f), "NH1", 2000.0, mode="paper")
    assert np.all(np.diff(td.f14c) < 0) and pd.f14c[-1] < pd.f14c[0] - 0.2
    np.testing.assert_allclose(pd.f14c - p.f14c, td.f14c - t.f14c, atol=0.06)


# ---------------------------------------------------------------- transient
@pytest.mark.parametrize("sampling_year", [1958.0, 1964.0, 1970.5, 1991.25, 2010.0])
def test_transient_matches_exact_matrix_exponential(case, sampling_year):
    site, params, ss = case
    atm = _bomb()
    C = ss.solver_state["C"]
    M, u = _dense_tracer_matrix(site, params, C)
    M -= LAMBDA_14C_PER_HOUR * np.eye(M.shape[0])
    f_years = atm.litter_f14c("NH1", np.arange(1950, 2011))
    ref = _exact_transient(M, u, atm.f14c("NH1", 1950), f_years, sampling_year)
    r = simulate_radiocarbon(ss, site, params, atm, "NH1", sampling_year)
    np.testing.assert_allclose(r.f14c, _f14c_som(ref, C.ravel()), atol=1e-4)
    np.testing.assert_allclose(r.c14_pools, ref.reshape(-1, 7).T, rtol=2e-3, atol=1e-6)


def test_halving_the_step_changes_f14c_by_less_than_1e_4(case):
    site, params, ss = case
    atm = _bomb()
    for y in (1960.0, 1963.5, 1966.0, 1975.0, 2010.0):
        a = simulate_radiocarbon(ss, site, params, atm, "NH1", y)
        b = simulate_radiocarbon(ss, site, params, atm, "NH1", y, steps_per_year=8)
        assert np.max(np.abs(a.f14c - b.f14c)) < 1e-4, y
    a = simulate_radiocarbon(ss, site, params, atm, "NH1", 1966.0, mode="paper")
    b = simulate_radiocarbon(ss, site, params, atm, "NH1", 1966.0, mode="paper", steps_per_year=8)
    assert np.max(np.abs(a.f14c - b.f14c)) < 1e-4


def test_bomb_carbon_appears_first_near_the_surface(case, atm_dir):
    from bayes_vmimics.io.atmosphere import load_atmosphere

    site, params, ss = case
    atm = load_atmosphere("hua2013", atm_dir)
    for y in range(1970, 2011, 5):
        f = simulate_radiocarbon(ss, site, params, atm, "NH1", float(y)).f14c
        assert f[0] > 1.0 and f[0] > f[-1] + 0.2, y
        f8 = simulate_radiocarbon(ss, site, params, atm, "NH1", float(y), steps_per_year=8).f14c
        assert np.max(np.abs(f - f8)) < 1e-4, y
    # before the bomb the profile is the decay-only equilibrium with the 1950 atmosphere
    f55 = simulate_radiocarbon(ss, site, params, atm, "NH1", 1955.0).f14c
    assert np.all(f55 < 1.0)


def test_result_f14c_is_the_observation_operator_per_layer(case):
    site, params, ss = case
    r = simulate_radiocarbon(ss, site, params, _bomb(), "NH2", 1999.0)
    assert isinstance(r, RadiocarbonResult) and r.mode == "tracer" and r.sampling_year == 1999.0
    e = site.grid.edges_cm
    op = ObservationOperator(site.grid, e[:-1], e[1:])
    np.testing.assert_allclose(r.f14c, op.f14c(r.pools, r.c14_pools), rtol=1e-13)
    assert r.c14_pools.shape == r.pools.shape == (7, site.n_layers)


# ---------------------------------------------------------------- climatology (flux-averaged operator)
def test_flux_averaged_blocks_reproduce_mean_fluxes(case):
    site, params, ss = case
    V, K, mu, phi, kdes, u, eps, lo, up, beta, _ = ss.solver_state["rates"]
    rng = np.random.default_rng(7)
    n_days, n = 12, site.n_layers
    states = ss.solver_state["C"][None] * rng.uniform(0.7, 1.3, size=(n_days, n, 7))
    factors = rng.uniform(0.5, 2.0, size=(n_days, 3))
    Bbar, Cbar = np.empty((n, 7, 7)), np.empty((n, 7))
    _flux_averaged_blocks(states, factors, 1, V, K, mu, eps, phi, kdes, beta, Bbar, Cbar)
    mean_flux = np.zeros((n, 7))
    Bd = np.empty((n, 7, 7))
    for t in range(n_days):
        _core.transfer_blocks(states[t], V, K, mu, eps, phi, kdes, beta, *factors[t], Bd)
        mean_flux += np.einsum("jid,jd->ji", Bd, states[t]) / n_days
    np.testing.assert_allclose(Cbar, states.mean(0), rtol=1e-14)
    np.testing.assert_allclose(np.einsum("jid,jd->ji", Bbar, Cbar), mean_flux, rtol=1e-12, atol=1e-18)


def test_climatology_site_unit_atmosphere():
    t = 8.0 + 10.0 * np.sin(2 * np.pi * (np.arange(365) - 100) / 365)
    site = SiteModel(SiteForcing(temperature=t, clay=0.2))
    params = Parameters()
    ss = solve_site(site, params, on_failure="raise")
    if "daily_states" not in ss.solver_state:  # pragma: no cover - the annual-cycle solver stores them
        pytest.skip("steady state has no periodic daily states")
    r = simulate_radiocarbon(ss, site, params, _constant(1.0), "NH1", 1990.0, decay=False)
    np.testing.assert_allclose(r.f14c_pools, 1.0, rtol=1e-7)
    np.testing.assert_allclose(r.pools, ss.pools, rtol=1e-14)
    with pytest.raises(NotImplementedError, match="constant-temperature"):
        simulate_radiocarbon(ss, site, params, _constant(1.0), "NH1", 1990.0, mode="paper")


# ---------------------------------------------------------------- bad input
def test_bad_input(case):
    site, params, ss = case
    atm = _bomb()
    with pytest.raises(ValueError, match="before 1950"):
        simulate_radiocarbon(ss, site, params, atm, "NH1", 1949.9)
    with pytest.raises(ValueError, match="finite"):
        simulate_radiocarbon(ss, site, params, atm, "NH1", float("nan"))
    with pytest.raises(ValueError, match="unknown atmospheric 14C zone"):
        simulate_radiocarbon(ss, site, params, atm, "NH4", 2000.0)
    with pytest.raises(ValueError, match="mode"):
        simulate_radiocarbon(ss, site, params, atm, "NH1", 2000.0, mode="isotope")
    with pytest.raises(ValueError, match="steps_per_year"):
        simulate_radiocarbon(ss, site, params, atm, "NH1", 2000.0, steps_per_year=0)
    with pytest.raises(ValueError, match="do not match"):
        simulate_radiocarbon(ss, site, Parameters(x_v=5.0), atm, "NH1", 2000.0)
    with pytest.raises(ValueError, match="needs params"):
        simulate_radiocarbon(ss, site, None, atm, "NH1", 2000.0, mode="paper")
    with pytest.raises(ValueError, match="positive"):
        f14c_steady_state(ss, site, 0.0)
    # 1950 itself is the spin-up; params=None is allowed in tracer mode
    r = simulate_radiocarbon(ss, site, None, atm, "SH1-2", 1950.0)
    np.testing.assert_allclose(r.c14_pools, f14c_steady_state(ss, site, 0.975), rtol=1e-12)


def test_years_after_the_record_hold_its_last_value(case):
    site, params, ss = case
    atm = _bomb()
    longer = AtmosphericRecord(
        "held", np.arange(1950, 2031), np.hstack([atm.values, np.repeat(atm.values[:, -1:], 20, axis=1)])
    )
    a = simulate_radiocarbon(ss, site, params, atm, "NH3", 2025.5)
    b = simulate_radiocarbon(ss, site, params, longer, "NH3", 2025.5)
    np.testing.assert_array_equal(a.c14_pools, b.c14_pools)
