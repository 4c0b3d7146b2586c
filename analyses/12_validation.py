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
# # A held-out validation
#
# Loads what `bayes-vmimics validate` wrote (`held_out.nc`, `held_out_scores.csv`) and plots; it runs no
# model. `BAYES_VMIMICS_RUN` is the validation folder, or the hierarchical run folder holding `validation/`
# (default `results/hierarchical`). Each held-out site is a *new* site of its forest type: at every posterior
# draw its parameters are drawn from the population, so none of its data enters the prediction.

# %%
import os
from pathlib import Path

import arviz as az
import matplotlib
import numpy as np
import pandas as pd

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt  # noqa: E402
from IPython.display import Image, display  # noqa: E402

from bayes_vmimics.plotting import plot_profiles, predictive_with_error  # noqa: E402
from bayes_vmimics.results import load_datatree  # noqa: E402

RUN = Path(os.environ.get("BAYES_VMIMICS_RUN", "results/hierarchical"))
VAL = RUN if (RUN / "held_out.nc").is_file() else RUN / "validation"
held = load_datatree(VAL / "held_out.nc")
print("forest types:", held.attrs.get("held_out_forest_types"), "| held-out sites:", held["posterior"].sizes["site"])

# %% [markdown]
# ## Scores
# Per variable: the paper's fit metrics of the predictive median (RMSE, r²), the mean log pointwise predictive
# density (`lppd`, nats per observation) and the share of observations inside the central 50 % and 90 %
# predictive intervals, which include the observation error. A calibrated prediction covers about 50 % and 90 %.

# %%
scores = pd.read_csv(VAL / "held_out_scores.csv", index_col=0)
scores[["n_sites", "n_obs", "rmse", "r2", "lppd", "coverage_50", "coverage_90"]].round(3)

# %% [markdown]
# ## The predicted profiles
# Light: the 90 % predictive interval with the observation error; dark: the model's own spread (the population
# of new sites), without it.

# %%
display(Image(plot_profiles(held, VAL / "held_out_profiles.png")))

# %% [markdown]
# ## Calibration of the intervals
# Where each observation falls in its predictive distribution (with observation error): the probability integral
# transform. A calibrated prediction gives a flat histogram; a U shape means intervals that are too narrow, a hump
# too wide ones.

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3), layout="constrained")
for ax, var in zip(axes, ("soc", "f14c"), strict=True):
    if var not in held["observed_data"].data_vars:
        ax.set_axis_off()
        continue
    rep = predictive_with_error(held, var, seed=0)
    rep = rep.reshape(-1, rep.shape[-1])
    obs = held["observed_data"][var].values
    pit = np.nanmean(rep <= obs, axis=0)
    ax.hist(pit, bins=np.linspace(0, 1, 11), color="0.5")
    ax.axhline(pit.size / 10, color="k", ls="--", lw=1, label="calibrated (flat)")
    ax.set_xlabel(f"PIT of the {var.upper() if var == 'soc' else 'F14C'} observations (–)")
    ax.set_ylabel("observations (count)")
    ax.legend(fontsize=8)
fig.savefig(VAL / "held_out_pit.png", dpi=150)

# %% [markdown]
# The drawn parameters of the held-out sites (population draws, not fits) with ArviZ:

# %%
pc = az.plot_dist(
    held,
    var_names=["theta_site"],
    coords={"site": [str(held["posterior"]["site"].values[0])]},
    kind="kde",
    visuals={"point_estimate_text": {"round_to": 3}},
    backend="matplotlib",
    col_wrap=4,
    figure_kwargs={"figsize": (12, 6), "layout": "constrained"},
)
pc.savefig(VAL / "held_out_parameters.png")
