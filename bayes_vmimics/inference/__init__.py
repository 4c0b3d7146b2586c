"""Inference on top of :mod:`bayes_vmimics.likelihood`: emcee ensembles (``emcee_sampler``), starting points
near the MAP (``initial``), PyMC models with exact gradients (``pymc_models``: single site, pooled,
hierarchical), emcee's hierarchical variant for small site sets (``emcee_hierarchical``) and the two-stage
hierarchical sampler for real site sets (``two_stage``: per-site posteriors, then the populations)."""

from .emcee_sampler import (
    EnsembleRun,
    ensemble_convergence,
    ensemble_seeds,
    initial_positions,
    integrated_time,
    make_moves,
    run_ensemble,
    run_ensembles,
)

__all__ = [
    "EnsembleRun",
    "ensemble_convergence",
    "ensemble_seeds",
    "initial_positions",
    "integrated_time",
    "make_moves",
    "run_ensemble",
    "run_ensembles",
]
