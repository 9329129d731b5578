"""Ops that pick or place elements along one axis by an index array: gather and scatter.

Both take ``index`` with as many dims as ``x``; along ``axis`` its entries say which
element of x to read (gather) or write (scatter), and along every other axis d it may be
shorter than x (it then covers ``x[:index.shape[d]]``), as ``torch.gather``/``scatter``.
The same (ii, jj, ...) tuple of index arrays serves forward and backward.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .registry import register


def along_axis(index: np.ndarray, axis: int) -> tuple:
    """The advanced index of x addressed by ``index`` along ``axis``.

    Position p of the result is ``x[p_0, ..., index[p], ..., p_n]``: the other axes take
    their own position (``arange`` reshaped to broadcast against ``index``).
    """
    axis = axis % index.ndim
    return tuple(index if d == axis else
                 np.arange(n).reshape([-1 if e == d else 1 for e in range(index.ndim)])
                 for d, n in enumerate(index.shape))


@register
class Gather(Function):
    """``out[p] = x[p with p[axis] replaced by index[p]]``; backward adds g back there.

    An element picked twice gets both gradients (``np.add.at``, not assignment).
    """
    @staticmethod
    def forward(ctx, x, index, axis):
        ctx.where, ctx.shape = along_axis(index, axis), x.shape
        return x[ctx.where]

    @staticmethod
    def backward(ctx, g):
        dx = np.zeros(ctx.shape, dtype=g.dtype)
        np.add.at(dx, ctx.where, g)
        return dx


@register
class Scatter(Function):
    """A copy of x with ``src`` (or the constant ``value``) written where ``index`` points.

    Inputs: x, and src unless ``value`` is given (src may be larger than index: only
    ``src[:index.shape]`` is read). Gradient: x gets g except at the overwritten places;
    src gets g gathered from them (as torch; with repeated targets the result is
    whichever write came last, so keep targets distinct if you differentiate).
    """
    @staticmethod
    def forward(ctx, x, *src, index, axis, value=None):
        where = along_axis(index, axis)
        ctx.where, ctx.index_shape = where, index.shape
        out = x.copy()
        out[where] = value if not src else src[0][tuple(slice(0, n) for n in index.shape)]
        return out

    @staticmethod
    def backward(ctx, g):
        dx = dsrc = None
        if ctx.needs_input_grad[0]:
            dx = g.copy()
            dx[ctx.where] = 0
        if len(ctx.needs_input_grad) > 1 and ctx.needs_input_grad[1]:
            dsrc = np.zeros(ctx.input_shapes[1], dtype=g.dtype)
            dsrc[tuple(slice(0, n) for n in ctx.index_shape)] = g[ctx.where]
        return (dx, dsrc) if len(ctx.needs_input_grad) > 1 else dx
