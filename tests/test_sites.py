"""Tests for the real-site data loaders and curation (bayes_vmimics.io.sites; project issue 4)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rawfiles import raw_layer, write_forest_types

from bayes_vmimics.forcing import SiteForcing
from bayes_vmimics.io import curation as C
from bayes_vmimics.io import datadir as D
from bayes_vmimics.io import example_sites as EX
from bayes_vmimics.io import forcing as F
from bayes_vmimics.io import he2016 as H
from bayes_vmimics.io import qa as Q
from bayes_vmimics.io import sites as S
from bayes_vmimics.io import split as SP
from bayes_vmimics.io import tables as T

REPO = Path(__file__).resolve().parents[1]
_DEFAULT_DATA = REPO.parent / "shared" / "data"
DATA_DIR = Path(os.environ.get("BAYES_VMIMICS_DATA", _DEFAULT_DATA))
HAVE_DATA = (DATA_DIR / H.HE2016_FILE).is_file()
needs_data = pytest.mark.skipif(
    not HAVE_DATA, reason=f"raw data folder {DATA_DIR} absent (set BAYES_VMIMICS_DATA; see data/README.md)"
)


# ------------------------------------------------------------------ synthetic raw files
def _layer(pid, top, bottom, soc=2.0, bd=1.2, filled=False, **kw):
    kw = {"dataset": "Test_2020", "clay_pct": np.nan, **kw}
    return raw_layer(pid, top, bottom, soc, bd, bd_is_filled=filled, **kw)


def _write(tmp_path, rows, name="layers.csv"):
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


_forest_types = write_forest_types


def _build(tmp_path, rows, **kw):
    path = _write(tmp_path, rows)
    pids = sorted({r["profile_id"] for r in rows})
    kw.setdefault("exclusions", False)  # the repository table names He et al. profiles absent here
    kw.setdefault("sources", (H.HE2016_SOURCE,))  # a synthetic He et al. file: the He-only tables
    return S.build_site_tables(
        path=path, forest_types=_forest_types(tmp_path, pids), split=tmp_path / "no_split.csv", **kw
    )


# ------------------------------------------------------------------ unit conversions
def test_soc_volumetric_units():
    # PROVENANCE example: 2.0 % and BD 1.2 g cm-3 give 24 mg C cm-3 (% x 10 x BD = g/kg x BD)
    assert C.soc_volumetric(2.0, 1.2) == pytest.approx(24.0)
    pct = np.array([0.5, 3.0, 10.0])
    bd = np.array([1.5, 1.0, 0.4])
    np.testing.assert_allclose(C.soc_volumetric(pct, bd), (pct * 10.0) * bd)


def test_f14c_from_d14c_hua_check_value():
    # PROVENANCE: Hua 2013 NH1 at 2009.53, Delta14C 50.4 per mil -> F14C 1.05799
    assert C.f14c_from_d14c(50.4, 2009.53) == pytest.approx(1.05799, abs=5e-5)


def test_miami_npp_known_value():
    t, p = 10.0, 1000.0
    npp_t = 3000.0 / (1.0 + np.exp(1.315 - 0.119 * t))
    npp_p = 3000.0 * (1.0 - np.exp(-0.000664 * p))
    assert F.miami_npp(t, p) == pytest.approx(min(npp_t, npp_p))
    assert F.miami_npp(10.0, 1000.0) == pytest.approx(1406.4, abs=0.5)
    assert F.miami_npp(40.0, 1e5) < 3000.0


def test_layer_table_units_and_flags(tmp_path):
    rows = [
        _layer(1, 0, 10, soc=3.0, bd=1.1),
        _layer(1, 10, 20, soc=2.0, bd=1.3, filled=True),
        _layer(1, 20, 40),
    ]
    t = _build(tmp_path, rows)
    lay = t.layers
    np.testing.assert_allclose(lay["soc_g_kg"], lay["soc_pct"] * 10.0)
    np.testing.assert_allclose(lay["soc_mg_cm3"], lay["soc_g_kg"] * lay["bd_g_cm3"])
    assert lay["soc_mg_cm3"].iloc[0] == pytest.approx(33.0)
    assert list(lay["bd_is_filled"]) == [False, True, False]
    site = t.sites.iloc[0]
    assert site["usable"] and site["n_layers"] == 3 and site["any_filled_bd"]
    assert not site["clay_is_measured"] and not site["lignin_n_is_measured"]
    assert not site["litter_above_is_measured"]
    assert site["litter_above_g_c_m2_yr"] + site["litter_below_g_c_m2_yr"] == pytest.approx(
        F.miami_npp(8.0, 900.0) * F.CARBON_FRACTION
    )


# ------------------------------------------------------------------ depth reference and filters
def test_organic_and_straddling_layers_dropped(tmp_path):
    rows = [
        _layer(1, -8, -3, soc=40.0, bd=0.1),  # organic: above the mineral surface
        _layer(1, -3, 2, soc=20.0, bd=0.5),  # straddles 0: dropped (mixed material)
        _layer(1, 2, 10),
        _layer(1, 10, 20),
        _layer(1, 20, 30),
    ]
    t = _build(tmp_path, rows)
    assert (t.layers["top_cm"] >= 0).all()
    assert list(t.layers["top_cm"]) == [2.0, 10.0, 20.0]
    reasons = list(t.log["reason"])
    assert any("organic horizon" in r for r in reasons)
    assert any("straddles" in r for r in reasons)
    strad = t.log[t.log["reason"].str.contains("straddles")].iloc[0]
    assert strad["row"] == 3  # CSV line of the straddling layer (header is line 1)


def test_quality_filters_and_filled_bd_switch(tmp_path):
    rows = [
        _layer(1, 0, 10, soc=65.0),  # SOC > 60 %
        _layer(1, 10, 20, bd=2.5),  # BD > 2.2
        _layer(1, 20, 30, bd=0.01),  # BD < 0.05
        _layer(1, 30, 40, soc=np.nan),  # missing SOC
        _layer(1, 40, 50),
        _layer(2, 0, 10, filled=True),
        _layer(2, 10, 20, filled=True),
        _layer(2, 20, 30),
        _layer(2, 30, 40),
    ]
    t = _build(tmp_path, rows)
    r = t.log["reason"]
    assert r.str.contains("SOC > 60").sum() == 1
    assert r.str.contains("bulk density outside").sum() == 2
    assert r.str.contains("missing SOC").sum() == 1
    s = t.sites.set_index("profile_id")
    assert not s.at[1, "usable"] and "fewer than 3" in s.at[1, "exclusion_reason"]
    assert s.at[2, "usable"]
    t2 = _build(tmp_path, rows, exclude_filled_bd=True)
    s2 = t2.sites.set_index("profile_id")
    assert not s2.at[2, "usable"]
    assert t2.log["reason"].str.contains("gap-filled").sum() == 2


def test_f14c_reported_pmc_converted(tmp_path):
    rows = [_layer(1, 0, 10, d14c_permil=np.nan, f14c_reported=105.0), _layer(1, 10, 20), _layer(1, 20, 30)]
    t = _build(tmp_path, rows)
    assert t.layers["f14c"].iloc[0] == pytest.approx(1.05)
    assert t.layers["f14c_source"].iloc[0] == "reported"
    assert t.layers["f14c"].iloc[1] == pytest.approx(C.f14c_from_d14c(50.0, 2005.0))


# ------------------------------------------------------------------ bad files
def test_missing_column_names_file_row_column(tmp_path):
    rows = [_layer(1, 0, 10)]
    df = pd.DataFrame(rows).drop(columns=["bd_g_cm3"])
    p = tmp_path / "nobd.csv"
    df.to_csv(p, index=False)
    with pytest.raises(ValueError, match=r"nobd\.csv: row 1 \(header\): missing column\(s\) 'bd_g_cm3'"):
        H.load_he2016_layers(path=p)


def test_non_monotonic_depths_error(tmp_path):
    p = _write(tmp_path, [_layer(1, 0, 10), _layer(1, 20, 30), _layer(1, 10, 20)], "nonmono.csv")
    with pytest.raises(ValueError, match=r"nonmono\.csv: row 4, column 'top_cm_mineral0': non-monotonic"):
        H.load_he2016_layers(path=p)
    p2 = _write(tmp_path, [_layer(1, 0, 10), _layer(1, 10, 5)], "inverted.csv")
    with pytest.raises(ValueError, match=r"inverted\.csv: row 3, column 'bottom_cm_mineral0'"):
        H.load_he2016_layers(path=p2)


def test_negative_soc_error(tmp_path):
    p = _write(tmp_path, [_layer(1, 0, 10), _layer(1, 10, 20, soc=-1.0)], "neg.csv")
    with pytest.raises(ValueError, match=r"neg\.csv: row 3, column 'soc_pct': negative value"):
        H.load_he2016_layers(path=p)


def test_non_numeric_error(tmp_path):
    p = _write(tmp_path, [_layer(1, 0, 10), _layer(1, 10, 20, bd="abc")], "text.csv")
    with pytest.raises(ValueError, match=r"text\.csv: row 3, column 'bd_g_cm3': not a number"):
        H.load_he2016_layers(path=p)


def test_forest_type_table_missing_profile(tmp_path):
    path = _write(tmp_path, [_layer(1, 0, 10), _layer(2, 0, 10)])
    with pytest.raises(ValueError, match=r"forest_types.*no row for profile\(s\) \[2\]"):
        S.build_site_tables(
            path=path,
            sources=(H.HE2016_SOURCE,),
            forest_types=_forest_types(tmp_path, [1]),
            exclusions=False,
            split=tmp_path / "x.csv",
        )


# ------------------------------------------------------------------ project tables
def test_project_type_tables_cover_all_types():
    lig = F.load_lignin_n()
    part = F.load_litter_partition()
    assert set(T.ALL_TYPES) <= set(lig.index) and set(T.ALL_TYPES) <= set(part.index)
    assert (lig[["lignin_n_above", "lignin_n_below"]] < 0.85 / 0.013).all().all()
    assert lig["source"].str.len().gt(5).all() and part["source"].str.len().gt(5).all()


def test_forest_type_table_is_explicit():
    ft = H.load_forest_types()
    assert ft["profile_id"].is_unique
    assert ft["rationale"].notna().all() and (ft["rationale"].str.len() > 3).all()
    assert set(ft["confidence"]) <= {"high", "medium", "low"}
    assert not ft.loc[ft["forest_type"] == "BNF", "biome"].ne("boreal").any()


@needs_data
def test_forest_type_table_covers_every_profile_once():
    raw = H.load_he2016_layers(DATA_DIR)
    ft = H.load_forest_types()
    assert sorted(ft["profile_id"]) == sorted(raw["profile_id"].unique())


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def tables():
    """The default build: every source in the data folder."""
    if not HAVE_DATA:
        pytest.skip(f"raw data folder {DATA_DIR} absent (set BAYES_VMIMICS_DATA; see data/README.md)")
    return S.build_site_tables(DATA_DIR)


HAVE_ISRAD = HAVE_DATA and any(p.name.lower().startswith("israd") and p.is_dir() for p in DATA_DIR.iterdir())


@needs_data
def test_real_tables_shape_and_units(tables):
    s, lay = tables.sites, tables.layers
    assert (s["source"] == H.HE2016_SOURCE).sum() == 300 and s["site_id"].is_unique
    assert len(s) == 300 + (4591 if HAVE_ISRAD else 0)
    assert (lay["top_cm"] >= 0).all() and (lay["bottom_cm"] > lay["top_cm"]).all()
    np.testing.assert_allclose(lay["soc_mg_cm3"], lay["soc_pct"] * 10.0 * lay["bd_g_cm3"])
    assert lay["soc_pct"].le(Q.SOC_PCT_MAX).all()
    assert lay["bd_g_cm3"].between(*Q.BD_RANGE).all()
    u = tables.usable_sites()
    assert len(u) >= 110
    assert set(u["forest_type"]) == set(T.FOUR_TYPES)
    assert u["hua2013_zone"].isin(["NH1", "NH2", "NH3", "SH12", "SH3"]).all()
    assert (u["n_layers"] >= Q.MIN_LAYERS).all()
    # f14c is a fraction, not percent modern
    assert lay["f14c"].dropna().between(0.0, 2.0).all()


@needs_data
def test_site_forcing_for_every_usable_site(tables):
    u = tables.usable_sites(four_types_only=False)
    for _, row in u.iterrows():
        f = F.site_forcing(row)
        assert isinstance(f, SiteForcing)
        assert 0.0 <= f.clay <= 1.0 and f.litter_above > 0 and f.litter_below > 0
    with pytest.raises(ValueError, match="clay_pct"):
        F.site_forcing(u.iloc[0].drop("clay_pct"))


@needs_data
def test_split_stable_and_matches_saved(tables, tmp_path):
    # the saved split predates data/profile_exclusions.csv, the SOC = 0 filter, the duplicate filter and the QA
    # rules and is kept as is: it is the seeded split of the profiles usable without them; with them, the usable
    # profiles are a subset of the saved rows. Without the SOC = 0 filter = with the placeholder zeros "reported".
    raw = pd.read_csv(DATA_DIR / H.HE2016_FILE)
    zero = (raw["soc_pct"] == 0) & raw["soc_pct_reported"].isna()
    assert zero.sum() == 82
    raw.loc[zero, "soc_pct_reported"] = 0.0
    raw.to_csv(tmp_path / H.HE2016_FILE, index=False)
    before_review = S.build_site_tables(
        path=tmp_path / H.HE2016_FILE, sources=(H.HE2016_SOURCE,), exclusions=False, deduplicate=False, qa=False
    )
    a = SP.calibration_split(before_review.sites, seed=SP.DEFAULT_SPLIT_SEED)
    b = SP.calibration_split(before_review.sites, seed=SP.DEFAULT_SPLIT_SEED)
    pd.testing.assert_frame_equal(a, b)
    saved = pd.read_csv(D.PROJECT_DATA_DIR / "site_split.csv")
    saved = saved[saved["site_id"].str.startswith("he2016_")]  # the He et al. rows; ISRaD rows follow them
    assert list(saved["site_id"]) == list(a["site_id"]) and list(saved["split"]) == list(a["split"])
    u = tables.usable_sites()
    assert set(u.loc[u["source"] == H.HE2016_SOURCE, "site_id"]) <= set(saved["site_id"])
    c = SP.calibration_split(before_review.sites, seed=SP.DEFAULT_SPLIT_SEED + 1)
    assert not c["split"].equals(a["split"])
    # replicate pits of one site stay together; halves balanced within each forest type
    assert (a.groupby("group")["split"].nunique() == 1).all()
    n = a.groupby(["forest_type", "split"]).size().unstack()
    assert (abs(n["calibration"] - n["validation"]) <= 3).all()
    # build_site_tables attaches the saved split
    u = tables.usable_sites()
    assert u["split"].isin(["calibration", "validation"]).all()


# ------------------------------------------------------------------ the split of every source
def _he_rows_at_head() -> str | None:
    """``data/site_split.csv`` as committed before ISRaD rows were added (the He et al. rows), or None without git."""
    import subprocess

    try:
        return subprocess.run(
            ["git", "show", "04c37a1:data/site_split.csv"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def test_saved_he_rows_are_unchanged():
    # the He et al. split of the paper comparison: every row byte for byte as before ISRaD was added
    before = _he_rows_at_head()
    if before is None:
        pytest.skip("no git history of data/site_split.csv")
    now = (D.PROJECT_DATA_DIR / SP.SPLIT_FILE).read_text(encoding="utf-8")
    assert now.startswith(before)
    assert all(line.startswith("israd_") for line in now[len(before) :].splitlines())


@needs_data
def test_split_covers_every_usable_site(tables):
    u = tables.usable_sites()
    assert u["split"].isin(["calibration", "validation"]).all()
    saved = SP.load_saved_split()
    assert saved["site_id"].is_unique
    # rebuilding gives the committed file: saved rows kept, no usable site left out
    again = SP.split_all_sources(tables.sites, saved)
    pd.testing.assert_frame_equal(again, saved)


@needs_data
@pytest.mark.skipif(not HAVE_ISRAD, reason="no ISRaD subfolder in the data folder")
def test_israd_split_balanced_and_grouped_by_location(tables):
    s = tables.sites.set_index("site_id")
    sp = SP.load_saved_split()
    new = sp[sp["site_id"].str.startswith("israd_")].copy()
    assert set(new["site_id"]) == set(tables.usable_sites().query("source == 'israd'")["site_id"])
    new["loc"] = SP._location(
        s.loc[new["site_id"], "lat"].to_numpy(), s.loc[new["site_id"], "lon"].to_numpy()
    ).to_numpy()
    # roughly balanced per forest type: the halves differ by at most the largest location group of the type
    for ft, x in new.groupby("forest_type"):
        n = x["split"].value_counts()
        assert abs(n.get("calibration", 0) - n.get("validation", 0)) <= max(2, x.groupby("loc").size().max()), ft
    # same location (0.01°), across entries and types, and the saved rows there: one half
    he = sp[sp["site_id"].str.startswith("he2016_") & sp["site_id"].isin(s.index)].copy()
    he["loc"] = SP._location(s.loc[he["site_id"], "lat"].to_numpy(), s.loc[he["site_id"], "lon"].to_numpy()).to_numpy()
    both = pd.concat([new, he[he["loc"].isin(new["loc"])]])
    assert (both.groupby("loc")["split"].nunique() == 1).all()
    # NEON sites sampled by both Beem-Miller 2022 and Nave 2021 share a half
    neon = new[new["site_id"].str.contains("__bart__")]
    assert neon["site_id"].str.startswith("israd_beem_miller").any() and neon["split"].nunique() == 1
    # a "same study nearby" ISRaD profile is in the half of its He et al. profile
    near = s[(s["israd_match"] == "same study nearby") & s["israd_site_id"].isin(new["site_id"]) & s["split"].notna()]
    half = new.set_index("site_id")["split"]
    assert len(near) and (near["split"].to_numpy() == half[near["israd_site_id"]].to_numpy()).all()


def test_split_all_sources_keeps_saved_rows_and_pins_locations():
    sites = pd.DataFrame(
        {
            "site_id": ["he2016_1", "israd_a", "israd_b", "israd_c", "israd_d", "israd_e"],
            "profile_id": [1, "israd_a", "israd_b", "israd_c", "israd_d", "israd_e"],
            "source": ["he2016"] + ["israd"] * 5,
            "forest_type": ["DBF"] * 6,
            "usable": True,
            "has_c14": True,
            "lat": [10.0, 10.001, 20.0, 20.004, 30.0, 40.0],
            "lon": [5.0, 5.001, 5.0, 5.0, 5.0, 5.0],
            "israd_match": ["same study nearby", None, None, None, None, None],
            "israd_site_id": ["israd_d", None, None, None, None, None],
        }
    )
    saved = pd.DataFrame(
        [["he2016_1", "1", "DBF", "True", "DBF:10.00,5.00", "validation", "2021"]], columns=list(SP.SPLIT_COLUMNS)
    )
    sp = SP.split_all_sources(sites, saved).set_index("site_id")
    assert sp.loc["he2016_1"].tolist() == saved.iloc[0, 1:].tolist()
    assert sp.loc["israd_a", "split"] == "validation"  # at he2016_1's location
    assert sp.loc["israd_d", "split"] == "validation"  # he2016_1's "same study nearby" profile
    assert sp.loc["israd_b", "split"] == sp.loc["israd_c", "split"]  # one location (0.01°)
    assert sp.loc["israd_b", "group"] == "DBF:20.00,5.00"


@needs_data
def test_howland_tower_pit():
    t = EX.load_howland_profile(DATA_DIR)
    lay, site = t.layers, t.sites.iloc[0]
    assert len(lay) >= 5 and (lay["top_cm"] >= 0).all()
    assert lay["f14c"].notna().all()
    np.testing.assert_allclose(lay["soc_mg_cm3"], lay["soc_pct"] * 10.0 * lay["bd_g_cm3"])
    assert site["forest_type"] == "ENF" and site["hua2013_zone"] == "NH1" and site["usable"]
    assert isinstance(F.site_forcing(site), SiteForcing)
    assert t.log["reason"].str.contains("organic").any()
    with pytest.raises(ValueError, match="no profile"):
        EX.load_howland_profile(DATA_DIR, profile="Nope")


@needs_data
def test_mcfarlane_sites_are_c14_only():
    t = EX.load_mcfarlane_sites(DATA_DIR)
    assert {"mi_coarse", "bartlett", "harvard", "ozark", "mi_fine"} == set(t.sites["site_id"])
    assert t.layers["soc_mg_cm3"].isna().all() and not t.sites["usable"].any()
    assert t.sites["has_c14"].all() and t.sites["litter_above_is_measured"].all()
    assert (t.layers["top_cm"] >= 0).all()


def test_split_all_is_both_halves(tables):
    from bayes_vmimics.config import StudyConfig
    from bayes_vmimics.study import real_site_observations

    ids = {}
    for split in ("calibration", "validation", "all"):
        cfg = StudyConfig().replace(data={"forest_type": "BNF", "split": split})
        ids[split] = {s.site_id for s in real_site_observations(tables, cfg)}
    assert ids["calibration"] and ids["validation"] and not ids["calibration"] & ids["validation"]
    assert ids["all"] == ids["calibration"] | ids["validation"]


def test_real_sites_carry_their_forest_type(data_dir):
    from bayes_vmimics.config import load_config
    from bayes_vmimics.study import build_problem

    cfg = load_config("study_quick").replace(study={"mode": "data"}, data={"forest_type": "BNF", "max_sites": 2})
    problem, _, _ = build_problem(cfg, data_dir)
    assert problem.forest_types == ["BNF", "BNF"]
