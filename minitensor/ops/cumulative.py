"""Running (cumulative) ops along one axis: cumsum."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .registry import register


@register
class CumSum(Function):
    """$y_i = \\sum_{j \\le i} x_j$ along ``axis``.

    Backward: $\\partial x_j = \\sum_{i \\ge j} g_i$, the cumulative sum of g taken from
    the end (flip, cumsum, flip).
    """
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return np.cumsum(x, axis=axis)

    @staticmethod
    def backward(ctx, g):
        flipped = np.flip(g, axis=ctx.axis)
        return np.flip(np.cumsum(flipped, axis=ctx.axis), axis=ctx.axis)
