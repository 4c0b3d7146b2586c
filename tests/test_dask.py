"""Scale-out on Dask (issue 19): stage-1 sites, calibrate's ensembles, held-out predictions and sensitivity chunks
on a ``LocalCluster`` of 2 worker processes give the process pool's (or the serial path's) numbers bit for bit; a
worker killed mid-run loses nothing; an interrupted client resumes from its checkpoints; an unreachable scheduler
is an error within seconds; ``--scheduler`` on the command line."""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pytest

pytest.importorskip("distributed")  # a safety net: the dev extra (and so CI) installs it

from bayes_vmimics import progress as progress_module  # noqa: E402
from bayes_vmimics.inference.emcee_sampler import run_ensembles  # noqa: E402
from bayes_vmimics.inference.stage1 import check_stage1_branches, site_posterior_samples  # noqa: E402
from bayes_vmimics.likelihood import CalibrationProblem  # noqa: E402
from bayes_vmimics.parameters import PARAMETER_NAMES  # noqa: E402
from bayes_vmimics.scheduler import DaskScheduler, as_scheduler, import_distributed, parse_scheduler  # noqa: E402
from bayes_vmimics.synthetic import make_synthetic_sites  # noqa: E402

pytestmark = pytest.mark.integration

NPAR = len(PARAMETER_NAMES)
N_SITES = 3
#: stage-1 settings of the tiny sites (about 0.3 s a site)
STAGE1 = dict(n_walkers=14, n_steps=40, thin=2, seed=7, z_start=np.zeros((N_SITES, NPAR)))
#: longer sites (about 2 s each), so that a worker can be killed while it runs one
LONG = {**STAGE1, "n_steps": 240, "thin": 8}


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes (one thread each), shared by the module."""
    with DaskScheduler.local(2) as sched:
        yield sched


def _same_samples(a, b) -> None:
    assert a.site_ids == b.site_ids
    for name in ("z", "log_prob", "acceptance"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.tau, b.tau, equal_nan=True)


def _ready(sched: DaskScheduler, n: int = 2) -> None:
    sched.client.wait_for_workers(n, timeout=120)


class _Bar:
    """Stands in for the progress bar of stage 1: calls ``on_update(k)`` after the k-th finished site."""

    def __init__(self, on_update):
        self.on_update, self.k = on_update, 0

    def update(self, n=1):
        self.k += n
        self.on_update(self.k)

    def close(self):
        pass


# ------------------------------------------------------------------------------------------ 1: stage 1
def test_stage1_on_dask_equals_the_process_pool(cluster, three_site_problem):
    _ready(cluster)
    serial = site_posterior_samples(three_site_problem, **STAGE1)
    pooled = site_posterior_samples(three_site_problem, n_processes=2, **STAGE1)
    on_dask = site_posterior_samples(three_site_problem, scheduler=cluster, **STAGE1)
    _same_samples(pooled, serial)
    _same_samples(on_dask, serial)
    # a user's own dask.distributed.Client is accepted the same way
    _same_samples(site_posterior_samples(three_site_problem, scheduler=cluster.client, **STAGE1), serial)
    # the warm-start check (cold re-solves of stored draws), one task per site
    a = check_stage1_branches(three_site_problem, serial, n_check=4, seed=1)
    b = check_stage1_branches(three_site_problem, serial, n_check=4, seed=1, scheduler=cluster)
    assert a.identical(b)


# ------------------------------------------------------------------------------------------ 2: ensembles
@pytest.mark.parametrize("warm_start", [False, True])
def test_calibrate_ensembles_on_dask_equal_the_serial_path(cluster, tmp_path, warm_start):
    _ready(cluster)
    sites = make_synthetic_sites(2, rng=np.random.default_rng(4))
    prob = CalibrationProblem(sites, use_c14=False, warm_start=warm_start)
    kw = dict(n_ensembles=3, seed=5, n_walkers=14, n_steps=24)
    serial = run_ensembles(prob, prob.prior, backend_path=tmp_path / "serial.h5", **kw)
    on_dask = run_ensembles(prob, prob.prior, backend_path=tmp_path / "dask.h5", scheduler=cluster, **kw)
    # half the steps on the serial path, the rest as Dask tasks continued from the file; it equals the serial path
    # resumed the same way (with warm starts a resumed chain starts again with no warm-start states, so it equals
    # an uninterrupted one only with cold solves: module docstring of emcee_sampler)
    for name in ("mixed.h5", "resumed.h5"):
        run_ensembles(prob, prob.prior, backend_path=tmp_path / name, **{**kw, "n_steps": 12})
    mixed = run_ensembles(prob, prob.prior, backend_path=tmp_path / "mixed.h5", scheduler=cluster, **kw)
    resumed = run_ensembles(prob, prob.prior, backend_path=tmp_path / "resumed.h5", **kw)
    pairs = [(serial, on_dask), (resumed, mixed)] + ([] if warm_start else [(serial, mixed)])
    for reference, runs in pairs:
        for a, b in zip(reference, runs, strict=True):
            assert np.array_equal(a.chain, b.chain) and np.array_equal(a.log_prob, b.log_prob)
            assert np.array_equal(a.acceptance_fraction, b.acceptance_fraction)
            assert a.n_evaluations_total == b.n_evaluations_total
    assert [r.resumed_at for r in mixed] == [[0, 12]] * 3
    # the client wrote the chains: read back by the serial path, nothing left to run
    again = run_ensembles(prob, prob.prior, backend_path=tmp_path / "dask.h5", **kw)
    assert all(np.array_equal(a.chain, b.chain) for a, b in zip(serial, again, strict=True))
    n0 = cluster.n_submitted
    run_ensembles(prob, prob.prior, backend_path=tmp_path / "dask.h5", scheduler=cluster, **kw)
    assert cluster.n_submitted == n0  # finished ensembles are not run again


# ------------------------------------------------------------------------------------------ 3: a worker dies
def test_a_worker_killed_mid_run_changes_nothing(cluster, three_site_problem, tmp_path, monkeypatch):
    _ready(cluster)
    reference = site_posterior_samples(three_site_problem, **LONG)
    killed = []

    def kill_a_busy_worker(k):
        if k != 1:
            return
        busy = [w for w, keys in cluster.client.processing().items() if keys]
        assert busy, "no task running when the first site came back"
        pid = cluster.client.run(os.getpid, workers=[busy[0]])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    monkeypatch.setattr(progress_module, "progress_bar", lambda **kw: _Bar(kill_a_busy_worker))
    result = site_posterior_samples(three_site_problem, scheduler=cluster, checkpoint_dir=tmp_path, **LONG)
    assert len(killed) == 1
    _same_samples(result, reference)
    assert len(list(tmp_path.glob("*.npz"))) == N_SITES  # no site lost
    _ready(cluster)  # the nanny restarted the killed worker
    assert killed[0] not in cluster.client.run(os.getpid).values()


# ------------------------------------------------------------------------------------------ 4: the client dies
def test_an_interrupted_client_resumes_without_rerunning_finished_sites(
    cluster, three_site_problem, tmp_path, monkeypatch
):
    _ready(cluster)
    reference = site_posterior_samples(three_site_problem, **STAGE1)

    def interrupt(k):
        raise KeyboardInterrupt  # Ctrl-C right after the first site was checkpointed

    with monkeypatch.context() as m:
        m.setattr(progress_module, "progress_bar", lambda **kw: _Bar(interrupt))
        with pytest.raises(KeyboardInterrupt):
            site_posterior_samples(three_site_problem, scheduler=cluster, checkpoint_dir=tmp_path, **STAGE1)
    first = list(tmp_path.glob("*.npz"))
    assert len(first) == 1
    stamp = first[0].stat().st_mtime_ns
    # the tasks still pending were cancelled: the cluster goes idle
    deadline = time.monotonic() + 20
    while any(cluster.client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(cluster.client.processing().values())
    n0 = cluster.n_submitted
    resumed = site_posterior_samples(three_site_problem, scheduler=cluster, checkpoint_dir=tmp_path, **STAGE1)
    assert cluster.n_submitted - n0 == N_SITES - 1  # only the unfinished sites ran
    assert first[0].stat().st_mtime_ns == stamp
    assert len(list(tmp_path.glob("*.npz"))) == N_SITES
    _same_samples(resumed, reference)


# ------------------------------------------------------------------------------------------ 5: no scheduler there
def test_an_unreachable_scheduler_is_a_clear_error_within_seconds(tmp_path, capsys):
    from bayes_vmimics.cli import main

    t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match=r"tcp://127\.0\.0\.1:1 within 2 s"):
        DaskScheduler.connect("tcp://127.0.0.1:1", timeout=2)
    assert time.perf_counter() - t0 < 10
    t0 = time.perf_counter()
    args = ["hierarchical", "--synthetic", "--quick", "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "no Dask scheduler answered at tcp://127.0.0.1:1" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 15
    assert not list(tmp_path.iterdir())  # nothing written


def test_scheduler_values_and_errors(cluster, capsys, monkeypatch):
    from bayes_vmimics.cli import main

    assert parse_scheduler(" dask ") == "dask"
    assert parse_scheduler("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    for bad in ("pool", "tcp://host", "tcp://host:0", "http://host:8786"):
        with pytest.raises(ValueError, match="scheduler must be 'processes', 'dask'"):
            parse_scheduler(bad)
    with pytest.raises(SystemExit):
        main(["hierarchical", "--synthetic", "--scheduler", "pool"])
    assert "scheduler must be" in capsys.readouterr().err
    with pytest.raises(TypeError, match="DaskScheduler or a dask.distributed.Client"):
        as_scheduler(4)
    # an existing cluster by its address (the version check passes)
    with DaskScheduler.connect(cluster.address) as remote:
        assert remote.n_threads() == 2 and "2 worker(s)" in remote.describe()
    assert cluster.n_threads() == 2  # closing the second client left the cluster alone
    # without Dask installed: the message says what to install
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "bayes_vmimics\[dask\]"'):
        import_distributed()
    assert main(["hierarchical", "--synthetic", "--scheduler", "dask"]) == 2
    assert 'pip install "bayes_vmimics[dask]"' in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ predictions, sensitivity
def test_held_out_prediction_and_sensitivity_chunks_on_dask_are_unchanged(cluster, three_site_problem):
    import xarray as xr

    from bayes_vmimics import sensitivity as sa
    from bayes_vmimics.predictive import add_shared_held_out_predictive

    _ready(cluster)
    thetas = three_site_problem.prior.sample(np.random.default_rng(2), 6).reshape(2, 3, NPAR)
    kw = dict(kind="pooled posterior", max_draws=6, seed=1)
    here = add_shared_held_out_predictive(three_site_problem, thetas, ["synthetic"] * N_SITES, **kw)
    n0 = cluster.n_submitted
    there = add_shared_held_out_predictive(three_site_problem, thetas, ["synthetic"] * N_SITES, scheduler=cluster, **kw)
    assert cluster.n_submitted - n0 == N_SITES * 3  # blocks of 2 draws per site: ≥ 4 tasks per worker thread
    for group in ("posterior", "log_likelihood", "posterior_predictive"):
        xr.testing.assert_identical(here[group].to_dataset(), there[group].to_dataset())
    ev = sa.SiteEvaluator(three_site_problem, 0)
    X = sa.morris_design(PARAMETER_NAMES, sa.default_bounds(PARAMETER_NAMES), n_trajectories=2, seed=3)
    y_here = sa.evaluate_design(ev, X, progress=False, chunk_size=4)
    n0 = cluster.n_submitted
    y_there = sa.evaluate_design(ev, X, map_fn=sa.dask_map(cluster), progress=False, chunk_size=4)
    assert cluster.n_submitted - n0 == -(-len(X) // 4)  # chunks of 4 rows as tasks
    assert np.array_equal(y_here, y_there, equal_nan=True)


# ------------------------------------------------------------------------------------------ 6: the command line
def test_hierarchical_cli_on_dask_equals_the_process_pool_and_resumes_across_schedulers(tmp_path, capsys, monkeypatch):
    import xarray as xr

    from bayes_vmimics.cli import main

    monkeypatch.delenv("BAYES_VMIMICS_DATA", raising=False)
    base = ["hierarchical", "--synthetic", "--quick", "--max-sites", "2", "--n-steps", "40", "--n-walkers", "14"]
    base += ["--n-processes", "2"]
    base += ["--draws", "200", "--chains", "2", "--refine", "never", "--predictive-draws", "4", "--no-progress"]
    base += ["--seed", "4"]
    assert main([*base, "--scheduler", "processes", "--out", str(tmp_path / "pool")]) == 0
    assert main([*base, "--scheduler", "dask", "--out", str(tmp_path / "dask")]) == 0
    out = capsys.readouterr().out
    assert "scheduler: local Dask cluster" in out and "one Dask task per site" in out
    pool, dask = tmp_path / "pool" / "results.nc", tmp_path / "dask" / "results.nc"
    with xr.open_datatree(pool) as a, xr.open_datatree(dask) as b:
        for group in ("posterior", "stage1", "posterior_predictive"):
            xr.testing.assert_identical(a[group].to_dataset().load(), b[group].to_dataset().load())
    for f in (tmp_path / "pool" / "stage1").glob("*.npz"):
        with np.load(f) as x, np.load(tmp_path / "dask" / "stage1" / f.name) as y:
            assert all(np.array_equal(x[k], y[k]) for k in x.files)
    # --scheduler is not part of the run's fingerprint: the pool's folder resumes on Dask from its checkpoints
    stamps = {f.name: f.stat().st_mtime_ns for f in (tmp_path / "pool" / "stage1").glob("*.npz")}
    pool.unlink()
    assert main([*base, "--scheduler", "dask", "--out", str(tmp_path / "pool")]) == 0
    assert {f.name: f.stat().st_mtime_ns for f in (tmp_path / "pool" / "stage1").glob("*.npz")} == stamps
    with xr.open_datatree(pool) as a, xr.open_datatree(dask) as b:
        xr.testing.assert_identical(a["posterior"].to_dataset().load(), b["posterior"].to_dataset().load())
