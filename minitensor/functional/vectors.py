"""Functions of vectors along one axis, as ``torch.nn.functional``'s: ``silu``,
``normalize`` (divide by the p-norm) and ``cosine_similarity``.

Composed from differentiable ops. The norms clamp the *squared* sum before the square
root (``sqrt(max(s, eps^2))`` equals ``max(sqrt(s), eps)``) so a zero vector gets a finite
gradient instead of 0 * inf.
"""
from __future__ import annotations

import math

from ..tensor import Tensor, as_tensor
from ._checks import _broadcast_shape, _check_float, _normalize_axis
from .elementwise import abs, maximum, pow, sigmoid, sqrt
from .reduce import amax, sum


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    if inplace:
        raise NotImplementedError("silu: inplace=True is not supported (ops here never "
                                  "overwrite their input)")
    input = as_tensor(input)
    _check_float("silu", input)
    return input * sigmoid(input)


def _norm(name: str, x: Tensor, p: float, axis: int, eps: float) -> Tensor:
    """The p-norm over ``axis`` (kept as size 1), clamped below at ``eps``."""
    if p == 2:
        return sqrt(maximum(sum(x * x, axis, keepdims=True), eps * eps))
    if p == math.inf:
        return maximum(amax(abs(x), axis, keepdims=True), eps)
    if p == 1:
        return maximum(sum(abs(x), axis, keepdims=True), eps)
    if not p > 0:
        raise ValueError(f"{name}: p must be > 0, got {p}")
    return maximum(pow(sum(pow(abs(x), p), axis, keepdims=True), 1.0 / p), eps)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out=None) -> Tensor:
    """input / max(||input||_p, eps) along ``dim``: unit vectors along that axis.

    Args:
        input: any shape (at least 1-d).
        p: the norm's exponent (2, 1, inf or any p > 0).
        dim: the axis of the vectors (1 by default, as torch).
        eps: smallest denominator (keeps zero vectors finite).
    Returns:
        The input's shape.
    """
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported")
    input = as_tensor(input)
    _check_float("normalize", input)
    axis = _normalize_axis("normalize", dim, input.ndim)
    return input / _norm("normalize", input, float(p), axis, eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between x1 and x2 along ``dim``: sum(x1 * x2) / (|x1| |x2|).

    Each norm is clamped below at ``eps``.

    Args:
        x1, x2: broadcastable shapes; ``dim`` indexes the broadcast shape.
    Returns:
        The broadcast shape without ``dim``.
    """
    x1, x2 = as_tensor(x1), as_tensor(x2)
    _check_float("cosine_similarity", x1)
    _check_float("cosine_similarity", x2)
    shape = _broadcast_shape("cosine_similarity", x1.shape, x2.shape)
    axis = _normalize_axis("cosine_similarity", dim, len(shape))
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    unit1 = x1 / _norm("cosine_similarity", x1, 2.0, axis, eps)
    unit2 = x2 / _norm("cosine_similarity", x2, 2.0, axis, eps)
    return sum(unit1 * unit2, axis)
