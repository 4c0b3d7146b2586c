"""Global sensitivity analyses of the paper (P §2.3, Figs 2, 7, 8) and a variance-based analysis beyond it.

One module per concern; this package hands their public names on:

========================  ==========================================================================================
``cost``                  the paper's costs J₁, J₂ (P Eqs 14–16) as −2 × the ``paper`` error model's log-likelihood
                          without constants (:mod:`bayes_vmimics.errors`)
``inputs``                varied parameters, dummies, Table 1 bounds
``evaluate``              :class:`SiteEvaluator` (a site's J₁, J₂, SOC and F14C at chosen depths for design rows),
                          :func:`evaluate_design` (chunks through an ordered map)
``executor``              where the chunks run: local processes or a Dask cluster behind one ``imap``
``morris``                Morris screening and the paper's importance θ (P §2.3, Fig 2)
``sobol``                 Sobol' first and total indices on a box
``given_data``            first-order indices (and Borgonovo's δ) under correlated posterior draws
``sites``                 one analysis per site, checkpointed per site (:func:`analyse_site`, :func:`analyse_sites`)
``profiles``              ±25 % profiles (P Fig 7) and input-response curves (P Fig 8)
``plots``                 the figures
========================  ==========================================================================================

Failed steady states give NaN outputs; they are counted (``n_failed``) and each method drops what SALib cannot
take (a Morris trajectory, a Sobol' base block, a posterior draw). Every model run is a cold spin-up, so the
results are reproducible from the seed whatever runs them.
"""

from .cost import PAPER_LAMBDA, PAPER_REL_ERROR, chi_square, paper_costs
from .evaluate import DEFAULT_DEPTHS_CM, SiteEvaluator, evaluate_design, layer_index, output_names
from .executor import LocalScheduler, dask_map, open_executor, process_map
from .given_data import GivenData, given_data_indices, posterior_parameter_draws
from .inputs import DUMMY_PREFIX, default_bounds
from .morris import (
    MORRIS_LEVELS,
    MORRIS_TRAJECTORIES,
    Morris,
    importance_ranking,
    morris_design,
    morris_indices,
    paper_importance,
)
from .plots import plot_importance, plot_profiles_fig7, plot_response_fig8, plot_sobol
from .profiles import (
    PROFILE_CHANGES,
    PROFILE_PARAMETERS,
    X_D_OFF,
    mean_profile,
    perturbed_profiles,
    posterior_profile_band,
    response_curves,
)
from .sites import METHODS, SiteAnalysis, analyse_site, analyse_sites, combine
from .sobol import Sobol, sobol_design, sobol_indices

__all__ = [
    "DEFAULT_DEPTHS_CM",
    "DUMMY_PREFIX",
    "METHODS",
    "MORRIS_LEVELS",
    "MORRIS_TRAJECTORIES",
    "PAPER_LAMBDA",
    "PAPER_REL_ERROR",
    "PROFILE_CHANGES",
    "PROFILE_PARAMETERS",
    "X_D_OFF",
    "GivenData",
    "LocalScheduler",
    "Morris",
    "SiteAnalysis",
    "SiteEvaluator",
    "Sobol",
    "analyse_site",
    "analyse_sites",
    "chi_square",
    "combine",
    "dask_map",
    "default_bounds",
    "evaluate_design",
    "given_data_indices",
    "importance_ranking",
    "layer_index",
    "mean_profile",
    "morris_design",
    "morris_indices",
    "open_executor",
    "output_names",
    "paper_costs",
    "paper_importance",
    "perturbed_profiles",
    "plot_importance",
    "plot_profiles_fig7",
    "plot_response_fig8",
    "plot_sobol",
    "posterior_parameter_draws",
    "posterior_profile_band",
    "process_map",
    "response_curves",
    "sobol_design",
    "sobol_indices",
]
