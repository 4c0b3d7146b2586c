# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Inspecting a calibration
#
# This notebook only **loads saved results and plots**; it runs no sampler. Point it at the `--out` folder of
# `bayes-vmimics calibrate` (default `results/calibrate`) with the environment variable `BAYES_VMIMICS_RUN`.
# Figures are written next to the results. The notebook (`.ipynb`) and this script (`.py`, jupytext
# `py:percent`) are paired: edit either and run `jupytext --sync analyses/10_inspect_results.ipynb`.

# %%
import os
from pathlib import Path

import arviz as az
import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
from IPython.display import Image, display  # noqa: E402

from bayes_vmimics.diagnostics import plot_xv_xk, save_pair_plot, xv_xk_correlation  # noqa: E402
from bayes_vmimics.parameter_plots import plot_marginals  # noqa: E402
from bayes_vmimics.parameters import PARAMETER_NAMES  # noqa: E402
from bayes_vmimics.plotting import plot_profiles  # noqa: E402
from bayes_vmimics.results import fit_metrics_table, load_datatree, summary_table  # noqa: E402

RUN = Path(os.environ.get("BAYES_VMIMICS_RUN", "results/calibrate"))
dt = load_datatree(RUN / "results.nc")
display(dt)

# %% [markdown]
# ## Posterior summary
# Mean, sd and 5/50/95 % quantiles per parameter; R-hat across the independent ensembles and the smallest N/τ
# (steps kept over the integrated autocorrelation time; ≥ 50 for a reliable τ). Synthetic twins add the true
# value and whether the 90 % interval holds it.

# %%
summary_table(dt).round(3)

# %% [markdown]
# ArviZ's own summary of the same draws (equal-tailed 89 % interval, bulk and tail ESS, R-hat):

# %%
az.summary(dt, var_names=list(PARAMETER_NAMES))

# %% [markdown]
# ## Marginal posteriors
# Over the Table 1 box (dotted lines: the box edges; a posterior that piles up at an edge is held by the prior).
# Parameters whose box spans a decade or more are drawn on a log axis.

# %%
display(Image(plot_marginals(dt, RUN / "posterior_marginals.png")))

# %% [markdown]
# The same marginals with ArviZ (`plot_dist`: kernel density, mean and the 89 % equal-tailed interval, ArviZ's
# defaults):

# %%
pc = az.plot_dist(
    dt,
    var_names=list(PARAMETER_NAMES),
    kind="kde",
    visuals={"point_estimate_text": {"round_to": 3}},
    backend="matplotlib",
    col_wrap=4,
    figure_kwargs={"figsize": (12, 6), "layout": "constrained"},
)
pc.savefig(RUN / "posterior_marginals_arviz.png")

# %% [markdown]
# ## Fit to the data
# Observed profiles against the posterior predictive at every site: per observed interval the 90 % predictive
# interval with the observation error (light) beside the noise-free one (dark). A calibrated model covers about
# 90 % of the observations with the light intervals.

# %%
display(Image(plot_profiles(dt, RUN / "profiles.png")))
fit_metrics_table(dt).round(3)

# %% [markdown]
# ## The x_v–x_K ridge
# With K ≫ C, uptake is ≈ C_mic·V·C/K, so the data constrain V/K better than V and K separately: the posterior
# stretches along x_v/x_K ≈ constant, a line in (log x_v, log x_K) (`docs/xv_xk.md`).

# %%
corr = xv_xk_correlation(dt)
print(f"posterior correlation of log x_v and log x_K: {float(corr['theta']):+.2f}")
display(Image(plot_xv_xk(dt, RUN / "xv_xk.png")))

# %% [markdown]
# All pairs (lower triangle: draws; upper: correlations):

# %%
display(Image(save_pair_plot(dt, RUN / "pair.png")))
