"""Tests for the reviewable profile-exclusion table (``data/profile_exclusions.csv``; bayes_vmimics.io.sites)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rawfiles import raw_layer, summary_count, write_forest_types

from bayes_vmimics.io import he2016 as H
from bayes_vmimics.io import inventory as INV
from bayes_vmimics.io import qa as Q
from bayes_vmimics.io import sites as S

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("BAYES_VMIMICS_DATA", REPO.parent / "shared" / "data"))
HAVE_DATA = (DATA_DIR / H.HE2016_FILE).is_file()
needs_data = pytest.mark.skipif(
    not HAVE_DATA, reason=f"raw data folder {DATA_DIR} absent (set BAYES_VMIMICS_DATA; see data/README.md)"
)
REVIEW = "excluded by review (data/profile_exclusions.csv)"
HE = (H.HE2016_SOURCE,)  # the He-only tables: the review table and today's counts are about He et al. profiles


# ------------------------------------------------------------------ synthetic raw files
_layer = raw_layer


@pytest.fixture
def raw_file(tmp_path):
    """Three usable profiles (1, 2, 3) and one (4) with too few layers; profile 2 has tiny SOC."""
    rows = [_layer(1, t, t + 10) for t in (0, 10, 20)]
    rows += [_layer(2, t, t + 10, soc=0.1, bd=0.45) for t in (0, 10, 20)]
    rows += [_layer(3, t, t + 10, soc=2.5) for t in (0, 10, 20)]  # not a copy of profile 1 (duplicate filter)
    rows += [_layer(4, 0, 10)]
    p = tmp_path / "layers.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    ft = write_forest_types(tmp_path, [1, 2, 3, 4])
    return p, ft


def _row(pid=2, **kw):
    r = dict(
        profile_id=pid,
        site_id=f"he2016_{pid}",
        dataset=f"Study_{pid}",
        reason="soc_units_suspect",
        evidence="soc_pct 0.1 at BD 0.45",
        decision="exclude",
    )
    r.update(kw)
    return r


def _table(tmp_path, rows, name="excl.csv", columns=None):
    p = tmp_path / name
    pd.DataFrame(rows, columns=columns or list(H.EXCLUSION_COLUMNS)).to_csv(p, index=False)
    return p


def _build(raw_file, tmp_path, exclusions, split=None):
    path, ft = raw_file
    return S.build_site_tables(
        path=path, sources=HE, forest_types=ft, exclusions=exclusions, split=split or tmp_path / "no_split.csv"
    )


# ------------------------------------------------------------------ applying the table
def test_excluded_profile_dropped_counted_and_logged(raw_file, tmp_path):
    t = _build(raw_file, tmp_path, _table(tmp_path, [_row(2)]))
    s = t.sites.set_index("profile_id")
    assert not s.at[2, "usable"]
    assert s.at[2, "exclusion_reason"] == "excluded by review (excl.csv)"
    assert s.at[1, "usable"] and s.at[3, "usable"]
    assert list(t.usable_sites()["profile_id"]) == [1, 3]
    # dropped, not corrected: the layers keep the raw values
    lay = t.layers[t.layers["profile_id"] == 2]
    assert len(lay) == 3 and np.allclose(lay["soc_pct"], 0.1)
    # logged like the other profile filters, with the reason code and the evidence
    entry = t.log[t.log["profile_id"] == 2]
    assert len(entry) == 1 and pd.isna(entry["row"].iloc[0])
    assert entry["reason"].iloc[0] == (
        "profile: excluded by review (excl.csv): soc_units_suspect (soc_pct 0.1 at BD 0.45)"
    )
    assert summary_count(t, "excluded by review (excl.csv)", exact=True) == 1
    assert "usable profiles: 2 " in INV.summarize(t)


def test_disabled_or_empty_table_keeps_every_profile(raw_file, tmp_path):
    for exclusions in (False, _table(tmp_path, [])):
        t = _build(raw_file, tmp_path, exclusions)
        s = t.sites.set_index("profile_id")
        assert s.at[2, "usable"] and list(t.usable_sites()["profile_id"]) == [1, 2, 3]
        assert "excluded by review" not in INV.summarize(t)
    with pytest.raises(TypeError, match="exclusions"):
        _build(raw_file, tmp_path, True)


def test_review_reason_takes_precedence(raw_file, tmp_path):
    # profile 4 also has too few layers: it is counted once, under the review
    t = _build(raw_file, tmp_path, _table(tmp_path, [_row(2), _row(4)]))
    s = t.sites.set_index("profile_id")
    assert s.at[4, "exclusion_reason"] == "excluded by review (excl.csv)"
    assert (t.sites["exclusion_reason"] == "excluded by review (excl.csv)").sum() == 2
    assert t.sites["exclusion_reason"].str.startswith("fewer than").sum() == 0


def test_saved_split_row_of_excluded_profile_is_skipped(raw_file, tmp_path):
    from bayes_vmimics.config import StudyConfig
    from bayes_vmimics.study import real_site_observations

    split = tmp_path / "split.csv"
    pd.DataFrame(dict(site_id=["he2016_1", "he2016_2", "he2016_3"], split="calibration")).to_csv(split, index=False)
    t = _build(raw_file, tmp_path, _table(tmp_path, [_row(2)]), split=split)
    note = t.log[t.log["reason"].str.contains("saved split")]
    assert len(note) == 1 and note["value"].iloc[0] == "he2016_2" and note["file"].iloc[0] == "split.csv"
    assert "note: 1 saved split row(s) name profiles that are not usable, skipped: he2016_2" in INV.summarize(t)
    cfg = StudyConfig().replace(data={"forest_type": "DBF", "split": "calibration"})
    assert [o.site_id for o in real_site_observations(t, cfg)] == ["he2016_1", "he2016_3"]
    t_all = _build(raw_file, tmp_path, False, split=split)
    assert not t_all.log["reason"].str.contains("saved split").any()
    assert [o.site_id for o in real_site_observations(t_all, cfg)] == ["he2016_1", "he2016_2", "he2016_3"]


# ------------------------------------------------------------------ validating the table
@pytest.mark.parametrize(
    "rows, columns, pattern",
    [
        (
            [{**_row(2), "comment": "x"}],
            [*H.EXCLUSION_COLUMNS, "comment"],
            r"excl\.csv: row 1 \(header\): unknown column\(s\) 'comment'",
        ),
        ([_row(2), _row(2)], None, r"excl\.csv: row 3, column 'profile_id': duplicate profile 2"),
        ([_row(2), _row(99)], None, r"excl\.csv: row 3, column 'profile_id': profile 99 is not in layers\.csv"),
        ([_row("abc")], None, r"excl\.csv: row 2, column 'profile_id': not a profile id \('abc'\)"),
        ([_row(2, decision="keep")], None, r"excl\.csv: row 2, column 'decision': 'keep' not in \('exclude',\)"),
        ([_row(2, reason="")], None, r"excl\.csv: row 2, column 'reason': empty \(profile 2\)"),
        ([_row(2, evidence=" ")], None, r"excl\.csv: row 2, column 'evidence': empty \(profile 2\)"),
        (
            [_row(2, site_id="he2016_3")],
            None,
            r"excl\.csv: row 2, column 'site_id': 'he2016_3' does not match profile 2",
        ),
        (
            [_row(2, dataset="Study_3")],
            None,
            r"excl\.csv: row 2, column 'dataset': 'Study_3' does not match layers\.csv, where profile 2 is 'Study_2'",
        ),
    ],
)
def test_bad_table_raises_naming_file_and_value(raw_file, tmp_path, rows, columns, pattern):
    bad = _table(tmp_path, rows, columns=columns)
    with pytest.raises(ValueError, match=pattern):
        _build(raw_file, tmp_path, bad)


def test_missing_column_raises(raw_file, tmp_path):
    bad = tmp_path / "excl.csv"
    pd.DataFrame([_row(2)]).drop(columns=["evidence"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"excl\.csv: row 1 \(header\): missing column\(s\) 'evidence'"):
        _build(raw_file, tmp_path, bad)


def test_repository_table_is_well_formed():
    ex = H.load_profile_exclusions()
    assert list(ex.columns) == list(H.EXCLUSION_COLUMNS)
    assert ex["profile_id"].is_unique and set(ex["decision"]) == {"exclude"}
    assert ex.set_index("profile_id").at[216, "reason"] == "soc_units_suspect"


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def real():
    if not HAVE_DATA:
        pytest.skip(f"raw data folder {DATA_DIR} absent (set BAYES_VMIMICS_DATA; see data/README.md)")
    # without the table and without the QA rules (whose unit-slip rule catches he2016_216 on its own)
    return S.build_site_tables(DATA_DIR, sources=HE), S.build_site_tables(
        DATA_DIR, sources=HE, exclusions=False, qa=False
    )


@needs_data
def test_repository_table_matches_raw_file():
    raw = H.load_he2016_layers(DATA_DIR)
    H.load_profile_exclusions(raw=raw)  # every profile exists, site_id and dataset agree
    p = raw[raw["profile_id"] == 216]
    # the evidence recorded in the table: SOC 0.088-0.14 % at measured BD 0.41-0.50 g cm-3
    assert p["soc_pct"].min() == pytest.approx(0.088) and p["soc_pct"].max() == pytest.approx(0.14)
    assert p["bd_g_cm3"].between(0.41, 0.50).all() and not p["bd_is_filled"].any()
    assert (p["dataset"] == "Koarashi_2009").all()


@needs_data
def test_he2016_216_excluded_by_default(real):
    t, _ = real
    s = t.sites.set_index("site_id")
    assert not s.at["he2016_216", "usable"]
    assert s.at["he2016_216", "exclusion_reason"] == REVIEW
    assert "he2016_216" not in set(t.usable_sites()["site_id"])
    assert summary_count(t, REVIEW, exact=True) == 1
    # counts with the later filters too (SOC = 0 as missing, pseudo-replicates, QA; tests/test_curation_filters.py)
    u = t.usable_sites()
    assert len(u) == 114 and int(u["has_c14"].sum()) == 111
    dbf = u[u["forest_type"] == "DBF"]
    assert len(dbf) == 25 and (dbf["split"] == "calibration").sum() == 12 and (dbf["split"] == "validation").sum() == 13


@needs_data
def test_unit_slip_rule_catches_he2016_216_without_the_table():
    t = S.build_site_tables(DATA_DIR, sources=HE, exclusions=False)
    s = t.sites.set_index("site_id")
    assert not s.at["he2016_216", "usable"]
    assert s.at["he2016_216", "exclusion_reason"] == f"likely unit slip: SOC about 100x too low (QA {Q.QA_UNIT_SLIP})"
    row = t.qa[(t.qa["site_id"] == "he2016_216")]
    assert list(row["rule"]) == [Q.QA_UNIT_SLIP] and list(row["decision"]) == ["exclude"]
    assert "also excluded by review" not in row["evidence"].iloc[0]
    # with the table, the review is the reason and the QA table says both caught it
    t2 = S.build_site_tables(DATA_DIR, sources=HE)
    ev = t2.qa.loc[t2.qa["site_id"] == "he2016_216", "evidence"].iloc[0]
    assert ev.endswith("also excluded by review (data/profile_exclusions.csv)")


@needs_data
def test_disabling_the_table_brings_he2016_216_back(real):
    _, t = real
    s = t.sites.set_index("site_id")
    assert s.at["he2016_216", "usable"] and pd.isna(s.at["he2016_216", "exclusion_reason"])
    # without the QA rules he2016_131 (unit slip, BNF) is back too; the partial copies 364, 370 stay out
    u = t.usable_sites()
    assert len(u) == 116 and (u["forest_type"] == "DBF").sum() == 26
    assert "excluded by review" not in INV.summarize(t)


@needs_data
def test_calibration_sites_skip_he2016_216(real):
    from bayes_vmimics.config import StudyConfig
    from bayes_vmimics.study import real_site_observations

    cfg = StudyConfig().replace(data={"forest_type": "DBF", "split": "calibration"})
    with_table, without = ({o.site_id for o in real_site_observations(t, cfg)} for t in real)
    assert "he2016_216" not in with_table and "he2016_216" in without
    assert with_table == without - {"he2016_216"}
