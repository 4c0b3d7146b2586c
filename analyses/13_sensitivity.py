# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Sensitivity analyses (Wang et al. 2021 §2.3, Figs 2, 7, 8)
#
# Loads what `bayes-vmimics sensitivity {morris,sobol,profiles,response}` (or `analyses/06_sensitivity.py`)
# wrote and plots; it runs no model. `BAYES_VMIMICS_RUN` is the output folder of those commands (default
# `results/sensitivity`). Each section is skipped when its output is missing. Figures are written into that
# folder with the suffix `_nb.png`.

# %%
import json
import os
from pathlib import Path

import matplotlib
import pandas as pd
import xarray as xr

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
from IPython.display import Image, display  # noqa: E402

from bayes_vmimics import sensitivity as sa  # noqa: E402

RUN = Path(os.environ.get("BAYES_VMIMICS_RUN", "results/sensitivity"))
print("outputs in", RUN.resolve(), ":", sorted(p.name for p in RUN.glob("*.*")))

# %% [markdown]
# ## Morris screening (Fig 2)
# Importance θ_m = √(μ_m² + σ_m²)/σ per parameter and site for the SOC cost J₁ and the ¹⁴C cost J₂, with the
# mean over sites as a grey line; the ranking table gives the mean importance, mean rank and the number of
# sites where each parameter is the least important (the paper: x_d for most sites).

# %%
morris_csv = RUN / "morris_indices.csv"
if morris_csv.is_file():
    morris = pd.read_csv(morris_csv)
    n_sites = morris["site_id"].nunique()
    display(Image(sa.plot_importance(morris, RUN / "morris_importance_nb.png", title=f"{n_sites} site(s)")))
    for out in ("J1", "J2"):
        if out in set(morris["output"]):
            print(out)
            display(sa.importance_ranking(morris, out).round(2))
    runs = morris.drop_duplicates("site_id")[["site_id", "forest_type", "n_failed", "seconds"]]
    display(runs.set_index("site_id"))
else:
    print("no morris_indices.csv: run `bayes-vmimics sensitivity morris`")

# %% [markdown]
# ## Sobol' indices on the Table 1 box, and given-data indices under a posterior
# First order S1 and total ST (SALib, bootstrap 95 % intervals) of J₁, J₂ and of the modelled SOC and F14C in the
# layers at the analysed depths, averaged over the sites in the file. Under the posterior only first-order
# indices from the draws themselves (given data) are defined.

# %%
for stem in ("sobol", "posterior"):
    f = RUN / f"{stem}_indices.csv"
    if not f.is_file():
        print(f"no {f.name}")
        continue
    tab = pd.read_csv(f)
    title = "Table 1 box" if stem == "sobol" else "posterior (given data)"
    display(Image(sa.plot_sobol(tab, RUN / f"{stem}_indices_nb.png", title=title)))
    cols = [c for c in ("S1", "S1_conf", "ST", "ST_conf", "delta") if c in tab]
    display(tab[tab["output"].isin(["J1", "J2"])].groupby(["output", "parameter"])[cols].mean().round(3))

# %% [markdown]
# ## ±25 % profiles (Fig 7)
# Mean steady-state SOC profile of each forest type's sites at the calibrated parameters (Table 3, or a posterior
# median) and with x_D, α_v, α_r each −25 % (solid) and +25 % (dashed); posterior 90 % band where a result
# was given.

# %%
prof_nc = RUN / "profiles.nc"
if prof_nc.is_file():
    with xr.open_dataset(prof_nc, engine="h5netcdf") as ds:
        ds = ds.load()
    profiles, bands = {}, {}
    for ft in ds["forest_type"].values:
        d = ds.sel(forest_type=ft)
        profiles[str(ft)] = d
        if "band_lower" in d and bool(d["band_lower"].notnull().any()):
            bands[str(ft)] = (d["band_lower"].values, d["band_upper"].values)
    print("calibrated parameters from:", json.loads(ds.attrs.get("theta_source", "{}")))
    display(Image(sa.plot_profiles_fig7(profiles, RUN / "fig7_profiles_nb.png", bands=bands)))
    rel = (ds["perturbed"] / ds["base"] - 1).isel(depth=[1, 3, 7, 15])
    display(rel.to_dataframe(name="relative change").unstack("depth").round(3))
else:
    print("no profiles.nc: run `bayes-vmimics sensitivity profiles`")

# %% [markdown]
# ## Input-response curves (Fig 8)
# SOC in the layers at 15 and 35 cm against the relative root litter input (top) and relative V (bottom),
# diffusion off; triangles: α_r (top) and α_v (bottom) changed by +25 % (▲) and −25 % (▼).

# %%
resp_nc = RUN / "response.nc"
if resp_nc.is_file():
    with xr.open_dataset(resp_nc, engine="h5netcdf") as ds:
        ds = ds.load()
    responses = {}
    for case in ds["case"].values:
        d = ds.sel(case=case)
        d.attrs["site_id"] = str(d["site_id"].values)
        responses[str(case)] = d
    display(Image(sa.plot_response_fig8(responses, RUN / "fig8_response_nb.png")))
else:
    print("no response.nc: run `bayes-vmimics sensitivity response`")
