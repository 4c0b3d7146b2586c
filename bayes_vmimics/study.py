"""Studies: a configuration, a data folder and the site tables joined into a :class:`CalibrationProblem`.

This is the one place, beside the model chain, that joins the configuration (:mod:`.config`), the site
tables (:mod:`.io`) and the likelihood. It also checks what the configuration asks for against what the data
can give, so that nothing is dropped silently: a named data folder that does not exist, F14C observations
that cannot enter the ¹⁴C term (no atmospheric zone, no sampling year, a sampling year past the atmospheric
record), prior bounds outside the Table 1 box, an unreadable, empty or header-only site table. Each is a
``ValueError`` that names the site, file or setting. A selected site lost to a missing site covariate (no
coordinates, MAT or MAP) is named with its reason in the study's notes, which the CLI prints at the start of a
run, and no other site takes its place (:func:`select_sites`).

Data folder. The synthetic twin runs only when asked for (``[study] mode = "synthetic"``, the CLI's
``--synthetic``); mode "auto" and "data" need a data folder (``--data-dir`` or ``$BAYES_VMIMICS_DATA``), and
a folder that is named but missing is an error in every mode.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atmosphere import ATMOSPHERE_HOLD_YEARS, AtmosphereHeldWarning
from .config import StudyConfig
from .errors import ErrorModel
from .likelihood import CalibrationProblem
from .parameters import TABLE1
from .site_observations import SiteObservations, radiocarbon_available

#: The four forest types of Wang et al. (2021) Sect. 2.5.2, the choices of ``--forest-type``.

#: The project's own tables that shape the site set (curation inputs); hashed into the data label of a run.
PROJECT_TABLES = (
    "forest_types.csv",
    "lignin_n.csv",
    "litter_partition.csv",
    "profile_exclusions.csv",
    "site_split.csv",
    "israd_forest_types.csv",
    "source_matches.csv",
)

#: Exclusion reasons of the curation (``io.sites``) that mean a site lost to a missing site covariate in the raw
#: file, not a curation decision: such a site keeps its place in a selection and is reported as lost (prefixes).
MISSING_DATA_REASONS = ("missing coordinates", "missing MAT or MAP")

#: Raw file of each atmospheric record name (``[model] atmosphere``).
_ATMOSPHERE_FILES = {
    "hua2013": "atm14c_hua2013_annual.csv",
    "hua2021": "atm14c_hua2021_annual.csv",
    "graven2017": "atm14c_graven2017_annual.csv",
}
_SITE_FILE = "he2016_forest_layers.csv"


@dataclass
class Study:
    """A study ready to run.

    Attributes:
        problem: the calibration problem (–).
        truth: true θ of a synthetic twin, else None (parameter units).
        data_version: label of the data used (–).
        forest_types: forest type per site ("synthetic" for a twin) (–).
        data_files: name → sha256 of every raw and project file the study read (–).
        notes: lines that the run description must show (e.g. the ¹⁴C term turned off) (–).
        folder: the raw-data folder, or None (path).
    """

    problem: CalibrationProblem
    truth: np.ndarray | None
    data_version: str
    forest_types: list[str]
    data_files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    folder: Path | None = None

    @property
    def synthetic(self) -> bool:
        """Whether the sites are a synthetic twin."""
        return self.truth is not None

    def describe(self) -> str:
        """One paragraph for the start of a run: kind and size of the data, the ¹⁴C term, notes."""
        kind = "synthetic twin" if self.synthetic else "real sites"
        p = self.problem
        text = (
            f"{kind}: {len(p.sites)} site(s), {p.n_soc} SOC and {p.n_c14} F14C observations "
            f"(¹⁴C term {'on' if p.c14_enabled else 'off'}); data: {self.data_version}"
        )
        return "\n".join([text, *(f"note: {n}" for n in self.notes)])


# ----------------------------------------------------------------------------- site selection
def real_site_observations(tables, config: StudyConfig) -> list[SiteObservations]:
    """The sites selected by ``config.data`` from the site tables, as :class:`SiteObservations`.

    A site of the selection lost to a missing site covariate (:data:`MISSING_DATA_REASONS`) is left out with a
    ``UserWarning`` that names it and the reason; no other site takes its place (see :func:`select_sites`).

    Args:
        tables: :class:`~bayes_vmimics.io.tables.SiteTables`.
        config: the study configuration (section ``data``).

    Raises:
        ValueError: no site selected, an unknown site id, a site named in ``site_ids`` that the curation
            found not usable (excluded by review, a pseudo-replicate, too few layers; the reason is named), or
            a selected site without kept layers.
    """
    sites, lost = select_sites(tables, config)
    for note in lost:
        warnings.warn(note, UserWarning, stacklevel=2)
    return sites


def select_sites(tables, config: StudyConfig) -> tuple[list[SiteObservations], list[str]]:
    """The sites selected by ``config.data``, and one line per site of the selection lost to missing data.

    The selection is made before a site is lost to a missing site covariate (coordinates, MAT, MAP: the
    reasons :data:`MISSING_DATA_REASONS`), among the usable sites and those lost sites that the saved
    calibration/validation split (``data/site_split.csv``) holds; ``[data] max_sites`` keeps the first by site
    id. A lost site is then left out and named with its reason, so that a missing value never lets another
    site take its place silently (a ``--quick`` run loses one site, it does not swap it).

    Args:
        tables: :class:`~bayes_vmimics.io.tables.SiteTables`.
        config: the study configuration (section ``data``).

    Returns:
        ``(sites, lost)``: the :class:`SiteObservations` and the lines naming each lost site and its reason (–).

    Raises:
        ValueError: as :func:`real_site_observations`; also when every selected site is lost (naming them).
    """
    import pandas as pd

    from .io.forcing import site_forcing

    d = config.data
    s = tables.sites
    if d.site_ids:
        unknown = sorted(set(d.site_ids) - set(s["site_id"]))
        if unknown:
            raise ValueError(f"unknown site id(s) {unknown}")
        sel = s[s["site_id"].isin(d.site_ids)]
        # a site named by id passes the same curation as a forest-type selection: the review table, the
        # pseudo-replicate rule and the layer filters are not bypassed by naming it
        bad = sel[~sel["usable"]]
        if not bad.empty:
            why = [f"{r['site_id']} ({r.get('exclusion_reason') or 'not usable'})" for _, r in bad.iterrows()]
            raise ValueError(f"site(s) not usable for calibration: {'; '.join(why)}")
    else:
        none = pd.Series(None, index=s.index, dtype=object)
        reason = s.get("exclusion_reason", none).fillna("").astype(str)
        in_split = s.get("split", none).notna()
        lost_data = ~s["usable"] & in_split & reason.str.startswith(MISSING_DATA_REASONS)
        sel = s[(s["usable"] | lost_data) & (s["forest_type"] == d.forest_type)]
        if d.split != "all":
            sel = sel[sel["split"] == d.split]
    sel = sel.sort_values("site_id")
    if d.max_sites:
        sel = sel.head(d.max_sites)
    lost_rows = sel[~sel["usable"]]
    sel = sel[sel["usable"]]
    lost = []
    for _, row in lost_rows.iterrows():
        kept = (
            f"[data] max_sites = {d.max_sites} keeps {len(sel)} site(s)" if d.max_sites else f"{len(sel)} site(s) kept"
        )
        lost.append(
            f"site {row['site_id']} ({row['forest_type']}, {row['split']} half of data/site_split.csv) left out: "
            f"{row['exclusion_reason']} in the raw site table; no other site takes its place ({kept})"
        )
    if sel.empty:
        raise ValueError(f"no site selected by [data] {d}" + (": " + "; ".join(lost) if lost else ""))
    out = []
    for _, row in sel.iterrows():
        # every kept layer is used: the curation (io.sites) is the one place where layers are filtered, so a
        # site is never dropped or shortened here (SiteObservations rejects a non-positive SOC, naming the site)
        lay = tables.layers[tables.layers["site_id"] == row["site_id"]].sort_values("top_cm")
        if lay.empty:
            why = row.get("exclusion_reason")
            why = why if isinstance(why, str) and why else "no layer kept"
            raise ValueError(f"site {row['site_id']}: no kept mineral layer with SOC and bulk density ({why})")
        year = row.get("sample_year")
        year = None if year is None or not np.isfinite(year) else float(year)
        zone = row.get("hua2013_zone")
        out.append(
            SiteObservations(
                site_id=str(row["site_id"]),
                forcing=site_forcing(row),
                top_cm=lay["top_cm"].to_numpy(float),
                bottom_cm=lay["bottom_cm"].to_numpy(float),
                soc_mg_cm3=lay["soc_mg_cm3"].to_numpy(float),
                bd_g_cm3=lay["bd_g_cm3"].to_numpy(float),
                f14c=lay["f14c"].to_numpy(float),
                zone=zone if isinstance(zone, str) and zone else None,
                sample_year=year,
                forest_type=str(row["forest_type"]),
            )
        )
    return out, lost


# ----------------------------------------------------------------------------- data labels
def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks (path → str)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _raw_site_files(data_dir: Path, sources) -> list[str]:
    """Names (relative to the data folder) of the raw site files of ``sources`` (``None``: the default sources)."""
    from .io.israd import REQUIRED_COLUMNS, find_israd_dir
    from .io.sites import resolve_sources

    names = []
    for source in resolve_sources(tuple(sources) if sources else None, data_dir):
        if source == "he2016":
            names.append(_SITE_FILE)
        elif source == "israd":
            folder = find_israd_dir(data_dir)
            names += [f"{folder.name}/{table}.csv" for table in REQUIRED_COLUMNS] if folder is not None else []
    return names


def data_version(data_dir: Path, project_dir: Path | None = None, sources=None) -> str:
    """Label of the data a run used: hashes of the raw files and of the project's curation tables (so runs
    before and after a curation change, e.g. a new exclusion, carry different labels).

    Args:
        data_dir: raw-data folder (path).
        project_dir: the project's tables (default ``data/`` of the repository) (path).
        sources: the data sources used (``[data] sources``; empty or None: every source present) (–).
    """
    from .io.datadir import PROJECT_DATA_DIR
    from .io.sites import resolve_sources

    project_dir = Path(project_dir) if project_dir is not None else PROJECT_DATA_DIR

    def digest(folder: Path, names) -> str:
        h = hashlib.sha256()
        for name in names:
            p = folder / name
            h.update(name.encode())
            h.update(p.read_bytes() if p.is_file() else b"<missing>")
        return h.hexdigest()[:16]

    names = (*_raw_site_files(Path(data_dir), sources), "atm14c_hua2013_annual.csv")
    label = "+".join(resolve_sources(tuple(sources) if sources else None, data_dir))
    raw = digest(Path(data_dir), names)
    return f"{label} sha256:{raw} ({data_dir}); project tables sha256:{digest(project_dir, PROJECT_TABLES)}"


def data_file_hashes(config: StudyConfig, data_dir: Path | None, *, sites: bool) -> dict[str, str]:
    """sha256 of each file a study reads: the site table and the project's curation tables (``sites``), and the
    atmospheric record where the ¹⁴C term or a ¹⁴C twin uses it.

    Args:
        config: the study configuration (–).
        data_dir: raw-data folder, or None (path).
        sites: whether real site tables are read (bool).

    Returns:
        ``{"raw/<name>": hash, "project/<name>": hash}`` ("missing" for an absent project table) (–).
    """
    from .io.datadir import PROJECT_DATA_DIR

    out: dict[str, str] = {}
    if data_dir is None:
        return out
    names = _raw_site_files(Path(data_dir), config.data.sources) if sites else []
    atm = _ATMOSPHERE_FILES.get(config.model.atmosphere)
    if atm and (config.likelihood.use_c14 if sites else config.synthetic.with_c14):
        names.append(atm)
    for name in names:
        p = Path(data_dir) / name
        if p.is_file():
            out[f"raw/{name}"] = file_sha256(p)
    if sites:
        for name in PROJECT_TABLES:
            p = PROJECT_DATA_DIR / name
            out[f"project/{name}"] = file_sha256(p) if p.is_file() else "missing"
    return out


# ----------------------------------------------------------------------------- checks
def check_prior_bounds(config: StudyConfig) -> None:
    """Prior bounds must lie inside the Table 1 box (P Table 1): outside it the model has no steady state at
    many corners, and the walkers' starting points fail.

    Raises:
        ValueError: a bound outside the box (names the parameter, the bound and the box).
    """
    bad = []
    for name, (lo, hi) in config.priors.bounds.items():
        tlo, thi = TABLE1[name][:2]
        if lo < tlo or hi > thi:
            bad.append(f"priors.bounds.{name} = [{lo:g}, {hi:g}] is not inside the Table 1 box [{tlo:g}, {thi:g}]")
    if bad:
        raise ValueError("; ".join(bad) + ": narrow the bounds in the configuration (--config)")


def check_radiocarbon(sites, config: StudyConfig, atmosphere) -> list[str]:
    """Every site's F14C observations must be able to enter the ¹⁴C term, or the term is off on purpose.

    Args:
        sites: the :class:`SiteObservations` (–).
        config: the study configuration (``[likelihood] use_c14``) (–).
        atmosphere: the :class:`~bayes_vmimics.atmosphere.AtmosphericRecord`, or None (–).

    Returns:
        Notes for the run description (the ¹⁴C term turned off by the configuration; sampling years past
        the record, held at its last value) (–).

    Raises:
        ValueError: a site with F14C observations but no atmospheric zone, no sampling year, a zone the
            record lacks or a sampling year more than :data:`ATMOSPHERE_HOLD_YEARS` past its end; or ¹⁴C
            asked for while the radiocarbon module is missing.
    """
    with_c14 = [s for s in sites if s.f14c is not None and np.isfinite(s.f14c).any()]
    if not with_c14:
        return []
    n_obs = sum(int(np.isfinite(s.f14c).sum()) for s in with_c14)
    if not config.likelihood.use_c14:
        return [
            f"¹⁴C term off by the configuration ([likelihood] use_c14 = false): the {n_obs} F14C observations of "
            f"{len(with_c14)} site(s) are not used"
        ]
    if not radiocarbon_available():
        raise ValueError(
            f"{len(with_c14)} site(s) have F14C observations but bayes_vmimics.radiocarbon cannot be imported; "
            "reinstall the package, or set [likelihood] use_c14 = false to calibrate on SOC only"
        )
    if atmosphere is None:
        raise ValueError(
            f"{len(with_c14)} site(s) have F14C observations but no atmospheric ¹⁴C record was loaded; "
            "give the data folder holding it, or set [likelihood] use_c14 = false"
        )
    errors, held = [], []
    last = int(atmosphere.last_year)
    for s in with_c14:
        if s.zone is None:
            errors.append(f"site {s.site_id}: F14C observed but no atmospheric zone (latitude/longitude missing?)")
        elif s.zone not in atmosphere.zones:
            errors.append(f"site {s.site_id}: zone {s.zone!r} not in the atmospheric record {list(atmosphere.zones)}")
        if s.sample_year is None or not np.isfinite(s.sample_year):
            errors.append(f"site {s.site_id}: F14C observed but no sampling year")
        elif s.sample_year > last + ATMOSPHERE_HOLD_YEARS:
            errors.append(
                f"site {s.site_id}: sampling year {s.sample_year:g} is more than {ATMOSPHERE_HOLD_YEARS} years "
                f"after the end of the atmospheric record {atmosphere.name!r} ({last})"
            )
        elif s.sample_year > last:
            held.append(s.site_id)
    if errors:
        raise ValueError(
            "F14C observations that cannot enter the ¹⁴C term: "
            + "; ".join(errors)
            + ". Fix the site table, leave the site out, or set [likelihood] use_c14 = false"
        )
    if held:
        return [
            f"{len(held)} site(s) sampled after the atmospheric record ends ({last}; {', '.join(held)}): atmospheric "
            f"F14C held at its {last} value (P §2.5.3)"
        ]
    return []


#: Project tables that may hold only their header (no exclusion by review is a valid table).
_MAY_HAVE_NO_ROWS = ("profile_exclusions.csv",)


def _site_tables(folder: Path, config: StudyConfig):
    """The site tables, with a named file in any read error (an empty or malformed CSV)."""
    from .io.datadir import PROJECT_DATA_DIR
    from .io.sites import build_site_tables

    _check_not_empty([folder / _SITE_FILE])
    _check_not_empty(PROJECT_DATA_DIR / n for n in PROJECT_TABLES if n not in _MAY_HAVE_NO_ROWS)
    _check_not_empty((PROJECT_DATA_DIR / n for n in _MAY_HAVE_NO_ROWS), rows=False)
    try:
        return build_site_tables(
            folder, exclude_filled_bd=config.data.exclude_filled_bd, sources=config.data.sources or None
        )
    except FileNotFoundError:
        raise
    except Exception as err:  # pandas' EmptyDataError, ParserError, a missing column: name the file
        if isinstance(err, ValueError) and ".csv" in str(err):
            raise
        raise ValueError(
            f"cannot read the site tables ({folder / _SITE_FILE} and the project tables in data/): "
            f"{type(err).__name__}: {err}"
        ) from err


def _check_not_empty(paths, *, rows: bool = True) -> None:
    """A table that exists but holds no text is named (pandas would say only "No columns to parse from file"),
    and so is one with only its header line when ``rows`` (the curation would otherwise fail later, on another
    file: every profile of the exclusion table "not in" the site table)."""
    for p in paths:
        if not p.is_file():
            continue
        lines = [line for line in p.read_bytes().splitlines() if line.strip()]
        if not lines:
            raise ValueError(f"{p} is empty: restore it (see data/README.md for its source)")
        if rows and len(lines) == 1:
            raise ValueError(
                f"{p} holds only its header line, no data rows: restore the full file (see data/README.md for its "
                "source)"
            )


def _load_atmosphere(config: StudyConfig, folder: Path):
    from .io.atmosphere import load_atmosphere

    name = _ATMOSPHERE_FILES.get(config.model.atmosphere)
    if name:
        _check_not_empty([folder / name])
    try:
        return load_atmosphere(config.model.atmosphere, folder)
    except FileNotFoundError:
        raise
    except Exception as err:
        if isinstance(err, ValueError) and ".csv" in str(err):
            raise
        raise ValueError(
            f"cannot read the atmospheric record {folder / (name or config.model.atmosphere)}: "
            f"{type(err).__name__}: {err}"
        ) from err


def data_folder(config: StudyConfig, data_dir=None) -> Path | None:
    """The raw-data folder of a study, or None for a synthetic twin without one.

    Args:
        config: the study configuration (``[study] mode``) (–).
        data_dir: folder named by the user, or None for ``$BAYES_VMIMICS_DATA`` (path).

    Raises:
        DataFolderError: a named folder that does not exist or is a file (names it and where it came from);
            no folder for a study that needs real data (says where it looked and names ``--synthetic``).
    """
    from .io.datadir import locate_data_dir

    return locate_data_dir(data_dir, required=config.study.mode != "synthetic")


# ----------------------------------------------------------------------------- problems
def build_study(config: StudyConfig, data_dir=None) -> Study:
    """Assemble the calibration problem of a study (see the module docstring for the checks).

    Args:
        config: the study configuration.
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).

    Returns:
        The :class:`Study`.
    """
    from .synthetic import make_synthetic_sites, true_parameters

    check_prior_bounds(config)
    folder = data_folder(config, data_dir)
    synthetic = config.study.mode == "synthetic"
    atmosphere = None
    notes: list[str] = []
    if synthetic:
        sy = config.synthetic
        if sy.with_c14:
            if folder is None:
                raise ValueError(
                    "[synthetic] with_c14 = true needs the atmospheric ¹⁴C record: give --data-dir (or set "
                    "$BAYES_VMIMICS_DATA) to the folder holding it"
                )
            if not radiocarbon_available():
                raise ValueError("[synthetic] with_c14 = true needs bayes_vmimics.radiocarbon (cannot be imported)")
            atmosphere = _load_atmosphere(config, folder)
        truth = true_parameters(sy.true_parameters)
        sites = make_synthetic_sites(
            sy.n_sites,
            truth,
            rng=np.random.default_rng(sy.seed),
            noise=sy.noise,
            interval_edges_cm=sy.interval_edges_cm,
            profile=config.model.profile,
            with_c14=sy.with_c14,
            atmosphere=atmosphere,
            c14_mode=config.model.c14_mode,
        )
        if sy.with_c14 and not config.likelihood.use_c14:
            notes.append("¹⁴C term off by the configuration ([likelihood] use_c14 = false): twin F14C not used")
        version = f"synthetic twin (seed {sy.seed}, {sy.n_sites} sites, noise {sy.noise})"
        types = ["synthetic"] * len(sites)
        # the twin's noise is the paper's 10 % relative error: it is calibrated under the error it was made with
        asked = ErrorModel.from_config(config.likelihood)
        if dataclasses.replace(asked, name="paper") != ErrorModel():
            notes.append(
                f"error model 'paper' for the synthetic twin (it was generated with the paper's relative error); "
                f"the configuration's {asked.name!r} is used for real data only"
            )
    else:
        tables = _site_tables(folder, config)
        sites, lost = select_sites(tables, config)
        notes += lost
        if config.likelihood.use_c14:
            atmosphere = _load_atmosphere(config, folder)
        notes += check_radiocarbon(sites, config, atmosphere)
        truth = None
        version = data_version(folder, sources=config.data.sources)
        types = [config.data.forest_type] * len(sites) if not config.data.site_ids else ["sites"] * len(sites)
    with warnings.catch_warnings():  # sampling years past the record: a note of check_radiocarbon says so
        warnings.simplefilter("ignore", AtmosphereHeldWarning)
        problem = CalibrationProblem.from_config(
            sites, config, atmosphere=atmosphere, error_model=ErrorModel.of_study(config)
        )
    files = data_file_hashes(config, folder, sites=not synthetic)
    return Study(problem, truth, version, types, files, notes, folder)


def build_problem(config: StudyConfig, data_dir=None):
    """Assemble the calibration problem of a study (:func:`build_study` without its extras).

    Args:
        config: the study configuration.
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).

    Returns:
        ``(problem, truth, data_version)``: the :class:`CalibrationProblem`, the true parameters of a
        synthetic twin (else None) and a label of the data used.
    """
    st = build_study(config, data_dir)
    return st.problem, st.truth, st.data_version


def build_hierarchical_study(cfg: StudyConfig, forest_types, data_dir) -> Study:
    """The :class:`Study` of the sites of ``forest_types`` (default: the configuration's), one population per
    type, selected by ``cfg.data``.

    Raises:
        ValueError: several forest types for a synthetic twin (it has one population).
    """
    types = list(dict.fromkeys(forest_types or [cfg.data.forest_type]))
    if len(types) == 1:
        st = build_study(cfg.replace(data={"forest_type": types[0]}), data_dir)
        st.forest_types = ["synthetic" if st.synthetic else types[0]] * len(st.problem.sites)
        return st
    if cfg.study.mode == "synthetic":
        raise ValueError("several --forest-types need real data (--data-dir or $BAYES_VMIMICS_DATA), not --synthetic")
    check_prior_bounds(cfg)
    folder = data_folder(cfg, data_dir)
    tables = _site_tables(folder, cfg)
    sites, ft, notes = [], [], []
    for t in types:
        sites_t, lost = select_sites(tables, cfg.replace(data={"forest_type": t}))
        sites.extend(sites_t)
        ft.extend([t] * len(sites_t))
        notes += lost
    atmosphere = _load_atmosphere(cfg, folder) if cfg.likelihood.use_c14 else None
    notes += check_radiocarbon(sites, cfg, atmosphere)
    with warnings.catch_warnings():  # sampling years past the record: a note of check_radiocarbon says so
        warnings.simplefilter("ignore", AtmosphereHeldWarning)
        problem = CalibrationProblem.from_config(sites, cfg, atmosphere=atmosphere)
    return Study(
        problem,
        None,
        data_version(folder, sources=cfg.data.sources),
        ft,
        data_file_hashes(cfg, folder, sites=True),
        notes,
        folder,
    )


def build_hierarchical_problem(cfg: StudyConfig, forest_types, data_dir):
    """(problem, forest type per site, data label, true θ of a synthetic twin or None) of the sites of
    ``forest_types`` (default: the configuration's) selected by ``cfg.data`` (see
    :func:`build_hierarchical_study`)."""
    st = build_hierarchical_study(cfg, forest_types, data_dir)
    return st.problem, st.forest_types, st.data_version, st.truth
