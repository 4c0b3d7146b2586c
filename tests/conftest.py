"""Shared fixtures: the raw data folder (``$BAYES_VMIMICS_DATA`` alone), its atmospheric ¹⁴C record, two synthetic
atmospheric records, three synthetic sites as a calibration problem, and tiny saved results (built once per
session) for the notebook and figure tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: years of the synthetic atmospheric records (the Hua et al. 2013 span)
ATMOSPHERE_YEARS = np.arange(1950, 2011)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The raw data folder named by ``$BAYES_VMIMICS_DATA``; tests that need it skip when it is unset or absent."""
    value = os.environ.get("BAYES_VMIMICS_DATA")
    if not value:
        pytest.skip("no raw data folder: set BAYES_VMIMICS_DATA")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"raw data folder {path} not present (BAYES_VMIMICS_DATA)")
    return path


@pytest.fixture(scope="session")
def atm_dir(data_dir) -> Path:
    """The raw data folder (``data_dir``) with the atm14c_*.csv files."""
    if not (data_dir / "atm14c_hua2013_annual.csv").is_file():
        pytest.skip(f"raw data folder {data_dir} has no atm14c_*.csv files")
    return data_dir


@pytest.fixture(scope="session")
def bomb_atmosphere():
    """A synthetic bomb curve, the same F14C in every zone, 1950–2010: 0.975 to 1955, a linear rise to 1.9 in 1963,
    then relaxation towards 1 (time constant 16 yr)."""
    from bayes_vmimics.atmosphere import ZONES, AtmosphericRecord

    y = ATMOSPHERE_YEARS.astype(float)
    f = np.where(y < 1955, 0.975, 0.975 + (1.9 - 0.975) * (y - 1955) / 8.0)
    f = np.where(y > 1963, 1.0 + 0.9 * np.exp(-(y - 1963) / 16.0), f)
    return AtmosphericRecord("test", ATMOSPHERE_YEARS, np.tile(f, (len(ZONES), 1)))


@pytest.fixture(scope="session")
def error_model_sites(bomb_atmosphere):
    """Two synthetic sites with SOC and F14C in seven intervals to 60 cm under :func:`bomb_atmosphere` (30 % noise,
    seed 11, NH1, sampled 2003.4): the cases of the error-model tests."""
    from bayes_vmimics.synthetic import make_synthetic_sites

    return make_synthetic_sites(
        2,
        rng=np.random.default_rng(11),
        noise=0.3,
        interval_edges_cm=(0.0, 2.0, 5.0, 10.0, 20.0, 35.0, 60.0),
        with_c14=True,
        atmosphere=bomb_atmosphere,
        zone="NH1",
        sample_year=2003.4,
    )


@pytest.fixture(scope="session")
def unit_atmosphere():
    """A flat atmospheric record: F14C = 1 in every zone, 1950–2010."""
    from bayes_vmimics.atmosphere import ZONES, AtmosphericRecord

    return AtmosphericRecord("test", ATMOSPHERE_YEARS, np.ones((len(ZONES), ATMOSPHERE_YEARS.size)))


@pytest.fixture(scope="session")
def three_site_problem():
    """Three synthetic sites (the generating parameters, 10 % noise, seed 4) as a SOC-only calibration problem
    (no warm starts: every solve is deterministic, so sharing it between tests changes no result)."""
    from bayes_vmimics.likelihood import CalibrationProblem
    from bayes_vmimics.synthetic import make_synthetic_sites

    return CalibrationProblem(make_synthetic_sites(3, rng=np.random.default_rng(4)), use_c14=False)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """Folders of tiny saved results (:mod:`tiny_runs`): ``calibrate`` (a synthetic ``calibrate`` run),
    ``hierarchical`` (a two-stage run on two synthetic sites, with its site predictive) and ``validation`` (its
    held-out validation on two more). About 15 s; not converged."""
    from tiny_runs import make_tiny_runs

    os.environ.setdefault("MPLBACKEND", "Agg")
    return make_tiny_runs(tmp_path_factory.mktemp("tiny_runs"))
