"""bayes_vmimics: the vertically resolved MIMICS soil carbon model (Wang et al. 2021) with radiocarbon and
Bayesian calibration.

Units inside the package: mg C cm⁻³, hours, cm (α in m⁻¹); inputs in g C m⁻² yr⁻¹ are converted at the
boundary (see ``model/README.md``).
"""

from .atmosphere import ZONES, AtmosphericRecord, d14c_to_f14c, f14c_to_d14c, hua2013_zone
from .constants import C14_POOLS, POOLS, PROFILES, SOC_POOLS, ModelConstants, get_constants
from .forcing import SiteForcing
from .grid import DepthGrid
from .model import Rates, SiteModel, compute_rates, dcdt, default_grid, jacobian
from .observation import ObservationOperator, required_grid
from .parameters import PARAMETER_NAMES, TABLE1, Parameters
from .steady_state import (
    ConvergenceWarning,
    SolverOptions,
    SteadyState,
    SteadyStateError,
    solve_site,
    solve_steady_state,
)

__version__ = "0.1.0"

__all__ = [
    "AtmosphericRecord",
    "C14_POOLS",
    "ConvergenceWarning",
    "DepthGrid",
    "ModelConstants",
    "ObservationOperator",
    "PARAMETER_NAMES",
    "POOLS",
    "PROFILES",
    "Parameters",
    "Rates",
    "SOC_POOLS",
    "SiteForcing",
    "SiteModel",
    "SolverOptions",
    "SteadyState",
    "SteadyStateError",
    "TABLE1",
    "ZONES",
    "compute_rates",
    "d14c_to_f14c",
    "dcdt",
    "default_grid",
    "f14c_to_d14c",
    "get_constants",
    "hua2013_zone",
    "jacobian",
    "required_grid",
    "solve_site",
    "solve_steady_state",
]
