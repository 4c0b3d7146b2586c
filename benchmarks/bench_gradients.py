"""Cost of the log-likelihood value + exact gradient relative to the value alone (target ≤ 3×), for synthetic
sites without and with ¹⁴C (bomb-curve atmosphere, tracer mode), cold and warm starts. Prints figures; asserts
nothing.

Usage:
    python benchmarks/bench_gradients.py [--n 200] [--n-sites 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayes_vmimics.atmosphere import ZONES, AtmosphericRecord
from bayes_vmimics.gradients import site_log_likelihood_and_gradient, site_log_likelihoods_and_gradients
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.synthetic import make_synthetic_sites, true_parameters


def bomb_atmosphere() -> AtmosphericRecord:
    """A synthetic bomb curve 1950–2010, the same in every zone (F14C, –)."""
    years = np.arange(1950, 2011)
    y = years.astype(float)
    f = np.where(y < 1955, 0.975, 0.975 + (1.9 - 0.975) * (y - 1955) / 8.0)
    f = np.where(y > 1963, 1.0 + 0.9 * np.exp(-(y - 1963) / 16.0), f)
    return AtmosphericRecord("bomb", years, np.tile(f, (len(ZONES), 1)))


def timing(problem: CalibrationProblem, thetas: np.ndarray) -> tuple[float, float]:
    """Mean seconds per θ of (value: ``problem.log_likelihood``, value + gradient)."""
    problem.log_likelihood(thetas[0])
    site_log_likelihoods_and_gradients(problem, thetas[0])  # compile
    problem.clear_warm_starts()
    t = time.perf_counter()
    for th in thetas:
        problem.log_likelihood(th)
    tv = (time.perf_counter() - t) / len(thetas)
    problem.clear_warm_starts()
    t = time.perf_counter()
    for th in thetas:
        site_log_likelihoods_and_gradients(problem, th)
    tg = (time.perf_counter() - t) / len(thetas)
    return tv, tg


def fd_accuracy(problem: CalibrationProblem, theta: np.ndarray, rel_step: float = 1e-5) -> float:
    """Max relative difference between the adjoint gradient of site 0 and central finite differences."""
    _, g = site_log_likelihood_and_gradient(problem, 0, theta)
    fd = np.empty(7)
    for p in range(7):
        h = rel_step * theta[p]
        tp, tm = theta.copy(), theta.copy()
        tp[p] += h
        tm[p] -= h
        fd[p] = (problem.log_likelihood(tp) - problem.log_likelihood(tm)) / (2 * h)
    return float(np.max(np.abs(g - fd) / np.abs(fd)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="θ per figure")
    ap.add_argument("--n-sites", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    atm = bomb_atmosphere()
    sites = make_synthetic_sites(args.n_sites, rng=rng, with_c14=True, atmosphere=atm, zone="NH1", sample_year=2003.4)
    center = true_parameters()
    print(f"{args.n_sites} synthetic sites, 20 × 5 cm grid, {args.n} θ within ±3 % of the generating θ")
    print(f"{'case':<22} {'value ms':>9} {'value+grad ms':>14} {'ratio':>6} {'max rel err vs FD':>18}")
    for use_c14 in (False, True):
        for warm in (False, True):
            prob = CalibrationProblem(sites, atmosphere=atm, use_c14=use_c14, warm_start=warm)
            lo, hi = prob.prior.lower, prob.prior.upper
            thetas = np.clip(center * (1 + 0.03 * rng.standard_normal((args.n, 7))), lo, hi)
            tv, tg = timing(prob, thetas)
            err = fd_accuracy(CalibrationProblem(sites[:1], atmosphere=atm, use_c14=use_c14), center)
            label = f"{'SOC+14C' if use_c14 else 'SOC'} {'warm' if warm else 'cold'}"
            print(f"{label:<22} {1e3 * tv:9.3f} {1e3 * tg:14.3f} {tg / tv:6.2f} {err:18.2e}")


if __name__ == "__main__":
    main()
