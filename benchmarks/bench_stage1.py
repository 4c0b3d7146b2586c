"""Stage 1 of the two-stage sampler on real sites: today's emcee against gradient-based NUTS (nutpie, with the
exact adjoint gradient), the same sites in one run. Prints, per site and sampler, wall time, log-probability
evaluations, min bulk and tail ESS over the 7 parameters, ESS per second, R-hat across chains and divergences;
asserts nothing (issue #31: the winner becomes stage 1's default).

ESS of emcee: ArviZ's bulk/tail ESS with the walkers as chains, after burn-in (the same draws stage 2 uses),
and emcee's own walkers × kept steps / max τ. NUTS works in z = logit of the unit position on the prior box,
with the box prior's logistic density, i.e. the same stage-1 target.

    python benchmarks/bench_stage1.py [--data-dir DATA] [--forest-type BNF] [--n-sites 3] \
        [--emcee-steps 10000] [--nuts-tune 1000] [--nuts-draws 1000] [--chains 4]
"""

from __future__ import annotations

import argparse
import time

import arviz as az
import numpy as np
import xarray as xr
from scipy.special import expit

from bayes_vmimics.config import StudyConfig
from bayes_vmimics.gradients import site_log_likelihood_and_gradient
from bayes_vmimics.inference.initial import site_map_estimates
from bayes_vmimics.inference.stage1 import _one_site_problem, _stage1_task
from bayes_vmimics.io.atmosphere import load_atmosphere
from bayes_vmimics.io.datadir import resolve_data_dir
from bayes_vmimics.io.sites import build_site_tables
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.priors import theta_from_logit
from bayes_vmimics.study import real_site_observations


class _Counter:
    def __init__(self, fn):
        self.fn, self.n = fn, 0

    def __call__(self, *a):
        self.n += 1
        return self.fn(*a)


def z_log_density_and_gradient(problem: CalibrationProblem, site: int):
    """z ↦ (log logistic box prior + log-likelihood, gradient in z): the stage-1 target in logit units."""
    prior = problem.prior
    dtheta_dv_lin = prior.upper - prior.lower
    log_ratio = np.log(prior.upper / prior.lower)

    def fn(z):
        z = np.asarray(z, dtype=float)
        v = expit(z)
        theta = theta_from_logit(prior, z)
        ll, g = site_log_likelihood_and_gradient(problem, site, theta)
        if not np.isfinite(ll):
            return -np.inf, np.zeros(z.size)
        dtheta_dv = np.where(prior.is_log, theta * log_ratio, dtheta_dv_lin)
        log_prior = float(np.sum(-np.logaddexp(0.0, z) - np.logaddexp(0.0, -z)))
        return float(ll + log_prior), g * dtheta_dv * v * (1.0 - v) + (1.0 - 2.0 * v)

    return fn


def run_nuts(problem, site, z0, *, tune, draws, chains, seed):
    try:
        import nutpie
        from nutpie.compiled_pyfunc import from_pyfunc
    except ImportError:
        raise SystemExit("nutpie is not installed: pip install 'bayes_vmimics[bench]'") from None

    target = _Counter(z_log_density_and_gradient(problem, site))

    def make_logp():
        return lambda z, **_: target(z)

    def make_expand(*_a, **_k):
        return lambda z, **_: {"z": np.asarray(z, dtype=float)}

    def initial_point(seed):
        return z0 + 0.01 * np.random.default_rng(seed).standard_normal(z0.size)

    model = from_pyfunc(
        z0.size, make_logp, make_expand, [np.dtype("float64")], [(z0.size,)], ["z"],
        coords={"parameter": [str(i) for i in range(z0.size)]}, dims={"z": ("parameter",)},
        make_initial_point_fn=initial_point,
    )  # fmt: skip
    t = time.perf_counter()
    tr = nutpie.sample(
        model, draws=draws, tune=tune, chains=chains, cores=1, seed=seed, progress_bar=False, adaptation="low_rank"
    )
    wall = time.perf_counter() - t
    post = tr.posterior["z"]
    st = tr.sample_stats
    return wall, target.n, post, int(st["diverging"].sum()), float(st["n_steps"].mean())


def run_emcee(problem, site, z0, *, n_steps, n_walkers, seed):
    task = (_one_site_problem(problem, site), 0, z0, n_walkers, n_steps, n_steps // 2, 1, seed, None, None)
    t = time.perf_counter()
    z, tau, _acc, _lp = _stage1_task(task)
    wall = time.perf_counter() - t
    kept = n_steps - n_steps // 2
    # (draws, 7) in step-major order -> (walker, step, 7) as ArviZ chains
    post = xr.DataArray(z.reshape(kept, n_walkers, -1).transpose(1, 0, 2), dims=("chain", "draw", "parameter"))
    return wall, n_walkers * n_steps, post, n_walkers * kept / np.nanmax(tau)


def summary(post):
    ds = xr.Dataset({"z": post})
    bulk = az.ess(ds, method="bulk")["z"].values
    tail = az.ess(ds, method="tail")["z"].values
    rhat = az.rhat(ds)["z"].values
    return float(np.min(bulk)), float(np.min(tail)), float(np.max(rhat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--forest-type", default="BNF")
    ap.add_argument("--n-sites", type=int, default=3)
    ap.add_argument("--emcee-steps", type=int, default=10000)
    ap.add_argument("--walkers", type=int, default=32)
    ap.add_argument("--nuts-tune", type=int, default=1000)
    ap.add_argument("--nuts-draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-emcee", action="store_true")
    args = ap.parse_args()
    folder = resolve_data_dir(args.data_dir)
    cfg = StudyConfig().replace(data={"forest_type": args.forest_type})
    obs = real_site_observations(build_site_tables(folder), cfg)[: args.n_sites]
    problem = CalibrationProblem(obs, atmosphere=load_atmosphere(cfg.model.atmosphere, folder), warm_start=True)
    z_map = site_map_estimates(problem, seed=args.seed)
    print(f"{len(obs)} {args.forest_type} sites (calibration half), ¹⁴C where measured, warm starts")
    head = f"{'site':40s}  sampler  wall s   evals   bulk ESS  tail ESS  ESS/s   R-hat  other"
    print(head)
    for s, site_id in enumerate(problem.site_ids):
        wall, n, post, div, steps = run_nuts(
            problem, s, z_map[s], tune=args.nuts_tune, draws=args.nuts_draws, chains=args.chains, seed=args.seed
        )
        b, t, r = summary(post)
        print(f"{site_id:40s}  nuts   {wall:7.1f} {n:8d} {b:9.0f} {t:9.0f} {b / wall:6.2f} {r:7.3f}  "
              f"{div} divergences, {steps:.1f} leapfrog steps per draw", flush=True)  # fmt: skip
        if args.skip_emcee:
            continue
        wall, n, post, n_eff = run_emcee(
            problem, s, z_map[s], n_steps=args.emcee_steps, n_walkers=args.walkers, seed=args.seed
        )
        b, t, r = summary(post)
        print(f"{site_id:40s}  emcee  {wall:7.1f} {n:8d} {b:9.0f} {t:9.0f} {b / wall:6.2f} {r:7.3f}  "
              f"walkers x kept / max tau = {n_eff:.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
