"""Steady-state solver speed: 20 × 5 cm layers, "paper" profile. Prints figures; asserts nothing.

Targets (issues 2 and 31): cold ≤ 0.25 ms and ≥ 1000× faster than brute-force BDF; warm ≤ 0.2 ms; a converged
solve near β = 1 (with the stability check) ≤ 2× one at β = 1.2; a failing solve near β = 1 ≤ 50 ms.
"Old path" is the spin-up on the site's grid alone (``SolverOptions(coarse_levels=0)``); "new path" the default
cold start through coarser grids (``docs/steady_state.md``).

    python benchmarks/bench_steady_state.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from reference import bdf_equilibrium  # noqa: E402

from bayes_vmimics import Parameters, SiteForcing, SiteModel, solve_site, solve_steady_state  # noqa: E402
from bayes_vmimics.steady_state import SolverOptions  # noqa: E402

OLD = SolverOptions(coarse_levels=0)

#: the synthetic twin's cold end (benchmarks/box_corners.py) and two Table 1 corners that fail there
COLD_SITE = SiteForcing(
    temperature=2.0, clay=0.08, litter_above=90.0, litter_below=60.0, lignin_n_above=40.0, lignin_n_below=40.0
)
FAILING = {
    "oscillatory (unstable focus)": np.array([2.0, 2.0, 0.1, 0.01, 1.0, 1.0, 1.0]),
    "not settled": np.array([2.0, 30.0, 0.1, 0.01, 1.0, 1.0, 1.0]),
}


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    rep = args.repeats
    forcing = SiteForcing(temperature=10.0, clay=0.2, litter_above=250.0, litter_below=250.0)
    params = Parameters()
    nearby = Parameters(x_v=4.08, x_K=7.9, x_d=2.02, x_D=0.76, alpha_r=10.1, alpha_v=1.01, beta=1.21)
    site = SiteModel(forcing)
    ref = solve_site(site, params)  # compiles
    solve_site(site, nearby, ref)
    solve_site(site, nearby, options=OLD)

    new = solve_site(site, nearby)
    old = solve_site(site, nearby, options=OLD)
    cold_new = median_time(lambda: solve_site(site, nearby), rep)
    cold_old = median_time(lambda: solve_site(site, nearby, options=OLD), rep)
    warm_site = median_time(lambda: solve_site(site, nearby, ref), rep)
    cold_api = median_time(lambda: solve_steady_state(nearby, forcing), rep)
    warm_api = median_time(lambda: solve_steady_state(nearby, forcing, initial=ref), rep)
    same = np.max(np.abs(new.pools - old.pools) / (np.abs(old.pools) + 1e-20))

    print("steady state, 20 x 5 cm layers, paper profile, T = 10 °C (median of", rep, "runs)")
    print(f"  cold start, new path (coarse grids)  {cold_new * 1e3:8.3f} ms   ({new.n_iter} iterations on all grids)")
    print(f"  cold start, old path (spin-up)       {cold_old * 1e3:8.3f} ms   ({old.n_iter} iterations)")
    print(f"  ratio old / new                      {cold_old / cold_new:8.2f} x   (max rel. pool diff. {same:.1e})")
    print(f"  warm start, prepared SiteModel       {warm_site * 1e3:8.3f} ms")
    print(f"  cold start, solve_steady_state()     {cold_api * 1e3:8.3f} ms   (includes building the SiteModel)")
    print(f"  warm start, solve_steady_state()     {warm_api * 1e3:8.3f} ms")

    # converged solves near β = 1 (stability check: dense eigenvalues of the Jacobian) against β = 1.2
    base_theta = np.array([4.08, 7.9, 2.02, 0.76, 10.1, 1.01, 1.2])
    t_ref = median_time(lambda: solve_site(site, base_theta), rep)
    print(f"  converged, β = 1.2                   {t_ref * 1e3:8.3f} ms")
    for beta in (1.0, 1.02, 1.05):
        th = base_theta.copy()
        th[6] = beta
        ss = solve_site(site, th, on_failure="ignore")
        t = median_time(lambda th=th: solve_site(site, th, on_failure="ignore"), max(rep // 4, 5))
        print(
            f"  converged, β = {beta:<4g} (stability check) {t * 1e3:8.3f} ms   ratio to β = 1.2 {t / t_ref:6.1f} x"
            f"   [{ss.status.name}]"
        )

    # failing solves near β = 1 (Table 1 corners, cold climate), default budget and a 50-ms-sized one
    cold_site = SiteModel(COLD_SITE)
    short = SolverOptions(rescue_max_iter=3000)
    for label, th in FAILING.items():
        for name, opt in (("default", SolverOptions()), ("rescue_max_iter=3000", short)):
            ss = solve_site(cold_site, th, options=opt, on_failure="ignore")
            t = median_time(lambda th=th, opt=opt: solve_site(cold_site, th, options=opt, on_failure="ignore"), 3)
            print(
                f"  failing, β = 1, {label:28s} {name:21s} {t * 1e3:8.1f} ms   [{ss.status.name}, "
                f"{ss.n_iter} iterations]"
            )

    t0 = time.perf_counter()
    bdf_pools, sol = bdf_equilibrium(site, nearby)
    t_bdf = time.perf_counter() - t0
    err = np.max(np.abs(new.pools - bdf_pools) / (np.abs(bdf_pools) + 1e-12))
    print(
        f"  brute-force BDF (scipy, rtol 1e-12) {t_bdf:8.3f} s    ({sol.t.size} steps); max rel. difference {err:.1e}"
    )
    print(f"  ratio BDF / cold (new path)          {t_bdf / cold_new:8.0f} x")
    print(f"  ratio BDF / cold (old path)          {t_bdf / cold_old:8.0f} x")
    print(f"  ratio BDF / warm                     {t_bdf / warm_site:8.0f} x")


if __name__ == "__main__":
    main()
