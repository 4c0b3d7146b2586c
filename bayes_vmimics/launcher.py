"""Entry point of the ``bayes-vmimics`` command.

The command's own module (:mod:`bayes_vmimics.cli`) loads NumPy and the CLI helpers, which takes a few tenths of
a second. A Ctrl-C in that time would surface as a traceback from deep inside an import (or, inside NumPy's
C extensions, as an unrelated ``ImportError``), so this module imports only :mod:`signal`, :mod:`sys` and
:mod:`bayes_vmimics.interrupt` (itself standard library only), holds a
Ctrl-C back until the import is done, and then ends the command like any other interrupt (exit 130, one line).
What it cannot cover is the Python interpreter's own start-up (its ``site`` module), the first ~0.1 s.
"""

from __future__ import annotations

import signal
import sys

from .interrupt import EXIT_INTERRUPTED


def main() -> int:
    """Run ``bayes-vmimics`` (:func:`bayes_vmimics.cli.main`); 130 if stopped by Ctrl-C while it loads."""
    hits: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:  # a shell that started us in the background keeps Ctrl-C ignored
        signal.signal(signal.SIGINT, lambda signum, frame: hits.append(signum))
    try:
        from .cli import main as run
    finally:
        signal.signal(signal.SIGINT, previous)
    if hits:
        print("\nbayes-vmimics: interrupted (Ctrl-C) before it started", file=sys.stderr)
        return EXIT_INTERRUPTED
    return run()


if __name__ == "__main__":
    sys.exit(main())
