"""Gradient utilities: ``clip_grad_norm_`` and ``clip_grad_value_`` (torch's formulas).

They work on the gradient arrays in place, outside any graph.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..tensor import Tensor


def _grads(parameters) -> list[np.ndarray]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad.data for p in parameters if p.grad is not None]


def _vector_norm(array: np.ndarray, norm_type: float) -> np.ndarray:
    """The p-norm of all elements of ``array`` (0-d, same dtype)."""
    if norm_type == 2.0:  # a . a: the squares of |a| bit for bit, without an |a| copy
        a = array.ravel()
        return np.sqrt(np.dot(a, a))
    a = np.abs(array.ravel())
    if norm_type == math.inf:
        return a.max(initial=0).astype(array.dtype)
    if norm_type == 1.0:
        return a.sum()
    return (a ** norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    As torch: total = norm of the per-gradient norms (the norm of all gradients seen as
    one vector), clip_coef = max_norm / (total + 1e-6), and gradients are multiplied by
    clip_coef only when it is < 1. Parameters without a gradient are ignored.

    Args:
        parameters: an iterable of tensors (or one tensor) whose ``.grad`` is clipped.
        max_norm: the largest allowed norm.
        norm_type: p of the p-norm; ``float("inf")`` (or "inf") for the max-abs norm.
        error_if_nonfinite: raise if the total norm is NaN or inf (else clipping makes
            every gradient NaN, as in torch).
    Returns:
        The total norm before clipping, a 0-d Tensor in the gradients' dtype.
    """
    norm_type = float(norm_type)
    grads = _grads(parameters)
    if not grads:
        return Tensor._make(np.asarray(0.0, np.float32), None)
    dtype = grads[0].dtype
    norms = np.stack([_vector_norm(g, norm_type).astype(dtype) for g in grads])
    total = np.asarray(_vector_norm(norms, norm_type), dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} for gradients "
                           f"is non-finite ({total}), so it cannot be clipped. Set "
                           "error_if_nonfinite=False to clip anyway")
    clip_coef = dtype.type(max_norm) / (total + dtype.type(1e-6))
    if not clip_coef >= 1.0:  # "not >=" so that a NaN norm propagates, as in torch
        for g in grads:
            g *= clip_coef.astype(g.dtype)
    return Tensor._make(total, None)


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)
