"""Reduction wrappers (the Functions of ``ops/reduce.py``): sum, mean, amax/amin, var,
std and logsumexp over ``axis`` (``dim`` accepted as its alias).
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ops import reduce as R
from ..tensor import Tensor
from ._checks import _axes_arg, _check_float, _pick
from .elementwise import abs as _abs, sqrt, where

def sum(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Sum over ``axis`` (None = all)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    return R.Sum.apply(x, axis=_axes_arg("sum", x, axis), keepdims=keepdims)


def mean(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Mean over ``axis`` (None = all)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    if x.dtype.kind != "f":
        x = x.float()
    return R.Mean.apply(x, axis=_axes_arg("mean", x, axis), keepdims=keepdims)


def amax(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Max over ``axis``; tied maxima share the gradient equally (``torch.amax``)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    _check_nonempty("max", x)
    return R.Max.apply(x, axis=_axes_arg("max", x, axis), keepdims=keepdims)


def amin(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """Min over ``axis``; tied minima share the gradient equally (``torch.amin``)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    _check_nonempty("min", x)
    return R.Min.apply(x, axis=_axes_arg("min", x, axis), keepdims=keepdims)


def _check_nonempty(name: str, x: Tensor) -> None:
    if x.data.size == 0:
        raise ShapeError(f"{name}: cannot reduce an empty tensor of shape {x.shape}")


def var(x: Tensor, axis=None, keepdims=False, unbiased=True, *, dim=None, keepdim=None,
        correction=None) -> Tensor:
    """Variance over ``axis``; ``unbiased=True`` divides by n - 1 (torch's default)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    corr = (1 if unbiased else 0) if correction is None else correction
    _check_float("var", x)
    return R.Var.apply(x, axis=_axes_arg("var", x, axis), keepdims=keepdims, correction=corr)


def std(x: Tensor, axis=None, keepdims=False, unbiased=True, *, dim=None, keepdim=None,
        correction=None) -> Tensor:
    """Standard deviation: sqrt(var); where it is 0 the gradient is 0 (as torch), not NaN."""
    v = var(x, axis, keepdims, unbiased, dim=dim, keepdim=keepdim, correction=correction)
    zero = v.data == 0
    if not zero.any():
        return sqrt(v)
    # sqrt'(0) = inf would meet centered = 0 in var's backward (inf * 0 = NaN); route those
    # entries through sqrt(1) with a zero gradient instead.
    return where(zero, 0.0, sqrt(where(zero, 1.0, v)))


def logsumexp(x: Tensor, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """log(sum(exp(x))) over ``axis``, computed stably (max-shifted)."""
    axis, keepdims = _pick(axis, dim), _pick(keepdims, keepdim, False)
    _check_float("logsumexp", x)
    return R.LogSumExp.apply(x, axis=_axes_arg("logsumexp", x, axis), keepdims=keepdims)


def norm(x: Tensor, p=2, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    """The p-norm over ``dim`` (None: all elements): (sum |x|^p)^(1/p).

    ``p``: a number > 0, ``"fro"`` (= 2), ``inf`` (max |x|) or ``-inf`` (min |x|). Where
    the norm is 0 the gradient is 0, as torch.
    """
    axis = _pick(axis, dim)
    keep = bool(keepdim) or bool(keepdims)
    _check_float("norm", x)
    if p == "fro":
        p = 2
    if isinstance(p, bool) or not isinstance(p, (int, float, np.number)) or \
            not (p > 0 or p == -np.inf):
        raise ValueError(f"norm: p must be a positive number, 'fro', inf or -inf; got {p!r}")
    if p == np.inf:
        return amax(_abs(x), axis, keep)
    if p == -np.inf:
        return amin(_abs(x), axis, keep)
    return R.Norm.apply(x, p=p, axis=_axes_arg("norm", x, axis), keepdims=keep)
