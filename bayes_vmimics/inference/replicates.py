"""Independent replicates of a two-stage hierarchical run: the Monte Carlo error of stage 1 made visible.

Stage 2 of :func:`~.two_stage.two_stage_hierarchical` reweights a finite set of stage-1 draws per site. Its
chains all share those draws, so their R-hat measures how well stage 2 mixed *given* the draws, not how much
the answer would change with another set of them. Where the sites say little about a parameter and the
population is narrower than a site's posterior, only a few draws per site carry weight, and that change can be
several posterior standard deviations: on 12 synthetic sites (σ = 1, 4 × 20 000 stage-2 sweeps, refined second
pass of 2000 stage-1 steps) two runs that differ only in their seed gave posterior means of μ(x_v) of −2.70 ± 0.50
and −1.20 ± 0.66, each with R-hat ≤ 1.009 (``docs/results_hierarchical.md``, "Narrow populations and replicates").

:func:`combine_replicates` stacks the chains of replicates (the same sites and settings, other seeds) into one
result. Its R-hat then compares replicates, so it sees the stage-1 error, and its posterior (an equal mixture of
the replicates) carries that error in its spread. ``bayes-vmimics hierarchical --replicates N`` runs and combines
them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

__all__ = ["combine_replicates", "replicate_seeds"]


def replicate_seeds(seed: int, n_replicates: int) -> list[int]:
    """Seeds of ``n_replicates`` independent runs: ``seed`` itself first (so that one replicate is the plain
    run), then ``seed + 1000 k`` (the second pass of a run uses ``seed + 1``; these stay clear of it)
    (integers)."""
    if n_replicates < 1:
        raise ValueError(f"n_replicates must be ≥ 1, got {n_replicates}")
    return [int(seed) + 1000 * k for k in range(n_replicates)]


def combine_replicates(results: Sequence[xr.DataTree]) -> xr.DataTree:
    """One result from independent replicates of a hierarchical run: chains stacked (replicate r's chain c
    becomes chain r · n_chains + c), every other group taken from the first replicate.

    Args:
        results: DataTrees of :func:`~.two_stage.two_stage_hierarchical` (or :func:`~.two_stage.sample_population`)
            on the same sites and forest types, with the same number of chains and draws (–).

    Returns:
        The combined DataTree; its ``posterior`` and root attribute ``replicates`` is the number of replicates,
        and the root attribute ``replicate_of_chain`` gives the replicate of each chain (–). Use
        :func:`~.pymc_models.posterior_convergence` on it for R-hat across replicates.

    Raises:
        ValueError: fewer than two results, or posteriors whose variables, sites, forest types or draws differ.
    """
    if len(results) < 2:
        raise ValueError(f"combine_replicates needs at least two results, got {len(results)}")
    posts = [r["posterior"].to_dataset() for r in results]
    first = posts[0]
    for k, p in enumerate(posts[1:], start=1):
        if set(p.data_vars) != set(first.data_vars):
            raise ValueError(f"replicate {k} has variables {sorted(p.data_vars)}, not {sorted(first.data_vars)}")
        for dim in ("site", "forest_type", "parameter", "draw"):
            if dim in first.dims and not np.array_equal(p[dim].values, first[dim].values):
                raise ValueError(f"replicate {k} differs from replicate 0 along {dim!r}: not replicates of one run")
        if p.sizes.get("chain") != first.sizes.get("chain"):
            raise ValueError(f"replicate {k} has {p.sizes.get('chain')} chains, replicate 0 {first.sizes.get('chain')}")
    n_chain = first.sizes["chain"]
    renumbered = [p.assign_coords(chain=np.arange(n_chain) + k * n_chain) for k, p in enumerate(posts)]
    post = xr.concat(renumbered, dim="chain", combine_attrs="override")
    post.attrs = {**first.attrs, "replicates": len(results)}
    groups = {"posterior": post}
    for name, child in results[0].children.items():
        if name != "posterior":
            groups[name] = child.to_dataset()
    out = xr.DataTree.from_dict(groups)
    out.attrs = {
        **results[0].attrs,
        "replicate_of_chain": [k for k in range(len(results)) for _ in range(n_chain)],
        "replicates": len(results),
    }
    return out
