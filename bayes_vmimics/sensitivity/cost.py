"""The paper's costs J₁ (SOC) and J₂ (¹⁴C) of one site (P Eqs 14–16), from the likelihood's own error model.

The paper's cost is −2 × its Gaussian log-likelihood without the normalising constants. Its observation error
lives in one place, the ``paper`` preset of :mod:`bayes_vmimics.errors` (σ_SOC,i = r·y_i, σ_14C,j = r·F_j/√λ,
r = 0.1, λ = 5, λ used once: spec A14), and this module takes σ, the residuals and the log-density from there:

    J = Σᵢ zᵢ²,  zᵢ = (μᵢ − yᵢ)/σᵢ,  and ℓᵢ = cᵢ − ½ zᵢ² (normal term, cᵢ = −log σᵢ − ½ log 2π)
    ⇒ J = −2 Σᵢ (ℓᵢ − cᵢ)                                                           (:func:`chi_square`),

so that J₁ = Σ ((C_obs − C_mod)/(r·C_obs))² and J₂ = λ Σ ((F_obs − F_mod)/(r·F_obs))² whatever the calibration's
own error model is (the sensitivity analyses are the paper's, on its cost).
"""

from __future__ import annotations

import numpy as np

from ..constants import C14_WEIGHT, REL_ERROR
from ..errors import ErrorModel, ObservationErrors

#: Relative observation error of the paper's cost, s = 0.1 · observed value (P after Eq 16) (–).
PAPER_REL_ERROR = REL_ERROR
#: λ of the paper's cost, applied once to the ¹⁴C term (P §2.3.1; spec A14) (–).
PAPER_LAMBDA = C14_WEIGHT

#: The error model whose log-likelihood the cost is: the paper's relative error, no floor, weight or site scale.
PAPER_ERRORS = ErrorModel.from_preset("paper")


def chi_square(term: ObservationErrors, predicted) -> float:
    """J = Σ zᵢ² of one site and variable: −2 × its log-likelihood without the constants (module docstring).

    Args:
        term: an unweighted, additive, normal error term on the linear scale, e.g. of the ``paper`` preset (–).
        predicted: model values at the observations, shape (n,) (compared unit).

    Returns:
        J (dimensionless); NaN if a prediction is not finite.

    Raises:
        ValueError: a term whose log-likelihood is not a Gaussian sum of squares (weights, site scale, Student-t,
            log scale).
    """
    m = term.model
    if not (m.additive and m.distribution == "normal" and not m.log_scale and term.weights is None):
        raise ValueError(f"the cost J is −2 × a Gaussian log-likelihood: error model {m.name!r} is not one")
    pred = np.asarray(predicted, float)
    if not np.all(np.isfinite(pred)):
        return float("nan")
    return float(-2.0 * np.sum(term.pointwise_log_likelihood(pred) - term.const))


def _paper_term(variable: str, observed, rel_error: float, weight: float = 1.0) -> ObservationErrors:
    y = np.asarray(observed, float)
    # the thickness does not enter: the paper's cost has no depth weights
    return PAPER_ERRORS.prepare(variable, y, np.ones(y.shape), rel_error, weight)


def paper_costs(obs, prediction, *, rel_error: float = PAPER_REL_ERROR, c14_weight: float = PAPER_LAMBDA):
    """The paper's costs J₁ and J₂ of one site (P Eqs 15, 16; λ once, spec A14), by :func:`chi_square`.

    Args:
        obs: the site's :class:`~bayes_vmimics.site_observations.SiteObservations` (or anything with ``soc_mg_cm3``
            and ``f14c``) (–).
        prediction: its :class:`~bayes_vmimics.site_evaluation.SitePrediction` at the observed intervals (–).
        rel_error: s as a fraction of each observed value (–).
        c14_weight: λ (–).

    Returns:
        (J₁, J₂) (dimensionless); J₂ is NaN when the site has no F14C observation or no simulated F14C.
    """
    j1 = chi_square(_paper_term("soc", obs.soc_mg_cm3, rel_error), prediction.soc_mg_cm3)
    j2 = np.nan
    if obs.f14c is not None:
        ok = np.isfinite(obs.f14c)
        if ok.any():
            f_mod = np.asarray(prediction.f14c, float)[ok]
            if np.all(np.isfinite(f_mod)):
                j2 = chi_square(_paper_term("f14c", obs.f14c[ok], rel_error, c14_weight), f_mod)
    return j1, j2


__all__ = ["PAPER_ERRORS", "PAPER_LAMBDA", "PAPER_REL_ERROR", "chi_square", "paper_costs"]
