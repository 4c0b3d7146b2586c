"""The study configurations and curated tables ship inside the package and are found through importlib.resources,
so that a wheel (or a Dask worker with the package installed) runs from any folder."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bayes_vmimics.config import MODEL_DIR, load_config
from bayes_vmimics.io.datadir import PROJECT_DATA_DIR
from bayes_vmimics.resources import model_dir, project_data_dir

REPO = Path(__file__).resolve().parents[1]


def test_resource_folders_hold_the_repository_files():
    assert model_dir() == MODEL_DIR and project_data_dir() == PROJECT_DATA_DIR
    for name in ("study_default.toml", "study_paper.toml", "study_quick.toml"):
        assert (model_dir() / name).read_bytes() == (REPO / "model" / name).read_bytes()
    for name in ("forest_types.csv", "site_split.csv", "profile_exclusions.csv", "qa_flags.csv"):
        assert (project_data_dir() / name).read_bytes() == (REPO / "data" / name).read_bytes()


def test_bare_config_name_resolves_from_any_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config("study_quick").study.name


@pytest.mark.integration
def test_wheel_carries_every_study_file_and_table(tmp_path):
    """Build the wheel as a user would (pip, build isolation) and list it: every ``model/*.toml`` and
    ``data/*.csv`` of the repository is in it, beside the package (about 10 s)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        if "Could not find a version" in proc.stderr or "No matching distribution" in proc.stderr:
            pytest.skip("no package index reachable to build the wheel")
        raise AssertionError(proc.stderr)
    (wheel,) = tmp_path.glob("bayes_vmimics-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in sorted((REPO / "model").glob("*.toml")):
        assert f"bayes_vmimics/study_files/{path.name}" in names
    for path in sorted((REPO / "data").glob("*.csv")):
        assert f"bayes_vmimics/project_tables/{path.name}" in names
    assert "bayes_vmimics/_core.py" in names
    # every module of every subpackage (a subpackage missing from pyproject's list would install without it)
    for path in sorted((REPO / "bayes_vmimics").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if "__pycache__" not in rel:
            assert rel in names, f"{rel} is not in the wheel (add its package to [tool.setuptools] packages)"
