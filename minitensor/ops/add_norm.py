"""The Transformer's "Add & Norm" box as single ops: one graph node instead of three.

``AddNorm`` is post-norm's LayerNorm(x + Dropout(y)) (Dropout, Add and LayerNorm
unfused), ``AddDropout`` pre-norm's x + Dropout(y). The arithmetic is in
``kernels/*/add_norm.py`` and gives the same numbers as the unfused ops, from the same
counter-based dropout mask (``seed`` drawn by ``functional``, as ``dropout`` draws it).
"""
from __future__ import annotations

from .. import kernels
from ..autograd import Function
from .costs import set_costs, size
from .fused import affine_grads, affine_params
from .registry import register


@register
class AddNorm(Function):
    """$out = \\mathrm{LayerNorm}(x + y \\cdot m / (1 - p))$ over the last axis,
    m ~ Bernoulli(1 - p) from ``seed`` (p = 0: no mask).

    Inputs: x, y (same shape), then weight and/or bias when present (``affine`` says which).
    """
    @staticmethod
    def forward(ctx, x, y, *params, eps=1e-5, affine=(True, True), p=0.0, seed=0):
        weight, bias = affine_params(params, affine)
        out, cache = kernels.get().add_norm_forward(x, y, weight, bias, eps, p, seed)
        ctx.save_for_backward(cache)
        ctx.affine, ctx.p = affine, p
        return out

    @staticmethod
    def backward(ctx, g):
        dx, dy, dweight, dbias = kernels.get().add_norm_backward(g, ctx.saved_arrays[0])
        return (dx, dy) + affine_grads(ctx.affine, dweight, dbias)


@register
class AddDropout(Function):
    """$out = x + y \\cdot m / (1 - p)$, m ~ Bernoulli(1 - p) from ``seed``."""
    @staticmethod
    def forward(ctx, x, y, p=0.5, seed=0):
        out, ctx.cache = kernels.get().add_dropout_forward(x, y, p, seed)
        return out

    @staticmethod
    def backward(ctx, g):
        return kernels.get().add_dropout_backward(g, ctx.cache)


# ------------------------------------------------------------ costs, for the profiler
# FLOPs by the convention of costs.py, n = x.size: the sum of the unfused ops' counts
# (fused.py's Dropout, Add and LayerNorm), so profiles before and after fusion compare.


def _add_norm_cost(ctx, phase, ins, outs, attrs):
    """Forward: 2n for the mask (when p > 0), n for the add, layer norm's 5n + n per affine
    parameter. Backward: layer norm's 7n + 3n (weight) + n (bias), n for the mask."""
    n = size(ins[0]) if phase == "forward" else size(outs[0])
    masked = ctx.p > 0
    affine_w, affine_b = ctx.affine
    if phase == "forward":
        return n * (2 * masked + 1 + 5 + affine_w + affine_b)
    return n * (7 + 3 * affine_w + affine_b + masked)


set_costs({
    AddNorm: _add_norm_cost,
    AddDropout: lambda ctx, phase, ins, outs, attrs: (3 if phase == "forward" else 1) * size(ins[0]),
})
