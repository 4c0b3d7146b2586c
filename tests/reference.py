"""Independent reference: brute-force stiff time integration to equilibrium with scipy's BDF.

Used by the regression tests and by ``benchmarks/bench_steady_state.py``. It shares only the right-hand side
with the package (which the unit tests check against the spec's test vectors), not the solver.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from bayes_vmimics.model import SiteModel
from bayes_vmimics.steady_state import WC22_INITIAL


def bdf_equilibrium(site: SiteModel, params, *, t_end_years: float = 1e8, rtol: float = 1e-12, atol: float = 1e-14):
    """Integrate dC/dt from WC22's initial pools for ``t_end_years`` (yr) with BDF; return pools (7, N).

    The final state is polished by nothing: it is whatever the time integration reaches. Tolerances are tight
    so that the result is an equilibrium to ~1e-8 relative.
    """
    n = site.n_layers
    y0 = np.tile(WC22_INITIAL[:, None], (1, n)).ravel()

    def f(_t, y):
        return site.dcdt(np.maximum(y, 0.0).reshape(7, n), params).ravel()

    def jac(_t, y):
        return site.jacobian(np.maximum(y, 0.0).reshape(7, n), params)

    sol = solve_ivp(f, (0.0, t_end_years * 8760.0), y0, method="BDF", jac=jac, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(sol.message)
    return np.maximum(sol.y[:, -1], 0.0).reshape(7, n), sol
