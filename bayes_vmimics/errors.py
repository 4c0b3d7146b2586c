"""Observation-error models of the calibration: σ of every observation and the per-site likelihood term.

This module is the one place where the observation error lives; :mod:`~bayes_vmimics.likelihood` (values) and
:mod:`~bayes_vmimics.gradients` (adjoint gradients) both call it. Every model keeps the paper's base error
(P Eqs 14–16, λ used once: spec A14)

    σ_SOC,i = r_SOC · y_i,        σ_14C,j = r_14C · F_j / √λ         (r = 0.1, λ = 5),

and may add, per variable (SOC in the compared unit, F14C):

absolute floor
    σ_i² = σ_base,i² + s₀²  (``soc_abs_error`` in mg C cm⁻³, ``c14_abs_error`` in F14C units), so that
    near-zero layers (0.01 % C between layers of 1 %) cannot dominate the fit.

depth weighting (a power likelihood)
    each layer's log-likelihood term is multiplied by w_i = min(1, h_i / h_ref) (h_i the layer thickness,
    h_ref = ``reference_thickness_cm``), so that a profile sampled in 2-cm layers carries the weight of one
    sampled in 10-cm layers (the total weight of a depth range no longer depends on how finely it was cut).
    Layers thicker than h_ref keep weight 1 (one analysis stays one observation).

site-scale discrepancy (``discrepancy = "site_scale"``)
    all σ_i of one site and variable are multiplied by an unknown κ_s, κ_s² ~ InvGamma(a, b), integrated out
    analytically. With e_i = μ_i − y_i (prediction minus observation), n = Σ w_i and Q = Σ w_i e_i²/σ_i²,
    the weighted (power-likelihood) site term is

        log p = Σ w_i (−log σ_i − ½ log 2π) + a log b − log Γ(a) + log Γ(a + n/2) − (a + n/2) log(b + Q/2),

    ∂ log p/∂μ_i = −(a + n/2) · w_i e_i/σ_i² / (b + Q/2), and κ_s² | data, θ ~ InvGamma(a + n/2, b + Q/2).
    (Derivation: Π_i N(y_i; μ_i, κ²σ_i²)^{w_i} = Π_i (2πσ_i²)^{−w_i/2} · (κ²)^{−n/2} exp(−Q/(2κ²)); times the
    inverse-gamma density and integrated over κ² this gives the Γ-ratio above. Without weights, w_i = 1 and
    n is the number of observations.) ``discrepancy_scale`` is the prior *median* of κ:
    b = m² · Q_Γ(a, ½), Q_Γ the median of Gamma(a, 1). A new site's observation, κ drawn from its prior, is
    Student-t with 2a degrees of freedom, location μ_i and scale σ_i √(b/a).

Student-t errors (``distribution = "student_t"``, ``student_nu`` = ν) replace the normal density of each
observation by a Student-t of scale σ_i (independent; not combined with ``site_scale``).

log scale (multiplicative, log-normal errors; ``error_scale = "log"``, set by the ``lognormal`` preset)
    every formula above applies to log y_i with location log μ_i (the prediction is the *median* of the
    observation) and scale σ_log,i² = log(1 + σ_i²/y_i²), the log-normal whose coefficient of variation is the
    linear model's σ_i/y_i (base: σ_log = √log(1 + r²) ≈ r; with the floor √log(1 + r² + (s₀/y_i)²)). The
    residuals are e_i = log μ_i − log y_i, so the site scale κ keeps the same inverse-gamma algebra. Densities
    are of y on the observation scale: each observation's term carries the Jacobian −log y_i (times w_i), so
    that values, pointwise terms and lppd compare with the normal models; ∂/∂μ_i = (∂/∂ log μ_i) / μ_i.
    Draws and predictive intervals are positive (log-normal, or log-Student-t for a new site, κ from its prior).

Pointwise log-likelihoods (for PSIS-LOO) are the factor that leaving observation i out removes from its site's
likelihood, log L_s(y) − log L_s(y₋ᵢ): for independent errors the (weighted) term of observation i, so they
sum to the total; for ``site_scale`` the conditional log p(y_i | y₋ᵢ, θ) of a non-factorised model (Bürkner,
Gabry & Vehtari 2021, Comput. Stat. 36: 1243–1261), which do not sum to the site total.

Predictive densities and draws of a new observation are those of the error model itself, without the depth
weights (weights shape inference, they are not part of the observation process).

Presets (``[likelihood] error_model``; explicit keys override a preset's values):

- ``paper``: base error only (the paper's J₁ + λJ₂; reproduces the original likelihood bit for bit);
- ``floor``: + absolute floors s₀ = 1 mg C cm⁻³ (SOC) and 0.02 (F14C);
- ``weighted``: ``floor`` + thickness weighting (h_ref = 10 cm);
- ``discrepancy``: ``weighted`` + the site-scale discrepancy κ (a = 2, prior median of κ = 3);
- ``lognormal``: ``discrepancy`` on the log scale (multiplicative errors, ``error_scale = "log"``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaincinv, gammaln

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

#: variables of the likelihood
VARIABLES = ("soc", "f14c")

#: preset name → values it sets (every other field keeps its dataclass default)
PRESETS: dict[str, dict] = {
    "paper": {},
    "floor": {"soc_abs_error": 1.0, "c14_abs_error": 0.02},
    "weighted": {"soc_abs_error": 1.0, "c14_abs_error": 0.02, "depth_weighting": "thickness"},
    "discrepancy": {
        "soc_abs_error": 1.0,
        "c14_abs_error": 0.02,
        "depth_weighting": "thickness",
        "discrepancy": "site_scale",
    },
    "lognormal": {
        "soc_abs_error": 1.0,
        "c14_abs_error": 0.02,
        "depth_weighting": "thickness",
        "discrepancy": "site_scale",
        "error_scale": "log",
    },
}

_CHOICES = {
    "depth_weighting": ("none", "thickness"),
    "discrepancy": ("none", "site_scale"),
    "distribution": ("normal", "student_t"),
    "error_scale": ("linear", "log"),
}


@dataclass(frozen=True)
class ErrorModel:
    """What an observation error adds to the paper's relative error (see module docstring).

    Attributes:
        name: preset the model was built from, or "custom" (–).
        soc_abs_error: absolute SOC floor s₀ (mg C cm⁻³); 0 = none.
        c14_abs_error: absolute F14C floor s₀ (F14C units); 0 = none.
        depth_weighting: "none" or "thickness" (w_i = min(1, h_i/h_ref)) (–).
        reference_thickness_cm: h_ref of the thickness weights (cm).
        discrepancy: "none" or "site_scale" (κ per site and variable, integrated out) (–).
        discrepancy_shape: a of κ² ~ InvGamma(a, b) (–).
        discrepancy_scale: prior median of κ (–); b = median² · (median of Gamma(a, 1)).
        c14_discrepancy_shape: a for F14C, or None to use ``discrepancy_shape`` (–).
        c14_discrepancy_scale: prior median of κ for F14C, or None to use ``discrepancy_scale`` (–).
        distribution: "normal" or "student_t" per observation (–).
        student_nu: degrees of freedom ν of the Student-t (–).
        error_scale: "linear" (additive errors, the paper's) or "log" (multiplicative: the error model applies to
            log y with location log μ and σ_log² = log(1 + σ²/y²); the ``lognormal`` preset). Not a key of the
            study file: a study chooses it through ``error_model`` (–).
    """

    name: str = "paper"
    soc_abs_error: float = 0.0
    c14_abs_error: float = 0.0
    depth_weighting: str = "none"
    reference_thickness_cm: float = 10.0
    discrepancy: str = "none"
    discrepancy_shape: float = 2.0
    discrepancy_scale: float = 3.0
    c14_discrepancy_shape: float | None = None
    c14_discrepancy_scale: float | None = None
    distribution: str = "normal"
    student_nu: float = 4.0
    error_scale: str = "linear"

    def __post_init__(self) -> None:
        for key, allowed in _CHOICES.items():
            v = getattr(self, key)
            if v not in allowed:
                where = "ErrorModel" if key == "error_scale" else "likelihood"  # error_scale: set by the preset
                raise ValueError(f"{where}.{key} must be one of {list(allowed)}, got {v!r}")
        for key in ("soc_abs_error", "c14_abs_error"):
            v = getattr(self, key)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"likelihood.{key} must be a finite number ≥ 0, got {v!r}")
        for key in (
            "reference_thickness_cm",
            "discrepancy_shape",
            "discrepancy_scale",
            "c14_discrepancy_shape",
            "c14_discrepancy_scale",
            "student_nu",
        ):
            v = getattr(self, key)
            if v is None and key.startswith("c14_"):
                continue
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"likelihood.{key} must be a positive number, got {v!r}")
        if self.distribution == "student_t" and self.discrepancy == "site_scale":
            raise ValueError(
                "likelihood.distribution = 'student_t' cannot be combined with likelihood.discrepancy = "
                "'site_scale' (the site scale is integrated out analytically for normal errors only)"
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_preset(cls, preset: str = "paper", **overrides) -> ErrorModel:
        """A preset (``PRESETS``) with some fields overridden.

        Args:
            preset: "paper", "floor", "weighted", "discrepancy" or "lognormal" (–).
            **overrides: field values replacing the preset's (units of the fields); None values are ignored.

        Raises:
            ValueError: unknown preset (naming ``likelihood.error_model``) or invalid field.
        """
        if preset not in PRESETS:
            raise ValueError(f"likelihood.error_model must be one of {list(PRESETS)}, got {preset!r}")
        fields = {f.name for f in dataclasses.fields(cls)} - {"name"}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"unknown error-model key(s) {unknown}; known: {sorted(fields)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(name=preset, **{**PRESETS[preset], **given})

    @classmethod
    def from_config(cls, section) -> ErrorModel:
        """From a ``[likelihood]`` section (:class:`~bayes_vmimics.config.LikelihoodSection`): its
        ``error_model`` preset, overridden by the keys the section sets (None = take the preset's value;
        fields that are not keys of the section, ``error_scale``, always take the preset's)."""
        fields = [f.name for f in dataclasses.fields(cls) if f.name != "name"]
        return cls.from_preset(section.error_model, **{k: getattr(section, k, None) for k in fields})

    @classmethod
    def of_study(cls, config) -> ErrorModel:
        """The error model a study runs under (:class:`~bayes_vmimics.config.StudyConfig`): the paper's for the
        synthetic twin (it is generated with the paper's relative error, whatever the configuration names),
        else :meth:`from_config` of its ``[likelihood]`` section."""
        return cls() if config.study.mode == "synthetic" else cls.from_config(config.likelihood)

    # ------------------------------------------------------------------ properties
    @property
    def additive(self) -> bool:
        """Whether the site term is a sum of independent per-observation terms (no site scale)."""
        return self.discrepancy == "none"

    @property
    def log_scale(self) -> bool:
        """Whether the errors are multiplicative (normal or Student-t on the log scale; ``error_scale = "log"``)."""
        return self.error_scale == "log"

    @property
    def discrepancy_rate(self) -> float:
        """b of κ² ~ InvGamma(a, b) of SOC, from the prior median of κ (``discrepancy_scale``) (–)."""
        return self.discrepancy_hyper("soc")[1]

    def discrepancy_hyper(self, variable: str) -> tuple[float, float]:
        """(a, b) of κ² ~ InvGamma(a, b) for ``variable`` ("soc" or "f14c"; F14C takes the ``c14_`` keys
        where set) (–)."""
        _check_variable(variable)
        a, m = self.discrepancy_shape, self.discrepancy_scale
        if variable == "f14c":
            a = a if self.c14_discrepancy_shape is None else self.c14_discrepancy_shape
            m = m if self.c14_discrepancy_scale is None else self.c14_discrepancy_scale
        return a, m**2 * float(gammaincinv(a, 0.5))

    def abs_error(self, variable: str) -> float:
        """The absolute floor s₀ of ``variable`` ("soc": mg C cm⁻³, "f14c": F14C units)."""
        _check_variable(variable)
        return self.soc_abs_error if variable == "soc" else self.c14_abs_error

    def sigma(self, variable: str, observed, rel_error: float, weight: float = 1.0, abs_scale=1.0) -> np.ndarray:
        """σ of each observation before any site scale, on the observation scale (for ``error_scale = "log"``
        the log-scale σ_log follows from it: :attr:`ObservationErrors.sigma_log`).

        Args:
            variable: "soc" or "f14c" (–).
            observed: observed values, shape (n,) (compared unit).
            rel_error: base relative error r (fraction).
            weight: λ of the variable; σ_base = r · y / √λ (–).
            abs_scale: factor converting the floor to the compared unit, scalar or (n,) (e.g. 1/bulk density
                for SOC in g C kg⁻¹) (compared unit per floor unit).

        Returns:
            σ, shape (n,) (compared unit).
        """
        y = np.asarray(observed, dtype=float)
        base = rel_error * y if weight == 1.0 else rel_error * y / math.sqrt(weight)
        s0 = self.abs_error(variable)
        if s0 == 0.0:
            return base
        floor = s0 * np.asarray(abs_scale, dtype=float)
        return np.sqrt(base * base + floor * floor)

    def weights(self, thickness_cm) -> np.ndarray | None:
        """Depth weights w_i = min(1, h_i/h_ref), or None without depth weighting.

        Args:
            thickness_cm: layer thicknesses, shape (n,) (cm).
        """
        if self.depth_weighting == "none":
            return None
        h = np.asarray(thickness_cm, dtype=float)
        if not np.all(h > 0):
            raise ValueError("depth weighting needs positive layer thicknesses")
        return np.minimum(1.0, h / self.reference_thickness_cm)

    def prepare(
        self, variable: str, observed, thickness_cm, rel_error: float, weight: float = 1.0, abs_scale=1.0
    ) -> ObservationErrors:
        """The error term of one site and one variable (σ, weights and constants computed once).

        Args:
            variable: "soc" or "f14c" (–).
            observed: observed values, shape (n,) (compared unit).
            thickness_cm: thickness of each observed layer, shape (n,) (cm).
            rel_error: base relative error r (fraction).
            weight: λ of the variable (–).
            abs_scale: floor unit conversion, see :meth:`sigma` (compared unit per floor unit).
        """
        y = np.asarray(observed, dtype=float)
        if self.log_scale and not np.all(y > 0):
            raise ValueError(f"{variable}: error_scale = 'log' (error model {self.name!r}) needs observations > 0")
        sigma = self.sigma(variable, y, rel_error, weight, abs_scale)
        w = self.weights(thickness_cm) if y.size else None
        if w is not None and w.shape != y.shape:
            raise ValueError(f"thickness_cm must have shape {y.shape}, got {w.shape}")
        return ObservationErrors(self, variable, y, sigma, w)

    # convenience wrappers (one call per site and variable; the problem prepares terms once instead)
    def log_likelihood_and_gradient(self, variable, predicted, observed, thickness_cm, rel_error, weight=1.0):
        """Site term and its derivative wrt the predictions; see :meth:`ObservationErrors.log_likelihood_and_gradient`.

        Args:
            variable: "soc" or "f14c" (–).
            predicted: model values, shape (n,) (compared unit).
            observed: observations, shape (n,) (compared unit).
            thickness_cm: layer thicknesses, shape (n,) (cm).
            rel_error: base relative error (fraction).
            weight: λ (–).
        """
        term = self.prepare(variable, observed, thickness_cm, rel_error, weight)
        return term.log_likelihood_and_gradient(predicted)

    def pointwise_log_likelihood(self, variable, predicted, observed, thickness_cm, rel_error, weight=1.0):
        """Pointwise log-likelihoods of one site; see :meth:`ObservationErrors.pointwise_log_likelihood`.

        Args: as :meth:`log_likelihood_and_gradient` (units there).
        """
        return self.prepare(variable, observed, thickness_cm, rel_error, weight).pointwise_log_likelihood(predicted)

    def discrepancy_posterior(self, variable, predicted, observed, thickness_cm, rel_error, weight=1.0):
        """(shape, rate) of κ² | y, θ ~ InvGamma; see :meth:`ObservationErrors.discrepancy_posterior`.

        Args: as :meth:`log_likelihood_and_gradient` (units there).
        """
        return self.prepare(variable, observed, thickness_cm, rel_error, weight).discrepancy_posterior(predicted)


def _check_variable(variable: str) -> None:
    if variable not in VARIABLES:
        raise ValueError(f"variable must be one of {list(VARIABLES)}, got {variable!r}")


def _student_t_logpdf(z: np.ndarray, nu: float, log_scale: np.ndarray) -> np.ndarray:
    c = gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu) - 0.5 * math.log(nu * math.pi)
    return c - log_scale - 0.5 * (nu + 1.0) * np.log1p(z * z / nu)


@dataclass(frozen=True, eq=False)
class ObservationErrors:
    """The error term of one site and one variable: σ, weights and the likelihood of predictions.

    Attributes:
        model: the error model (–).
        variable: "soc" or "f14c" (–).
        observed: observations, shape (n,) (compared unit).
        sigma: σ per observation before any site scale, shape (n,) (compared unit).
        weights: depth weights w_i, shape (n,), or None (all 1) (–).

    With ``error_scale = "log"`` the term also has ``sigma_log`` = √log(1 + σ²/y²), shape (n,) (log units), the
    scale of the error on the log scale, and ``log_observed`` = log y (log of the compared unit).
    """

    model: ErrorModel
    variable: str
    observed: np.ndarray
    sigma: np.ndarray
    weights: np.ndarray | None

    def __post_init__(self) -> None:
        if self.model.log_scale:
            # multiplicative error: the log-normal whose coefficient of variation is σ/y (≈ σ/y for small σ/y)
            ratio = self.sigma / self.observed
            s = np.sqrt(np.log1p(ratio * ratio))
            log_y = np.log(self.observed)
            object.__setattr__(self, "sigma_log", s)
            object.__setattr__(self, "log_observed", log_y)
            object.__setattr__(self, "_scale", s)
            object.__setattr__(self, "inv_sigma", 1.0 / s)
            object.__setattr__(self, "_log_scale", np.log(s))
            # −log σ_log − ½ log 2π − log y: the log-normal density of y at μ = y (Jacobian d log y/dy = 1/y)
            object.__setattr__(self, "const", -np.log(s) - _HALF_LOG_2PI - log_y)
        else:
            object.__setattr__(self, "_scale", self.sigma)
            object.__setattr__(self, "inv_sigma", 1.0 / self.sigma)
            object.__setattr__(self, "_log_scale", np.log(self.sigma))
            # −log σ − ½ log 2π: the normal log-density at zero residual (as the original likelihood)
            object.__setattr__(self, "const", -np.log(self.sigma) - _HALF_LOG_2PI)

    def _location(self, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(predictions, observations) on the scale of the error: as given, or their logs (log of a prediction
        ≤ 0 is −inf or NaN, which the callers turn into −inf densities and NaN draws)."""
        if not self.model.log_scale:
            return predicted, self.observed
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(predicted), self.log_observed

    def _log_jacobian(self) -> np.ndarray | float:
        """−log y on the log scale (density of y from that of log y), 0 on the linear scale."""
        return -self.log_observed if self.model.log_scale else 0.0

    @property
    def size(self) -> int:
        """Number of observations (count)."""
        return self.observed.size

    @property
    def n_effective(self) -> float:
        """n = Σ w_i (count; the number of observations without weights)."""
        return float(self.observed.size if self.weights is None else self.weights.sum())

    def _hyper(self) -> tuple[float, float]:
        return self.model.discrepancy_hyper(self.variable)

    def _q(self, z: np.ndarray) -> np.ndarray:
        zz = z * z
        return zz if self.weights is None else self.weights * zz

    # ------------------------------------------------------------------ likelihood
    def _residuals(self, predicted) -> np.ndarray:
        pred = np.asarray(predicted, dtype=float)
        if pred.shape != self.observed.shape:
            raise ValueError(f"{self.variable}: predictions must have shape {self.observed.shape}, got {pred.shape}")
        if self.model.log_scale:
            loc, obs = self._location(pred)
            return (loc - obs) * self.inv_sigma
        return (pred - self.observed) * self.inv_sigma

    def _independent_terms(self, z: np.ndarray) -> np.ndarray:
        m = self.model
        if m.distribution == "normal":
            ll = self.const - 0.5 * z * z
        else:
            ll = _student_t_logpdf(z, m.student_nu, self._log_scale) + self._log_jacobian()
        return ll if self.weights is None else self.weights * ll

    def _site_scale_value(self, z: np.ndarray) -> tuple[float, float, float]:
        a, b = self._hyper()
        n = self.n_effective
        q = float(self._q(z).sum())
        c = self.const if self.weights is None else self.weights * self.const
        value = float(c.sum()) + a * math.log(b) - math.lgamma(a) + math.lgamma(a + 0.5 * n)
        value -= (a + 0.5 * n) * math.log(b + 0.5 * q)
        return value, n, q

    def log_likelihood(self, predicted) -> float:
        """Log-likelihood of the site's observations of this variable given the predictions.

        Args:
            predicted: model values at the observed intervals, shape (n,) (compared unit).

        Returns:
            The value (log-likelihood units); −inf if a prediction is not finite.
        """
        return self.log_likelihood_and_gradient(predicted, gradient=False)[0]

    def log_likelihood_and_gradient(self, predicted, *, gradient: bool = True) -> tuple[float, np.ndarray | None]:
        """Log-likelihood and its derivative with respect to each prediction (for the adjoint).

        Args:
            predicted: model values, shape (n,) (compared unit).
            gradient: also compute the derivative (bool).

        Returns:
            (value (log-likelihood units), d value / d predicted (n,) (per compared unit), or None when
            ``gradient`` is False); (−inf, zeros) if the value is not finite.
        """
        if self.size == 0:
            return 0.0, (np.zeros(0) if gradient else None)
        z = self._residuals(predicted)
        m = self.model
        if m.additive:
            ll = self._independent_terms(z)
            if m.distribution == "normal" and self.weights is None:
                # exactly the original arithmetic: non-finite terms (a failed ¹⁴C prediction) become −inf
                ll = np.where(np.isfinite(ll), ll, -np.inf)
            value = float(ll.sum())
            if not np.isfinite(value):
                return -np.inf, (np.zeros(self.size) if gradient else None)
            if not gradient:
                return value, None
            if m.distribution == "normal":
                g = -z * self.inv_sigma
            else:
                nu = m.student_nu
                g = -(nu + 1.0) * z / (nu + z * z) * self.inv_sigma
            if m.log_scale:
                g = g / np.asarray(predicted, dtype=float)  # ∂/∂μ = (∂/∂ log μ) / μ
            return value, (g if self.weights is None else self.weights * g)
        if not np.all(np.isfinite(z)):
            return -np.inf, (np.zeros(self.size) if gradient else None)
        value, n, q = self._site_scale_value(z)
        if not np.isfinite(value):
            return -np.inf, (np.zeros(self.size) if gradient else None)
        if not gradient:
            return value, None
        a, b = self._hyper()
        g = -((a + 0.5 * n) / (b + 0.5 * q)) * z * self.inv_sigma
        if m.log_scale:
            g = g / np.asarray(predicted, dtype=float)  # ∂/∂μ = (∂/∂ log μ) / μ
        return value, (g if self.weights is None else self.weights * g)

    def pointwise_log_likelihood(self, predicted) -> np.ndarray:
        """log L_s(y) − log L_s(y₋ᵢ) per observation i (see module docstring), shape (n,).

        For independent errors these are the (weighted) per-observation terms and sum to
        :meth:`log_likelihood`; for ``site_scale`` they are log p(y_i | y₋ᵢ, θ) (κ integrated out).
        Non-finite predictions give −inf.

        Args:
            predicted: model values, shape (n,) (compared unit).
        """
        if self.size == 0:
            return np.zeros(0)
        z = self._residuals(predicted)
        if self.model.additive:
            ll = self._independent_terms(z)
            return np.where(np.isfinite(ll), ll, -np.inf)
        a, b = self._hyper()
        w = np.ones(self.size) if self.weights is None else self.weights
        qi = self._q(z)
        n, q = float(w.sum()), float(qi.sum())
        n_rest = np.maximum(n - w, 0.0)
        q_rest = np.maximum(q - qi, 0.0)
        f_all = math.lgamma(a + 0.5 * n) - (a + 0.5 * n) * math.log(b + 0.5 * q)
        f_rest = gammaln(a + 0.5 * n_rest) - (a + 0.5 * n_rest) * np.log(b + 0.5 * q_rest)
        ll = w * self.const + f_all - f_rest
        return np.where(np.isfinite(ll), ll, -np.inf)

    def discrepancy_posterior(self, predicted) -> tuple[float, float]:
        """Posterior of this site's κ² given the data and the predictions: InvGamma(a + n/2, b + Q/2).

        Args:
            predicted: model values, shape (n,) (compared unit).

        Returns:
            (shape, rate) of the inverse-gamma posterior of κ² (–); mean rate/(shape − 1) for shape > 1.

        Raises:
            ValueError: the model has no site-scale discrepancy.
        """
        if self.model.discrepancy != "site_scale":
            raise ValueError("the error model has no site-scale discrepancy (likelihood.discrepancy = 'none')")
        a, b = self._hyper()
        z = self._residuals(predicted)
        return a + 0.5 * self.n_effective, b + 0.5 * float(self._q(z).sum())

    # ------------------------------------------------------------------ predictive
    def _predictive_t(self, predicted, new_site: bool) -> tuple[float, np.ndarray] | None:
        """(dof, scale (..., n)) of the Student-t predictive of one observation, or None for normal."""
        m = self.model
        if m.discrepancy == "site_scale":
            pred = np.asarray(predicted, dtype=float)
            a, b = self._hyper()
            if new_site:
                return 2.0 * a, self._scale * math.sqrt(b / a)
            if pred.ndim != 1:
                raise ValueError("new_site=False needs predictions of shape (n,) (one θ)")
            a2, b2 = self.discrepancy_posterior(pred)
            return 2.0 * a2, self._scale * math.sqrt(b2 / a2)
        if m.distribution == "student_t":
            return m.student_nu, self._scale
        return None

    def log_predictive_density(self, predicted, *, new_site: bool = True) -> np.ndarray:
        """Log density of each observation as a new observation given the predictions (no depth weights); on the
        log scale the density of y (that of log y minus log y), so that it compares with the linear models'.

        Args:
            predicted: model values, shape (..., n) (compared unit).
            new_site: with ``site_scale``: κ from its prior (a site whose κ is unknown, e.g. held out; Student-t
                with 2a dof and scale σ√(b/a)); False: κ from the site's posterior given these data
                (replicated data of a calibrated site; needs shape (n,)) (bool).

        Returns:
            Shape (..., n) (log density per compared unit); −inf where the prediction is not finite.
        """
        pred = np.asarray(predicted, dtype=float)
        if pred.shape[-1:] != self.observed.shape:
            raise ValueError(f"{self.variable}: predictions must end with shape {self.observed.shape}")
        t = self._predictive_t(pred, new_site)
        loc, obs = self._location(pred)
        if t is None:
            z = (loc - obs) * self.inv_sigma
            ll = self.const - 0.5 * z * z  # with the Jacobian −log y on the log scale
        else:
            nu, scale = t
            ll = _student_t_logpdf((loc - obs) / scale, nu, np.log(scale)) + self._log_jacobian()
        return np.where(np.isfinite(ll), ll, -np.inf)

    def sample(self, predicted, rng: np.random.Generator, *, new_site: bool = True) -> np.ndarray:
        """Draws of new observations given the predictions: prediction + observation error.

        With ``site_scale`` one κ is drawn per leading index (per draw of θ) and shared by the site's layers. On the
        log scale the draws are prediction × exp(error): positive (log-normal, or log-Student-t with κ from its
        prior).

        Args:
            predicted: model values, shape (..., n) (compared unit).
            rng: random generator (–).
            new_site: κ² from its prior (True) or from the site's posterior given these data and predictions
                (False, needs shape (n,)) (bool).

        Returns:
            Shape (..., n) (compared unit); NaN where the prediction is NaN (on the log scale also where it is
            negative).
        """
        pred = np.asarray(predicted, dtype=float)
        if pred.shape[-1:] != self.observed.shape:
            raise ValueError(f"{self.variable}: predictions must end with shape {self.observed.shape}")
        m = self.model
        eps = rng.standard_normal(pred.shape)
        if m.discrepancy == "site_scale":
            if new_site:
                a, b = self._hyper()
            else:
                if pred.ndim != 1:
                    raise ValueError("new_site=False needs predictions of shape (n,) (one θ)")
                a, b = self.discrepancy_posterior(pred)
            kappa2 = b / rng.gamma(a, 1.0, size=pred.shape[:-1] + (1,))
            noise = np.sqrt(kappa2) * self._scale * eps
        elif m.distribution == "student_t":
            nu = m.student_nu
            noise = self._scale * eps / np.sqrt(rng.chisquare(nu, size=pred.shape) / nu)
        else:
            noise = self._scale * eps
        if m.log_scale:
            loc, _ = self._location(pred)
            return np.exp(loc + noise)
        return pred + noise


def _site_scale_marginal(a: float, b: float, n: np.ndarray, q: np.ndarray) -> float:
    """Σ_s of the (a, b)-dependent part of the site-scale term:
    a log b − log Γ(a) + log Γ(a + n/2) − (a + n/2) log(b + Q/2)."""
    return float(np.sum(a * math.log(b) - math.lgamma(a) + gammaln(a + 0.5 * n) - (a + 0.5 * n) * np.log(b + 0.5 * q)))


def fit_discrepancy_prior(n_effective, q) -> tuple[float, float]:
    """Empirical-Bayes (type-II maximum likelihood) shape a and prior median of κ from several sites.

    Maximises Σ_s log p(y_s | θ, a, b) of the site-scale model (module docstring) over (a, b) at fixed
    predictions, e.g. the calibration sites at a posterior θ; the result sets ``discrepancy_shape`` and
    ``discrepancy_scale`` for predicting new (held-out) sites, whose κ is unknown.

    Args:
        n_effective: n_s = Σ w_i of each site, shape (n_sites,) (count).
        q: Q_s = Σ w_i e_i²/σ_i² of each site, shape (n_sites,) (–).

    Returns:
        (a (–), prior median of κ (–)).

    Raises:
        ValueError: fewer than 2 sites, or a non-finite input.
    """
    from scipy.optimize import minimize

    n = np.asarray(n_effective, dtype=float)
    q = np.asarray(q, dtype=float)
    if n.shape != q.shape or n.ndim != 1 or n.size < 2:
        raise ValueError("n_effective and q must be 1-D of equal length ≥ 2 (one value per site)")
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(q)) and np.all(n > 0) and np.all(q >= 0)):
        raise ValueError("n_effective must be positive and q ≥ 0, all finite")
    # start: moment estimate of κ² per site, a = 2
    k2 = np.maximum(q / n, 1e-12)
    x0 = np.array([math.log(2.0), math.log(2.0 * float(np.median(k2)))])
    res = minimize(lambda x: -_site_scale_marginal(math.exp(x[0]), math.exp(x[1]), n, q), x0, method="Nelder-Mead",
                   options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})  # fmt: skip
    a, b = math.exp(res.x[0]), math.exp(res.x[1])
    return a, math.sqrt(b / float(gammaincinv(a, 0.5)))


__all__ = ["PRESETS", "VARIABLES", "ErrorModel", "ObservationErrors", "fit_discrepancy_prior"]
