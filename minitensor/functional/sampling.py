"""Random sampling from minitensor's one seeded generator (``minitensor/random.py``):
multinomial, randperm, and the in-place fills behind ``Tensor.normal_``/``uniform_``.

None of them is differentiable; ``mt.manual_seed`` makes each reproducible.
"""
from __future__ import annotations

import numpy as np

from .. import random as _random
from ..dtypes import as_dtype
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor, as_tensor


def _no_generator(name: str, generator) -> None:
    if generator is not None:
        raise NotImplementedError(f"{name}: generator= is not supported; minitensor has one "
                                  "seeded generator (seed it with mt.manual_seed)")


def multinomial(x, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Draw category indices with probability proportional to the weights in x.

    Args:
        x: (C,) or (N, C) non-negative weights (need not sum to 1), at least one > 0 per row.
        num_samples: draws per row; without replacement at most the number of non-zero
            weights (each category at most once).
    Returns:
        (num_samples,) or (N, num_samples) int64 indices.
    """
    _no_generator("multinomial", generator)
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise DTypeError(f"multinomial: weights must be a floating-point tensor, got {x.dtype}")
    if x.ndim not in (1, 2) or x.shape[-1] == 0:
        raise ShapeError(f"multinomial: weights must be 1-D or 2-D with at least one category, "
                         f"got shape {x.shape}")
    if not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be a positive int, got {num_samples!r}")
    rows = x.data.reshape(-1, x.shape[-1]).astype(np.float64)
    if not np.all(np.isfinite(rows)) or np.any(rows < 0):
        raise ValueError("multinomial: weights must be finite and non-negative "
                         "(probability tensor contains inf, nan or an element < 0)")
    totals = rows.sum(axis=1)
    if np.any(totals <= 0):
        raise ValueError("multinomial: every row of weights needs a positive sum "
                         "(got a row of zeros)")
    if not replacement:
        if num_samples > x.shape[-1]:
            raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement "
                             f"from {x.shape[-1]} categories")
        if np.any((rows > 0).sum(axis=1) < num_samples):
            raise ValueError(f"multinomial: not enough categories with a non-zero weight to draw "
                             f"{num_samples} samples without replacement")
    rng = _random.generator()
    draws = np.stack([rng.choice(rows.shape[1], size=int(num_samples), replace=bool(replacement),
                                 p=row / total) for row, total in zip(rows, totals)])
    return Tensor._make(draws.reshape(*x.shape[:-1], int(num_samples)).astype(np.int64), None)


def randperm(n: int, *, generator=None, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of 0..n-1 (int64 by default)."""
    _no_generator("randperm", generator)
    if device is not None and str(device) != "cpu":
        raise ValueError(f"randperm: only the 'cpu' device exists in minitensor, got {device!r}")
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"randperm: n must be a non-negative int, got {n!r}")
    out = Tensor._make(_random.generator().permutation(int(n)).astype(
        as_dtype(dtype) if dtype is not None else np.int64), None)
    if requires_grad:
        out.requires_grad = True  # raises the usual error for integer dtypes
    return out


def fill_normal(x: Tensor, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """Normal(mean, std) draws of x's shape and dtype (for ``Tensor.normal_``)."""
    _check_fill("normal_", x)
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _random.generator().normal(mean, std, x.shape).astype(x.dtype)


def fill_uniform(x: Tensor, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Uniform [low, high) draws of x's shape and dtype (for ``Tensor.uniform_``)."""
    _check_fill("uniform_", x)
    if low > high:
        raise ValueError(f"uniform_: expects from <= to, got from={low} and to={high}")
    return _random.generator().uniform(low, high, x.shape).astype(x.dtype)


def _check_fill(name: str, x: Tensor) -> None:
    if x.dtype.kind != "f":
        raise DTypeError(f"{name}: expects a floating-point tensor, got dtype {x.dtype} "
                         f"(shape {x.shape})")
