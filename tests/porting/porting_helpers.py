"""Run one piece of PyTorch-style source on PyTorch and on minitensor, with only the imports changed.

The model code in these tests is written once, as text, in PyTorch's spelling (``torch``,
``nn``, ``F``). ``namespace("torch")`` executes it with PyTorch's modules bound to those
names; ``namespace("minitensor")`` binds minitensor's instead. Nothing else changes: that
is the promise of the "Porting from PyTorch" page, and these tests hold it.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

# How a user ports a file: these three lines and nothing else.
TORCH_IMPORTS = ("import torch\n"
                 "import torch.nn as nn\n"
                 "import torch.nn.functional as F\n")
MINITENSOR_IMPORTS = ("import minitensor as torch\n"
                      "import minitensor.nn as nn\n"
                      "import minitensor.nn.functional as F\n")


def port(source: str) -> str:
    """Change a PyTorch file's imports to minitensor's, and nothing else."""
    replacements = [("import torch.nn.functional as F", "import minitensor.nn.functional as F"),
                    ("import torch.nn as nn", "import minitensor.nn as nn"),
                    ("import torch\n", "import minitensor as torch\n")]
    for old, new in replacements:
        source = source.replace(old, new)
    return source


def namespace(library: str, source: str, filename: str = "<model code>") -> dict:
    """Execute ``source`` (PyTorch spelling) with ``library``'s modules bound to torch/nn/F."""
    if library == "torch":
        pytest.importorskip("torch")
        header = TORCH_IMPORTS
    else:
        header = MINITENSOR_IMPORTS
    ns: dict = {"math": math, "__name__": f"ported_{library}"}
    code = compile(header + source, filename, "exec")
    exec(code, ns)  # noqa: S102 - test code written in this repository
    return ns


def to_numpy(t) -> np.ndarray:
    """A tensor of either library as a float64/int NumPy array."""
    if hasattr(t, "detach") and hasattr(t.detach(), "cpu") and type(t).__module__.startswith("torch"):
        return t.detach().cpu().numpy()
    return np.asarray(t.detach().data if hasattr(t, "detach") else t)


def copy_weights(torch_model, mt_model) -> None:
    """Load the PyTorch model's state dict into the minitensor model (NumPy arrays, as documented)."""
    state = {name: value.detach().numpy().copy() for name, value in torch_model.state_dict().items()}
    mt_model.load_state_dict(state)


def assert_same_gradients(torch_model, mt_model, rtol=1e-10, atol=1e-12) -> None:
    """Every parameter's gradient agrees, by name; a parameter with no gradient on one side fails."""
    torch_params = dict(torch_model.named_parameters())
    mt_params = dict(mt_model.named_parameters())
    assert sorted(torch_params) == sorted(mt_params)
    for name, p in torch_params.items():
        q = mt_params[name]
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            np.testing.assert_allclose(q.grad.data, p.grad.numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"gradient of {name}")
