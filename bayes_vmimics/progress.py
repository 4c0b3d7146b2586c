"""Progress bars that stay readable in log files.

On a terminal (or in a notebook) the bars are tqdm's own. When standard error is not a terminal (a batch job's
log, ``nohup``, CI), tqdm would still redraw with a carriage return up to ten times a second, which fills a log
file with thousands of partial lines; there the bars redraw at most every :data:`LOG_INTERVAL_S` seconds.
"""

from __future__ import annotations

import sys

#: Least time between two redraws of a bar when standard error is not a terminal (s).
LOG_INTERVAL_S = 30.0


def bar_kwargs(stream=None) -> dict:
    """Keyword arguments for a tqdm bar (also emcee's ``progress_kwargs``): none on a terminal or in a notebook;
    otherwise ``mininterval`` = :data:`LOG_INTERVAL_S` (s) and ``ascii`` bars.

    Args:
        stream: the stream the bar writes to (default ``sys.stderr``) (–).
    """
    from tqdm.auto import tqdm as auto_tqdm

    stream = sys.stderr if stream is None else stream
    if any(c.__module__ == "tqdm.notebook" for c in auto_tqdm.__mro__):  # a widget: no carriage returns
        return {}
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        return {}
    return {"mininterval": LOG_INTERVAL_S, "ascii": True}


def progress_bar(iterable=None, **kwargs):
    """``tqdm.auto.tqdm(iterable, **kwargs)`` with :func:`bar_kwargs` as defaults (``kwargs`` win)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, **{**bar_kwargs(kwargs.get("file")), **kwargs})
