"""Atmospheric 14C: conversions, zone rule, record look-ups and the loaders (spec Sect. 11, A19)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_vmimics.atmosphere import (
    ZONES,
    AtmosphericRecord,
    d14c_to_f14c,
    f14c_to_d14c,
    hua2013_zone,
)
from bayes_vmimics.io.atmosphere import (
    GRAVEN2017_ZONE_BANDS,
    load_atmosphere,
    load_graven2017,
    load_hua2013,
    load_hua2021,
)
from bayes_vmimics.io.datadir import DataFolderError


# ---------------------------------------------------------------- Δ14C ↔ F14C (PROVENANCE "Conversions")
def test_d14c_to_f14c_provenance_check_value():
    # Hua 2013 NH1 at 2009.53: Δ = 50.4 ‰ → F = 1.05799 (tabulated 1.058).
    assert d14c_to_f14c(50.4, 2009.53) == pytest.approx(1.05799, abs=5e-6)
    assert isinstance(d14c_to_f14c(50.4, 2009.53), float)


def test_conversions_roundtrip_and_vectorised():
    d = np.array([-25.8, 0.0, 900.0, 50.4])
    y = np.array([1950.5, 1950.0, 1964.5, 2009.53])
    f = d14c_to_f14c(d, y)
    assert f.shape == (4,)
    assert f[1] == 1.0  # Δ = 0 in 1950 is F = 1
    np.testing.assert_allclose(f14c_to_d14c(f, y), d, atol=1e-10)
    # Scalar year broadcasts over an array.
    np.testing.assert_allclose(d14c_to_f14c(d, 2000.0), (d / 1000 + 1) * np.exp(50 / 8267))


def test_conversions_reject_nonfinite_year():
    with pytest.raises(ValueError, match="nan"):
        d14c_to_f14c(10.0, np.nan)
    with pytest.raises(ValueError, match="year"):
        f14c_to_d14c([1.0, 1.1], [2000.0, np.inf])


# ---------------------------------------------------------------- zone rule (spec A19)
@pytest.mark.parametrize(
    ("site", "lat", "lon", "zone"),
    [
        ("Harvard Forest", 42.5, -72.2, "NH1"),
        ("Howland", 45.2, -68.7, "NH1"),
        ("Bartlett", 44.0647, -71.2880, "NH1"),
        ("MI-coarse UMBS", 45.5598, -84.7138, "NH1"),
        ("Ozark MOFLUX", 38.7441, -92.2, "NH2"),
        ("Doi Inthanon, Thailand", 18.6, 98.5, "NH3"),
        ("Barro Colorado, Panama", 9.15, -79.85, "NH3"),
        ("Manaus, Amazon", -3.1, -60.0, "SH3"),
        ("Galapagos", -0.9, -89.6, "SH3"),
        ("Muna, Sulawesi (Hua 2012: NH air)", -4.9, 122.5, "NH3"),
        ("Kissoko, Congo", -4.8, 11.9, "NH3"),
        ("Darwin, Australia", -12.4, 130.8, "SH3"),
        ("Misiones, Argentina", -27.0, -55.0, "SH12"),
        ("Hobart, Tasmania", -42.9, 147.3, "SH12"),
    ],
)
def test_hua2013_zone_sites(site, lat, lon, zone):
    assert hua2013_zone(lat, lon) == zone, site


@pytest.mark.parametrize(
    ("lat", "lon", "zone"),
    [
        (90.0, 0.0, "NH1"),
        (40.0, 0.0, "NH1"),
        (39.999, 0.0, "NH2"),
        (23.44, 0.0, "NH2"),
        (23.43, 0.0, "NH3"),
        (0.0, -150.0, "NH3"),
        (-0.01, -150.0, "SH3"),
        (-9.99, 20.0, "NH3"),
        (-10.0, 20.0, "SH3"),
        (-5.0, 9.99, "SH3"),
        (-5.0, 150.0, "NH3"),
        (-5.0, 150.01, "SH3"),
        (-23.43, 0.0, "SH3"),
        (-23.44, 0.0, "SH12"),
        (-90.0, 0.0, "SH12"),
    ],
)
def test_hua2013_zone_boundaries(lat, lon, zone):
    assert hua2013_zone(lat, lon) == zone


def test_hua2013_zone_wraps_longitude():
    assert hua2013_zone(-5.0, 120.0 - 360.0) == hua2013_zone(-5.0, 120.0) == "NH3"
    assert hua2013_zone(-5.0, 190.0) == hua2013_zone(-5.0, -170.0) == "SH3"


@pytest.mark.parametrize("lat", [90.5, -91.0, np.nan, np.inf])
def test_hua2013_zone_bad_latitude(lat):
    with pytest.raises(ValueError, match="latitude"):
        hua2013_zone(lat, 0.0)


def test_hua2013_zone_bad_longitude_and_type():
    with pytest.raises(ValueError, match="longitude"):
        hua2013_zone(10.0, np.nan)
    with pytest.raises(ValueError, match="'north'"):
        hua2013_zone("north", 0.0)


# ---------------------------------------------------------------- AtmosphericRecord (synthetic)
@pytest.fixture
def record() -> AtmosphericRecord:
    years = np.arange(1950, 1955)
    values = np.vstack([1.0 + 0.1 * k + 0.01 * np.arange(5) for k in range(5)])
    return AtmosphericRecord("toy", years, values, notes="synthetic")


def test_record_lookup_holds_ends(record):
    assert record.f14c("NH1", 1950) == 1.0
    assert record.f14c("NH2", 1952) == pytest.approx(1.12)
    np.testing.assert_allclose(record.f14c("NH1", [1900, 1949, 1954, 2030]), [1.0, 1.0, 1.04, 1.04])
    # Decimal years are floored to the calendar year.
    assert record.f14c("NH1", 1952.99) == record.f14c("NH1", 1952)
    assert record.f14c("SH1-2", 1953) == record.f14c("SH12", 1953) == pytest.approx(1.33)
    assert record.f14c("NH1", np.array([[1951, 1952]])).shape == (1, 2)


def test_record_strict_raises_outside(record):
    with pytest.raises(ValueError, match=r"\[1949\.0\].*1950–1954.*held"):
        record.f14c("NH1", 1949, strict=True)
    with pytest.raises(ValueError, match="2030"):
        record.f14c("NH1", [1951, 2030], strict=True)
    assert record.f14c("NH1", 1954, strict=True) == pytest.approx(1.04)


def test_litter_lags_one_year(record):
    # P §2.2: litter of year Y carries the atmosphere of Y − 1.
    years = np.arange(1950, 1957)
    np.testing.assert_array_equal(record.litter_f14c("NH3", years), record.f14c("NH3", years - 1))
    assert record.litter_f14c("NH3", 1953) == record.f14c("NH3", 1952)
    with pytest.raises(ValueError, match="1949"):
        record.litter_f14c("NH3", 1950, strict=True)


def test_annual_series(record):
    y, f = record.annual_series("SH3", 1948, 1956)
    np.testing.assert_array_equal(y, np.arange(1948, 1957))
    np.testing.assert_allclose(f, [1.4, 1.4, 1.4, 1.41, 1.42, 1.43, 1.44, 1.44, 1.44])
    with pytest.raises(ValueError, match="before first_year"):
        record.annual_series("SH3", 1960, 1950)
    with pytest.raises(ValueError, match="1950.5"):
        record.annual_series("SH3", 1950.5, 1952)


def test_record_bad_zone_and_year(record):
    with pytest.raises(ValueError, match="'NH4'"):
        record.f14c("NH4", 1950)
    with pytest.raises(ValueError, match="finite"):
        record.f14c("NH1", np.nan)


def test_record_from_dict_and_validation():
    years = [2000, 2001]
    r = AtmosphericRecord("d", years, {"NH1": [1.1, 1.0], "SH1-2": [1.2, 1.1]})
    assert r.zones == ("NH1", "SH12")
    assert r.f14c("SH12", 2001) == pytest.approx(1.1)
    with pytest.raises(ValueError, match="not in record"):
        r.f14c("NH2", 2000)
    with pytest.raises(ValueError, match="consecutive"):
        AtmosphericRecord("x", [2000, 2002], np.ones((5, 2)))
    with pytest.raises(ValueError, match="shape"):
        AtmosphericRecord("x", [2000, 2001], np.ones((5, 3)))
    with pytest.raises(ValueError, match="zone SH12 year 2001"):
        AtmosphericRecord("x", [2000, 2001], np.array([[1, 1], [1, 1], [1, 1], [1, np.nan], [1, 1]]))
    with pytest.raises(ValueError, match="'XX'"):
        AtmosphericRecord("x", [2000], np.ones((1, 1)), zones=("XX",))
    r = AtmosphericRecord("x", [2000], np.ones((5, 1)))
    with pytest.raises(AttributeError):
        r.name = "y"
    with pytest.raises(ValueError):
        r.values[0, 0] = 2.0


# ---------------------------------------------------------------- loaders (real data)
def test_hua2013_values_and_gap_fills(atm_dir):
    r = load_hua2013(atm_dir)
    assert (r.first_year, r.last_year) == (1950, 2010)
    # F14C in 1950 (spec Sect. 11).
    np.testing.assert_allclose([r.f14c(z, 1950) for z in ZONES], [0.9743, 0.9779, 0.9730, 0.9755, 0.9730], atol=1e-9)
    # Gaps from Hua 2021 (PROVENANCE file 3: NH1 in 2010 = 1.04701), recorded in notes.
    assert r.f14c("NH1", 2010) == pytest.approx(1.04701)
    assert r.f14c("SH12", 1952) == pytest.approx(0.97431)
    assert "NH1 2010 = 1.04701" in r.notes and "SH12 1952 = 0.97431" in r.notes
    # P §2.5.3: 1950 level before 1950, 2010 level after 2010; litter lags a year.
    assert r.f14c("NH1", 1900) == r.f14c("NH1", 1950)
    assert r.f14c("SH3", 2015) == r.f14c("SH3", 2010) == pytest.approx(1.057)
    assert r.litter_f14c("NH1", 1964) == r.f14c("NH1", 1963)
    # Bomb peak: NH1 1963–64 highest.
    assert int(r.years[np.argmax(r.values[0])]) in (1963, 1964)


def test_hua2013_options(atm_dir):
    r = load_hua2013(atm_dir, last_year=None)
    assert r.last_year == 2011 and r.f14c("SH12", 2011) == pytest.approx(1.05087)
    r = load_hua2013(atm_dir, fill="interpolate")
    assert r.f14c("SH12", 1952) == pytest.approx(0.5 * (0.9756 + 0.974))
    assert r.f14c("NH1", 2010) == r.f14c("NH1", 2009)
    assert "interpolation" in r.notes
    with pytest.raises(ValueError, match="'nearest'"):
        load_hua2013(atm_dir, fill="nearest")


def test_hua2013_annual_is_calendar_mean_of_table_s3(atm_dir):
    z = pd.read_csv(atm_dir / "atm14c_hua2013_zones.csv")
    z["year"] = np.floor(z["year_ad"]).astype(int)
    means = z.groupby(["zone", "year"])["f14c"].mean()
    r = load_hua2013(atm_dir, last_year=None)
    for zone in ZONES:
        m = means[zone]
        np.testing.assert_allclose(r.f14c(zone, m.index.to_numpy()), m.to_numpy(), atol=1e-5)


def test_hua2021_and_graven2017(atm_dir):
    h = load_hua2021(atm_dir)
    assert (h.first_year, h.last_year) == (1950, 2019)
    assert h.f14c("NH1", 2010) == pytest.approx(1.04701)
    g = load_graven2017(atm_dir)
    assert (g.first_year, g.last_year) == (1850, 2015)
    raw = pd.read_csv(atm_dir / "atm14c_graven2017_annual.csv")
    for zone, band in GRAVEN2017_ZONE_BANDS.items():
        np.testing.assert_array_equal(g.values[ZONES.index(zone)], raw[f"f14c_{band}"].to_numpy())
    # The file's F14C follows the PROVENANCE formula with y_obs = year_ad.
    np.testing.assert_allclose(d14c_to_f14c(raw["d14c_NH"], raw["year_ad"]), raw["f14c_NH"], atol=1e-5)
    assert g.f14c("NH1", 1960) == g.f14c("NH2", 1960) != g.f14c("SH12", 1960)
    assert "NH3->Tropics" in g.notes


def test_load_atmosphere_dispatch_and_env(monkeypatch, atm_dir):
    monkeypatch.setenv("BAYES_VMIMICS_DATA", str(atm_dir))
    assert load_atmosphere().name == "hua2013"
    assert load_atmosphere("hua2021").last_year == 2019
    assert load_atmosphere("hua2013", last_year=2005).last_year == 2005
    with pytest.raises(ValueError, match="'intcal'"):
        load_atmosphere("intcal")


def test_loader_missing_folder(tmp_path):
    with pytest.raises(DataFolderError, match="atm14c_hua2013_annual.csv"):
        load_hua2013(tmp_path)


def test_six_sites_zone_proposals(atm_dir):
    sites = pd.read_csv(atm_dir / "six_sites_metadata.csv").dropna(subset=["lat"])
    assert len(sites) == 4
    for row in sites.itertuples():
        assert hua2013_zone(row.lat, row.lon) == row.hua2013_zone_proposed, row.site_id
