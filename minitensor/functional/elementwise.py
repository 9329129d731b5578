"""Elementwise wrappers (the Functions of ``ops/elementwise.py``): arithmetic with
broadcasting, exp/log/sqrt/tanh/sigmoid/abs, maximum/minimum/clamp, where, masked_fill,
cast and clone.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import DEFAULT_DTYPE, is_scalar, result_dtype
from ..errors import DTypeError, ShapeError
from ..ops import elementwise as E
from ..tensor import Tensor, as_tensor
from ._checks import _broadcast_shape, _pair

def _binary(op_cls, name: str, a, b) -> Tensor:
    a, b = _pair(a, b)
    _broadcast_shape(name, a.shape, b.shape)
    return op_cls.apply(a, b)


def add(a, b) -> Tensor:
    """a + b with broadcasting."""
    return _binary(E.Add, "add", a, b)


def sub(a, b) -> Tensor:
    """a - b with broadcasting."""
    a, b = _pair(a, b)
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        raise DTypeError(f"sub: subtracting two bool tensors (shapes {a.shape} and {b.shape}) is "
                         "not supported; use ^ (logical xor) or convert with .float()")
    return _binary(E.Sub, "sub", a, b)


def mul(a, b) -> Tensor:
    """a * b with broadcasting."""
    return _binary(E.Mul, "mul", a, b)


def div(a, b) -> Tensor:
    """a / b with broadcasting (true division: integer inputs give floats)."""
    a, b = _pair(a, b)
    if a.dtype.kind != "f":  # true division of integers gives the default float (torch)
        a, b = a.to(DEFAULT_DTYPE), b.to(DEFAULT_DTYPE)
    return _binary(E.Div, "div", a, b)


def neg(x: Tensor) -> Tensor:
    """-x."""
    x = as_tensor(x)
    if x.dtype == np.bool_:
        raise DTypeError(f"neg: negating a bool tensor (shape {x.shape}) is not supported; use ~")
    return E.Neg.apply(x)


def pow(x, exponent) -> Tensor:
    """x ** exponent; a Python-number exponent is a constant (no gradient)."""
    if isinstance(x, Tensor) and is_scalar(exponent):
        dtype = result_dtype(x, exponent)  # int64 ** 2.5 -> float32; float32 ** 2.0 -> float32
        if dtype != np.bool_:
            return E.PowScalar.apply(x.to(dtype), exponent=exponent)
    x, exponent = _pair(x, exponent)
    if x.dtype == np.bool_:  # NumPy's bool ** bool is int8; torch's stays bool
        return _binary(E.Pow, "pow", x.to(np.uint8), exponent.to(np.uint8)).to(np.bool_)
    return _binary(E.Pow, "pow", x, exponent)


def _unary(op_cls, x) -> Tensor:
    x = as_tensor(x)
    if x.dtype.kind != "f":
        x = x.float()  # exp/log/... of integer input give float32, as in torch
    return op_cls.apply(x)


def exp(x) -> Tensor:
    """e ** x."""
    return _unary(E.Exp, x)


def log(x) -> Tensor:
    """Natural logarithm."""
    return _unary(E.Log, x)


def sqrt(x) -> Tensor:
    """Square root."""
    return _unary(E.Sqrt, x)


def tanh(x) -> Tensor:
    """Hyperbolic tangent."""
    return _unary(E.Tanh, x)


def sigmoid(x) -> Tensor:
    """Logistic sigmoid 1 / (1 + e^-x), overflow-free for large |x|."""
    return _unary(E.Sigmoid, x)


def abs(x) -> Tensor:
    """|x|."""
    return E.Abs.apply(as_tensor(x))


def cast(x: Tensor, dtype) -> Tensor:
    """x converted to another floating dtype (differentiable)."""
    return E.Cast.apply(x, dtype=np.dtype(dtype))


def clone(x: Tensor) -> Tensor:
    """A copy of x in new memory (differentiable)."""
    return E.Clone.apply(x)


def maximum(a, b) -> Tensor:
    """Elementwise max; at ties each input gets half the gradient (as torch)."""
    return _binary(E.Maximum, "maximum", a, b)


def minimum(a, b) -> Tensor:
    """Elementwise min; at ties each input gets half the gradient (as torch)."""
    return _binary(E.Minimum, "minimum", a, b)


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    """Limit x to [min, max] (either may be None)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    x = as_tensor(x)
    x = x.to(result_dtype(x, *(v for v in (min, max) if v is not None)))  # int x, 0.5 -> float32
    return E.Clamp.apply(x, lo=min, hi=max)


def where(condition, a, b) -> Tensor:
    """``a`` where ``condition`` is True, else ``b`` (broadcasting all three)."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise DTypeError(f"where: condition must be a bool tensor, got dtype {cond.dtype}")
    a, b = _pair(a, b)
    _broadcast_shape("where", cond.shape, a.shape, b.shape)
    return E.Where.apply(a, b, condition=cond)


def masked_fill(x: Tensor, mask, value) -> Tensor:
    """A copy of x with ``value`` wherever ``mask`` (bool, broadcastable to x) is True."""
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise DTypeError(f"masked_fill: mask must be a bool tensor, got dtype {m.dtype}")
    if _broadcast_shape("masked_fill", x.shape, m.shape) != x.shape:
        raise ShapeError(f"masked_fill: mask of shape {m.shape} does not broadcast to the "
                         f"tensor's shape {x.shape}")
    value = value.item() if isinstance(value, Tensor) else value
    return E.MaskedFill.apply(x, mask=m, value=value)


# ---------------------------------------------------------------------------- more unary math
# (torch.sin/cos/rsqrt/square/sign; integer input gives float32 for sin, cos and rsqrt)

def sin(x) -> Tensor:
    """Sine (radians)."""
    return _unary(E.Sin, x)


def cos(x) -> Tensor:
    """Cosine (radians)."""
    return _unary(E.Cos, x)


def rsqrt(x) -> Tensor:
    """1 / sqrt(x)."""
    return _unary(E.Rsqrt, x)


def square(x) -> Tensor:
    """x * x (keeps an integer dtype, as torch)."""
    x = as_tensor(x)
    if x.dtype == np.bool_:
        raise DTypeError(f"square: a bool tensor (shape {x.shape}) cannot be squared; "
                         "convert it with .float() or .long()")
    return E.Square.apply(x)


def sign(x) -> Tensor:
    """-1, 0 or 1 by the sign of x (same dtype); its gradient is 0, as torch's."""
    x = as_tensor(x)
    if x.dtype == np.bool_:
        return clone(x)  # torch.sign of a bool tensor is the tensor itself
    return E.Sign.apply(x)
