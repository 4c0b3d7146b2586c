"""The README's examples run and print what the README says.

Every fenced ```python block of :data:`README` is executed, in order, in one namespace (later blocks use the
names of earlier ones); where the next fenced block is an output block (a fence with no language, or
``text``/``output``), the printed output must equal it line by line (trailing spaces ignored). Blocks that read
the raw data folder (``load_atmosphere``, ``data_dir``) need ``$BAYES_VMIMICS_DATA`` and skip without it.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the file whose examples are tested
README = REPO / "README.md"

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
_OUTPUT_LANGS = {"", "text", "output"}
_NEEDS_DATA = ("load_atmosphere", "data_dir", "BAYES_VMIMICS_DATA")


def readme_examples(path: Path = README) -> list[tuple[str, str | None]]:
    """(code, expected output or None) of every ```python block of ``path``, in order."""
    blocks = [(m.group(1).strip().split(" ")[0], m.group(2)) for m in _FENCE.finditer(path.read_text("utf-8"))]
    out = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "python":
            continue
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        out.append((body, nxt[1] if nxt is not None and nxt[0] in _OUTPUT_LANGS else None))
    return out


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def test_readme_has_tested_examples():
    examples = readme_examples()
    assert examples, f"no ```python block in {README}"
    assert any(expected is not None for _, expected in examples), "no example is followed by its output"


@pytest.mark.parametrize("index", range(len(readme_examples())))
def test_readme_example(index, request, monkeypatch):
    examples = readme_examples()
    if any(key in code for code, _ in examples[: index + 1] for key in _NEEDS_DATA):
        monkeypatch.setenv("BAYES_VMIMICS_DATA", str(request.getfixturevalue("data_dir")))
    namespace: dict = {"__name__": "__readme__"}
    for i, (code, expected) in enumerate(examples[: index + 1]):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, f"{README.name} example {i + 1}", "exec"), namespace)  # noqa: S102
        if i == index and expected is not None:
            assert _lines(buf.getvalue()) == _lines(expected), f"example {i + 1} of {README.name} printed otherwise"
