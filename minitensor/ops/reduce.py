"""Reductions over one or more axes: sum, mean, amax/amin, var, logsumexp.

Each takes ``axis`` (None = all axes, an int, or a tuple; negative allowed) and
``keepdims``. Backward re-inserts the reduced axes (``_expand_back``) and broadcasts
the gradient to the input's shape.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .costs import set_costs, size
from .registry import register


def normalize_axes(axis, ndim: int) -> tuple:
    """``axis`` as a sorted tuple of non-negative ints (None means every axis)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(sorted(int(a) % max(ndim, 1) for a in axes))


def _expand_back(g: np.ndarray, axes: tuple, keepdims: bool) -> np.ndarray:
    """Give ``g`` size-1 dims at the reduced ``axes`` again (undo keepdims=False)."""
    return g if keepdims else np.expand_dims(g, axes)


@register
class Sum(Function):
    """$f(x) = \\sum_{axes} x$"""
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes, ctx.keepdims, ctx.shape = normalize_axes(axis, x.ndim), keepdims, x.shape
        return np.sum(x, axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        return np.broadcast_to(_expand_back(g, ctx.axes, ctx.keepdims), ctx.shape)


@register
class Mean(Function):
    """$f(x) = \\frac{1}{n} \\sum_{axes} x$"""
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes, ctx.keepdims, ctx.shape = normalize_axes(axis, x.ndim), keepdims, x.shape
        ctx.count = int(np.prod([x.shape[a] for a in ctx.axes]))
        return np.mean(x, axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        g = _expand_back(g, ctx.axes, ctx.keepdims) / ctx.count
        return np.broadcast_to(g, ctx.shape)


class _Extreme(Function):
    """Shared backward of amax/amin: the gradient is split equally among tied extremes."""
    reducer = staticmethod(np.max)

    @classmethod
    def _forward(cls, ctx, x, axis, keepdims):
        ctx.axes, ctx.keepdims = normalize_axes(axis, x.ndim), keepdims
        out = cls.reducer(x, axis=ctx.axes, keepdims=keepdims)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_arrays
        hit = x == _expand_back(out, ctx.axes, ctx.keepdims)
        count = hit.sum(axis=ctx.axes, keepdims=True)
        return hit * (_expand_back(g, ctx.axes, ctx.keepdims) / count)


@register
class Max(_Extreme):
    """$f(x) = \\max_{axes} x$ (``torch.amax``: ties share the gradient)."""
    reducer = staticmethod(np.max)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return Max._forward(ctx, x, axis, keepdims)


@register
class Min(_Extreme):
    """$f(x) = \\min_{axes} x$ (``torch.amin``: ties share the gradient)."""
    reducer = staticmethod(np.min)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return Min._forward(ctx, x, axis, keepdims)


@register
class Var(Function):
    """$f(x) = \\frac{1}{n - c} \\sum (x - \\bar x)^2$ with correction c (1 = unbiased)."""
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, correction=1):
        axes = normalize_axes(axis, x.ndim)
        n = int(np.prod([x.shape[a] for a in axes]))
        centered = x - x.mean(axis=axes, keepdims=True)
        ctx.axes, ctx.keepdims, ctx.denominator = axes, keepdims, max(n - correction, 0)
        ctx.save_for_backward(centered)
        with np.errstate(divide="ignore", invalid="ignore"):  # n <= correction gives inf/nan, as torch
            return np.sum(centered * centered, axis=axes, keepdims=keepdims) / ctx.denominator

    @staticmethod
    def backward(ctx, g):
        (centered,) = ctx.saved_arrays
        with np.errstate(divide="ignore", invalid="ignore"):
            # a NumPy scalar, so n <= correction gives inf/nan (as torch), not ZeroDivisionError
            two = centered.dtype.type(2)
            return _expand_back(g, ctx.axes, ctx.keepdims) * (two / ctx.denominator) * centered


@register
class LogSumExp(Function):
    """$f(x) = \\log \\sum_{axes} e^x$, computed as $m + \\log \\sum e^{x - m}$ (m = max)."""
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = normalize_axes(axis, x.ndim)
        m = np.max(x, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)  # all -inf (or inf) slices: shift by 0, not by -inf
        with np.errstate(divide="ignore"):
            out = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
        ctx.axes, ctx.keepdims = axes, keepdims
        ctx.save_for_backward(x, out)
        return out if keepdims else np.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_arrays
        return _expand_back(g, ctx.axes, ctx.keepdims) * np.exp(x - out)


@register
class Norm(Function):
    """$f(x) = (\\sum_{axes} |x|^p)^{1/p}$ for a finite p > 0 (p = 2: the Euclidean norm).

    Backward: $\\partial x = g\\, \\mathrm{sign}(x) |x|^{p-1} / f^{p-1}$; where the norm is 0,
    or an entry is 0, the gradient is 0 (a subgradient, as torch), not 0/0 or 0 * inf.
    """
    @staticmethod
    def forward(ctx, x, p=2.0, axis=None, keepdims=False):
        axes = normalize_axes(axis, x.ndim)
        ctx.axes, ctx.keepdims, ctx.p = axes, keepdims, p
        if p == 2:
            out = np.sqrt(np.sum(x * x, axis=axes, keepdims=keepdims))
        elif p == 1:
            out = np.sum(np.abs(x), axis=axes, keepdims=keepdims)
        else:
            out = np.sum(np.abs(x) ** p, axis=axes, keepdims=keepdims) ** (1 / p)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_arrays
        p = ctx.p
        norm = _expand_back(out, ctx.axes, ctx.keepdims)
        g = _expand_back(g, ctx.axes, ctx.keepdims)
        if p == 1:
            return g * np.sign(x)
        scale = np.where(norm == 0, 0, g / np.where(norm == 0, 1, norm ** (p - 1)))
        if p == 2:
            return scale * x
        # |x|^(p-1) is inf at x = 0 for p < 1: those entries get 0, as torch
        return scale * np.where(x == 0, 0, np.sign(x) * np.abs(x) ** (p - 1))


# ------------------------------------------------------------ costs, for the profiler
def _reduction(forward: int, backward: int):
    """``forward`` FLOPs per *input* element (a reduction reads all n), ``backward`` per
    gradient element returned."""
    def cost(ctx, phase, ins, outs, attrs):
        return forward * size(ins[0]) if phase == "forward" else backward * size(outs[0])
    return cost


set_costs({
    Sum: _reduction(1, 0),                   # n adds; backward is a broadcast
    Mean: _reduction(1, 1),                  # n adds; backward divides by the count
    Max: _reduction(1, 3), Min: _reduction(1, 3),  # compares; backward finds and splits ties
    Var: _reduction(4, 3),                   # mean, subtract, square, sum
    LogSumExp: _reduction(4, 3),             # max, subtract, exp, sum
})
