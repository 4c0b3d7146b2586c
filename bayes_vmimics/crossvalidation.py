"""K-fold cross-validation by site of the hierarchical populations, with and without covariates (issue 20).

The sites of each forest type are split at random (seeded) into K folds, so that every site is held out once.
Per fold, stage 2 is run on the other sites only, reusing each site's stage-1 draws (stage 1 of a site does not
depend on the other sites: one stage 1 serves all folds and both populations), and each held-out site is
predicted as a new site of its forest type:

- ``population``: θ drawn from the forest type's population N(μ_t, σ_t²) (:mod:`.inference.two_stage`);
- ``regression``: θ drawn from the regression population N(μ_t + B_t x_s, σ_t²) at the site's covariates,
  standardised with the training sites' statistics of that fold (:mod:`.inference.regression`,
  :mod:`.covariates`);
- ``table3``: a reference without fitting, every held-out site at its forest type's parameters from the paper's
  Table 3 (``reference_parameters``), scored on the same sites under the same error model.

The predictions are scored under the problem's error model (:mod:`.scoring`: RMSE, r², lppd, 50/90 %
coverage) per fold, and once over all held-out predictions together ("all folds": every site predicted by the
fold that held it out); the per-fold scores give a mean ± standard error over folds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["CrossValidation", "crossvalidate_sites", "problem_subset", "site_folds"]

METHODS = ("population", "regression", "table3", "own")
_SCORE_COLUMNS = ["rmse", "r2", "lppd", "coverage_50", "coverage_90", "n_sites", "n_obs"]


def site_folds(forest_types: Sequence[str], n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold of each site: within each forest type, a seeded random permutation dealt out to the folds in turn
    (fold sizes differ by at most one site per type).

    Args:
        forest_types: forest type of each site (–).
        n_folds: K (count; ≥ 2).
        seed: seed of the split (integer).

    Returns:
        Fold index 0..K−1 of each site, shape (n_sites,).

    Raises:
        ValueError: K < 2, or a forest type with fewer than K sites or whose training set would hold fewer than
            two sites.
    """
    ft = np.array([str(t) for t in forest_types])
    if n_folds < 2:
        raise ValueError(f"n_folds must be ≥ 2, got {n_folds}")
    out = np.empty(ft.size, dtype=int)
    rng = np.random.default_rng(seed)
    for t in sorted(set(ft.tolist())):
        where = np.flatnonzero(ft == t)
        if where.size < n_folds or where.size - int(np.ceil(where.size / n_folds)) < 2:
            raise ValueError(
                f"forest type {t!r} has {where.size} site(s): too few for {n_folds} folds (each fold must hold out "
                "at least one site and train on at least two)"
            )
        out[rng.permutation(where)] = np.arange(where.size) % n_folds
    return out


def problem_subset(problem, indices: Sequence[int]):
    """The same calibration problem restricted to some of its sites (a shallow copy sharing the prepared
    sites; the error model and settings are the problem's)."""
    sub = copy.copy(problem)
    sub.sites = [problem.sites[int(i)] for i in indices]
    return sub


@dataclass
class CrossValidation:
    """Result of :func:`crossvalidate_sites`.

    Attributes:
        folds: per site: ``site_id``, ``forest_type``, ``fold`` (DataFrame).
        fold_scores: one row per fold, method, forest type and variable, with the scores of
            :func:`bayes_vmimics.scoring.score_predictions` (SOC in the problem's unit) (DataFrame).
        scores: one row per method, forest type and variable: the scores of all held-out predictions together
            (``*_all``) and the mean and standard error over folds of rmse, r2, lppd, coverage_50, coverage_90
            (DataFrame).
        stage2: per fold and method: max R-hat of μ and σ (and B) and the smallest 5 % quantile of the
            stage-2 weight ESS (DataFrame).
        beta: posterior mean and 5/95 % quantiles of B per fold, forest type, covariate and parameter
            (logit units per standardised covariate unit) (DataFrame), empty without covariates.
        mixtures: the sites' mixture likelihoods of the ``mixture`` engine, fitted once for every fold
            (:class:`~bayes_vmimics.inference.mixture_stage2.SiteLikelihoodMixture`; None with ``draws``); a fit
            on all sites after the folds can reuse them.
        predictions: every held-out observation's predictive, one row per method and observation:
            ``method``, ``forest_type`` and the columns of :func:`bayes_vmimics.scoring.predictive_table`
            (observed, predictive median and 5/25/75/95 % quantiles with observation error; SOC in the
            problem's unit) (DataFrame).
        depth_scores: the held-out scores by depth band of the observed layer's mid-depth, per method and
            forest type ("all" with several types): ``method``, ``forest_type`` and the columns of
            :func:`bayes_vmimics.scoring.score_by_depth` (r², RMSE, coverage and the side of the misses per
            band) (DataFrame).
    """

    folds: pd.DataFrame
    fold_scores: pd.DataFrame
    scores: pd.DataFrame
    stage2: pd.DataFrame
    beta: pd.DataFrame
    mixtures: object = None
    predictions: pd.DataFrame | None = None
    depth_scores: pd.DataFrame | None = None

    def write(self, out) -> list[Path]:
        """Write the tables (``cv_<name>.csv``) and the figures ``cv_scores.png`` (r², lppd, 90 % coverage of
        held-out SOC per type and method) and ``cv_predictions.png`` (held-out SOC against its predictive
        median by depth) to the folder ``out`` (path); returns the files written."""
        from .cv_plots import plot_cv_predictions, plot_cv_scores

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in ("scores", "fold_scores", "folds", "stage2", "beta", "predictions", "depth_scores"):
            table = getattr(self, name)
            if table is not None:
                table.to_csv(out / f"cv_{name}.csv", index=False)
                written.append(out / f"cv_{name}.csv")
        written.append(plot_cv_scores(self.scores, out / "cv_scores.png"))
        if self.predictions is not None:
            written.append(plot_cv_predictions(self.predictions, out / "cv_predictions.png"))
        return written


def _draw_index(n_chain: int, n_draw: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exactly ``n`` (chain, draw) pairs spread evenly over all chains and draws."""
    flat = np.unique(np.linspace(0, n_chain * n_draw - 1, n).round().astype(int))
    if flat.size != n:
        raise ValueError(f"predictive_draws = {n} exceeds the {n_chain * n_draw} posterior draws of stage 2")
    return flat // n_draw, flat % n_draw


def _by_type(problem, predictions, forest_types):
    """Each forest type's sites and, with several types, all sites together ("all"): (label, sub-problem, the
    sub-problem's columns of ``predictions``)."""
    obs = problem.observations()
    groups = {t: [i for i, f in enumerate(forest_types) if f == t] for t in sorted(set(forest_types))}
    if len(groups) > 1:
        groups["all"] = list(range(len(problem.sites)))
    for label, idx in groups.items():
        sub = problem_subset(problem, idx)
        ids = set(sub.site_ids)
        pred = {}
        for var in ("soc", "f14c"):
            keep = np.array([s in ids for s in obs[f"{var}_site"]], dtype=bool)
            pred[var] = predictions[var][:, keep]
        yield label, sub, pred


def _scores_by_type(problem, predictions, forest_types, seed) -> list[dict]:
    """Scores of each forest type's sites and, with several types, of all sites together ("all")."""
    from .scoring import score_predictions

    rows = []
    for label, sub, pred in _by_type(problem, predictions, forest_types):
        table = score_predictions(sub, pred, seed=seed, new_site=True)
        for var, r in table.iterrows():
            rows.append({"forest_type": label, "variable": var, **r.to_dict()})
    return rows


def crossvalidate_sites(
    problem,
    stage1,
    forest_types: Sequence[str],
    *,
    n_folds: int = 5,
    seed: int = 0,
    covariates: Sequence[str] | str | None = None,
    covariate_table: pd.DataFrame | None = None,
    clay_rule: str = "indicator",
    shared_beta: bool = False,
    hyperprior=None,
    stage2: dict | None = None,
    predictive_draws: int = 200,
    methods: Sequence[str] = ("population", "regression"),
    reference_parameters: dict[str, np.ndarray] | None = None,
    stage2_engine: str = "draws",
    mixture_components: int = 2,
    log: Callable[[str], None] | None = None,
) -> CrossValidation:
    """K-fold cross-validation by site of the population without covariates and of the regression population.

    Args:
        problem: the calibration problem of all sites (–).
        stage1: their stage-1 draws (:func:`~bayes_vmimics.inference.stage1.site_posterior_samples`), same
            sites in the same order (–).
        forest_types: forest type of each site (–).
        n_folds: K (count).
        seed: seed of the split, of stage 2 and of the predictive draws (integer).
        covariates: covariate names for ``regression`` (``bayes_vmimics.covariates.COVARIATES``) (–).
        covariate_table: :func:`~bayes_vmimics.covariates.site_covariate_table` holding every site (–).
        clay_rule: see :func:`~bayes_vmimics.covariates.raw_covariate_columns` (–).
        shared_beta: one B for all forest types (bool).
        hyperprior: :class:`~bayes_vmimics.inference.regression.RegressionPrior`; default its defaults (–).
        stage2: keyword arguments of both stage-2 samplers (``draws``, ``tune``, ``chains``, ``thin``,
            ``n_processes``; ``thin`` is ignored by the ``mixture`` engine) (–).
        predictive_draws: posterior draws per held-out site (count).
        methods: any of "population", "regression", "table3" and "own" (–). ``own`` is no prediction: each
            held-out site from its own stage-1 draws (under the stage-1 prior: the box, or a second pass's
            normal prior), which have seen the site's data: the fit that the model and error model reach at a site
            whose parameters are known as well as its own data tell, which the other methods can at best
            approach (in lppd; r² of the predictive median is not a proper score and can come out higher).
        reference_parameters: for ``table3``: θ per forest type, shape (7,) each (parameter units), e.g.
            :func:`bayes_vmimics.io.parameters.table3_parameters` (–).
        stage2_engine: ``"draws"``: stage 2 on the stage-1 draws themselves (Gibbs;
            :mod:`~bayes_vmimics.inference.two_stage`); ``"mixture"``: on a Gaussian-mixture likelihood per site,
            fitted once to its stage-1 draws and shared by the folds, sampled by NUTS
            (:mod:`~bayes_vmimics.inference.mixture_stage2`) (–).
        mixture_components: components per site of the ``mixture`` engine (count).
        log: called with a line of text per fold (callable).

    Returns:
        :class:`CrossValidation`.

    Raises:
        ValueError: sites of ``stage1`` and ``problem`` differ, ``regression`` without covariates or table,
            an unknown method; :class:`~bayes_vmimics.covariates.MissingCovariateError` for a site missing a
            covariate (naming it).
    """
    from .covariates import CovariateScaler, parse_covariates
    from .inference.pymc_models import posterior_convergence
    from .inference.regression import RegressionPrior, predict_new_site_regression, sample_regression_population
    from .inference.two_stage import sample_population
    from .population import sample_new_site_parameters, theta_from_logit
    from .scoring import predict_draws, predictive_table, score_by_depth

    say = log or (lambda _: None)
    ft = [str(t) for t in forest_types]
    ids = list(problem.site_ids)
    if list(stage1.site_ids) != ids:
        raise ValueError("stage1 and problem must hold the same sites in the same order")
    if len(ft) != len(ids):
        raise ValueError(f"forest_types must give one type per site ({len(ids)}), got {len(ft)}")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown}; choose from {METHODS}")
    if "regression" in methods:
        if covariate_table is None:
            raise ValueError("the regression method needs covariate_table (bayes_vmimics.covariates)")
        names = parse_covariates(covariates)
        # every site's covariates are checked before any stage 2 runs (a missing value names the site)
        CovariateScaler.fit(covariate_table, ids, ft, names, clay_rule=clay_rule)
    if stage2_engine not in ("draws", "mixture"):
        raise ValueError(f"stage2_engine must be 'draws' or 'mixture', got {stage2_engine!r}")
    if "table3" in methods:
        missing = sorted(set(ft) - set(reference_parameters or {}))
        if missing:
            raise ValueError(f"the table3 method needs reference_parameters for forest type(s) {missing}")
    hyperprior = hyperprior or RegressionPrior()
    stage2 = {"draws": 4000, "tune": 1000, "chains": 4, "thin": 5, **(stage2 or {})}
    fold = site_folds(ft, n_folds, seed)
    prior = problem.prior
    mixtures = None
    if stage2_engine == "mixture":
        from .inference.mixture_stage2 import fit_site_mixtures, sample_mixture_population

        # a site's mixture depends on its stage-1 draws only: fitted once, shared by every fold
        mixtures = fit_site_mixtures(stage1, mixture_components, seed=seed)
        nuts = {k: v for k, v in stage2.items() if k in ("draws", "tune", "chains", "n_processes")}
    rng = np.random.default_rng(np.random.SeedSequence([seed, 20]))
    n_soc, n_c14 = problem.n_soc, problem.n_c14
    obs = problem.observations()
    assembled = {
        m: {"soc": np.full((predictive_draws, n_soc), np.nan), "f14c": np.full((predictive_draws, n_c14), np.nan)}
        for m in methods
    }
    fold_rows, stage2_rows, beta_rows = [], [], []
    for k in range(n_folds):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        s1 = stage1.subset(train)
        ft_train, ft_test = [ft[i] for i in train], [ft[i] for i in test]
        test_problem = problem_subset(problem, test)
        held = {v: np.isin(obs[f"{v}_site"], list(test_problem.site_ids)) for v in ("soc", "f14c")}

        def record(method, pred, k=k, held=held, test_problem=test_problem, ft_test=ft_test):
            """Keep the held-out predictions of a fold for the scores of all sites, and score the fold."""
            for var, keep in held.items():
                assembled[method][var][:, keep] = pred[var]
            fold_rows.extend(
                {"fold": k, "method": method, **row} for row in _scores_by_type(test_problem, pred, ft_test, seed)
            )

        say(f"fold {k + 1}/{n_folds}: {len(train)} training and {len(test)} held-out site(s)")
        for method in methods:
            if method == "own":
                pick = np.linspace(0, stage1.z.shape[1] - 1, predictive_draws).round().astype(int)
                th = theta_from_logit(prior, stage1.z[test][:, pick].swapaxes(0, 1))  # (draws, held-out sites, 7)
                record(method, predict_draws(test_problem, th))
                continue
            if method == "table3":
                th = np.stack([np.asarray(reference_parameters[t], dtype=float) for t in ft_test])[None]
                pred = predict_draws(test_problem, th)
                record(method, {v: np.repeat(p, predictive_draws, axis=0) for v, p in pred.items()})
                continue
            if method == "population":
                if mixtures is None:
                    dt = sample_population(s1, ft_train, prior, seed=seed + k, **stage2)
                else:
                    dt = sample_mixture_population(mixtures.subset(train), ft_train, prior, seed=seed + k, **nuts)
                post = dt["posterior"]
                ci, di = _draw_index(post.sizes["chain"], post.sizes["draw"], predictive_draws)
                th = np.stack([sample_new_site_parameters(dt, t, prior, rng).values[ci, di] for t in ft_test], axis=1)
                rep = posterior_convergence(dt, ["mu", "sigma"])
            else:
                scaler = CovariateScaler.fit(covariate_table, s1.site_ids, ft_train, names, clay_rule=clay_rule)
                X_train = scaler.transform(covariate_table, s1.site_ids, ft_train)
                X_test = scaler.transform(covariate_table, test_problem.site_ids, ft_test)
                if mixtures is None:
                    dt = sample_regression_population(
                        s1,
                        X_train,
                        ft_train,
                        prior,
                        covariate_names=list(scaler.columns),
                        shared_beta=shared_beta,
                        hyperprior=hyperprior,
                        seed=seed + k,
                        **stage2,
                    )
                else:
                    dt = sample_mixture_population(
                        mixtures.subset(train),
                        ft_train,
                        prior,
                        X=X_train,
                        covariate_names=list(scaler.columns),
                        shared_beta=shared_beta,
                        hyperprior=hyperprior,
                        seed=seed + k,
                        **nuts,
                    )
                post = dt["posterior"]
                ci, di = _draw_index(post.sizes["chain"], post.sizes["draw"], predictive_draws)
                z = predict_new_site_regression(dt, X_test, rng, forest_type=ft_test)
                th = theta_from_logit(prior, z.transpose("chain", "draw", "site", "parameter").values[ci, di])
                rep = posterior_convergence(dt, ["mu", "sigma", "beta"])
                b = post["beta"]
                q = b.quantile([0.05, 0.95], dim=("chain", "draw"))
                m = b.mean(("chain", "draw"))
                for t in b["forest_type"].values:
                    for c in b["covariate"].values:
                        for p in b["parameter"].values:
                            beta_rows.append(
                                {
                                    "fold": k,
                                    "forest_type": str(t),
                                    "covariate": str(c),
                                    "parameter": str(p),
                                    "mean": float(m.sel(forest_type=t, covariate=c, parameter=p)),
                                    "q05": float(q.sel(quantile=0.05, forest_type=t, covariate=c, parameter=p)),
                                    "q95": float(q.sel(quantile=0.95, forest_type=t, covariate=c, parameter=p)),
                                }
                            )
            diag = dt["stage2_diagnostics"]
            stage2_rows.append(
                {
                    "fold": k,
                    "method": method,
                    "max_r_hat": rep["max_r_hat"],
                    "min_ess_bulk": rep["min_ess_bulk"],
                    "min_weight_ess_q05": float(diag["weight_ess_q05"].min()) if "weight_ess_q05" in diag else np.nan,
                    "divergences": int(diag["divergences"].sum()) if "divergences" in diag else 0,
                }
            )
            record(method, predict_draws(test_problem, th))
    fold_scores = pd.DataFrame(fold_rows)
    rows = []
    for method in methods:
        for row in _scores_by_type(problem, assembled[method], ft, seed):
            out = {"method": method, "forest_type": row["forest_type"], "variable": row["variable"]}
            out.update({f"{c}_all": row[c] for c in _SCORE_COLUMNS if c in row})
            per = fold_scores[
                (fold_scores["method"] == method)
                & (fold_scores["forest_type"] == row["forest_type"])
                & (fold_scores["variable"] == row["variable"])
            ]
            for c in ("rmse", "r2", "lppd", "coverage_50", "coverage_90"):
                v = per[c].to_numpy(float)
                out[f"{c}_fold_mean"] = float(np.mean(v))
                out[f"{c}_fold_se"] = float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
            rows.append(out)
    folds = pd.DataFrame({"site_id": ids, "forest_type": ft, "fold": fold})
    site_type = dict(zip(ids, ft, strict=True))
    tables, depth = [], []
    for method in methods:
        t = predictive_table(problem, assembled[method], seed=seed, new_site=True)
        t.insert(0, "forest_type", t["site_id"].map(site_type))
        t.insert(0, "method", method)
        tables.append(t)
        for label, sub, pred in _by_type(problem, assembled[method], ft):
            d = score_by_depth(sub, pred, seed=seed, new_site=True)
            d.insert(0, "forest_type", label)
            d.insert(0, "method", method)
            depth.append(d)
    return CrossValidation(
        folds,
        fold_scores,
        pd.DataFrame(rows),
        pd.DataFrame(stage2_rows),
        pd.DataFrame(beta_rows),
        mixtures,
        pd.concat(tables, ignore_index=True),
        pd.concat(depth, ignore_index=True),
    )
