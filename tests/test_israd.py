"""Tests for the ISRaD source (bayes_vmimics.io.israd) and its integration in build_site_tables: every curation
rule on small ISRaD-shaped tables written to tmp_path, a data folder without ISRaD, and the real tables."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rawfiles import raw_layer, write_forest_types

from bayes_vmimics.atmosphere import d14c_to_f14c
from bayes_vmimics.io import datadir as D
from bayes_vmimics.io import forcing as F
from bayes_vmimics.io import he2016 as H
from bayes_vmimics.io import inventory as INV
from bayes_vmimics.io import israd as I
from bayes_vmimics.io import israd_curation as IC
from bayes_vmimics.io import israd_rules as IR
from bayes_vmimics.io import qa as Q
from bayes_vmimics.io import sites as S
from bayes_vmimics.io import split as SP
from bayes_vmimics.io import tables as T
from bayes_vmimics.io.datadir import DataFolderError

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("BAYES_VMIMICS_DATA", REPO.parent / "shared" / "data"))
ISRAD_DIR = I.find_israd_dir(DATA_DIR) if DATA_DIR.is_dir() else None
needs_israd = pytest.mark.skipif(
    ISRAD_DIR is None or not (DATA_DIR / H.HE2016_FILE).is_file(),
    reason=f"no ISRaD subfolder (israd*) and He et al. file in {DATA_DIR} (set BAYES_VMIMICS_DATA)",
)


# ------------------------------------------------------------------ ISRaD-shaped fixtures
def _profile(entry="Test_2020", site="S1", pro="P1", **kw) -> dict:
    row = {c: np.nan for c in I.REQUIRED_COLUMNS["profile"]}
    row.update(
        entry_name=entry,
        site_name=site,
        pro_name=pro,
        pro_lat=45.0,
        pro_long=10.0,
        pro_country="XX",
        pro_treatment="control",
        pro_land_cover="forest",
        pro_MAT=8.0,
        pro_MAP=900.0,
        **{"pro_BIO1_C_WC2.1": 7.5, "pro_BIO12_mmyr_WC2.1": 850.0, "pro_0.5_USDA_soilorder": "Alfisols"},
        pro_MAT_CRUTSv323=7.0,
        pro_MAP_CRUTSv323=800.0,
        pro_PET_mmyr=600.0,
        pro_soilMoist_mm_TC=80.0,
        pro_clay_0_cm_SG=12.0,
        pro_clay_10_cm_SG=18.0,
        pro_clay_30_cm_SG=30.0,
        pro_bd_0_cm_SG=100.0,
        pro_bd_10_cm_SG=120.0,
        pro_bd_30_cm_SG=140.0,
        pro_coarse_0_cm_SG=5.0,
        pro_coarse_10_cm_SG=5.0,
        pro_coarse_30_cm_SG=5.0,
        pro_KG_present_short="Cfb",
    )
    row.update(kw)
    return row


def _layer(top, bot, entry="Test_2020", site="S1", pro="P1", name=None, **kw) -> dict:
    row = {c: np.nan for c in I.REQUIRED_COLUMNS["layer"]}
    row.update(
        entry_name=entry,
        site_name=site,
        pro_name=pro,
        lyr_name=name or f"{pro}_{top}_{bot}",
        lyr_obs_date_y=2010,
        lyr_all_org_neg="yes",
        lyr_top=top,
        lyr_bot=bot,
        lyr_hzn="A",
        lyr_bd_samp=1.2,
        lyr_c_org=2.0,
        lyr_14c=50.0,
        lyr_n_tot=0.15,
    )
    row.update(kw)
    return row


def _profile_layers(pro="P1", n=4, entry="Test_2020", site="S1", soc=(4.0, 2.0, 1.0, 0.5, 0.3, 0.2), **kw) -> list:
    edges = [0, 10, 20, 40, 60, 80, 100][: n + 1]
    return [_layer(edges[k], edges[k + 1], entry=entry, site=site, pro=pro, lyr_c_org=soc[k], **kw) for k in range(n)]


def write_israd(folder: Path, profiles: list, layers: list, *, extra_layer_columns=None) -> Path:
    """Write the four ISRaD tables (metadata and site derived from the profiles) to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    prof = pd.DataFrame(profiles)
    entries = prof["entry_name"].drop_duplicates()
    pd.DataFrame({"entry_name": entries, "doi": "10.0/test", "bibliographical_reference": "test"}).to_csv(
        folder / "metadata.csv", index=False
    )
    sites = prof[["entry_name", "site_name"]].drop_duplicates()
    sites.assign(site_lat=45.0, site_long=10.0, site_elevation=100.0).to_csv(folder / "site.csv", index=False)
    prof.to_csv(folder / "profile.csv", index=False)
    lay = pd.DataFrame(layers)
    for c, v in (extra_layer_columns or {}).items():
        lay[c] = v
    lay.to_csv(folder / "layer.csv", index=False)
    return folder


def _types(*rows) -> pd.DataFrame:
    """Forest-type table rows (entry, site, pro, type)."""
    return pd.DataFrame(
        [
            dict(entry_name=e, site_name=s, pro_name=p, forest_type=t, evidence="test", confidence="high")
            for e, s, p, t in rows
        ]
    )


def _build(tmp_path, profiles, layers, types=None, **kw) -> T.SiteTables:
    folder = write_israd(tmp_path / "israd_test", profiles, layers)
    if types is None:
        types = _types(*{(p["entry_name"], "", "", "DBF") for p in profiles})
    return IC.build_israd_tables(tmp_path, israd_dir=folder, forest_types=types, **kw)


def _site(t: T.SiteTables, pro="P1", entry="Test_2020", site="S1") -> pd.Series:
    s = t.sites
    return s[(s["entry_name"] == entry) & (s["site_name"] == site) & (s["pro_name"] == pro)].iloc[0]


def _reasons(t: T.SiteTables, sid: str) -> list[str]:
    return t.log.loc[t.log["profile_id"] == sid, "reason"].tolist()


# ------------------------------------------------------------------ reader
def test_reader_joins_four_tables_and_finds_the_newest_folder(tmp_path):
    write_israd(tmp_path / "israd_extra_2020-01-01", [_profile()], _profile_layers())
    write_israd(tmp_path / "israd_extra_2023-02-08", [_profile(), _profile(pro="P2")], _profile_layers())
    assert I.find_israd_dir(tmp_path).name == "israd_extra_2023-02-08"
    t = I.read_israd(tmp_path)
    assert len(t.profile) == 2 and len(t.layer) == 4 and len(t.metadata) == 1
    assert I.find_israd_dir(tmp_path / "israd_extra_2020-01-01") is None


def test_reader_errors_name_table_column_and_row(tmp_path):
    f = write_israd(tmp_path / "israd_x", [_profile()], _profile_layers())
    (f / "site.csv").unlink()
    with pytest.raises(DataFolderError, match="site.csv"):
        I.read_israd(israd_dir=f)
    f = write_israd(tmp_path / "israd_y", [_profile()], _profile_layers())
    pd.read_csv(f / "layer.csv").drop(columns="lyr_bd_tot").to_csv(f / "layer.csv", index=False)
    with pytest.raises(ValueError, match="layer.csv: row 1 .*'lyr_bd_tot'"):
        I.read_israd(israd_dir=f)
    f = write_israd(tmp_path / "israd_z", [_profile()], [*_profile_layers(), _layer(80, 90, lyr_c_org="two")])
    with pytest.raises(ValueError, match=r"layer.csv: row 6, column 'lyr_c_org': not a number"):
        I.read_israd(israd_dir=f)
    f = write_israd(tmp_path / "israd_w", [_profile()], [*_profile_layers(), _layer(0, 5, pro="nope")])
    with pytest.raises(ValueError, match=r"layer.csv: row 6, column 'pro_name': no row .* in profile.csv"):
        I.read_israd(israd_dir=f)
    with pytest.raises(DataFolderError, match="no israd"):
        I.read_israd(tmp_path / "israd_w")


# ------------------------------------------------------------------ a data folder without ISRaD
def test_folder_without_israd_is_he_only(tmp_path):
    rows = [
        raw_layer(pid, t, b, soc=pid / (k + 1))
        for pid in (1, 2)
        for k, (t, b) in enumerate(((0, 10), (10, 20), (20, 40)))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / H.HE2016_FILE, index=False)
    ft = write_forest_types(tmp_path, [1, 2])
    kw = dict(forest_types=ft, exclusions=False, split=tmp_path / "none.csv", matches=False)
    assert S.resolve_sources("all", tmp_path) == ("he2016",)
    assert S.DEFAULT_SOURCES == "all" and S.resolve_sources(None, tmp_path) == ("he2016",)  # He alone: no ISRaD
    a = S.build_site_tables(tmp_path, **kw)
    b = S.build_site_tables(tmp_path, sources="all", **kw)
    pd.testing.assert_frame_equal(a.sites, b.sites)
    pd.testing.assert_frame_equal(a.layers, b.layers)
    assert list(a.sites["site_id"]) == ["he2016_1", "he2016_2"] and (a.sites["source"] == "he2016").all()
    with pytest.raises(ValueError, match="sources"):
        S.build_site_tables(tmp_path, sources=("he2016", "isard"), **kw)
    # with an ISRaD folder, the default (every source present) adds ISRaD after the He rows; he2016 alone on request
    write_israd(tmp_path / "israd_t", [_profile()], _profile_layers())
    assert S.resolve_sources("all", tmp_path) == S.resolve_sources(None, tmp_path) == ("he2016", "israd")
    c = S.build_site_tables(tmp_path, sources=("he2016",), **kw)
    pd.testing.assert_frame_equal(a.sites, c.sites)
    types = _types(("Test_2020", "", "", "ENF"))
    d = S.build_site_tables(tmp_path, israd_forest_types=types, **kw)
    assert list(d.sites["site_id"]) == ["he2016_1", "he2016_2", "israd_test_2020__s1__p1"]
    assert d.sites["usable"].all() and list(d.sites["source"]) == ["he2016", "he2016", "israd"]
    e = S.build_site_tables(tmp_path, sources="all", israd_forest_types=types, **kw)
    pd.testing.assert_frame_equal(d.sites, e.sites)


# ------------------------------------------------------------------ layer rules
def test_negative_organic_horizons_are_not_mineral_layers(tmp_path):
    lay = [_layer(-8, -3, lyr_hzn="Oe", lyr_c_org=40.0, lyr_bd_samp=0.1), _layer(-3, 0, lyr_hzn="Oa")]
    t = _build(tmp_path, [_profile()], [*lay, *_profile_layers()])
    s = _site(t)
    assert s["usable"] and s["n_layers"] == 4
    assert (t.layers["top_cm"] >= 0).all()
    assert _reasons(t, s["site_id"]).count("organic horizon above the mineral-soil surface") == 2


def test_organic_horizons_at_positive_depths_shift_the_profile(tmp_path):
    # lyr_all_org_neg empty: Oi/Oa recorded from 0 down; the mineral surface is at 5 cm
    lay = [
        _layer(0, 2, lyr_hzn="Oi", lyr_all_org_neg=np.nan),
        _layer(2, 5, lyr_hzn="Oa", lyr_all_org_neg=np.nan),
        *_profile_layers(lyr_all_org_neg=np.nan),
    ]
    lay[2:] = [{**r, "lyr_top": r["lyr_top"] + 5, "lyr_bot": r["lyr_bot"] + 5} for r in lay[2:]]
    t = _build(tmp_path, [_profile()], lay)
    sid = _site(t)["site_id"]
    x = t.layers[t.layers["site_id"] == sid]
    assert list(x["top_cm"]) == [0, 10, 20, 40] and list(x["horizon"]) == ["A"] * 4
    r = _reasons(t, sid)
    assert r.count("organic horizon above the mineral-soil surface") == 2 and any(
        s.startswith("depths shifted up by 5 cm") for s in r
    )
    # with lyr_all_org_neg = "yes" an O label at positive depth is a mineral layer as recorded (no shift)
    dep = IR.mineral_depths(pd.DataFrame([_layer(0, 5, lyr_hzn="O"), _layer(5, 10)]))
    assert list(dep["shift_cm"]) == [0.0, 0.0] and not dep["organic"].any()
    # nor in a profile that already records a layer above 0 (Drake_2019 kb7: -5-0 cm, then "OA" 0-10 cm)
    lay = [_layer(-5, 0, lyr_all_org_neg=np.nan), _layer(0, 10, lyr_hzn="OA", lyr_all_org_neg=np.nan)]
    assert list(IR.mineral_depths(pd.DataFrame(lay))["shift_cm"]) == [0.0, 0.0]


def test_infinite_depths_are_excluded_with_reason(tmp_path):
    p = write_israd(tmp_path / "israd_inf", [_profile()], [*_profile_layers(), _layer(60, 70)])
    text = (p / "layer.csv").read_text().splitlines()
    text[-1] = text[-1].replace(",70.0,", ",inf,", 1) if ",70.0," in text[-1] else text[-1].replace(",70,", ",inf,", 1)
    (p / "layer.csv").write_text("\n".join(text) + "\n")
    t = IC.build_israd_tables(tmp_path, israd_dir=p, forest_types=_types(("Test_2020", "", "", "DBF")))
    sid = _site(t)["site_id"]
    assert _site(t)["n_layers"] == 4
    assert "infinite depth (lyr_bot = inf): no depth interval" in _reasons(t, sid)
    assert IR.point_depths(pd.DataFrame([_layer(6, 6), _layer(6, 5), _layer(5, 6)])).tolist() == [True, True, False]
    assert t.log.loc[t.log["reason"].str.startswith("infinite"), "row"].tolist() == [6]


def test_organic_carbon_and_the_carbonate_rule():
    lay = pd.DataFrame(
        [
            _layer(0, 10, lyr_c_org=2.0, lyr_c_tot=3.0),  # organic C wins
            _layer(0, 10, lyr_c_org=np.nan, lyr_c_tot=3.0),  # no inorganic C, no pH: total C
            _layer(0, 10, lyr_c_org=np.nan, lyr_c_tot=3.0, lyr_c_inorg=0.0, lyr_ph_h2o=5.5),
            _layer(0, 10, lyr_c_org=np.nan, lyr_c_tot=3.0, lyr_c_inorg=0.4),  # carbonate present
            _layer(0, 10, lyr_c_org=np.nan, lyr_c_tot=3.0, lyr_ph_h2o=7.2),  # alkaline
            _layer(0, 10, lyr_c_org=np.nan, lyr_c_tot=3.0, lyr_ph=7.0),  # pH unspecified, taken as water
            _layer(0, 10, lyr_c_org=np.nan, lyr_c_tot=3.0, lyr_ph_cacl=6.6),  # CaCl2 >= 6.5
            _layer(0, 10, lyr_c_org=np.nan, lyr_c_tot=3.0, lyr_ph_cacl=6.0),
            _layer(0, 10, lyr_c_org=np.nan, lyr_c_tot=np.nan),
        ]
    )
    c = IR.organic_carbon(lay)
    np.testing.assert_array_equal(c["soc_pct"], [2.0, 3.0, 3.0, np.nan, np.nan, np.nan, np.nan, 3.0, np.nan])
    assert list(c["carbonate_possible"]) == [False, False, False, True, True, True, True, False, False]
    assert c["soc_source"].tolist()[:2] == ["lyr_c_org", "lyr_c_tot (carbonate-free)"]


def test_carbonate_layers_are_logged_and_soc_is_volumetric(tmp_path):
    lay = _profile_layers(lyr_c_org=np.nan) if False else _profile_layers()
    lay[1] = {**lay[1], "lyr_c_org": np.nan, "lyr_c_tot": 2.5, "lyr_c_inorg": 0.3}
    t = _build(tmp_path, [_profile()], lay)
    sid = _site(t)["site_id"]
    assert _site(t)["n_layers"] == 3
    assert any(r.startswith("total C only and carbonate not ruled out") for r in _reasons(t, sid))
    x = t.layers[t.layers["site_id"] == sid]
    np.testing.assert_allclose(x["soc_mg_cm3"], x["soc_pct"] * 10.0 * x["bd_g_cm3"])
    assert x["soc_mg_cm3"].iloc[0] == pytest.approx(4.0 * 10 * 1.2)


def test_bulk_density_sample_then_total_and_filled_values_never_used(tmp_path):
    b = IR.bulk_density(
        pd.DataFrame([_layer(0, 5, lyr_bd_samp=1.1, lyr_bd_tot=1.3), _layer(5, 9, lyr_bd_samp=np.nan, lyr_bd_tot=1.3)])
    )
    assert list(b["bd_g_cm3"]) == [1.1, 1.3] and list(b["bd_source"]) == ["lyr_bd_samp", "lyr_bd_tot"]
    lay = _profile_layers()
    lay[3] = {**lay[3], "lyr_bd_samp": np.nan}
    lay[2] = {**lay[2], "lyr_c_org": np.nan}
    # ISRaD.extra's filled columns carry values where the measured ones are empty: they are never read
    folder = write_israd(
        tmp_path / "israd_f",
        [_profile()],
        lay,
        extra_layer_columns={"lyr_bd_samp_filled": 1.0, "lyr_c_org_filled": 1.5, "lyr_bd_samp_fill_extra": 1.0},
    )
    t = IC.build_israd_tables(tmp_path, israd_dir=folder, forest_types=_types(("Test_2020", "", "", "DBF")))
    s = _site(t)
    assert s["n_layers"] == 2 and not s["usable"]
    assert s["exclusion_reason"] == "fewer than 3 mineral layers with SOC and bulk density"
    r = _reasons(t, s["site_id"])
    assert "missing bulk density" in r and "missing SOC" in r
    assert not t.layers["bd_is_filled"].any()


def test_f14c_from_fraction_modern_else_from_d14c_and_the_year(tmp_path):
    lay = _profile_layers()
    lay[0] = {**lay[0], "lyr_fraction_modern": 1.08, "lyr_14c": 90.0}
    lay[1] = {**lay[1], "lyr_14c": 20.0, "lyr_obs_date_y": 1995}
    lay[2] = {**lay[2], "lyr_14c": np.nan}
    t = _build(tmp_path, [_profile()], lay)
    x = t.layers.sort_values("top_cm")
    assert x["f14c"].iloc[0] == 1.08 and x["f14c_source"].iloc[0] == "fraction_modern"
    assert x["f14c"].iloc[1] == pytest.approx(float(d14c_to_f14c(20.0, 1995)))
    assert x["f14c_source"].iloc[1] == "d14c" and x["obs_year"].iloc[1] == 1995
    assert np.isnan(x["f14c"].iloc[2]) and x["d14c_permil"].iloc[1] == 20.0


# ------------------------------------------------------------------ profile rules
def test_treatment_deforested_and_land_cover_excluded_with_reason(tmp_path):
    profs = [
        _profile(pro="P1"),
        _profile(pro="P2", pro_treatment="treatment"),
        _profile(pro="P3", pro_deforested=40.0),
        _profile(pro="P4", pro_land_cover="wetland"),
        _profile(pro="P5", pro_land_cover=np.nan),
    ]
    lay = [r for p in ("P1", "P2", "P3", "P4", "P5") for r in _profile_layers(pro=p, soc=(4.1, 2.2, 1.3, 0.6))]
    t = _build(tmp_path, profs, lay, deduplicate=False)
    why = {p: _site(t, p)["exclusion_reason"] for p in ("P2", "P3", "P4", "P5")}
    assert _site(t, "P1")["usable"]
    assert why == {
        "P2": "treatment profile (pro_treatment = 'treatment')",
        "P3": "disturbed: pro_deforested = 40 %",
        "P4": "land cover 'wetland' (pro_land_cover), not forest",
        "P5": "land cover 'empty' (pro_land_cover), not forest",
    }
    # nothing dropped silently: every profile not usable has its log row; non-forest layers are not processed
    for sid in t.sites.loc[~t.sites["usable"], "site_id"]:
        assert any(r.startswith("profile: ") for r in _reasons(t, sid)), sid
    assert set(t.layers["site_id"]) == {_site(t, p)["site_id"] for p in ("P1", "P2", "P3")}


def test_permafrost_and_peatland_are_flagged_not_excluded(tmp_path):
    profs = [_profile(pro="P1", pro_permafrost="yes"), _profile(pro="P2", pro_peatland="yes"), _profile(pro="P3")]
    lay = [r for k, p in enumerate(("P1", "P2", "P3")) for r in _profile_layers(pro=p, soc=(4 + k, 2, 1, 0.5))]
    t = _build(tmp_path, profs, lay)
    assert t.sites["usable"].all()
    assert list(t.sites["permafrost"]) == [True, False, False] and list(t.sites["peatland"]) == [False, True, False]
    q = t.qa.set_index("site_id")["rule"]
    assert q[_site(t, "P1")["site_id"]] == IC.QA_PERMAFROST and q[_site(t, "P2")["site_id"]] == IC.QA_PEATLAND
    assert Q.QA_RULES[IC.QA_PERMAFROST] == Q.QA_RULES[IC.QA_PEATLAND] == "flag"
    x = t.layers[t.layers["site_id"] == _site(t, "P1")["site_id"]]
    assert (x["qa_flag"] == IC.QA_PERMAFROST).all()


def test_forest_types_from_the_table_never_guessed(tmp_path):
    profs = [
        _profile(entry="A_2000", site="S1", pro="P1"),
        _profile(entry="A_2000", site="S1", pro="P2"),
        _profile(entry="A_2000", site="S2", pro="P3"),
        _profile(entry="B_2001", site="S1", pro="P1", pro_lc_leaf_type="needleleaf", pro_lc_phenology="evergreen"),
        _profile(entry="C_2002", site="S1", pro="P1"),
    ]
    lay = [
        r
        for k, p in enumerate(profs)
        for r in _profile_layers(pro=p["pro_name"], entry=p["entry_name"], site=p["site_name"], soc=(4 + k, 2, 1, 0.5))
    ]
    types = _types(
        ("A_2000", "", "", "DBF"), ("A_2000", "S1", "P2", "ENF"), ("A_2000", "S2", "", "MIX"), ("C_2002", "", "", "BNF")
    )
    t = _build(tmp_path, profs, lay, types=types)
    got = {(r.entry_name, r.pro_name): (r.forest_type, r.usable) for r in t.sites.itertuples()}
    assert got[("A_2000", "P1")] == ("DBF", True)  # the entry row
    assert got[("A_2000", "P2")] == ("ENF", True)  # the profile row wins
    assert got[("A_2000", "P3")] == ("MIX", False)  # the site row; not one of the four
    assert got[("C_2002", "P1")] == ("BNF", True)
    b = _site(t, "P1", entry="B_2001")
    assert not b["usable"] and b["exclusion_reason"] == "no forest type in data/israd_forest_types.csv (not guessed)"
    assert (
        _site(t, "P3", entry="A_2000", site="S2")["exclusion_reason"]
        == "forest type MIX (not one of ENF, EBF, DBF, BNF)"
    )
    assert _site(t, "P1", entry="C_2002")["biome"] == "temperate"  # from Köppen Cfb, not from the table
    with pytest.raises(ValueError, match="duplicate key"):
        IR.load_israd_forest_types(_types(("A_2000", "", "", "DBF"), ("A_2000", "", "", "ENF")))


def test_min_layers_and_overlapping_layers(tmp_path):
    profs = [_profile(pro="P1"), _profile(pro="P2")]
    lay = [*_profile_layers(pro="P1", n=2), *_profile_layers(pro="P2", n=4), _layer(5, 15, pro="P2", name="x")]
    t = _build(tmp_path, profs, lay)
    assert _site(t, "P1")["exclusion_reason"] == f"fewer than {Q.MIN_LAYERS} mineral layers with SOC and bulk density"
    assert _site(t, "P2")["exclusion_reason"].startswith("overlapping layers (0-10 and 5-15 cm)")


def test_sites_qa_rules_apply_to_israd_profiles(tmp_path):
    # two identical SOC profiles (pseudo-replicates) and an isolated near-zero layer
    profs = [_profile(pro="P1"), _profile(pro="P2", pro_lat=46.0), _profile(pro="P3", pro_lat=47.0)]
    lay = [
        *_profile_layers(pro="P1"),
        *_profile_layers(pro="P2"),
        *_profile_layers(pro="P3", n=5, soc=(3, 2, 0.01, 1, 0.8)),
    ]
    t = _build(tmp_path, profs, lay)
    p1, p2, p3 = (_site(t, p) for p in ("P1", "P2", "P3"))
    assert p1["usable"] and not p2["usable"] and p2["duplicate_of"] == p1["site_id"]
    assert p2["exclusion_reason"] == Q.DUPLICATE_REASON.format(kept=p1["site_id"])
    assert p3["usable"] and p3["n_layers"] == 4
    rules = set(t.qa["rule"])
    assert {Q.QA_DUPLICATE, Q.QA_ISOLATED_LOW} <= rules
    assert (t.qa["decision"] == t.qa["rule"].map(Q.QA_RULES)).all()


def test_forcing_follows_the_he_rules_with_gridded_values_recorded(tmp_path):
    profs = [_profile(pro="P1", pro_MAT=np.nan, pro_MAP=np.nan), _profile(pro="P2")]
    lay = [*_profile_layers(pro="P1"), *_profile_layers(pro="P2", soc=(5, 3, 2, 1), lyr_clay_tot_psa=25.0)]
    t = _build(tmp_path, profs, lay)
    p1, p2 = _site(t, "P1"), _site(t, "P2")
    assert p1["mat_c"] == 7.5 and p1["mat_source"] == "WorldClim 2.1 BIO1 (gridded)" and not p1["mat_is_reported"]
    assert p1["map_mm"] == 850.0 and p1["map_source"].startswith("WorldClim")
    assert p2["mat_c"] == 8.0 and p2["mat_source"] == "reported (pro_MAT)"
    # SoilGrids clay over 0-30 cm by the trapezoidal rule: (5*12 + 15*18 + 10*30) / 30 = 21 %
    assert p1["clay_fraction_sg"] == pytest.approx(0.21) and p1["clay_pct"] == pytest.approx(21.0)
    assert p1["clay_source"].startswith("SoilGrids") and not p1["clay_is_measured"]
    assert p2["clay_pct"] == 25.0 and p2["clay_is_measured"]
    assert p1["bd_g_cm3_sg"] == pytest.approx((5 * 1.0 + 15 * 1.2 + 10 * 1.4) / 30)
    assert p1["soil_temperature_c"] == 7.5 and p1["litter_above_g_c_m2_yr"] > 0
    for _, row in t.sites.iterrows():
        f = F.site_forcing(row)
        assert 0 < f.clay < 1


# ------------------------------------------------------------------ site ids
def test_site_ids_are_filesystem_safe_unique_and_stable():
    keys = pd.DataFrame(
        dict(
            entry_name=["Trumbore_2021", "Trumbore_2021", "Trumbore_2021", "X", "Y" * 200],
            site_name=["Site A/1", "Site A 1", "Site B", "s", "s"],
            pro_name=["P 1", "P 1", "P-1", "p", "p"],
        )
    )
    ids = IR.israd_site_ids(keys)
    assert ids.is_unique and all(re.fullmatch(r"israd_[a-z0-9_]+", x) for x in ids)
    assert ids.iloc[2] == "israd_trumbore_2021__site_b__p_1" and ids.iloc[3] == "israd_x__s__p"
    # the two keys that slug alike both carry their hash; a long id is cut and hashed
    assert ids.iloc[0] != ids.iloc[1] and all(re.search(r"_[0-9a-f]{8}$", x) for x in ids.iloc[:2])
    assert len(ids.iloc[4]) == IR.SITE_ID_MAX + 9
    pd.testing.assert_series_equal(ids, IR.israd_site_ids(keys))  # stable
    assert IR.israd_site_ids(keys.iloc[[2, 3]]).tolist() == ids.iloc[[2, 3]].tolist()


# ------------------------------------------------------------------ He-ISRaD matches
def test_matched_pair_uses_the_he_profile(tmp_path):
    he_rows = [
        raw_layer(pid, t, b, soc=s)
        for pid, s0 in ((1, 3.0), (2, 5.0))
        for (t, b), s in zip(((0, 10), (10, 20), (20, 40)), (s0, s0 / 2, s0 / 4), strict=True)
    ]
    pd.DataFrame(he_rows).to_csv(tmp_path / H.HE2016_FILE, index=False)
    profs = [_profile(pro="P1"), _profile(pro="P2"), _profile(pro="P3")]
    lay = [r for k, p in enumerate(("P1", "P2", "P3")) for r in _profile_layers(pro=p, soc=(4 + k, 2, 1, 0.5))]
    write_israd(tmp_path / "israd_m", profs, lay)
    matches = pd.DataFrame(
        [
            dict(
                he_site_id="he2016_1",
                entry_name="Test_2020",
                site_name="S1",
                pro_name="P1",
                match="same profile",
                distance_km=0.0,
                evidence="t",
            ),
            dict(
                he_site_id="he2016_2",
                entry_name="Test_2020",
                site_name="S1",
                pro_name="P2",
                match="same study nearby",
                distance_km=1.2,
                evidence="t",
            ),
        ]
    )
    t = S.build_site_tables(
        tmp_path,
        sources="all",
        forest_types=write_forest_types(tmp_path, [1, 2]),
        exclusions=False,
        split=tmp_path / "none.csv",
        israd_forest_types=_types(("Test_2020", "", "", "DBF")),
        matches=matches,
    )
    s = t.sites.set_index("site_id")
    p1, p2 = "israd_test_2020__s1__p1", "israd_test_2020__s1__p2"
    assert not s.at[p1, "usable"] and s.at[p1, "exclusion_reason"] == "same profile as he2016_1"
    assert s.at["he2016_1", "usable"] and s.at["he2016_1", "israd_site_id"] == p1
    assert s.at["he2016_1", "israd_match"] == "same profile" and s.at["he2016_1", "clay_fraction_sg"] == pytest.approx(
        0.21
    )
    assert (
        s.at["he2016_1", "mat_c"] == 8.0 and s.at["he2016_1", "clay_source"] != s.at[p1, "clay_source"]
    )  # forcing kept
    # a nearby profile of the same study lends its covariates; both are used
    assert s.at[p2, "usable"] and s.at["he2016_2", "usable"] and s.at["he2016_2", "israd_site_id"] == p2
    assert (
        s.at["he2016_2", "mat_c_wc2"] == 7.5 and np.isnan(s.loc[s["source"] == "he2016", "israd_match_km"]).sum() == 0
    )
    assert s.index.is_unique
    # the same profile missed by the matches table: identical kept layers are caught across sources
    he3 = [
        raw_layer(3, t0, b0, soc=s0, bd=1.2)
        for (t0, b0), s0 in zip(((0, 10), (10, 20), (20, 40), (40, 60)), (6, 2, 1, 0.5), strict=True)
    ]
    pd.DataFrame(he_rows + he3).to_csv(tmp_path / H.HE2016_FILE, index=False)
    t = S.build_site_tables(
        tmp_path,
        sources="all",
        forest_types=write_forest_types(tmp_path, [1, 2, 3]),
        exclusions=False,
        split=tmp_path / "none.csv",
        israd_forest_types=_types(("Test_2020", "", "", "DBF")),
        matches=matches,
    )
    s = t.sites.set_index("site_id")
    p3 = "israd_test_2020__s1__p3"
    assert not s.at[p3, "usable"] and s.at[p3, "duplicate_of"] == "he2016_3"
    q = t.qa[(t.qa["site_id"] == p3) & (t.qa["rule"] == Q.QA_DUPLICATE)]
    assert len(q) == 1 and q["evidence"].str.contains("not in data/source_matches.csv").all()


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def real():
    if ISRAD_DIR is None or not (DATA_DIR / H.HE2016_FILE).is_file():
        pytest.skip(f"no ISRaD subfolder in {DATA_DIR}")
    t0 = time.perf_counter()
    t = S.build_site_tables(DATA_DIR, sources="all")
    t.build_seconds = time.perf_counter() - t0  # about 4 s on the shared machine (He et al. alone: 1 s)
    return t


@needs_israd
def test_real_he_rows_unchanged_and_ids_unique(real):
    he = S.build_site_tables(DATA_DIR, sources=("he2016",))
    s = real.sites
    assert s["site_id"].is_unique
    assert all(re.fullmatch(r"[a-z0-9_]+", x) for x in s["site_id"])
    both = s[s["source"] == "he2016"][he.sites.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(both, he.sites, check_dtype=False)  # profile_id: int beside ISRaD's text
    assert len(s[s["source"] == "israd"]) == 4591 and (s["source"] == "he2016").sum() == 300


@needs_israd
def test_real_counts(real):
    s = real.sites
    i = s[s["source"] == "israd"]
    forest = i[i["veg_class"] == "forest"]
    assert len(forest) == 1489
    r = i["exclusion_reason"].fillna("")
    assert r.str.endswith("not forest").sum() == 4591 - 1489
    assert r.str.startswith("treatment profile").sum() == 99 and r.str.startswith("disturbed").sum() == 5
    # the matches table: same-profile pairs whose ISRaD profile is a candidate forest profile
    # (164 by the same-study rule, 9 by identical data under another study name: Czimczik_2007, de_Freitas_2001)
    assert r.str.startswith("same profile as he2016_").sum() == 173
    u = real.usable_sites()
    # He et al.: as today; ISRaD: depends on data/israd_forest_types.csv (in review), at least one of each type
    he = u[u["source"] == "he2016"]["forest_type"].value_counts().to_dict()
    assert he == {"ENF": 35, "EBF": 38, "DBF": 25, "BNF": 16}
    isr = u[u["source"] == "israd"]
    assert (isr["n_layers"] >= Q.MIN_LAYERS).all() and isr["forest_type"].isin(T.FOUR_TYPES).all()
    if (D.PROJECT_DATA_DIR / IR.FOREST_TYPE_FILE).is_file():
        assert set(isr["forest_type"]) == set(T.FOUR_TYPES)
    else:
        assert isr.empty


@needs_israd
def test_real_nothing_dropped_silently(real):
    s, log = real.sites, real.log
    i = s[(s["source"] == "israd") & ~s["usable"]]
    logged = set(log.loc[log["reason"].str.startswith("profile: "), "profile_id"].astype(str))
    assert set(i["site_id"]) <= logged
    lay = real.layers[real.layers["source"] == "israd"]
    assert (lay["top_cm"] >= 0).all() and (lay["bottom_cm"] > lay["top_cm"]).all()
    np.testing.assert_allclose(lay["soc_mg_cm3"], lay["soc_pct"] * 10.0 * lay["bd_g_cm3"])
    assert lay["f14c"].dropna().between(0.0, 2.0).all()
    # no ISRaD profile is used twice: never beside its He et al. match
    used = set(s.loc[s["usable"], "site_id"])
    same = s[(s["source"] == "he2016") & (s["israd_match"] == "same profile")]
    assert not (set(same["israd_site_id"].dropna()) & used)
    for _, row in real.usable_sites().iterrows():
        F.site_forcing(row)
    # the summary counts the sources; the saved split covers both sources (tests/test_sites.py)
    assert "usable profiles by forest type x source" in INV.summarize(real)
    assert real.usable_sites()["split"].isin(["calibration", "validation"]).all()
    assert SP.calibration_split(real.sites)["site_id"].str.startswith("israd_").sum() == int(
        (real.usable_sites()["source"] == "israd").sum()
    )
