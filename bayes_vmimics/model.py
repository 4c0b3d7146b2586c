"""The model's right-hand side: rate constants, dC/dt and its Jacobian for a site (P Eqs 1-12, spec Sects. 2-7).

A :class:`SiteModel` binds a site's forcing and grid to a constants profile and precomputes everything that
does not depend on the calibrated parameters, so that evaluating many parameter vectors (a sampler) does
no repeated Python work. The functional helpers :func:`compute_rates`, :func:`dcdt` and :func:`jacobian`
wrap it for one-off use.
"""

from typing import NamedTuple

import numpy as np

from . import _core
from .constants import G_M2_YR_TO_MG_CM2_H, N_POOLS, PROFILE_GRIDS, ModelConstants, get_constants
from .forcing import SiteForcing
from .grid import DepthGrid
from .parameters import Parameters


class Rates(NamedTuple):
    """Per-layer rate constants at one temperature. Layer index first.

    Attributes:
        V: maximum uptake rates (n_layers, 6), order r·m, r·s, r·a, k·m, k·s, k·a (h⁻¹).
        K: half-saturation constants (n_layers, 8), same order then oxidation r, k (mg C cm⁻³).
        mu: turnover coefficients μ_r, μ_k (n_layers, 2) (h⁻¹ (mg C cm⁻³)^(1−β)).
        phi: necromass fractions (n_layers, 6): r→p, r→c, r→a, k→p, k→c, k→a (dimensionless).
        k_des: desorption rate (n_layers,) (h⁻¹).
        inputs: litter sources per pool (n_layers, 7) (mg C cm⁻³ h⁻¹).
        eps: growth efficiencies r·m, r·s, r·a, k·m, k·s, k·a (dimensionless).
        lower, upper: diffusion couplings to the layer above / below (n_layers,) (h⁻¹).
        beta: turnover exponent (dimensionless).
        f_met: input-weighted metabolic fraction per layer (n_layers,) (dimensionless).
    """

    V: np.ndarray
    K: np.ndarray
    mu: np.ndarray
    phi: np.ndarray
    k_des: np.ndarray
    inputs: np.ndarray
    eps: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    beta: float
    f_met: np.ndarray


def default_grid(profile: str | ModelConstants = "paper") -> DepthGrid:
    """The default grid of a profile: 20 × 5 cm ("paper"), 15 × 10 cm ("wc22"), 1 × 30 cm ("w15")."""
    name = profile if isinstance(profile, str) else "paper"
    n, t = PROFILE_GRIDS.get(name.lower(), PROFILE_GRIDS["paper"])
    return DepthGrid.uniform(n, t)


def parameter_vector(params) -> np.ndarray:
    """The 7 parameters as a float vector in ``PARAMETER_NAMES`` order, validated (parameter units; α in m⁻¹).

    Args:
        params: a :class:`Parameters` or 7 positive finite values (parameter units).

    Raises:
        ValueError: not 7 values, or a value not positive and finite.
    """
    if isinstance(params, Parameters):
        return params.to_array()
    try:
        theta = np.asarray(params, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"params must be a Parameters or 7 numbers (x_v, x_K, x_d, x_D, alpha_r, alpha_v, beta), got "
            f"{type(params).__name__} {params!r:.80}"
        ) from exc
    if theta.size != 7:
        raise ValueError(
            f"params must be a Parameters or 7 values (x_v, x_K, x_d, x_D, alpha_r, alpha_v, beta), got {theta.size}"
        )
    if not np.all(np.isfinite(theta)) or np.any(theta <= 0):
        raise ValueError(f"params must be positive and finite, got {theta.tolist()}")
    return theta


_theta = parameter_vector  # former private name


class SiteModel:
    """A site's forcing on a grid, with one constants profile, ready for repeated evaluation.

    Args:
        forcing: the site's forcing (see :class:`SiteForcing` for units).
        grid: the layers (cm); default: the profile's default grid (20 × 5 cm for "paper").
        profile: "paper" (default), "wc22", "w15", or a :class:`ModelConstants`.
    """

    def __init__(self, forcing: SiteForcing, grid: DepthGrid | None = None, profile: str | ModelConstants = "paper"):
        if not isinstance(forcing, SiteForcing):
            raise TypeError(f"forcing must be a SiteForcing, got {type(forcing).__name__}")
        self.forcing = forcing
        self.constants = get_constants(profile)
        self.profile = profile if isinstance(profile, str) else "custom"
        self.grid = grid if grid is not None else default_grid(profile)
        if not isinstance(self.grid, DepthGrid):
            raise TypeError(f"grid must be a DepthGrid, got {type(self.grid).__name__}")
        n = self.grid.n_layers
        self.n_layers = n
        self.kc = self.constants.pack()
        self.clay = np.ascontiguousarray(forcing.clay_profile(n), dtype=np.float64)
        self.edges_cm = np.ascontiguousarray(self.grid.edges_cm, dtype=np.float64)
        self.IA = forcing.litter_above * G_M2_YR_TO_MG_CM2_H
        self.IB = forcing.litter_below * G_M2_YR_TO_MG_CM2_H
        self.fmetA = forcing.f_met_above
        self.fmetB = forcing.f_met_below
        self.npp = forcing.litter_above + forcing.litter_below if self.constants.npp_total else forcing.litter_above
        self.fixed_beta = -1.0 if self.constants.fixed_beta is None else float(self.constants.fixed_beta)
        self.T_mean = forcing.mean_temperature
        if forcing.is_climatology:
            dT = np.asarray(forcing.temperature, dtype=np.float64) - self.T_mean
            c = self.constants
            # day multipliers of V and the two K families relative to the annual-mean temperature (spec 4.1-4.2)
            self.day_factors = np.ascontiguousarray(
                np.stack([np.exp(c.V_slope * dT), np.exp(c.K_slope_ms * dT), np.exp(c.K_slope_s * dT)], axis=1)
            )
        else:
            self.day_factors = None
        self.thickness_cm = self.grid.thickness_cm.copy()
        #: total carbon input (mg C cm⁻² h⁻¹)
        self.total_input = self.IA + self.IB

    # ---- rates ----
    def raw_rates(self, params, temperature: float | None = None) -> Rates:
        """The rate record of the compiled core (internal layout, layer first; :class:`Rates`, which the numba
        kernels take as one argument) at ``temperature`` (°C; default annual mean)."""
        T = self.T_mean if temperature is None else float(temperature)
        return Rates(
            *_core.build_rates(
                parameter_vector(params),
                self.kc,
                T,
                self.clay,
                self.edges_cm,
                self.IA,
                self.IB,
                self.fmetA,
                self.fmetB,
                self.npp,
                self.fixed_beta,
            )
        )

    def rates(self, params, temperature: float | None = None) -> Rates:
        """Rate constants per layer (see :class:`Rates` for units) at ``temperature`` (°C; default annual mean)."""
        return self.raw_rates(params, temperature)

    # ---- right-hand side ----
    def _check_pools(self, pools) -> np.ndarray:
        C = np.asarray(pools, dtype=np.float64)
        if C.shape != (N_POOLS, self.n_layers):
            raise ValueError(f"pools must have shape (7, {self.n_layers}) (pool, layer), got {C.shape}")
        if not np.all(np.isfinite(C)) or np.any(C < 0):
            raise ValueError("pools must be finite and non-negative (mg C cm⁻³)")
        return np.ascontiguousarray(C.T)

    def dcdt(self, pools, params, temperature: float | None = None, *, return_respiration: bool = False):
        """dC/dt (7, n_layers) (mg C cm⁻³ h⁻¹) at state ``pools`` (7, n_layers) (mg C cm⁻³).

        Args:
            pools: state, pool order m, s, r, k, p, c, a (mg C cm⁻³).
            params: :class:`Parameters` or 7 values.
            temperature: soil temperature (°C); default the forcing's annual mean.
            return_respiration: also return per-layer respiration (n_layers,) (mg C cm⁻³ h⁻¹).
        """
        C = self._check_pools(pools)
        r = self.raw_rates(params, temperature)
        F = np.empty_like(C)
        A = np.empty((self.n_layers, N_POOLS, N_POOLS))
        resp = np.empty(self.n_layers)
        _core.full_rhs(C, *r[:10], 1.0, 1.0, 1.0, F, A, resp, False)
        return (F.T.copy(), resp) if return_respiration else F.T.copy()

    def jacobian(self, pools, params, temperature: float | None = None) -> np.ndarray:
        """Dense Jacobian ∂(dC/dt)/∂C (7N, 7N) (h⁻¹), state flattened pool-major: index = pool·N + layer."""
        return self.jacobian_internal(self._check_pools(pools), self.raw_rates(params, temperature))

    def jacobian_internal(self, C: np.ndarray, rates: Rates) -> np.ndarray:
        """Dense Jacobian as :meth:`jacobian`, at a state C (n_layers, 7) in the internal layer-first layout
        (mg C cm⁻³) with a rate record from :meth:`raw_rates`; flattened pool-major (h⁻¹)."""
        n = self.n_layers
        lo, up = rates.lower, rates.upper
        F = np.empty_like(C)
        A = np.empty((n, N_POOLS, N_POOLS))
        resp = np.empty(n)
        _core.full_rhs(C, *rates[:10], 1.0, 1.0, 1.0, F, A, resp, True)
        Jm = np.zeros((N_POOLS * n, N_POOLS * n))
        for j in range(n):
            idx = np.arange(N_POOLS) * n + j
            Jm[np.ix_(idx, idx)] = A[j]
            for i in range(N_POOLS):
                Jm[i * n + j, i * n + j] -= lo[j] + up[j]
                if j > 0:
                    Jm[i * n + j, i * n + j - 1] += lo[j]
                if j < n - 1:
                    Jm[i * n + j, i * n + j + 1] += up[j]
        return Jm


def compute_rates(
    params,
    forcing: SiteForcing,
    grid: DepthGrid | None = None,
    *,
    profile="paper",
    temperature: float | None = None,
) -> Rates:
    """Rate constants per layer (units in :class:`Rates`) at ``temperature`` (°C; default annual mean)."""
    return SiteModel(forcing, grid, profile).rates(params, temperature)


def dcdt(
    pools,
    params,
    forcing: SiteForcing,
    grid: DepthGrid | None = None,
    *,
    profile="paper",
    temperature: float | None = None,
) -> np.ndarray:
    """Right-hand side dC/dt of P Eq 1 (7, n_layers) (mg C cm⁻³ h⁻¹).

    Args:
        pools: state (7, n_layers), pool order m, s, r, k, p, c, a (mg C cm⁻³).
        params: :class:`Parameters` (or 7 values in ``PARAMETER_NAMES`` order).
        forcing: site forcing (units in :class:`SiteForcing`).
        grid: layers (cm); default 20 × 5 cm for the "paper" profile.
        profile: constants profile name or :class:`ModelConstants`.
        temperature: soil temperature (°C); default the forcing's annual mean.
    """
    return SiteModel(forcing, grid, profile).dcdt(pools, params, temperature)


def jacobian(
    pools,
    params,
    forcing: SiteForcing,
    grid: DepthGrid | None = None,
    *,
    profile="paper",
    temperature: float | None = None,
) -> np.ndarray:
    """Dense Jacobian of :func:`dcdt` (7N, 7N) (h⁻¹), flattened pool-major (index = pool·N + layer)."""
    return SiteModel(forcing, grid, profile).jacobian(pools, params, temperature)
