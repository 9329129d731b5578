"""Fused ops: each one Function whose forward and backward are single kernel calls.

The arithmetic lives in ``minitensor/kernels`` (``numpy_ref`` is the readable spec,
``numba_cpu`` the fast twin); these classes only connect kernels to the graph. A
kernel's forward returns ``(out, cache)``; the cache is saved for backward (and freed
after it), and the kernel's backward turns ``(grad, cache)`` into input gradients.
All of these work on the *last* axis; ``functional`` moves axes and checks inputs.
The attention Functions are in ``attention.py``.
"""
from __future__ import annotations

from .. import kernels
from ..autograd import Function
from .registry import register


@register
class Softmax(Function):
    """$y_i = e^{x_i - m} / \\sum_j e^{x_j - m}$ over the last axis (m = row max)."""
    @staticmethod
    def forward(ctx, x):
        out, cache = kernels.get().softmax_forward(x)
        ctx.save_for_backward(cache)
        return out

    @staticmethod
    def backward(ctx, g):
        return kernels.get().softmax_backward(g, ctx.saved_arrays[0])


@register
class LogSoftmax(Function):
    """$y_i = x_i - \\log \\sum_j e^{x_j}$ over the last axis."""
    @staticmethod
    def forward(ctx, x):
        out, cache = kernels.get().log_softmax_forward(x)
        ctx.save_for_backward(cache)
        return out

    @staticmethod
    def backward(ctx, g):
        return kernels.get().log_softmax_backward(g, ctx.saved_arrays[0])


@register
class CrossEntropy(Function):
    """Fused log-softmax + negative log-likelihood with ignore_index and label smoothing.

    logits (N, C), target (N,) int64 (data, an attribute). Loss per row:
    $(1-\\varepsilon)(-\\log p_t) + \\varepsilon \\cdot \\mathrm{mean}_c(-\\log p_c)$.
    """
    @staticmethod
    def forward(ctx, logits, target, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        loss, cache = kernels.get().cross_entropy_forward(
            logits, target, ignore_index, label_smoothing, reduction)
        ctx.save_for_backward(cache)
        return loss

    @staticmethod
    def backward(ctx, g):
        return kernels.get().cross_entropy_backward(g, ctx.saved_arrays[0])


@register
class LayerNorm(Function):
    """$y = (x - \\mu) / \\sqrt{\\sigma^2 + \\epsilon} \\cdot w + b$ over the last axis.

    Inputs: x, then weight and/or bias when present (``affine`` says which).
    """
    @staticmethod
    def forward(ctx, x, *params, eps=1e-5, affine=(True, True)):
        weight, bias = affine_params(params, affine)
        out, cache = kernels.get().layer_norm_forward(x, weight, bias, eps)
        ctx.save_for_backward(cache)
        ctx.affine = affine
        return out

    @staticmethod
    def backward(ctx, g):
        dx, dweight, dbias = kernels.get().layer_norm_backward(g, ctx.saved_arrays[0])
        return (dx,) + affine_grads(ctx.affine, dweight, dbias)


def affine_params(params: tuple, affine: tuple) -> tuple:
    """(weight | None, bias | None) from a norm's optional trailing inputs (``affine``
    says which of the two were passed)."""
    it = iter(params)
    return (next(it) if affine[0] else None), (next(it) if affine[1] else None)


def affine_grads(affine: tuple, dweight, dbias) -> tuple:
    """The gradients of the trailing inputs ``affine_params`` read, in their order."""
    return ((dweight,) if affine[0] else ()) + ((dbias,) if affine[1] else ())


@register
class ReLU(Function):
    """$f(x) = \\max(x, 0)$; the gradient at exactly 0 is 0, and NaN inputs pass the
    gradient through, as in PyTorch."""
    @staticmethod
    def forward(ctx, x):
        out, cache = kernels.get().relu_forward(x)
        ctx.save_for_backward(cache)
        return out

    @staticmethod
    def backward(ctx, g):
        return kernels.get().relu_backward(g, ctx.saved_arrays[0])


@register
class GELU(Function):
    """$y = x \\Phi(x)$ (exact, erf) or its tanh approximation (``approximate="tanh"``)."""
    @staticmethod
    def forward(ctx, x, approximate="none"):
        out, cache = kernels.get().gelu_forward(x, approximate)
        ctx.save_for_backward(cache)
        return out

    @staticmethod
    def backward(ctx, g):
        return kernels.get().gelu_backward(g, ctx.saved_arrays[0])


@register
class Dropout(Function):
    """Inverted dropout: $y = x \\cdot m / (1 - p)$, m ~ Bernoulli(1 - p) from ``seed``."""
    @staticmethod
    def forward(ctx, x, p=0.5, seed=0):
        out, cache = kernels.get().dropout_forward(x, p, seed)
        ctx.save_for_backward(cache)
        return out

    @staticmethod
    def backward(ctx, g):
        return kernels.get().dropout_backward(g, ctx.saved_arrays[0])


@register
class Embedding(Function):
    """$y[\\ldots] = W[\\text{indices}[\\ldots]]$; backward scatter-adds rows of W.

    The ``padding_idx`` row (if any) receives no gradient, as in torch.
    """
    @staticmethod
    def forward(ctx, weight, indices, padding_idx=None):
        out, cache = kernels.get().embedding_forward(weight, indices)
        ctx.save_for_backward(cache)
        ctx.padding_idx = padding_idx
        return out

    @staticmethod
    def backward(ctx, g):
        return kernels.get().embedding_backward(g, ctx.saved_arrays[0], ctx.padding_idx)


# ------------------------------------------------------------ costs, for the profiler
# FLOPs per element of x (n = x.size), by the convention of costs.py. Kept as one
# appended block (imported here) so the kernels above stay untouched.
from .costs import set_costs, size  # noqa: E402


def _softmax_cost(ctx, phase, ins, outs, attrs):
    """Forward 5n (max, subtract, exp, sum, divide); backward 4n (g y, row sum,
    subtract, times y)."""
    return (5 if phase == "forward" else 4) * size(ins[0])


def _cross_entropy_cost(ctx, phase, ins, outs, attrs):
    """Logits (N, C): forward 5NC (the log-softmax); backward 3NC (exp, subtract the
    one-hot/smoothing target, scale by dloss)."""
    return (5 if phase == "forward" else 3) * _prod(ctx.input_shapes[0])


def _layer_norm_cost(ctx, phase, ins, outs, attrs):
    """Forward 5n (mean, subtract, square, sum, scale by rstd) + n per affine param.
    Backward 7n for dx (two row means, their combination, times rstd) + 3n with a
    weight (g w, and g x_hat summed for dw) + n with a bias (g summed)."""
    n = _prod(ctx.input_shapes[0])
    affine = attrs.get("affine", (True, True)) if attrs else \
        (len(ctx.input_shapes) > 1, len(ctx.input_shapes) > 2)
    if phase == "forward":
        return n * (5 + affine[0] + affine[1])
    return n * (7 + 3 * affine[0] + affine[1])


def _prod(shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


set_costs({
    Softmax: _softmax_cost, LogSoftmax: _softmax_cost, CrossEntropy: _cross_entropy_cost,
    LayerNorm: _layer_norm_cost,
    ReLU: lambda ctx, phase, ins, outs, attrs: size(ins[0]),                 # compare / select
    GELU: lambda ctx, phase, ins, outs, attrs: (8 if phase == "forward" else 12) * size(ins[0]),
    Dropout: lambda ctx, phase, ins, outs, attrs: (2 if phase == "forward" else 1) * size(ins[0]),
    Embedding: lambda ctx, phase, ins, outs, attrs: 0 if phase == "forward" else size(ins[0]),
})
