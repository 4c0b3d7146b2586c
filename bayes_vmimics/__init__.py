"""bayes_vmimics: the vertically resolved MIMICS soil carbon model (Wang et al. 2021) with radiocarbon and
Bayesian calibration.

Units inside the package: mg C cm⁻³, hours, cm (α in m⁻¹); inputs in g C m⁻² yr⁻¹ are converted at the
boundary (see ``model/README.md``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: Public name → the submodule defining it. The submodules load on first use (PEP 562), so that
#: ``import bayes_vmimics.cli`` does not compile the model first (a Ctrl-C then meets the CLI's handler).
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("ZONES", "AtmosphericRecord", "d14c_to_f14c", "f14c_to_d14c", "hua2013_zone"), "atmosphere"),
    **dict.fromkeys(("C14_POOLS", "POOLS", "PROFILES", "SOC_POOLS", "ModelConstants", "get_constants"), "constants"),
    "SiteForcing": "forcing",
    "DepthGrid": "grid",
    **dict.fromkeys(("Rates", "SiteModel", "compute_rates", "dcdt", "default_grid", "jacobian"), "model"),
    **dict.fromkeys(("ObservationOperator", "required_grid"), "observation"),
    **dict.fromkeys(("PARAMETER_NAMES", "TABLE1", "Parameters"), "parameters"),
    "SolverStatus": "solver_status",
    **dict.fromkeys(
        (
            "ConvergenceWarning",
            "SolverOptions",
            "SteadyState",
            "SteadyStateError",
            "solve_site",
            "solve_steady_state",
        ),
        "steady_state",
    ),
}

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ loads the names
    from .atmosphere import ZONES, AtmosphericRecord, d14c_to_f14c, f14c_to_d14c, hua2013_zone
    from .constants import C14_POOLS, POOLS, PROFILES, SOC_POOLS, ModelConstants, get_constants
    from .forcing import SiteForcing
    from .grid import DepthGrid
    from .model import Rates, SiteModel, compute_rates, dcdt, default_grid, jacobian
    from .observation import ObservationOperator, required_grid
    from .parameters import PARAMETER_NAMES, TABLE1, Parameters
    from .solver_status import SolverStatus
    from .steady_state import (
        ConvergenceWarning,
        SolverOptions,
        SteadyState,
        SteadyStateError,
        solve_site,
        solve_steady_state,
    )


def __getattr__(name: str):
    """Load a public name, or a submodule (``bayes_vmimics.likelihood``), on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
    "SolverStatus",
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
