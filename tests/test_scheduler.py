"""The local implementation of the scheduler interface (``bayes_vmimics.scheduler.LocalScheduler``): the same
results as a serial loop, in order where promised, in this process and on worker processes."""

from __future__ import annotations

import os
import signal

import pytest

from bayes_vmimics.scheduler import LocalScheduler, as_scheduler, open_executor, open_scheduler

TASKS = list(range(12))
SERIAL = [t * t + 1 for t in TASKS]


def _square_plus_one(t: int) -> int:
    return t * t + 1


def _fails_at_five(t: int) -> int:
    if t == 5:
        raise ValueError(f"task {t} cannot be done")
    return t


def _sigint_handler(_t) -> bool:
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


_STATE = {"value": None}


def _set_state(value) -> None:
    _STATE["value"] = value


def _read_state(_t):
    return _STATE["value"], os.getpid()


@pytest.mark.parametrize("n_processes", [1, 2])
def test_map_and_imap_give_the_serial_results_in_order(n_processes):
    with LocalScheduler(n_processes) as sched:
        assert sched.map(_square_plus_one, TASKS) == SERIAL
        assert list(sched.imap(_square_plus_one, iter(TASKS))) == SERIAL


@pytest.mark.parametrize("n_processes", [1, 2])
def test_as_completed_gives_every_task_once_with_its_index(n_processes):
    with LocalScheduler(n_processes) as sched:
        got = list(sched.as_completed(_square_plus_one, TASKS))
    assert sorted(i for i, _ in got) == TASKS
    assert all(r == SERIAL[i] for i, r in got)
    if n_processes == 1:
        assert [i for i, _ in got] == TASKS  # in this process: in order


@pytest.mark.parametrize("n_processes", [1, 2])
@pytest.mark.parametrize("method", ["map", "imap", "as_completed"])
def test_an_exception_in_a_task_reaches_the_parent_with_its_message(n_processes, method):
    with LocalScheduler(n_processes) as sched:
        with pytest.raises(ValueError, match="task 5 cannot be done"):
            list(getattr(sched, method)(_fails_at_five, TASKS))


def test_one_process_runs_the_tasks_here_and_more_start_workers_that_ignore_sigint():
    with LocalScheduler(1) as here:
        assert here.describe() == "this process" and here.n_threads() == 1
        assert here.map(_read_state, [0])[0][1] == os.getpid()
    with LocalScheduler(2, context="fork") as sched:
        assert sched.describe() == "2 local worker processes" and sched.n_threads() == 2
        assert all(sched.map(_sigint_handler, range(4)))
        assert all(pid != os.getpid() for _, pid in sched.map(_read_state, range(4)))
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # the parent keeps its own handler


def test_the_initializer_runs_in_every_worker():
    with LocalScheduler(2, initializer=_set_state, initargs=("ready",)) as sched:
        assert {v for v, _ in sched.map(_read_state, range(6))} == {"ready"}
    assert _STATE["value"] is None  # not in this process


def test_close_stops_the_workers_and_may_be_repeated():
    sched = LocalScheduler(2)
    assert sched.map(_square_plus_one, [3]) == [10]
    sched.close()
    sched.close()
    assert sched.describe() == "this process"


def test_open_scheduler_and_open_executor_give_a_local_scheduler():
    with open_scheduler("processes", 2) as none:
        assert none is None  # each function opens its own pool
    with open_scheduler("processes", 2, local=True) as sched:
        assert isinstance(sched, LocalScheduler) and sched.n_processes == 2
        assert as_scheduler(sched) is sched
        assert sched.map(_square_plus_one, TASKS) == SERIAL
    with open_executor(2) as ex:
        assert isinstance(ex, LocalScheduler) and list(ex.imap(_square_plus_one, TASKS)) == SERIAL
    assert ex._pool is None  # closed when the block ended
    with LocalScheduler(1) as given, open_executor(4, given) as ex:
        assert ex is given  # a given scheduler is used as it is
    with pytest.raises(TypeError, match="LocalScheduler"):
        as_scheduler(4)


def test_stage1_on_a_local_scheduler_equals_the_serial_run_bit_for_bit(three_site_problem):
    """A package function takes a LocalScheduler as ``scheduler=`` (its cluster path: one task per site) and its
    own pool (``n_processes``): both give the serial draws exactly."""
    import numpy as np

    from bayes_vmimics.inference.stage1 import site_posterior_samples
    from bayes_vmimics.parameters import PARAMETER_NAMES

    kw = dict(n_walkers=16, n_steps=40, thin=2, seed=7, z_start=np.zeros((3, len(PARAMETER_NAMES))))
    serial = site_posterior_samples(three_site_problem, **kw)
    pooled = site_posterior_samples(three_site_problem, n_processes=2, **kw)
    with LocalScheduler(2) as sched:
        given = site_posterior_samples(three_site_problem, scheduler=sched, **kw)
    for other in (pooled, given):
        assert np.array_equal(other.z, serial.z) and np.array_equal(other.log_prob, serial.log_prob)
        assert np.array_equal(other.acceptance, serial.acceptance)
