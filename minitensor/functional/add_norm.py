"""The Transformer's "Add & Norm" box as one op: ``add_norm`` (post-norm, the paper's
LayerNorm(x + Dropout(y))) and ``add_dropout`` (pre-norm's x + Dropout(y)).

Same numbers and same random stream as the composition ``layer_norm(x + dropout(y))``:
one seed is drawn from the global generator exactly when ``dropout`` would draw it
(training and p > 0), and the mask is the dropout kernel's. Inputs of different dtypes
take the composed path, with its dtype promotion; the fused op needs one dtype.
"""
from __future__ import annotations

import numpy as np

from .. import random as _random
from ..errors import ShapeError
from ..ops import add_norm as AN
from ..tensor import Tensor, as_tensor
from ._checks import _check_float
from .fused import dropout, layer_norm


def _check_residual(name: str, x: Tensor, y: Tensor, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: dropout probability p has to be between 0 and 1, but got {p}")
    _check_float(name, x)
    _check_float(name, y)
    if x.shape != y.shape:
        raise ShapeError(f"{name}: the residual x of shape {x.shape} and the sub-layer output y of "
                         f"shape {y.shape} must have the same shape")


def _normalized_shape(normalized_shape) -> tuple:
    """An int or a sequence of ints as a tuple; a Tensor (a weight passed one place too
    early) is refused with its shape, not printed whole."""
    if isinstance(normalized_shape, (int, np.integer)):
        return (int(normalized_shape),)
    if isinstance(normalized_shape, Tensor) or \
            not all(isinstance(d, (int, np.integer)) for d in normalized_shape):
        what = f"a Tensor of shape {normalized_shape.shape}" \
            if isinstance(normalized_shape, Tensor) else repr(normalized_shape)
        raise TypeError(f"add_norm: normalized_shape must be an int or a tuple of ints (the "
                        f"trailing axes of x), got {what}")
    return tuple(int(d) for d in normalized_shape)


def add_norm(x: Tensor, y: Tensor, normalized_shape, weight: Tensor | None = None,
             bias: Tensor | None = None, eps: float = 1e-5, p: float = 0.0,
             training: bool = True) -> Tensor:
    """``layer_norm(x + dropout(y, p, training), normalized_shape, weight, bias, eps)`` in one op.

    Args:
        x: (..., *normalized_shape), the residual stream.
        y: same shape as x, the sub-layer's output (dropout applies to it only).
        normalized_shape: int or tuple of the trailing axes to normalize over.
        weight, bias: (*normalized_shape,) or None.
        eps: added to the variance inside the square root.
        p: dropout probability on y; no mask is made when p == 0 or not ``training``.
    Returns:
        (..., *normalized_shape), x's shape.
    """
    x, y = as_tensor(x), as_tensor(y)
    _check_residual("add_norm", x, y, p)
    shape = _normalized_shape(normalized_shape)
    if len(shape) == 0 or x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ShapeError(f"add_norm: x of shape {x.shape} does not end with normalized_shape {shape}")
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and param.shape != shape:
            raise ShapeError(f"add_norm: {name} of shape {param.shape} does not match "
                             f"normalized_shape {shape}")
    params = [param for param in (weight, bias) if param is not None]
    if any(t.dtype != x.dtype for t in [y, *params]):
        return layer_norm(x + dropout(y, p, training), shape, weight, bias, eps)
    p = float(p) if training else 0.0
    seed = _random.next_seed() if p > 0 else 0
    c = int(np.prod(shape))
    flat = len(shape) > 1                        # normalize over one axis of size prod(shape)
    if flat:
        x, y = x.reshape(*x.shape[:x.ndim - len(shape)], c), y.reshape(*y.shape[:y.ndim - len(shape)], c)
        params = [param.reshape(c) for param in params]
    out = AN.AddNorm.apply(x, y, *params, eps=float(eps), p=p, seed=seed,
                           affine=(weight is not None, bias is not None))
    return out.reshape(*out.shape[:out.ndim - 1], *shape) if flat else out


def add_dropout(x: Tensor, y: Tensor, p: float = 0.0, training: bool = True) -> Tensor:
    """``x + dropout(y, p, training)`` in one op (a plain add when p == 0 or not training).

    Args:
        x: the residual stream, any shape.
        y: same shape as x, the sub-layer's output (dropout applies to it only).
    """
    x, y = as_tensor(x), as_tensor(y)
    _check_residual("add_dropout", x, y, p)
    if not training or p == 0:
        return x + y
    if x.dtype != y.dtype:
        return x + dropout(y, p, training)
    return AN.AddDropout.apply(x, y, p=float(p), seed=_random.next_seed())
