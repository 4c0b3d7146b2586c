"""The commands as library functions: one module per command, each a frozen options dataclass and a function
``run_<command>(options, *, scheduler=None, progress=None)`` that returns a small result dataclass. The command
line (:mod:`..cli`) only turns its arguments into the options and calls these; scripts and notebooks call them
directly (docs/extending.md).

Example:
    >>> from bayes_vmimics.workflows import CalibrateOptions, run_calibrate
    >>> result = run_calibrate(CalibrateOptions(synthetic=True, quick=True, out="results/twin"))  # doctest: +SKIP
    >>> result.verdict  # doctest: +SKIP
"""

from .calibrate import CalibrateOptions, CalibrateResult, run_calibrate
from .common import Progress, StudyOptions
from .hierarchical import HierarchicalOptions, HierarchicalResult, run_hierarchical
from .optimize import OptimizeOptions, OptimizeResult, run_optimize
from .prior_predictive import PriorPredictiveOptions, PriorPredictiveResult, run_prior_predictive
from .summarise import SummariseOptions, SummariseResult, run_summarise
from .validate import ValidateOptions, ValidateResult, run_validate

__all__ = [
    "CalibrateOptions",
    "CalibrateResult",
    "HierarchicalOptions",
    "HierarchicalResult",
    "OptimizeOptions",
    "OptimizeResult",
    "PriorPredictiveOptions",
    "PriorPredictiveResult",
    "Progress",
    "StudyOptions",
    "SummariseOptions",
    "SummariseResult",
    "ValidateOptions",
    "ValidateResult",
    "run_calibrate",
    "run_hierarchical",
    "run_optimize",
    "run_prior_predictive",
    "run_summarise",
    "run_validate",
]
