"""Compare observation-error models on real profiles: fit on the calibration sites, score on held-out sites.

For each forest type and error model (``[likelihood] error_model``): the pooled MAP (L-BFGS-B with exact
gradients), each calibration site's share of the deviance at the MAP, a pooled emcee posterior started around
the MAP, and the predictive scores (:mod:`bayes_vmimics.scoring`: RMSE, r², lppd, 50/90 % coverage including the
error model's observation error) of

- the paper's Table 3 parameters of the forest type (one θ),
- the pooled MAP (one θ),
- the pooled posterior (draws of its Laplace approximation at the MAP, or of emcee with ``--posterior emcee``),

on the calibration sites and on the held-out (validation) sites. With the ``discrepancy`` model the held-out
sites' κ prior is fitted to the calibration sites at the posterior median (empirical Bayes; ``--no-eb``
keeps the study's prior). Writes ``scores.csv`` (one row per forest type × error model × estimate × split ×
variable), ``by_depth.csv`` (the same by depth band, with the side of the misses:
:func:`~bayes_vmimics.scoring.score_by_depth`), ``shares.csv`` and ``summary.txt`` to ``--out``.

Usage::

    python analyses/08_error_models.py --data-dir ../shared/data --forest-type ENF EBF DBF BNF \
        --error-models paper discrepancy --out results/error_models
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_vmimics.config import load_config
from bayes_vmimics.constants import FOREST_TYPES
from bayes_vmimics.inference.emcee_sampler import run_ensembles, select_draws
from bayes_vmimics.inference.initial import laplace_draws, pooled_map_estimate, theta_from_logit
from bayes_vmimics.io.parameters import table3_parameters
from bayes_vmimics.scoring import predict_draws, score_by_depth, score_predictions, site_shares
from bayes_vmimics.study import build_problem


def _problems(cfg, data_dir):
    cal, _, _ = build_problem(cfg.replace(data={"split": "calibration"}), data_dir)
    val, _, _ = build_problem(cfg.replace(data={"split": "validation"}), data_dir)
    return cal, val


def run_one(forest_type: str, error_model: str, args) -> tuple[list[dict], pd.Series, dict]:
    """Scores of one forest type under one error model (see module docstring)."""
    t0 = time.perf_counter()
    cfg = load_config(args.config).replace(
        study={"mode": "data"},
        data={"forest_type": forest_type},
        likelihood={"error_model": error_model, "warm_start": args.warm},
    )
    cal, val = _problems(cfg, args.data_dir)
    z_map = pooled_map_estimate(cal, seed=args.seed)
    theta_map = theta_from_logit(cal.prior, z_map)
    shares = site_shares(cal, theta_map)
    if args.posterior == "laplace":
        draws = laplace_draws(cal, z_map, args.draws, seed=args.seed)
    else:
        runs = run_ensembles(
            cal,
            cal.prior,
            around=theta_map,
            n_ensembles=args.n_ensembles,
            seed=args.seed,
            n_walkers=args.n_walkers,
            n_steps=args.n_steps,
            move="de",
            n_processes=args.n_processes,
            progress=False,
        )
        _, _, pos = select_draws(runs, discard=args.n_steps // 2, thin=1, max_draws=max(1, args.draws // len(runs)))
        draws = pos.reshape(-1, pos.shape[-1])
    theta_med = np.median(draws, axis=0)
    info = {"forest_type": forest_type, "error_model": error_model, "theta_map": theta_map, "theta_median": theta_med,
            "by_depth": []}  # fmt: skip
    if cal.error_model.discrepancy == "site_scale" and args.eb:
        fit = cal.fit_discrepancy_prior(theta_med)
        if fit:
            over = {"discrepancy_shape": fit["soc"][0], "discrepancy_scale": fit["soc"][1]}
            if "f14c" in fit:
                over.update(c14_discrepancy_shape=fit["f14c"][0], c14_discrepancy_scale=fit["f14c"][1])
            info["eb_prior"] = over
            em = dataclasses.replace(val.error_model, **over)
            _, val = _problems(cfg.replace(likelihood=over), args.data_dir)
            assert val.error_model == dataclasses.replace(em, name=val.error_model.name)
    estimates = {"table3": table3_parameters(forest_type, args.data_dir), "map": theta_map, "posterior": draws}
    rows = []
    for est, th in estimates.items():
        for split, prob in (("calibration", cal), ("held_out", val)):
            pred = predict_draws(prob, th)
            sc = score_predictions(prob, pred, seed=args.seed, new_site=split == "held_out")
            for var, r in sc.iterrows():
                rows.append({"forest_type": forest_type, "error_model": error_model, "estimate": est, "split": split,
                             "variable": var, **r.to_dict()})  # fmt: skip
            depth = score_by_depth(prob, pred, seed=args.seed, new_site=split == "held_out")
            for _, r in depth.iterrows():
                info["by_depth"].append({"forest_type": forest_type, "error_model": error_model, "estimate": est,
                                         "split": split, **r.to_dict()})  # fmt: skip
    info["seconds"] = time.perf_counter() - t0
    info["max_share"] = float(shares.max())
    info["max_share_site"] = str(shares.idxmax())
    return rows, shares, info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="raw-data folder (default $BAYES_VMIMICS_DATA)")
    ap.add_argument("--config", default="study_default", help="study configuration (default study_default)")
    ap.add_argument(
        "--forest-type",
        "--forest-types",  # the old spelling, still accepted
        dest="forest_types",
        nargs="+",
        default=list(FOREST_TYPES),
        choices=FOREST_TYPES,
        help="forest types to fit, one or several (default all four)",
    )
    ap.add_argument("--error-models", nargs="+", default=["paper", "discrepancy"])
    ap.add_argument(
        "--posterior",
        choices=["laplace", "emcee"],
        default="emcee",
        help="pooled posterior: emcee around the MAP (default; minutes per fit) or the Laplace approximation at "
        "the MAP (seconds; poor where the posterior is wide or skewed)",
    )
    ap.add_argument("--cold", dest="warm", action="store_false", help="no warm starts (slower, deterministic)")
    ap.add_argument("--n-steps", type=int, default=300, help="emcee steps per ensemble (default 300)")
    ap.add_argument("--n-walkers", type=int, default=24, help="walkers per ensemble (default 24)")
    ap.add_argument("--n-ensembles", type=int, default=2, help="independent ensembles (default 2)")
    ap.add_argument("--n-processes", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--draws", type=int, default=200, help="posterior draws scored (default 200)")
    ap.add_argument("--no-eb", dest="eb", action="store_false", help="keep the study's κ prior for held-out sites")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--quick", action="store_true", help="60 steps, 40 draws: a smoke run, not a result")
    ap.add_argument("--out", type=Path, default=Path("results/error_models"), help="output folder")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_steps, args.draws = 60, 40
    args.out.mkdir(parents=True, exist_ok=True)
    rows, shares, infos = [], [], []
    for ft in args.forest_types:
        for em in args.error_models:
            r, sh, info = run_one(ft, em, args)
            rows += r
            shares.append(sh.rename(f"{ft}/{em}"))
            infos.append(info)
            print(f"{ft} {em}: {info['seconds']:.0f} s; largest site share of the deviance at the MAP "
                  f"{info['max_share']:.2f} ({info['max_share_site']})", flush=True)  # fmt: skip
            pd.DataFrame(rows).to_csv(args.out / "scores.csv", index=False)
            pd.DataFrame([r for i in infos for r in i["by_depth"]]).to_csv(args.out / "by_depth.csv", index=False)
    table = pd.DataFrame(rows)
    pd.concat(shares, axis=1).to_csv(args.out / "shares.csv")
    cols = ["rmse", "r2", "lppd", "coverage_50", "coverage_90"]
    text = table.set_index(["forest_type", "error_model", "estimate", "split", "variable"])[cols]
    lines = [text.to_string(float_format=lambda v: f"{v:.3g}"), ""]
    for i in infos:
        th = ", ".join(f"{v:.3g}" for v in i["theta_median"])
        lines.append(f"{i['forest_type']} {i['error_model']}: posterior median θ [{th}]; max site share "
                     f"{i['max_share']:.2f} ({i['max_share_site']}); EB κ prior {i.get('eb_prior', '-')}")  # fmt: skip
    (args.out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
