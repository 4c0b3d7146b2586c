"""One profile once: which He et al. (2016) profiles are also in ISRaD (the matching rule).

He et al.'s compilation seeded the International Soil Radiocarbon Database (ISRaD), so many of its profiles are in
both sources under other names (He ``dataset`` ``Manies_USGSOF_2004`` is ISRaD entry ``Manies_2004``; He profile
463, ``Becker-Heidmann_1986`` "Ohlendorf", is ISRaD ``Becker-Heidmann_1989`` "Ohlendorf Forest_Profile A"). An
analysis that pools the two sources must count such a profile once. :func:`match_he_israd` states the rule as
code; ``bayes_vmimics.io.matching_inputs.load_matching_frames`` builds its tidy inputs from the raw CSV files with
pandas alone (it does not use the ISRaD reader ``bayes_vmimics.io.israd``), and
``bayes_vmimics.io.matching_inputs.israd_forest_candidates`` lists the ISRaD forest profiles that carry a usable SOC,
bulk density and ¹⁴C profile. ``data/source_matches.py`` writes the committed table
``data/source_matches.csv``; the method is described in ``docs/israd_matching.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "D14C_IDENTICAL_PERMIL",
    "D14C_TOL_PERMIL",
    "DEPTH_SHIFT_MAX_CM",
    "DEPTH_TOL_CM",
    "F14C_TOL",
    "ISRAD_KEYS",
    "MATCH_COLUMNS",
    "MIN_AGREE_FRACTION",
    "MIN_IDENTICAL_LAYERS",
    "MIN_LAYERS_COMPARED",
    "NEARBY_MAX_KM",
    "SAME_PROFILE_MAX_KM",
    "SOC_ABS_TOL_PCT",
    "SOC_REL_TOL",
    "STUDY_ALIASES",
    "haversine_km",
    "match_he_israd",
    "study_key",
]

#: Keys of an ISRaD profile (entry → site → profile).
ISRAD_KEYS = ("entry_name", "site_name", "pro_name")

#: Largest distance (km, haversine) between a He profile and an ISRaD profile called the same profile. Generous,
#: because the layer values decide and the coordinates of one source are often rounded or approximate: ISRaD
#: ``Manies_2004`` gives 63.0 N, 145.0 W (whole degrees) for the Donnelly Flats profiles He et al. place at
#: 63.89 N, 145.74 W (90–106 km); Harden 1999 (14 km), Trumbore 1996 (19–35 km), O'Donnell 2011 (36 km), Wang
#: 2005, Dorr 1989 and Rumpel 2008 (14–30 km) differ likewise, each with identical Δ14C in every paired layer.
SAME_PROFILE_MAX_KM = 150.0
#: Largest distance (km) for a "same study nearby" pair: about 0.05° of latitude, the scale below which gridded
#: covariates of ISRaD_extra (WorldClim 2.1 at 1 km, SoilGrids at 250 m) may be borrowed for a He profile.
NEARBY_MAX_KM = 5.0
#: Two layers are compared when their top and bottom depths both agree within this (cm).
DEPTH_TOL_CM = 1.0
#: SOC of two compared layers agrees when |a − b| ≤ max(SOC_REL_TOL × max(a, b), SOC_ABS_TOL_PCT) (fraction, %).
SOC_REL_TOL = 0.05
SOC_ABS_TOL_PCT = 0.02
#: Δ14C of two compared layers agrees within this (‰); F14C, used where one side has no Δ14C, within F14C_TOL.
D14C_TOL_PERMIL = 10.0
F14C_TOL = 0.01
#: A He layer without a partner at the same depths is paired with an ISRaD layer of identical Δ14C (within this,
#: ‰) whose mid-depth lies within DEPTH_SHIFT_MAX_CM (cm): the same sample under another depth reference
#: (O'Donnell et al. 2011: He et al. 0–3, 3–8 cm … are ISRaD 0–5, 5–11 cm … with the same Δ14C to 0.01 ‰;
#: He et al. profile 130 starts 42 cm lower than ISRaD's GillamRoad_64burn_GR3, whose 8 Δ14C values it repeats).
D14C_IDENTICAL_PERMIL = 0.5
DEPTH_SHIFT_MAX_CM = 50.0
#: A same-profile pair needs at least this many paired layers carrying the deciding quantity on both sides ...
MIN_LAYERS_COMPARED = 2
#: ... and at least this fraction of them agreeing.
MIN_AGREE_FRACTION = 0.75
#: Identical data under another study name (rule 3b): at least this many layers paired at the same depths, each
#: with Δ14C identical within D14C_IDENTICAL_PERMIL. He et al. cite a data report where ISRaD cites the paper
#: (He ``Manies_USGSOF_2006`` profiles 146–153 are ISRaD ``Czimczik_2007`` OBSD, T30W … T98burn: 4–8 layers with
#: the same depths, SOC and Δ14C to 0.1 ‰, 5–27 km apart); three Δ14C values repeated to 0.5 ‰ at the same depths
#: do not happen by chance.
MIN_IDENTICAL_LAYERS = 3
#: Spelling variants of a first author in the two sources (normalised keys, see :func:`study_key`).
STUDY_ALIASES = {"maines": "manies"}  # He et al.'s "Maines_USGSOF_2011" is Manies et al. (USGS OFR)

#: Columns of the table :func:`match_he_israd` returns.
MATCH_COLUMNS = (
    "he_site_id",
    "he_profile_id",
    "he_dataset",
    "entry_name",
    "site_name",
    "pro_name",
    "match",
    "distance_km",
    "n_layers_compared",
    "n_layers_agree",
    "evidence",
)

SAME_PROFILE = "same profile"
SAME_STUDY_NEARBY = "same study nearby"


def study_key(name: str) -> str:
    """The first author of a study key: He ``dataset`` or ISRaD ``entry_name`` (both ``Author_Year`` or
    ``Author_USGSOF_Year``), lower case, letters only, with :data:`STUDY_ALIASES` applied.

    Years are left out on purpose: the two sources often date one study differently (He ``Heckman_2011`` is
    ISRaD ``Heckman_2010``, He ``Odonnell_USGSOF_2013`` is ISRaD ``O'Donnell_2011``), and distance and layer
    values separate two studies of one author.

    Args:
        name: study key, e.g. ``"O'Donnell_2011"`` (text).

    Returns:
        e.g. ``"odonnell"``.
    """
    first = str(name).split("_")[0]
    key = re.sub(r"[^a-z]", "", first.lower())
    return STUDY_ALIASES.get(key, key)


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance on a sphere of radius 6371.0 km.

    Args:
        lat1, lon1, lat2, lon2: coordinates (decimal degrees N, E); scalars or arrays that broadcast.

    Returns:
        Distance (km), NaN where a coordinate is missing.
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _soc_agrees(a: float, b: float) -> bool:
    return abs(a - b) <= max(SOC_REL_TOL * max(abs(a), abs(b)), SOC_ABS_TOL_PCT)


def _fmt(x: float) -> str:
    return f"{x:.3g}"


@dataclass
class _Comparison:
    """Layer comparison of one He profile with one ISRaD profile (counts of layers)."""

    n_depth: int = 0  # paired at the same depths
    n_shift: int = 0  # paired by identical Δ14C at other depths
    n_c14: int = 0
    n_c14_ok: int = 0
    n_soc: int = 0
    n_soc_ok: int = 0
    n_c14_identical: int = 0  # of n_c14, layers whose Δ14C agrees within D14C_IDENTICAL_PERMIL
    notes: list[str] = field(default_factory=list)

    @property
    def n_compared(self) -> int:
        return self.n_depth + self.n_shift

    @property
    def deciding(self) -> str:
        """The quantity that decides: ¹⁴C where ≥ MIN_LAYERS_COMPARED layers carry it on both sides, else SOC."""
        return "14C" if self.n_c14 >= MIN_LAYERS_COMPARED else "SOC"

    @property
    def n_agree(self) -> int:
        return self.n_c14_ok if self.deciding == "14C" else self.n_soc_ok

    @property
    def n_base(self) -> int:
        return self.n_c14 if self.deciding == "14C" else self.n_soc

    @property
    def same(self) -> bool:
        if self.n_base < MIN_LAYERS_COMPARED or self.n_agree < MIN_AGREE_FRACTION * self.n_base:
            return False
        return self.deciding == "14C" or self.n_c14_ok == self.n_c14  # SOC decides only if no ¹⁴C disagrees

    @property
    def identical(self) -> bool:
        """Identical data (rule 3b): ≥ MIN_IDENTICAL_LAYERS layers paired at the same depths, every one with Δ14C on
        both sides agreeing within D14C_IDENTICAL_PERMIL, every paired SOC agreeing, no layer paired by a shift."""
        return (
            self.n_shift == 0
            and self.n_c14 >= MIN_IDENTICAL_LAYERS
            and self.n_c14_identical == self.n_c14
            and self.n_soc_ok == self.n_soc
        )

    def add(self, h, r, shifted: bool) -> None:
        """Count one pair of layers (He row ``h``, ISRaD row ``r``)."""
        bad = []
        if shifted:
            self.n_shift += 1
        else:
            self.n_depth += 1
        if pd.notna(h.soc_pct) and pd.notna(r.soc_pct):
            self.n_soc += 1
            if _soc_agrees(h.soc_pct, r.soc_pct):
                self.n_soc_ok += 1
            else:
                bad.append(f"SOC {_fmt(h.soc_pct)} vs {_fmt(r.soc_pct)} %")
        if pd.notna(h.d14c) and pd.notna(r.d14c):
            self.n_c14 += 1
            if abs(h.d14c - r.d14c) <= D14C_TOL_PERMIL:
                self.n_c14_ok += 1
            if abs(h.d14c - r.d14c) <= D14C_IDENTICAL_PERMIL:
                self.n_c14_identical += 1
            else:
                bad.append(f"Δ14C {_fmt(h.d14c)} vs {_fmt(r.d14c)} ‰")
        elif pd.notna(h.f14c) and pd.notna(r.f14c):
            self.n_c14 += 1
            if abs(h.f14c - r.f14c) <= F14C_TOL:
                self.n_c14_ok += 1
            else:
                bad.append(f"F14C {_fmt(h.f14c)} vs {_fmt(r.f14c)}")
        if shifted:
            self.notes.append(
                f"He {_fmt(h.top_cm)}–{_fmt(h.bottom_cm)} cm = ISRaD {_fmt(r.top_cm)}–{_fmt(r.bottom_cm)} cm "
                "(same Δ14C, depths differ)"
            )
        if bad:
            self.notes.append(f"{_fmt(h.top_cm)}–{_fmt(h.bottom_cm)} cm: {', '.join(bad)}")


def _with_value_columns(layers: pd.DataFrame) -> pd.DataFrame:
    out = layers.copy()
    for c in ("soc_pct", "d14c", "f14c"):
        if c not in out:
            out[c] = np.nan
    return out


def _has_values(h, r) -> bool:
    return (
        (pd.notna(h.soc_pct) and pd.notna(r.soc_pct))
        or (pd.notna(h.d14c) and pd.notna(r.d14c))
        or (pd.notna(h.f14c) and pd.notna(r.f14c))
    )


def _compare_layers(he: pd.DataFrame, ir: pd.DataFrame) -> _Comparison:
    """Pair the layers of two profiles (same depths first, then identical Δ14C at shifted depths) and count."""
    cmp = _Comparison()
    irs = list(ir.itertuples(index=False))
    used: set[int] = set()
    left = []
    for h in he.itertuples(index=False):
        same_depth = [
            j
            for j, r in enumerate(irs)
            if j not in used
            and abs(r.top_cm - h.top_cm) <= DEPTH_TOL_CM
            and abs(r.bottom_cm - h.bottom_cm) <= DEPTH_TOL_CM
            and _has_values(h, r)
        ]
        if not same_depth:
            left.append(h)
            continue

        # several ISRaD layers at one depth (repeated sampling): take the one closest in Δ14C, else in SOC
        def gap(j, h=h):
            r = irs[j]
            d = abs(r.d14c - h.d14c) if pd.notna(r.d14c) and pd.notna(h.d14c) else np.inf
            s = abs(r.soc_pct - h.soc_pct) if pd.notna(r.soc_pct) and pd.notna(h.soc_pct) else np.inf
            return (d, s)

        j = min(same_depth, key=gap)
        used.add(j)
        cmp.add(h, irs[j], shifted=False)
    for h in left:
        if pd.isna(h.d14c):
            continue
        mid = (h.top_cm + h.bottom_cm) / 2
        for j, r in enumerate(irs):
            if (
                j not in used
                and pd.notna(r.d14c)
                and abs(r.d14c - h.d14c) <= D14C_IDENTICAL_PERMIL
                and abs((r.top_cm + r.bottom_cm) / 2 - mid) <= DEPTH_SHIFT_MAX_CM
            ):
                used.add(j)
                cmp.add(h, r, shifted=True)
                break
    return cmp


# Long (~135 lines of code): the rule's steps (same study, distance, layer agreement, identical data under another
# name, nearby pairs) are read in one place against the rule in its docstring and docs/israd_matching.md.
def match_he_israd(
    he_sites: pd.DataFrame,
    he_layers: pd.DataFrame,
    israd_sites: pd.DataFrame,
    israd_layers: pd.DataFrame,
) -> pd.DataFrame:
    """Pair He et al. (2016) profiles with ISRaD profiles: the same profile, or a profile of the same study nearby.

    The rule (thresholds are the module constants):

    1. **Same study**: the first authors agree (:func:`study_key`: He ``dataset`` vs ISRaD ``entry_name``, letters
       only, lower case, years ignored, spelling aliases :data:`STUDY_ALIASES`).
    2. **Layers compared**: a He layer is paired with an ISRaD layer whose top and bottom depths both lie within
       ``DEPTH_TOL_CM`` (1 cm) and which gives SOC or ¹⁴C where the He layer does (organic layers included, both
       sources counting negative depths above the mineral surface); a He layer left unpaired is paired with an
       ISRaD layer of identical Δ14C (within ``D14C_IDENTICAL_PERMIL``, 0.5 ‰) whose mid-depth lies within
       ``DEPTH_SHIFT_MAX_CM`` (50 cm): the same sample under another depth reference. In a pair, SOC agrees
       within 5 % relative or 0.02 % absolute (``SOC_REL_TOL``, ``SOC_ABS_TOL_PCT``), Δ14C within 10 ‰
       (``D14C_TOL_PERMIL``; F14C within 0.01 where Δ14C is missing on one side).
    3. **Same profile**: same study, haversine distance ≤ ``SAME_PROFILE_MAX_KM`` (150 km: one source's
       coordinates are often rounded, e.g. to whole degrees), and the deciding
       quantity agrees in ≥ ``MIN_AGREE_FRACTION`` (75 %) of ≥ ``MIN_LAYERS_COMPARED`` (2) paired layers. ¹⁴C
       decides where ≥ 2 paired layers carry it on both sides (He et al.'s pseudo-replicates share one SOC
       profile and differ in ¹⁴C); otherwise SOC decides, provided no paired ¹⁴C disagrees. SOC that
       disagrees while ¹⁴C agrees is reported in ``evidence`` (a unit or transcription difference between the
       sources, not another profile). Passing pairs are made one-to-one greedily: most agreeing layers first,
       then the larger agreeing fraction, then the shorter distance; a pair whose He or ISRaD profile is
       already taken is dropped.
    3b. **Identical data under another study name**: a He profile left without a same-profile match is the same
       profile as an ISRaD profile of *another* study key within ``SAME_PROFILE_MAX_KM`` when ≥
       ``MIN_IDENTICAL_LAYERS`` (3) layers pair at the same depths (no shifted pairs), every paired Δ14C is
       identical within ``D14C_IDENTICAL_PERMIL`` (0.5 ‰) and every paired SOC agrees: one source cites a data
       report where the other cites the paper (He ``Manies_USGSOF_2006`` 146–153 = ISRaD ``Czimczik_2007``), or
       the keys are written differently (He ``de Freitas_2001`` = ISRaD ``de_Freitas_2001``, whose first part is
       "de"). One-to-one greedily: most identical layers, then the shorter distance.
    4. **Same study nearby**: a He profile left without a same-profile match is paired with the nearest ISRaD
       profile of the same study within ``NEARBY_MAX_KM`` (5 km, ~0.05°), whatever its layers. Such a pair may
       be used only to borrow gridded covariates (ISRaD_extra's WorldClim, SoilGrids, Köppen) for the He
       profile; it is *not* the same data, and both profiles may be used.

    Args:
        he_sites: one row per He profile: ``site_id`` (e.g. ``he2016_206``), ``profile_id``, ``dataset``,
            ``lat``, ``lon`` (decimal degrees N, E).
        he_layers: one row per He layer: ``site_id``, ``top_cm``, ``bottom_cm`` (cm below the mineral-soil
            surface, negative above), ``soc_pct`` (% by mass), ``d14c`` (Δ14C, ‰) and/or ``f14c`` (fraction
            modern); a missing value is NaN.
        israd_sites: one row per ISRaD profile: ``entry_name``, ``site_name``, ``pro_name``, ``lat``, ``lon``
            (decimal degrees N, E).
        israd_layers: one row per ISRaD layer: ``entry_name``, ``site_name``, ``pro_name`` and the value
            columns of ``he_layers`` (same units).

    Returns:
        One row per pair, columns :data:`MATCH_COLUMNS`: ``match`` is ``"same profile"`` or
        ``"same study nearby"``, ``distance_km`` (km, rounded to 0.01), ``n_layers_compared`` (paired layers)
        and ``n_layers_agree`` (of them, layers whose deciding quantity agrees), ``evidence`` in words. Sorted by
        He profile id. Each He profile has at most one row, and each ISRaD profile appears at most once as
        ``"same profile"``.
    """
    keys = list(ISRAD_KEYS)
    hs = he_sites.dropna(subset=["lat", "lon"]).copy()
    ir = israd_sites.dropna(subset=["lat", "lon"]).copy()
    hs["_study"] = hs["dataset"].map(study_key)
    ir["_study"] = ir["entry_name"].map(study_key)
    hl = _with_value_columns(he_layers)
    il = _with_value_columns(israd_layers)
    he_by_site = {k: g for k, g in hl.groupby("site_id", sort=False)}
    ir_by_pro = {k: g for k, g in il.groupby(keys, sort=False)}
    empty = hl.iloc[:0]

    cands = hs.merge(ir, on="_study", suffixes=("_he", "_ir"))
    cands["distance_km"] = haversine_km(cands["lat_he"], cands["lon_he"], cands["lat_ir"], cands["lon_ir"])
    cands = cands[cands["distance_km"] <= max(SAME_PROFILE_MAX_KM, NEARBY_MAX_KM)].reset_index(drop=True)

    rows = []
    for c in cands.itertuples(index=False):
        pro = (c.entry_name, c.site_name, c.pro_name)
        cmp = _compare_layers(he_by_site.get(c.site_id, empty), ir_by_pro.get(pro, empty))
        rows.append(
            {
                "he_site_id": c.site_id,
                "he_profile_id": int(c.profile_id),
                "he_dataset": c.dataset,
                **dict(zip(keys, pro, strict=True)),
                "distance_km": float(c.distance_km),
                "n_layers_compared": cmp.n_compared,
                "n_layers_agree": cmp.n_agree,
                "_cmp": cmp,
            }
        )
    pairs = pd.DataFrame(rows, columns=[*MATCH_COLUMNS[:8], "n_layers_compared", "n_layers_agree", "_cmp"])
    pairs["_pass"] = np.array([c.same for c in pairs["_cmp"]], dtype=bool) & (
        pairs["distance_km"] <= SAME_PROFILE_MAX_KM
    )
    pairs["_frac"] = [c.n_agree / c.n_base if c.n_base else 0.0 for c in pairs["_cmp"]]
    ranked = pairs[pairs["_pass"]].sort_values(
        ["n_layers_agree", "_frac", "distance_km", "he_profile_id"], ascending=[False, False, True, True]
    )
    taken_he: set[str] = set()
    taken_ir: set[tuple] = set()
    out = []
    for _, r in ranked.iterrows():
        pro = tuple(r[k] for k in keys)
        if r["he_site_id"] in taken_he or pro in taken_ir:
            continue
        taken_he.add(r["he_site_id"])
        taken_ir.add(pro)
        cmp = r["_cmp"]
        ev = (
            f"same first author ({r['he_dataset']} / {r['entry_name']}); {r['distance_km']:.2f} km apart; "
            f"{cmp.deciding} agrees in {cmp.n_agree} of {cmp.n_base} paired layers"
        )
        if cmp.deciding == "14C":
            ev += f" (±{D14C_TOL_PERMIL:g} ‰); SOC agrees in {cmp.n_soc_ok} of {cmp.n_soc}"
        else:
            ev += f" (±{SOC_REL_TOL:.0%}); no paired ¹⁴C disagrees"
        if cmp.n_shift:
            ev += f"; {cmp.n_shift} layer(s) paired by identical Δ14C at other depths"
        if cmp.notes:
            ev += "; " + "; ".join(cmp.notes)
        rivals = ranked[(ranked["he_site_id"] == r["he_site_id"]) & ~ranked.index.isin([r.name])]
        if len(rivals):
            ev += f"; {len(rivals)} other ISRaD profile(s) of the study also pass"
        out.append({**r.to_dict(), "match": SAME_PROFILE, "evidence": ev})

    # rule 3b: identical data under another study name (a data report cited by one source, the paper by the other)
    left = hs[~hs["site_id"].isin(taken_he)]
    cross = []
    for h in left.itertuples(index=False):
        hl_h = he_by_site.get(h.site_id, empty)
        if hl_h["d14c"].notna().sum() < MIN_IDENTICAL_LAYERS:
            continue
        d = np.asarray(haversine_km(h.lat, h.lon, ir["lat"].to_numpy(), ir["lon"].to_numpy()))
        ok = (d <= SAME_PROFILE_MAX_KM) & (ir["_study"].to_numpy() != study_key(h.dataset))
        near = ir[ok].assign(distance_km=d[ok])
        for r in near.itertuples(index=False):
            pro = (r.entry_name, r.site_name, r.pro_name)
            if pro in taken_ir:
                continue
            cmp = _compare_layers(hl_h, ir_by_pro.get(pro, empty))
            if cmp.identical:
                cross.append((cmp.n_c14_identical, -float(r.distance_km), h, pro, float(r.distance_km), cmp))
    for n_id, _, h, pro, dist, cmp in sorted(cross, key=lambda x: (-x[0], -x[1], int(x[2].profile_id))):
        if h.site_id in taken_he or pro in taken_ir:
            continue
        taken_he.add(h.site_id)
        taken_ir.add(pro)
        ev = (
            f"identical data under another study name ({h.dataset} / {pro[0]}); {dist:.2f} km apart; Δ14C identical "
            f"(±{D14C_IDENTICAL_PERMIL:g} ‰) in {n_id} of {cmp.n_c14} paired layers at the same depths; SOC agrees "
            f"in {cmp.n_soc_ok} of {cmp.n_soc}"
        )
        out.append(
            {
                "he_site_id": h.site_id,
                "he_profile_id": int(h.profile_id),
                "he_dataset": h.dataset,
                **dict(zip(keys, pro, strict=True)),
                "match": SAME_PROFILE,
                "distance_km": dist,
                "n_layers_compared": cmp.n_compared,
                "n_layers_agree": n_id,
                "evidence": ev,
            }
        )

    rest = pairs[~pairs["he_site_id"].isin(taken_he) & (pairs["distance_km"] <= NEARBY_MAX_KM)]
    for _, g in rest.groupby("he_site_id", sort=False):
        g = g.assign(_c14=[c.n_c14_ok for c in g["_cmp"]])
        r = g.sort_values(["distance_km", "n_layers_agree", "_c14"], ascending=[True, False, False]).iloc[0]
        cmp = r["_cmp"]
        if cmp.n_compared == 0:
            why = "no paired layers with values on both sides"
        elif cmp.same:
            why = "its ISRaD profile is the same profile of another He profile"
        else:
            why = f"{cmp.deciding} agrees in {cmp.n_agree} of {cmp.n_base} paired layers"
            if cmp.notes:
                why += " (" + "; ".join(cmp.notes[:3]) + (" …" if len(cmp.notes) > 3 else "") + ")"
        ev = (
            f"same first author ({r['he_dataset']} / {r['entry_name']}); nearest ISRaD profile of the study, "
            f"{r['distance_km']:.2f} km ≤ {NEARBY_MAX_KM:g} km; not the same profile: {why}; for gridded "
            "covariates only"
        )
        out.append({**r.to_dict(), "match": SAME_STUDY_NEARBY, "evidence": ev})

    res = pd.DataFrame(out, columns=list(MATCH_COLUMNS))
    res["distance_km"] = res["distance_km"].astype(float).round(2)
    res = res.astype({"he_profile_id": int, "n_layers_compared": int, "n_layers_agree": int})
    return res.sort_values(["he_profile_id", "match"]).reset_index(drop=True)
