"""Observation operator: hand-computed weights, units, F14C weighting and bad input (spec Sect. 10)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_vmimics.grid import DepthGrid
from bayes_vmimics.observation import ObservationOperator, required_grid


def _pools(n_layers: int, per_pool) -> np.ndarray:
    """(7, n_layers) array; ``per_pool[p]`` is pool p's value in every layer, or a layer vector."""
    x = np.zeros((7, n_layers))
    for p, v in per_pool.items():
        x[p] = v
    return x


def test_aligned_intervals():
    g = DepthGrid.uniform(4, 5.0)  # 0, 5, 10, 15, 20
    op = ObservationOperator(g, [0, 5], [5, 15])
    np.testing.assert_allclose(op.weights, [[1, 0, 0, 0], [0, 0.5, 0.5, 0]])
    # Only r, k, p, c, a count (P Eq 15); litter m, s is excluded.
    pools = _pools(4, {0: 100.0, 1: 100.0, 2: 1.0, 3: 2.0, 4: [10, 20, 30, 40], 5: 3.0, 6: 4.0})
    np.testing.assert_allclose(op.soc_mg_cm3(pools), [20.0, 35.0])


def test_misaligned_interval():
    g = DepthGrid([0.0, 5.0, 10.0, 20.0])
    op = ObservationOperator(g, [3.0], [12.0])
    # Overlaps 2, 5 and 2 cm of a 9 cm interval.
    np.testing.assert_allclose(op.weights, [[2 / 9, 5 / 9, 2 / 9]])
    pools = _pools(3, {4: [9.0, 18.0, 27.0]})
    assert op.soc_mg_cm3(pools)[0] == pytest.approx((2 * 9 + 5 * 18 + 2 * 27) / 9)


def test_thin_interval_inside_one_layer():
    g = DepthGrid.uniform(3, 10.0)
    op = ObservationOperator(g, 12.0, 13.5, bulk_density_g_cm3=1.25)
    np.testing.assert_array_equal(op.weights, [[0, 1, 0]])
    pools = _pools(3, {6: [1.0, 30.0, 5.0]})
    assert op.soc_mg_cm3(pools)[0] == pytest.approx(30.0)
    assert op.soc_g_kg(pools)[0] == pytest.approx(24.0)  # 30 mg cm⁻³ / 1.25 g cm⁻³


def test_gap_left_by_an_excluded_layer():
    # the curation drops an isolated near-zero layer (QA rule isolated_near_zero_layer, e.g. he2016_13 82-102 cm):
    # the layers above and below keep their own intervals and the gap has no weight
    g = DepthGrid.uniform(6, 10.0)  # 0, 10, ..., 60
    op = ObservationOperator(g, [0.0, 20.0, 40.0], [20.0, 30.0, 60.0])
    np.testing.assert_allclose(op.weights, [[0.5, 0.5, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0.5, 0.5]])
    pools = _pools(6, {4: [10.0, 20.0, 30.0, 1000.0, 50.0, 60.0]})  # the gap's 1000 is never seen
    np.testing.assert_allclose(op.soc_mg_cm3(pools), [15.0, 30.0, 55.0])


def test_weights_match_brute_force_and_rows_sum_to_one():
    rng = np.random.default_rng(42)
    g = DepthGrid.from_thicknesses(rng.uniform(1.0, 8.0, size=12))
    top = rng.uniform(0.0, 0.7 * g.depth_cm, size=20)
    bot = np.minimum(top + rng.uniform(0.1, 30.0, size=20), g.depth_cm)
    op = ObservationOperator(g, top, bot)
    np.testing.assert_allclose(op.weights.sum(axis=1), 1.0, rtol=1e-12)
    # Midpoint rule on a fine sub-grid of each interval.
    for i in range(20):
        z = top[i] + (np.arange(20000) + 0.5) * (bot[i] - top[i]) / 20000
        layer = np.searchsorted(g.edges_cm, z, side="right") - 1
        brute = np.bincount(layer, minlength=g.n_layers) / z.size
        np.testing.assert_allclose(op.weights[i], brute, atol=2e-4)


def test_soc_g_kg_units():
    g = DepthGrid.uniform(2, 10.0)
    op = ObservationOperator(g, [0, 10], [10, 20], bulk_density_g_cm3=[1.2, 1.5])
    # PROVENANCE example: 2.0 % at BD 1.2 = 24 mg cm⁻³ = 20 g kg⁻¹.
    pools = _pools(2, {5: [24.0, 15.0]})
    np.testing.assert_allclose(op.soc_mg_cm3(pools), [24.0, 15.0])
    np.testing.assert_allclose(op.soc_g_kg(pools), [20.0, 10.0])


def test_f14c_weighting_and_pool_set():
    g = DepthGrid.uniform(2, 5.0)
    op = ObservationOperator(g, [0.0, 0.0], [5.0, 10.0])
    c = _pools(2, {2: 50.0, 3: 50.0, 4: [1.0, 3.0], 5: [1.0, 3.0], 6: [2.0, 6.0]})  # a+p+c = 4, 12
    c14 = np.zeros_like(c)
    c14[4:7] = c[4:7] * np.array([1.1, 0.9])  # F14C 1.1 in layer 0, 0.9 in layer 1
    c14[2:4] = 1000.0  # microbes are excluded from the 14C comparison (spec A13)
    f = op.f14c(c, c14)
    assert f[0] == pytest.approx(1.1)
    # 14C-weighted, not a mean of ratios: (4·1.1 + 12·0.9) / 16 = 0.95.
    assert f[1] == pytest.approx(0.95)


def test_f14c_no_carbon_is_nan():
    g = DepthGrid.uniform(2, 5.0)
    op = ObservationOperator(g, [0.0, 5.0], [5.0, 10.0])
    c = _pools(2, {6: [1.0, 0.0]})
    f = op.f14c(c, c)
    assert f[0] == 1.0 and np.isnan(f[1])


def test_batched_pools():
    rng = np.random.default_rng(0)
    g = DepthGrid.uniform(5, 5.0)
    op = ObservationOperator(g, [0, 7, 12], [7, 12, 25], bulk_density_g_cm3=[1.0, 1.1, 1.3])
    c = rng.uniform(0.1, 10.0, size=(4, 3, 7, 5))
    c14 = c * rng.uniform(0.8, 1.2, size=c.shape)
    soc = op.soc_mg_cm3(c)
    f = op.f14c(c, c14)
    assert soc.shape == f.shape == (4, 3, 3)
    np.testing.assert_allclose(soc[2, 1], op.soc_mg_cm3(c[2, 1]))
    np.testing.assert_allclose(f[3, 0], op.f14c(c[3, 0], c14[3, 0]))
    np.testing.assert_allclose(op.soc_g_kg(c)[1, 2], op.soc_g_kg(c[1, 2]))
    # Adjoint identity documented on .weights: SOC density = W @ (sum of SOC pools).
    np.testing.assert_allclose(soc[0, 0], op.weights @ c[0, 0, 2:7].sum(axis=0))


def test_weights_read_only():
    op = ObservationOperator(DepthGrid.uniform(2, 5.0), [0.0], [10.0])
    with pytest.raises(ValueError):
        op.weights[0, 0] = 0.0


@pytest.mark.parametrize(
    ("top", "bottom", "match"),
    [
        ([0.0, 10.0], [5.0, 10.0], r"interval 1 has top_cm = 10\.0 >= bottom_cm = 10\.0"),
        ([8.0], [4.0], r"top_cm = 8\.0 >= bottom_cm = 4\.0"),
        ([-5.0], [5.0], r"negative depth.*-5\.0"),
        ([0.0], [np.nan], r"bottom_cm must be finite.*nan"),
        ([0.0, 1.0], [5.0], "equal length"),
    ],
)
def test_bad_intervals(top, bottom, match):
    with pytest.raises(ValueError, match=match):
        ObservationOperator(DepthGrid.uniform(4, 5.0), top, bottom)


def test_observation_below_grid_raises():
    g = DepthGrid.uniform(4, 5.0)
    with pytest.raises(ValueError, match=r"15\.0–25\.0 cm.*below the model grid \(20\.0 cm\).*required_grid"):
        ObservationOperator(g, [0.0, 15.0], [10.0, 25.0])
    ObservationOperator(g, [15.0], [20.0])  # touching the bottom is fine


@pytest.mark.parametrize("bd", [[1.2, np.nan], [1.2, 0.0], [1.2, -1.0]])
def test_bad_bulk_density(bd):
    g = DepthGrid.uniform(2, 5.0)
    op = ObservationOperator(g, [0.0, 5.0], [5.0, 10.0], bulk_density_g_cm3=bd)
    pools = _pools(2, {6: 1.0})
    op.soc_mg_cm3(pools)  # density and F14C do not need BD
    with pytest.raises(ValueError, match=rf"interval 1 \(5\.0–10\.0 cm\) is {bd[1]!r}"):
        op.soc_g_kg(pools)


def test_missing_bulk_density():
    op = ObservationOperator(DepthGrid.uniform(2, 5.0), [0.0], [5.0])
    with pytest.raises(ValueError, match="bulk_density_g_cm3 was not given"):
        op.soc_g_kg(np.ones((7, 2)))
    with pytest.raises(ValueError, match="one per interval"):
        ObservationOperator(DepthGrid.uniform(2, 5.0), [0.0], [5.0], bulk_density_g_cm3=[1.0, 1.0])


def test_bad_pool_shape():
    op = ObservationOperator(DepthGrid.uniform(3, 5.0), [0.0], [5.0])
    with pytest.raises(ValueError, match=r"pools must have shape .*n_layers=3.*\(7, 4\)"):
        op.soc_mg_cm3(np.ones((7, 4)))
    with pytest.raises(ValueError, match="c14_pools"):
        op.f14c(np.ones((7, 3)), np.ones((5, 3)))


def test_required_grid():
    g = DepthGrid.uniform(20, 5.0)
    assert required_grid(g, [10.0, 100.0]) is g
    g2 = required_grid(g, [30.0, 112.0])
    assert g2.depth_cm == 115.0 and g2.n_layers == 23
    np.testing.assert_array_equal(g2.edges_cm[:21], g.edges_cm)
    ObservationOperator(g2, [100.0], [112.0])
    with pytest.raises(ValueError, match=r"112\.0 cm, below the model grid \(100\.0 cm\)"):
        required_grid(g, [112.0], extend=False)
    with pytest.raises(ValueError, match="finite"):
        required_grid(g, [np.nan])
