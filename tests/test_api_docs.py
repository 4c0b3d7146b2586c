"""The documentation builds: the API reference from the docstrings (one page per public module, every module
imported cleanly), and every relative link of the README and of ``docs/*.md`` leads to a file and heading that exist.

This file is also the build command (docs/index.md), so that the reference users build is the one tested::

    python tests/test_api_docs.py docs/api        # then open docs/api/index.html (docs/api/ is not committed)

``python -m pdoc bayes_vmimics`` alone would give one page: pdoc follows a package's ``__all__``, which names the
package's public objects, not its submodules. :func:`api_modules` lists them instead.
"""

from __future__ import annotations

import os
import pkgutil
import re
import sys
import warnings
from pathlib import Path

import pdoc
import pdoc.render
import pytest

import bayes_vmimics

#: modules whose pages the reference must have: the package, the model core, the likelihood, the samplers, the I/O
MAIN_MODULES = (
    "bayes_vmimics",
    "bayes_vmimics.model",
    "bayes_vmimics.steady_state",
    "bayes_vmimics.radiocarbon",
    "bayes_vmimics.errors",
    "bayes_vmimics.likelihood",
    "bayes_vmimics.site_observations",
    "bayes_vmimics.site_evaluation",
    "bayes_vmimics.gradients",
    "bayes_vmimics.inference",
    "bayes_vmimics.inference.emcee_sampler",
    "bayes_vmimics.inference.two_stage",
    "bayes_vmimics.inference.regression",
    "bayes_vmimics.inference.pymc_models",
    "bayes_vmimics.io",
    "bayes_vmimics.io.sites",
    "bayes_vmimics.covariates",
    "bayes_vmimics.crossvalidation",
    "bayes_vmimics.scoring",
    "bayes_vmimics.results",
    "bayes_vmimics.predictive",
    "bayes_vmimics.convergence",
)

#: pdoc's warning when a rendered annotation cannot be resolved: a docstring/annotation problem, not an import one
_ANNOTATION = "Error parsing type annotation"
#: the module's docstring as pdoc renders it at the top of the module's page
_MODULE_DOCSTRING = re.compile(r'<section class="module-info">.*?<div class="docstring">(.*?)</div>', re.DOTALL)


def api_modules() -> list[str]:
    """Every public module of the package (no ``_private`` ones), the package first."""
    found = pkgutil.walk_packages(bayes_vmimics.__path__, f"{bayes_vmimics.__name__}.")
    return [bayes_vmimics.__name__] + sorted(
        m.name for m in found if not any(part.startswith("_") for part in m.name.split("."))
    )


def build_api_docs(out: Path) -> list[warnings.WarningMessage]:
    """Write the HTML reference of :func:`api_modules` to ``out`` and return every warning the build raised."""
    pdoc.render.configure(docformat="google")
    # pdoc stops subprocesses at import and warns; PyTensor (imported by the PyMC modules) asks g++ for its version
    previous = os.environ.get("PDOC_ALLOW_EXEC")
    os.environ["PDOC_ALLOW_EXEC"] = "1"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pdoc.pdoc(*api_modules(), output_directory=Path(out))
    finally:
        if previous is None:
            del os.environ["PDOC_ALLOW_EXEC"]
        else:
            os.environ["PDOC_ALLOW_EXEC"] = previous
    return list(caught)


REPO = Path(__file__).resolve().parents[1]
#: the pages whose relative links must resolve
LINKED_PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_FENCED = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors of the headings of a markdown page (lower case, punctuation dropped, spaces as hyphens)."""
    text = _FENCED.sub("", page.read_text("utf-8"))
    anchors = set()
    for line in text.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def broken_links(pages: list[Path] = LINKED_PAGES) -> list[str]:
    """Every relative link of ``pages`` whose file, or whose heading in a markdown file, does not exist."""
    broken = []
    for page in pages:
        for target in _LINK.findall(_FENCED.sub("", page.read_text("utf-8"))):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(REPO)}: {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest):
                broken.append(f"{where} (no such heading)")
    return broken


def test_relative_links_of_readme_and_docs_resolve():
    assert len(LINKED_PAGES) > 2
    broken = broken_links()
    assert not broken, "broken links:\n" + "\n".join(broken)


def _page(root: Path, module: str) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".html")


@pytest.fixture(scope="module")
def api_build(tmp_path_factory) -> tuple[Path, list[warnings.WarningMessage]]:
    out = tmp_path_factory.mktemp("api")
    return out, build_api_docs(out)


def test_every_module_imports_without_error_or_warning(api_build):
    _, caught = api_build
    problems = [f"{w.category.__name__}: {w.message}" for w in caught if _ANNOTATION not in str(w.message)]
    assert not problems, "the API build raised:\n" + "\n".join(problems)


def test_every_public_module_has_a_page(api_build):
    root, _ = api_build
    assert (root / "index.html").is_file()
    missing = [m for m in api_modules() if not _page(root, m).is_file()]
    assert not missing, f"no page for {missing}"


@pytest.mark.parametrize("module", MAIN_MODULES)
def test_main_module_page_shows_its_docstring(api_build, module):
    root, _ = api_build
    page = _page(root, module)
    assert page.is_file(), f"no page for {module}"
    doc = sys.modules[module].__doc__
    assert doc and doc.strip(), f"{module} has no module docstring"
    shown = _MODULE_DOCSTRING.search(page.read_text("utf-8"))
    assert shown, f"the page of {module} shows no module docstring"
    words = re.findall(r"[A-Za-z]{5,}", doc.strip().splitlines()[0])
    assert words and all(w in shown.group(1) for w in words), f"the page of {module} lacks its docstring's first line"


def test_every_annotation_renders(api_build):
    _, caught = api_build
    problems = sorted({str(w.message) for w in caught if _ANNOTATION in str(w.message)})
    assert not problems, "\n".join(problems)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/api")
    for w in build_api_docs(target):
        print(f"warning: {w.category.__name__}: {w.message}", file=sys.stderr)
    print(f"API reference of {len(api_modules())} modules: {target / 'index.html'}")
