"""The same indices under a posterior, from given data (beyond the paper).

Parameters are the posterior draws of a calibration result, which are correlated (x_v with x_K above all). The
pick-freeze (Saltelli) estimators need independent inputs: their resampled rows would combine the x_v of one draw
with the x_K of another, i.e. leave the posterior. So this variant evaluates the model at the draws themselves
and estimates from these given data the first-order index S1 = Var(E[Y|θ_i])/Var(Y) (SALib's ``rbd_fast`` on the
sample; under dependence S1 includes what θ_i carries of its correlated partners), optionally with Borgonovo's
moment-independent δ (SALib's ``delta``, slow), each with bootstrap intervals. Total indices are not defined
without a conditional sampler and are not reported. A draw whose run failed is dropped for that output.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from ..parameters import PARAMETER_NAMES
from .inputs import check_names, salib_problem


def given_data_indices(
    X,
    Y,
    names: Sequence[str] = PARAMETER_NAMES,
    *,
    output_names: Sequence[str] | None = None,
    seed: int = 0,
    num_resamples: int = 100,
    conf_level: float = 0.95,
    with_delta: bool = False,
) -> pd.DataFrame:
    """First-order indices from a sample of dependent inputs, e.g. posterior draws ("given data").

    S1_i = Var(E[Y|θ_i])/Var(Y) by SALib's ``rbd_fast`` on the given sample (the sample is ordered by θ_i and
    the first harmonics of Y along that order measure the conditional mean; Plischke 2010). With dependent
    inputs S1_i also holds what θ_i carries of its correlated partners (tested: x₁ with corr 0.9 to the only
    active input gets S1 = 0.81 = 0.9²). Optionally Borgonovo's moment-independent δ by SALib's ``delta``
    (its "raw" variant: the sample bootstrapped as it is, i.e. as the posterior distributes θ), which is slow
    (~1 min per output and 1000 draws). Rows with a NaN output are dropped for that output.

    Args:
        X: input sample, shape (n_rows, n), e.g. posterior draws (parameter units).
        Y: outputs, shape (n_rows,) or (n_rows, n_outputs) (output units).
        names: parameter of each column of X (–).
        output_names: name of each output (–).
        seed: seed of the bootstrap (–).
        num_resamples: bootstrap resamples (count).
        conf_level: level of the intervals (–).
        with_delta: also compute δ (bool).

    Returns:
        Long table: output, parameter, S1, S1_conf, (delta, delta_conf,) n_rows (used), n_dropped.
    """
    from SALib.analyze import rbd_fast

    names = check_names(names)
    X = np.asarray(X, float)
    Y = np.asarray(Y, float).reshape(len(X), -1)
    output_names = list(output_names) if output_names is not None else [f"y{k}" for k in range(Y.shape[1])]
    bounds = np.stack([X.min(axis=0), X.max(axis=0)], axis=1)
    bounds[:, 1] = np.maximum(bounds[:, 1], bounds[:, 0] + 1e-12)
    rows = []
    for k, name in enumerate(output_names):
        good = np.isfinite(Y[:, k])
        if good.sum() < 20 or np.ptp(Y[good, k]) == 0:
            continue
        prob = salib_problem(names, bounds)
        res = rbd_fast.analyze(
            prob, X[good], Y[good, k], num_resamples=int(num_resamples), conf_level=conf_level, seed=int(seed)
        )
        dres = None
        if with_delta:
            from SALib.analyze import delta as delta_analyze

            # SALib prints bin-merge and bias notices (the same facts are in its "notes"): keep them quiet
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore", UserWarning)
                dres = delta_analyze.analyze(
                    prob,
                    X[good],
                    Y[good, k],
                    num_resamples=int(num_resamples),
                    conf_level=conf_level,
                    seed=int(seed),
                    method="delta",
                )
        for j, p in enumerate(names):
            row = dict(output=name, parameter=p, S1=float(res["S1"][j]), S1_conf=float(res["S1_conf"][j]))
            if dres is not None:
                row.update(delta=float(dres["delta_raw"][j]), delta_conf=float(dres["delta_raw_conf"][j]))
            row.update(n_rows=int(good.sum()), n_dropped=int((~good).sum()))
            rows.append(row)
    return pd.DataFrame(rows)


def posterior_parameter_draws(dt, site_id: str | None = None, *, max_draws: int | None = None, seed: int = 0):
    """Posterior draws of θ from a results file (pooled ``calibrate`` result, or a hierarchical result's
    ``theta_site`` of ``site_id``), shape (n_draws, 7) in ``PARAMETER_NAMES`` order (parameter units).

    Args:
        dt: the results DataTree (:func:`bayes_vmimics.results.load_datatree`) (–).
        site_id: the site, for a hierarchical result (–).
        max_draws: keep at most this many draws, chosen at random without replacement (count).
        seed: seed of that choice (–).

    Raises:
        ValueError: no parameter draws (or no ``site_id``) in the result.
    """
    from ..results import posterior_draws

    post = dt["posterior"]
    if all(n in post for n in PARAMETER_NAMES):
        x = posterior_draws(dt)
    elif "theta_site" in post:
        th = post["theta_site"]
        sites = [str(s) for s in th["site"].values]
        if site_id is None:
            raise ValueError(
                "a hierarchical result holds per-site parameters (theta_site): give a pooled calibrate result here, "
                "or name the site (sobol --results uses each site's own draws)"
            )
        if site_id not in sites:
            raise ValueError(f"site {site_id!r} is not in the hierarchical result (sites: {sites})")
        th = th.sel(site=site_id)
        if "parameter" in th.coords:
            th = th.sel(parameter=list(PARAMETER_NAMES))
        x = th.transpose(..., "parameter").values.reshape(-1, len(PARAMETER_NAMES))
    else:
        raise ValueError(f"the results file has no parameter draws (posterior variables: {list(post.data_vars)})")
    if max_draws is not None and len(x) > max_draws:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), int(max_draws), replace=False))]
    return x


@dataclass(frozen=True, eq=False)
class GivenData:
    """The given-data ("posterior") method of :func:`~bayes_vmimics.sensitivity.sites.analyse_site`.

    Attributes:
        draws: the sample, e.g. posterior draws, shape (n_draws, n_parameters) (parameter units).
        with_delta: also Borgonovo's δ (slow; see :func:`given_data_indices`) (bool).
    """

    name: ClassVar[str] = "posterior"
    uses_bounds: ClassVar[bool] = False
    draws: np.ndarray | None = None
    with_delta: bool = False

    def settings(self, names) -> dict:
        """What must match for a finished file to be reused (besides names and seed).

        Raises:
            ValueError: no draws, or draws of another shape than (n_draws, len(names)).
        """
        if self.draws is None:
            raise ValueError("the posterior variant needs draws (n_draws, n_parameters)")
        draws = np.asarray(self.draws, float)
        if draws.ndim != 2 or draws.shape[1] != len(names):
            raise ValueError(f"draws must have shape (n_draws, {len(names)}), got {draws.shape}")
        return dict(
            n_draws=int(len(draws)), draws_sum=float(np.round(draws.sum(), 6)), with_delta=bool(self.with_delta)
        )

    def design(self, names, bounds, seed: int) -> np.ndarray:
        """The draws themselves (parameter units)."""
        return np.asarray(self.draws, float)

    def indices(self, X, Y, names, bounds, output_names, seed: int) -> pd.DataFrame:
        """:func:`given_data_indices`."""
        return given_data_indices(X, Y, names, output_names=output_names, seed=seed, with_delta=self.with_delta)


__all__ = ["GivenData", "given_data_indices", "posterior_parameter_draws"]
