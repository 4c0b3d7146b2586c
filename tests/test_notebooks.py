"""The analysis notebooks (analyses/*.ipynb): they execute on tiny saved results and write their figures, they
are committed without outputs, and each is paired with its jupytext script (same code cells)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
jupytext = pytest.importorskip("jupytext")

ANALYSES = Path(__file__).resolve().parents[1] / "analyses"

#: notebook → (tiny run it loads, figures it must write into the run folder)
NOTEBOOKS = {
    "10_inspect_results.ipynb": (
        "calibrate",
        ["posterior_marginals.png", "posterior_marginals_arviz.png", "profiles.png", "xv_xk.png", "pair.png"],
    ),
    "11_hierarchical_population.ipynb": (
        "hierarchical",
        ["population.png", "population_marginals.png", "xv_xk.png", "pair_population.png", "profiles.png"],
    ),
    "12_validation.ipynb": (
        "validation",
        ["held_out_profiles.png", "held_out_pit.png", "held_out_parameters.png"],
    ),
    "13_sensitivity.ipynb": (
        "sensitivity",
        ["morris_importance_nb.png", "sobol_indices_nb.png", "fig7_profiles_nb.png", "fig8_response_nb.png"],
    ),
}


def test_every_notebook_is_listed():
    assert sorted(p.name for p in ANALYSES.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_on_saved_results(name, tiny_runs, monkeypatch):
    run_key, figures = NOTEBOOKS[name]
    run = tiny_runs[run_key]
    for f in figures:
        (run / f).unlink(missing_ok=True)
    monkeypatch.setenv("BAYES_VMIMICS_RUN", str(run))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(ANALYSES / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": run}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    missing = [f for f in figures if not (run / f).is_file() or (run / f).stat().st_size < 5000]
    assert not missing, f"{name} did not write {missing} into {run}"


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_is_stored_without_outputs(name):
    raw = json.loads((ANALYSES / name).read_text(encoding="utf-8"))
    for cell in raw["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs", []) == [] and cell.get("execution_count") is None, (
                f"{name} holds outputs: rebuild it from its script (jupytext --to ipynb analyses/{name[:-6]}.py)"
            )


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_and_its_script_agree(name):
    """The .ipynb and its paired py:percent script hold the same cells (`jupytext --sync` after editing)."""
    nb = nbformat.read(ANALYSES / name, as_version=4)
    script = jupytext.read(ANALYSES / name.replace(".ipynb", ".py"))

    def cells(book):
        return [(c.cell_type, c.source.strip()) for c in book.cells]

    assert cells(nb) == cells(script), f"{name} and its .py differ: run jupytext --sync analyses/{name}"


def test_notebooks_read_the_run_from_the_environment():
    for name in NOTEBOOKS:
        assert "BAYES_VMIMICS_RUN" in (ANALYSES / name).read_text(encoding="utf-8")
