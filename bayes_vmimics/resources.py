"""Where the package finds the files it ships: the study configurations and the project's curated tables.

Both live at the top of the repository, where a reader finds them (``model/`` and ``data/``), and the built
package carries them as the resource packages ``bayes_vmimics.study_files`` and ``bayes_vmimics.project_tables``
(``pyproject.toml`` maps the folders). Reading them through :mod:`importlib.resources` makes a wheel, a Dask
worker with the package installed, or an editable install all find the same files.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path

__all__ = ["model_dir", "project_data_dir"]


def _folder(package: str, repo_folder: str) -> Path:
    spec = find_spec(package)
    if spec is None:  # a source tree used without installing (PYTHONPATH=.)
        path = Path(__file__).resolve().parents[1] / repo_folder
    else:
        # a folder without __init__.py is a namespace package: files() gives a MultiplexedPath, so take
        # the (single) folder the import system found for it
        locations = list(spec.submodule_search_locations or [])
        path = Path(locations[0]) if locations else Path(str(files(package)))
    if not path.is_dir():
        raise FileNotFoundError(
            f"the package's {repo_folder}/ files are missing (looked in {path}); reinstall bayes_vmimics"
        )
    return path


def model_dir() -> Path:
    """The folder of the shipped study configurations (``model/`` in the repository; path)."""
    return _folder("bayes_vmimics.study_files", "model")


def project_data_dir() -> Path:
    """The folder of the project's own tables (``data/`` in the repository: forest types, split, QA; path)."""
    return _folder("bayes_vmimics.project_tables", "data")
