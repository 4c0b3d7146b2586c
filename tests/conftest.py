"""Shared fixtures: the raw data folder (../shared/data by default, or $BAYES_VMIMICS_DATA)."""

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
