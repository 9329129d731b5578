"""Product and matrix wrappers: einsum, bmm, mm, outer, t, tril and triu.

``bmm``/``mm`` are ``matmul`` with PyTorch's stricter shape rules (exactly 3-D / 2-D, no
broadcasting); ``outer`` is a broadcast product; ``einsum`` is the ``Einsum`` op of
``ops/einsum.py`` after its equation is rewritten to one letter per axis.
"""
from __future__ import annotations

import string

import numpy as np

from ..errors import ShapeError
from ..ops import einsum as ES
from ..ops import linalg as LA
from ..tensor import Tensor, as_tensor
from ._checks import _pair
from .elementwise import mul
from .linalg import matmul
from .shape import reshape, transpose


def bmm(a, b) -> Tensor:
    """Batched matrix product: a (B, n, m) @ b (B, m, p) -> (B, n, p); no broadcasting."""
    a, b = _pair(a, b)
    if a.ndim != 3 or b.ndim != 3:
        raise ShapeError(f"bmm: both arguments must be 3-D (batch, rows, cols), got shapes "
                         f"{a.shape} and {b.shape}")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ShapeError(f"bmm: shapes {a.shape} and {b.shape} do not fit (need (B, n, m) and "
                         "(B, m, p) with the same B and m)")
    return matmul(a, b)


def mm(a, b) -> Tensor:
    """Matrix product of two 2-D tensors: (n, m) @ (m, p) -> (n, p)."""
    a, b = _pair(a, b)
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"mm: both arguments must be 2-D matrices, got shapes {a.shape} and "
                         f"{b.shape}")
    return matmul(a, b)


def outer(a, b) -> Tensor:
    """Outer product of two vectors: (n,) and (m,) -> (n, m) with out[i, j] = a[i] * b[j]."""
    a, b = _pair(a, b)
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"outer: both arguments must be 1-D vectors, got shapes {a.shape} and "
                         f"{b.shape}")
    return mul(reshape(a, -1, 1), reshape(b, 1, -1))


def t(x: Tensor) -> Tensor:
    """The transpose of a matrix (a tensor with at most 2 dims is returned as is, or swapped)."""
    x = as_tensor(x)
    if x.ndim > 2:
        raise ShapeError(f"t: expects a tensor with <= 2 dims, got shape {x.shape}; use "
                         "transpose(dim0, dim1) or .mT")
    return transpose(x, 0, 1) if x.ndim == 2 else x


def _triangle(op_cls, name: str, x, diagonal: int) -> Tensor:
    x = as_tensor(x)
    if x.ndim < 2:
        raise ShapeError(f"{name}: input must have at least 2 dims (the last two are the matrix), "
                         f"got shape {x.shape}")
    if not isinstance(diagonal, (int, np.integer)) or isinstance(diagonal, bool):
        raise TypeError(f"{name}: diagonal must be an int, got {diagonal!r}")
    return op_cls.apply(x, diagonal=int(diagonal))


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two axes (entries with j - i <= diagonal), zeros above."""
    return _triangle(LA.Tril, "tril", x, diagonal)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two axes (entries with j - i >= diagonal), zeros below."""
    return _triangle(LA.Triu, "triu", x, diagonal)


# ----------------------------------------------------------------------------- einsum

def _explicit(equation: str, operands) -> tuple[list[str], str]:
    """Rewrite an einsum equation into one subscript string per operand and the output's,
    with ``...`` replaced by letters unused elsewhere (aligned from the right, as broadcasting)
    and an implicit output (no ``->``) made explicit: the broadcast axes, then every letter
    used once, in alphabetical order (upper case first), as torch."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: equation {equation!r} has {len(terms)} operand subscripts but "
                         f"{len(operands)} operands were given")
    for term in terms + ([rhs] if arrow else []):
        letters = term.replace("...", "")
        if "." in letters or not all(c in string.ascii_letters for c in letters):
            raise ValueError(f"einsum: invalid subscript {term!r} in {equation!r} (use letters "
                             "a-z, A-Z and at most one '...')")
    free = [c for c in string.ascii_letters if c not in eq]
    widths = []
    for term, x in zip(terms, operands):
        n_letters = len(term.replace("...", ""))
        width = x.ndim - n_letters
        if ("..." in term and width < 0) or ("..." not in term and width != 0):
            raise ShapeError(f"einsum: subscript {term!r} names {n_letters} dims but the operand "
                             f"has shape {x.shape}")
        widths.append(width if "..." in term else 0)
    batch = "".join(free[:max(widths, default=0)])
    inputs = [term.replace("...", batch[len(batch) - w:] if w else "") for term, w in zip(terms, widths)]
    if arrow:
        output = rhs.replace("...", batch)
    else:
        counts = {c: "".join(inputs).count(c) for c in "".join(inputs)}
        output = batch + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in batch))
    unknown = [c for c in output if c not in "".join(inputs)]
    if unknown or len(set(output)) != len(output):
        raise ValueError(f"einsum: output subscripts of {equation!r} must be distinct letters "
                         "that appear in the inputs")
    return inputs, output


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, e.g. ``einsum("bij,bjk->bik", a, b)`` (batched matmul),
    ``einsum("...hd,...kd->...hk", q, k)``, ``einsum("ii->", x)`` (trace).

    Operands may also be given as one list. Differentiable in every operand; size-1 axes
    broadcast against the same letter's size elsewhere (as torch).
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: at least one operand is required")
    xs = [as_tensor(x) for x in operands]
    inputs, output = _explicit(equation, xs)
    sizes: dict = {}
    for subs, x in zip(inputs, xs):
        for letter, n in zip(subs, x.shape):
            if letter in sizes and n != sizes[letter] and 1 not in (n, sizes[letter]):
                raise ShapeError(f"einsum: subscript {letter!r} has size {n} in one operand and "
                                 f"{sizes[letter]} in another (equation {equation!r}, shapes "
                                 f"{[x.shape for x in xs]})")
            sizes[letter] = max(sizes.get(letter, 1), n) if letter in sizes else n
    for subs, x in zip(inputs, xs):
        repeated = {c for c in subs if subs.count(c) > 1}
        if any(len({n for c2, n in zip(subs, x.shape) if c2 == c}) > 1 for c in repeated):
            raise ShapeError(f"einsum: a repeated subscript in {subs!r} needs equal sizes, got "
                             f"shape {x.shape}")
    dtypes = {x.dtype for x in xs}
    if len(dtypes) > 1:
        raise ValueError(f"einsum: operands must have the same dtype, got {sorted(map(str, dtypes))}")
    return ES.Einsum.apply(*xs, inputs=inputs, output=output)
