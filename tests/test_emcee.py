"""emcee runner: exact resume, pool = serial, toy target, convergence report; slow parameter recovery."""

import numpy as np
import pytest

from bayes_vmimics.grid import DepthGrid
from bayes_vmimics.inference import ensemble_convergence, integrated_time, run_ensemble, run_ensembles
from bayes_vmimics.likelihood import CalibrationProblem
from bayes_vmimics.parameters import PARAMETER_NAMES
from bayes_vmimics.priors import BoxPrior
from bayes_vmimics.synthetic import make_synthetic_sites, true_parameters

GRID = DepthGrid.uniform(6, 10.0)


@pytest.fixture(scope="module")
def one_site_problem():
    sites = make_synthetic_sites(1, rng=np.random.default_rng(5), interval_edges_cm=(0, 10, 30, 60), grid=GRID)
    return CalibrationProblem(sites, grid=GRID, warm_start=False)


class Toy:
    """Gaussian toy target inside the prior box (picklable, with a ``stats`` counter like the problem)."""

    def __init__(self, prior):
        self.prior = prior
        self.mu = 0.5 * (prior.lower + prior.upper)
        self.sd = 0.05 * (prior.upper - prior.lower)

    def __call__(self, theta):
        if not self.prior.in_support(theta):
            return -np.inf
        return float(-0.5 * np.sum(((theta - self.mu) / self.sd) ** 2))


@pytest.mark.parametrize("move", ["de", "stretch"])
def test_resume_equals_uninterrupted_run(one_site_problem, tmp_path, move):
    kw = dict(n_walkers=14, seed=11, move=move)
    full = run_ensemble(one_site_problem, one_site_problem.prior, n_steps=40, backend_path=tmp_path / "a.h5", **kw)
    first = run_ensemble(one_site_problem, one_site_problem.prior, n_steps=20, backend_path=tmp_path / "b.h5", **kw)
    assert first.chain.shape == (20, 14, 7)
    resumed = run_ensemble(one_site_problem, one_site_problem.prior, n_steps=40, backend_path=tmp_path / "b.h5", **kw)
    assert resumed.n_resumed_from == 20
    np.testing.assert_array_equal(full.chain, resumed.chain)
    np.testing.assert_array_equal(full.log_prob, resumed.log_prob)
    # a fresh start discards the stored chain
    again = run_ensemble(
        one_site_problem, one_site_problem.prior, n_steps=40, backend_path=tmp_path / "b.h5", resume=False, **kw
    )
    assert again.n_resumed_from == 0
    np.testing.assert_array_equal(full.chain, again.chain)


def test_resume_records_each_ensembles_steps_and_all_evaluations(one_site_problem, tmp_path):
    path = tmp_path / "c.h5"
    kw = dict(n_walkers=14, seed=2, backend_path=path)
    first = run_ensemble(one_site_problem, one_site_problem.prior, n_steps=4, name="ensemble_0", **kw)
    assert first.resumed_at == [0] and first.n_evaluations_total == first.stats.n_evaluations > 0
    # ensemble 0 stopped after 4 steps, ensemble 1 never began: each is resumed from its own count
    runs = run_ensembles(one_site_problem, one_site_problem.prior, n_ensembles=2, n_steps=6, **{**kw, "seed": 2})
    assert [r.n_resumed_from for r in runs] == [4, 0]
    assert [r.resumed_at for r in runs] == [[0, 4], [0]]
    assert runs[0].n_evaluations_total == first.stats.n_evaluations + runs[0].stats.n_evaluations
    assert runs[1].n_evaluations_total == runs[1].stats.n_evaluations
    # a fresh start forgets the earlier invocations
    again = run_ensemble(one_site_problem, one_site_problem.prior, n_steps=4, name="ensemble_0", resume=False, **kw)
    assert again.resumed_at == [0] and again.n_evaluations_total == again.stats.n_evaluations


def test_a_damaged_chain_file_is_named(one_site_problem, tmp_path):
    from bayes_vmimics.inference.emcee_sampler import check_backend

    path = tmp_path / "c.h5"
    run_ensemble(one_site_problem, one_site_problem.prior, n_walkers=14, n_steps=3, seed=2, backend_path=path)
    check_backend(path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable chain file.*--fresh"):
        check_backend(path)
    with pytest.raises(ValueError, match="c.h5 is not a readable chain file"):
        run_ensemble(one_site_problem, one_site_problem.prior, n_walkers=14, n_steps=3, seed=2, backend_path=path)


def test_integrated_time_of_a_too_short_chain_is_unknown():
    c = np.zeros((3, 4, 1))
    c[:, :, 0] = [[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]
    tau = integrated_time(c)
    assert np.isnan(tau[0]) or tau[0] > 0


def test_walkers_start_inside_prior_and_pool_equals_serial(one_site_problem):
    serial = run_ensemble(one_site_problem, one_site_problem.prior, n_walkers=14, n_steps=8, seed=3)
    pooled = run_ensemble(one_site_problem, one_site_problem.prior, n_walkers=14, n_steps=8, seed=3, n_processes=2)
    np.testing.assert_array_equal(serial.chain, pooled.chain)
    assert pooled.stats.n_evaluations == serial.stats.n_evaluations > 0
    assert np.all(serial.chain >= one_site_problem.prior.lower) and np.all(serial.chain <= one_site_problem.prior.upper)


def test_toy_target_and_ensemble_convergence():
    prior = BoxPrior()
    toy = Toy(prior)
    runs = run_ensembles(toy, prior, n_ensembles=4, seed=1, n_walkers=16, n_steps=600)
    rep = ensemble_convergence(runs, PARAMETER_NAMES, discard=200)
    assert rep["tau"].shape == (4, 7) and rep["rhat"].shape == (7,)
    assert np.all(rep["rhat"] < 1.1)
    assert 0.05 < rep["acceptance_mean"] < 0.9
    x = np.concatenate([r.chain[200:].reshape(-1, 7) for r in runs])
    np.testing.assert_allclose(x.mean(0), toy.mu, atol=0.3 * toy.sd.max())
    np.testing.assert_allclose(x.std(0), toy.sd, rtol=0.25)
    # seeds differ between ensembles
    assert not np.array_equal(runs[0].chain, runs[1].chain)


def test_integrated_time_ignores_stuck_walkers():
    rng = np.random.default_rng(0)
    c = rng.standard_normal((500, 8, 2))
    c[:, 0, :] = 1.0  # a walker that never moved
    tau = integrated_time(c)
    assert np.all(np.isfinite(tau)) and np.all(tau < 3)


@pytest.fixture
def only_when_selected(request):
    """Slow tests run only when asked for (``pytest -m slow``); the default run stays fast."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow test: run with -m slow")


@pytest.mark.slow
def test_parameter_recovery_synthetic(only_when_selected):
    """True values inside the 90 % interval for most parameters, over several seeds (synthetic twin,
    10 % noise, SOC only: a weakly identified problem, so the criterion is ≥ 4 of 7 per seed and ≥ 15 of 21
    overall)."""
    truth = true_parameters()
    total = 0
    for seed in (1, 2, 3):
        sites = make_synthetic_sites(4, truth, rng=np.random.default_rng(seed))
        pb = CalibrationProblem(sites)
        runs = run_ensembles(pb, pb.prior, n_ensembles=2, seed=seed, n_walkers=32, n_steps=1500, n_processes=2)
        x = np.concatenate([r.chain[750::5].reshape(-1, 7) for r in runs])
        lo, hi = np.quantile(x, [0.05, 0.95], axis=0)
        inside = (truth >= lo) & (truth <= hi)
        assert inside.sum() >= 4, dict(zip(PARAMETER_NAMES, zip(lo, hi, truth, strict=True), strict=True))
        total += int(inside.sum())
    assert total >= 15
