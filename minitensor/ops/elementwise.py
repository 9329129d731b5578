"""Elementwise ops: arithmetic, unary math, activations, select.

Each op's forward may broadcast its inputs; its backward returns gradients in the
broadcast shape and the engine sums them back (``autograd.unbroadcast``).
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .costs import per_element, set_costs
from .registry import register


@register
class Add(Function):
    """$f(a, b) = a + b$"""
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g  # the same array for both: the engine never adds into it in place


@register
class Sub(Function):
    """$f(a, b) = a - b$"""
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


@register
class Mul(Function):
    """$f(a, b) = a b$"""
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None,
                              b if ctx.needs_input_grad[0] else None)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        return (g * b if ctx.needs_input_grad[0] else None,
                g * a if ctx.needs_input_grad[1] else None)


@register
class Div(Function):
    """$f(a, b) = a / b$"""
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        return (g / b if ctx.needs_input_grad[0] else None,
                -g * a / (b * b) if ctx.needs_input_grad[1] else None)


@register
class Neg(Function):
    """$f(x) = -x$"""
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


# Whole-number exponents up to this size are computed by repeated multiplication.
_MAX_MULTIPLY_EXPONENT = 64


def power(x: np.ndarray, p) -> np.ndarray:
    """``x ** p``; a whole-number p on a float array by repeated squaring and multiplying.

    NumPy's float ``power`` takes a slow path for negative bases (about 200x ``x*x*x`` for
    p = 3.0); torch special-cases small whole exponents the same way. A negative p is the
    reciprocal of the positive power (1 / x^|p|), as torch computes x^-1 and x^-2.
    """
    whole = float(p).is_integer() and abs(p) <= _MAX_MULTIPLY_EXPONENT
    if x.dtype.kind != "f" or not whole:
        return x ** p
    n = abs(int(p))
    result, base = None, x
    while n:  # binary exponentiation: about 2 log2(n) products
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if n:
            base = base * base
    if result is None:  # p == 0: 1 everywhere (also at x = 0, nan and inf, as torch)
        return np.ones_like(x)
    if result is x:
        result = x.copy()  # p == 1: a new array, never the input itself
    return np.reciprocal(result) if p < 0 else result


@register
class PowScalar(Function):
    """$f(x) = x^p$ for a constant exponent p (whole p: repeated multiplication)."""
    @staticmethod
    def forward(ctx, x, exponent):
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        return power(x, exponent)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        p = ctx.exponent
        # p * x^(p-1), written so that p = 0 gives exactly 0 (not 0 * x^-1 = nan at x = 0)
        return g * (p * power(x, p - 1)) if p != 0 else np.zeros_like(g)


@register
class Pow(Function):
    """$f(a, b) = a^b$, both tensors: $\\partial_b = a^b \\log a$."""
    @staticmethod
    def forward(ctx, a, b):
        out = a ** b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_arrays
        da = db = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:  # b = 0: exactly 0, not 0 * 0^-1 = nan (as torch)
                da = g * np.where(b == 0, 0, b * a ** (b - 1))
            if ctx.needs_input_grad[1]:  # a = 0, b >= 0: 0, the limit of a^b log a (as torch)
                db = g * np.where((a == 0) & (b >= 0), 0, out * np.log(a))
        return da, db


@register
class Exp(Function):
    """$f(x) = e^x$ (saves the output: $f' = f$)."""
    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_arrays
        return g * out


@register
class Log(Function):
    """$f(x) = \\log x$"""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g / x


@register
class Sqrt(Function):
    """$f(x) = \\sqrt{x}$ (saves the output: $f' = 1 / 2f$)."""
    @staticmethod
    def forward(ctx, x):
        out = np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_arrays
        return g / (2 * out)


@register
class Tanh(Function):
    """$f(x) = \\tanh x$ (saves the output: $f' = 1 - f^2$)."""
    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_arrays
        return g * (1 - out * out)


@register
class Sigmoid(Function):
    """$f(x) = 1 / (1 + e^{-x})$ (saves the output: $f' = f(1 - f)$)."""
    @staticmethod
    def forward(ctx, x):
        # Two branches so exp never overflows: for x < 0 use e^x / (1 + e^x).
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_arrays
        return g * out * (1 - out)


@register
class Abs(Function):
    """$f(x) = |x|$; the gradient at 0 is 0 (sign(0) = 0), as in PyTorch."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g * np.sign(x)


@register
class Maximum(Function):
    """$f(a, b) = \\max(a, b)$ elementwise; ties send half the gradient to each, as torch."""
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        return _split_extreme(ctx, g, np.less)


def _split_extreme(ctx, g, loses):
    """Gradients of max/min(a, b): the losing side gets 0, ties split g in half, and (as
    torch) NaN comparisons lose nowhere, so both sides then get g."""
    a, b = ctx.saved_arrays
    half = np.where(a == b, g / 2, g)
    return (np.where(loses(a, b), 0, half) if ctx.needs_input_grad[0] else None,
            np.where(loses(b, a), 0, half) if ctx.needs_input_grad[1] else None)


@register
class Minimum(Function):
    """$f(a, b) = \\min(a, b)$ elementwise; ties split the gradient equally."""
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx, g):
        return _split_extreme(ctx, g, np.greater)


@register
class Clamp(Function):
    """$f(x) = \\min(\\max(x, lo), hi)$; gradient 1 inside [lo, hi] (bounds included), as torch."""
    @staticmethod
    def forward(ctx, x, lo=None, hi=None):
        ctx.save_for_backward(x)
        ctx.bounds = (lo, hi)
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        lo, hi = ctx.bounds
        inside = np.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        return g * inside


@register
class Where(Function):
    """$f(a, b) = a$ where ``condition`` else $b$ (condition is data, not differentiated)."""
    @staticmethod
    def forward(ctx, a, b, condition):
        ctx.condition = condition
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, g):
        c = ctx.condition
        zero = np.zeros((), dtype=g.dtype)
        return (np.where(c, g, zero) if ctx.needs_input_grad[0] else None,
                np.where(c, zero, g) if ctx.needs_input_grad[1] else None)


@register
class MaskedFill(Function):
    """$f(x) = value$ where ``mask`` else $x$; the filled entries get no gradient."""
    @staticmethod
    def forward(ctx, x, mask, value):
        ctx.mask = mask
        return np.where(mask, np.asarray(value, dtype=x.dtype), x)

    @staticmethod
    def backward(ctx, g):
        return np.where(ctx.mask, np.zeros((), dtype=g.dtype), g)


@register
class Cast(Function):
    """Change the float dtype; the engine casts the gradient back to the input's dtype."""
    @staticmethod
    def forward(ctx, x, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g


@register
class Clone(Function):
    """$f(x) = x$ in new memory."""
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g


# ---------------------------------------------------------------------------- more unary math
# (the torch.X functions of issue 15: sin, cos, rsqrt, square, sign)


@register
class Sin(Function):
    """$f(x) = \\sin x$"""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g * np.cos(x)


@register
class Cos(Function):
    """$f(x) = \\cos x$"""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return -g * np.sin(x)


@register
class Rsqrt(Function):
    """$f(x) = 1 / \\sqrt{x}$ (saves the output: $f' = -f^3 / 2$)."""
    @staticmethod
    def forward(ctx, x):
        out = 1 / np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_arrays
        return g * (-0.5 * out * out * out)


@register
class Square(Function):
    """$f(x) = x^2$"""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g * (2 * x)


@register
class Sign(Function):
    """$f(x) = \\mathrm{sign}\\, x$ (-1, 0 or 1); its gradient is 0 everywhere, as torch's."""
    @staticmethod
    def forward(ctx, x):
        return np.sign(x)

    @staticmethod
    def backward(ctx, g):
        return np.zeros_like(g)


# ------------------------------------------------------------ costs, for the profiler
# FLOPs per output element in forward and per gradient element in backward (costs.py
# states the convention; exp, log, erf count 1). Ops not listed show "-" in the table.
set_costs({
    Add: per_element(1, 0), Sub: per_element(1, 1), Mul: per_element(1, 1),
    Div: per_element(1, 2), Neg: per_element(1, 1), PowScalar: per_element(1, 3),
    Pow: per_element(2, 4), Exp: per_element(1, 1), Log: per_element(1, 1),
    Sqrt: per_element(1, 1), Tanh: per_element(1, 3), Sigmoid: per_element(4, 3),
    Abs: per_element(1, 2), Maximum: per_element(1, 2), Minimum: per_element(1, 2),
    Clamp: per_element(2, 2), Where: per_element(1, 1), MaskedFill: per_element(1, 1),
    Cast: per_element(0, 0), Clone: per_element(0, 0), Sin: per_element(1, 2),
    Cos: per_element(1, 2), Rsqrt: per_element(2, 3), Square: per_element(1, 2),
    Sign: per_element(1, 0),
})
