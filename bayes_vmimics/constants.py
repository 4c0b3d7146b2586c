"""Fixed constants of vertically resolved MIMICS and the three configuration profiles (spec Sects. 3, 9).

Every field's comment gives its symbol, value, units and source (keys as in the spec: W15 = Wieder et al.
2015 code, WC22 = Wang's 2022 vertical-MIMICS code, P = Wang et al. 2021).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

#: Pool order of every state array: metabolic litter, structural litter, r- and K-strategist microbes,
#: physically protected, chemically protected and available SOC (spec Sect. 1).
POOLS: tuple[str, ...] = ("m", "s", "r", "k", "p", "c", "a")
POOL_NAMES: dict[str, str] = {
    "m": "metabolic litter",
    "s": "structural litter",
    "r": "r-strategist microbes",
    "k": "K-strategist microbes",
    "p": "physically protected SOC",
    "c": "chemically protected SOC",
    "a": "available SOC",
}
N_POOLS = 7
#: Pools summed for total SOC (P Eq 15: microbes + SOM, litter excluded; spec Sect. 10).
SOC_POOLS: tuple[int, ...] = (2, 3, 4, 5, 6)
#: Pools whose 14C/C is compared with measured F14C (P Eq 16 text, spec A13).
C14_POOLS: tuple[int, ...] = (4, 5, 6)

HOURS_PER_YEAR = 8760.0  # 365-day year (P §2.2, spec Sect. 1)
#: g C m⁻² yr⁻¹ → mg C cm⁻² h⁻¹ (1 g m⁻² = 0.1 mg cm⁻²; spec Sect. 2).
G_M2_YR_TO_MG_CM2_H = 0.1 / HOURS_PER_YEAR
#: 14C decay constant λ14 = ln 2 / 5730 yr (Libby half-life; P §2.2), per hour.
LAMBDA_14C_PER_HOUR = np.log(2.0) / 5730.0 / HOURS_PER_YEAR


@dataclass(frozen=True)
class ModelConstants:
    """All fixed constants (not calibrated). Defaults are the "paper" profile (spec Sect. 9).

    Units: rates per hour (h⁻¹), concentrations mg C cm⁻³, temperature °C, diffusivity cm² h⁻¹.
    """

    a_V: float = 8.0e-6  # a_V, pre-exponential of V (h⁻¹); W15:132, P Eq 6 "V_max"
    V_slope: float = 0.063  # °C⁻¹; W15:130
    V_int: float = 5.47  # –; W15:131
    m_r: tuple[float, float, float] = (10.0, 2.0, 10.0)  # V modifiers r on m, s, a; P after Eq 7
    m_k: tuple[float, float, float] = (3.0, 3.0, 2.0)  # V modifiers k on m, s, a; P after Eq 7
    a_K: float = 10.0  # pre-exponential of K (mg C cm⁻³); W15:143
    K_int: float = 3.19  # –; W15:142
    K_slope_ms: float = 0.017  # °C⁻¹, K of metabolic and available substrates; W15:136-141
    K_slope_s: float = 0.027  # °C⁻¹, K of structural substrate; W15:137,140
    kdiv_r: tuple[float, float, float] = (8.0, 2.0, 4.0)  # K divisors r on m, s, a (a also × P_s); W15:171
    kdiv_k: tuple[float, float, float] = (2.0, 4.0, 6.0)  # K divisors k on m, s, a; W15:171
    P_s_factor: float = 2.0  # P_s = factor·exp(−2√clay); W15:160-167 (2), WC22:760 (1); spec A5
    K_O: tuple[float, float] = (4.0, 4.0)  # oxidation K multipliers r, k; W15:175
    eps_r: tuple[float, float, float] = (0.55, 0.25, 0.55)  # CUE r from m, s, a; W15:146; spec A4
    eps_k: tuple[float, float, float] = (0.75, 0.35, 0.75)  # CUE k from m, s, a; W15:146; spec A4
    tau_r: tuple[float, float] = (5.2e-4, 0.3)  # μ_r = 5.2e-4·g_NPP·exp(0.3 f_met) (h⁻¹); W15:149
    tau_k: tuple[float, float] = (2.4e-4, 0.1)  # μ_k = 2.4e-4·g_NPP·exp(0.1 f_met) (h⁻¹); W15:149
    npp_clip: tuple[float, float] | None = (0.6, 1.3)  # g_NPP = clip(√(NPP/100)); WC22:924-925; spec A6
    npp_total: bool = True  # NPP = I_A + I_B (True, WC22:306) or ANPP = I_A only (False, W15)
    necromass: str = "dbt"  # "dbt" (MIMICS-DBT, spec 4.5, WC22:1029-1034) or "wieder" (W15:153-155)
    dbt: tuple[float, float, float, float, float] = (0.432, 0.098, 10.56, 29.78, 2.61)  # WC22:947-951
    f_direct: tuple[float, float] = (0.05, 0.05)  # FI: litter m → p and s → c directly; W15:187
    des_base: float = 1.5e-5  # desorption base rate (h⁻¹); P Eq 12
    des_clay: float = 1.5  # desorption = x_d·des_base·exp(−des_clay·clay); P Eq 12
    fmet: tuple[float, float] = (0.85, 0.013)  # f_met = max(0, 0.85 − 0.013·L:N); W15:96
    D0: float = 1.14e-4  # base diffusivity (cm² h⁻¹) = 1 cm² yr⁻¹; P Eq 10, Koven 2009
    v_depth_factor: bool = True  # multiply V by exp(−α_v z̄[m]) (P Eqs 6-7; spec A7)
    fixed_beta: float | None = None  # if set, β is fixed to this value (W15: 1)

    def __post_init__(self) -> None:
        if self.necromass not in ("dbt", "wieder"):
            raise ValueError(f"necromass must be 'dbt' or 'wieder', got {self.necromass!r}")

    def pack(self) -> np.ndarray:
        """The constants as a flat float vector for the compiled core (layout: ``_core.KC_*``)."""
        clip = self.npp_clip if self.npp_clip is not None else (0.0, np.inf)
        return np.array(
            [
                self.a_V,
                self.V_slope,
                self.V_int,
                *self.m_r,
                *self.m_k,
                self.a_K,
                self.K_int,
                self.K_slope_ms,
                self.K_slope_s,
                *self.kdiv_r,
                *self.kdiv_k,
                self.P_s_factor,
                *self.K_O,
                *self.eps_r,
                *self.eps_k,
                *self.tau_r,
                *self.tau_k,
                *clip,
                1.0 if self.necromass == "dbt" else 0.0,
                *self.dbt,
                *self.f_direct,
                self.des_base,
                self.des_clay,
                self.D0,
                1.0 if self.v_depth_factor else 0.0,
            ],
            dtype=np.float64,
        )

    def replace(self, **changes) -> ModelConstants:
        """A copy with some constants changed."""
        return replace(self, **changes)


#: The four forest types of the paper's calibration (P §2.5.2): evergreen and deciduous needleleaf (ENF, BNF:
#: boreal needleleaf), evergreen and deciduous broadleaf forests (EBF, DBF). The one list of the package.
FOREST_TYPES: tuple[str, ...] = ("ENF", "EBF", "DBF", "BNF")

#: λ, the weight of the ¹⁴C cost in J = J₁ + λJ₂ (P Eq 14; used once: spec A14) (–).
C14_WEIGHT = 5.0

#: The relative observation error of SOC and F14C in the paper's cost, s = 0.1 × observed (P Eqs 15–16) (–).
REL_ERROR = 0.1

#: The profiles of spec Sect. 9. "paper" is the default and the contract.
PROFILES: dict[str, ModelConstants] = {
    "paper": ModelConstants(),
    "wc22": ModelConstants(P_s_factor=1.0, eps_r=(0.5, 0.25, 0.5), eps_k=(0.35, 0.7, 0.7), v_depth_factor=False),
    "w15": ModelConstants(npp_clip=None, npp_total=False, necromass="wieder", v_depth_factor=False, fixed_beta=1.0),
}

#: The default grid of each profile (spec Sect. 9): (n_layers, thickness_cm).
PROFILE_GRIDS: dict[str, tuple[int, float]] = {"paper": (20, 5.0), "wc22": (15, 10.0), "w15": (1, 30.0)}


def get_constants(profile: str | ModelConstants = "paper") -> ModelConstants:
    """Return the constants of a named profile ("paper", "wc22", "w15") or pass a ``ModelConstants`` through.

    Raises:
        ValueError: unknown profile name.
    """
    if isinstance(profile, ModelConstants):
        return profile
    try:
        return PROFILES[str(profile).lower()]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}") from None


def constant_fields() -> tuple[str, ...]:
    """Names of all constants (for documentation tables)."""
    return tuple(f.name for f in fields(ModelConstants))
