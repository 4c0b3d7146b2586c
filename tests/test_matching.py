"""He et al. (2016) ↔ ISRaD matching (``bayes_vmimics.io.matching``) and the ISRaD forest-type table.

Unit tests of the rule on small frames; tests on the real data folder (skipped without it or without the ISRaD
tables): the committed ``data/source_matches.csv`` is current, hand-verified pairs are found, the pairing is
one-to-one, and ``data/israd_forest_types.csv`` covers every ISRaD forest candidate exactly once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_vmimics.io.matching import (
    ISRAD_KEYS,
    MATCH_COLUMNS,
    haversine_km,
    match_he_israd,
    study_key,
)
from bayes_vmimics.io.matching_inputs import (
    ISRAD_DIR,
    KNOWN_TYPES,
    assign_israd_forest_types,
    build_source_matches,
    israd_forest_candidates,
)
from bayes_vmimics.resources import project_data_dir

# ----------------------------------------------------------------------------------------------------------------
# the rule on small frames

DEPTHS = [(-5.0, 0.0), (0.0, 10.0), (10.0, 20.0), (20.0, 40.0)]
SOC = [30.0, 3.0, 1.5, 0.8]  # %
D14C = [150.0, 60.0, -20.0, -150.0]  # ‰


def _layers(key: dict, soc=SOC, d14c=D14C, depths=DEPTHS) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**key, "top_cm": t, "bottom_cm": b, "soc_pct": s, "d14c": d}
            for (t, b), s, d in zip(depths, soc, d14c, strict=True)
        ]
    )


def _he(sid: int, dataset: str, lat: float, lon: float = 20.0, **kw):
    site = {"site_id": f"he2016_{sid}", "profile_id": sid, "dataset": dataset, "lat": lat, "lon": lon}
    return site, _layers({"site_id": site["site_id"]}, **kw)


def _ir(entry: str, pro: str, lat: float, lon: float = 20.0, **kw):
    site = {"entry_name": entry, "site_name": "S", "pro_name": pro, "lat": lat, "lon": lon}
    return site, _layers({k: site[k] for k in ISRAD_KEYS}, **kw)


def _frames(he: list, ir: list) -> dict[str, pd.DataFrame]:
    return {
        "he_sites": pd.DataFrame([s for s, _ in he]),
        "he_layers": pd.concat([lay for _, lay in he], ignore_index=True),
        "israd_sites": pd.DataFrame([s for s, _ in ir]),
        "israd_layers": pd.concat([lay for _, lay in ir], ignore_index=True),
    }


def _by_he(t: pd.DataFrame) -> dict[str, pd.Series]:
    return {r["he_site_id"]: r for _, r in t.iterrows()}


def test_study_key_ignores_year_case_punctuation_and_known_misspellings():
    assert study_key("O'Donnell_2011") == study_key("Odonnell_USGSOF_2013") == "odonnell"
    assert study_key("Becker-Heidmann_1986") == study_key("Becker-Heidmann_1989")
    assert study_key("van der Voort_2016") == "vandervoort"
    assert study_key("Maines_USGSOF_2011") == study_key("Manies_2004") == "manies"
    assert study_key("Trumbore_Harden_1997") == study_key("Trumbore_Unpublished") != study_key("Torn_1997")


def test_haversine_one_degree_of_latitude():
    assert haversine_km(10.0, 20.0, 11.0, 20.0) == pytest.approx(111.19, abs=0.01)  # 6371 km × π/180
    assert haversine_km(0.0, 0.0, 0.0, 0.0) == 0.0


def test_rule_on_fixtures_match_too_far_other_study_disagreeing_values():
    he = [
        _he(1, "Smith_2001", 10.0),  # its copy in ISRaD: same study (other year), 0.16 km, same values
        _he(2, "Smith_2001", 20.0),  # its copy lies 222 km away: too far for either kind of match
        _he(3, "Smith_2001", 30.0),  # another study at the same place, Δ14C 5 ‰ off: similar, not identical
        _he(4, "Smith_2001", 40.0),  # same study and place, Δ14C 50 ‰ off in every layer
    ]
    ir = [
        _ir("Smith_2003", "P1", 10.001, 20.001),
        _ir("Smith_2003", "P2", 22.0),
        _ir("Jones_2001", "P3", 30.0, d14c=[d + 5.0 for d in D14C]),
        _ir("Smith_2003", "P4", 40.0, d14c=[d + 50.0 for d in D14C]),
    ]
    t = match_he_israd(**_frames(he, ir))
    assert list(t.columns) == list(MATCH_COLUMNS)
    rows = _by_he(t)
    assert set(rows) == {"he2016_1", "he2016_4"}
    r1 = rows["he2016_1"]
    assert (r1["match"], r1["pro_name"], r1["n_layers_compared"], r1["n_layers_agree"]) == ("same profile", "P1", 4, 4)
    assert r1["distance_km"] == pytest.approx(0.156, abs=0.005)  # 0.001° × 0.001° at 10 N
    r4 = rows["he2016_4"]
    assert (r4["match"], r4["pro_name"], r4["n_layers_agree"]) == ("same study nearby", "P4", 0)
    assert "Δ14C" in r4["evidence"] and "gridded covariates only" in r4["evidence"]


def test_identical_data_under_another_study_name_is_the_same_profile():
    """Rule 3b: He et al. cite a data report, ISRaD the paper (Manies_USGSOF_2006 = Czimczik_2007): identical depths,
    SOC and Δ14C (±0.5 ‰) in ≥ 3 layers within 150 km make the same profile; two identical layers do not."""
    he = [
        _he(1, "Manies_USGSOF_2006", 55.7),
        _he(2, "Manies_USGSOF_2006", 57.0, d14c=[np.nan, np.nan, -20.0, -150.0]),
        _he(3, "Manies_USGSOF_2006", 59.0),
    ]
    ir = [
        _ir("Czimczik_2007", "OBSD", 55.877, d14c=[d + 0.2 for d in D14C]),  # 20 km away
        _ir("Czimczik_2007", "T2", 57.0, d14c=[np.nan, np.nan, -20.0, -150.0]),
        _ir("Czimczik_2007", "T3", 59.0, soc=[30.0, 3.0, 1.5, 1.6]),  # one SOC disagrees
    ]
    rows = _by_he(match_he_israd(**_frames(he, ir)))
    r = rows["he2016_1"]
    assert (r["match"], r["pro_name"], r["n_layers_agree"]) == ("same profile", "OBSD", 4)
    assert r["evidence"].startswith("identical data under another study name (Manies_USGSOF_2006 / Czimczik_2007)")
    assert set(rows) == {"he2016_1"}


def test_soc_decides_without_c14_and_a_c14_disagreement_vetoes():
    nan4 = [np.nan] * 4
    he = [_he(1, "Smith_2001", 10.0, d14c=nan4), _he(2, "Smith_2001", 12.0)]
    ir = [
        _ir("Smith_2003", "P1", 10.0, d14c=nan4),
        # SOC identical, one paired Δ14C layer (too few to decide) that disagrees: not the same profile
        _ir("Smith_2003", "P2", 12.0, d14c=[D14C[0] + 100.0, np.nan, np.nan, np.nan]),
    ]
    rows = _by_he(match_he_israd(**_frames(he, ir)))
    assert rows["he2016_1"]["match"] == "same profile" and "SOC agrees in 4 of 4" in rows["he2016_1"]["evidence"]
    assert rows["he2016_2"]["match"] == "same study nearby"


def test_c14_decides_over_soc_and_soc_differences_are_reported():
    """A unit difference in SOC (He et al. 0.3 % where ISRaD has 3 %) does not hide the same ¹⁴C profile."""
    he = [_he(1, "Smith_2001", 10.0, soc=[s / 10 for s in SOC])]
    ir = [_ir("Smith_2003", "P1", 10.0)]
    (r,) = [r for _, r in match_he_israd(**_frames(he, ir)).iterrows()]
    assert r["match"] == "same profile"
    assert "SOC agrees in 0 of 4" in r["evidence"] and "SOC 0.3 vs 3 %" in r["evidence"]


def test_pseudo_replicates_compete_for_one_israd_profile():
    """He et al. copy one SOC profile to several ¹⁴C profiles: only the one whose ¹⁴C agrees is the same profile."""
    he = [_he(1, "Smith_2001", 10.0, d14c=[d - 80 for d in D14C]), _he(2, "Smith_2001", 10.0)]
    ir = [_ir("Smith_2003", "P1", 10.0)]
    t = match_he_israd(**_frames(he, ir))
    rows = _by_he(t)
    assert rows["he2016_2"]["match"] == "same profile"
    assert rows["he2016_1"]["match"] == "same study nearby"
    assert (t["match"] == "same profile").sum() == 1


def test_one_to_one_when_two_he_profiles_agree_with_one_israd_profile():
    he = [_he(1, "Smith_2001", 10.0), _he(2, "Smith_2001", 10.0)]
    ir = [_ir("Smith_2003", "P1", 10.0)]
    t = match_he_israd(**_frames(he, ir))
    same = t[t["match"] == "same profile"]
    assert len(same) == 1 and same["he_site_id"].iloc[0] == "he2016_1"  # ties: the lower profile id
    other = t[t["he_site_id"] == "he2016_2"].iloc[0]
    assert other["match"] == "same study nearby" and "same profile of another He profile" in other["evidence"]


def test_layers_at_shifted_depths_pair_by_identical_c14():
    """Another depth reference (He et al. re-referenced some profiles): identical Δ14C pairs the layers."""
    shifted = [(t + 12.0, b + 12.0) for t, b in DEPTHS]
    he = [_he(1, "Smith_2001", 10.0, depths=shifted)]
    ir = [_ir("Smith_2003", "P1", 10.0)]
    (r,) = [r for _, r in match_he_israd(**_frames(he, ir)).iterrows()]
    assert r["match"] == "same profile" and r["n_layers_agree"] == 4
    assert "paired by identical Δ14C at other depths" in r["evidence"]


def test_f14c_is_compared_where_d14c_is_missing():
    nan4 = [np.nan] * 4
    he_site, he_lay = _he(1, "Smith_2001", 10.0, d14c=nan4)
    ir_site, ir_lay = _ir("Smith_2003", "P1", 10.0, d14c=nan4)
    he_lay["f14c"] = [1.15, 1.06, 0.98, 0.85]
    ir_lay["f14c"] = [1.25, 1.16, 1.08, 0.95]  # 0.1 off: disagrees, although SOC is identical
    t = match_he_israd(**_frames([(he_site, he_lay)], [(ir_site, ir_lay)]))
    assert t["match"].tolist() == ["same study nearby"]


def test_empty_inputs_give_an_empty_table():
    he = [_he(1, "Smith_2001", 10.0)]
    ir = [_ir("Jones_2001", "P1", 50.0)]
    t = match_he_israd(**_frames(he, ir))
    assert t.empty and list(t.columns) == list(MATCH_COLUMNS)


# ----------------------------------------------------------------------------------------------------------------
# the forest-type table, on small frames


def _cands() -> pd.DataFrame:
    return pd.DataFrame(
        [("A_2000", "s1", "p1"), ("A_2000", "s1", "p2"), ("A_2000", "s2", "p3"), ("B_2001", "s", "p")],
        columns=list(ISRAD_KEYS),
    )


def _table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["entry_name", "site_name", "pro_name", "forest_type", "evidence", "confidence"])


def test_forest_type_rows_cover_entries_sites_and_profiles():
    t = _table(
        [
            ("A_2000", "s1", "", "ENF", "spruce", "high"),
            ("A_2000", "s2", "p3", "UNK", "no vegetation recorded", "low"),
            ("B_2001", "", "", "DBF", "beech", "medium"),
        ]
    )
    out = assign_israd_forest_types(_cands(), t)
    assert out["forest_type"].tolist() == ["ENF", "ENF", "UNK", "DBF"]
    assert out["table_row"].tolist() == [2, 2, 3, 4]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("A_2000", "", "", "ENF", "e", "high")], "B_2001 / s / p: covered by 0 rows"),
        (
            [
                ("A_2000", "", "", "ENF", "e", "high"),
                ("A_2000", "s1", "p1", "DBF", "e", "high"),
                ("B_2001", "", "", "DBF", "e", "low"),
            ],
            "A_2000 / s1 / p1: covered by 2 rows",
        ),
        ([("A_2000", "", "", "XYZ", "e", "high"), ("B_2001", "", "", "DBF", "e", "low")], "unknown forest_type 'XYZ'"),
        ([("A_2000", "", "", "ENF", "e", "high"), ("B_2001", "", "", "DBF", "e", "sure")], "confidence 'sure'"),
        ([("A_2000", "", "", "ENF", "", "high"), ("B_2001", "", "", "DBF", "e", "low")], "empty evidence"),
        (
            [
                ("A_2000", "", "", "ENF", "e", "high"),
                ("B_2001", "", "", "DBF", "e", "low"),
                ("C_1999", "", "", "DBF", "e", "low"),
            ],
            "line 4: covers no candidate profile",
        ),
    ],
)
def test_forest_type_table_errors_name_the_problem(rows, message):
    with pytest.raises(ValueError, match=message):
        assign_israd_forest_types(_cands(), _table(rows))


# ----------------------------------------------------------------------------------------------------------------
# the real data folder


@pytest.fixture(scope="module")
def real_data(data_dir):
    if not (data_dir / ISRAD_DIR / "layer.csv").is_file():
        pytest.skip(f"no ISRaD tables ({ISRAD_DIR}/) in {data_dir}")
    return data_dir


@pytest.fixture(scope="module")
def generated(real_data) -> pd.DataFrame:
    return build_source_matches(real_data)


def test_committed_source_matches_is_current(generated):
    """``data/source_matches.csv`` is what the code generates (rewrite it with ``python data/source_matches.py``)."""
    committed = pd.read_csv(project_data_dir() / "source_matches.csv", keep_default_na=False)
    assert list(committed.columns) == list(MATCH_COLUMNS)
    pd.testing.assert_frame_equal(committed.astype(str), generated.astype(str).reset_index(drop=True))


#: Pairs checked by hand, layer by layer, on the raw files (He et al. profile → ISRaD entry / site / profile):
KNOWN_PAIRS = {
    # Elzein & Balesdent 1995, Marly: 10 layers, identical depths (-2 to 110 cm), Δ14C and SOC (He et al.'s
    # soc_pct_reported is in g kg⁻¹: 430 vs ISRaD 43.0 %)
    "he2016_502": ("Elzein_1995", "Marly Orjon Elzein:48.87,2.05", "Marly Orjon Elzein:48.87,2.05_502"),
    # Guillet et al. 2010, beech FOU3: 12 layers, identical depths (-5.65 to 42.7 cm), SOC and Δ14C
    "he2016_495": ("Guillet_2010", "FOU", "FOU3:48.33,1.17_495"),
    # Lawrence et al. 2015, Cowlitz CW04: identical depths and Δ14C to 1e-5 ‰; He et al.'s SOC is 3–30× lower
    "he2016_159": ("Lawrence_2015", "EarlyEvansCreek1", "CW04_1979"),
    # O'Donnell et al. 2011 (He: Odonnell_USGSOF_2013), Hess Creek: the same 12 Δ14C values to 0.01 ‰ and SOC
    # within 5 % down to 77 cm, at depths shifted by 2–4 cm (He 0–3, 3–8 cm … = ISRaD 0–5, 5–11 cm …)
    "he2016_143": ("O'Donnell_2011", "Hess Creek", "HCCN_2"),
    # Trumbore & Harden 1997 (He: Trumbore_Unpublished), Gillam Road GR3: the same 8 Δ14C values, He et al.'s
    # depths 42 cm lower (He 30–32 cm = ISRaD -12 to -10 cm); He et al.'s SOC is ~20× lower
    "he2016_130": ("Trumbore_Harden_1997", "TH_1964Gillam", "GillamRoad_64burn_GR3"),
    # Manies et al. 2006 (USGS OFR; He: Manies_USGSOF_2006) = Czimczik et al. 2007 in ISRaD (rule 3b), Manitoba
    # black spruce: identical depths, SOC and Δ14C to 0.1 ‰ (146: 7 layers, -21 to 37 cm; 150: 8; 153: 7), 5–25 km
    "he2016_146": ("Czimczik_2007", "CZ_Old_Black_Spruce", "OBSD"),
    "he2016_150": ("Czimczik_2007", "CZ_1964burn_NSA", "T64D"),
    "he2016_153": ("Czimczik_2007", "CZ_1998burn", "T98burn"),
}


def test_hand_verified_pairs_are_the_same_profile(generated):
    rows = generated.set_index("he_site_id")
    for he, key in KNOWN_PAIRS.items():
        r = rows.loc[he]
        assert r["match"] == "same profile", (he, r["evidence"])
        assert tuple(r[k] for k in ISRAD_KEYS) == key, he


def test_same_profile_pairs_are_one_to_one(generated):
    same = generated[generated["match"] == "same profile"]
    assert not same["he_site_id"].duplicated().any()
    assert not same.duplicated(list(ISRAD_KEYS)).any()
    assert not generated["he_site_id"].duplicated().any()  # a He profile has at most one row of either kind
    nearby = generated[generated["match"] == "same study nearby"]
    assert (nearby["distance_km"] <= 5.0).all()


def test_israd_names_carrying_a_he_profile_number_agree(generated):
    """Many ISRaD profiles seeded from He et al. end in ``_<He profile number>``: an independent check of the pairs
    (only numbers that are a He et al. profile of the same study count; ``Maui_1`` is not He profile 1)."""
    he = pd.read_csv(project_data_dir() / "forest_types.csv")[["profile_id", "dataset"]]
    study_of = dict(zip(he["profile_id"], he["dataset"].map(study_key), strict=True))
    same = generated[generated["match"] == "same profile"]
    num = same["pro_name"].str.extract(r"_(\d+)$")[0].astype(float)
    named = [
        (int(n), r["he_profile_id"])
        for n, (_, r) in zip(num, same.iterrows(), strict=True)
        if n == n and study_of.get(int(n)) == study_key(r["entry_name"])
    ]
    assert len(named) >= 70
    assert [n for n, pid in named if n != pid] == []


def test_forest_type_table_covers_every_candidate_once(real_data):
    cand = israd_forest_candidates(data_dir=real_data)
    assert (len(cand), cand["entry_name"].nunique()) == (303, 56)
    typed = assign_israd_forest_types(cand)  # raises on a gap, an overlap, an unknown code
    assert len(typed) == len(cand) and set(typed["forest_type"]) <= set(KNOWN_TYPES)


def test_forest_types_agree_with_he_for_the_same_profile(real_data, generated):
    """Where an ISRaD candidate is a He et al. profile, the two tables give one forest type — except Chiti et al.
    (2010) Ankasa: ISRaD records broadleaf evergreen rain forest, He et al.'s veg_local says deciduous."""
    typed = assign_israd_forest_types(israd_forest_candidates(data_dir=real_data))
    same = generated[generated["match"] == "same profile"]
    he = pd.read_csv(project_data_dir() / "forest_types.csv")[["profile_id", "forest_type"]]
    x = typed.merge(same, on=list(ISRAD_KEYS)).merge(he, left_on="he_profile_id", right_on="profile_id")
    assert len(x) >= 60
    differ = x[x["forest_type_x"] != x["forest_type_y"]]
    assert differ["he_site_id"].tolist() == ["he2016_371"]
