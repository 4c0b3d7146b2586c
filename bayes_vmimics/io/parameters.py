"""The paper's published parameter tables (Wang et al. 2021, Tables 1–3), read from the raw-data folder."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..parameters import PARAMETER_NAMES
from .datadir import data_file

PUBLISHED_PARAMETERS_FILE = "wang2021_published_parameters.csv"
_COLUMNS = {"x_K": "x_k"}


def load_published_parameters(data_dir=None) -> pd.DataFrame:
    """The table ``wang2021_published_parameters.csv`` (rows: T1 bounds and defaults, T2 sites, T3 forest
    types; columns: the seven parameters in their Table 1 units, α in m⁻¹).

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).
    """
    path = data_file(PUBLISHED_PARAMETERS_FILE, data_dir)
    tab = pd.read_csv(path)
    missing = [c for c in ("table", "group", *(_COLUMNS.get(n, n) for n in PARAMETER_NAMES)) if c not in tab]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    return tab


def table3_parameters(forest_type: str, data_dir=None) -> np.ndarray:
    """The paper's calibrated parameters of a forest type (P Table 3), in ``PARAMETER_NAMES`` order.

    Args:
        forest_type: "ENF", "EBF", "DBF" or "BNF" (–).
        data_dir: raw-data folder holding ``wang2021_published_parameters.csv``, or None for
            ``$BAYES_VMIMICS_DATA`` (path).

    Returns:
        θ, shape (7,) (parameter units; α in m⁻¹).

    Raises:
        ValueError: a forest type not in the table.
    """
    tab = load_published_parameters(data_dir)
    row = tab[(tab["table"] == "T3") & (tab["group"] == forest_type)]
    if row.empty:
        known = sorted(tab.loc[tab["table"] == "T3", "group"])
        raise ValueError(f"forest type {forest_type!r} is not in Table 3 of the paper; known: {known}")
    return np.array([float(row.iloc[0][_COLUMNS.get(n, n)]) for n in PARAMETER_NAMES])


__all__ = ["PUBLISHED_PARAMETERS_FILE", "load_published_parameters", "table3_parameters"]
