"""Steady-state solver speed: 20 × 5 cm layers, "paper" profile (issue 2's targets: cold ≤ 1 ms, warm ≤ 0.2 ms,
≥ 1000× faster than brute-force BDF). Prints figures; asserts nothing.

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
    forcing = SiteForcing(temperature=10.0, clay=0.2, litter_above=250.0, litter_below=250.0)
    params = Parameters()
    nearby = Parameters(x_v=4.08, x_K=7.9, x_d=2.02, x_D=0.76, alpha_r=10.1, alpha_v=1.01, beta=1.21)
    site = SiteModel(forcing)
    ref = solve_site(site, params)  # compiles
    solve_site(site, nearby, ref)
    cold_site = median_time(lambda: solve_site(site, nearby), args.repeats)
    warm_site = median_time(lambda: solve_site(site, nearby, ref), args.repeats)
    cold_api = median_time(lambda: solve_steady_state(nearby, forcing), args.repeats)
    warm_api = median_time(lambda: solve_steady_state(nearby, forcing, initial=ref), args.repeats)
    beta1 = Parameters(beta=1.0, alpha_v=30.0, x_D=0.5)  # converges; β ≤ 1.05 adds the eigenvalue check
    cold_beta1 = median_time(lambda: solve_site(site, beta1), max(args.repeats // 10, 5))
    n_beta1 = solve_site(site, beta1).n_iter
    t0 = time.perf_counter()
    bdf_pools, sol = bdf_equilibrium(site, nearby)
    t_bdf = time.perf_counter() - t0
    ours = solve_site(site, nearby)
    err = np.max(np.abs(ours.pools - bdf_pools) / (np.abs(bdf_pools) + 1e-12))
    print("steady state, 20 x 5 cm layers, paper profile, T = 10 °C (median of", args.repeats, "runs)")
    print(
        f"  cold start, prepared SiteModel     {cold_site * 1e3:8.3f} ms   ({ours.n_iter} Newton/implicit iterations)"
    )
    print(f"  warm start, prepared SiteModel     {warm_site * 1e3:8.3f} ms")
    print(f"  cold start, solve_steady_state()   {cold_api * 1e3:8.3f} ms   (includes building the SiteModel)")
    print(f"  warm start, solve_steady_state()   {warm_api * 1e3:8.3f} ms")
    print(f"  cold start at β = 1 (with the stability check) {cold_beta1 * 1e3:8.3f} ms   ({n_beta1} iterations)")
    print(
        f"  brute-force BDF (scipy, rtol 1e-12) {t_bdf:8.3f} s    ({sol.t.size} steps); max rel. difference {err:.1e}"
    )
    print(f"  ratio BDF / cold                   {t_bdf / cold_site:8.0f} x")
    print(f"  ratio BDF / warm                   {t_bdf / warm_site:8.0f} x")


if __name__ == "__main__":
    main()
