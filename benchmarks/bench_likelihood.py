"""Log-probability evaluations per second: one synthetic site, and a pooled forest type of real sites
(with ¹⁴C for those that have it), warm and cold starts. Prints figures; asserts nothing.

Usage:
    python benchmarks/bench_likelihood.py [--data-dir ../shared/data] [--forest-type ENF] [--n-sites 40]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayes_vmimics.config import StudyConfig
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.synthetic import make_synthetic_sites, true_parameters


def rate(problem: CalibrationProblem, center: np.ndarray, n: int, seed: int = 0) -> float:
    """Evaluations per second for small random steps around ``center`` (a sampler near the posterior)."""
    rng = np.random.default_rng(seed)
    thetas = np.clip(
        center * (1 + 0.03 * rng.standard_normal((n, center.size))), problem.prior.lower, problem.prior.upper
    )
    problem.log_probability(center)  # compile / fill the warm cache
    t = time.perf_counter()
    for th in thetas:
        problem.log_probability(th)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--forest-type", default="ENF")
    ap.add_argument("--n-sites", type=int, default=40)
    ap.add_argument("--n", type=int, default=200, help="evaluations per figure")
    args = ap.parse_args()
    theta = true_parameters()
    sites = make_synthetic_sites(1, theta, rng=np.random.default_rng(1))
    for warm in (True, False):
        pb = CalibrationProblem(sites, warm_start=warm)
        print(f"1 synthetic site (20 layers, 6 SOC obs), warm_start={warm}: {rate(pb, theta, 5 * args.n):8.0f} eval/s")

    from bayes_vmimics.io.atmosphere import load_atmosphere
    from bayes_vmimics.io.datadir import resolve_data_dir
    from bayes_vmimics.io.sites import build_site_tables
    from bayes_vmimics.study import real_site_observations

    folder = resolve_data_dir(args.data_dir, required=False)
    if folder is None:
        print("no data folder: pooled benchmark skipped")
        return
    tables = build_site_tables(folder)
    s = tables.sites
    n_type = int((s["usable"] & (s["forest_type"] == args.forest_type)).sum())
    # a pooled forest type of n sites: both halves of the split, so that 40 sites exist
    cfg = StudyConfig().replace(data={"forest_type": args.forest_type})
    obs = []
    for split in ("calibration", "validation"):
        obs += real_site_observations(tables, cfg.replace(data={"split": split}))
    obs = obs[: args.n_sites]
    atm = load_atmosphere(cfg.model.atmosphere, folder)
    for max_depth in (None, 100.0):
        for warm in (True, False):
            pb = CalibrationProblem(obs, atmosphere=atm, warm_start=warm, max_obs_depth_cm=max_depth)
            n_layers = sum(p.model.n_layers for p in pb.sites)
            r = rate(pb, theta, max(args.n // 10, 10))
            print(
                f"{len(obs)} {args.forest_type} sites (of {n_type} usable; {n_layers} layers in all, "
                f"{pb.n_soc} SOC + {pb.n_c14} F14C obs, max depth {max_depth or 'all'} cm), "
                f"warm_start={warm}: {r:7.1f} eval/s ({1e3 / r:.1f} ms/eval)"
            )


if __name__ == "__main__":
    main()
