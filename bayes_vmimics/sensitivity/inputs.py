"""The varied inputs of a design: parameter names (model parameters and ``dummy`` controls), their Table 1
ranges, and SALib's description of the box."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..parameters import PARAMETER_NAMES, TABLE1

#: Parameter-name prefix of a control parameter that does not enter the model (e.g. ``dummy``).
DUMMY_PREFIX = "dummy"


def check_names(names, *, model: bool = False) -> tuple[str, ...]:
    """Distinct names; for the model (``model=True``) each a parameter or a dummy."""
    names = tuple(str(n) for n in names)
    bad = [n for n in names if n not in PARAMETER_NAMES and not n.startswith(DUMMY_PREFIX)]
    if model and bad:
        raise ValueError(f"unknown parameter name(s) {bad}; known: {list(PARAMETER_NAMES)} and '{DUMMY_PREFIX}…'")
    if len(set(names)) != len(names):
        raise ValueError(f"parameter names must be distinct, got {list(names)}")
    if not names:
        raise ValueError("at least one parameter is needed")
    return names


def default_bounds(names: Sequence[str]) -> np.ndarray:
    """Table 1 ranges of ``names`` (a dummy gets [0, 1]), shape (n, 2) (parameter units).

    Raises:
        ValueError: a name that is neither a model parameter nor a dummy (give its bounds).
    """
    bad = [n for n in names if n not in PARAMETER_NAMES and not n.startswith(DUMMY_PREFIX)]
    if bad:
        raise ValueError(f"no Table 1 range for {bad}: give bounds")
    return np.array([TABLE1[n][:2] if n in PARAMETER_NAMES else (0.0, 1.0) for n in names], float)


def salib_problem(names, bounds) -> dict:
    """SALib's problem dict of ``names`` on the box ``bounds`` ((n, 2), parameter units)."""
    return {"num_vars": len(names), "names": list(names), "bounds": np.asarray(bounds, float).tolist()}


__all__ = ["DUMMY_PREFIX", "check_names", "default_bounds", "salib_problem"]
