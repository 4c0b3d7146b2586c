"""Tests for two curation filters of the He et al. (2016) profiles (bayes_vmimics.io.sites; data/README.md §3).

* SOC = 0 without a reported value (``soc_pct_reported`` empty) is a missing value, not a measurement.
* Duplicate SOC profiles (pseudo-replicates): usable profiles with identical kept layers are kept once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rawfiles import raw_layer, summary_count, write_forest_types

from bayes_vmimics.io import datadir as D
from bayes_vmimics.io import he2016 as H
from bayes_vmimics.io import inventory as INV
from bayes_vmimics.io import israd as I
from bayes_vmimics.io import qa as Q
from bayes_vmimics.io import sites as S
from bayes_vmimics.io import tables as T

ZERO = Q.SOC_ZERO_REASON
FEWER = f"fewer than {Q.MIN_LAYERS} mineral layers with SOC and bulk density"
DEPTHS = ((0.0, 5.0), (5.0, 15.0), (15.0, 30.0))
SOC = (4.0, 2.0, 1.0)
BD = (0.9, 1.1, 1.3)
HE = (H.HE2016_SOURCE,)  # synthetic He et al. files: He-only tables


# ------------------------------------------------------------------ synthetic raw files
def _layer(pid, top, bottom, soc, bd, *, reported="same", d14c=50.0, **kw):
    kw["soc_pct_reported"] = soc if reported == "same" else reported
    return raw_layer(pid, top, bottom, soc, bd, d14c_permil=d14c, **kw)


def _profile(pid, soc=SOC, bd=BD, depths=DEPTHS, **kw):
    return [_layer(pid, t, b, c, d, **kw) for (t, b), c, d in zip(depths, soc, bd, strict=True)]


def _build(tmp_path, rows, *, drop_columns=(), **kw):
    p = tmp_path / "layers.csv"
    pd.DataFrame(rows).drop(columns=list(drop_columns)).to_csv(p, index=False)
    pids = sorted({r["profile_id"] for r in rows})
    ft = write_forest_types(tmp_path, pids, "ENF")
    kw.setdefault("exclusions", False)  # the repository table names He et al. profiles absent here
    kw.setdefault("split", tmp_path / "no_split.csv")
    return S.build_site_tables(path=p, sources=HE, forest_types=ft, **kw)


# ------------------------------------------------------------------ A: SOC = 0 without a reported value
def test_zero_soc_without_reported_value_is_missing(tmp_path):
    rows = _profile(1)  # a normal profile
    rows += _profile(2, soc=(0.0, 0.0, 0.0), reported=np.nan)  # He et al.'s placeholder zeros (cf. 312, 313)
    rows += [*_profile(3, soc=(5.0, 3.0, 2.0)), _layer(3, 30.0, 50.0, 0.0, 1.4, reported=np.nan)]  # cf. 563
    t = _build(tmp_path, rows)
    s = t.sites.set_index("profile_id")
    # profile 2 has no layer left, so it fails the existing rule; profile 3 loses only its zero layer
    assert not s.at[2, "usable"] and s.at[2, "exclusion_reason"] == FEWER and s.at[2, "n_layers"] == 0
    assert s.at[3, "usable"] and s.at[3, "n_layers"] == 3 and s.at[3, "max_depth_cm"] == 30.0
    assert s.at[1, "usable"]
    assert not (t.layers["soc_pct"] <= 0).any()
    # logged per layer with the CSV line, column and value, and counted once per layer in the summary
    zero = t.log[t.log["reason"] == ZERO]
    assert list(zero["row"]) == [5, 6, 7, 11]  # header = line 1; profile 2 on lines 5-7, profile 3's 4th layer
    assert set(zero["column"]) == {"soc_pct"} and (zero["value"] == 0.0).all()
    assert summary_count(t, ZERO) == 4
    assert summary_count(t, "missing SOC") == 0
    assert summary_count(t, FEWER) == 1


def test_zero_soc_with_a_reported_value_is_kept(tmp_path):
    # the filter keys on the missing reported value: a value the study reported is not second-guessed here
    rows = _profile(1) + _profile(2, soc=(1.0, 0.5, 0.0), reported=0.0)
    t = _build(tmp_path, rows)
    assert t.sites.set_index("profile_id").at[2, "n_layers"] == 3
    assert summary_count(t, ZERO) == 0


def test_file_without_reported_column_treats_zero_as_missing(tmp_path):
    rows = _profile(1) + _profile(2, soc=(1.0, 0.5, 0.0))
    t = _build(tmp_path, rows, drop_columns=["soc_pct_reported"])
    assert t.sites.set_index("profile_id").at[2, "n_layers"] == 2
    assert summary_count(t, ZERO) == 1


def test_reported_column_must_be_numeric(tmp_path):
    rows = _profile(1)
    rows[1]["soc_pct_reported"] = "<0.1"
    with pytest.raises(ValueError, match=r"layers\.csv: row 3, column 'soc_pct_reported': not a number"):
        _build(tmp_path, rows)


def test_observations_use_every_kept_layer_and_never_skip_a_site(tmp_path):
    from bayes_vmimics.config import StudyConfig
    from bayes_vmimics.study import real_site_observations

    rows = _profile(1) + _profile(2, soc=(0.0, 0.0, 0.0), reported=np.nan)
    rows += [*_profile(3, soc=(5.0, 3.0, 2.0)), _layer(3, 30.0, 50.0, 0.0, 1.4, reported=np.nan)]
    t = _build(tmp_path, rows)
    cfg = StudyConfig().replace(data={"forest_type": "ENF", "split": "all"})
    obs = real_site_observations(t, cfg)
    assert [o.site_id for o in obs] == ["he2016_1", "he2016_3"]
    assert [len(o.top_cm) for o in obs] == [3, 3] and all((o.soc_mg_cm3 > 0).all() for o in obs)
    # a site chosen by id that has no kept layer is an error naming it, not silently left out
    by_id = StudyConfig().replace(data={"site_ids": ["he2016_1", "he2016_2"]})
    with pytest.raises(ValueError, match=r"not usable for calibration: he2016_2 \(fewer than 3"):
        real_site_observations(t, by_id)


# ------------------------------------------------------------------ B: duplicate SOC profiles
@pytest.fixture
def replicate_rows():
    """Profiles 1-3 one SOC profile (different ¹⁴C; 2 with an organic layer above), 4 differs in one value,
    5 equals 1 up to float noise, 6 equals 1 but has no coordinates, 7 and 8 equal each other."""
    rows = _profile(1, d14c=100.0)
    rows += [_layer(2, -3.0, 0.0, 40.0, 0.1, d14c=200.0), *_profile(2, d14c=-50.0)]
    rows += _profile(3, d14c=10.0)
    rows += _profile(4, soc=(4.0, 2.0, 1.01))
    rows += _profile(5, soc=(4.0 + 1e-9, 2.0, 1.0), bd=(0.9, 1.1 - 1e-9, 1.3))
    rows += _profile(6, lat=np.nan)
    rows += _profile(7, soc=(7.0, 3.0, 1.5)) + _profile(8, soc=(7.0, 3.0, 1.5))
    return rows


def test_duplicates_kept_once_counted_and_logged(tmp_path, replicate_rows):
    t = _build(tmp_path, replicate_rows)
    s = t.sites.set_index("profile_id")
    assert list(t.usable_sites()["profile_id"]) == [1, 4, 7]
    for pid, kept in ((2, "he2016_1"), (3, "he2016_1"), (5, "he2016_1"), (8, "he2016_7")):
        assert not s.at[pid, "usable"] and s.at[pid, "duplicate_of"] == kept
        assert s.at[pid, "exclusion_reason"] == f"duplicate SOC profile of {kept} (pseudo-replicate)"
    # kept profiles, a near copy and a profile failing another filter are no duplicates
    assert s.loc[[1, 4, 6, 7], "duplicate_of"].isna().all()
    assert s.at[6, "exclusion_reason"] == "missing coordinates"
    # logged once per dropped profile, with its group
    entry = t.log[t.log["profile_id"] == 3]["reason"]
    assert list(entry) == [
        "profile: duplicate SOC profile of he2016_1 (pseudo-replicate): group of 4 with identical kept layers "
        "(top, bottom, SOC, BD): he2016_1 (kept), he2016_2, he2016_3, he2016_5"
    ]
    assert summary_count(t, "duplicate SOC profile of a kept profile (pseudo-replicate), 2 group(s)") == 4
    # the kept profile's ¹⁴C is the one used; the dropped profiles' layers stay in the table, unchanged
    assert (t.layers.loc[t.layers["profile_id"] == 1, "d14c_permil"] == 100.0).all()
    assert (t.layers.loc[t.layers["profile_id"] == 3, "d14c_permil"] == 10.0).all()


def test_naming_a_dropped_profile_by_id_is_an_error(tmp_path, replicate_rows):
    from bayes_vmimics.config import StudyConfig
    from bayes_vmimics.study import real_site_observations

    ex = tmp_path / "excl.csv"
    row = dict(profile_id=4, site_id="he2016_4", dataset="Study_4", reason="r", evidence="e", decision="exclude")
    pd.DataFrame([row]).to_csv(ex, index=False)
    t = _build(tmp_path, replicate_rows, exclusions=ex)
    ok = StudyConfig().replace(data={"site_ids": ["he2016_1", "he2016_7"]})
    assert [o.site_id for o in real_site_observations(t, ok)] == ["he2016_1", "he2016_7"]
    for sid, why in (("he2016_3", r"duplicate SOC profile of he2016_1"), ("he2016_4", r"excluded by review")):
        cfg = StudyConfig().replace(data={"site_ids": ["he2016_1", sid]})
        with pytest.raises(ValueError, match=rf"not usable for calibration: {sid} \({why}"):
            real_site_observations(t, cfg)


def test_lowest_usable_profile_is_kept(tmp_path, replicate_rows):
    # profile 1 excluded by review: the group's lowest usable id (2) is kept instead
    ex = tmp_path / "excl.csv"
    row = dict(profile_id=1, site_id="he2016_1", dataset="Study_1", reason="r", evidence="e", decision="exclude")
    pd.DataFrame([row]).to_csv(ex, index=False)
    t = _build(tmp_path, replicate_rows, exclusions=ex)
    s = t.sites.set_index("profile_id")
    assert s.at[1, "exclusion_reason"] == "excluded by review (excl.csv)" and pd.isna(s.at[1, "duplicate_of"])
    assert s.at[2, "usable"] and list(s.loc[[3, 5], "duplicate_of"]) == ["he2016_2", "he2016_2"]


def test_deduplicate_false_keeps_every_profile(tmp_path, replicate_rows):
    t = _build(tmp_path, replicate_rows, deduplicate=False)
    assert list(t.usable_sites()["profile_id"]) == [1, 2, 3, 4, 5, 7, 8]
    assert t.sites["duplicate_of"].isna().all()
    assert "duplicate SOC profile" not in INV.summarize(t)


def test_comparison_uses_kept_layers_only(tmp_path):
    # equal kept layers, different raw layers: profile 2 has an extra layer without bulk density at the bottom
    rows = _profile(1) + [*_profile(2), _layer(2, 30.0, 60.0, 0.5, np.nan)]
    # same SOC and BD, different depths: not a duplicate
    rows += _profile(3, depths=((0.0, 5.0), (5.0, 15.0), (15.0, 35.0)))
    t = _build(tmp_path, rows)
    s = t.sites.set_index("profile_id")
    assert s.at[2, "duplicate_of"] == "he2016_1" and s.at[3, "usable"]


def test_dropped_duplicate_in_saved_split_is_noted(tmp_path, replicate_rows):
    split = tmp_path / "split.csv"
    pd.DataFrame(dict(site_id=["he2016_1", "he2016_2", "he2016_4"], split="calibration")).to_csv(split, index=False)
    t = _build(tmp_path, replicate_rows, split=split)
    assert "note: 1 saved split row(s) name profiles that are not usable, skipped: he2016_2" in INV.summarize(t)


# ------------------------------------------------------------------ C: QA rules (Q.QA_RULES)
DEPTHS4 = ((0.0, 5.0), (5.0, 15.0), (15.0, 30.0), (30.0, 50.0))
BD4 = (0.9, 1.1, 1.3, 1.4)


def _qa_profile(pid, soc, depths=DEPTHS4, bd=BD4, **kw):
    """A profile whose N gives C:N 12 (a plausible soil)."""
    return [_layer(pid, t, b, c, d, n_pct=c / 12.0, **kw) for (t, b), c, d in zip(depths, soc, bd, strict=True)]


@pytest.fixture
def planted_rows():
    """Clean profiles 1-4; 5 a x100 unit slip of a clean profile (SOC and N); 6 an isolated near-zero layer at
    15-30 cm; 7 an exact copy of 1; 8 a partial copy of 9 (same dataset and place, the top 3 of 9's layers with
    other BD); 10 thirty 2-cm layers. All DBF."""
    rows = []
    for pid in (1, 2, 3, 4):
        rows += _qa_profile(pid, [x * (1 + 0.1 * pid) for x in (4.0, 2.0, 1.0, 0.6)])
    rows += _qa_profile(5, (0.04, 0.02, 0.01, 0.006))
    rows += _qa_profile(6, (4.0, 2.0, 0.02, 1.0, 0.8), depths=(*DEPTHS4, (50.0, 80.0)), bd=(*BD4, 1.5))
    rows += _qa_profile(7, [x * 1.1 for x in (4.0, 2.0, 1.0, 0.6)], d14c=-20.0)
    site = dict(dataset="Harkness_1986", lat=54.22, lon=-2.85)
    depths9 = ((0.0, 5.0), (5.0, 10.0), (10.0, 15.0), (15.0, 25.0), (25.0, 35.0))
    rows += _qa_profile(9, (6.4, 2.3, 1.5, 1.1, 0.8), depths=depths9, bd=(0.78, 0.91, 0.91, 0.91, 0.91), **site)
    rows += _qa_profile(8, (6.4, 2.3, 1.5), depths=depths9[:3], bd=(0.91, 0.78, 0.78), sample_year=1984.0, **site)
    thin = [(2.0 * k, 2.0 * k + 2.0) for k in range(30)]
    rows += _qa_profile(10, [3.0 * np.exp(-t / 30.0) for t, _ in thin], depths=thin, bd=[1.2] * 30)
    return rows


def _qa_build(tmp_path, rows, **kw):
    p = tmp_path / "layers.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    ft = write_forest_types(tmp_path, sorted({r["profile_id"] for r in rows}), "DBF")
    return S.build_site_tables(
        path=p, sources=HE, forest_types=ft, exclusions=False, split=tmp_path / "no_split.csv", **kw
    )


def test_qa_catches_planted_faults(tmp_path, planted_rows):
    t = _qa_build(tmp_path, planted_rows)
    q = t.qa
    assert list(q.columns) == list(T.QA_COLUMNS)
    found = list(q[["site_id", "layer", "rule", "decision"]].itertuples(index=False, name=None))
    assert found == [
        ("he2016_6", "15-30", Q.QA_ISOLATED_LOW, "exclude"),
        ("he2016_5", "profile", Q.QA_UNIT_SLIP, "exclude"),
        ("he2016_7", "profile", Q.QA_DUPLICATE, "exclude"),
        ("he2016_8", "profile", Q.QA_NEAR_DUPLICATE, "exclude"),
        ("he2016_10", "profile", Q.QA_MANY_THIN, "downweight"),
    ]
    ev = q.set_index("site_id")["evidence"]
    assert "SOC 0.02 % between 2 % (5-15 cm) and 1 % (30-50 cm)" in ev["he2016_6"]
    assert "x100 = 0.6-4 %" in ev["he2016_5"] and "C:N 12" in ev["he2016_5"]
    assert "he2016_9 (5 layers)" in ev["he2016_8"] and "BD differs in 3 layer(s)" in ev["he2016_8"]
    assert ev["he2016_10"].startswith("30 layers (median thickness 2 cm) > 3 x the median 4 layers")
    assert q.loc[q["layer"] == "15-30", "source_row"].tolist() == [24]  # 20 rows of profiles 1-5, header
    # the decisions applied: the layer and the three profiles are out, the thin profile stays, downweighted
    s = t.sites.set_index("profile_id")
    assert list(t.usable_sites()["profile_id"]) == [1, 2, 3, 4, 6, 9, 10]
    assert s.at[5, "exclusion_reason"] == f"likely unit slip: SOC about 100x too low (QA {Q.QA_UNIT_SLIP})"
    assert s.at[7, "duplicate_of"] == "he2016_1" and s.at[8, "duplicate_of"] == "he2016_9"
    assert s.at[8, "exclusion_reason"] == "near-duplicate SOC profile of he2016_9 (partial copy, pseudo-replicate)"
    lay6 = t.layers[t.layers["profile_id"] == 6]
    assert s.at[6, "n_layers"] == 4 and 15.0 not in set(lay6["top_cm"])
    assert t.log.loc[t.log["row"] == 24, "reason"].tolist() == [f"isolated near-zero layer (QA {Q.QA_ISOLATED_LOW})"]
    # per-layer flags; the excluded profiles' layers stay in the table, flagged
    flag = t.layers.groupby("profile_id")["qa_flag"].agg(set)
    assert flag[10] == {Q.QA_MANY_THIN} and flag[5] == {Q.QA_UNIT_SLIP} and flag[8] == {Q.QA_NEAR_DUPLICATE}
    # summary: one line per rule with its decision
    for rule, n in ((Q.QA_ISOLATED_LOW, 1), (Q.QA_UNIT_SLIP, 1), (Q.QA_NEAR_DUPLICATE, 1), (Q.QA_MANY_THIN, 1)):
        assert summary_count(t, f"{rule} ({Q.QA_RULES[rule]})") == n


def test_clean_profiles_get_no_flag(tmp_path, planted_rows):
    t = _qa_build(tmp_path, planted_rows)
    clean = [1, 2, 3, 4, 9]
    assert not t.qa["profile_id"].isin(clean).any()
    assert (t.layers.loc[t.layers["profile_id"].isin(clean), "qa_flag"] == "").all()
    assert (t.layers.loc[t.layers["profile_id"] == 6, "qa_flag"] == "").all()  # the rest of profile 6 is clean


def test_qa_false_applies_no_rule_but_the_pseudo_replicates(tmp_path, planted_rows):
    t = _qa_build(tmp_path, planted_rows, qa=False)
    assert list(t.usable_sites()["profile_id"]) == [1, 2, 3, 4, 5, 6, 9, 10]
    assert t.sites.set_index("profile_id").at[6, "n_layers"] == 5
    assert set(t.qa["rule"]) == {Q.QA_DUPLICATE, Q.QA_NEAR_DUPLICATE}
    t = _qa_build(tmp_path, planted_rows, qa=False, deduplicate=False)
    assert t.qa.empty and (t.layers["qa_flag"] == "").all()


def test_unit_slip_high_and_rich_topsoil_not_a_slip(tmp_path):
    rows = []
    for pid in (1, 2, 3):
        rows += _qa_profile(pid, [x * (1 + 0.1 * pid) for x in (0.4, 0.2, 0.1, 0.06)])
    rows += _qa_profile(4, (40.0, 20.0, 10.0, 6.0))  # x100 too high
    # a low profile whose topsoil x100 would exceed SOC_PCT_MAX is no unit slip (cf. he2016_203)
    rows += _qa_profile(5, (1.0, 0.002, 0.001, 0.001))
    t = _qa_build(tmp_path, rows)
    q = t.qa[t.qa["rule"] == Q.QA_UNIT_SLIP]
    assert q["site_id"].tolist() == ["he2016_4"] and "x0.01 = 0.06-0.4 %" in q["evidence"].iloc[0]
    s = t.sites.set_index("profile_id")
    assert s.at[4, "exclusion_reason"] == f"likely unit slip: SOC about 100x too high (QA {Q.QA_UNIT_SLIP})"
    assert s.at[5, "usable"]


def test_layer_flags_keep_the_layer(tmp_path):
    rows = []
    for pid in (1, 2, 3):
        rows += _qa_profile(pid, [x * (1 + 0.1 * pid) for x in (4.0, 2.0, 1.0, 0.6)])
    rows += _qa_profile(4, (2.0, 1.0, 0.3, 0.04))  # deepest layer near the detection limit
    rows += _qa_profile(5, (2.0, 0.8, 0.5, 0.4), bd=(0.9, 0.3, 1.3, 1.4))  # light mineral layer with 0.8 % C
    rows += [dict(r, n_pct=12.0) for r in _qa_profile(6, (2.0, 1.0, 0.5, 0.3))]  # the N column holds C:N
    rows += _qa_profile(7, (2.0, 0.3, 2.0, 1.0))  # SOC up 6.7x with depth
    rows += _qa_profile(8, (12.0, 3.0, 1.0, 0.5), bd=(1.3,) * 4)  # one BD for a 12 % C layer and the subsoil
    rows += _qa_profile(9, (12.0, 3.0, 1.0, 0.5), bd=(0.6, 1.1, 1.3, 1.3))  # the same, BD by layer: clean
    t = _qa_build(tmp_path, rows)
    found = sorted(t.qa[["profile_id", "layer", "rule", "decision"]].itertuples(index=False, name=None))
    assert found == sorted(
        [
            (4, "30-50", Q.QA_SOC_LOW, "flag"),
            (5, "5-15", Q.QA_LOW_BD_LOW_SOC, "flag"),
            *[(6, f"{a:g}-{b:g}", Q.QA_CN, "flag") for a, b in DEPTHS4],
            (7, "15-30", Q.QA_SOC_INCREASE, "flag"),
            (8, "0-5", Q.QA_CONSTANT_BD, "flag"),
        ]
    )
    assert t.sites["usable"].all() and len(t.layers) == 9 * 4
    # Adams (1973): OM = 1.724 x 12 = 20.69 %, BD = 100 / (20.69/0.244 + 79.31/1.3) = 0.6859 g cm-3
    ev = t.qa.set_index("profile_id").at[8, "evidence"]
    assert "Adams (1973) with that BD as mineral BD gives 0.6859 g cm-3, i.e. 82.31 instead of 156 mg C" in ev
    lay = t.layers.set_index(["profile_id", "top_cm"])["qa_flag"]
    assert lay[(4, 30.0)] == Q.QA_SOC_LOW and lay[(4, 0.0)] == "" and lay[(7, 15.0)] == Q.QA_SOC_INCREASE


def test_write_qa_table_round_trip(tmp_path, planted_rows):
    t = _qa_build(tmp_path, planted_rows)
    out = Q.write_qa_table(t, tmp_path / "qa.csv")
    back = pd.read_csv(out)
    assert list(back.columns) == list(T.QA_COLUMNS) and len(back) == len(t.qa)
    assert back["evidence"].tolist() == t.qa["evidence"].tolist()
    assert out.read_text() == Q.qa_table_text(t)


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def real(data_dir):
    """The default build: every source in the data folder (He et al. and, with its subfolder, ISRaD)."""
    if not (data_dir / H.HE2016_FILE).is_file():
        pytest.skip(f"{H.HE2016_FILE} absent from {data_dir}")
    return S.build_site_tables(data_dir)


@pytest.fixture(scope="module")
def real_he(data_dir):
    """The He-only build (the paper comparison)."""
    if not (data_dir / H.HE2016_FILE).is_file():
        pytest.skip(f"{H.HE2016_FILE} absent from {data_dir}")
    return S.build_site_tables(data_dir, sources=HE)


def test_raw_zero_soc_layers_have_no_reported_value(data_dir):
    raw = H.load_he2016_layers(data_dir)
    zero = raw["soc_pct"] == 0
    assert zero.sum() == 82 and raw.loc[zero, "soc_pct_reported"].isna().all()
    assert (raw.loc[zero, "bottom_cm_mineral0"] > 0).all()  # all mineral layers
    # the reported column is empty only where soc_pct is 0 or missing
    assert not (raw["soc_pct_reported"].isna() & (raw["soc_pct"] > 0)).any()
    assert sorted(raw.loc[zero, "dataset"].unique()) == [
        "Agnelli_2002",
        "Dorr_1989",
        "Kondo_2010",
        "Ladyman_1980",
        "Milton_1998",
        "Pessenda_2001",
        "Tegen_1996",
    ]


def test_real_zero_soc_profiles_not_usable(real):
    s = real.sites.set_index("site_id")
    for sid in ("he2016_312", "he2016_313", "he2016_310", "he2016_311"):
        assert not s.at[sid, "usable"] and s.at[sid, "n_layers"] == 0 and s.at[sid, "exclusion_reason"] == FEWER
    assert s.at["he2016_563", "usable"] and s.at["he2016_563", "n_layers"] == 9
    assert summary_count(real, ZERO) == 82
    assert (real.layers["soc_mg_cm3"] > 0).all() and np.isfinite(real.layers["soc_mg_cm3"]).all()


def test_real_schulze_pits_kept_once(real):
    s = real.sites.set_index("profile_id")
    pits = s.loc[450:461]
    assert len(pits) == 12 and pits["usable"].sum() == 1 and pits.loc[450, "usable"]
    assert (pits.loc[451:461, "duplicate_of"] == "he2016_450").all()


def test_real_no_two_usable_profiles_identical(real):
    # an independent signature: the kept layers written out as text at the comparison precision
    lay = real.layers[real.layers["site_id"].isin(real.sites.loc[real.sites["usable"], "site_id"])]
    text = lay.assign(
        key=lay["top_cm"].map("{:.2f}".format)
        + "-"
        + lay["bottom_cm"].map("{:.2f}".format)
        + ":"
        + lay["soc_pct"].map("{:.3f}".format)
        + "@"
        + lay["bd_g_cm3"].map("{:.3f}".format)
    )
    sig = text.sort_values(["site_id", "top_cm"]).groupby("site_id")["key"].agg("|".join)
    assert sig.is_unique
    # and dropping them was needed: among He et al.'s profiles there are 17 groups, 43 surplus profiles (+ 2 partial
    # copies of he2016_366, section C)
    he = real.sites[real.sites["source"] == H.HE2016_SOURCE]
    exact = he["exclusion_reason"].fillna("").str.startswith("duplicate SOC profile")
    assert exact.sum() == 43 and he.loc[exact, "duplicate_of"].nunique() == 17
    assert he["duplicate_of"].notna().sum() == 45


def test_real_duplicate_groups_within_one_split_half_and_type(real):
    # He et al.'s groups (an ISRaD copy of a He profile is not usable and has no split; its type is ISRaD's)
    s = real.sites[real.sites["source"] == H.HE2016_SOURCE]
    members = s[s["duplicate_of"].notna()].assign(group=lambda d: d["duplicate_of"])
    kept = s[s["site_id"].isin(members["group"])].assign(group=lambda d: d["site_id"])
    groups = pd.concat([kept, members])
    assert (groups.groupby("group")["forest_type"].nunique() == 1).all()
    assert (groups.groupby("group")["split"].nunique(dropna=False) == 1).all()


def test_real_counts_after_all_filters(real, real_he):
    # He-only: after the SOC = 0 filter, the pseudo-replicates and the QA rules (he2016_131 BNF validation: unit
    # slip; 364 and 370 DBF calibration: partial copies of 366)
    u = real_he.usable_sites()
    assert len(u) == 114 and int(u["has_c14"].sum()) == 111
    # the default build adds ISRaD's usable profiles (data/README.md §6) and leaves the He rows as they are
    d = real.usable_sites()
    assert sorted(d.loc[d["source"] == H.HE2016_SOURCE, "site_id"]) == sorted(u["site_id"])
    if (d["source"] == I.ISRAD_SOURCE).any():
        assert len(d) == 288 and int(d["has_c14"].sum()) == 225
        isr = d[d["source"] == I.ISRAD_SOURCE]["forest_type"].value_counts().to_dict()
        assert isr == {"ENF": 51, "EBF": 31, "DBF": 67, "BNF": 25}
        assert d["split"].isin(["calibration", "validation"]).all()
    expected = {  # forest type: (calibration, with 14C, validation, with 14C)
        "ENF": (13, 11, 22, 22),
        "EBF": (19, 19, 19, 18),
        "DBF": (12, 12, 13, 13),
        "BNF": (9, 9, 7, 7),
    }
    for ft, (cal, cal14, val, val14) in expected.items():
        x = u[u["forest_type"] == ft]
        c, v = x[x["split"] == "calibration"], x[x["split"] == "validation"]
        assert (len(c), int(c["has_c14"].sum()), len(v), int(v["has_c14"].sum())) == (cal, cal14, val, val14), ft


def test_real_observations_are_the_usable_sites_with_all_their_layers(real):
    from bayes_vmimics.config import StudyConfig
    from bayes_vmimics.study import real_site_observations

    u = real.usable_sites().set_index("site_id")
    for ft in T.FOUR_TYPES:
        obs = real_site_observations(real, StudyConfig().replace(data={"forest_type": ft, "split": "all"}))
        x = u[u["forest_type"] == ft]
        assert sorted(o.site_id for o in obs) == sorted(x.index)
        assert all(len(o.top_cm) == x.at[o.site_id, "n_layers"] for o in obs)


# ------------------------------------------------------------------ real data: QA rules
def test_committed_qa_table_is_what_the_code_generates(real):
    committed = D.PROJECT_DATA_DIR / Q.QA_TABLE_FILE
    assert committed.read_text(encoding="utf-8") == Q.qa_table_text(real), (
        f"{committed} is stale: rebuild it with `python analyses/00_prepare_data.py --write-qa`"
    )


def test_real_qa_findings(real):
    q = real.qa.set_index(["site_id", "rule"])
    s = real.sites.set_index("site_id")
    # he2016_13: 0.0085 % at 82-102 cm between 1.28 % and 0.76 %: the layer is dropped, the profile stays
    assert q.loc[("he2016_13", Q.QA_ISOLATED_LOW), "layer"] == "82-102"
    assert s.at["he2016_13", "usable"] and 82.0 not in set(
        real.layers.loc[real.layers["site_id"] == "he2016_13", "top_cm"]
    )
    # he2016_131: 0.005-0.029 % C at BD 1.5 in a boreal topsoil, its "N" 15.6-24.6 %: x100 slip, excluded
    assert not s.at["he2016_131", "usable"] and ("he2016_131", Q.QA_UNIT_SLIP) in q.index
    # he2016_216 is caught by the rule as well as by the review table
    assert q.loc[("he2016_216", Q.QA_UNIT_SLIP), "evidence"].endswith(
        "also excluded by review (data/profile_exclusions.csv)"
    )
    # Harkness 1986 (Meathop Wood): 364 and 370 are partial copies of 366's SOC profile
    for sid in ("he2016_364", "he2016_370"):
        assert s.at[sid, "duplicate_of"] == "he2016_366" and ("he2016_366", Q.QA_NEAR_DUPLICATE) not in q.index
    # he2016_462 (52 layers of 2 cm) is downweighted, not dropped
    assert q.loc[("he2016_462", Q.QA_MANY_THIN), "decision"] == "downweight" and s.at["he2016_462", "usable"]
    assert real.layers.loc[real.layers["site_id"] == "he2016_462", "qa_flag"].str.contains(Q.QA_MANY_THIN).all()
    # he2016_139 (ENF): one BD, 1.28 g cm-3, for all six layers, with 17.4 % C at 0-5 cm: flagged, kept
    c = real.qa[real.qa["rule"] == Q.QA_CONSTANT_BD]
    assert c.loc[c["site_id"] == "he2016_139", "layer"].tolist() == ["0-5", "5-14"]
    top = c[(c["site_id"] == "he2016_139") & (c["layer"] == "0-5")]["evidence"].item()
    assert "gives 0.5625 g cm-3, i.e. 98.02 instead of 223.1 mg C cm-3" in top
    assert s.at["he2016_139", "usable"] and s.at["he2016_139", "n_layers"] == 6


def test_real_nothing_dropped_silently(real):
    s, q = real.sites, real.qa
    assert set(q["decision"]) <= {"exclude", "downweight", "flag"}
    assert (q["decision"] == q["rule"].map(Q.QA_RULES)).all()
    # every profile a QA or pseudo-replicate rule excludes has its row in the QA table
    # (an ISRaD profile that is a He et al. profile is "same profile as he2016_N", with the He profile's own reason)
    reason = s["exclusion_reason"].fillna("")
    by_rule = reason.str.contains(r"\(QA |pseudo-replicate") & ~reason.str.startswith("same profile as")
    assert by_rule.sum() > 0
    assert set(s.loc[by_rule, "site_id"]) <= set(q.loc[q["decision"] == "exclude", "site_id"])
    # every excluded layer is out of the layer table and logged with its CSV line
    lay = q[(q["decision"] == "exclude") & (q["layer"] != "profile")]
    assert not lay["source_row"].isin(real.layers["source_row"]).any()
    assert set(lay["source_row"]) <= set(real.log["row"].dropna().astype(int))
    # flags and downweights name usable profiles only, and each shows in the layers' qa_flag
    soft = q[q["decision"] != "exclude"]
    assert s.set_index("site_id").loc[soft["site_id"], "usable"].all()
    for r in soft.itertuples():
        x = real.layers[real.layers["site_id"] == r.site_id]
        x = x if r.layer == "profile" else x[x["source_row"] == r.source_row]
        assert len(x) and x["qa_flag"].str.split(";").map(lambda f, rule=r.rule: rule in f).all()
