"""Steady state at all 128 corners of the Table 1 box at three climates (issue 16): counts by solver status.

Climates as the package's synthetic sites (``synthetic.synthetic_forcings``: 2–18 °C, clay 0.08–0.4, litter
150–450 g C m⁻² yr⁻¹, lignin:N 15–40): cold, temperate and warm ends of those ranges. Cold starts, default
20 × 5 cm grid, "paper" profile. Prints counts by status and the β of every failure; with ``--verify`` also
integrates every non-converged case for ``--years`` years with scipy's BDF from WC22's initial pools and
prints where that integration ends (its largest relative rate, whether microbes persist, total carbon).
``--old`` solves with the spin-up on the site's grid only (``SolverOptions(coarse_levels=0)``); ``--compare``
solves with both and counts the corners whose status or pools (rtol 1e-8) differ.

    python benchmarks/box_corners.py [--verify] [--years 1e5] [--list] [--old | --compare]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bayes_vmimics import SiteForcing, SiteModel, solve_site  # noqa: E402
from bayes_vmimics.parameters import LOWER, PARAMETER_NAMES, UPPER  # noqa: E402
from bayes_vmimics.steady_state import DEFAULT_OPTIONS, SolverOptions  # noqa: E402

#: the spin-up on the site's grid only (no cold start through coarser grids)
OLD_PATH = SolverOptions(coarse_levels=0)

#: cold / temperate / warm sites spanning the synthetic twin's ranges (°C, fraction, g C m⁻² yr⁻¹, g g⁻¹)
CLIMATES = {
    "cold": SiteForcing(
        temperature=2.0, clay=0.08, litter_above=90.0, litter_below=60.0, lignin_n_above=40.0, lignin_n_below=40.0
    ),
    "temperate": SiteForcing(
        temperature=10.0, clay=0.2, litter_above=160.0, litter_below=140.0, lignin_n_above=25.0, lignin_n_below=25.0
    ),
    "warm": SiteForcing(
        temperature=18.0, clay=0.4, litter_above=250.0, litter_below=200.0, lignin_n_above=15.0, lignin_n_below=15.0
    ),
}


def corners() -> list[np.ndarray]:
    """The 2⁷ = 128 corners of the Table 1 box, in PARAMETER_NAMES order (parameter units)."""
    return [np.where(np.array(bits, dtype=bool), UPPER, LOWER) for bits in itertools.product((0, 1), repeat=7)]


def run_all(options: SolverOptions = DEFAULT_OPTIONS):
    """(climate, θ, SteadyState) for every corner × climate, cold starts."""
    out = []
    for name, forcing in CLIMATES.items():
        site = SiteModel(forcing)
        for theta in corners():
            out.append((name, theta, solve_site(site, theta, options=options, on_failure="ignore")))
    return out


def describe(theta) -> str:
    return ", ".join(f"{n}={v:g}" for n, v in zip(PARAMETER_NAMES, theta, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verify", action="store_true", help="BDF-integrate every non-converged case")
    ap.add_argument("--years", type=float, default=1e5, help="BDF integration length (yr)")
    ap.add_argument("--list", action="store_true", help="list every non-converged case")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--old", action="store_true", help="spin-up on the site's grid only (coarse_levels=0)")
    group.add_argument("--compare", action="store_true", help="also solve with --old and count differences")
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = run_all(OLD_PATH if args.old else DEFAULT_OPTIONS)
    elapsed = time.perf_counter() - t0
    counts = Counter(ss.message for _, _, ss in results)
    path = "spin-up on the site's grid" if args.old else "default cold start"
    print(f"{len(results)} runs: 128 corners × {len(CLIMATES)} climates ({elapsed:.1f} s, {path})")
    for msg, n in counts.most_common():
        print(f"  {n:4d}  {msg}")
    by_climate = Counter(name for name, _, ss in results if not ss.converged)
    print("  not converged by climate:", dict(by_climate))
    failed = [(name, th, ss) for name, th, ss in results if not ss.converged]
    print("  β of the non-converged:", sorted({float(th[6]) for _, th, _ in failed}))
    if args.compare:
        t0 = time.perf_counter()
        old = run_all(OLD_PATH)
        elapsed = time.perf_counter() - t0
        status = pools = 0
        for (name, th, ss), (_, _, ref) in zip(results, old, strict=True):
            if ss.status != ref.status:
                status += 1
                print(f"  status differs: {name} {describe(th)}: {ss.status.name} (spin-up only: {ref.status.name})")
            elif ref.converged and not np.allclose(ss.pools, ref.pools, rtol=1e-8, atol=1e-20):
                pools += 1
                print(f"  pools differ: {name} {describe(th)}")
        print(f"  against the spin-up on the site's grid only ({elapsed:.1f} s): {status} statuses and {pools} "
              "converged pools (rtol 1e-8) differ")  # fmt: skip
    if args.list or args.verify:
        for name, th, ss in failed:
            print(f"{name:9s} {describe(th)}: {ss.message} (n_iter {ss.n_iter}, residual {ss.residual_norm:.2g})")
            if args.verify:
                verify(CLIMATES[name], th, args.years)


def verify(forcing, theta, years) -> None:
    """Integrate with BDF for ``years`` and print where it ends."""
    from reference import bdf_equilibrium

    site = SiteModel(forcing)
    pools, sol = bdf_equilibrium(site, theta, t_end_years=years, rtol=1e-8, atol=1e-12)
    rate = site.dcdt(pools, theta)
    rel = np.abs(rate) / (pools + 1e-8)
    total = float(np.sum(pools * site.thickness_cm))
    mic = pools[2:4].max()
    print(
        f"    BDF {years:g} yr: max rel. rate {rel.max():.2g} h⁻¹, max microbes {mic:.3g} mg C cm⁻³, "
        f"column carbon {total:.4g} mg C cm⁻², max pool {pools.max():.3g}"
    )


if __name__ == "__main__":
    main()
