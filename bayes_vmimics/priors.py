"""Priors on the seven calibrated parameters: uniform on the Table 1 box, log-uniform optional (spec 13).

The density is normalised on the box, so log-priors of different choices are comparable:

- uniform: log p(θ_i) = −log(u_i − l_i);
- log-uniform: log p(θ_i) = −log θ_i − log(log(u_i / l_i)).

Outside the box the log-prior is −inf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .parameters import PARAMETER_NAMES, TABLE1

#: Parameters that are scale factors of the model's rate constants (natural candidates for log-uniform).
SCALE_FACTORS: tuple[str, ...] = ("x_v", "x_K", "x_d", "x_D")


class BoxPrior:
    """Independent uniform or log-uniform priors on a box, parameters in ``PARAMETER_NAMES`` order.

    Args:
        bounds: name → (lower, upper) overriding the Table 1 range (parameter units).
        log_uniform: names of the parameters with a log-uniform prior (–).

    Raises:
        ValueError: unknown parameter name, or a range that is empty or not positive.
    """

    def __init__(
        self, bounds: Mapping[str, tuple[float, float]] | None = None, log_uniform: Iterable[str] = ()
    ) -> None:
        bounds = dict(bounds or {})
        log_uniform = tuple(log_uniform)
        bad = sorted((set(bounds) | set(log_uniform)) - set(PARAMETER_NAMES))
        if bad:
            raise ValueError(f"unknown parameter(s) {bad}; known: {list(PARAMETER_NAMES)}")
        lo = np.array([bounds.get(n, TABLE1[n][:2])[0] for n in PARAMETER_NAMES], dtype=float)
        hi = np.array([bounds.get(n, TABLE1[n][:2])[1] for n in PARAMETER_NAMES], dtype=float)
        if np.any(~(lo > 0)) or np.any(~(hi > lo)):
            raise ValueError(f"prior bounds must satisfy 0 < lower < upper, got {lo.tolist()}, {hi.tolist()}")
        self.names = PARAMETER_NAMES
        self.lower = lo
        self.upper = hi
        self.is_log = np.array([n in log_uniform for n in PARAMETER_NAMES])
        width = np.where(self.is_log, np.log(hi / lo), hi - lo)
        self._log_norm = -float(np.sum(np.log(width)))

    @classmethod
    def from_config(cls, section) -> BoxPrior:
        """From a :class:`~bayes_vmimics.config.PriorSection`."""
        return cls(bounds=section.bounds, log_uniform=section.log_uniform)

    @property
    def ndim(self) -> int:
        """Number of parameters."""
        return len(self.names)

    def kinds(self) -> dict[str, str]:
        """name → "uniform" or "log-uniform"."""
        return {n: "log-uniform" if g else "uniform" for n, g in zip(self.names, self.is_log, strict=True)}

    def in_support(self, theta) -> bool:
        """Whether θ lies inside the box (inclusive)."""
        t = np.asarray(theta, dtype=float)
        return bool(np.all(np.isfinite(t)) and np.all(t >= self.lower) and np.all(t <= self.upper))

    def log_prior(self, theta) -> float:
        """Log prior density of θ (7 values in ``PARAMETER_NAMES`` order, parameter units); −inf outside."""
        t = np.asarray(theta, dtype=float)
        if t.shape != (self.ndim,):
            raise ValueError(f"theta must have shape ({self.ndim},), got {t.shape}")
        if not self.in_support(t):
            return -np.inf
        return self._log_norm - float(np.sum(np.log(t[self.is_log])))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` vectors from the prior, shape (size, 7) (parameter units)."""
        u = rng.random((int(size), self.ndim))
        lin = self.lower + u * (self.upper - self.lower)
        log = np.exp(np.log(self.lower) + u * np.log(self.upper / self.lower))
        return np.where(self.is_log, log, lin)

    def to_unit(self, theta) -> np.ndarray:
        """Map θ to [0, 1]⁷ (log scale for log-uniform parameters); used to measure distances."""
        t = np.asarray(theta, dtype=float)
        lin = (t - self.lower) / (self.upper - self.lower)
        with np.errstate(divide="ignore", invalid="ignore"):
            log = np.log(t / self.lower) / np.log(self.upper / self.lower)
        return np.where(self.is_log, log, lin)

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{n}~{'LogU' if g else 'U'}({lo:g}, {hi:g})"
            for n, g, lo, hi in zip(self.names, self.is_log, self.lower, self.upper, strict=True)
        )
        return f"BoxPrior({parts})"


def theta_from_logit(prior: BoxPrior, z) -> np.ndarray:
    """θ from z, the logit of the unit position on the prior box (log scale for log-uniform parameters): the
    one transform between the samplers' unconstrained space and parameter units.

    Args:
        prior: the box (–).
        z: shape (..., 7) (logit units).

    Returns:
        θ, shape (..., 7) (parameter units).
    """
    from scipy.special import expit

    v = expit(np.asarray(z, dtype=float))  # no overflow warning for large |z|
    lin = prior.lower + (prior.upper - prior.lower) * v
    log = prior.lower * np.exp(v * np.log(prior.upper / prior.lower))
    return np.where(prior.is_log, log, lin)


def logit_from_theta(prior: BoxPrior, theta) -> np.ndarray:
    """Inverse of :func:`theta_from_logit`; θ (parameter units) must lie strictly inside the box; returns z
    (logit units)."""
    v = np.clip(prior.to_unit(theta), 1e-12, 1.0 - 1e-12)
    return np.log(v / (1.0 - v))
