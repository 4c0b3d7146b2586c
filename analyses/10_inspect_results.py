# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Inspecting a calibration run
#
# This notebook only **loads saved results and plots**; it runs no sampler. Point it at the `--out` folder of
# `bayes-vmimics calibrate` (default `results/calibrate`) with the environment variable `BAYES_VMIMICS_RUN`.
# Open it in Jupyter with jupytext (`jupytext --to notebook analyses/10_inspect_results.py`) or run it as a
# script; figures are written next to the results.

# %%
import os
from pathlib import Path

import arviz as az
import matplotlib
import numpy as np

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt  # noqa: E402

from bayes_vmimics.results import load_datatree, summary_table  # noqa: E402

RUN = Path(os.environ.get("BAYES_VMIMICS_RUN", "results/calibrate"))
dt = load_datatree(RUN / "results.nc")
print(dt)

# %% [markdown]
# ## Posterior summary (5/50/95 % quantiles, R-hat across independent ensembles)

# %%
print(summary_table(dt).to_string())

# %% [markdown]
# ## Marginal posteriors of the seven parameters

# %%
pc = az.plot_dist(
    dt,
    var_names=["x_v", "x_K", "x_d", "x_D", "alpha_r", "alpha_v", "beta"],
    backend="matplotlib",
    col_wrap=4,
    figure_kwargs={"figsize": (12, 6), "layout": "constrained"},
)
pc.savefig(RUN / "posterior_marginals.png")

# %% [markdown]
# ## The x_v–x_K ridge
# With K ≫ C, uptake is ≈ C_mic·V·C/K, so the data constrain V/K better than V and K separately: the posterior
# stretches along x_v/x_K ≈ constant.

# %%
post = dt["posterior"].to_dataset()
xv = post["x_v"].values.ravel()
xk = post["x_K"].values.ravel()
fig, ax = plt.subplots(figsize=(4, 4))
ax.plot(xv, xk, ".", ms=2, alpha=0.4)
ax.set_xlabel("x_v (–)")
ax.set_ylabel("x_K (–)")
ax.set_title(f"corr = {np.corrcoef(xv, xk)[0, 1]:+.2f}")
fig.tight_layout()
fig.savefig(RUN / "xv_xk.png", dpi=110)
print("wrote", RUN / "posterior_marginals.png", "and", RUN / "xv_xk.png")
