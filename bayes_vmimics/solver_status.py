"""Status codes of the steady-state solvers.

The compiled kernels (``_core``, ``annual_cycle``) return plain integers; the Python side maps them to
:class:`SolverStatus` and its message in :data:`STATUS_MESSAGES`.
"""

from __future__ import annotations

from enum import IntEnum


class SolverStatus(IntEnum):
    """Outcome of a steady-state solve (the integer values are those the numba kernels return)."""

    CONVERGED = 0
    MAX_ITER = 1
    NON_FINITE = 2
    SINGULAR = 3
    UNBOUNDED = 4
    SADDLE = 5
    OSCILLATORY = 6
    MICROBES_EXTINCT = 7
    NOT_SETTLED = 8


#: Message of each status, as reported in ``SteadyState.message``.
STATUS_MESSAGES: dict[SolverStatus, str] = {
    SolverStatus.CONVERGED: "converged",
    SolverStatus.MAX_ITER: "maximum number of iterations reached",
    SolverStatus.NON_FINITE: "non-finite values in the iteration",
    SolverStatus.SINGULAR: "singular Jacobian",
    SolverStatus.UNBOUNDED: (
        "no finite steady state: pools grow without bound (microbes cannot persist anywhere in the column)"
    ),
    SolverStatus.SADDLE: (
        "the iteration ended on an unstable equilibrium (a saddle), which time integration would leave"
    ),
    SolverStatus.OSCILLATORY: (
        "no stable steady state: the only equilibrium found is an unstable focus (complex Jacobian eigenvalues "
        "with positive real part); time integration approaches sustained oscillations (β = 1 consumer–resource "
        "cycles)"
    ),
    SolverStatus.MICROBES_EXTINCT: (
        "no finite steady state: microbes die out everywhere (their maximum growth rate is below their "
        "turnover rate in every layer), so litter and protected SOC grow without bound"
    ),
    SolverStatus.NOT_SETTLED: (
        "no steady state reached: thousands of years of implicit time integration from the initial pools did "
        "not settle on an equilibrium (the pools still drift or oscillate; β = 1 with slow diffusion)"
    ),
}


def status_message(status: int) -> str:
    """The message of a kernel status code (int or :class:`SolverStatus`)."""
    try:
        return STATUS_MESSAGES[SolverStatus(int(status))]
    except ValueError:
        return f"status {status}"


__all__ = ["STATUS_MESSAGES", "SolverStatus", "status_message"]
