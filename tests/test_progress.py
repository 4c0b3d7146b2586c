"""Progress bars: tqdm's own on a terminal, sparse redraws in log files."""

import io
import time

from bayes_vmimics.progress import LOG_INTERVAL_S, bar_kwargs, progress_bar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_kwargs_are_tqdm_defaults_on_a_terminal_and_sparse_in_a_log():
    assert bar_kwargs(_Terminal()) == {}
    assert bar_kwargs(io.StringIO()) == {"mininterval": LOG_INTERVAL_S, "ascii": True}


def _redraws(stream, n=30, pause_s=0.01):
    for _ in progress_bar(range(n), file=stream, desc="sites"):
        time.sleep(pause_s)  # 0.3 s in all: three times tqdm's default least interval between redraws
    return [line for line in stream.getvalue().replace("\r", "\n").splitlines() if line.strip()]


def test_a_bar_written_to_a_log_file_draws_only_its_first_and_last_state():
    log = _redraws(io.StringIO())
    assert len(log) == 2, log
    assert log[0].startswith("sites:   0%") and "30/30" in log[-1]
    assert len(_redraws(_Terminal())) > 2  # on a terminal, tqdm's own redraws
