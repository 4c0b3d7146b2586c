"""Where the data live: the raw files in a folder the user names (the package never ships them), and the
project's own small tables.

The raw-data folder is taken from, in order: an explicit argument (the CLI's ``--data-dir``), the
``BAYES_VMIMICS_DATA`` environment variable. ``data/README.md`` says where each raw file comes from.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..resources import project_data_dir

ENV_VAR = "BAYES_VMIMICS_DATA"
#: The project's own small tables (repository ``data/``, packaged as ``bayes_vmimics.project_tables``).
PROJECT_DATA_DIR = project_data_dir()


class DataFolderError(FileNotFoundError):
    """The raw-data folder (or a file in it) is missing."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None, *, required: bool = True) -> Path | None:
    """Return the raw-data folder.

    Args:
        data_dir: folder given by the user (path); if None, ``$BAYES_VMIMICS_DATA`` is used.
        required: if True, raise when no folder is configured or it does not exist; if False,
            return None instead.

    Returns:
        The folder as an absolute ``Path`` (or None when ``required`` is False and none is set).

    Raises:
        DataFolderError: no folder configured, or the folder does not exist.
    """
    src = "argument data_dir"
    if data_dir is None:
        env = os.environ.get(ENV_VAR)
        if not env:
            if required:
                raise DataFolderError(
                    f"no data folder given: pass --data-dir or set {ENV_VAR} to the folder holding the raw "
                    "files listed in data/README.md"
                )
            return None
        data_dir, src = env, f"${ENV_VAR}"
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        if required:
            raise DataFolderError(f"data folder {str(path)!r} (from {src}) does not exist")
        return None
    return path


def locate_data_dir(data_dir: str | os.PathLike | None = None, *, required: bool = True) -> Path | None:
    """Return the raw-data folder, strictly: a folder that is named but missing is always an error.

    Unlike :func:`resolve_data_dir` with ``required=False``, a ``data_dir`` or ``$BAYES_VMIMICS_DATA`` that
    does not exist (or is a file) never counts as "no folder": a mistyped path must not switch a study to
    its synthetic twin.

    Args:
        data_dir: folder given by the user (path); if None, ``$BAYES_VMIMICS_DATA`` is used.
        required: if True, no folder configured at all is an error; if False, None is returned then (bool).

    Returns:
        The folder as an absolute ``Path``, or None (none configured and ``required`` False).

    Raises:
        DataFolderError: the named folder does not exist or is a file (the message names it and where it came
            from); or none is configured and ``required`` (the message says where it looked and names
            ``--synthetic``).
    """
    src = "--data-dir"
    if data_dir is None or str(data_dir) == "":
        env = os.environ.get(ENV_VAR)
        if not env:
            if required:
                raise DataFolderError(
                    f"no data folder: --data-dir not given and ${ENV_VAR} not set. Pass --data-dir (or set "
                    f"{ENV_VAR}) to the folder holding the raw files listed in data/README.md, or run the "
                    "synthetic twin with --synthetic"
                )
            return None
        data_dir, src = env, f"${ENV_VAR}"
    path = Path(data_dir).expanduser().resolve()
    if path.is_file():
        raise DataFolderError(f"data folder {str(path)!r} (from {src}) is a file, not a folder")
    if not path.is_dir():
        raise DataFolderError(f"data folder {str(path)!r} (from {src}) does not exist")
    return path


def data_file(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Return the path of raw file ``name`` inside the data folder, checking that it exists.

    Args:
        name: file name, e.g. ``"he2016_forest_layers.csv"``.
        data_dir: folder (path) or None for ``$BAYES_VMIMICS_DATA``.

    Raises:
        DataFolderError: the folder or the file is missing (the message names both).
    """
    folder = resolve_data_dir(data_dir)
    path = folder / name
    if not path.is_file():
        raise DataFolderError(f"raw file {name!r} not found in data folder {str(folder)!r}; see data/README.md")
    return path


def read_table(path: str | os.PathLike, **kwargs):
    """Read a CSV file with pandas; an empty or unparsable file is a one-line ``ValueError`` naming it.

    Args:
        path: the file (path).
        **kwargs: passed to :func:`pandas.read_csv`.

    Returns:
        The table (pandas DataFrame).
    """
    import pandas as pd  # here: this module is imported before the CLI guards against Ctrl-C

    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{path}: the file is empty (no header line): restore it (see data/README.md)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())  # pandas' text ends in a newline: keep the error on one line
        raise ValueError(f"{path}: cannot parse CSV ({detail})") from exc
