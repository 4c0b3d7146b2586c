"""Benchmark and accuracy check of the radiocarbon transient (tracer and paper modes; spec Sect. 11).

Prints the median wall time of one tracer-mode ¹⁴C transient 1950 → 2010 on 20 layers after the carbon steady
state is known (the whole ``simulate_radiocarbon`` call and its compiled part alone), of the observation
operator, and of a paper-mode run; then the step-halving differences and the error against the exact
matrix-exponential solution. Uses the Hua et al. (2013) record from ``$BAYES_VMIMICS_DATA`` or ../shared/data.

    python benchmarks/bench_radiocarbon.py
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import scipy.linalg as sla

from bayes_vmimics import radiocarbon as rc
from bayes_vmimics.constants import C14_POOLS, HOURS_PER_YEAR, LAMBDA_14C_PER_HOUR
from bayes_vmimics.forcing import SiteForcing
from bayes_vmimics.io.atmosphere import load_atmosphere
from bayes_vmimics.model import SiteModel
from bayes_vmimics.observation import ObservationOperator
from bayes_vmimics.parameters import Parameters
from bayes_vmimics.steady_state import solve_site


def median_time(fn, repeat: int) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls after one warm-up call (s)."""
    fn()
    t = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        fn()
        t[i] = time.perf_counter() - t0
    return float(np.median(t))


def exact_f14c(ss, site, atm, zone, year):
    """p + c + a F14C per layer by exact annual propagation with the dense matrix exponential."""
    B, C, u, lo, up = rc._tracer_operator(ss.solver_state, site)
    n = C.shape[0]
    M = np.zeros((7 * n, 7 * n))
    for j in range(n):
        M[7 * j : 7 * j + 7, 7 * j : 7 * j + 7] = B[j] - (lo[j] + up[j] + LAMBDA_14C_PER_HOUR) * np.eye(7)
        if j > 0:
            M[7 * j : 7 * j + 7, 7 * (j - 1) : 7 * j] = lo[j] * np.eye(7)
        if j < n - 1:
            M[7 * j : 7 * j + 7, 7 * (j + 1) : 7 * (j + 2)] = up[j] * np.eye(7)
    X1 = np.linalg.solve(M, -u.ravel())
    X = atm.f14c(zone, 1950) * X1
    E = sla.expm(M * HOURS_PER_YEAR)
    last = int(np.floor(year))
    for y in range(1950, last):
        f = atm.litter_f14c(zone, y)
        X = f * X1 + E @ (X - f * X1)
    if year > last:
        f = atm.litter_f14c(zone, last)
        X = f * X1 + sla.expm(M * HOURS_PER_YEAR * (year - last)) @ (X - f * X1)
    p = list(C14_POOLS)
    return X.reshape(n, 7)[:, p].sum(1) / C[:, p].sum(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=300, help="timed calls per figure")
    ap.add_argument(
        "--data",
        default=os.environ.get("BAYES_VMIMICS_DATA", str(Path(__file__).parents[1] / ".." / "shared" / "data")),
    )
    args = ap.parse_args()

    atm = load_atmosphere("hua2013", args.data)
    params = Parameters()
    site = SiteModel(SiteForcing(temperature=10.0, clay=0.2))
    ss = solve_site(site, params, on_failure="raise")
    zone, year = "NH1", 2010.0
    print(f"site: T = 10 °C, clay 0.2, {site.n_layers} layers; default Parameters; {atm!r}, zone {zone}")
    print(f"scheme: {rc.DEFAULT_SCHEME}, {rc.DEFAULT_STEPS_PER_YEAR} steps per year\n")

    # ---- timing
    t_call = median_time(lambda: rc.simulate_radiocarbon(ss, site, None, atm, zone, year), args.repeat)
    t_call_p = median_time(lambda: rc.simulate_radiocarbon(ss, site, params, atm, zone, year), args.repeat)
    B, C, u, lo, up = rc._tracer_operator(ss.solver_state, site)
    a = rc.SCHEMES[rc.DEFAULT_SCHEME]
    n = rc.DEFAULT_STEPS_PER_YEAR
    inv_gh = 1.0 / (a[0, 0] * HOURS_PER_YEAR / n)
    f = np.ascontiguousarray(atm.litter_f14c(zone, np.arange(1950, 2011)), dtype=float)
    G, Gi = np.empty((site.n_layers, 7, 7)), np.empty((site.n_layers, 7, 7))

    def compiled_only():
        X1 = rc._unit_steady_state(B, u, lo, up, True)
        rc.factor_shifted(B, lo, up, inv_gh, G, Gi)
        X = 0.9743 * X1
        rc.tracer_transient(Gi, Gi, lo, up, X1, X, f, n, 0, inv_gh, inv_gh, a, rc.no_stage_store(a, X.shape[0]))
        return X

    t_core = median_time(compiled_only, args.repeat)
    res = rc.simulate_radiocarbon(ss, site, None, atm, zone, year)
    op = ObservationOperator(site.grid, [0, 10, 20, 40], [10, 20, 40, 80])
    t_obs = median_time(lambda: op.f14c(res.pools, res.c14_pools), args.repeat * 10)
    t_paper = median_time(lambda: rc.simulate_radiocarbon(ss, site, params, atm, zone, year, mode="paper"), 5)
    print("median wall time, one 1950 -> 2010 transient, 20 layers, steady state known:")
    print(f"  tracer, simulate_radiocarbon (params=None)          {t_call * 1e3:8.3f} ms")
    print(f"  tracer, simulate_radiocarbon (params checked)       {t_call_p * 1e3:8.3f} ms")
    print(f"  tracer, compiled part (X1 solve + factor + march)   {t_core * 1e3:8.3f} ms")
    print(f"  observation operator f14c (4 intervals)             {t_obs * 1e6:8.2f} us")
    print(f"  paper mode (nonlinear 14C run, Newton stages)       {t_paper * 1e3:8.3f} ms\n")

    # ---- accuracy: step halving and the exact solution
    print("max |F14C(p+c+a)| difference over layers")
    print("  year     n=4 vs n=8   n=4 vs exact   n=8 vs exact   paper n=4 vs n=8")
    for y in (1960.0, 1963.5, 1965.0, 1970.0, 1985.0, 2010.0):
        f4 = rc.simulate_radiocarbon(ss, site, None, atm, zone, y, steps_per_year=4).f14c
        f8 = rc.simulate_radiocarbon(ss, site, None, atm, zone, y, steps_per_year=8).f14c
        fx = exact_f14c(ss, site, atm, zone, y)
        p4 = rc.simulate_radiocarbon(ss, site, params, atm, zone, y, mode="paper", steps_per_year=4).f14c
        p8 = rc.simulate_radiocarbon(ss, site, params, atm, zone, y, mode="paper", steps_per_year=8).f14c
        print(
            f"  {y:7.1f}  {np.abs(f4 - f8).max():11.2e}  {np.abs(f4 - fx).max():13.2e}  "
            f"{np.abs(f8 - fx).max():13.2e}  {np.abs(p4 - p8).max():16.2e}"
        )
    paper = rc.simulate_radiocarbon(ss, site, params, atm, zone, year, mode="paper")
    sel = [0, 4, 9, 19]
    print(
        f"\nF14C(p+c+a) in {year:.0f}, layers 1, 5, 10, 20: tracer {np.round(res.f14c[sel], 4)}, "
        f"paper {np.round(paper.f14c[sel], 4)}"
    )


if __name__ == "__main__":
    main()
