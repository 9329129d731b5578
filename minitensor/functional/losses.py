"""Losses composed from differentiable ops, as ``torch.nn.functional``'s: ``nll_loss`` (any
shape, class weights), ``kl_div`` and ``binary_cross_entropy_with_logits``; and the
weighted forms of ``cross_entropy`` and ``mse_loss`` under torch's full signatures (the
unweighted ones are those of ``fused.py``).

Each is a few ops of ``elementwise``/``reduce``/``shape``, so its gradient is theirs.
"""
from __future__ import annotations

import numpy as np

from ..errors import IndexOutOfRange, ShapeError
from ..tensor import Tensor, as_tensor
from ._checks import _as_index_array, _broadcast_shape, _check_float
from .elementwise import abs, cast, exp, log, maximum, where
from .fused import cross_entropy as _cross_entropy_unweighted
from .fused import log_softmax
from .fused import mse_loss as _mse_loss_unweighted

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(name: str, reduction: str, allowed=_REDUCTIONS) -> None:
    if reduction not in allowed:
        listed = ", ".join(map(repr, allowed[:-1])) + f" or {allowed[-1]!r}"
        raise ValueError(f"{name}: reduction must be {listed}, got {reduction!r}")


def _legacy_reduction(name: str, size_average, reduce, reduction: str) -> str:
    """torch's deprecated ``size_average``/``reduce`` pair, mapped onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else ("mean" if size_average else "sum")


def _class_last(name: str, input: Tensor, target) -> tuple[Tensor, np.ndarray, tuple]:
    """(C,)/(N, C)/(N, C, d...) scores and their integer targets -> (M, C) rows, (M,)
    targets, and the target's shape (the shape of an unreduced loss)."""
    input = as_tensor(input)
    _check_float(name, input)
    t = _as_index_array(name, target).astype(np.int64, copy=False)
    if input.ndim == 0:
        raise ShapeError(f"{name}: input must have a class axis, got a 0-d tensor")
    if input.ndim == 1:
        expected = ()
    else:
        expected = (input.shape[0],) + input.shape[2:]
    if t.shape != expected:
        raise ShapeError(f"{name}: expected target of shape {expected} for input of shape "
                         f"{input.shape}, got {t.shape}")
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    if input.ndim > 2:  # (N, C, d...) -> (N*d..., C)
        input = input.permute(0, *range(2, input.ndim), 1)
    return input.reshape(-1, c), t.reshape(-1), expected


def _class_weight(name: str, weight, c: int, like: Tensor):
    """The (C,) class weights in the scores' dtype (a float32 loss stays float32)."""
    if weight is None:
        return None
    weight = as_tensor(weight)
    if weight.shape != (c,):
        raise ShapeError(f"{name}: weight must have shape ({c},) (one per class), got "
                         f"{weight.shape}")
    return _same_dtype(weight, like)


def _same_dtype(t: Tensor, like: Tensor) -> Tensor:
    return t if t.dtype == like.dtype else cast(t, like.dtype)


def nll_loss(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: ``-weight[t] * input[..., t, ...]`` for each target t.

    Args:
        input: (C,), (N, C) or (N, C, d1, ...) log-probabilities.
        target: (), (N,) or (N, d1, ...) class indices.
        weight: optional (C,) weight per class.
        ignore_index: targets equal to it contribute 0 and are not counted.
        reduction: "mean" (divides by the summed weights of the counted targets), "sum", "none".
    Returns:
        A scalar, or the per-target losses (the target's shape) for "none".
    """
    reduction = _legacy_reduction("nll_loss", size_average, reduce, reduction)
    _check_reduction("nll_loss", reduction)
    rows, t, out_shape = _class_last("nll_loss", input, target)
    m, c = rows.shape
    keep = t != ignore_index
    bad = keep & ((t < 0) | (t >= c))
    if bad.any():
        raise IndexOutOfRange(f"nll_loss: target {int(t[bad][0])} is out of bounds for {c} "
                              f"classes (input of shape {as_tensor(input).shape})")
    safe_t = np.where(keep, t, 0)
    weight = _class_weight("nll_loss", weight, c, rows)
    w = keep.astype(rows.dtype)
    if weight is not None:
        w = weight[safe_t] * Tensor._make(w, None)          # (M,), differentiable in weight
    picked = -rows[np.arange(m), safe_t] * w
    if reduction == "none":
        return picked.reshape(*out_shape)
    if reduction == "sum":
        return picked.sum()
    total = w.sum() if isinstance(w, Tensor) else float(w.sum())
    if isinstance(total, float) and total == 0:
        return picked.sum() + np.nan  # nothing counted: NaN loss but zero gradient, as torch
    return picked.sum() / total


def cross_entropy(input: Tensor, target, weight=None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """``torch.nn.functional.cross_entropy``: log_softmax over axis 1, then the NLL.

    Args:
        input: (C,), (N, C) or (N, C, d1, ...) unnormalized scores.
        target: class indices (the input's shape without the class axis), or class
            probabilities with the input's shape.
        weight: optional (C,) weight per class (torch's weighted mean).
        ignore_index, reduction, label_smoothing: as torch's.
    """
    reduction = _legacy_reduction("cross_entropy", size_average, reduce, reduction)
    _check_reduction("cross_entropy", reduction)
    if weight is None:
        return _cross_entropy_unweighted(input, target, ignore_index, label_smoothing, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    input = as_tensor(input)
    _check_float("cross_entropy", input)
    if input.ndim == 0:
        raise ShapeError("cross_entropy: input must have a class axis, got a 0-d tensor")
    class_axis = 0 if input.ndim == 1 else 1
    c = input.shape[class_axis]
    weight = _class_weight("cross_entropy", weight, c, input)
    w_shape = [1] * input.ndim
    w_shape[class_axis] = c
    w_b = weight.reshape(*w_shape)
    log_p = log_softmax(input, class_axis)
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind == "f" and t.shape == input.shape:  # class probabilities
        probs = as_tensor(target)
        if label_smoothing:
            probs = probs * (1 - label_smoothing) + label_smoothing / c
        per_item = -(log_p * probs * w_b).sum(class_axis)
        if reduction == "none":
            return per_item
        # torch divides by the number of items, not the weights, for probability targets
        return per_item.sum() if reduction == "sum" else per_item.mean()
    nll = nll_loss(log_p, t, weight, ignore_index=ignore_index, reduction=reduction)
    if not label_smoothing:
        return nll
    # torch's label smoothing with weights: the smooth part is -sum_c w_c log p_c, zero on
    # ignored targets, and its mean divides by the summed weights of the counted targets.
    t_int = _as_index_array("cross_entropy", t).astype(np.int64)
    keep = t_int != ignore_index
    smooth = -(log_p * w_b).sum(class_axis) * Tensor._make(keep.astype(input.dtype), None)
    if reduction == "none":
        smooth_red = smooth
    elif reduction == "sum":
        smooth_red = smooth.sum()
    else:
        smooth_red = smooth.sum() / weight[np.where(keep, t_int, 0)[keep]].sum()
    return nll * (1 - label_smoothing) + smooth_red * (label_smoothing / c)


def mse_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None) -> Tensor:
    """Mean squared error (input - target)^2, optionally weighted per element (torch's).

    Args:
        input, target: broadcastable shapes.
        reduction: "mean" | "sum" | "none"; with ``weight``, "mean" is
            sum(weight * err^2) / sum(weight).
        weight: the input's shape.
    """
    reduction = _legacy_reduction("mse_loss", size_average, reduce, reduction)
    _check_reduction("mse_loss", reduction)
    if weight is None:
        return _mse_loss_unweighted(input, target, reduction)
    input = as_tensor(input)
    weight = as_tensor(weight, like=input)
    if weight.shape != input.shape:
        raise ShapeError(f"mse_loss: weight of shape {weight.shape} must have the input's shape "
                         f"{input.shape}")
    weight = _same_dtype(weight, input)
    weighted = _mse_loss_unweighted(input, target, "none") * weight
    if reduction == "none":
        return weighted
    return weighted.sum() if reduction == "sum" else weighted.sum() / weight.sum()


def kl_div(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence of ``target`` from ``input``, both elementwise.

    ``input`` holds log-probabilities; the pointwise loss is
    ``target * (log(target) - input)`` (0 where target == 0), or with ``log_target``
    ``exp(target) * (target - input)``.

    Args:
        input, target: tensors of broadcastable shapes.
        reduction: "mean" (over every element, as torch), "batchmean" (sum / input.shape[0],
            the true KL divergence per sample), "sum" or "none".
    """
    reduction = _legacy_reduction("kl_div", size_average, reduce, reduction)
    _check_reduction("kl_div", reduction, ("mean", "batchmean", "sum", "none"))
    input = as_tensor(input)
    target = as_tensor(target, like=input)
    _check_float("kl_div", input)
    _check_float("kl_div", target)
    _broadcast_shape("kl_div", input.shape, target.shape)
    if log_target:
        pointwise = exp(target) * (target - input)
    else:
        positive = target.data > 0
        # xlogy(t, t): log of 1 where t <= 0, so neither the value nor the gradient is NaN there
        safe_log = log(where(positive, target, 1.0))
        pointwise = where(positive, target * safe_log, 0.0) - target * input
    if reduction == "none":
        return pointwise
    if reduction == "sum":
        return pointwise.sum()
    if reduction == "batchmean":
        return pointwise.sum() / (input.shape[0] if input.ndim else 1)
    return pointwise.mean()


def _softplus_neg(x: Tensor) -> Tensor:
    """log(1 + exp(-x)), stable for any x: log(1 + exp(-|x|)) + max(-x, 0)."""
    return log(exp(-abs(x)) + 1.0) + maximum(-x, 0.0)


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable formula (torch's).

    loss = (1 - t) * x + (1 + (pos_weight - 1) * t) * log(1 + exp(-x)), times ``weight``.

    Args:
        input: logits, any shape.
        target: probabilities in [0, 1], the input's shape.
        weight: broadcast against the loss (a rescaling per element).
        pos_weight: weight of the positive examples, broadcast along the last (class) axis.
        reduction: "mean" | "sum" | "none".
    """
    reduction = _legacy_reduction("binary_cross_entropy_with_logits", size_average, reduce,
                                  reduction)
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    input = as_tensor(input)
    _check_float("binary_cross_entropy_with_logits", input)
    target = as_tensor(target, like=input)
    if target.shape != input.shape:
        raise ShapeError(f"binary_cross_entropy_with_logits: target size {target.shape} must be "
                         f"the same as input size {input.shape}")
    _check_float("binary_cross_entropy_with_logits", target)
    softplus = _softplus_neg(input)
    if pos_weight is not None:
        pos_weight = _same_dtype(as_tensor(pos_weight, like=input), input)
        _broadcast_shape("binary_cross_entropy_with_logits (pos_weight)", pos_weight.shape,
                         input.shape)
        softplus = softplus * ((pos_weight - 1.0) * target + 1.0)
    loss = (1.0 - target) * input + softplus
    if weight is not None:
        weight = _same_dtype(as_tensor(weight, like=input), input)
        if _broadcast_shape("binary_cross_entropy_with_logits (weight)", weight.shape,
                            input.shape) != input.shape:
            raise ShapeError(f"binary_cross_entropy_with_logits: weight of shape {weight.shape} "
                             f"does not broadcast to the input's shape {input.shape}")
        loss = loss * weight
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()

