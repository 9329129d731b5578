"""docs/porting.md's table of names stays true: every minitensor name it lists exists.

Each row's right-hand cell is a dotted prefix (``minitensor.nn``, ``Tensor``) followed by
names separated by spaces; ``same`` repeats the left cell with ``torch`` read as
``minitensor``. When torch is installed, each left-hand name is checked to exist in PyTorch
too, so the table cannot promise a name PyTorch does not have.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import minitensor as mt

PAGE = Path(__file__).resolve().parents[2] / "docs" / "porting.md"


def table_rows() -> list[tuple[str, str]]:
    text = PAGE.read_text()
    section = text.split("## The names added for ported code", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            rows.append((cells[0], cells[1]))
    return rows


def names_in(cell: str) -> list[str]:
    """'`minitensor.nn.Softmax LogSoftmax`, `x.device`' -> dotted names, prefix repeated."""
    names = []
    for chunk in re.findall(r"`([^`]+)`", cell):
        words = chunk.replace(",", " ").split()
        head = words[0]
        if "=" in head or "(" in head:
            continue  # a usage such as device= or x.to("cpu"): checked by the API tests
        prefix = head.rsplit(".", 1)[0] if "." in head else ""
        names.append(head)
        names.extend(f"{prefix}.{w}" if prefix else w for w in words[1:])
    return names


def resolve(dotted: str, library: str):
    """Find a dotted name: 'Tensor.x' / 'x.y' mean a Tensor attribute, else module attributes."""
    first, *rest = dotted.split(".")
    if first in ("Tensor", "x"):
        obj = mt.Tensor if library == "minitensor" else importlib.import_module("torch").Tensor
        if first == "x":
            obj = mt.zeros(1) if library == "minitensor" else importlib.import_module("torch").zeros(1)
    elif first in ("nn", "F", "optim"):
        base = {"nn": "nn", "F": "nn.functional", "optim": "optim"}[first]
        obj = importlib.import_module(f"{library}.{base}")
    else:
        obj = importlib.import_module(library if first in ("torch", "minitensor") else first)
    for i, part in enumerate(rest):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            # a subpackage such as minitensor.utils.data, imported on demand as in torch
            module_name = f"{obj.__name__}.{part}" if hasattr(obj, "__name__") else None
            if module_name is None:
                raise
            obj = importlib.import_module(module_name)
    return obj


ROWS = table_rows()


def test_the_table_is_not_empty():
    assert len(ROWS) >= 15


@pytest.mark.parametrize("left, right", ROWS, ids=[r[0][:40] for r in ROWS])
def test_every_minitensor_name_exists(left, right):
    cell = left.replace("torch", "minitensor") if right == "same" else right
    missing = []
    for name in names_in(cell):
        try:
            resolve(name, "minitensor")
        except (AttributeError, ImportError):
            missing.append(name)
    assert not missing, f"docs/porting.md lists names minitensor lacks: {missing}"


@pytest.mark.parametrize("left, right", ROWS, ids=[r[0][:40] for r in ROWS])
def test_every_pytorch_name_exists(left, right):
    pytest.importorskip("torch")
    missing = []
    for name in names_in(left):
        try:
            resolve(name, "torch")
        except (AttributeError, ImportError):
            missing.append(name)
    assert not missing, f"docs/porting.md lists names PyTorch lacks: {missing}"
