"""The notebooks in notebooks/ run top to bottom without an error.

Each notebook is executed with nbclient in a temporary directory (a copy, so the
committed outputs are never touched), with the repository on the kernel's PYTHONPATH so
it imports this checkout of minitensor/transformer. Skips cleanly when the Jupyter
tooling (nbformat, nbclient, ipykernel) is not installed: ``pip install -e ".[dev]"``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 300  # seconds, per cell


def run_notebook(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Execute a copy of notebooks/<name> in tmp_path; fail naming the first bad cell."""
    copy = tmp_path / name
    shutil.copy(NOTEBOOKS / name, copy)
    nb = nbformat.read(copy, as_version=4)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{name}: a cell raised\n{err}")
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, f"{name}: error outputs {[e['ename'] + ': ' + e['evalue'] for e in errors]}"


def test_every_notebook_is_tested():
    tested = {"01_autograd_from_scratch.ipynb", "02_attention_step_by_step.ipynb",
              "03_train_a_tiny_transformer.ipynb", "04_where_the_time_goes.ipynb",
              "05_the_graph_and_backward.ipynb"}
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == tested


def test_01_autograd_from_scratch(tmp_path, monkeypatch):
    run_notebook("01_autograd_from_scratch.ipynb", tmp_path, monkeypatch)


def test_02_attention_step_by_step(tmp_path, monkeypatch):
    run_notebook("02_attention_step_by_step.ipynb", tmp_path, monkeypatch)


@pytest.mark.slow
def test_03_train_a_tiny_transformer(tmp_path, monkeypatch):
    run_notebook("03_train_a_tiny_transformer.ipynb", tmp_path, monkeypatch)


def test_04_where_the_time_goes(tmp_path, monkeypatch):
    run_notebook("04_where_the_time_goes.ipynb", tmp_path, monkeypatch)


def test_05_the_graph_and_backward(tmp_path, monkeypatch):
    run_notebook("05_the_graph_and_backward.ipynb", tmp_path, monkeypatch)
