"""Map of the sites: latitude and longitude of every usable profile, coloured by forest type, marked by source.

No basemap is downloaded: the axes are longitude and latitude (decimal degrees) with a graticule; profiles that
are not usable (forest profiles the curation considered) are drawn as small grey points behind, so the map shows
where data were and were not usable. The figure has the whole globe (left) and a panel per dense region where
most sites lie (North America and Europe), so that stacked points stay distinguishable.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

#: Colours of the four forest types (colour-blind safe, Okabe–Ito).
TYPE_COLORS = {"ENF": "#009E73", "EBF": "#E69F00", "DBF": "#0072B2", "BNF": "#CC79A7"}
#: Markers of the sources.
SOURCE_MARKERS = {"he2016": "o", "israd": "^"}
SOURCE_LABELS = {"he2016": "He et al. 2016", "israd": "ISRaD"}
#: Regions drawn enlarged: name → (lon min, lon max, lat min, lat max) (decimal degrees).
REGIONS = {"North America": (-160.0, -55.0, 15.0, 72.0), "Europe": (-12.0, 28.0, 38.0, 62.0)}


def _draw(ax, inventory: pd.DataFrame, extent, size: float) -> None:
    lon0, lon1, lat0, lat1 = extent
    x = inventory.dropna(subset=["lat", "lon"])
    x = x[x["lon"].between(lon0, lon1) & x["lat"].between(lat0, lat1)]
    other = x[~x["usable"] | ~x["forest_type"].isin(list(TYPE_COLORS))]
    forest = other[other.get("n_layers_soc", 0) > 0] if "n_layers_soc" in other else other
    ax.scatter(forest["lon"], forest["lat"], s=size * 0.25, c="0.75", marker=".", linewidths=0, zorder=1)
    u = x[x["usable"] & x["forest_type"].isin(list(TYPE_COLORS))]
    for (ft, src), g in u.groupby(["forest_type", "source"]):
        ax.scatter(
            g["lon"],
            g["lat"],
            s=size,
            c=TYPE_COLORS[ft],
            marker=SOURCE_MARKERS.get(src, "s"),
            edgecolors="black" if src == "he2016" else "white",
            linewidths=0.4,
            alpha=0.85,
            zorder=3 if src == "he2016" else 2,
        )
    ax.set_xlim(lon0, lon1)
    ax.set_ylim(lat0, lat1)
    ax.grid(True, color="0.85", linewidth=0.5, zorder=0)
    ax.axhline(0.0, color="0.6", linewidth=0.6, zorder=0)
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")


def plot_site_map(inventory: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Draw the site map of an inventory (:func:`bayes_vmimics.io.inventory.site_inventory`) and save it as PNG.

    Args:
        inventory: one row per profile with ``lat``, ``lon`` (decimal degrees), ``forest_type``, ``source``,
            ``usable`` and ``n_layers_soc`` (DataFrame).
        path: output file (path).
        title: figure title (text); default the usable counts per source.

    Returns:
        The path written.
    """
    path = Path(path)
    fig = plt.figure(figsize=(14.0, 8.0), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[1.0, 1.0], width_ratios=[1.25, 1.0])
    ax_world = fig.add_subplot(grid[0, :])
    _draw(ax_world, inventory, (-180.0, 180.0, -60.0, 85.0), 28.0)
    ax_world.set_aspect("equal")
    ax_world.set_title("all sites")
    for k, (name, ext) in enumerate(REGIONS.items()):
        ax = fig.add_subplot(grid[1, k])
        _draw(ax, inventory, ext, 40.0)
        ax.set_title(name)
        ax_world.add_patch(
            plt.Rectangle((ext[0], ext[2]), ext[1] - ext[0], ext[3] - ext[2], fill=False, ec="0.4", ls="--", lw=0.7)
        )
    u = inventory[inventory["usable"] & inventory["forest_type"].isin(list(TYPE_COLORS))]
    handles = [Line2D([], [], ls="", marker="s", ms=9, mfc=c, mec="none", label=ft) for ft, c in TYPE_COLORS.items()]
    handles += [
        Line2D([], [], ls="", marker=m, ms=8, mfc="0.5", mec="black" if s == "he2016" else "white", label=lab)
        for s, m in SOURCE_MARKERS.items()
        for lab in [f"{SOURCE_LABELS[s]} ({int((u['source'] == s).sum())} usable)"]
        if (inventory["source"] == s).any()
    ]
    handles.append(Line2D([], [], ls="", marker=".", ms=6, mfc="0.75", mec="none", label="not usable"))
    fig.legend(handles=handles, loc="outside right upper", frameon=False, title="forest type / source")
    counts = ", ".join(f"{ft} {int((u['forest_type'] == ft).sum())}" for ft in TYPE_COLORS)
    fig.suptitle(title or f"usable four-type profiles: {len(u)} ({counts})")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
