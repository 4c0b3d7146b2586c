"""Site covariates for the regression population: climate, soil and litter input of each site, standardised.

The hierarchical regression (:mod:`.inference.regression`) lets a site's parameters follow its covariates,
z_s ~ N(μ_t + B_t x_s, σ_t²) in logit coordinates. This module builds x_s from the curated site table
(:func:`bayes_vmimics.io.sites.build_site_tables`) and the raw He et al. (2016) layer file (soil order), and
standardises it. Every covariate, its source and its rule for missing values is listed in ``COVARIATES`` and
in ``docs/covariates.md``.

Rules (nothing is filled silently)
    * A missing value of a requested covariate is an error naming the site(s) and the covariate
      (:class:`MissingCovariateError`), never a NaN or a fill. Drop the covariate or the site.
    * Clay: the forcing's ``clay_pct`` is measured at 44 of the 114 usable four-type profiles and otherwise the
      median of measured profiles of the same forest type (``clay_is_measured``, ``clay_source``). The
      covariate ``clay`` is that forcing value *together with* the indicator column ``clay_measured`` (1 =
      measured, 0 = filled), so that filled sites do not pose as measured ones (the missing-indicator rule; the
      clay slope is learnt from the measured sites' spread, the indicator takes the mean offset of the filled
      ones). ``clay_rule="measured"`` instead raises for sites without a measurement.
    * Soil order: the USDA order code of the raw layers (``soil_order``), thickness-weighted mode over the
      profile's mineral layers (one profile, he2016_126, has a 5 cm Spodosol layer over Oxisol: Ox); grouped
      into ``SOIL_GROUPS`` and coded as one indicator column per group other than the most common group of the
      calibration sites (the reference). An indicator that no calibration site sets (a soil group they
      lack; clay measured at all of them) is kept with scale 1: its coefficient keeps its prior N(0, beta_sd²),
      so a new site in that group is predicted with the prior's uncertainty about the effect.
    * Standardisation (:class:`CovariateScaler`): each design column is centred on the mean of the calibration
      sites *of the same forest type* and divided by the pooled within-type sd of the calibration sites. So
      μ_t stays the population of type t at its own sites' average covariates (comparable with the population
      without covariates), and one coefficient scale means the same physical change in every type (needed
      when B is shared across types). A new site is standardised with the stored calibration statistics.
      A continuous column that is constant within every type (pooled sd 0) carries no information and is
      dropped (``dropped``); a new site with another value of it raises.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "COVARIATES",
    "DEFAULT_COVARIATES",
    "SOIL_GROUPS",
    "CovariateDesign",
    "CovariateScaler",
    "MissingCovariateError",
    "covariate_design",
    "parse_covariates",
    "raw_covariate_columns",
    "site_covariate_table",
]


@dataclass(frozen=True)
class Covariate:
    """One site covariate.

    Attributes:
        name: name on the command line (``--covariates``) (–).
        column: column of the site table it is computed from (–).
        transform: "identity", "log" (natural log) or "abs" (–).
        units: units of the raw value before standardisation (–).
        description: what it is and where it comes from (–).
    """

    name: str
    column: str
    transform: str
    units: str
    description: str


#: The covariates this module knows, by name. ``clay`` brings the indicator ``clay_measured`` with it
#: (``clay_rule="indicator"``); ``soil_group`` becomes one indicator column per soil group.
COVARIATES: dict[str, Covariate] = {
    c.name: c
    for c in (
        Covariate("mat", "mat_c", "identity", "°C", "mean annual air temperature (He et al. 2016; partly gap-filled)"),
        Covariate("map", "map_mm", "log", "ln(mm yr⁻¹)", "natural log of mean annual precipitation (He et al. 2016)"),
        Covariate(
            "clay",
            "clay_pct",
            "identity",
            "%",
            "clay of the forcing: thickness-weighted mean of measured mineral layers, else the median of measured "
            "profiles of the forest type (with the indicator clay_measured)",
        ),
        Covariate(
            "litter",
            "litter_total_g_c_m2_yr",
            "log",
            "ln(g C m⁻² yr⁻¹)",
            "natural log of the forcing's total litter input (above + below); Miami NPP × 0.47 at all but two "
            "sites, so nearly a function of MAT and MAP",
        ),
        Covariate("abs_lat", "lat", "abs", "degrees", "absolute latitude"),
        Covariate("elevation", "elevation_m", "identity", "m", "elevation as published (missing at 7 usable sites)"),
        Covariate(
            "soil_group",
            "soil_order",
            "groups",
            "–",
            "USDA soil order (raw layer file, thickness-weighted mode) grouped as SOIL_GROUPS",
        ),
    )
}

#: Covariates used when none are named: climate and clay (measured at most sites or flagged).
DEFAULT_COVARIATES = ("mat", "map", "clay")

#: Soil orders (codes of the He et al. file) grouped by degree of weathering and mineralogy: few sites per
#: order, so orders with similar carbon stabilisation are pooled.
SOIL_GROUPS: dict[str, tuple[str, ...]] = {
    "weakly_developed": ("Ent", "Ept"),
    "andic": ("And",),
    "base_rich": ("Alf", "Oll"),
    "highly_weathered": ("Ult", "Ox"),
    "spodic": ("Spo",),
    "organic_or_frozen": ("His", "Gel"),
}
_GROUP_OF = {order: group for group, orders in SOIL_GROUPS.items() for order in orders}

#: USDA soil order names (ISRaD's ``pro_usda_soil_order`` and the gridded order) → the codes of the He et al. file.
SOIL_ORDER_CODES = {
    "Alfisols": "Alf",
    "Andisols": "And",
    "Aridisols": "Id",
    "Entisols": "Ent",
    "Gelisols": "Gel",
    "Histosols": "His",
    "Inceptisols": "Ept",
    "Mollisols": "Oll",
    "Oxisols": "Ox",
    "Spodosols": "Spo",
    "Ultisols": "Ult",
    "Vertisols": "Ert",
}


class MissingCovariateError(ValueError):
    """A requested covariate is missing at some site (the message names the sites and the covariate)."""


def parse_covariates(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Covariate names from a comma-separated string (``"mat,map,clay"``) or a list; None gives
    ``DEFAULT_COVARIATES``.

    Raises:
        ValueError: an unknown or repeated name, or none at all.
    """
    if text is None:
        return DEFAULT_COVARIATES
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in COVARIATES]
    if unknown:
        raise ValueError(f"unknown covariate(s) {unknown}; known: {', '.join(COVARIATES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"covariate named twice in {names}")
    if not names:
        raise ValueError("no covariate named")
    return tuple(names)


# --------------------------------------------------------------------------------------------------------
# raw covariates
# --------------------------------------------------------------------------------------------------------
def profile_soil_orders(raw_layers: pd.DataFrame) -> pd.Series:
    """Soil order per profile: the thickness-weighted mode of ``soil_order`` over mineral layers (all layers
    if a profile has no mineral layer with an order); NaN where no layer gives one.

    Args:
        raw_layers: raw rows of :func:`~bayes_vmimics.io.he2016.load_he2016_layers` (–).

    Returns:
        Series indexed by ``profile_id`` (USDA order code, e.g. "Ept").
    """
    r = raw_layers[raw_layers["soil_order"].notna()].copy()
    top = r["top_cm_mineral0"].clip(lower=0.0)
    r["w"] = (r["bottom_cm_mineral0"] - top).clip(lower=0.0)
    # a profile whose ordered layers are all organic counts each layer once
    none = r.groupby("profile_id")["w"].transform("sum") <= 0
    r.loc[none, "w"] = 1.0
    w = r.groupby(["profile_id", "soil_order"])["w"].sum()
    best = w.groupby(level="profile_id").idxmax()
    out = pd.Series([b[1] for b in best], index=best.index, name="soil_order")
    return out.reindex(raw_layers["profile_id"].unique())


def site_covariate_table(data_dir: str | os.PathLike | None = None, *, tables=None) -> pd.DataFrame:
    """The raw (not standardised) covariate columns of every profile of the site tables (He et al. 2016 and, where
    present, ISRaD: soil order there is the recorded USDA order, else the gridded one).

    Args:
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).
        tables: site tables already built (:class:`~bayes_vmimics.io.tables.SiteTables`); default built from
            ``data_dir`` (–).

    Returns:
        DataFrame indexed by ``site_id`` with ``forest_type``, the source columns of ``COVARIATES``
        (``mat_c``, ``map_mm``, ``clay_pct``, ``clay_is_measured``, ``litter_total_g_c_m2_yr``, ``lat``,
        ``elevation_m``, ``soil_order``) and ``soil_group``.
    """
    from .io.he2016 import load_he2016_layers
    from .io.sites import build_site_tables

    if tables is None:
        tables = build_site_tables(data_dir)
    s = tables.sites.set_index("site_id")
    raw = load_he2016_layers(data_dir)
    orders = profile_soil_orders(raw)
    out = pd.DataFrame(
        {
            "forest_type": s["forest_type"],
            "mat_c": s["mat_c"],
            "map_mm": s["map_mm"],
            "clay_pct": s["clay_pct"],
            "clay_is_measured": s["clay_is_measured"].astype(bool),
            "litter_total_g_c_m2_yr": s["litter_above_g_c_m2_yr"] + s["litter_below_g_c_m2_yr"],
            "lat": s["lat"],
            "elevation_m": s.get("elevation_m", pd.Series(np.nan, index=s.index)),
            "soil_order": s["profile_id"].map(orders),
        },
        index=s.index,
    )
    # ISRaD profiles: the recorded USDA order, else the gridded one (names mapped to the He codes)
    for column in ("soil_order_usda", "soil_order_usda_grid"):
        if column in s:
            out["soil_order"] = out["soil_order"].fillna(s[column].map(SOIL_ORDER_CODES))
    out["soil_group"] = out["soil_order"].map(_GROUP_OF)
    return out


def _missing(table: pd.DataFrame, site_ids: Sequence[str], cov: str, column: str) -> None:
    values = table.loc[list(site_ids), column]
    bad = [str(i) for i in values.index[values.isna()]]
    if bad:
        shown = ", ".join(bad[:12]) + (f" and {len(bad) - 12} more" if len(bad) > 12 else "")
        raise MissingCovariateError(
            f"covariate {cov!r} (column {column!r}) is missing at {len(bad)} site(s): {shown}; drop the covariate "
            "or these sites (no value is filled in)"
        )


def raw_covariate_columns(
    table: pd.DataFrame,
    site_ids: Sequence[str],
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    *,
    clay_rule: str = "indicator",
) -> pd.DataFrame:
    """The design columns of ``site_ids`` before standardisation (transforms applied, soil groups as 0/1
    indicators for every group).

    Args:
        table: :func:`site_covariate_table` or any table indexed by site id with the source columns (–).
        site_ids: the sites, in the order of the design's rows (–).
        covariates: covariate names (``COVARIATES``) (–).
        clay_rule: "indicator" (``clay`` with the column ``clay_measured``) or "measured" (an error for a site
            whose clay was filled) (–).

    Returns:
        DataFrame (site, column); soil group columns are named ``soil_<group>``.

    Raises:
        MissingCovariateError: a missing value, naming the sites and the covariate.
        ValueError: unknown sites or covariates, a bad ``clay_rule``, a non-positive value under a log.
    """
    covariates = parse_covariates(covariates)
    if clay_rule not in ("indicator", "measured"):
        raise ValueError(f"clay_rule must be 'indicator' or 'measured', got {clay_rule!r}")
    site_ids = [str(s) for s in site_ids]
    unknown = sorted(set(site_ids) - set(map(str, table.index)))
    if unknown:
        raise ValueError(f"site(s) {unknown[:12]} not in the covariate table")
    cols: dict[str, np.ndarray] = {}
    for name in covariates:
        c = COVARIATES[name]
        if c.transform == "groups":
            _missing(table, site_ids, name, "soil_order")
            groups = table.loc[site_ids, "soil_order"].map(_GROUP_OF)
            other = sorted(set(table.loc[site_ids, "soil_order"][groups.isna()]))
            if other:
                raise ValueError(f"soil order(s) {other} belong to no group of SOIL_GROUPS")
            for g in SOIL_GROUPS:
                cols[f"soil_{g}"] = (groups == g).to_numpy(float)
            continue
        _missing(table, site_ids, name, c.column)
        v = table.loc[site_ids, c.column].to_numpy(float)
        if c.transform == "log":
            if np.any(v <= 0):
                bad = [s for s, x in zip(site_ids, v, strict=True) if x <= 0]
                raise ValueError(f"covariate {name!r}: non-positive {c.column} at {bad[:12]} (log taken)")
            v = np.log(v)
        elif c.transform == "abs":
            v = np.abs(v)
        cols[name] = v
        if name == "clay":
            measured = table.loc[site_ids, "clay_is_measured"].astype(bool).to_numpy()
            if clay_rule == "measured" and not measured.all():
                bad = [s for s, m in zip(site_ids, measured, strict=True) if not m]
                raise MissingCovariateError(
                    f"covariate 'clay' is not measured at {len(bad)} site(s): {', '.join(bad[:12])}"
                    + (" …" if len(bad) > 12 else "")
                    + " (clay_rule='measured'; clay_rule='indicator' uses the filled value with clay_measured)"
                )
            if clay_rule == "indicator":
                cols["clay_measured"] = measured.astype(float)
    return pd.DataFrame(cols, index=pd.Index(site_ids, name="site"))


# --------------------------------------------------------------------------------------------------------
# standardisation
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CovariateScaler:
    """Standardisation of design columns with the calibration sites' statistics.

    x = (raw − center[forest type]) / scale, per column.

    Attributes:
        covariates: covariate names (–).
        columns: kept design columns (–).
        center: per forest type, the calibration sites' mean of each kept column (units of the raw column).
        scale: pooled within-type sd of each kept column over the calibration sites; 1 for an indicator
            column that does not vary among them (units of the raw column).
        clay_rule: the clay rule used (–).
        soil_reference: the soil group left out as reference (none if ``soil_group`` is not used) (–).
        dropped: design columns left out, with the reason: the reference soil group, and continuous columns
            constant within every forest type (–).
        fixed: per dropped continuous column, the value every calibration site of each forest type has; a new
            site with another value raises instead of being silently treated as the calibration sites (units
            of the raw column).
        unscaled: indicator columns (``clay_measured``, ``soil_*``) that do not vary among the calibration sites
            (e.g. a soil group none of them is in): kept, centred, with scale 1, so that their coefficient keeps
            its prior and a new site in that group carries the prior's uncertainty about the effect (–).
    """

    covariates: tuple[str, ...]
    columns: tuple[str, ...]
    center: dict[str, tuple[float, ...]]
    scale: tuple[float, ...]
    clay_rule: str = "indicator"
    soil_reference: str | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, dict[str, float]] = field(default_factory=dict)
    unscaled: tuple[str, ...] = ()

    @classmethod
    def fit(
        cls,
        table: pd.DataFrame,
        site_ids: Sequence[str],
        forest_types: Sequence[str],
        covariates: Sequence[str] = DEFAULT_COVARIATES,
        *,
        clay_rule: str = "indicator",
    ) -> CovariateScaler:
        """Statistics of the calibration sites ``site_ids`` of the given forest types.

        Args:
            table: :func:`site_covariate_table` (–).
            site_ids: the calibration sites (–).
            forest_types: forest type of each calibration site (–).
            covariates: covariate names (–).
            clay_rule: see :func:`raw_covariate_columns` (–).

        Raises:
            ValueError: fewer sites of a forest type than 2, or no column left.
        """
        covariates = parse_covariates(covariates)
        raw = raw_covariate_columns(table, site_ids, covariates, clay_rule=clay_rule)
        ft = np.array([str(t) for t in forest_types])
        if ft.size != len(raw):
            raise ValueError(f"forest_types must give one type per site ({len(raw)}), got {ft.size}")
        types = sorted(set(ft))
        dropped: dict[str, str] = {}
        reference = None
        if "soil_group" in covariates:
            soil = [c for c in raw.columns if c.startswith("soil_")]
            counts = raw[soil].sum()
            reference = str(counts.idxmax())[len("soil_") :]
            dropped[f"soil_{reference}"] = "reference soil group (most common among the calibration sites)"
        means = {t: raw[ft == t].mean(axis=0) for t in types}
        dev = raw - np.stack([means[t].to_numpy() for t in ft])
        dof = len(raw) - len(types)
        if dof < 1:
            raise ValueError(f"need more calibration sites than forest types to standardise, got {len(raw)}")
        sd = np.sqrt((dev**2).sum(axis=0) / dof)
        unscaled = []
        for c in raw.columns:
            if c in dropped or sd[c] > 1e-12 * max(1.0, float(np.abs(raw[c]).max())):
                continue
            if c == "clay_measured" or c.startswith("soil_"):
                unscaled.append(c)
                sd[c] = 1.0
            else:
                dropped[c] = "constant within every forest type of the calibration sites"
        keep = [c for c in raw.columns if c not in dropped]
        fixed = {c: {t: float(means[t][c]) for t in types} for c in dropped if c != f"soil_{reference}"}
        if not keep:
            raise ValueError(f"no covariate column varies among the calibration sites (dropped: {dropped})")
        return cls(
            covariates=covariates,
            columns=tuple(keep),
            center={t: tuple(float(means[t][c]) for c in keep) for t in types},
            scale=tuple(float(sd[c]) for c in keep),
            clay_rule=clay_rule,
            soil_reference=reference,
            dropped=dropped,
            fixed=fixed,
            unscaled=tuple(unscaled),
        )

    def transform(self, table: pd.DataFrame, site_ids: Sequence[str], forest_types: Sequence[str]) -> np.ndarray:
        """The standardised design of ``site_ids`` (calibration or new sites), shape (n_sites, n_columns).

        Args:
            table: :func:`site_covariate_table` (–).
            site_ids: the sites (–).
            forest_types: forest type of each site; each must be one of the calibration types (–).

        Raises:
            MissingCovariateError: a missing covariate (names site and covariate).
            ValueError: a forest type without calibration statistics.
        """
        raw = raw_covariate_columns(table, site_ids, self.covariates, clay_rule=self.clay_rule)
        ft = [str(t) for t in forest_types]
        if len(ft) != len(raw):
            raise ValueError(f"forest_types must give one type per site ({len(raw)}), got {len(ft)}")
        unknown = sorted(set(ft) - set(self.center))
        if unknown:
            raise ValueError(f"forest type(s) {unknown} have no calibration statistics (have {sorted(self.center)})")
        for c, by_type in self.fixed.items():
            v = raw[c].to_numpy(float)
            ref = np.array([by_type[t] for t in ft])
            bad = [s for s, a, b in zip(raw.index, v, ref, strict=True) if not np.isclose(a, b)]
            if bad:
                raise ValueError(
                    f"covariate column {c!r} of site(s) {bad[:12]} differs from the value shared by all calibration "
                    f"sites of their forest type ({self.dropped[c]}): the regression has no coefficient for it"
                )
        center = np.array([self.center[t] for t in ft]).reshape(len(ft), len(self.columns))
        return (raw[list(self.columns)].to_numpy(float) - center) / np.asarray(self.scale)

    def to_json(self) -> str:
        """The scaler as JSON text (stored in results; :meth:`from_json` reads it back)."""
        return json.dumps(
            {
                "covariates": list(self.covariates),
                "columns": list(self.columns),
                "center": {t: list(v) for t, v in self.center.items()},
                "scale": list(self.scale),
                "clay_rule": self.clay_rule,
                "soil_reference": self.soil_reference,
                "dropped": self.dropped,
                "fixed": self.fixed,
                "unscaled": list(self.unscaled),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> CovariateScaler:
        """The scaler of :meth:`to_json`."""
        d = json.loads(text)
        return cls(
            covariates=tuple(d["covariates"]),
            columns=tuple(d["columns"]),
            center={t: tuple(v) for t, v in d["center"].items()},
            scale=tuple(d["scale"]),
            clay_rule=d["clay_rule"],
            soil_reference=d["soil_reference"],
            dropped=dict(d["dropped"]),
            fixed={c: dict(v) for c, v in d.get("fixed", {}).items()},
            unscaled=tuple(d.get("unscaled", ())),
        )

    def to_dataset(self) -> xr.Dataset:
        """Centres (forest_type, covariate) and scales (covariate), with the scaler's JSON in ``attrs``."""
        types = sorted(self.center)
        return xr.Dataset(
            {
                "center": (("forest_type", "covariate"), np.array([self.center[t] for t in types])),
                "scale": (("covariate",), np.asarray(self.scale)),
            },
            coords={"forest_type": types, "covariate": list(self.columns)},
            attrs={"scaler": self.to_json()},
        )


@dataclass(frozen=True)
class CovariateDesign:
    """Standardised covariates of a set of sites.

    Attributes:
        X: design, shape (n_sites, n_columns) (standardised units: within-type sd of the calibration sites).
        columns: column names (–).
        site_ids: the rows' sites (–).
        scaler: the standardisation (–).
    """

    X: np.ndarray
    columns: tuple[str, ...]
    site_ids: tuple[str, ...]
    scaler: CovariateScaler


def covariate_design(
    site_ids: Sequence[str],
    forest_types: Sequence[str],
    covariates: Sequence[str] | str | None = DEFAULT_COVARIATES,
    *,
    data_dir: str | os.PathLike | None = None,
    table: pd.DataFrame | None = None,
    scaler: CovariateScaler | None = None,
    clay_rule: str = "indicator",
) -> CovariateDesign:
    """The design matrix X (n_sites × n_columns) with column names for a list of sites.

    Without ``scaler`` the sites are the calibration sites and their statistics standardise X; with it
    (the calibration run's), new sites are standardised like the calibration sites.

    Args:
        site_ids: the sites (e.g. ``problem.site_ids``) (–).
        forest_types: forest type of each site (–).
        covariates: covariate names or "mat,map,clay"; ignored when ``scaler`` is given (–).
        data_dir: raw-data folder, or None for ``$BAYES_VMIMICS_DATA`` (path).
        table: the covariate table (:func:`site_covariate_table`), instead of building it from ``data_dir`` (–).
        scaler: the calibration sites' standardisation, for new sites (–).
        clay_rule: see :func:`raw_covariate_columns`; ignored when ``scaler`` is given (–).

    Returns:
        :class:`CovariateDesign`.

    Raises:
        MissingCovariateError: a site missing a covariate (names site and covariate).
    """
    if table is None:
        table = site_covariate_table(data_dir)
    if scaler is None:
        scaler = CovariateScaler.fit(table, site_ids, forest_types, parse_covariates(covariates), clay_rule=clay_rule)
    X = scaler.transform(table, site_ids, forest_types)
    return CovariateDesign(X, scaler.columns, tuple(str(s) for s in site_ids), scaler)
