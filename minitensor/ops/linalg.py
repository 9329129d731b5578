"""Matrix products: ``MatMul`` (NumPy's matmul semantics), ``Linear`` (x @ W^T + b) and
``LinearActivation`` (dropout(act(x @ W^T + b)), the feed-forward block's first half).

They call ``kernels.get().matmul`` and ``kernels.get().linear``/``linear_backward`` so
the Numba backend can pick the fastest path.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function
from .costs import set_costs, size
from .registry import register


def _swap_last(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


@register
class MatMul(Function):
    """$C = A B$ for 1-D, 2-D and broadcast-batched operands (``np.matmul`` rules).

    Backward: dA = dC B^T, dB = A^T dC, computed with 1-D operands promoted to
    matrices, then squeezed back; batch broadcasting is undone by the engine.
    """
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return kernels.get().matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        matmul = kernels.get().matmul
        a2 = a[None, :] if a.ndim == 1 else a            # (..., m, k)
        b2 = b[:, None] if b.ndim == 1 else b            # (..., k, n)
        g2 = g[..., None] if b.ndim == 1 else g          # (..., m, n); b's axis first,
        g2 = g2[..., None, :] if a.ndim == 1 else g2     # so 1-D @ 1-D (g 0-d) works too
        da = db = None
        if ctx.needs_input_grad[0]:
            da = matmul(g2, _swap_last(b2))              # (..., m, k)
            da = da[..., 0, :] if a.ndim == 1 else da
        if ctx.needs_input_grad[1]:
            db = matmul(_swap_last(a2), g2)              # (..., k, n)
            db = db[..., 0] if b.ndim == 1 else db
        return da, db


@register
class Linear(Function):
    """$y = x W^T + b$ with x (..., in), W (out, in), b (out,).

    The batch axes are flattened so the weight gradient is one 2-D product
    dW = dY^T X over all (B*T) rows, never materialized per batch and then summed.
    """
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        x2 = x.reshape(-1, x.shape[-1])                  # (N, in)
        out = kernels.get().linear(x2, weight, bias)     # (N, out)
        ctx.save_for_backward(x2 if ctx.needs_input_grad[1] else None,
                              weight if ctx.needs_input_grad[0] else None)
        ctx.x_shape = x.shape
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, g):
        x2, weight = ctx.saved_arrays
        g2 = g.reshape(-1, g.shape[-1])                  # (N, out)
        needs = ctx.needs_input_grad + (False,) * (3 - len(ctx.needs_input_grad))
        dx, dw, db = kernels.get().linear_backward(g2, x2, weight, needs)
        grads = (None if dx is None else dx.reshape(ctx.x_shape), dw)
        return (grads + (db,)) if len(ctx.needs_input_grad) == 3 else grads


@register
class LinearActivation(Function):
    """$y = \\mathrm{dropout}_p(\\mathrm{act}(x W^T + b))$, act ReLU or GELU (exact): the
    feed-forward block's Linear -> activation -> Dropout as one node.

    x (..., in), W (out, in), b (out,) (optional); ``p`` and ``seed`` as ``Dropout``'s
    (p = 0: no dropout). Same numbers as the three ops one after the other; the
    activation and the mask are applied in the Linear's own pass over its output, and
    backward masks the gradient in one pass before Linear's two products.
    """
    @staticmethod
    def forward(ctx, x, weight, bias=None, activation="relu", p=0.0, seed=0):
        x2 = x.reshape(-1, x.shape[-1])                  # (N, in)
        out, cache = kernels.get().linear_act_forward(x2, weight, bias, activation, p, seed)
        ctx.save_for_backward(x2 if ctx.needs_input_grad[1] else None,
                              weight if ctx.needs_input_grad[0] else None, cache)
        ctx.x_shape = x.shape
        ctx.activation, ctx.dropout = activation, p > 0     # for the profiler's cost
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, g):
        x2, weight, cache = ctx.saved_arrays
        g2 = g.reshape(-1, g.shape[-1])                  # (N, out)
        needs = ctx.needs_input_grad + (False,) * (3 - len(ctx.needs_input_grad))
        dx, dw, db = kernels.get().linear_act_backward(g2, x2, weight, cache, needs)
        grads = (None if dx is None else dx.reshape(ctx.x_shape), dw)
        return (grads + (db,)) if len(ctx.needs_input_grad) == 3 else grads


class _Triangle(Function):
    """Shared by Tril/Triu: keep one triangle of the last two axes, zero the rest.

    ``diagonal`` shifts the boundary (0 = main diagonal, > 0 above it, < 0 below), as
    ``torch.tril``/``triu``. The gradient is g with the same triangle kept.
    """
    @staticmethod
    def keep(shape: tuple, diagonal: int, lower: bool) -> np.ndarray:
        rows, cols = shape[-2:]
        return np.tri(rows, cols, diagonal, dtype=bool) if lower else \
            ~np.tri(rows, cols, diagonal - 1, dtype=bool)

    @classmethod
    def _forward(cls, ctx, x, diagonal, lower):
        ctx.keep = cls.keep(x.shape, diagonal, lower)
        return np.where(ctx.keep, x, np.zeros((), dtype=x.dtype))

    @staticmethod
    def backward(ctx, g):
        return np.where(ctx.keep, g, np.zeros((), dtype=g.dtype))


@register
class Tril(_Triangle):
    """The lower triangle of the last two axes: ``out[..., i, j] = x[..., i, j]`` if j - i <= diagonal."""
    @staticmethod
    def forward(ctx, x, diagonal=0):
        return Tril._forward(ctx, x, diagonal, lower=True)


@register
class Triu(_Triangle):
    """The upper triangle of the last two axes: ``out[..., i, j] = x[..., i, j]`` if j - i >= diagonal."""
    @staticmethod
    def forward(ctx, x, diagonal=0):
        return Triu._forward(ctx, x, diagonal, lower=False)


# ------------------------------------------------------------ costs, for the profiler
def _matmul_cost(ctx, phase, ins, outs, attrs):
    """2 m n k per product (k multiply-adds per output element). Backward: dA = dC B^T
    and dB = A^T dC are one such product each (before the engine's batch un-broadcast)."""
    k = ctx.input_shapes[0][-1]
    if phase == "forward":
        return 2 * size(outs[0]) * k
    return 2 * size(ins[0]) * k * sum(g is not None for g in outs)


def _linear_cost(ctx, phase, ins, outs, attrs):
    """x (N, in), W (out, in): forward 2 N in out, + N out for the bias. Backward:
    dX = dY W and dW = dY^T X are 2 N in out each, db = sum of dY is N out."""
    n_in = ctx.input_shapes[0][-1]
    if phase == "forward":
        y = size(outs[0])
        return 2 * y * n_in + (y if len(ins) == 3 else 0)
    y = size(ins[0])
    dx, dw = outs[0], outs[1]
    db = outs[2] if len(outs) == 3 else None
    return (2 * y * n_in * ((dx is not None) + (dw is not None))) + (y if db is not None else 0)


# FLOPs per output element of the activation and the dropout (as ReLU/GELU/Dropout state).
_ACT_FLOPS = {"relu": (1, 1), "gelu": (8, 12)}      # (forward, backward)


def _linear_act_cost(ctx, phase, ins, outs, attrs):
    """Linear's cost, plus per output element the activation's (ReLU 1 forward and 1
    backward, GELU 8 and 12) and, with p > 0, the mask's (2 forward, 1 backward)."""
    activation, dropout = ctx.activation, ctx.dropout
    forward = phase == "forward"
    y = size(outs[0]) if forward else size(ins[0])
    per_element = _ACT_FLOPS[activation][0 if forward else 1] + (2 if forward else 1) * dropout
    return _linear_cost(ctx, phase, ins, outs, attrs) + per_element * y


set_costs({MatMul: _matmul_cost, Linear: _linear_cost, LinearActivation: _linear_act_cost})
