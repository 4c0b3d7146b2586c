"""Tests for two curation filters of the He et al. (2016) profiles (bayes_vmimics.io.sites; data/README.md §3).

* SOC = 0 without a reported value (``soc_pct_reported`` empty) is a missing value, not a measurement.
* Duplicate SOC profiles (pseudo-replicates): usable profiles with identical kept layers are kept once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rawfiles import raw_layer, summary_count, write_forest_types

from bayes_vmimics.io import sites as S

ZERO = S.SOC_ZERO_REASON
FEWER = f"fewer than {S.MIN_LAYERS} mineral layers with SOC and bulk density"
DEPTHS = ((0.0, 5.0), (5.0, 15.0), (15.0, 30.0))
SOC = (4.0, 2.0, 1.0)
BD = (0.9, 1.1, 1.3)


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
    return S.build_site_tables(path=p, forest_types=ft, **kw)


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
    from bayes_vmimics.cli import real_site_observations
    from bayes_vmimics.config import StudyConfig

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
    from bayes_vmimics.cli import real_site_observations
    from bayes_vmimics.config import StudyConfig

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
    assert "duplicate SOC profile" not in S.summarize(t)


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
    assert "note: 1 saved split row(s) name profiles that are not usable, skipped: he2016_2" in S.summarize(t)


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def real(data_dir):
    if not (data_dir / S.HE2016_FILE).is_file():
        pytest.skip(f"{S.HE2016_FILE} absent from {data_dir}")
    return S.build_site_tables(data_dir)


def test_raw_zero_soc_layers_have_no_reported_value(data_dir):
    raw = S.load_he2016_layers(data_dir)
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
    # and dropping them was needed: without the filter there are 17 groups, 43 surplus profiles
    n = real.sites["duplicate_of"].notna().sum()
    assert n == 43 and real.sites["duplicate_of"].nunique() == 17


def test_real_duplicate_groups_within_one_split_half_and_type(real):
    s = real.sites
    members = s[s["duplicate_of"].notna()].assign(group=lambda d: d["duplicate_of"])
    kept = s[s["site_id"].isin(members["group"])].assign(group=lambda d: d["site_id"])
    groups = pd.concat([kept, members])
    assert (groups.groupby("group")["forest_type"].nunique() == 1).all()
    assert (groups.groupby("group")["split"].nunique(dropna=False) == 1).all()


def test_real_counts_after_both_filters(real):
    u = real.usable_sites()
    assert len(u) == 117 and int(u["has_c14"].sum()) == 114
    expected = {  # forest type: (calibration, with 14C, validation, with 14C)
        "ENF": (13, 11, 22, 22),
        "EBF": (19, 19, 19, 18),
        "DBF": (14, 14, 13, 13),
        "BNF": (9, 9, 8, 8),
    }
    for ft, (cal, cal14, val, val14) in expected.items():
        x = u[u["forest_type"] == ft]
        c, v = x[x["split"] == "calibration"], x[x["split"] == "validation"]
        assert (len(c), int(c["has_c14"].sum()), len(v), int(v["has_c14"].sum())) == (cal, cal14, val, val14), ft


def test_real_observations_are_the_usable_sites_with_all_their_layers(real):
    from bayes_vmimics.cli import real_site_observations
    from bayes_vmimics.config import StudyConfig

    u = real.usable_sites().set_index("site_id")
    for ft in S.FOUR_TYPES:
        obs = real_site_observations(real, StudyConfig().replace(data={"forest_type": ft, "split": "all"}))
        x = u[u["forest_type"] == ft]
        assert sorted(o.site_id for o in obs) == sorted(x.index)
        assert all(len(o.top_cm) == x.at[o.site_id, "n_layers"] for o in obs)
