"""Predictive scores of parameter draws against observed profiles, under the problem's own error model.

One code path scores every kind of result on any set of sites (calibration or held-out):

- a point estimate (one θ shared by all sites: the ``optimize`` optimum, the paper's Table 3 parameters);
- a pooled posterior (draws of one θ shared by all sites);
- a population (draws of one θ per site, e.g. a held-out site's θ drawn from its forest type's population).

The scores per variable (SOC, F14C) are the paper's fit metrics of the predictive median (RMSE of P Eq 17,
BIC, the regression a, b, r²; :func:`~bayes_vmimics.metrics.fit_metrics`), the log pointwise predictive density
(lppd, mean over observations) and the coverage of the central 50 % and 90 % predictive intervals. The intervals
and the lppd include the observation error of the problem's error model
(:meth:`~bayes_vmimics.likelihood.CalibrationProblem.sample_observation_noise`,
:meth:`~bayes_vmimics.likelihood.CalibrationProblem.pointwise_log_predictive_density`): a calibrated prediction
covers 50 % and 90 % of the observations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from .metrics import fit_metrics, regression
from .parameters import PARAMETER_NAMES

_VARS = ("soc", "f14c")


def _site_thetas(problem, thetas) -> np.ndarray:
    th = np.asarray(thetas, dtype=float)
    n_sites, npar = len(problem.sites), len(PARAMETER_NAMES)
    if th.ndim == 1:
        th = th[None]
    if th.ndim == 2:
        if th.shape[1] != npar:
            raise ValueError(
                f"thetas must have shape (n_draws, {npar}) or (n_draws, {n_sites}, {npar}), got {th.shape}"
            )
        th = np.broadcast_to(th[:, None, :], (th.shape[0], n_sites, npar))
    if th.ndim != 3 or th.shape[1:] != (n_sites, npar):
        raise ValueError(f"thetas must have shape (n_draws, {npar}) or (n_draws, {n_sites}, {npar}), got {th.shape}")
    return th


def predict_draws(problem, thetas) -> dict[str, np.ndarray]:
    """Model values at the observed intervals for each draw.

    Args:
        problem: the sites (:class:`~bayes_vmimics.likelihood.CalibrationProblem`) (–).
        thetas: shape (n_draws, 7) (one θ shared by all sites, e.g. a pooled posterior; (7,) for a point
            estimate) or (n_draws, n_sites, 7) (each site its own θ) (parameter units).

    Returns:
        ``{"soc": (n_draws, n_soc), "f14c": (n_draws, n_f14c)}`` in the order of
        :meth:`~bayes_vmimics.likelihood.CalibrationProblem.observations` (SOC in the problem's unit, F14C);
        NaN for every observation of a site whose steady state failed at that draw.
    """
    th = _site_thetas(problem, thetas)
    obs = problem.observations()
    out = {v: np.full((th.shape[0], obs[v].size), np.nan) for v in _VARS}
    for d in range(th.shape[0]):
        soc, c14 = [], []
        for s, p in enumerate(problem.sites):
            q = problem.predict_site(s, th[d, s], grid_outputs=False)
            n14 = p.c14_index.size
            if q is None:
                soc.append(np.full(p.soc_obs.size, np.nan))
                c14.append(np.full(n14, np.nan))
            else:
                soc.append(np.asarray(q.soc, dtype=float))
                c14.append(np.asarray(q.f14c, dtype=float)[p.c14_index] if n14 else np.empty(0))
        out["soc"][d] = np.concatenate(soc) if soc else np.empty(0)
        out["f14c"][d] = np.concatenate(c14) if c14 else np.empty(0)
    return out


def score_predictions(
    problem, predictions: dict[str, np.ndarray], *, seed: int = 0, new_site: bool = True, n_replicates: int = 1000
):
    """Scores of predictive draws against the problem's observations, per variable.

    Args:
        problem: the sites the predictions were made for (–).
        predictions: the output of :func:`predict_draws` (units there).
        seed: seed of the observation-error draws of the intervals (integer).
        new_site: error model with a site-scale discrepancy: κ from its prior (held-out sites, True) or from
            each site's posterior at each draw (calibration sites, False) (bool).
        n_replicates: replicated observations behind the intervals: the draws are repeated (cycled) up to this
            many, each with its own observation error, so that a point estimate (one draw) has intervals too
            (count).

    Returns:
        DataFrame indexed by variable ("soc", "f14c"; only those with observations) with columns rmse, bic,
        a, b, r2 (of the predictive median; SOC in the problem's unit), lppd (nats per observation),
        coverage_50, coverage_90 (fraction), n_sites, n_obs, n_draws (draws without a failed site) and
        n_failed_draws (count).
    """
    rng = np.random.default_rng(seed)
    obs = problem.observations()
    rows = {}
    for var in _VARS:
        o = obs[var]
        if o.size == 0:
            continue
        pred, rep, lpd, n_failed = _replicated(problem, var, predictions, rng, new_site, n_replicates)
        row = {}
        site = obs[f"{var}_site"]
        med = np.median(pred, axis=0)
        ids = list(dict.fromkeys(site.tolist()))
        m = fit_metrics([o[site == s] for s in ids], [med[site == s] for s in ids])
        row.update(rmse=m.rmse, bic=m.bic, a=m.a, b=m.b, r2=m.r2)
        row["lppd"] = float(np.mean(logsumexp(lpd, axis=0) - np.log(lpd.shape[0])))
        for level in (50, 90):
            lo, hi = np.quantile(rep, [0.5 - level / 200, 0.5 + level / 200], axis=0)
            row[f"coverage_{level}"] = float(np.mean((o >= lo) & (o <= hi)))
        row.update(n_sites=len(ids), n_obs=int(o.size), n_draws=int(pred.shape[0]), n_failed_draws=n_failed)
        rows[var] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _replicated(problem, var, predictions, rng, new_site, n_replicates):
    """The draws without a failed site, replicated observations (observation error added; at least
    ``n_replicates``) and the pointwise log predictive density of each draw, for one variable."""
    pred = np.asarray(predictions[var], dtype=float)
    ok = np.all(np.isfinite(pred), axis=1)
    pred = pred[ok]
    if pred.shape[0] == 0:
        raise ValueError(f"{var}: every draw has a failed steady state at some site; nothing to score")
    cycled = pred[np.resize(np.arange(pred.shape[0]), max(int(n_replicates), pred.shape[0]))]
    if new_site:
        rep = problem.sample_observation_noise(var, cycled, rng, new_site=True)
        lpd = problem.pointwise_log_predictive_density(var, pred, new_site=True)
    else:
        rep = np.stack([problem.sample_observation_noise(var, p, rng, new_site=False) for p in cycled])
        lpd = np.stack([problem.pointwise_log_predictive_density(var, p, new_site=False) for p in pred])
    return pred, rep, lpd, int((~ok).sum())


#: Depth bands of :func:`score_by_depth`, by the mid-depth of the observed layer (cm).
DEPTH_BANDS_CM = (0.0, 10.0, 30.0, 60.0, 100.0, np.inf)


def score_by_depth(
    problem,
    predictions: dict[str, np.ndarray],
    *,
    bands_cm=DEPTH_BANDS_CM,
    seed: int = 0,
    new_site: bool = True,
    n_replicates: int = 1000,
) -> pd.DataFrame:
    """Where and in which direction the predictive misses: the scores of :func:`score_predictions` broken down by
    depth band (mid-depth of the observed layer), with the side of the misses.

    A prediction that is merely too narrow misses on both sides alike; one that is biased misses on one side.
    ``above_50`` (``below_50``) is the share of a band's observations above (below) the central 50 % interval;
    a calibrated prediction has 25 % on each side.

    Args:
        problem, predictions, seed, new_site, n_replicates: as :func:`score_predictions`.
        bands_cm: increasing band edges (cm).

    Returns:
        DataFrame with one row per variable and band: ``variable``, ``top_cm``, ``bottom_cm`` (cm), ``n_obs``
        (count), ``median_ratio`` (median over observations of predictive median / observed; –),
        ``coverage_50``, ``coverage_90``, ``above_50``, ``below_50``, ``above_90``, ``below_90`` (fractions),
        ``r2`` (squared correlation of predictive median and observed across the band's layers, as in
        :func:`score_predictions`; NaN with fewer than 2 layers; –) and ``rmse`` (root mean square of predictive
        median − observed over the band's layers; unit of the variable).
    """
    edges = np.asarray(bands_cm, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bands_cm must be increasing band edges (cm), got {bands_cm}")
    rng = np.random.default_rng(seed)
    obs = problem.observations()
    rows = []
    for var in _VARS:
        o = obs[var]
        if o.size == 0:
            continue
        pred, rep, _, _ = _replicated(problem, var, predictions, rng, new_site, n_replicates)
        mid = 0.5 * (obs[f"{var}_top_cm"] + obs[f"{var}_bottom_cm"])
        med = np.median(pred, axis=0)
        q = {lv: np.quantile(rep, [0.5 - lv / 200, 0.5 + lv / 200], axis=0) for lv in (50, 90)}
        for top, bottom in zip(edges[:-1], edges[1:], strict=True):
            k = (mid >= top) & (mid < bottom)
            if not k.any():
                continue
            row = {"variable": var, "top_cm": top, "bottom_cm": bottom, "n_obs": int(k.sum())}
            with np.errstate(divide="ignore", invalid="ignore"):
                row["median_ratio"] = float(np.median(med[k] / o[k]))
            row["r2"] = regression(o[k], med[k])[2]
            row["rmse"] = float(np.sqrt(np.mean((med[k] - o[k]) ** 2)))
            for lv, (lo, hi) in q.items():
                row[f"coverage_{lv}"] = float(np.mean((o[k] >= lo[k]) & (o[k] <= hi[k])))
                row[f"above_{lv}"] = float(np.mean(o[k] > hi[k]))
                row[f"below_{lv}"] = float(np.mean(o[k] < lo[k]))
            rows.append(row)
    return pd.DataFrame(rows)


def predictive_table(
    problem, predictions: dict[str, np.ndarray], *, seed: int = 0, new_site: bool = True, n_replicates: int = 1000
) -> pd.DataFrame:
    """The predictive of every observation, one row each: what the scores of :func:`score_predictions` summarise.

    Args:
        problem, predictions, seed, new_site, n_replicates: as :func:`score_predictions`.

    Returns:
        DataFrame with ``variable``, ``site_id``, ``top_cm``, ``bottom_cm`` (cm below the mineral surface),
        ``layer`` (0 = the site's uppermost observed layer of that variable; count), ``observed``, ``median``
        (predictive median of the model value, as scored by r² and RMSE) and ``q05``, ``q25``, ``q75``, ``q95``
        (quantiles of the replicated observations, observation error included: the 50 % and 90 % intervals of
        the coverage), all in the unit of the variable (SOC in the problem's unit, F14C –).
    """
    rng = np.random.default_rng(seed)
    obs = problem.observations()
    frames = []
    for var in _VARS:
        o = obs[var]
        if o.size == 0:
            continue
        pred, rep, _, _ = _replicated(problem, var, predictions, rng, new_site, n_replicates)
        q = np.quantile(rep, [0.05, 0.25, 0.75, 0.95], axis=0)
        site = obs[f"{var}_site"]
        frame = pd.DataFrame(
            {
                "variable": var,
                "site_id": site,
                "top_cm": obs[f"{var}_top_cm"],
                "bottom_cm": obs[f"{var}_bottom_cm"],
                "observed": o,
                "median": np.median(pred, axis=0),
                "q05": q[0],
                "q25": q[1],
                "q75": q[2],
                "q95": q[3],
            }
        )
        frame.insert(4, "layer", frame.groupby("site_id")["top_cm"].rank(method="first").astype(int) - 1)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def score_draws(problem, thetas, *, seed: int = 0, new_site: bool = True) -> pd.DataFrame:
    """:func:`predict_draws` then :func:`score_predictions` (arguments and units there)."""
    return score_predictions(problem, predict_draws(problem, thetas), seed=seed, new_site=new_site)


def site_shares(problem, theta) -> pd.Series:
    """Each site's share of the negative log-likelihood at θ, relative to a perfect fit (the deviance), so that
    one number says whether a few sites decide the fit.

    Args:
        problem: the calibration problem (–).
        theta: 7 values in ``PARAMETER_NAMES`` order (parameter units).

    Returns:
        Series indexed by site id (fraction; sums to 1); NaN everywhere if a steady state fails.
    """
    dev = []
    for s, p in enumerate(problem.sites):
        q = problem.predict_site(s, np.asarray(theta, dtype=float), grid_outputs=False)
        if q is None:
            return pd.Series(np.nan, index=problem.site_ids)
        ll = problem.site_log_likelihood_from_prediction(s, q)
        best = p.soc_errors.log_likelihood(p.soc_obs) + p.c14_errors.log_likelihood(p.c14_obs)
        dev.append(-2.0 * (ll - best))
    dev = np.asarray(dev)
    return pd.Series(dev / dev.sum(), index=problem.site_ids, name="deviance_share")


def fit_discrepancy_prior_sites(problem, thetas) -> dict[str, tuple[float, float]]:
    """Empirical-Bayes shape a and prior median of the site-scale discrepancy κ per variable, from the
    problem's sites each at its own θ (a hierarchical result's per-site posterior medians) or all at one θ (a
    point estimate or a pooled posterior median): the κ prior of new (held-out) sites
    (:func:`~bayes_vmimics.errors.fit_discrepancy_prior`).

    Args:
        problem: the calibration sites, with an error model whose discrepancy is ``site_scale`` (–).
        thetas: shape (7,) (one θ for all sites) or (n_sites, 7) (parameter units).

    Returns:
        ``{"soc": (a, median κ), "f14c": (a, median κ)}`` (–); "f14c" only with ≥ 2 sites with F14C.

    Raises:
        ValueError: no site-scale discrepancy, wrong shape, fewer than 2 sites, or a failed steady state.
    """
    if problem.error_model.discrepancy != "site_scale":
        raise ValueError("the error model has no site-scale discrepancy: there is no κ prior to fit")
    out = problem.fit_discrepancy_prior(thetas)
    if out is None:
        raise ValueError("a calibration site's steady state failed at its θ; cannot fit the κ prior")
    if "soc" not in out:
        raise ValueError("the κ prior needs at least 2 calibration sites")
    return out


def discrepancy_prior_keys(fitted: dict[str, tuple[float, float]]) -> dict[str, float]:
    """``[likelihood]`` keys (``discrepancy_shape``, ``discrepancy_scale``, ``c14_discrepancy_shape``,
    ``c14_discrepancy_scale``) that set the fitted κ prior of :func:`fit_discrepancy_prior_sites` (–)."""
    out = {"discrepancy_shape": float(fitted["soc"][0]), "discrepancy_scale": float(fitted["soc"][1])}
    if "f14c" in fitted:
        out |= {"c14_discrepancy_shape": float(fitted["f14c"][0]), "c14_discrepancy_scale": float(fitted["f14c"][1])}
    return out


__all__ = [
    "DEPTH_BANDS_CM",
    "discrepancy_prior_keys",
    "fit_discrepancy_prior_sites",
    "predict_draws",
    "predictive_table",
    "score_by_depth",
    "score_draws",
    "score_predictions",
    "site_shares",
]
