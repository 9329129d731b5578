"""Wrappers of the fused ops (the Functions of ``ops/fused.py``), the neural-network
functions: relu, gelu, softmax, log_softmax, cross_entropy, layer_norm, dropout,
embedding; plus the losses composed from them (nll_loss, mse_loss) and one_hot.

The fused Functions work on the last axis; the wrappers here move axes, reshape and
check inputs.
"""
from __future__ import annotations

import builtins

import numpy as np

from .. import random as _random
from ..errors import DTypeError, IndexOutOfRange, ShapeError
from ..ops import fused as FU
from ..tensor import Tensor, as_tensor
from ._checks import _as_index_array, _broadcast_shape, _check_float, _normalize_axis, _pair, _pick
from .elementwise import sub
from .shape import reshape, transpose

def relu(x) -> Tensor:
    """max(x, 0)."""
    return FU.ReLU.apply(as_tensor(x))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU, x * Phi(x); ``approximate="tanh"`` uses the tanh formula (as torch)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    x = as_tensor(x)
    _check_float("gelu", x)
    return FU.GELU.apply(x, approximate=approximate)


def _on_last_axis(op_cls, name: str, x: Tensor, axis: int) -> Tensor:
    x = as_tensor(x)
    _check_float(name, x)
    if x.ndim == 0:
        return op_cls.apply(reshape(x, 1)).reshape(())
    a = _normalize_axis(name, axis, x.ndim)
    if a == x.ndim - 1:
        return op_cls.apply(x)
    return op_cls.apply(transpose(x, a, -1)).transpose(a, -1)


def softmax(x: Tensor, axis: int = -1, *, dim=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, max-subtracted for stability."""
    return _on_last_axis(FU.Softmax, "softmax", x, _pick(axis, dim, -1))


def log_softmax(x: Tensor, axis: int = -1, *, dim=None) -> Tensor:
    """x - logsumexp(x) along ``axis``."""
    return _on_last_axis(FU.LogSoftmax, "log_softmax", x, _pick(axis, dim, -1))


def cross_entropy(logits: Tensor, target, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> Tensor:
    """Cross-entropy of ``logits`` against class indices (or class probabilities).

    Args:
        logits: (N, C), (C,) or (N, C, d1, ...) unnormalized scores.
        target: (N,) / () / (N, d1, ...) integer class indices, or probabilities with
            the logits' shape.
        ignore_index: targets equal to this contribute nothing (and don't count in the mean).
        label_smoothing: epsilon in [0, 1]; the target becomes (1-eps) one-hot + eps/C.
        reduction: "mean" | "sum" | "none".
    Returns:
        A scalar, or the per-element losses with the target's shape for "none".
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    logits = as_tensor(logits)
    _check_float("cross_entropy", logits)
    if logits.ndim == 0:
        raise ShapeError("cross_entropy: logits must have a class axis, got a 0-d tensor")
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.shape == logits.shape and t.dtype.kind == "f" and logits.ndim >= 1 and \
            not (logits.ndim == 1 and t.ndim == 0):
        return _cross_entropy_soft(logits, as_tensor(target), label_smoothing, reduction)
    if t.dtype.kind not in "iu":  # as torch: float targets are probabilities, never indices
        raise DTypeError(f"cross_entropy: target of dtype {t.dtype} and shape {t.shape}: class "
                         f"indices must be an integer tensor (.long()), and class probabilities "
                         f"a floating-point tensor of the logits' shape {logits.shape}")
    unbatched = logits.ndim == 1
    if unbatched:
        logits, t = logits.reshape(1, -1), t.reshape(1)
    n, c = logits.shape[0], logits.shape[1]
    expected = (n,) + logits.shape[2:]
    if t.shape != expected:
        raise ShapeError(f"cross_entropy: expected target of shape {expected} for logits of shape "
                         f"{logits.shape}, got {t.shape}")
    t = _as_index_array("cross_entropy", t).astype(np.int64, copy=False)
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    if bad.any():
        raise IndexOutOfRange(f"cross_entropy: target {int(t[bad].flat[0])} is out of bounds for "
                              f"{c} classes (logits of shape {logits.shape})")
    if logits.ndim > 2:  # (N, C, d...) -> (N*d..., C)
        logits = logits.permute(0, *range(2, logits.ndim), 1).reshape(-1, c)
    loss = FU.CrossEntropy.apply(logits, target=t.reshape(-1), ignore_index=int(ignore_index),
                                 label_smoothing=float(label_smoothing), reduction=reduction)
    if reduction == "none":
        return loss.reshape(()) if unbatched else loss.reshape(*expected)
    return loss


def _cross_entropy_soft(logits: Tensor, probs: Tensor, eps: float, reduction: str) -> Tensor:
    """Cross-entropy against class probabilities (torch's soft-target form)."""
    c = logits.shape[1] if logits.ndim > 1 else logits.shape[0]
    axis = 1 if logits.ndim > 1 else 0
    if eps:
        probs = probs * (1 - eps) + eps / c
    per_item = -(log_softmax(logits, axis) * probs).sum(axis)
    if reduction == "none":
        return per_item
    # 'mean' averages over every position (N * d1 * ...), as torch does for soft targets
    return per_item.sum() if reduction == "sum" else per_item.mean()


def nll_loss(log_probs: Tensor, target, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of ``log_probs`` (N, C) at integer ``target`` (N,)."""
    t = _as_index_array("nll_loss", target).astype(np.int64)
    if log_probs.ndim != 2:
        raise ShapeError(f"nll_loss: expected log_probs of shape (N, C), got {log_probs.shape}")
    n, c = log_probs.shape
    if t.shape != (n,):
        raise ShapeError(f"nll_loss: expected target of shape ({n},), got {t.shape}")
    keep = t != ignore_index
    bad = keep & ((t < 0) | (t >= c))
    if bad.any():
        raise IndexOutOfRange(f"nll_loss: target {int(t[bad][0])} is out of bounds for {c} classes "
                              f"(log_probs of shape {log_probs.shape})")
    picked = -log_probs[np.arange(n), np.where(keep, t, 0)] * keep.astype(log_probs.dtype)
    if reduction == "none":
        return picked
    if reduction == "sum":
        return picked.sum()
    count = int(keep.sum())
    mean = picked.sum() / builtins.max(count, 1)
    return mean if count else mean + np.nan  # all ignored: NaN loss but zero gradient, as torch


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error (input - target)^2, reduced by "mean" | "sum" | "none"."""
    input, target = _pair(input, target)
    if input.shape != target.shape:
        _broadcast_shape("mse_loss", input.shape, target.shape)
    diff = sub(input, target)
    sq = diff * diff
    if reduction == "none":
        return sq
    if reduction not in ("mean", "sum"):
        raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return sq.sum() if reduction == "sum" else sq.mean()


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` axes, then scale and shift.

    Args:
        x: (..., *normalized_shape).
        normalized_shape: int or tuple of the trailing axes to normalize over.
        weight, bias: (*normalized_shape,) or None.
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(normalized_shape)
    x = as_tensor(x)
    _check_float("layer_norm", x)
    if len(shape) == 0 or x.shape[x.ndim - len(shape):] != shape or x.ndim < len(shape):
        raise ShapeError(f"layer_norm: input of shape {x.shape} does not end with "
                         f"normalized_shape {shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != shape:
            raise ShapeError(f"layer_norm: {name} of shape {p.shape} does not match "
                             f"normalized_shape {shape}")
    c = int(np.prod(shape))
    flat = len(shape) > 1
    xin = x.reshape(*x.shape[:x.ndim - len(shape)], c) if flat else x
    params = [p.reshape(c) if flat else p for p in (weight, bias) if p is not None]
    out = FU.LayerNorm.apply(xin, *params, eps=float(eps), affine=(weight is not None, bias is not None))
    return out.reshape(*x.shape) if flat else out


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    Identity when ``training`` is False or p == 0. The mask comes from the global
    seeded generator (``mt.manual_seed``), identical on both kernel backends.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return x
    _check_float("dropout", x)
    return FU.Dropout.apply(x, p=float(p), seed=_random.next_seed())


def embedding(indices, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (V, D) picked by integer ``indices`` (any shape) -> (*indices.shape, D)."""
    idx = _as_index_array("embedding", indices)
    if idx.dtype == np.bool_:
        raise DTypeError("embedding: indices must be integers, got bool")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, dim), got {weight.shape}")
    v = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= v):
        worst = int(idx.max()) if idx.max() >= v else int(idx.min())
        raise IndexOutOfRange(f"embedding: index {worst} is out of range for {v} embeddings "
                              f"(weight of shape {weight.shape})")
    if padding_idx is not None:
        if not -v <= padding_idx < v:
            raise IndexOutOfRange(f"embedding: padding_idx {padding_idx} is out of range for {v} embeddings")
        padding_idx = int(padding_idx) % v
    return FU.Embedding.apply(weight, indices=idx.astype(np.int64, copy=False), padding_idx=padding_idx)


def one_hot(indices, num_classes: int = -1) -> Tensor:
    """(…,) integer tensor -> (…, num_classes) int64 one-hot tensor (no gradient)."""
    idx = _as_index_array("one_hot", indices).astype(np.int64)
    n = int(idx.max()) + 1 if num_classes < 0 else num_classes
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexOutOfRange(f"one_hot: class values must be in [0, {n}), got {idx.min()}..{idx.max()}")
    return Tensor._make(np.eye(n, dtype=np.int64)[idx], None)
