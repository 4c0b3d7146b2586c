"""``bayes-vmimics sites`` (bayes_vmimics.sites_cli): the inventory of every profile considered, its summary and map.

Real data (skipped without the data folder): the CSV has one row per profile of every source, the usable counts of
data/README.md, a split for every usable site and the covariate completeness target; a data folder holding only
the He et al. files gives He et al. alone; bad arguments give a one-line error.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from bayes_vmimics.cli import main
from bayes_vmimics.io import he2016 as H
from bayes_vmimics.io import inventory as INV
from bayes_vmimics.io import qa as Q
from bayes_vmimics.io import sites as S
from bayes_vmimics.io import tables as T

FOUR = list(T.FOUR_TYPES)


def _has_israd(data_dir) -> bool:
    return any(p.is_dir() and p.name.lower().startswith("israd") for p in data_dir.iterdir())


@pytest.fixture(scope="module")
def real_run(data_dir, tmp_path_factory):
    if not (data_dir / H.HE2016_FILE).is_file():
        pytest.skip(f"{H.HE2016_FILE} absent from {data_dir}")
    out = tmp_path_factory.mktemp("sites") / "sites.csv"
    assert main(["sites", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    return out, pd.read_csv(out, low_memory=False)


def test_one_row_per_profile_with_its_evidence_and_covariates(real_run, data_dir):
    out, inv = real_run
    assert inv["site_id"].is_unique and (inv["source"] == "he2016").sum() == 300
    assert len(inv) == 300 + (4591 if _has_israd(data_dir) else 0)
    for c in (
        "profile_id",
        "entry_name",
        "site_name",
        "pro_name",
        "forest_type_evidence",
        "reason",
        "n_layers_soc",
        "n_layers_f14c",
        "top_cm",
        "bottom_cm",
        "split",
        "mat_c_source",
        "map_mm_source",
        "clay_source",
        "litter_above_source",
        "lignin_n_source",
        "qa_flags",
    ):
        assert c in inv, c
    he, isr = inv[inv["source"] == "he2016"], inv[inv["source"] == "israd"]
    assert he["profile_id"].notna().all() and he["entry_name"].isna().all()
    assert isr["profile_id"].isna().all() and isr["entry_name"].notna().all()
    u = inv[inv["usable"] & inv["forest_type"].isin(FOUR)]
    assert u["forest_type_evidence"].notna().all() and u["split"].isin(["calibration", "validation"]).all()
    assert (u["n_layers_soc"] >= Q.MIN_LAYERS).all() and (u["top_cm"] >= 0).all() and (u["bottom_cm"] > 0).all()
    assert inv.loc[~inv["usable"], "reason"].notna().all()
    assert set(inv["mat_c_source"].dropna()) <= set(INV.SOURCE_CATEGORIES)
    # the He-only counts of data/README.md and ISRaD's of §6
    assert (u["source"] == "he2016").sum() == 114
    if _has_israd(data_dir):
        assert u.groupby("source")["forest_type"].value_counts().loc["israd"].to_dict() == {
            "DBF": 67,
            "ENF": 51,
            "EBF": 31,
            "BNF": 25,
        }
    # QA flags: he2016_462 is downweighted (many thin layers)
    assert "many_thin_layers" in inv.set_index("site_id").at["he2016_462", "qa_flags"]
    png = out.with_name("sites_map.png")
    assert png.is_file() and png.stat().st_size > 20_000


def test_covariates_known_or_imputed_at_95_percent(real_run):
    _, inv = real_run
    comp = INV.covariate_completeness(inv)
    for name, _ in INV.COMPLETENESS_COVARIATES:
        assert (comp[f"{name}_known"] + comp[f"{name}_imputed"] >= 0.95).all(), name
    # a He profile without measured clay gets the forest-type median of measured He clay, marked imputed
    u = inv[inv["usable"] & inv["forest_type"].isin(FOUR) & (inv["source"] == "he2016")]
    raw = S.build_site_tables(sources=("he2016",)).sites
    med = raw[raw["clay_is_measured"]].groupby("forest_type")["clay_pct"].median() / 100.0
    imp = u[u["clay_source"] == "imputed"]
    assert len(imp) > 0 and imp["clay_source_detail"].str.contains("median").all()
    np.testing.assert_allclose(imp["clay_fraction"], imp["forest_type"].map(med))


def test_sources_and_forest_type_select(data_dir, tmp_path, capsys):
    if not (data_dir / H.HE2016_FILE).is_file():
        pytest.skip(f"{H.HE2016_FILE} absent from {data_dir}")
    out = tmp_path / "bnf.csv"
    assert (
        main(["sites", "--data-dir", str(data_dir), "--sources", "he2016", "--forest-type", "BNF", "--out", str(out)])
        == 0
    )
    inv = pd.read_csv(out)
    assert (inv["source"] == "he2016").all() and (inv["forest_type"] == "BNF").all()
    assert int(inv["usable"].sum()) == 16
    text = capsys.readouterr().out
    assert "BNF  he2016      16    16" in text and (tmp_path / "bnf_map.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sources", "he2016,isard"], "--sources: isard not a source (known: he2016, israd, or all)"),
        (["--forest-type", "XYZ"], "--forest-type: unknown forest type XYZ"),
    ],
)
def test_bad_arguments_give_one_line(args, message, tmp_path, capsys):
    assert main(["sites", "--data-dir", str(tmp_path), *args, "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_folder_of_he_files_only(data_dir, tmp_path, capsys):
    """A data folder without the ISRaD subfolder: the default sources are He et al. alone."""
    if not (data_dir / H.HE2016_FILE).is_file():
        pytest.skip(f"{H.HE2016_FILE} absent from {data_dir}")
    folder = tmp_path / "data"
    folder.mkdir()
    for f in data_dir.iterdir():
        if f.is_file() and f.name.startswith("he2016"):
            shutil.copy(f, folder / f.name)
    assert S.resolve_sources(None, folder) == ("he2016",)
    out = tmp_path / "sites.csv"
    assert main(["sites", "--data-dir", str(folder), "--out", str(out)]) == 0
    inv = pd.read_csv(out)
    assert len(inv) == 300 and (inv["source"] == "he2016").all()
    u = inv[inv["usable"] & inv["forest_type"].isin(FOUR)]
    assert len(u) == 114 and int((u["n_layers_f14c"] > 0).sum()) == 111
    assert "israd" not in capsys.readouterr().out.split("wrote")[0]
