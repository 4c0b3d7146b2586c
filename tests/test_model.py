"""Unit tests of the right-hand side against the spec's Section 12 check values and basic invariants."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from bayes_vmimics import (
    DepthGrid,
    Parameters,
    SiteForcing,
    SiteModel,
    compute_rates,
    dcdt,
    get_constants,
    jacobian,
)
from bayes_vmimics._core import root_fractions

F_MET = 0.5
LN = (0.85 - F_MET) / 0.013  # lignin:N giving f_met = 0.5


def assert_printed(value: float, printed: str) -> None:
    """``value`` rounds to the printed reference: |value − ref| ≤ half a unit of its last printed digit."""
    ref = Decimal(printed)
    half_ulp = Decimal(1).scaleb(ref.as_tuple().exponent) / 2
    assert abs(Decimal(repr(float(value))) - ref) <= half_ulp, f"{value!r} does not round to {printed}"


def _spec12_forcing(total_litter: float = 500.0) -> SiteForcing:
    return SiteForcing(
        temperature=10.0,
        clay=0.2,
        litter_above=total_litter / 2,
        litter_below=total_litter / 2,
        lignin_n_above=LN,
        lignin_n_below=LN,
    )


def test_spec12_rate_constants():
    params = Parameters(x_v=4, x_K=8, x_d=2)
    # spec Sect. 12 uses α_v = 0: no depth factor
    rates = compute_rates(
        params,
        _spec12_forcing(),
        DepthGrid.uniform(1, 5.0),
        profile=get_constants("paper").replace(v_depth_factor=False),
    )
    for v, s in zip(rates.V[0], ["0.14267", "0.028535", "0.14267", "0.042802", "0.042802", "0.028535"], strict=True):
        assert_printed(v, s)
    for v, s in zip(
        rates.K[0, [0, 1, 3, 4, 2, 5]],
        ["287.89", "1272.68", "1151.57", "636.34", "704.16", "469.44"],
        strict=True,
    ):
        assert_printed(v, s)
    assert_printed(rates.mu[0, 0], "7.8540e-4")
    assert_printed(rates.mu[0, 1], "3.2800e-4")
    assert_printed(rates.k_des[0], "2.2225e-5")
    for v, s in zip(rates.phi[0], ["0.16808", "0.28636", "0.54556", "0.02300", "0.97700", "0"], strict=True):
        assert_printed(v, s)


def test_spec12_wc22_k_of_available_substrate_without_factor_two():
    rates = compute_rates(Parameters(x_v=4, x_K=8), _spec12_forcing(), DepthGrid.uniform(1, 5.0), profile="wc22")
    assert_printed(rates.K[0, 2], "1408.33")
    assert_printed(rates.K[0, 5], "938.89")


# the spec's test vectors: state (m, s, r, k, p, c, a), I_m = I_s = 2.32894e-4 mg C cm⁻³ h⁻¹ in a 5-cm layer
STATE = np.array([1.0, 2.0, 0.1, 0.2, 3.0, 5.0, 2.0])[:, None]
I_LAYER = 2.32894e-4  # mg C cm⁻³ h⁻¹ each to m and s
LITTER = I_LAYER * 2 * 5.0 * 87600.0 / 2  # g C m⁻² yr⁻¹ above and below giving that in one 5-cm layer

WC22_VECTOR = [
    "1.64435e-4",
    "1.89951e-4",
    "-1.36263e-5",
    "-1.76790e-5",
    "-4.56060e-5",
    "5.27040e-5",
    "8.09280e-5",
]
PAPER_VECTOR = [
    "1.65838e-4",
    "1.90724e-4",
    "-2.95807e-7",
    "-1.52468e-5",
    "-4.56060e-5",
    "5.31875e-5",
    "4.97848e-5",
]


@pytest.mark.parametrize(("profile", "expected"), [("wc22", WC22_VECTOR), ("paper", PAPER_VECTOR)])
def test_spec12_dcdt_vectors(profile, expected):
    forcing = SiteForcing(
        temperature=10.0,
        clay=0.2,
        litter_above=LITTER,
        litter_below=LITTER,
        lignin_n_above=LN,
        lignin_n_below=LN,
    )
    params = Parameters(x_v=4, x_K=8, x_d=2, beta=1.2, alpha_v=1.0)  # z̄ = 0.025 m in the paper profile
    out = dcdt(STATE, params, forcing, DepthGrid.uniform(1, 5.0), profile=profile).ravel()
    for v, s in zip(out, expected, strict=True):
        assert_printed(v, s)


def test_root_fractions_match_spec_and_sum_to_one():
    rho = root_fractions(10.0, np.arange(21) * 0.05)
    # spec 6.3 quotes "ρ ≈ 0.394, 0.239, 0.145, 0.088, 0.053"; exact: (1 − e^{−0.5}) / (1 − e^{−10}) = 0.39349
    np.testing.assert_allclose(rho[:5], [0.394, 0.239, 0.145, 0.088, 0.053], atol=1e-3)
    assert rho[0] == pytest.approx((1 - np.exp(-0.5)) / (1 - np.exp(-10.0)), rel=1e-14)
    assert rho.sum() == pytest.approx(1.0, abs=1e-14)


def test_inputs_integrate_to_litter_flux():
    forcing = SiteForcing(litter_above=300.0, litter_below=200.0)
    grid = DepthGrid.from_thicknesses([2.0, 3.0, 5.0, 10.0, 30.0, 50.0])
    r = compute_rates(Parameters(), forcing, grid)
    total = (r.inputs.sum(axis=1) * grid.thickness_cm).sum()  # mg C cm⁻² h⁻¹
    assert total == pytest.approx(500.0 * 0.1 / 8760.0, rel=1e-13)


def _random_state(rng, n):
    return rng.uniform(0.05, 20.0, size=(7, n))


@pytest.mark.parametrize("beta", [1.0, 1.37, 2.0])
def test_jacobian_matches_finite_differences(beta):
    rng = np.random.default_rng(1)
    grid = DepthGrid.from_thicknesses([3.0, 5.0, 7.0, 10.0])
    forcing = SiteForcing(temperature=17.0, clay=[0.1, 0.2, 0.3, 0.4], lignin_n_above=30.0)
    params = Parameters(x_v=9.0, x_K=3.0, x_D=5.0, beta=beta, alpha_v=4.0)
    C = _random_state(rng, grid.n_layers)
    J = jacobian(C, params, forcing, grid)
    Jfd = np.empty_like(J)
    flat = C.ravel()
    for q in range(flat.size):
        h = 1e-6 * max(1.0, abs(flat[q]))
        xp, xm = flat.copy(), flat.copy()
        xp[q] += h
        xm[q] -= h
        Jfd[:, q] = (
            dcdt(xp.reshape(C.shape), params, forcing, grid) - dcdt(xm.reshape(C.shape), params, forcing, grid)
        ).ravel() / (2 * h)
    np.testing.assert_allclose(J, Jfd, rtol=1e-6, atol=1e-12)


def test_column_mass_balance_of_rhs():
    """Σ_layers Δz Σ_pools dC/dt = inputs − respiration for any state: diffusion and transfers conserve carbon."""
    rng = np.random.default_rng(2)
    grid = DepthGrid.from_thicknesses([2.0, 4.0, 6.0, 8.0, 30.0])
    site = SiteModel(SiteForcing(temperature=5.0, clay=0.4), grid)
    C = _random_state(rng, grid.n_layers)
    F, resp = site.dcdt(C, Parameters(x_D=20.0), return_respiration=True)
    gain = (F.sum(axis=0) * grid.thickness_cm).sum()
    assert gain == pytest.approx(site.total_input - (resp * grid.thickness_cm).sum(), rel=1e-12, abs=1e-18)


def test_diffusion_operator_is_conservative_per_pool():
    """With no microbes there is no decomposition: each litter pool changes only by input and diffusion, and
    diffusion moves carbon between layers without creating or destroying it."""
    rng = np.random.default_rng(3)
    grid = DepthGrid.from_thicknesses([1.0, 2.0, 5.0, 10.0, 20.0])
    site = SiteModel(SiteForcing(), grid)
    C = _random_state(rng, grid.n_layers)
    C[2:4] = 0.0
    params = Parameters(x_D=25.0)
    F = site.dcdt(C, params)
    u = site.rates(params).inputs.T
    diff = F[:2] - u[:2]  # pure diffusion for m and s
    np.testing.assert_allclose((diff * grid.thickness_cm).sum(axis=1), 0.0, atol=1e-15 * np.abs(diff).max())
    assert np.abs(diff).max() > 1e-8  # and diffusion did act


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"clay": -0.1}, "clay"),
        ({"clay": 1.5}, "clay"),
        ({"litter_above": -5.0}, "litter_above"),
        ({"litter_below": float("nan")}, "litter_below"),
        ({"lignin_n_above": 80.0}, "negative metabolic fraction"),
        ({"temperature": np.zeros(100)}, "365"),
        ({"temperature": float("inf")}, "temperature"),
        ({"latitude": 95.0}, "latitude"),
        ({"litter_above": 0.0, "litter_below": 0.0}, "positive"),
    ],
)
def test_bad_forcing_raises_naming_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SiteForcing(**kwargs)


@pytest.mark.parametrize(
    ("edges", "match"),
    [
        ([0.0, 5.0, 5.0, 10.0], "strictly increasing"),
        ([0.0, 10.0, 5.0], "strictly increasing"),
        ([1.0, 5.0], "start at 0"),
        ([0.0], "at least 2"),
    ],
)
def test_bad_grid_raises(edges, match):
    with pytest.raises(ValueError, match=match):
        DepthGrid(edges)


def test_bad_parameters_and_bounds_report():
    with pytest.raises(ValueError, match="x_v"):
        Parameters(x_v=-1.0)
    p = Parameters(x_v=40.0, beta=0.9)
    assert not p.check_bounds()
    assert set(p.out_of_bounds()) == {"x_v", "beta"}
    with pytest.raises(ValueError, match="x_v=40 outside"):
        p.check_bounds(raise_error=True)
    assert Parameters().check_bounds()


def test_per_layer_clay_length_checked():
    with pytest.raises(ValueError, match="per-layer"):
        SiteModel(SiteForcing(clay=[0.1, 0.2]), DepthGrid.uniform(3, 5.0))


def test_pools_shape_and_sign_checked():
    site = SiteModel(SiteForcing())
    with pytest.raises(ValueError, match="shape"):
        site.dcdt(np.ones((7, 3)), Parameters())
    bad = np.ones((7, 20))
    bad[0, 0] = -1.0
    with pytest.raises(ValueError, match="non-negative"):
        site.dcdt(bad, Parameters())
