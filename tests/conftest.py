"""Shared fixtures: the raw data folder (``$BAYES_VMIMICS_DATA``, else ``../shared/data`` beside the repository)
and tiny saved results (built once per session) for the notebook and figure tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ.get("BAYES_VMIMICS_DATA", DEFAULT_DATA))
    if not path.is_dir():
        pytest.skip(f"raw data folder {path} not present (set BAYES_VMIMICS_DATA)")
    return path


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """Folders of tiny saved results (:mod:`tiny_runs`): ``calibrate`` (a synthetic ``calibrate`` run),
    ``hierarchical`` (a two-stage run on two synthetic sites, with its site predictive) and ``validation`` (its
    held-out validation on two more). About 15 s; not converged."""
    from tiny_runs import make_tiny_runs

    os.environ.setdefault("MPLBACKEND", "Agg")
    return make_tiny_runs(tmp_path_factory.mktemp("tiny_runs"))
