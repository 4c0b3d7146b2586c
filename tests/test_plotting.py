"""Figures and x_v–x_K diagnostics: every site is drawn, the predictive bands carry the observation error of the
likelihood (so a model that is the truth covers its nominal share), marginal labels are exact, no point of the
ridge is dropped silently, the pair plot labels every row and column, and the diagnostics work on pooled and
hierarchical results."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bayes_vmimics.diagnostics import (  # noqa: E402
    _clip_and_mark,
    plot_pair,
    plot_ridge_profile,
    plot_xv_xk,
    posterior_samples,
    xv_xk_correlation,
)
from bayes_vmimics.parameter_plots import _marginals_figure  # noqa: E402
from bayes_vmimics.parameters import PARAMETER_NAMES  # noqa: E402
from bayes_vmimics.plotting import (  # noqa: E402
    _profile_figure,
    observation_error_sd,
    plot_profile_pages,
    plot_profiles,
    predictive_with_error,
    site_forest_types,
)
from bayes_vmimics.priors import BoxPrior  # noqa: E402
from bayes_vmimics.results import load_datatree  # noqa: E402


def _profile_tree(n_sites=5, n_obs=6, n_draw=500, *, truth_sd=0.0, seed=0, c14=True, pp_equals_truth=True):
    """A results tree in the layout of results.build_datatree, by hand: observations = truth·(1 + 0.1 ε)."""
    rng = np.random.default_rng(seed)
    sites = np.repeat([f"s{i}" for i in range(n_sites)], n_obs)
    top = np.tile(np.arange(n_obs) * 10.0, n_sites)
    truth = rng.uniform(5, 40, sites.size)
    obs = truth * (1.0 + 0.1 * rng.standard_normal(sites.size))
    pred = np.broadcast_to(truth, (2, n_draw, sites.size)) * (1.0 + truth_sd * rng.standard_normal((2, n_draw, 1)))
    coords = {"soc_obs": np.arange(sites.size), "soc_site": ("soc_obs", sites), "soc_top_cm": ("soc_obs", top)}
    coords["soc_bottom_cm"] = ("soc_obs", top + 10.0)
    observed = xr.Dataset({"soc": ("soc_obs", obs)}, coords=coords)
    pp = xr.Dataset({"soc": (("chain", "draw", "soc_obs"), pred)}, coords=coords)
    if c14:
        f_truth = rng.uniform(0.8, 1.2, sites.size)
        f_obs = f_truth * (1.0 + 0.1 / np.sqrt(5.0) * rng.standard_normal(sites.size))
        c = {"c14_obs": np.arange(sites.size), "f14c_site": ("c14_obs", sites), "f14c_top_cm": ("c14_obs", top)}
        c["f14c_bottom_cm"] = ("c14_obs", top + 10.0)
        observed["f14c"] = xr.DataArray(f_obs, dims="c14_obs", coords=c)
        pp["f14c"] = xr.DataArray(np.broadcast_to(f_truth, (2, n_draw, sites.size)), dims=("chain", "draw", "c14_obs"))
        pp = pp.assign_coords(c)
    dt = xr.DataTree.from_dict({"observed_data": observed, "posterior_predictive": pp})
    dt.attrs["soc_unit"] = "mg C cm-3"
    return dt


def test_predictive_with_error_has_the_likelihood_sd():
    dt = _profile_tree(n_sites=2, n_obs=3, n_draw=20000)
    obs = dt["observed_data"]
    sd = observation_error_sd(dt)
    assert sd == pytest.approx({"soc": 0.1, "f14c": 0.1 / np.sqrt(5.0)})
    for var in ("soc", "f14c"):
        rep = predictive_with_error(dt, var, seed=1)
        noise = rep - dt["posterior_predictive"][var].values
        rel = noise.reshape(-1, noise.shape[-1]).std(axis=0) / obs[var].values
        np.testing.assert_allclose(rel, sd[var], rtol=0.03)


def test_predictive_with_error_reads_the_configuration_and_stored_replicates():
    dt = _profile_tree(n_sites=1, n_obs=4, n_draw=20000, c14=False)
    dt.attrs["configuration"] = json.dumps({"likelihood": {"soc_rel_error": 0.3}})
    assert observation_error_sd(dt)["soc"] == pytest.approx(0.3)
    noise = predictive_with_error(dt, "soc") - dt["posterior_predictive"]["soc"].values
    np.testing.assert_allclose(noise.reshape(-1, 4).std(axis=0) / dt["observed_data"]["soc"].values, 0.3, rtol=0.03)
    stored = dt["posterior_predictive"]["soc"] * 0 + 7.0
    dt["posterior_predictive"] = dt["posterior_predictive"].to_dataset().assign(soc_observed=stored)
    assert np.all(predictive_with_error(dt, "soc") == 7.0)


def test_predictive_with_error_uses_the_error_model_the_run_used():
    """A real-data result under the discrepancy model (the study default) draws wider errors than 10 %; the
    synthetic twin is calibrated under the paper's error whatever the configuration names, and so is a result
    whose configuration names no error model."""
    dt = _profile_tree(n_sites=2, n_obs=4, n_draw=20000, c14=False)
    obs = dt["observed_data"]["soc"].values

    def rel_sd(configuration):
        dt.attrs["configuration"] = json.dumps(configuration)
        noise = predictive_with_error(dt, "soc", seed=4) - dt["posterior_predictive"]["soc"].values
        return noise.reshape(-1, obs.size).std(axis=0) / obs

    assert np.all(rel_sd({"likelihood": {"error_model": "discrepancy"}}) > 0.2)
    twin = {"study": {"mode": "synthetic"}, "likelihood": {"error_model": "discrepancy"}}
    np.testing.assert_allclose(rel_sd(twin), 0.1, rtol=0.03)
    np.testing.assert_allclose(rel_sd({"likelihood": {"soc_rel_error": 0.1}}), 0.1, rtol=0.03)


def test_the_band_with_observation_error_covers_the_data_of_a_true_model():
    """A model equal to the truth: the 90 % interval with observation error covers ~90 % of the observations;
    the noise-free one (a single value here) covers none. This is what made a good synthetic fit look bad."""
    dt = _profile_tree(n_sites=50, n_obs=8, n_draw=400, c14=False, seed=3)
    obs = dt["observed_data"]["soc"].values
    rep = predictive_with_error(dt, "soc", seed=2).reshape(-1, obs.size)
    lo, hi = np.quantile(rep, [0.05, 0.95], axis=0)
    cover = np.mean((obs >= lo) & (obs <= hi))
    assert 0.86 < cover < 0.94, cover
    pred = dt["posterior_predictive"]["soc"].values.reshape(-1, obs.size)
    lo, hi = np.quantile(pred, [0.05, 0.95], axis=0)
    assert np.mean((obs >= lo) & (obs <= hi)) < 0.05


def test_profiles_show_every_site_with_titles_and_pages(tmp_path):
    dt = _profile_tree(n_sites=4, n_draw=50)
    fig = _profile_figure(dt, [f"s{i}" for i in range(4)], level=0.9, seed=0, title="t")
    titles = [sf._suptitle.get_text() for sf in fig.subfigs[1].subfigs if sf._suptitle is not None]
    assert titles == [f"s{i}" for i in range(4)]
    legend_texts = [t.get_text() for t in fig.subfigs[0].legends[0].get_texts()]
    assert any("with observation error" in t for t in legend_texts)
    assert any("no observation error" in t for t in legend_texts)
    plt.close(fig)
    one = plot_profiles(dt, tmp_path / "profiles.png")
    assert one == tmp_path / "profiles.png" and one.stat().st_size > 10_000
    pages = plot_profile_pages(dt, tmp_path / "p.png", sites_per_page=3)
    assert [p.name for p in pages] == ["p_1.png", "p_2.png"]
    assert plot_profile_pages(dt, tmp_path / "q.png", sites_per_page=12) == [tmp_path / "q.png"]
    with pytest.raises(ValueError, match="sites_per_page"):
        plot_profile_pages(dt, tmp_path / "r.png", sites_per_page=0)
    with pytest.raises(ValueError, match="no observed_data"):
        plot_profiles(xr.DataTree.from_dict({"posterior_predictive": dt["posterior_predictive"].to_dataset()}), "x")


def _rgba_of_bands(fig) -> set:
    """(r, g, b, a) of every filled band drawn in the site panels, rounded."""
    from matplotlib.collections import PolyCollection

    out = set()
    for ax in fig.get_axes():
        for c in ax.collections:
            if isinstance(c, PolyCollection):
                out |= {tuple(np.round(rgba, 3)) for rgba in c.get_facecolor()}
    return out


def _legend_patch_rgba(legend) -> set:
    from matplotlib.patches import Rectangle

    frame = legend.get_frame()
    return {
        tuple(np.round(r.get_facecolor(), 3))
        for r in legend.findobj(Rectangle)
        if r is not frame and r.get_visible() and r.get_facecolor()[3] > 0
    }


@pytest.mark.parametrize("c14", [True, False])
def test_profile_legend_shows_the_colours_of_the_drawn_bands(c14):
    """The legend once showed grey bands while the panels draw blue (SOC) and orange (F14C) ones."""
    dt = _profile_tree(n_sites=2, n_draw=50, c14=c14)
    fig = _profile_figure(dt, ["s0", "s1"], level=0.9, seed=0, title="all sites")
    bands = _rgba_of_bands(fig)
    assert len(bands) == (4 if c14 else 2)  # light and dark band of each variable
    legend = fig.subfigs[0].legends[0]
    assert _legend_patch_rgba(legend) == bands
    # the dashed median per layer is drawn in the variable's colour, and so is its legend entry
    medians = {line.get_color() for ax in fig.get_axes() for line in ax.get_lines() if line.get_linestyle() == "--"}
    legend_dashed = {line.get_color() for line in legend.findobj(plt.Line2D) if line.get_linestyle() == "--"}
    assert legend_dashed == ({"C0", "C1"} if c14 else {"C0"}) and medians <= legend_dashed
    plt.close(fig)


def test_profile_title_says_in_plain_words_what_is_drawn():
    dt = _profile_tree(n_sites=1, n_draw=50, c14=False)
    stored = dt["posterior_predictive"]["soc"] * 1.0
    dt["posterior_predictive"] = dt["posterior_predictive"].to_dataset().assign(soc_observed=stored)
    dt["posterior_predictive"].attrs["observation_error"] = "error model 'paper', own sites"
    fig = _profile_figure(dt, ["s0"], level=0.9, seed=0, title="all sites")
    title = fig.subfigs[0].legends[0].get_title().get_text()
    plt.close(fig)
    assert "posterior_predictive" not in title and "soc_observed" not in title and "as stored" not in title
    for words in ("observed layers", "90 % predictive interval including observation error", "noise-free 90 %"):
        assert words in " ".join(title.split()), title
    assert "σ = 10 % of observed SOC" in title


def _pooled_tree(mean_xv=14.7, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = BoxPrior().lower, BoxPrior().upper
    draws = {}
    for i, name in enumerate(PARAMETER_NAMES):
        draws[name] = (
            ("chain", "draw"),
            rng.uniform(lo[i] + 0.2 * (hi[i] - lo[i]), hi[i] - 0.2 * (hi[i] - lo[i]), (2, n)),
        )
    # x_K = 1.5 x_v (a ridge) with small noise; x_v centred on mean_xv
    xv = mean_xv + 2.0 * rng.standard_normal((2, n))
    draws["x_v"] = (("chain", "draw"), xv)
    draws["x_K"] = (("chain", "draw"), np.clip(1.5 * xv * np.exp(0.02 * rng.standard_normal((2, n))), 2.1, 29.9))
    return xr.DataTree.from_dict({"posterior": xr.Dataset(draws)})


def test_marginal_labels_are_exact_and_box_edges_marked():
    dt = _pooled_tree(mean_xv=14.7)
    fig = _marginals_figure(dt, None, 0.9)
    ax = fig.axes[0]
    m = float(dt["posterior"]["x_v"].mean())
    assert ax.get_title().startswith(f"{m:.3g} [")
    assert round(m, 1) == 14.7 and ax.get_title().startswith("14.7 [")  # not "15.0" as ArviZ's 2-digit label
    edges = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":")
    assert edges == [2.0, 30.0]
    assert ax.get_xlabel().startswith("$x_v$ (–)")
    assert "m$^{-1}$" in fig.axes[4].get_xlabel()
    plt.close(fig)


def test_pair_plot_labels_every_row_and_column():
    s = _pooled_tree().pipe(posterior_samples)
    fig = plot_pair(s)
    axes = np.array(fig.axes).reshape(7, 7)
    assert all(axes[i, 0].get_ylabel() for i in range(7))
    assert all(axes[6, j].get_xlabel() for j in range(7))
    for j in range(7):
        assert len(axes[6, j].get_xticks()) <= 5
    plt.close(fig)
    with pytest.raises(ValueError, match="names"):
        plot_pair(s, names=["a"])


def test_ridge_profile_marks_points_outside_the_box():
    s = np.linspace(-4, 4, 9)
    lp = -0.5 * s**2
    lp[[0, 8]] = -np.inf
    prof = xr.Dataset({"log_density": ("s", lp)}, coords={"s": s})
    ax = plot_ridge_profile(prof)
    crosses = [line for line in ax.lines if line.get_marker() == "x"]
    assert len(crosses) == 1 and len(crosses[0].get_xdata()) == 2
    assert "outside the box" in ax.get_legend().get_texts()[1].get_text()
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="every point"):
        plot_ridge_profile(prof.assign(log_density=("s", np.full(9, -np.inf))))


def test_clip_and_mark_counts_points_outside_the_box():
    fig, ax = plt.subplots()
    x = np.array([1.0, 5.0, 10.0, 100.0])
    n = _clip_and_mark(ax, x, x, np.array([2.0, 2.0]), np.array([30.0, 30.0]), marker=".")
    assert n == 2
    shown = np.concatenate([line.get_xdata() for line in ax.lines])
    assert shown.size == 4 and shown.max() <= 30.0 * 1.15
    plt.close(fig)


def test_xv_xk_correlation_on_a_pooled_result():
    dt = _pooled_tree()
    r = xv_xk_correlation(dt)
    post = dt["posterior"]
    expect = np.corrcoef(np.log(post["x_v"].values.ravel()), np.log(post["x_K"].values.ravel()))[0, 1]
    assert set(r) == {"theta"} and float(r["theta"]) == pytest.approx(expect)
    assert posterior_samples(dt).shape == (8000, 7)
    with pytest.raises(ValueError, match="no parameter draws"):
        xv_xk_correlation(xr.DataTree.from_dict({"posterior": xr.Dataset({"lp": ("draw", [1.0])})}))


@pytest.mark.integration
def test_figures_of_saved_runs(tiny_runs, tmp_path):
    """The diagnostics on the tiny calibrate, hierarchical and held-out results."""
    cal = load_datatree(tiny_runs["calibrate"] / "results.nc")
    hier = load_datatree(tiny_runs["hierarchical"] / "results.nc")
    held = load_datatree(tiny_runs["validation"] / "held_out.nc")
    assert float(xv_xk_correlation(cal)["theta"]) > 0.0
    assert xv_xk_correlation(hier)["theta_site"].shape == (2,)
    assert set(site_forest_types(cal).values()) == {"synthetic"}
    assert site_forest_types(held) == dict.fromkeys(held["posterior"]["site"].values.tolist(), "synthetic")
    # the notebooks (test_notebooks.py) draw every figure of these runs; here the held-out one they do not
    assert plot_xv_xk(held, tmp_path / "held_xv_xk.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="select one value"):
        posterior_samples(hier, "theta_site")


@pytest.fixture
def saved_figure(monkeypatch):
    """The last figure saved with ``Figure.savefig`` (still written to disk), under key "fig"."""
    captured = {}
    real_savefig = plt.Figure.savefig

    def keep(fig, *a, **k):
        captured["fig"] = fig
        return real_savefig(fig, *a, **k)

    monkeypatch.setattr(plt.Figure, "savefig", keep)
    return captured


def test_cv_scores_figure_shows_every_method_and_type(tmp_path, saved_figure):
    import pandas as pd

    from bayes_vmimics import cv_plots

    rows = []
    for m in ("population", "regression", "own"):
        for t, n in (("ENF", 5), ("BNF", 4), ("all", 9)):
            for var in ("soc", "f14c"):
                row = {"method": m, "forest_type": t, "variable": var, "n_sites_all": n}
                for c in ("r2", "lppd", "coverage_90"):
                    row[f"{c}_all"], row[f"{c}_fold_se"] = 0.5, 0.1
                rows.append(row)
    path = cv_plots.plot_cv_scores(pd.DataFrame(rows), tmp_path / "cv.png")
    assert path.stat().st_size > 10_000
    fig = saved_figure["fig"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "population (no covariates)",
        "regression population",
        "site's own posterior (in-sample, not a prediction)",
    ]
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["ENF\n(5 sites)", "BNF\n(4 sites)", "all\n(9 sites)"]
    assert [ax.get_title() for ax in fig.axes] == ["r²", "lppd (nats per observation)", "90 % interval coverage"]
    # one forest type (``crossvalidate --forest-type ENF``) has no "all" row, and shows none
    cv_plots.plot_cv_scores(pd.DataFrame([r for r in rows if r["forest_type"] == "ENF"]), tmp_path / "one.png")
    assert [t.get_text() for t in saved_figure["fig"].axes[0].get_xticklabels()] == ["ENF\n(5 sites)"]


def test_cv_predictions_figure_has_a_panel_per_type_and_method(tmp_path, saved_figure):
    import pandas as pd

    from bayes_vmimics import cv_plots

    rng = np.random.default_rng(0)
    rows = []
    for m in ("population", "regression"):
        for t in ("ENF", "BNF"):
            for s in range(3):
                for top in (0.0, 10.0, 30.0, 60.0):
                    o = 40.0 * np.exp(-top / 30) * rng.lognormal(0, 0.3)
                    rows.append({"method": m, "forest_type": t, "variable": "soc", "site_id": f"{t}{s}",
                                 "top_cm": top, "bottom_cm": top + 10, "observed": o, "median": o * 1.1})  # fmt: skip
    methods = ("population", "regression", "own")
    path = cv_plots.plot_cv_predictions(pd.DataFrame(rows), tmp_path / "p.png", methods=methods)
    assert path.stat().st_size > 10_000
    fig = saved_figure["fig"]
    assert [ax.get_title() for ax in fig.axes[:2]] == ["ENF (3 sites)", "BNF (3 sites)"]
    assert len(fig.axes) == 4  # 'own' is not in the table: two methods × two types
    # a prediction proportional to the observation has r² 1 in every panel
    assert all(ax.texts[0].get_text().startswith("r² all layers 1.00") for ax in fig.axes)
    with pytest.raises(ValueError, match="none of the methods"):
        cv_plots.plot_cv_predictions(pd.DataFrame(rows), tmp_path / "q.png", methods=("own",))
    # one forest type: the figure stays wide enough for the depth legend and the title
    one = pd.DataFrame([r for r in rows if r["forest_type"] == "ENF"])
    cv_plots.plot_cv_predictions(one, tmp_path / "one.png")
    fig = saved_figure["fig"]
    fig.canvas.draw()
    width = fig.bbox.width
    for artist in (fig.legends[0], fig._suptitle):
        box = artist.get_window_extent()
        assert box.x0 >= 0 and box.x1 <= width, artist


def test_long_site_ids_are_shortened_in_profile_titles():
    from bayes_vmimics.plotting import _short_id

    long_id = "israd_trumbore_harden_1997__th_1992burn__gillamroad_92burn_fw10"
    short = _short_id(long_id)
    assert len(short) == 44 and short.startswith("israd_trumbore") and short.endswith("92burn_fw10")
    assert _short_id("he2016_143") == "he2016_143"
