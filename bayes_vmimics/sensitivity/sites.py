"""One sensitivity analysis per site: design → model runs → indices, each site's result checkpointed in its file.

The methods are one class each (:class:`~bayes_vmimics.sensitivity.morris.Morris`,
:class:`~bayes_vmimics.sensitivity.sobol.Sobol`, :class:`~bayes_vmimics.sensitivity.given_data.GivenData`) with the
same three methods (``settings``, ``design``, ``indices``), registered in :data:`METHODS`. A finished site is
written to ``<out_dir>/<method>_sites/<site_id>.nc`` and read back, not recomputed, on a rerun with the same
settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..interrupt import deferred_interrupt
from ..parameters import PARAMETER_NAMES
from ..scheduler import open_executor
from .evaluate import DEFAULT_DEPTHS_CM, SiteEvaluator, evaluate_design
from .executor import MapFn
from .given_data import GivenData
from .inputs import check_names, default_bounds
from .morris import Morris
from .sobol import Sobol

#: method name → its class (one module each).
METHODS = {m.name: m for m in (Morris, Sobol, GivenData)}


@dataclass
class SiteAnalysis:
    """The design, outputs and indices of one analysis at one site.

    Attributes:
        site_id: the site (–).
        method: "morris", "sobol" or "posterior" (–).
        X: the design, shape (n_rows, n_parameters) (parameter units).
        Y: the outputs, shape (n_rows, n_outputs) (output units).
        names: parameter of each column of X (–).
        output_names: name of each output (–).
        indices: the long table of :func:`morris_indices`, :func:`sobol_indices` or :func:`given_data_indices`
            (–).
        settings: what produced it (seed, sizes, bounds), for resuming (–).
        seconds: wall time of the model runs (s).
    """

    site_id: str
    method: str
    X: np.ndarray
    Y: np.ndarray
    names: tuple[str, ...]
    output_names: list[str]
    indices: pd.DataFrame
    settings: dict = field(default_factory=dict)
    seconds: float = float("nan")

    @property
    def n_failed(self) -> int:
        """Design rows where the model failed (every output NaN) (count)."""
        return int(np.all(~np.isfinite(self.Y), axis=1).sum()) if self.Y.size else 0

    def to_dataset(self) -> xr.Dataset:
        """As an xarray Dataset (design, outputs, the indices table as variables over (output, parameter))."""
        ds = xr.Dataset(
            {
                "X": (("run", "parameter"), self.X),
                "Y": (("run", "output"), self.Y),
            },
            coords={"parameter": list(self.names), "output": self.output_names},
        )
        if not self.indices.empty:
            tab = self.indices.set_index(["output", "parameter"])
            for col in tab.columns:
                da = tab[col].to_xarray().reindex(output=self.output_names, parameter=list(self.names))
                ds[f"index_{col}"] = da.astype(float)
        ds.attrs.update(
            site_id=self.site_id,
            method=self.method,
            settings=json.dumps(self.settings, sort_keys=True),
            seconds=float(self.seconds),
            n_failed=self.n_failed,
        )
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> SiteAnalysis:
        """Inverse of :meth:`to_dataset`."""
        cols = [v for v in ds.data_vars if v.startswith("index_")]
        if cols:
            tab = ds[cols].to_dataframe().rename(columns=lambda c: c[len("index_") :]).reset_index()
            tab = tab.dropna(subset=[c for c in tab.columns if c not in ("output", "parameter")], how="all")
            for c in ("n_trajectories", "n_dropped", "n_base", "n_rows"):
                if c in tab:
                    tab[c] = tab[c].astype(int)
        else:
            tab = pd.DataFrame()
        return cls(
            site_id=ds.attrs["site_id"],
            method=ds.attrs["method"],
            X=ds["X"].values,
            Y=ds["Y"].values,
            names=tuple(str(p) for p in ds["parameter"].values),
            output_names=[str(o) for o in ds["output"].values],
            indices=tab,
            settings=json.loads(ds.attrs["settings"]),
            seconds=float(ds.attrs.get("seconds", np.nan)),
        )


def _site_file(out_dir: Path, method: str, site_id: str) -> Path:
    return Path(out_dir) / f"{method}_sites" / f"{site_id}.nc"


def _write_dataset(ds: xr.Dataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".nc.tmp")
    with deferred_interrupt():
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)


def _load_finished(path: Path, settings: dict) -> SiteAnalysis | None:
    """The finished analysis in ``path`` if it was made with ``settings``; None if there is none.

    Raises:
        ValueError: ``path`` holds an analysis made with other settings.
    """
    if not path.is_file():
        return None
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        done = SiteAnalysis.from_dataset(ds.load())
    if done.settings != json.loads(json.dumps(settings, sort_keys=True)):
        raise ValueError(
            f"{path} holds an analysis with other settings ({done.settings}); give another --out, or --fresh to "
            "discard it"
        )
    return done


def make_method(method: str, **options):
    """The method named ``method``, given those of ``options`` that are its fields (a caller may pass the options
    of every method: ``n_trajectories``, ``num_levels``, ``n_base``, ``draws``, ``with_delta``; None = default).

    Raises:
        ValueError: an unknown method. TypeError: an option that no method has.
    """
    if method not in METHODS:
        raise ValueError(f"method must be 'morris', 'sobol' or 'posterior', got {method!r}")
    known = {f.name for m in METHODS.values() for f in dataclasses.fields(m)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown option(s) {unknown} of a sensitivity method; known: {sorted(known)}")
    mine = {f.name for f in dataclasses.fields(METHODS[method])}
    return METHODS[method](**{k: v for k, v in options.items() if k in mine and v is not None})


def _checked_bounds(names, bounds) -> np.ndarray:
    bounds = default_bounds(names) if bounds is None else np.asarray(bounds, float)
    if bounds.shape != (len(names), 2) or np.any(bounds[:, 1] <= bounds[:, 0]):
        raise ValueError(f"bounds must be (n, 2) with lower < upper for {list(names)}, got {bounds.tolist()}")
    return bounds


# 12 parameters: what and on what (method, func), the labels and the file (site_id, out_dir, extra_settings), the
# box (names, bounds, output_names), the run (map_fn, progress, seed); the method's own sizes travel in **options.
def analyse_site(
    method: str,
    func: Callable[[np.ndarray], np.ndarray],
    *,
    site_id: str = "function",
    names: Sequence[str] = PARAMETER_NAMES,
    bounds=None,
    output_names: Sequence[str] | None = None,
    seed: int = 0,
    map_fn: MapFn | None = None,
    progress: bool = True,
    out_dir: str | os.PathLike | None = None,
    extra_settings: dict | None = None,
    **options,
) -> SiteAnalysis:
    """One sensitivity analysis of ``func``: design → runs through ``map_fn`` → SALib indices; resumable.

    The same code path serves a site (``func`` a :class:`~bayes_vmimics.sensitivity.evaluate.SiteEvaluator`) and
    an analytic test function.

    Args:
        method: "morris" (Table 1 box), "sobol" (Table 1 box) or "posterior" (``draws``) (–).
        func: picklable ``f(X) → Y`` (–).
        site_id: label, and the per-site file's name (–).
        names: the varied parameters (–).
        bounds: (n, 2) ranges (parameter units); default Table 1 (morris, sobol).
        output_names: name of each output of ``func`` (–); default its ``output_names`` attribute.
        seed: seed of the design and the bootstrap (–).
        map_fn: see :func:`~bayes_vmimics.sensitivity.evaluate.evaluate_design` (–).
        progress: progress bar (bool).
        out_dir: if given, the result is written to ``<out_dir>/<method>_sites/<site_id>.nc`` when finished and
            read from there (not recomputed) on a rerun with the same settings (path).
        extra_settings: more settings that must match for a finished file to be reused (–).
        **options: the method's own settings (:func:`make_method`): ``n_trajectories`` and ``num_levels``
            (Morris, counts), ``n_base`` (Sobol', count), ``draws`` (n_draws, len(names)) (parameter units) and
            ``with_delta`` (bool) ("posterior").

    Returns:
        The :class:`SiteAnalysis`.

    Raises:
        ValueError: an unknown method, or a finished file with other settings.
    """
    names = check_names(names)
    spec = make_method(method, **options)
    if spec.uses_bounds:
        bounds = _checked_bounds(names, bounds)
    settings = dict(method=method, names=list(names), seed=int(seed), **(extra_settings or {}))
    settings.update(spec.settings(names))
    if spec.uses_bounds:
        settings["bounds"] = bounds.tolist()
    path = _site_file(Path(out_dir), method, site_id) if out_dir is not None else None
    done = _load_finished(path, settings) if path is not None else None
    if done is not None:
        return done
    X = spec.design(names, bounds, seed)
    t0 = time.perf_counter()
    Y = evaluate_design(func, X, map_fn=map_fn, progress=progress, desc=f"{method} {site_id}")
    seconds = time.perf_counter() - t0
    if output_names is None:
        output_names = getattr(func, "output_names", None) or [f"y{k}" for k in range(Y.shape[1])]
    output_names = list(output_names)
    idx = spec.indices(X, Y, names, bounds, output_names, seed)
    res = SiteAnalysis(site_id, method, X, Y, names, output_names, idx, settings, seconds)
    if path is not None:
        _write_dataset(res.to_dataset(), path)
    return res


@contextlib.contextmanager
def _ordered_map(map_fn: MapFn | None, n_processes: int, scheduler):
    """``map_fn`` if given, else the ``imap`` of :func:`~bayes_vmimics.sensitivity.executor.open_executor`."""
    if map_fn is not None:
        yield map_fn
        return
    with open_executor(n_processes, scheduler) as executor:
        yield executor.imap


# 12 parameters: the method, the problem and its sites, the evaluator's (names, base_theta, depths_cm, draws), where
# the runs go (n_processes, map_fn, scheduler: the CLI's --n-processes and --scheduler) and a callback; **kwargs are
# analyse_site's.
def analyse_sites(
    method: str,
    problem,
    site_indices: Sequence[int] | None = None,
    *,
    names: Sequence[str] = PARAMETER_NAMES,
    base_theta=None,
    depths_cm: Sequence[float] = DEFAULT_DEPTHS_CM,
    draws=None,
    n_processes: int = 1,
    map_fn: MapFn | None = None,
    on_site_done: Callable[[SiteAnalysis], None] | None = None,
    scheduler=None,
    **kwargs,
) -> list[SiteAnalysis]:
    """:func:`analyse_site` for each site of ``problem`` (one after the other; each site's runs in parallel).

    Args:
        method: "morris", "sobol" or "posterior" (–).
        problem: the :class:`~bayes_vmimics.likelihood.CalibrationProblem` (–).
        site_indices: positions of the sites in ``problem.sites`` (count); default all.
        names: the varied parameters (–).
        base_theta: values of the parameters not varied (parameter units); default Table 1 defaults.
        depths_cm: depths of the SOC and F14C outputs (cm).
        draws: posterior draws (n_draws, len(names)) or a dict site_id → draws ("posterior") (parameter units).
        n_processes: local worker processes when neither ``map_fn`` nor ``scheduler`` is given (count).
        map_fn: see :func:`~bayes_vmimics.sensitivity.evaluate.evaluate_design` (–).
        on_site_done: called with each site's result as it finishes (–).
        scheduler: instead of ``n_processes``, a Dask cluster (:class:`~bayes_vmimics.scheduler.DaskScheduler` or a
            ``dask.distributed.Client``): each site's design runs as chunks of rows, one task each; the per-site
            files are written here (–).
        **kwargs: passed to :func:`analyse_site` (seed, n_trajectories, n_base, out_dir, progress, …).

    Returns:
        One :class:`SiteAnalysis` per site.
    """
    site_indices = range(len(problem.sites)) if site_indices is None else site_indices
    out = []
    with _ordered_map(map_fn, n_processes, scheduler) as mf:
        for i in site_indices:
            ev = SiteEvaluator(problem, i, names, base_theta=base_theta, depths_cm=depths_cm)
            d = draws.get(ev.site_id) if isinstance(draws, dict) else draws
            res = analyse_site(
                method,
                ev,
                site_id=ev.site_id,
                names=names,
                draws=d,
                map_fn=mf,
                extra_settings=dict(depths_cm=list(ev.depths_cm), base_theta=ev.base_theta.tolist()),
                **kwargs,
            )
            out.append(res)
            if on_site_done is not None:
                on_site_done(res)
    return out


def combine(results: Sequence[SiteAnalysis]) -> pd.DataFrame:
    """The index tables of several sites in one long table, with columns site_id, n_failed and seconds."""
    frames = []
    for r in results:
        t = r.indices.copy()
        t.insert(0, "site_id", r.site_id)
        t["n_failed"] = r.n_failed
        t["seconds"] = r.seconds
        frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


__all__ = ["METHODS", "SiteAnalysis", "analyse_site", "analyse_sites", "combine", "make_method"]
