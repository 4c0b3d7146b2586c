"""Cost of stage 2 with covariates (the regression population) against stage 2 without, on the same stage-1
draws. Prints wall times and their ratio (issue 20's target: at most 2×); asserts nothing.

    python benchmarks/bench_regression.py [--sites 35] [--draws-per-site 4000] [--covariates 6] \
        [--sweeps 1200] [--chains 2] [--repeats 2]
    python benchmarks/bench_regression.py --stage2 mixture [--nuts-draws 1000]   # the mixture stage 2 (NUTS)

The stage-1 draws are stand-ins (each site's z normal around its own centre, as a site posterior would be):
stage 2 reads only the draws, never the model, so its cost does not depend on where they came from.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayes_vmimics.inference.regression import sample_regression_population
from bayes_vmimics.inference.site_draws import SitePosteriorSamples
from bayes_vmimics.inference.two_stage import sample_population
from bayes_vmimics.parameters import PARAMETER_NAMES
from bayes_vmimics.priors import BoxPrior

NPAR = len(PARAMETER_NAMES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=35, help="sites (default 35, the real ENF count)")
    ap.add_argument("--draws-per-site", type=int, default=4000, help="stage-1 draws per site (default 4000)")
    ap.add_argument("--covariates", type=int, default=6, help="covariates J (default 6)")
    ap.add_argument("--types", type=int, default=1, help="forest types (default 1)")
    ap.add_argument("--sweeps", type=int, default=1200, help="stage-2 sweeps per chain, after 10 %% tuning")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stage2", choices=["draws", "mixture"], default="draws", help="Gibbs on the draws or NUTS")
    ap.add_argument("--nuts-draws", type=int, default=1000, help="--stage2 mixture: NUTS draws (and tuning) per chain")
    ap.add_argument("--mixture-components", type=int, default=2)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    S, D, J = args.sites, args.draws_per_site, args.covariates
    X = rng.standard_normal((S, J))
    centre = 0.5 * rng.standard_normal((S, NPAR)) + X[:, :1] * 0.4  # one covariate moves every parameter a little
    z = centre[:, None, :] + 0.4 * rng.standard_normal((S, D, NPAR))
    samples = SitePosteriorSamples([f"s{i}" for i in range(S)], z, np.ones((S, NPAR)), np.full(S, 0.3), 32, D, 0, 1)
    types = [f"T{i % args.types}" for i in range(S)]
    kw = dict(draws=args.sweeps, tune=args.sweeps // 10, chains=args.chains, seed=args.seed)
    prior = BoxPrior()
    runs = {
        "without covariates, centred sweeps only (collapse_every=0)": lambda: sample_population(
            samples, types, prior, collapse_every=0, **kw
        ),
        "without covariates": lambda: sample_population(samples, types, prior, **kw),
        f"regression, B per type ({J} covariates)": lambda: sample_regression_population(
            samples, X, types, prior, **kw
        ),
        f"regression, B shared ({J} covariates)": lambda: sample_regression_population(
            samples, X, types, prior, shared_beta=True, **kw
        ),
    }
    if args.stage2 == "mixture":
        from bayes_vmimics.inference.mixture_stage2 import fit_site_mixtures, sample_mixture_population

        t0 = time.perf_counter()
        mix = fit_site_mixtures(samples, args.mixture_components, seed=args.seed)
        fit = time.perf_counter() - t0
        nuts = dict(draws=args.nuts_draws, tune=args.nuts_draws, chains=args.chains, seed=args.seed)
        runs = {
            "without covariates": lambda: sample_mixture_population(mix, types, prior, **nuts),
            f"regression, B per type ({J} covariates)": lambda: sample_mixture_population(
                mix, types, prior, X=X, **nuts
            ),
            f"regression, B shared ({J} covariates)": lambda: sample_mixture_population(
                mix, types, prior, X=X, shared_beta=True, **nuts
            ),
        }
    sample_population(samples, types, prior, draws=20, tune=5, chains=1, seed=0)  # compile before timing
    sample_regression_population(samples, X, types, prior, draws=20, tune=5, chains=1, seed=0)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    base = min(times["without covariates"])
    if args.stage2 == "mixture":
        print(f"mixture stage 2: {S} sites × {D} stage-1 draws, {args.mixture_components} components (fitted once in "
              f"{fit:.1f} s), {args.types} forest type(s), {args.chains} chains × (2 × {args.nuts_draws}) NUTS "
              f"draws (model compilation included), {args.repeats} repeats (min / max wall time)")  # fmt: skip
    else:
        print(f"stage 2: {S} sites × {D} stage-1 draws, {args.types} forest type(s), {args.chains} chains × "
              f"{args.sweeps + args.sweeps // 10} sweeps, {args.repeats} repeats (min / max wall time)")  # fmt: skip
    for name, t in times.items():
        print(f"  {name:38s} {min(t):7.2f} / {max(t):7.2f} s   × {min(t) / base:.2f} of stage 2 without covariates")


if __name__ == "__main__":
    main()
