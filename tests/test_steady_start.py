"""The cold start through coarser grids and the stability check against the spin-up on the site's grid.

The cold steady state defines the likelihood, so the start from coarser grids (``SolverOptions.coarse_levels``,
the default) must end on the same equilibrium with the same status as the spin-up on the site's grid alone
(``coarse_levels=0``): checked on Table 1 box corners and random box draws here (all 384 corner solves in the
slow tier). The stability check must flag unstable roots (a focus, a saddle, microbes extinct where they could
invade) and pass stable ones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bayes_vmimics import DepthGrid, SiteModel, _coarse, _core, solve_site
from bayes_vmimics.fixed_point import INVASION_RATE, coarse_start, is_unstable
from bayes_vmimics.parameters import LOWER, UPPER
from bayes_vmimics.solver_status import SolverStatus
from bayes_vmimics.steady_state import DEFAULT_OPTIONS, SolverOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from box_corners import CLIMATES, corners  # noqa: E402

OLD = SolverOptions(coarse_levels=0)

#: β = 1 corners (climate, θ) that exercise every branch: converged directly, converged only after the rescue
#: (a former saddle and an overshoot; bistable), unstable focus (OSCILLATORY), not settled, and a corner where
#: the coarse grids find the unstable focus that the site's grid spin-up never reaches
BETA1_CORNERS = [
    ("cold", [2.0, 2.0, 0.1, 25.0, 1.0, 30.0, 1.0]),
    ("cold", [2.0, 30.0, 0.1, 25.0, 1.0, 1.0, 1.0]),
    ("cold", [2.0, 2.0, 0.1, 0.01, 1.0, 1.0, 1.0]),
    ("cold", [2.0, 30.0, 0.1, 0.01, 1.0, 1.0, 1.0]),
    ("temperate", [30.0, 30.0, 15.0, 25.0, 30.0, 30.0, 1.0]),
    ("temperate", [2.0, 2.0, 15.0, 0.01, 30.0, 1.0, 1.0]),
    ("warm", [2.0, 2.0, 0.1, 0.01, 1.0, 1.0, 1.0]),
    ("warm", [30.0, 2.0, 0.1, 25.0, 1.0, 30.0, 1.0]),
]


@pytest.fixture(scope="module")
def sites():
    return {name: SiteModel(forcing) for name, forcing in CLIMATES.items()}


def assert_same(new, old, label=""):
    assert new.status == old.status, f"{label}: {new.status.name} != {old.status.name}"
    if old.converged:
        np.testing.assert_allclose(new.pools, old.pools, rtol=1e-8, atol=1e-20, err_msg=label)


def test_new_start_agrees_with_spin_up_on_beta2_corners(sites):
    """All 64 corners with β = 2 at the temperate climate (the other 64 have β = 1: see below)."""
    site = sites["temperate"]
    for theta in corners():
        if theta[6] != 2.0:
            continue
        new = solve_site(site, theta, on_failure="ignore")
        old = solve_site(site, theta, options=OLD, on_failure="ignore")
        assert_same(new, old, str(theta))
        assert new.converged


@pytest.mark.parametrize("climate, theta", BETA1_CORNERS)
def test_new_start_agrees_with_spin_up_on_beta1_corners(sites, climate, theta):
    theta = np.array(theta)
    new = solve_site(sites[climate], theta, on_failure="ignore")
    old = solve_site(sites[climate], theta, options=OLD, on_failure="ignore")
    assert_same(new, old, f"{climate} {theta}")


def _draws(n, seed, beta_max=None):
    rng = np.random.default_rng(seed)
    names = list(CLIMATES)
    for i in range(n):
        theta = LOWER + rng.random(7) * (UPPER - LOWER)
        if beta_max is not None:
            theta[6] = 1.0 + (beta_max - 1.0) * rng.random()
        yield names[i % len(names)], theta


def test_new_start_agrees_with_spin_up_on_random_box_draws(sites):
    n_coarse = 0
    for climate, theta in _draws(150, seed=31):
        site = sites[climate]
        new = solve_site(site, theta, on_failure="ignore")
        old = solve_site(site, theta, options=OLD, on_failure="ignore")
        assert_same(new, old, f"{climate} {theta}")
        found, *_ = coarse_start(site, theta, site.raw_rates(theta), DEFAULT_OPTIONS)
        n_coarse += found is not None
    assert n_coarse >= 130  # the coarse grids find the root in most cases (else the spin-up is repeated)


def test_new_start_agrees_with_spin_up_near_beta1(sites):
    """β in [1, 1.05]: every converged root passes the stability check, on either path."""
    for climate, theta in _draws(30, seed=32, beta_max=1.05):
        new = solve_site(sites[climate], theta, on_failure="ignore")
        old = solve_site(sites[climate], theta, options=OLD, on_failure="ignore")
        assert_same(new, old, f"{climate} {theta}")


@pytest.mark.slow
def test_new_start_agrees_with_spin_up_on_all_box_corners(sites):
    """All 128 corners × 3 climates (benchmarks/box_corners.py): same status and pools on both paths."""
    for climate, site in sites.items():
        for theta in corners():
            new = solve_site(site, theta, on_failure="ignore")
            old = solve_site(site, theta, options=OLD, on_failure="ignore")
            assert_same(new, old, f"{climate} {theta}")


@pytest.mark.slow
def test_new_start_agrees_with_spin_up_on_many_random_draws(sites):
    for climate, theta in _draws(1200, seed=33):
        assert_same(
            solve_site(sites[climate], theta, on_failure="ignore"),
            solve_site(sites[climate], theta, options=OLD, on_failure="ignore"),
            f"{climate} {theta}",
        )


def test_cold_solve_is_deterministic(sites):
    theta = np.array([4.08, 7.9, 2.02, 0.76, 10.1, 1.01, 1.21])
    a = solve_site(sites["warm"], theta)
    b = solve_site(sites["warm"], theta)
    assert a.converged and np.array_equal(a.pools, b.pools) and a.n_iter == b.n_iter


def test_stability_check_flags_an_unstable_focus_and_passes_a_stable_root(sites):
    site = sites["cold"]
    focus_theta = np.array([2.0, 2.0, 0.1, 0.01, 1.0, 1.0, 1.0])
    ss = solve_site(site, focus_theta, on_failure="ignore")
    assert ss.status == SolverStatus.OSCILLATORY and ss.residual_norm < 1e-12  # an equilibrium ...
    rates = site.raw_rates(focus_theta)
    assert is_unstable(rates, ss.solver_state["C"])  # ... that is unstable
    ev = np.linalg.eigvals(site.jacobian(ss.pools, focus_theta))
    assert ev.real.max() > 0
    stable_theta = np.array([2.0, 2.0, 0.1, 25.0, 1.0, 30.0, 1.0])  # a former saddle corner, now converged
    ok = solve_site(site, stable_theta)
    assert ok.converged
    assert not is_unstable(site.raw_rates(stable_theta), ok.solver_state["C"])
    assert np.linalg.eigvals(site.jacobian(ok.pools, stable_theta)).real.max() < 1e-10


def test_stability_check_flags_a_saddle(sites):
    """A random draw at β = 1 where the rescue ends on a saddle (one real positive eigenvalue, 1.4e-4 h⁻¹, that no
    round of time stepping left; the outcome is sensitive to θ in its last digits): reported ``SADDLE`` on both
    paths, and the stability check flags the returned equilibrium."""
    site = sites["warm"]
    theta = np.array([4.348387208899253, 21.93289761807494, 4.467813732196121, 22.505223658845885,
                      26.915311368502636, 28.15521297644776, 1.0])  # fmt: skip
    ss = solve_site(site, theta, on_failure="ignore")
    assert ss.status == SolverStatus.SADDLE and ss.residual_norm < 1e-12
    assert solve_site(site, theta, options=OLD, on_failure="ignore").status == SolverStatus.SADDLE
    assert is_unstable(site.raw_rates(theta), ss.solver_state["C"])
    ev = np.linalg.eigvals(site.jacobian(ss.pools, theta))
    assert np.sum(ev.real > 1e-10) == 1 and abs(ev[np.argmax(ev.real)].imag) == 0.0


def test_a_root_with_invadable_microbes_is_rejected():
    """β = 1.36 (no stability check there): with K-strategists at ~1e-30 in every layer, dC/dt = 0 holds to
    round-off although K could grow (per capita ~5e-4 h⁻¹). The coarse start rejects such a root."""
    site = SiteModel(CLIMATES["warm"])
    theta = np.array([8.915, 14.931, 1.072, 24.569, 4.615, 22.7, 1.361])
    rates = site.raw_rates(theta)
    ss = solve_site(site, theta)
    assert ss.converged and ss.pools[3].min() > 1e-6
    assert not _coarse.invadable(ss.solver_state["C"], rates, _core.CTINY, INVASION_RATE)
    X = ss.solver_state["C"].copy()
    X[:, 3] = 1e-30
    status, *_ = _core.steady_state_iterate(X, rates, -1.0, 30, 1e-10, 1e-12, 0.01, 10.0)
    assert status == 0 and X[:, 3].max() < 1e-20  # Newton "converges" on the boundary root
    assert _coarse.invadable(X, rates, _core.CTINY, INVASION_RATE)
    assert is_unstable(rates, X)


def test_coarsen_and_prolong():
    grid = DepthGrid.uniform(20, 5.0)
    clay = np.linspace(0.1, 0.3, 20)
    edges, cl = _coarse.coarsen_grid(grid.edges_cm, clay)
    np.testing.assert_allclose(edges, np.arange(0.0, 101.0, 10.0))
    np.testing.assert_allclose(cl, 0.5 * (clay[0::2] + clay[1::2]))
    e3, c3 = _coarse.coarsen_grid(np.arange(6.0), np.array([0.1, 0.2, 0.3, 0.4, 0.5]))  # odd count
    np.testing.assert_allclose(e3, [0.0, 2.0, 4.0, 5.0])
    np.testing.assert_allclose(c3, [0.15, 0.35, 0.5])
    # log-linear interpolation between midpoints is exact for exponential profiles, constant beyond them
    zc = 0.5 * (edges[:-1] + edges[1:])
    Cc = np.exp(-0.05 * zc)[:, None] * np.arange(1.0, 8.0)[None, :]
    X = _coarse.prolong(np.ascontiguousarray(Cc), edges, grid.edges_cm)
    zf = 0.5 * (grid.edges_cm[:-1] + grid.edges_cm[1:])
    inside = (zf >= zc[0]) & (zf <= zc[-1])
    np.testing.assert_allclose(X[inside], (np.exp(-0.05 * zf)[:, None] * np.arange(1.0, 8.0))[inside], rtol=1e-12)
    np.testing.assert_allclose(X[0], Cc[0])
    np.testing.assert_allclose(X[-1], Cc[-1])
    assert np.all(_coarse.prolong(np.zeros((10, 7)), edges, grid.edges_cm) > 0)  # positive


def test_rescue_gives_up_within_its_iteration_budget(sites):
    theta = np.array([2.0, 30.0, 0.1, 0.01, 1.0, 1.0, 1.0])  # not settled after thousands of years
    site = sites["cold"]
    full = solve_site(site, theta, on_failure="ignore")
    short = solve_site(site, theta, options=SolverOptions(rescue_max_iter=500), on_failure="ignore")
    assert full.status == short.status == SolverStatus.NOT_SETTLED
    assert short.n_iter < full.n_iter
    assert short.n_iter <= 500 + 2 * DEFAULT_OPTIONS.max_iter + 200  # budget + the spin-ups before the rescue
