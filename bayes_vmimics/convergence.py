"""The convergence verdict of a run, in words: :func:`convergence_verdict` from the diagnostics of a sampler
(R-hat, kept steps / τ, bulk ESS, stage-2 weight ESS) against the thresholds below, and :func:`result_verdict`
from a stored result (``xarray.DataTree``). Posterior diagnostics of the x_v–x_K ridge:
:mod:`bayes_vmimics.diagnostics`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

#: Largest R-hat of a converged run (rank-normalised split R-hat across ensembles or chains) (–).
RHAT_MAX = 1.01
#: Smallest kept steps / τ of a converged emcee run (emcee's rule for a trustworthy τ) (–).
N_OVER_TAU_MIN = 50.0
#: Smallest bulk effective sample size of a converged run (draws).
ESS_BULK_MIN = 400.0
#: Smallest stage-2 weight ESS (5 % quantile over sweeps) of every site of a two-stage run (draws).
WEIGHT_ESS_Q05_MIN = 5.0


@dataclass(frozen=True)
class ConvergenceVerdict:
    """Whether a run converged, in words.

    Attributes:
        converged: every criterion checked passed (bool).
        failed: the failed criteria, each a sentence with the value and its threshold (–).
        checked: the criteria that were checked, e.g. "R-hat ≤ 1.01" (–).
        smoke_run: a ``--quick`` run (the quick study settings): a test of the pipeline, never a result (bool).
    """

    converged: bool
    failed: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()
    smoke_run: bool = False

    @property
    def label(self) -> str:
        """ "converged" or "not converged"."""
        return "converged" if self.converged else "not converged"

    def line(self) -> str:
        """One line for reports and the console, e.g. ``convergence verdict: NOT CONVERGED (smoke run …): …``."""
        text = f"convergence verdict: {self.label.upper()}"
        if self.smoke_run:
            text += " (SMOKE RUN: --quick settings, a test of the pipeline, not a result)"
        if self.failed:
            text += " — failed: " + "; ".join(self.failed)
        elif self.checked:
            text += " — passed: " + ", ".join(self.checked)
        return text

    def to_json(self) -> str:
        """The verdict as JSON (a results file attribute)."""
        return json.dumps(
            {
                "verdict": self.label,
                "converged": self.converged,
                "failed": list(self.failed),
                "checked": list(self.checked),
                "smoke_run": self.smoke_run,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ConvergenceVerdict:
        """The inverse of :meth:`to_json`."""
        d = json.loads(text)
        return cls(bool(d["converged"]), tuple(d["failed"]), tuple(d["checked"]), bool(d["smoke_run"]))


def _worst(values, names, bad) -> tuple[float, list[str]]:
    """(the worst value, the names where ``bad``) of an array of diagnostics; NaN where none is finite."""
    v = np.asarray(values, dtype=float).ravel()
    ok = np.isfinite(v)
    flagged = [str(n) for n, b in zip(names or [], np.asarray(bad).ravel(), strict=False) if b]
    return (float(v[ok].max()) if ok.any() else np.nan), flagged


def _names_text(names: list[str], limit: int = 4) -> str:
    if not names:
        return ""
    more = f", … {len(names) - limit} more" if len(names) > limit else ""
    return " (" + ", ".join(names[:limit]) + more + ")"


def convergence_verdict(
    *,
    rhat=None,
    n_over_tau=None,
    ess_bulk=None,
    weight_ess_q05=None,
    divergences: int | None = None,
    optimiser_message: str | None = None,
    names: Sequence[str] | None = None,
    sites: Sequence[str] | None = None,
    smoke_run: bool = False,
    notes: Sequence[str] = (),
) -> ConvergenceVerdict:
    """The convergence verdict of a run from the diagnostics it already has: converged only where every given
    diagnostic meets its threshold (R-hat ≤ :data:`RHAT_MAX`, N/τ ≥ :data:`N_OVER_TAU_MIN`, bulk ESS ≥
    :data:`ESS_BULK_MIN`, stage-2 weight ESS (5 % quantile) ≥ :data:`WEIGHT_ESS_Q05_MIN` at every site, no NUTS
    divergence; for a point estimate, an optimiser that stopped by its own convergence test) and no note says
    otherwise. A diagnostic that is NaN (not computable, e.g. R-hat of one ensemble)
    fails; one that is None is not checked.

    Args:
        rhat: R-hat per parameter (any shape) (–).
        n_over_tau: kept steps / integrated autocorrelation time per ensemble (or site) and parameter (–).
        ess_bulk: bulk effective sample size per parameter (draws).
        weight_ess_q05: stage-2 weight ESS, 5 % quantile over sweeps, per site (draws).
        divergences: NUTS divergences (count).
        optimiser_message: the message of a point estimate's optimiser (scipy's differential evolution): converged
            where it says the optimisation terminated successfully (–).
        names: labels of the ``rhat`` and ``ess_bulk`` entries, for the failed criteria (–).
        sites: labels of the ``weight_ess_q05`` and (first axis of) ``n_over_tau`` entries, where per site (–).
        smoke_run: a ``--quick`` run (bool).
        notes: more failed criteria, in words (e.g. a burn-in cut short) (–).

    Returns:
        A :class:`ConvergenceVerdict`.
    """
    failed, checked = [], []
    if rhat is not None:
        r = np.asarray(rhat, dtype=float).ravel()
        checked.append(f"R-hat ≤ {RHAT_MAX:g}")
        if r.size == 0 or not np.all(np.isfinite(r)):
            failed.append("R-hat not computed (NaN: it needs ≥ 2 ensembles or chains and ≥ 4 kept steps)")
        elif r.max() > RHAT_MAX:
            _, where = _worst(r, names, r > RHAT_MAX)
            failed.append(f"max R-hat {r.max():.3f} > {RHAT_MAX:g}{_names_text(where)}")
    if n_over_tau is not None:
        x = np.asarray(n_over_tau, dtype=float)
        checked.append(f"N/τ ≥ {N_OVER_TAU_MIN:g}")
        finite = x[np.isfinite(x)]
        if x.size == 0 or finite.size < x.size:
            failed.append(
                f"τ unknown (NaN) somewhere: the chains are too short to estimate it (N/τ ≥ {N_OVER_TAU_MIN:g})"
            )
        elif finite.min() < N_OVER_TAU_MIN:
            where = []
            if sites is not None and x.ndim >= 1 and x.shape[0] == len(sites):
                low = np.min(x.reshape(x.shape[0], -1), axis=1) < N_OVER_TAU_MIN
                where = [str(s) for s, b in zip(sites, low, strict=True) if b]
            failed.append(
                f"min N/τ {finite.min():.3g} < {N_OVER_TAU_MIN:g} (τ unreliable: sample longer){_names_text(where)}"
            )
    if ess_bulk is not None:
        e = np.asarray(ess_bulk, dtype=float).ravel()
        checked.append(f"bulk ESS ≥ {ESS_BULK_MIN:g}")
        if e.size == 0 or not np.all(np.isfinite(e)):
            failed.append("bulk ESS not computed (NaN)")
        elif e.min() < ESS_BULK_MIN:
            where = [str(n) for n, v in zip(names or [], e, strict=False) if v < ESS_BULK_MIN]
            failed.append(f"min bulk ESS {e.min():.0f} < {ESS_BULK_MIN:g}{_names_text(where)}")
    if weight_ess_q05 is not None:
        w = np.asarray(weight_ess_q05, dtype=float).ravel()
        checked.append(f"stage-2 weight ESS (5 % quantile) ≥ {WEIGHT_ESS_Q05_MIN:g} at every site")
        low = ~(w >= WEIGHT_ESS_Q05_MIN)  # NaN fails
        if low.any():
            per_site = sites is not None and len(sites) == w.size
            where = [str(s) for s, b in zip(sites, low, strict=True) if b] if per_site else []
            failed.append(
                f"stage-2 weight ESS (5 % quantile) {np.nanmin(w) if np.isfinite(w).any() else np.nan:.3g} < "
                f"{WEIGHT_ESS_Q05_MIN:g} at {int(low.sum())} of {w.size} "
                f"{'site(s)' if per_site or sites is None else 'stage-2 fit(s)'}{_names_text(where)}"
            )
    if divergences is not None:
        checked.append("no NUTS divergences")
        if divergences > 0:
            failed.append(f"{int(divergences)} NUTS divergence(s)")
    if optimiser_message is not None:
        checked.append("the optimiser's own convergence test")
        if "success" not in optimiser_message.lower():
            failed.append(f"the optimiser stopped before its convergence test passed ({optimiser_message.strip()})")
    failed += [str(n) for n in notes]
    if not checked and not failed:
        failed.append("no convergence diagnostics (nothing was checked)")
    return ConvergenceVerdict(not failed, tuple(failed), tuple(checked), bool(smoke_run))


def _smoke_run(dt: xr.DataTree) -> bool:
    """A result of a ``--quick`` run: the attribute ``smoke_run``, else a stored configuration named "quick"."""
    if "smoke_run" in dt.attrs:
        return bool(int(dt.attrs["smoke_run"]))
    raw = dt.attrs.get("configuration") or dt["posterior"].attrs.get("configuration")
    try:
        return (json.loads(raw) if raw else {}).get("study", {}).get("name") == "quick"
    except (ValueError, AttributeError):
        return False


def result_verdict(dt: xr.DataTree) -> ConvergenceVerdict:
    """The :func:`convergence_verdict` of a saved result, recomputed from the diagnostics it holds.

    A pooled ``calibrate`` result: R-hat and N/τ of its ``convergence`` group and the bulk ESS of its posterior
    draws. A hierarchical result: R-hat and bulk ESS of the population (``theta_population``, ``mu``, ``sigma``
    and ``beta``), stage-1 N/τ per site (``stage1``), the stage-2 weight ESS (5 % quantile) per site or the NUTS
    divergences (``stage2_diagnostics``). Notes stored in the attribute ``verdict_notes`` (JSON list) fail too;
    ``smoke_run`` (or a configuration named "quick") marks a smoke run.

    Args:
        dt: a result of ``calibrate`` or ``hierarchical`` (–).

    Returns:
        A :class:`ConvergenceVerdict`.
    """
    import arviz as az

    notes = json.loads(dt.attrs.get("verdict_notes", "[]"))
    smoke = _smoke_run(dt)
    post = dt["posterior"]
    if "convergence" in dt.children:  # pooled emcee
        conv = dt["convergence"]
        names = [str(p) for p in conv["parameter"].values]
        ess = [float(az.ess(post[n].transpose("chain", "draw").values, method="bulk")) for n in names if n in post]
        return convergence_verdict(
            rhat=conv["rhat"].values,
            n_over_tau=conv["n_over_tau"].values,
            ess_bulk=ess,
            names=names,
            smoke_run=smoke,
            notes=notes,
        )
    variables = [v for v in ("theta_population", "mu", "sigma", "beta") if v in post.data_vars]
    if not variables:
        return convergence_verdict(smoke_run=smoke, notes=notes)
    rhat, ess, names = [], [], []
    for v in variables:
        da = post[v].transpose("chain", "draw", ...)
        other = da.dims[2:]
        flat = da.values.reshape(da.sizes["chain"], da.sizes["draw"], -1)
        coords = [
            [str(c) for c in da[d].values] if d in da.coords else list(map(str, range(da.sizes[d]))) for d in other
        ]
        labels = [
            f"{v}[{', '.join(c[i] for c, i in zip(coords, idx, strict=True))}]" for idx in np.ndindex(*map(len, coords))
        ]
        for j in range(flat.shape[-1]):
            rhat.append(float(az.rhat(flat[..., j])))
            ess.append(float(az.ess(flat[..., j], method="bulk")))
        names += labels if other else [v]
    n_over_tau = weight = divergences = sites = None
    if "stage1" in dt.children and "tau" in dt["stage1"].data_vars:
        s1 = dt["stage1"]
        kept = int(s1.attrs.get("n_steps", 0)) - int(s1.attrs.get("discard", 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            n_over_tau = kept / s1["tau"].transpose("site", ...).values
        sites = [str(s) for s in s1["site"].values]
    if "stage2_diagnostics" in dt.children:
        d = dt["stage2_diagnostics"]
        if "weight_ess_q05" in d.data_vars:
            weight = d["weight_ess_q05"].min("chain").values
            sites = [str(s) for s in d["site"].values]
    if "sample_stats" in dt.children and "diverging" in dt["sample_stats"].data_vars:
        divergences = int(dt["sample_stats"]["diverging"].sum())
    return convergence_verdict(
        rhat=rhat,
        n_over_tau=n_over_tau,
        ess_bulk=ess,
        weight_ess_q05=weight,
        divergences=divergences,
        names=names,
        sites=sites,
        smoke_run=smoke,
        notes=notes,
    )
