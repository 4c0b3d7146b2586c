"""Results DataTree: groups, netCDF round trip, summary table, figure."""

import json

import numpy as np
import pytest
import xarray as xr

from bayes_vmimics.config import StudyConfig
from bayes_vmimics.grid import DepthGrid
from bayes_vmimics.inference import ensemble_convergence, run_ensembles
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.parameters import PARAMETER_NAMES
from bayes_vmimics.plotting import plot_profiles
from bayes_vmimics.results import (
    GROUPS,
    build_datatree,
    correlation,
    fit_metrics_table,
    format_report,
    load_datatree,
    save_datatree,
    summary_table,
)
from bayes_vmimics.synthetic import make_synthetic_sites, true_parameters

GRID = DepthGrid.uniform(6, 10.0)


@pytest.fixture(scope="module")
def tree():
    sites = make_synthetic_sites(2, rng=np.random.default_rng(5), interval_edges_cm=(0, 10, 30, 60), grid=GRID)
    pb = CalibrationProblem(sites, grid=GRID, warm_start=False)
    runs = run_ensembles(pb, pb.prior, n_ensembles=2, seed=4, n_walkers=14, n_steps=12)
    conv = ensemble_convergence(runs, PARAMETER_NAMES, discard=4)
    dt = build_datatree(
        pb,
        runs,
        config=StudyConfig(),
        discard=4,
        thin=2,
        max_draws=30,
        seed=4,
        truth=true_parameters(),
        convergence=conv,
    )
    return dt, pb


def test_groups_and_shapes(tree):
    dt, pb = tree
    assert set(GROUPS) <= set(dt.children)
    post = dt["posterior"]
    assert list(post.data_vars) == list(PARAMETER_NAMES)
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 30  # 4 kept steps × 14 walkers = 56, sub-sampled to 30
    assert dt["log_likelihood"]["soc"].shape == (2, 30, pb.n_soc)
    assert dt["observed_data"]["soc"].shape == (pb.n_soc,)
    assert dt["posterior_predictive"]["soc_grid"].sizes["grid_point"] == 2 * GRID.n_layers
    assert np.isfinite(dt["log_likelihood"]["soc"].values).all()
    # the pointwise log-likelihood sums to lp − log prior
    lp = dt["sample_stats"]["lp"].values
    ll = dt["log_likelihood"]["soc"].values.sum(-1)
    np.testing.assert_allclose(ll + pb.prior.log_prior(true_parameters()), lp, rtol=1e-8)
    for key in ("configuration", "data_version", "seed", "package_versions", "true_parameters"):
        assert key in dt.attrs
    assert json.loads(dt.attrs["configuration"])["sampler"]["move"] == "de"


def test_netcdf_round_trip(tree, tmp_path):
    dt, _ = tree
    path = save_datatree(dt, tmp_path / "r.nc")
    back = load_datatree(path)
    assert isinstance(back, xr.DataTree)
    for g in GROUPS:
        xr.testing.assert_allclose(back[g].to_dataset(), dt[g].to_dataset())
    assert back.attrs["seed"] == 4


def test_summary_report_and_plot(tree, tmp_path):
    dt, _ = tree
    tab = summary_table(dt)
    assert list(tab.index) == list(PARAMETER_NAMES)
    for c in ("mean", "sd", "q05", "q50", "q95", "rhat", "true", "in_90"):
        assert c in tab.columns
    assert -1 <= correlation(dt) <= 1
    m = fit_metrics_table(dt)
    assert {"rmse", "bic", "a", "b", "r2"} <= set(m.columns)
    assert "x_v–x_K" in format_report(dt)
    png = plot_profiles(dt, tmp_path / "p.png")
    assert png.stat().st_size > 1000


def test_the_report_starts_with_the_convergence_verdict(tree, tmp_path):
    """A 12-step run is never called converged: the report's first line says so with the failed criteria, and the
    verdict is stored with the result and survives the netCDF round trip."""
    dt, _ = tree
    first = format_report(dt).splitlines()[0]
    assert first.startswith("convergence verdict: NOT CONVERGED — failed: ")
    assert "N/τ" in first and "bulk ESS" in first and "SMOKE RUN" not in first
    stored = json.loads(dt.attrs["convergence_verdict"])
    assert stored["verdict"] == "not converged" and stored["failed"] and not stored["smoke_run"]
    save_datatree(dt, tmp_path / "r.nc")
    again = load_datatree(tmp_path / "r.nc")
    assert format_report(again).splitlines()[0] == first
    # a configuration named "quick" marks a smoke run even without the attribute
    quick = again.copy()
    quick.attrs = {k: v for k, v in again.attrs.items() if k != "smoke_run"}
    quick.attrs["configuration"] = json.dumps({"study": {"name": "quick"}})
    assert "SMOKE RUN" in format_report(quick).splitlines()[0]
