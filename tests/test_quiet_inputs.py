"""Inputs that once gave results that look right and are not ("the last quiet results"): a site lost to a missing
covariate silently replaced by another, a header-only site table blamed on another file, observations the
likelihood cannot use (inf, NaN, non-positive, overlapping), F14C whose ¹⁴C term was silently off, and sampling
years far past the atmospheric record. Each is now a clear error or a note that names the site."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_vmimics.atmosphere import ATMOSPHERE_HOLD_YEARS, AtmosphereHeldWarning, AtmosphericRecord
from bayes_vmimics.grid import DepthGrid
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.site_observations import SiteObservations, radiocarbon_available
from bayes_vmimics.synthetic import make_synthetic_sites

SITE_FILE = "he2016_forest_layers.csv"
GRID = DepthGrid.uniform(6, 10.0)


# ----------------------------------------------------------------------------- a copy of the data folder
@pytest.fixture
def data_copy(data_dir, tmp_path) -> Path:
    """The few raw files a DBF study reads, copied to a temporary folder the test may edit."""
    out = tmp_path / "data"
    out.mkdir()
    for p in [data_dir / SITE_FILE, *data_dir.glob("atm14c_*")]:
        shutil.copy(p, out / p.name)
    return out


def _quick_dbf():
    from bayes_vmimics.config import load_config

    return load_config("study_quick").replace(study={"mode": "data"}, data={"forest_type": "DBF"})


def _blank_mat(folder: Path, profile_id: int) -> None:
    path = folder / SITE_FILE
    raw = pd.read_csv(path)
    assert (raw["profile_id"] == profile_id).any()
    raw.loc[raw["profile_id"] == profile_id, "mat_c"] = np.nan
    raw.to_csv(path, index=False)


# ----------------------------------------------------------------------------- 1. a lost site is not swapped
def test_a_site_lost_to_a_missing_covariate_is_named_and_not_replaced(data_dir, data_copy):
    from bayes_vmimics.study import build_study

    cfg = _quick_dbf()
    before = build_study(cfg, data_dir)
    assert len(before.problem.site_ids) == 6 and "he2016_206" in before.problem.site_ids
    assert not any("left out" in n for n in before.notes)

    _blank_mat(data_copy, 206)
    after = build_study(cfg, data_copy)
    # the quick subset is a fixed choice: he2016_206 is lost, and no other site (he2016_46) takes its place
    assert after.problem.site_ids == [s for s in before.problem.site_ids if s != "he2016_206"]
    lost = [n for n in after.notes if "he2016_206" in n]
    assert len(lost) == 1
    assert "missing MAT or MAP" in lost[0] and "no other site takes its place" in lost[0]
    assert "max_sites = 6 keeps 5 site(s)" in lost[0]
    # the run description, which the CLI prints at the start of every run, says it
    assert "note: site he2016_206" in after.describe()


def test_a_lost_site_is_a_warning_of_the_python_api(data_copy):
    from bayes_vmimics.io.sites import build_site_tables
    from bayes_vmimics.study import real_site_observations

    _blank_mat(data_copy, 206)
    tables = build_site_tables(data_copy)
    with pytest.warns(UserWarning, match=r"he2016_206 .*left out: missing MAT or MAP"):
        sites = real_site_observations(tables, _quick_dbf())
    assert "he2016_206" not in [s.site_id for s in sites] and len(sites) == 5


def test_a_selection_lost_entirely_names_its_sites(data_copy):
    from bayes_vmimics.io.sites import build_site_tables
    from bayes_vmimics.study import select_sites

    _blank_mat(data_copy, 206)
    tables = build_site_tables(data_copy)
    with pytest.raises(ValueError, match=r"no site selected.*he2016_206 .*missing MAT or MAP"):
        select_sites(tables, _quick_dbf().replace(data={"max_sites": 1}))


# ----------------------------------------------------------------------------- 2. a header-only site table
def test_a_header_only_site_table_is_named(data_copy, capsys):
    from bayes_vmimics.cli import main
    from bayes_vmimics.study import build_study

    path = data_copy / SITE_FILE
    pd.read_csv(path).head(0).to_csv(path, index=False)
    with pytest.raises(ValueError, match="only its header line") as exc:
        build_study(_quick_dbf(), data_copy)
    message = str(exc.value)
    assert SITE_FILE in message and "profile_exclusions" not in message and "exclusions=False" not in message
    # the command-line user reads the same words
    rc = main(["calibrate", "--quick", "--data-dir", str(data_copy), "--forest-type", "DBF", "--out", str(data_copy)])
    err = capsys.readouterr().err
    assert rc != 0 and SITE_FILE in err and "only its header line" in err
    assert "profile_exclusions" not in err and "exclusions=False" not in err


def test_a_header_only_site_table_is_named_by_the_loader(data_copy):
    from bayes_vmimics.io.sites import build_site_tables

    path = data_copy / SITE_FILE
    pd.read_csv(path).head(0).to_csv(path, index=False)
    with pytest.raises(ValueError, match="only a header line") as exc:
        build_site_tables(data_copy)
    assert SITE_FILE in str(exc.value) and "profile_exclusions" not in str(exc.value)


# ----------------------------------------------------------------------------- 3. observations
@pytest.fixture(scope="module")
def site():
    return make_synthetic_sites(1, rng=np.random.default_rng(5), interval_edges_cm=(0, 10, 30, 60), grid=GRID)[0]


def _with(site, **change) -> SiteObservations:
    values = dict(
        site_id=site.site_id,
        forcing=site.forcing,
        top_cm=site.top_cm,
        bottom_cm=site.bottom_cm,
        soc_mg_cm3=site.soc_mg_cm3,
        bd_g_cm3=site.bd_g_cm3,
        f14c=site.f14c,
        zone=site.zone,
        sample_year=site.sample_year,
    )
    values.update(change)
    return SiteObservations(**values)


@pytest.mark.parametrize("value", [np.inf, np.nan, -3.0, 0.0])
def test_a_bad_soc_value_names_the_site_layer_and_value(site, value):
    soc = site.soc_mg_cm3.copy()
    soc[1] = value
    with pytest.raises(ValueError, match="observed SOC") as exc:
        _with(site, soc_mg_cm3=soc)
    text = str(exc.value)
    assert site.site_id in text and "layer 1 (10–30 cm)" in text and repr(float(value)) in text


@pytest.mark.parametrize("value", [np.inf, -0.5, 0.0])
def test_a_bad_f14c_value_names_the_site_layer_and_value(site, value):
    f14c = np.array([1.1, value, np.nan])
    with pytest.raises(ValueError, match="observed F14C") as exc:
        _with(site, f14c=f14c, zone="NH2", sample_year=2000.0)
    assert site.site_id in str(exc.value) and "layer 1 (10–30 cm)" in str(exc.value)
    assert repr(float(value)) in str(exc.value)
    _with(site, f14c=np.array([1.1, np.nan, np.nan]), zone="NH2", sample_year=2000.0)  # NaN: not measured


def test_bad_bulk_density_and_depths_name_the_layer(site):
    with pytest.raises(ValueError, match=r"bulk density .*layer 2 \(30–60 cm\): inf"):
        _with(site, bd_g_cm3=np.array([1.0, 1.1, np.inf]))
    with pytest.raises(ValueError, match=r"layer 0 \(0–10 cm\) and layer 1 \(5–30 cm\) overlap"):
        _with(site, top_cm=np.array([0.0, 5.0, 30.0]))
    with pytest.raises(ValueError, match=r"layer 1 \(30–30 cm\) has its top at or below its bottom"):
        _with(site, top_cm=np.array([0.0, 30.0, 30.0]), bottom_cm=np.array([10.0, 30.0, 60.0]))
    with pytest.raises(ValueError, match="non-finite depths"):
        _with(site, bottom_cm=np.array([10.0, np.nan, 60.0]))
    with pytest.raises(ValueError, match="above the mineral-soil surface"):
        _with(site, top_cm=np.array([-5.0, 10.0, 30.0]))
    # unordered but disjoint intervals are fine
    _with(site, top_cm=site.top_cm[::-1], bottom_cm=site.bottom_cm[::-1], soc_mg_cm3=site.soc_mg_cm3[::-1])


# ----------------------------------------------------------------------------- 3. the ¹⁴C term
needs_c14 = pytest.mark.skipif(not radiocarbon_available(), reason="needs bayes_vmimics.radiocarbon")


@pytest.fixture(scope="module")
def record():
    years = np.arange(1950, 2011)
    return AtmosphericRecord("test", years, np.ones((5, years.size)))


def _c14(site, **change):
    return _with(site, **{"f14c": np.array([1.1, 1.0, np.nan]), "zone": "NH2", "sample_year": 2000.0, **change})


@needs_c14
def test_f14c_without_an_atmospheric_record_is_an_error(site):
    s = _c14(site)
    with pytest.raises(ValueError, match="no atmospheric ¹⁴C record") as exc:
        CalibrationProblem([s], grid=GRID)
    assert s.site_id in str(exc.value) and "use_c14=False" in str(exc.value)
    assert not CalibrationProblem([s], grid=GRID, use_c14=False).c14_enabled  # off on purpose


@needs_c14
@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"sample_year": 2100.0}, "sampling year 2100 is more than 5 years after the end .*'test' \\(2010\\)"),
        ({"zone": None}, "no atmospheric zone"),
        ({"sample_year": None}, "no sampling year"),
    ],
)
def test_f14c_that_cannot_enter_the_c14_term_is_an_error(site, record, change, expect):
    s = _c14(site, **change)
    with pytest.raises(ValueError, match=expect) as exc:
        CalibrationProblem([s], grid=GRID, atmosphere=record)
    assert s.site_id in str(exc.value)


@needs_c14
def test_a_zone_missing_from_the_record_is_an_error(site):
    years = np.arange(1950, 2011)
    nh = AtmosphericRecord("nh only", years, {"NH1": np.ones(years.size)})
    with pytest.raises(ValueError, match="zone 'NH2' not in the atmospheric record"):
        CalibrationProblem([_c14(site)], grid=GRID, atmosphere=nh)


@needs_c14
def test_a_sampling_year_just_past_the_record_is_held_with_a_warning(site, record):
    year = 2010 + ATMOSPHERE_HOLD_YEARS - 2
    s = _c14(site, sample_year=float(year))
    with pytest.warns(AtmosphereHeldWarning, match=rf"{s.site_id} \({year}\).*held at its 2010 value"):
        pb = CalibrationProblem([s], grid=GRID, atmosphere=record)
    assert pb.c14_enabled and pb.n_c14 == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CalibrationProblem([_c14(site, sample_year=2010.5)], grid=GRID, atmosphere=record)  # inside the record


@needs_c14
def test_real_sites_sampled_after_the_record_are_a_note_not_a_warning(data_dir):
    """Two EBF sites were sampled in 2011 (record to 2010): the study notes it once; no warning escapes (warnings
    are errors here)."""
    from bayes_vmimics.config import load_config
    from bayes_vmimics.study import build_study

    cfg = load_config("study_quick").replace(
        study={"mode": "data"},
        model={"atmosphere": "hua2013"},
        data={"forest_type": "EBF", "split": "all", "max_sites": 0, "sources": ["he2016"]},
    )
    st = build_study(cfg, data_dir)
    assert st.problem.c14_enabled
    assert any("he2016_222" in n and "held at its 2010 value" in n for n in st.notes)


def test_the_default_record_covers_every_real_site_sampled_to_2020(data_dir):
    """ISRaD profiles were sampled up to 2020: under the default record (Hua et al. 2021, to 2019) every real
    site of every forest type enters the ¹⁴C term; under the paper's record (to 2010) a site sampled in 2018 is
    a clear error naming it."""
    from bayes_vmimics.config import load_config
    from bayes_vmimics.study import build_study

    cfg = load_config("study_quick").replace(study={"mode": "data"}, data={"split": "all", "max_sites": 0})
    assert cfg.model.atmosphere == "hua2021" and load_config("study_paper").model.atmosphere == "hua2013"
    for ft in ("ENF", "EBF", "DBF", "BNF"):
        st = build_study(cfg.replace(data={"forest_type": ft}), data_dir)
        assert st.problem.c14_enabled
    with pytest.raises(ValueError, match=r"sampling year 20(1[6-9]|20) is more than 5 years after"):
        build_study(cfg.replace(data={"forest_type": "EBF"}, model={"atmosphere": "hua2013"}), data_dir)
