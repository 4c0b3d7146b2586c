"""Dask against the process pool (issue 19): per-task overhead, stage-1 throughput and memory. Prints a table;
asserts nothing (the tests check that the numbers agree).

    python benchmarks/bench_dask.py --data-dir ../shared/data --forest-type ENF --max-sites 4 --n-steps 100
    python benchmarks/bench_dask.py --synthetic 4 --n-steps 100        # no data needed

1. Per-task overhead: ``--tasks`` trivial tasks (return the argument) through the package's process pool (a fork
   ``multiprocessing.Pool`` with ``imap``, as stage 1 uses) and through
   :meth:`~bayes_vmimics.scheduler.DaskScheduler.as_completed` on a ``LocalCluster``, with 1 and 2 workers:
   wall time per task, after the pool or cluster has started (its start-up time is printed apart).
2. Stage-1 throughput: :func:`~bayes_vmimics.inference.stage1.site_posterior_samples` on the same sites
   (real sites of ``--forest-type`` as ``hierarchical`` builds them, cold solves, ¹⁴C where the study has it; or
   ``--synthetic N`` sites, SOC only), from the sites' MAP (computed once, outside the timing), with 1 and 2
   worker processes of the pool and 1 and 2 Dask workers: wall time, sites per hour, and whether the draws equal
   the serial path's bit for bit. Each Dask worker first runs a two-step stage 1 outside the clock: its first site
   imports the package and loads numba's cached code (printed apart), which forked pool workers inherit.
3. Memory: the pickled payload of one site's task, one site's stage-1 result (pickled; and its draws at the
   command line's default settings, 32 walkers × 10 000 steps, thin 25), and the resident memory of each Dask
   worker and of the client after the run.

The machine this was written on has 2 cores shared with other work: with 2 workers, each task gets less than a
core when anything else runs.
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import os
import pickle
import time

import numpy as np


def _noop(x):
    return x


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _problem(args):
    """(problem, label): real sites as ``hierarchical`` builds them, or synthetic ones."""
    from bayes_vmimics.likelihood import CalibrationProblem
    from bayes_vmimics.synthetic import make_synthetic_sites

    if args.synthetic:
        sites = make_synthetic_sites(args.synthetic, rng=np.random.default_rng(args.seed))
        return CalibrationProblem(sites, use_c14=False), f"{args.synthetic} synthetic sites (SOC only)"
    from bayes_vmimics.config import load_config
    from bayes_vmimics.study import build_hierarchical_study

    cfg = load_config("study_default").replace(
        data={"forest_type": args.forest_type, "split": "all", "max_sites": args.max_sites}
    )
    study = build_hierarchical_study(cfg, [args.forest_type], args.data_dir)
    p = study.problem
    n14 = sum(bool(s.obs.has_c14) for s in p.sites)
    c14 = "on" if p.c14_enabled else "off"
    return p, f"{len(p.sites)} real {args.forest_type} sites ({n14} with ¹⁴C, ¹⁴C term {c14})"


def overhead(n_tasks: int, workers: tuple[int, ...]) -> list[tuple]:
    """Rows (engine, workers, start-up s, ms per task) of trivial tasks."""
    from bayes_vmimics.interrupt import ignore_sigint
    from bayes_vmimics.scheduler import DaskScheduler

    rows = []
    for n in workers:
        t0 = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(n, initializer=ignore_sigint) as pool:
            start = time.perf_counter() - t0
            list(pool.imap(_noop, range(8)))  # warm
            t0 = time.perf_counter()
            list(pool.imap(_noop, range(n_tasks)))
            rows.append(("process pool", n, start, 1e3 * (time.perf_counter() - t0) / n_tasks))
        t0 = time.perf_counter()
        with DaskScheduler.local(n) as sched:
            start = time.perf_counter() - t0
            sched.map(_noop, range(8))  # warm
            t0 = time.perf_counter()
            sched.map(_noop, range(n_tasks))
            rows.append(("dask", n, start, 1e3 * (time.perf_counter() - t0) / n_tasks))
    return rows


def throughput(problem, z0, settings: dict, workers: tuple[int, ...]):
    """Rows (engine, workers, wall s, sites per hour, equal to serial) and the memory figures."""
    from bayes_vmimics.inference.stage1 import site_posterior_samples
    from bayes_vmimics.scheduler import DaskScheduler

    S = len(problem.sites)
    rows, memory = [], {}
    t0 = time.perf_counter()
    serial = site_posterior_samples(problem, z_start=z0, n_processes=1, **settings)
    wall = time.perf_counter() - t0
    rows.append(("serial (pool, 1 process)", 1, wall, 3600 * S / wall, True))

    def same(x) -> bool:
        return bool(np.array_equal(x.z, serial.z) and np.array_equal(x.log_prob, serial.log_prob))

    for n in workers:
        if n > 1:
            t0 = time.perf_counter()
            res = site_posterior_samples(problem, z_start=z0, n_processes=n, **settings)
            wall = time.perf_counter() - t0
            rows.append(("process pool", n, wall, 3600 * S / wall, same(res)))
        with DaskScheduler.local(n) as sched:
            # each new worker imports the package and loads numba's cached machine code on its first site (once
            # per worker, amortised over a real run's thousands of sites): done here, outside the clock
            t0 = time.perf_counter()
            site_posterior_samples(problem, z_start=z0, scheduler=sched, **{**settings, "n_steps": 2, "thin": 1})
            memory[f"warm_up_s_{n}"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = site_posterior_samples(problem, z_start=z0, scheduler=sched, **settings)
            wall = time.perf_counter() - t0
            rows.append(("dask", n, wall, 3600 * S / wall, same(res)))
            if n == max(workers):
                memory["worker_rss_mib"] = sched.client.run(_rss_mib)
    memory["client_rss_mib"] = _rss_mib()
    sub = copy.copy(problem)
    sub.sites = [problem.sites[0]]
    memory["site_payload_bytes"] = len(pickle.dumps(sub))
    memory["problem_bytes"] = len(pickle.dumps(problem))
    one = (serial.z[0], serial.tau[0], float(serial.acceptance[0]), serial.log_prob[0])
    memory["site_result_bytes"] = len(pickle.dumps(one))
    memory["site_draws"] = int(serial.z.shape[1])
    return rows, memory


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("BAYES_VMIMICS_DATA"), help="raw data folder")
    ap.add_argument("--forest-type", default="ENF")
    ap.add_argument("--max-sites", type=int, default=4, help="real sites used (default 4)")
    ap.add_argument("--synthetic", type=int, default=0, help="N synthetic sites instead of real ones")
    ap.add_argument("--n-walkers", type=int, default=32, help="stage-1 walkers per site (default 32)")
    ap.add_argument("--n-steps", type=int, default=100, help="stage-1 steps per site (default 100)")
    ap.add_argument("--tasks", type=int, default=300, help="trivial tasks of the overhead test (default 300)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not args.synthetic and not args.data_dir:
        ap.error("give --data-dir (or $BAYES_VMIMICS_DATA), or --synthetic N")
    from bayes_vmimics.inference.initial import site_map_estimates

    workers = tuple(args.workers)
    load = os.getloadavg()[0]
    print(f"cores: {os.cpu_count()}; load average {load:.2f}; workers {workers}; {args.tasks} trivial tasks")
    print("\nper-task overhead (trivial tasks, after start-up)")
    print(f"{'engine':<28}{'workers':>8}{'start-up s':>12}{'ms/task':>10}")
    for eng, n, start, ms in overhead(args.tasks, workers):
        print(f"{eng:<28}{n:>8}{start:>12.2f}{ms:>10.2f}")

    problem, label = _problem(args)
    t0 = time.perf_counter()
    z0 = site_map_estimates(problem, seed=args.seed)
    print(f"\nstage 1 on {label}: {args.n_walkers} walkers × {args.n_steps} steps per site, cold solves")
    print(f"(site MAPs: {time.perf_counter() - t0:.1f} s, once, not timed below)")
    thin = max(1, args.n_steps // 400)
    settings = dict(n_walkers=args.n_walkers, n_steps=args.n_steps, thin=thin, seed=args.seed)
    rows, mem = throughput(problem, z0, settings, workers)
    print(f"{'engine':<28}{'workers':>8}{'wall s':>10}{'sites/h':>10}{'s/site·worker':>15}{'= serial':>10}")
    for eng, n, wall, rate, eq in rows:
        print(f"{eng:<28}{n:>8}{wall:>10.1f}{rate:>10.0f}{wall * n / len(problem.sites):>15.1f}{str(eq):>10}")
    steps = args.n_walkers * args.n_steps
    serial_wall = rows[0][2]
    print(
        f"\nper-site cost: {serial_wall / len(problem.sites):.2f} s for {steps} evaluations "
        f"({1e3 * serial_wall / len(problem.sites) / steps:.2f} ms an evaluation, serial)"
    )
    warm = ", ".join(f"{n} worker(s) {mem[f'warm_up_s_{n}']:.1f} s" for n in workers)
    print(f"Dask workers' first site (import, numba cache; not timed above): {warm}")
    print("\nmemory")
    print(f"  whole problem pickled: {mem['problem_bytes'] / 1e3:.1f} kB ({len(problem.sites)} sites)")
    print(f"  one site's task payload (the site alone, pickled): {mem['site_payload_bytes'] / 1e3:.1f} kB")
    print(
        f"  one site's stage-1 result (pickled): {mem['site_result_bytes'] / 1e3:.1f} kB for {mem['site_draws']} "
        f"draws; at 32 walkers × 10 000 steps, thin 25: 6400 draws × 7 × 8 B = {6400 * 7 * 8 / 1e3:.0f} kB of z "
        f"+ {6400 * 8 / 1e3:.0f} kB of log-probability"
    )
    rss = mem.get("worker_rss_mib", {})
    print("  Dask worker RSS: " + ", ".join(f"{v:.0f} MiB" for v in rss.values()))
    print(f"  client RSS: {mem['client_rss_mib']:.0f} MiB")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} (other work on the machine slows every engine)")


if __name__ == "__main__":  # the Dask workers are spawned processes that import this module
    main()
