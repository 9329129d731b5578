"""Ops that move data without arithmetic: reshape, permute, expand, indexing, cat, stack.

Reshape, permute, expand and basic slicing return NumPy *views* (``is_view``): no copy,
and the output shares the input's version counter so in-place edits are still caught.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .costs import data_movement, set_costs
from .registry import register


@register
class Reshape(Function):
    """View ``x`` with a new shape (same elements, row-major order)."""
    is_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


@register
class Permute(Function):
    """Reorder the axes: ``out.shape[i] == x.shape[axes[i]]``."""
    is_view = True

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, g):
        return np.transpose(g, np.argsort(ctx.axes))


@register
class Expand(Function):
    """Broadcast ``x`` to ``shape`` without copying; backward sums (in the engine)."""
    is_view = True

    @staticmethod
    def forward(ctx, x, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return g  # the engine's unbroadcast sums the expanded axes away


def _has_advanced_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (np.ndarray, list)) for i in items)


@register
class GetItem(Function):
    """``x[index]``: basic slicing (a view) or advanced int/bool-array indexing (a copy).

    Backward scatters the gradient into zeros of x's shape; with advanced indices the
    same element may be picked twice, so it *adds* (``np.add.at``) rather than assigns.
    """
    is_view = True

    @staticmethod
    def forward(ctx, x, index):
        ctx.index, ctx.shape, ctx.dtype = index, x.shape, x.dtype
        return x[index]

    @staticmethod
    def backward(ctx, g):
        dx = np.zeros(ctx.shape, dtype=g.dtype)
        if _has_advanced_index(ctx.index):
            np.add.at(dx, ctx.index, g)
        else:
            dx[ctx.index] = g
        return dx


@register
class SetItem(Function):
    """Out-of-place ``x[index] = v``: returns a copy of x with ``v`` written at ``index``.

    Used by ``Tensor.__setitem__``. Gradient: x gets g except at the overwritten places;
    v gets g[index] (summed back to v's shape by the engine).
    """
    @staticmethod
    def forward(ctx, x, v, index):
        ctx.index = index
        out = x.copy()
        out[index] = v
        return out

    @staticmethod
    def backward(ctx, g):
        dx = None
        if ctx.needs_input_grad[0]:
            dx = g.copy()
            dx[ctx.index] = 0
        dv = g[ctx.index] if ctx.needs_input_grad[1] else None
        return dx, dv


@register
class Cat(Function):
    """Concatenate tensors along an existing ``axis``."""
    @staticmethod
    def forward(ctx, *xs, axis=0):
        ctx.axis = axis
        ctx.splits = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(np.split(g, ctx.splits, axis=ctx.axis))


@register
class Stack(Function):
    """Stack equally-shaped tensors along a new ``axis``."""
    @staticmethod
    def forward(ctx, *xs, axis=0):
        ctx.axis = axis
        return np.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(np.moveaxis(g, ctx.axis, 0))


# ------------------------------------------------------------ costs, for the profiler
# No arithmetic; views (reshape, permute, expand, basic slicing) move no bytes either.
set_costs({op: data_movement for op in (Reshape, Permute, Expand, GetItem, SetItem, Cat, Stack)})
