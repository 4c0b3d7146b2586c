"""Gaussian likelihood of observed SOC and F14C profiles (P Eqs 14–16; spec Sect. 13 and A14).

The paper minimises J = J₁ + λJ₂ with J₁ = Σᵢ (C_obs,i − C_mod,i)²/s₁², J₂ = Σⱼ (F_obs,j − F_mod,j)²/s₂²
(λ printed twice, used once: spec A14), s₁ = 0.1·C_obs,i and s₂ = 0.1·F_obs,j, λ = 5. The equivalent Gaussian
likelihood has independent errors

    σ_SOC,i = r_SOC · C_obs,i,        σ_14C,j = r_14C · F_obs,j / √λ,

so that −2 log L = J + constant. SOC is compared in mg C cm⁻³ (Eq 15) or, optionally, g C kg⁻¹; sites
without ¹⁴C observations contribute only the SOC term.

That is the ``paper`` error model. Others (an absolute error floor, depth weighting, a site-level
discrepancy scale integrated out, Student-t errors) are selected by ``[likelihood] error_model``; σ and the
per-site likelihood term live in :mod:`bayes_vmimics.errors` only, and this module (values) and
:mod:`bayes_vmimics.gradients` (gradients) both call it.

Each evaluation solves every site's steady state (:func:`~bayes_vmimics.steady_state.solve_site`). A draw
for which any site fails to converge gets log L = −inf and is counted (:attr:`CalibrationProblem.stats`).

Warm starts: with ``warm_start=True`` each site keeps a small cache of recently converged states and
starts the Newton iteration from the one nearest to the new θ (distance in the prior's unit box). This
makes a sampler's step cost a few warm solves, but the model can have several equilibria: near a fold
bifurcation a warm start may land on a different branch than a cold spin-up, so the log-probability can
depend on the evaluation history. (Until 2026-11-25 a solver bug let warm starts stop on states that are no
steady state, at 7 % of the stage-1 draws of real ENF sites; fixed, see ``model/README.md``. Since then
warm and cold agreed on all 3500 draws checked; :func:`~.inference.stage1.check_stage1_branches` checks a
run.) ``warm_start=False`` starts every solve from WC22's initial pools and gives a deterministic
log-probability.

¹⁴C uses ``bayes_vmimics.radiocarbon.simulate_radiocarbon`` (imported lazily); if that module is missing
the ¹⁴C term is disabled and :attr:`CalibrationProblem.c14_enabled` is False. F14C observations that cannot
enter the term otherwise (no atmospheric record, zone or sampling year; a sampling year far past the record)
are an error, never a silently disabled term: pass ``use_c14=False`` to calibrate on SOC alone.

The input, a site's observations and their checks: :mod:`bayes_vmimics.site_observations`; a prepared site, its
prediction at one θ and the evaluation counters: :mod:`bayes_vmimics.site_evaluation`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .constants import C14_POOLS, C14_WEIGHT, REL_ERROR, SOC_POOLS
from .errors import ErrorModel
from .grid import DepthGrid
from .model import SiteModel
from .observation import ObservationOperator, required_grid
from .parameters import PARAMETER_NAMES, Parameters
from .priors import BoxPrior
from .site_evaluation import EvaluationStats, PreparedSite, SitePrediction
from .site_observations import SiteObservations, _check_c14_inputs, _simulate_radiocarbon
from .steady_state import SteadyState, solve_site


class CalibrationProblem:
    """Prior, likelihood and posterior of the seven parameters given one or several sites.

    One parameter vector is shared by all sites (the paper's pooled calibration of a forest type; a
    single site is the special case of one).

    Args:
        sites: the sites' observations.
        prior: the prior (default: uniform on the Table 1 box).
        grid: base model grid, extended per site below its deepest observation (cm); default 20 × 5 cm.
        profile: constants profile (–).
        soc_rel_error: σ_SOC as a fraction of each observed value (the base error of every error model) (–).
        c14_rel_error: σ_14C before λ as a fraction of each observed F14C (–).
        c14_weight: λ, used once: σ_14C = c14_rel_error · obs / √λ (–).
        error_model: what the observation error adds to that base (floor, depth weights, site-scale
            discrepancy, Student-t): an :class:`~bayes_vmimics.errors.ErrorModel` or a preset name; default
            "paper" (–).
        soc_unit: "mg_cm3" (P Eq 15) or "g_kg" (–).
        use_c14: include the ¹⁴C term where observed (bool).
        atmosphere: :class:`~bayes_vmimics.atmosphere.AtmosphericRecord`, needed for the ¹⁴C term.
        c14_mode: mode of ``simulate_radiocarbon`` (–).
        warm_start: reuse nearby converged states (bool; see module docstring).
        warm_cache_size: converged states kept per site (count).
        max_obs_depth_cm: drop observed intervals reaching deeper than this (cm); None keeps all.

    Raises:
        ValueError: with ``use_c14``, F14C observations that cannot enter the ¹⁴C term: no ``atmosphere``, a
            site without zone or sampling year, a zone the record lacks, a sampling year more than
            :data:`~bayes_vmimics.atmosphere.ATMOSPHERE_HOLD_YEARS` past the record's end (sites named).

    Warns:
        AtmosphereHeldWarning: a sampling year past the record's end, within that tolerance (the atmosphere
            is held at its last value; sites, years and the last year named).
    """

    def __init__(
        self,
        sites: Sequence[SiteObservations],
        prior: BoxPrior | None = None,
        *,
        grid: DepthGrid | None = None,
        profile: str = "paper",
        soc_rel_error: float = REL_ERROR,
        c14_rel_error: float = REL_ERROR,
        c14_weight: float = C14_WEIGHT,
        soc_unit: str = "mg_cm3",
        use_c14: bool = True,
        atmosphere=None,
        c14_mode: str = "tracer",
        warm_start: bool = False,
        warm_cache_size: int = 64,
        max_obs_depth_cm: float | None = None,
        error_model: ErrorModel | str | None = None,
    ) -> None:
        if not sites:
            raise ValueError("at least one site is needed")
        if soc_unit not in ("mg_cm3", "g_kg"):
            raise ValueError(f"soc_unit must be 'mg_cm3' or 'g_kg', got {soc_unit!r}")
        for name, v in (
            ("soc_rel_error", soc_rel_error),
            ("c14_rel_error", c14_rel_error),
            ("c14_weight", c14_weight),
        ):
            if not v > 0:
                raise ValueError(f"{name} must be positive, got {v!r}")
        if error_model is None:
            error_model = ErrorModel()
        elif isinstance(error_model, str):
            error_model = ErrorModel.from_preset(error_model)
        elif not isinstance(error_model, ErrorModel):
            raise TypeError(f"error_model must be an ErrorModel or a preset name, got {type(error_model).__name__}")
        #: the observation-error model (:mod:`bayes_vmimics.errors`)
        self.error_model = error_model
        self.prior = prior if prior is not None else BoxPrior()
        self.base_grid = grid if grid is not None else DepthGrid.uniform(20, 5.0)
        self.profile = profile
        self.soc_rel_error = float(soc_rel_error)
        self.c14_rel_error = float(c14_rel_error)
        self.c14_weight = float(c14_weight)
        self.soc_unit = soc_unit
        self.atmosphere = atmosphere
        if c14_mode not in ("tracer", "paper"):
            raise ValueError(f"c14_mode must be 'tracer' or 'paper', got {c14_mode!r}")
        self.c14_mode = c14_mode
        self.warm_start = bool(warm_start)
        self.warm_cache_size = int(warm_cache_size)
        self.stats = EvaluationStats()
        if use_c14:
            _check_c14_inputs(sites, atmosphere)
        any_c14 = any(s.has_c14 for s in sites)
        self._simulate_c14 = _simulate_radiocarbon() if (use_c14 and any_c14) else None
        #: whether the ¹⁴C term is active (module present, atmosphere given, use_c14, some site with ¹⁴C)
        self.c14_enabled = self._simulate_c14 is not None and atmosphere is not None
        self.sites: list[PreparedSite] = [self._prepare(s, max_obs_depth_cm) for s in sites]

    # ------------------------------------------------------------------ set-up
    def _prepare(self, s: SiteObservations, max_depth) -> PreparedSite:
        keep = np.ones(s.top_cm.shape, bool) if not max_depth else s.bottom_cm <= max_depth
        if not keep.any():
            raise ValueError(f"site {s.site_id}: no observed interval (above {max_depth} cm)")
        if not keep.all():
            s = SiteObservations(
                s.site_id,
                s.forcing,
                s.top_cm[keep],
                s.bottom_cm[keep],
                s.soc_mg_cm3[keep],
                None if s.bd_g_cm3 is None else s.bd_g_cm3[keep],
                None if s.f14c is None else s.f14c[keep],
                s.zone,
                s.sample_year,
                s.forest_type,
            )
        grid = required_grid(self.base_grid, s.bottom_cm)
        model = SiteModel(s.forcing, grid, self.profile)
        op = ObservationOperator(grid, s.top_cm, s.bottom_cm, s.bd_g_cm3)
        if self.soc_unit == "g_kg":
            if s.bd_g_cm3 is None or not np.all(s.bd_g_cm3 > 0):
                raise ValueError(f"site {s.site_id}: soc_unit='g_kg' needs a positive bulk density everywhere")
            soc = s.soc_mg_cm3 / s.bd_g_cm3
        else:
            soc = s.soc_mg_cm3
        thickness = s.bottom_cm - s.top_cm
        # the SOC floor is given in mg C cm⁻³; in g C kg⁻¹ it is divided by the layer's bulk density
        floor_scale = 1.0 if self.soc_unit == "mg_cm3" else 1.0 / s.bd_g_cm3
        em = self.error_model
        soc_errors = em.prepare("soc", soc, thickness, self.soc_rel_error, 1.0, floor_scale)  # Eq 15
        if self.c14_enabled and s.has_c14:
            idx = np.flatnonzero(np.isfinite(s.f14c))
            c14 = s.f14c[idx]
        else:
            idx = np.empty(0, dtype=int)
            c14 = np.empty(0)
        # Eq 16 with λ once (spec A14): σ_base = r · F / √λ
        c14_errors = em.prepare("f14c", c14, thickness[idx], self.c14_rel_error, self.c14_weight)
        return PreparedSite(
            obs=s,
            model=model,
            operator=op,
            soc_obs=soc,
            soc_errors=soc_errors,
            c14_index=idx,
            c14_obs=c14,
            c14_errors=c14_errors,
        )

    @classmethod
    def from_config(cls, sites, config, *, atmosphere=None, error_model=None) -> CalibrationProblem:
        """Build from a :class:`~bayes_vmimics.config.StudyConfig` (sections model, priors, likelihood; the
        error model from ``[likelihood] error_model`` and the keys overriding it).

        Args:
            sites: the sites' observations (–).
            config: the study configuration (–).
            atmosphere: atmospheric ¹⁴C record, needed for the ¹⁴C term (–).
            error_model: replaces the configuration's error model, e.g. "paper" for a synthetic twin generated
                with the paper's error (an :class:`~bayes_vmimics.errors.ErrorModel` or a preset name) (–).
        """
        m, lk = config.model, config.likelihood
        return cls(
            sites,
            BoxPrior.from_config(config.priors),
            grid=DepthGrid.uniform(m.n_layers, m.thickness_cm),
            profile=m.profile,
            soc_rel_error=lk.soc_rel_error,
            c14_rel_error=lk.c14_rel_error,
            c14_weight=lk.c14_weight,
            soc_unit=lk.soc_unit,
            use_c14=lk.use_c14,
            atmosphere=atmosphere,
            c14_mode=m.c14_mode,
            warm_start=lk.warm_start,
            warm_cache_size=lk.warm_cache_size,
            max_obs_depth_cm=m.max_obs_depth_cm or None,
            error_model=ErrorModel.from_config(lk) if error_model is None else error_model,
        )

    # ------------------------------------------------------------------ properties
    @property
    def ndim(self) -> int:
        """Number of parameters (7)."""
        return len(PARAMETER_NAMES)

    @property
    def site_ids(self) -> list[str]:
        """Site identifiers, in order."""
        return [p.obs.site_id for p in self.sites]

    @property
    def forest_types(self) -> list[str | None]:
        """Each site's forest type (``SiteObservations.forest_type``), in order."""
        return [p.obs.forest_type for p in self.sites]

    @property
    def n_soc(self) -> int:
        """Number of SOC observations over all sites."""
        return sum(p.soc_obs.size for p in self.sites)

    @property
    def n_c14(self) -> int:
        """Number of F14C observations entering the likelihood over all sites."""
        return sum(p.c14_obs.size for p in self.sites)

    def observations(self) -> dict[str, np.ndarray]:
        """Flat observation table: for "soc_obs" and "c14_obs" the values and their site/interval labels.

        Returns:
            dict with ``soc`` (n_soc,) (compared unit), ``soc_site``, ``soc_top_cm``, ``soc_bottom_cm``,
            ``f14c`` (n_c14,), ``f14c_site``, ``f14c_top_cm``, ``f14c_bottom_cm``.
        """
        out: dict[str, list] = {
            k: []
            for k in (
                "soc",
                "soc_site",
                "soc_top_cm",
                "soc_bottom_cm",
                "f14c",
                "f14c_site",
                "f14c_top_cm",
                "f14c_bottom_cm",
            )
        }
        for p in self.sites:
            o = p.obs
            out["soc"].append(p.soc_obs)
            out["soc_site"].append(np.full(p.soc_obs.size, o.site_id, dtype=object))
            out["soc_top_cm"].append(p.operator.top_cm)
            out["soc_bottom_cm"].append(p.operator.bottom_cm)
            out["f14c"].append(p.c14_obs)
            out["f14c_site"].append(np.full(p.c14_obs.size, o.site_id, dtype=object))
            out["f14c_top_cm"].append(p.operator.top_cm[p.c14_index])
            out["f14c_bottom_cm"].append(p.operator.bottom_cm[p.c14_index])
        return {k: np.concatenate(v) for k, v in out.items()}

    # ------------------------------------------------------------------ model evaluation
    def _initial(self, p: PreparedSite, u: np.ndarray):
        if not self.warm_start or not p.cache_states:
            return None
        d = np.sum((p.cache_u[: len(p.cache_states)] - u) ** 2, axis=1)
        return p.cache_states[int(np.argmin(d))]

    def _remember(self, p: PreparedSite, u: np.ndarray, ss: SteadyState) -> None:
        if not self.warm_start:
            return
        if p.cache_u.shape[0] != self.warm_cache_size:
            p.cache_u = np.zeros((self.warm_cache_size, self.ndim))
        if len(p.cache_states) < self.warm_cache_size:
            p.cache_u[len(p.cache_states)] = u
            p.cache_states.append(ss)
        else:
            p.cache_u[p.cache_next] = u
            p.cache_states[p.cache_next] = ss
            p.cache_next = (p.cache_next + 1) % self.warm_cache_size

    def clear_warm_starts(self) -> None:
        """Forget all cached states (the next evaluation starts cold)."""
        for p in self.sites:
            p.cache_states = []
            p.cache_next = 0

    def solve_state(self, p: PreparedSite, theta: np.ndarray, u: np.ndarray) -> SteadyState:
        init = self._initial(p, u)
        ss = solve_site(p.model, theta, init, on_failure="ignore")
        self.stats.n_solves += 1
        self.stats.n_warm += init is not None
        if ss.converged:
            self._remember(p, u, ss)
        else:
            self.stats.failed_sites[p.obs.site_id] = self.stats.failed_sites.get(p.obs.site_id, 0) + 1
        return ss

    def c14_pools(self, p: PreparedSite, ss: SteadyState, theta: np.ndarray) -> np.ndarray:
        res = self._simulate_c14(
            ss,
            p.model,
            Parameters.from_array(theta),
            self.atmosphere,
            p.obs.zone,
            p.obs.sample_year,
            mode=self.c14_mode,
        )
        return np.asarray(res.c14_pools)

    def predict(self, theta, *, grid_outputs: bool = True) -> list[SitePrediction] | None:
        """Model predictions at θ for every site, or None if a steady state does not converge.

        Args:
            theta: 7 values in ``PARAMETER_NAMES`` order (parameter units).
            grid_outputs: also fill the per-layer outputs (bool).
        """
        theta = np.asarray(theta, dtype=float)
        u = self.prior.to_unit(theta)
        out = []
        for p in self.sites:
            q = self._predict_one(p, theta, u, grid_outputs)
            if q is None:
                return None
            out.append(q)
        return out

    def predict_site(self, index: int, theta, *, grid_outputs: bool = True) -> SitePrediction | None:
        """Model predictions at θ for site ``index`` of :attr:`sites` alone (e.g. with its own θ in a
        hierarchical model), or None if its steady state (or paper-mode ¹⁴C run) does not converge.

        Args:
            index: position of the site in :attr:`sites` (count).
            theta: 7 values in ``PARAMETER_NAMES`` order (parameter units).
            grid_outputs: also fill the per-layer outputs (bool).
        """
        theta = np.asarray(theta, dtype=float)
        return self._predict_one(self.sites[int(index)], theta, self.prior.to_unit(theta), grid_outputs)

    def _predict_one(self, p: PreparedSite, theta: np.ndarray, u: np.ndarray, grid_outputs: bool):
        ss = self.solve_state(p, theta, u)
        if not ss.converged:
            return None
        soc_mg = p.operator.soc_mg_cm3(ss.pools)
        soc = soc_mg if self.soc_unit == "mg_cm3" else soc_mg / p.obs.bd_g_cm3
        n_obs, n_lay = soc.size, p.model.n_layers
        f14c = np.full(n_obs, np.nan)
        f14c_grid = np.full(n_lay, np.nan)
        if self.c14_enabled and p.obs.has_c14:
            try:
                c14 = self.c14_pools(p, ss, theta)
            except RuntimeError:  # paper mode: the nonlinear ¹⁴C run did not converge
                self.stats.failed_sites[p.obs.site_id] = self.stats.failed_sites.get(p.obs.site_id, 0) + 1
                return None
            f14c = p.operator.f14c(ss.pools, c14)
            if grid_outputs:
                den = ss.pools[list(C14_POOLS)].sum(axis=0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    f14c_grid = np.where(den > 0, c14[list(C14_POOLS)].sum(axis=0) / den, np.nan)
        soc_grid = ss.pools[list(SOC_POOLS)].sum(axis=0) if grid_outputs else np.full(n_lay, np.nan)
        return SitePrediction(soc, soc_mg, f14c, soc_grid, f14c_grid, ss)

    # ------------------------------------------------------------------ densities
    def log_prior(self, theta) -> float:
        """Log prior density at θ (−inf outside the box)."""
        return self.prior.log_prior(theta)

    def pointwise_log_likelihood(self, theta) -> dict[str, np.ndarray] | None:
        """Log-likelihood of each observation: ``{"soc": (n_soc,), "f14c": (n_c14,)}``; None on failure.

        The order is that of :meth:`observations`. Each value is the factor of its site's likelihood that
        leaving the observation out removes (:meth:`~bayes_vmimics.errors.ObservationErrors.pointwise_log_likelihood`):
        with independent errors they sum to :meth:`log_likelihood`; with the site-scale discrepancy they are
        log p(y_i | y₋ᵢ, θ) (for PSIS-LOO) and do not.
        """
        pred = self.predict(theta, grid_outputs=False)
        if pred is None:
            return None
        return self.pointwise_from_predictions(pred)

    def pointwise_from_predictions(self, pred: list[SitePrediction]) -> dict[str, np.ndarray]:
        """Pointwise log-likelihood (as :meth:`pointwise_log_likelihood`) of :meth:`predict` output."""
        soc, c14 = [], []
        for p, q in zip(self.sites, pred, strict=True):
            soc.append(p.soc_errors.pointwise_log_likelihood(q.soc))
            if p.c14_index.size:
                c14.append(p.c14_errors.pointwise_log_likelihood(q.f14c[p.c14_index]))
        return {"soc": np.concatenate(soc), "f14c": np.concatenate(c14) if c14 else np.empty(0)}

    def site_log_likelihood_from_prediction(self, index: int, prediction: SitePrediction) -> float:
        """Log-likelihood of site ``index`` given its model output (SOC term + ¹⁴C term of the error model).

        Args:
            index: position of the site in :attr:`sites` (count).
            prediction: the site's :meth:`predict_site` output (–).

        Returns:
            The value (log-likelihood units); −inf if it is not finite.
        """
        p = self.sites[int(index)]
        f14c = prediction.f14c[p.c14_index] if p.c14_index.size else np.empty(0)
        total = p.soc_errors.log_likelihood(prediction.soc) + p.c14_errors.log_likelihood(f14c)
        return total if np.isfinite(total) else -np.inf

    def site_log_likelihood(self, index: int, theta) -> float:
        """Log-likelihood of site ``index`` alone at θ (e.g. its own θ in a hierarchical model); −inf if its
        steady state (or ¹⁴C run) fails. Same value as :func:`bayes_vmimics.gradients.site_log_likelihood`.

        Args:
            index: position of the site in :attr:`sites` (count).
            theta: 7 values in ``PARAMETER_NAMES`` order (parameter units).
        """
        from .gradients import site_log_likelihood

        return site_log_likelihood(self, int(index), theta)

    def site_log_likelihood_and_gradient(self, index: int, theta) -> tuple[float, np.ndarray]:
        """Log-likelihood of site ``index`` at θ and its exact gradient (adjoint method, any error model);
        see :func:`bayes_vmimics.gradients.site_log_likelihood_and_gradient`.

        Args:
            index: position of the site in :attr:`sites` (count).
            theta: 7 values in ``PARAMETER_NAMES`` order (parameter units).

        Returns:
            (log L (log-likelihood units), d log L / dθ (7,) (per parameter unit)).
        """
        from .gradients import site_log_likelihood_and_gradient

        return site_log_likelihood_and_gradient(self, int(index), theta)

    def log_likelihood(self, theta) -> float:
        """Log-likelihood at θ (sum over sites and variables); −inf if a steady state does not converge."""
        self.stats.n_evaluations += 1
        if self.error_model.additive:
            # independent errors: the sum of the pointwise terms (the original arithmetic of the paper model)
            pw = self.pointwise_log_likelihood(theta)
            if pw is None:
                self.stats.n_failed += 1
                return -np.inf
            total = float(pw["soc"].sum() + pw["f14c"].sum())
            return total if np.isfinite(total) else -np.inf
        pred = self.predict(theta, grid_outputs=False)
        if pred is None:
            self.stats.n_failed += 1
            return -np.inf
        total = sum(self.site_log_likelihood_from_prediction(s, q) for s, q in enumerate(pred))
        return float(total) if np.isfinite(total) else -np.inf

    def log_probability(self, theta) -> float:
        """Log posterior density (unnormalised) at θ: log prior + log likelihood; −inf outside the box."""
        lp = self.log_prior(theta)
        if not np.isfinite(lp):
            return -np.inf
        return lp + self.log_likelihood(theta)

    __call__ = log_probability

    def perfect_fit_log_likelihood(self) -> float:
        """The log-likelihood of predictions equal to the observations (its maximum over predictions; the
        constant that :meth:`cost` subtracts) (log-likelihood units)."""
        total = 0
        for p in self.sites:
            total += p.soc_errors.log_likelihood(p.soc_obs) + p.c14_errors.log_likelihood(p.c14_obs)
        return total

    def cost(self, theta) -> float:
        """The deviance from a perfect fit, −2 (log L(θ) − :meth:`perfect_fit_log_likelihood`) (dimensionless);
        +inf on failure. With the ``paper`` error model this is the paper's cost J = J₁ + λJ₂ (P Eqs 14–16
        with λ once); the point-estimate baseline minimises it.
        """
        if self.error_model.additive:
            pw = self.pointwise_log_likelihood(theta)
            if pw is None:
                return np.inf
            ll = float(pw["soc"].sum() + pw["f14c"].sum())
        else:
            pred = self.predict(theta, grid_outputs=False)
            if pred is None:
                return np.inf
            ll = float(sum(self.site_log_likelihood_from_prediction(s, q) for s, q in enumerate(pred)))
        j = -2.0 * (ll - self.perfect_fit_log_likelihood())
        return j if np.isfinite(j) else np.inf

    # ------------------------------------------------------------------ error model: discrepancy and predictive
    def discrepancy_posterior(self, theta) -> dict[str, np.ndarray] | None:
        """Each site's posterior of its discrepancy scale κ² at θ: κ² | y, θ ~ InvGamma(shape, rate).

        Args:
            theta: 7 values in ``PARAMETER_NAMES`` order, shared by all sites, or shape (n_sites, 7), each site
                at its own θ (parameter units).

        Returns:
            ``{"soc_shape", "soc_rate", "f14c_shape", "f14c_rate"}``, each (n_sites,) (–; NaN for a site
            without F14C), or None if a steady state fails.

        Raises:
            ValueError: the error model has no site-scale discrepancy.
        """
        if self.error_model.discrepancy != "site_scale":
            raise ValueError("the error model has no site-scale discrepancy (likelihood.discrepancy = 'none')")
        th = np.asarray(theta, dtype=float)
        npar = len(PARAMETER_NAMES)
        if th.shape == (npar,):
            th = np.broadcast_to(th, (len(self.sites), npar))
        if th.shape != (len(self.sites), npar):
            raise ValueError(f"theta must have shape ({npar},) or ({len(self.sites)}, {npar}), got {th.shape}")
        pred = [self.predict_site(s, th[s], grid_outputs=False) for s in range(len(self.sites))]
        if any(q is None for q in pred):
            return None
        out = {k: np.full(len(self.sites), np.nan) for k in ("soc_shape", "soc_rate", "f14c_shape", "f14c_rate")}
        for s, (p, q) in enumerate(zip(self.sites, pred, strict=True)):
            out["soc_shape"][s], out["soc_rate"][s] = p.soc_errors.discrepancy_posterior(q.soc)
            if p.c14_index.size:
                out["f14c_shape"][s], out["f14c_rate"][s] = p.c14_errors.discrepancy_posterior(q.f14c[p.c14_index])
        return out

    def fit_discrepancy_prior(self, theta) -> dict[str, tuple[float, float]] | None:
        """Empirical-Bayes shape a and prior median of κ per variable from this problem's sites at θ
        (:func:`~bayes_vmimics.errors.fit_discrepancy_prior`), e.g. the calibration sites at the posterior
        median, for predicting held-out sites.

        Args:
            theta: 7 values in ``PARAMETER_NAMES`` order, or shape (n_sites, 7) (each site at its own θ, e.g. a
                hierarchical result's site medians) (parameter units).

        Returns:
            ``{"soc": (a, median κ), "f14c": (a, median κ)}`` (–; each only with ≥ 2 sites observing it), or
            None if a steady state fails.
        """
        from .errors import fit_discrepancy_prior

        post = self.discrepancy_posterior(theta)
        if post is None:
            return None
        out = {}
        for v in ("soc", "f14c"):
            a, b = self.error_model.discrepancy_hyper(v)
            ok = np.isfinite(post[f"{v}_shape"])
            if ok.sum() >= 2:
                out[v] = fit_discrepancy_prior(2.0 * (post[f"{v}_shape"][ok] - a), 2.0 * (post[f"{v}_rate"][ok] - b))
        return out

    def _flat_terms(self, variable: str):
        """(site term, slice into the flat observation vector of :meth:`observations`) per site."""
        out, start = [], 0
        for p in self.sites:
            term = p.soc_errors if variable == "soc" else p.c14_errors
            out.append((term, slice(start, start + term.size)))
            start += term.size
        return out, start

    def _check_flat(self, variable: str, values) -> tuple[np.ndarray, list, int]:
        if variable not in ("soc", "f14c"):
            raise ValueError(f"variable must be 'soc' or 'f14c', got {variable!r}")
        terms, n = self._flat_terms(variable)
        v = np.asarray(values, dtype=float)
        if v.ndim < 1 or v.shape[-1] != n:
            raise ValueError(f"{variable} predictions must have a last axis of {n} (the problem's observations)")
        return v, terms, n

    def pointwise_log_predictive_density(self, variable: str, predicted, *, new_site: bool = True) -> np.ndarray:
        """Log density of each observation as a new observation given predictions, under the error model
        (no depth weights): for held-out scoring (lppd) and predictive checks.

        Args:
            variable: "soc" or "f14c" (–).
            predicted: predictions at the observations of :meth:`observations` (flat over sites), shape
                (..., n_obs) (compared unit: SOC as ``soc_unit``, F14C).
            new_site: site-scale discrepancy only: κ from its prior (held-out sites; a Student-t with 2a dof
                and scale σ√(b/a)) or, False, from each site's posterior given its data at these predictions
                (needs shape (n_obs,)) (bool).

        Returns:
            Shape (..., n_obs) (log density per compared unit); −inf where a prediction is not finite.
        """
        v, terms, _ = self._check_flat(variable, predicted)
        out = np.empty(v.shape)
        for term, sl in terms:
            if term.size:
                out[..., sl] = term.log_predictive_density(v[..., sl], new_site=new_site)
        return out

    def sample_observation_noise(
        self, variable: str, predicted, rng: np.random.Generator, *, new_site: bool = True
    ) -> np.ndarray:
        """Draws of new observations: predictions plus observation error of the error model (for predictive
        intervals that include the observation error). With the site-scale discrepancy one κ per site and
        leading index (draw) is shared by the site's layers.

        Args:
            variable: "soc" or "f14c" (–).
            predicted: predictions at the observations of :meth:`observations`, shape (..., n_obs)
                (compared unit).
            rng: random generator (–).
            new_site: site-scale discrepancy only: κ² from its prior (True) or each site's posterior at these
                predictions (False, shape (n_obs,)) (bool).

        Returns:
            Shape (..., n_obs) (compared unit); NaN where the prediction is NaN.
        """
        v, terms, _ = self._check_flat(variable, predicted)
        out = np.empty(v.shape)
        for term, sl in terms:
            if term.size:
                out[..., sl] = term.sample(v[..., sl], rng, new_site=new_site)
        return out

    def __getstate__(self):
        # neither warm-start caches nor counters are sent to worker processes: the pickled problem depends on
        # the data and settings only (checkpoint keys hash it)
        import copy

        state = self.__dict__.copy()
        state["_simulate_c14"] = None
        state["stats"] = None
        sites = []
        for p in self.sites:
            q = copy.copy(p)
            q.cache_u, q.cache_states, q.cache_next = np.empty((0, p.cache_u.shape[1])), [], 0
            sites.append(q)
        state["sites"] = sites
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.c14_enabled:
            self._simulate_c14 = _simulate_radiocarbon()
        self.stats = EvaluationStats()
        for p in self.sites:
            p.cache_states = []
            p.cache_next = 0
