"""Matrix-product wrappers (the Functions of ``ops/linalg.py``): ``matmul`` with NumPy's
rules, ``linear`` (x @ W^T + b) and ``linear_activation`` (dropout(act(x @ W^T + b)), the
feed-forward block's first half as one op), with the shape checks that name both operands.
"""
from __future__ import annotations

import numpy as np

from .. import random as _random
from ..errors import ShapeError
from ..ops import linalg as LA
from ..tensor import Tensor, as_tensor
from ._checks import _check_float, _pair

def matmul(a, b) -> Tensor:
    """Matrix product with ``np.matmul`` rules: 1-D, 2-D and broadcast-batched."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both arguments must be at least 1-D, got shapes {a.shape} "
                         f"and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} do not align ({k_a} != {k_b})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(f"matmul: batch dimensions of shapes {a.shape} and {b.shape} cannot be "
                         f"broadcast together ({a.shape[:-2]} vs {b.shape[:-2]})") from None
    return LA.MatMul.apply(a, b)


def _check_linear(op: str, x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    """x (..., in), weight (out, in), bias (out,) | None, or a ShapeError naming ``op``."""
    if weight.ndim != 2:
        raise ShapeError(f"{op}: weight must be 2-D (out, in), got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"{op}: input of shape {x.shape} does not match weight of shape "
                         f"{weight.shape} (in_features {x.shape[-1] if x.ndim else None} != "
                         f"{weight.shape[1]})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"{op}: bias of shape {bias.shape} does not match weight of shape "
                         f"{weight.shape} (expected ({weight.shape[0]},))")


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ weight.T + bias, with x (..., in), weight (out, in), bias (out,)."""
    _check_linear("linear", x, weight, bias)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return LA.Linear.apply(*inputs)


def linear_activation(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                      activation: str = "relu", p: float = 0.0, training: bool = True) -> Tensor:
    """``dropout(act(linear(x, weight, bias)), p, training)`` as one op (``LinearActivation``).

    Args:
        x: (..., in); weight: (out, in); bias: (out,) or None.
        activation: "relu" or "gelu" (exact, erf).
        p: dropout probability after the activation; no dropout when ``training`` is False.

    Returns (..., out): the same numbers as ``F.dropout(F.relu(F.linear(x, w, b)), p)``
    (or with ``F.gelu``), and the same draw from the global generator
    (``mt.manual_seed``), in one graph node and one pass over the output.
    """
    if activation not in ("relu", "gelu"):
        raise ValueError(f"linear_activation: activation must be 'relu' or 'gelu', got {activation!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"linear_activation: dropout probability has to be between 0 and 1, "
                         f"but got {p}")
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    _check_linear("linear_activation", x, weight, bias)
    for name, t in (("input", x), ("weight", weight)):
        _check_float(f"linear_activation ({name})", t)
    p = float(p) if training else 0.0
    seed = _random.next_seed() if p > 0 else 0      # what F.dropout draws, when it draws
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return LA.LinearActivation.apply(*inputs, activation=activation, p=p, seed=seed)
