"""Output folders that say what produced them: ``run.json``, checked before a run writes anything.

Every command that writes a folder first writes ``run.json`` there: the command, the package version, the
seed, the data files with their sha256, the site list, the full configuration and the command line. A run
into a folder whose ``run.json`` differs in what decides the results (its *identity*: everything above but
the settings that only extend or re-read a run, e.g. more emcee steps, more worker processes) stops with
an error that names each difference and the two ways on: ``--fresh`` (discard the folder's results) or
another ``--out``. The same identity resumes (chains, stage-1 checkpoints).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from . import __version__

#: Name of the fingerprint file in every output folder.
RUN_FILE = "run.json"

#: Configuration keys that may change between invocations into one folder: they extend a run (n_steps) or
#: only change how it runs or is summarised, never the draws already made.
VOLATILE_CONFIG = (
    "sampler.n_steps",
    "sampler.n_processes",
    "sampler.progress",
    "sampler.discard",
    "sampler.thin",
    "sampler.max_draws",
)


class RunFolderError(ValueError):
    """An output folder that cannot take this run (other inputs, a file in the way, unreadable contents)."""


def check_out_path(out: Path, option: str = "--out") -> Path:
    """``out`` must be a folder or not exist yet, and no part of it a file.

    Raises:
        RunFolderError: ``out`` or one of its parents is a file (names it).
    """
    out = Path(out)
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            where = "is a file" if p == out else f"lies under {p}, which is a file"
            raise RunFolderError(f"{option} {out} {where}: give a folder")
    return out


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def fingerprint(
    command: str,
    *,
    seed: int,
    config: dict,
    sites: list[str],
    data_files: dict[str, str],
    data_folder: str | None,
    settings: dict | None = None,
    argv: list[str] | None = None,
    unused_sections: tuple[str, ...] = (),
) -> dict:
    """The fingerprint of a run (the content of ``run.json``).

    Args:
        command: the subcommand, e.g. "calibrate" (–).
        seed: master seed (integer).
        config: the full configuration (``StudyConfig.to_dict()``) (–).
        sites: site ids in problem order (–).
        data_files: file label → sha256 of each file read (–).
        data_folder: the raw-data folder, recorded only (path).
        settings: command options outside the configuration that decide the results (e.g. stage-1 walkers),
            compared like the configuration (–).
        argv: the command line, recorded only (–).
        unused_sections: configuration sections the command does not read (e.g. ``optimize`` for
            calibrate): recorded, not compared (–).
    """
    return {
        "command": command,
        "package_version": __version__,
        "seed": int(seed),
        "data_files": dict(sorted(data_files.items())),
        "sites": list(sites),
        "configuration": config,
        "settings": dict(settings or {}),
        "data_folder": data_folder,
        "argv": list(sys.argv if argv is None else argv),
        "unused_sections": list(unused_sections),
    }


def _identity(fp: dict) -> dict:
    unused = tuple(f"{s}." for s in fp.get("unused_sections", []))
    flat = {
        f"configuration.{k}": v for k, v in _flatten(fp.get("configuration", {})).items() if not k.startswith(unused)
    }
    for k in VOLATILE_CONFIG:
        flat.pop(f"configuration.{k}", None)
    flat.update({f"settings.{k}": v for k, v in _flatten(fp.get("settings", {})).items()})
    for k in ("command", "package_version", "seed", "sites"):
        flat[k] = fp.get(k)
    flat.update({f"data file {k}": v for k, v in fp.get("data_files", {}).items()})
    return flat


def differences(old: dict, new: dict) -> list[str]:
    """What differs between two fingerprints, one phrase each (identity only)."""
    a, b = _identity(old), _identity(new)
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, "<absent>"), b.get(k, "<absent>")
        if _normal(va) == _normal(vb):
            continue
        if k == "sites":
            gone, new_ = sorted(set(va or []) - set(vb or [])), sorted(set(vb or []) - set(va or []))
            out.append(f"sites: {len(va or [])} → {len(vb or [])} (removed {gone[:5]}, added {new_[:5]})")
        elif k.startswith("data file"):
            out.append(f"{k}: sha256 {str(va)[:12]} → {str(vb)[:12]}")
        else:
            out.append(f"{k}: {va!r} → {vb!r}")
    return out


def _normal(v):
    # JSON turns tuples into lists
    return json.loads(json.dumps(v, default=str))


def prepare_out(out: Path, fp: dict, *, fresh: bool, products: list[str], resumable: list[str]) -> dict | None:
    """Check (or clear) an output folder before a run and write its ``run.json``.

    Args:
        out: the output folder (path).
        fp: this run's :func:`fingerprint` (–).
        fresh: discard the folder's results first (``--fresh``) (bool).
        products: files (glob patterns relative to ``out``) this command writes; ``--fresh`` deletes them (–).
        resumable: those of ``products`` that a rerun continues from (chains, checkpoints): present without a
            ``run.json``, they are not trusted (–).

    Returns:
        The previous ``run.json`` (same identity), or None.

    Raises:
        RunFolderError: ``out`` is a file or under one; ``run.json`` differs (each difference named) or is
            unreadable; resumable files without ``run.json``.
    """
    out = check_out_path(out)
    run_file = out / RUN_FILE
    ways = f"Rerun with --fresh to discard the results in {out}, or choose another --out"
    previous = None
    if fresh:
        for pattern in [*products, RUN_FILE]:
            for p in out.glob(pattern):
                if p.is_file() or p.is_symlink():
                    p.unlink()
    elif run_file.exists():
        try:
            previous = json.loads(run_file.read_text())
            if not isinstance(previous, dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError) as err:
            raise RunFolderError(f"{run_file} is unreadable ({err}). {ways}.") from None
        previous["unused_sections"] = fp.get("unused_sections", [])
        diff = differences(previous, fp)
        if diff:
            more = f"; and {len(diff) - 8} more" if len(diff) > 8 else ""
            raise RunFolderError(
                f"{out} holds a run made with other inputs (see its {RUN_FILE}): "
                + "; ".join(diff[:8])
                + more
                + f". {ways}."
            )
    else:
        found = sorted(str(p.relative_to(out)) for pattern in resumable for p in out.glob(pattern))
        if found:
            raise RunFolderError(
                f"{out} holds {', '.join(found[:3])}{' …' if len(found) > 3 else ''} but no {RUN_FILE}, so what "
                f"produced it is unknown. {ways}."
            )
    record = dict(fp)
    history = list((previous or {}).get("invocations", []))
    history.append({"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "argv": fp.get("argv")})
    record["invocations"] = history
    out.mkdir(parents=True, exist_ok=True)
    write_json(run_file, record)
    return previous


def update_run(out: Path, **fields) -> None:
    """Add ``fields`` to the last invocation recorded in ``out/run.json`` (e.g. how it ended)."""
    run_file = Path(out) / RUN_FILE
    record = json.loads(run_file.read_text())
    record["invocations"][-1].update(fields)
    write_json(run_file, record)


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (a temporary file, then a rename): an interrupted write leaves the old file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
