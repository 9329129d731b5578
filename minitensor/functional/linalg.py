"""Matrix-product wrappers (the Functions of ``ops/linalg.py``): ``matmul`` with NumPy's
rules and ``linear`` (x @ W^T + b), with the shape checks that name both operands.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ops import linalg as LA
from ..tensor import Tensor
from ._checks import _pair

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


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ weight.T + bias, with x (..., in), weight (out, in), bias (out,)."""
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out, in), got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input of shape {x.shape} does not match weight of shape "
                         f"{weight.shape} (in_features {x.shape[-1] if x.ndim else None} != "
                         f"{weight.shape[1]})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: bias of shape {bias.shape} does not match weight of shape "
                         f"{weight.shape} (expected ({weight.shape[0]},))")
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return LA.Linear.apply(*inputs)
