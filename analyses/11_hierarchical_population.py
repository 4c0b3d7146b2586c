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
# # A hierarchical population and its x_v–x_K diagnostics
#
# Loads the `results.nc` of `bayes-vmimics hierarchical` (folder in `BAYES_VMIMICS_RUN`, default
# `results/hierarchical`) and plots; it runs no sampler. Variables (the same for the two-stage, PyMC and
# emcee hierarchical samplers): `mu`, `sigma` (logit units of the Table 1 box), `theta_population` (each
# forest type's median site, parameter units) and `theta_site`. Figures are written next to the results.

# %%
import os
from pathlib import Path

import arviz as az
import matplotlib
import pandas as pd

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
from IPython.display import Image, display  # noqa: E402

from bayes_vmimics.diagnostics import plot_xv_xk, save_pair_plot, xv_xk_correlation  # noqa: E402
from bayes_vmimics.parameter_plots import plot_marginals, plot_population  # noqa: E402
from bayes_vmimics.plotting import plot_profiles  # noqa: E402
from bayes_vmimics.priors import BoxPrior  # noqa: E402
from bayes_vmimics.results import load_datatree  # noqa: E402

RUN = Path(os.environ.get("BAYES_VMIMICS_RUN", "results/hierarchical"))
dt = load_datatree(RUN / "results.nc")
types = [str(t) for t in dt["posterior"]["forest_type"].values]
print("forest types:", types, "| sites:", dt["posterior"].sizes["site"])

# %% [markdown]
# ## Convergence of the population parameters
# Trust a two-stage run only where the population R-hat is ≤ 1.01 and every site keeps a stage-2 weight ESS
# (5 % quantile) ≥ 5 (`docs/hierarchical.md`).

# %%
summ = az.summary(dt, var_names=["theta_population", "mu", "sigma"])
print(f"max R-hat {summ['r_hat'].astype(float).max():.3f}, min bulk ESS {summ['ess_bulk'].astype(float).min():.0f}")
display(summ)

# %%
if "stage2_diagnostics" in dt.children:
    diag = dt["stage2_diagnostics"].to_dataset()
    sites = pd.DataFrame(
        {
            "weight_ess_q05": diag["weight_ess_q05"].min("chain").to_series(),
            "mean_weight_ess": diag["mean_weight_ess"].mean("chain").to_series(),
        }
    )
    if "stage1" in dt.children:
        sites["stage1_n_effective"] = dt["stage1"]["n_effective"].to_series()
    display(sites.round(1))

# %% [markdown]
# ## The populations
# Each forest type's median site over the Table 1 box, with every site's posterior median as a tick:

# %%
display(Image(plot_population(dt, BoxPrior(), RUN / "population.png")))
display(Image(plot_marginals(dt, RUN / "population_marginals.png")))

# %% [markdown]
# ## The x_v–x_K ridge, per site and per population
# Each profile pins x_v/x_K much better than x_v or x_K: per site the posterior correlation of log x_v and
# log x_K is strongly positive. The population median of a forest type inherits the ridge only where the
# sites share it.

# %%
corr = xv_xk_correlation(dt)
table = corr["theta_site"].to_series().rename("corr_log_xv_xk").to_frame()
display(table.round(2))
print(corr["theta_population"].to_series().round(2).to_string())
display(Image(plot_xv_xk(dt, RUN / "xv_xk.png")))

# %% [markdown]
# Pair plot of the first forest type's population median:

# %%
display(Image(save_pair_plot(dt, RUN / "pair_population.png", var_name="theta_population", forest_type=types[0])))

# %% [markdown]
# ## Fit at the calibration sites (each with its own θ_s)
# Present when the run wrote its site predictive (the default; `predictive.add_site_predictive` in Python).

# %%
if "posterior_predictive" in dt.children:
    display(Image(plot_profiles(dt, RUN / "profiles.png")))
