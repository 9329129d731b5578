"""``pad``: grow (or crop) the trailing axes of a tensor, as ``torch.nn.functional.pad``.

``pad`` lists (before, after) amounts from the LAST axis backwards, torch's convention:
``(1, 2)`` pads the last axis by 1 before and 2 after, ``(1, 2, 3, 4)`` also pads the
second-to-last by 3 and 4. Negative amounts crop.

Composed from differentiable ops: constant padding concatenates blocks of ``value``
(``cat``); reflect, replicate and circular padding gather the source positions along
each axis with an integer index (``getitem``), whose gradient adds up repeated reads.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor, as_tensor
from ._checks import _check_float
from .shape import cat, getitem

_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_pairs(pad, ndim: int) -> list[tuple[int, int, int]]:
    """(axis, before, after) for each axis the ``pad`` tuple names."""
    try:
        amounts = [int(p) for p in pad]
    except (TypeError, ValueError):
        raise TypeError(f"pad: pad must be a sequence of ints, got {pad!r}") from None
    if len(amounts) % 2:
        raise ValueError(f"pad: padding length must be divisible by 2, got {len(amounts)} "
                         f"({tuple(amounts)})")
    if len(amounts) // 2 > ndim:
        raise ValueError(f"pad: padding length {len(amounts)} is too large for a tensor with "
                         f"{ndim} dims (at most {2 * ndim})")
    return [(ndim - 1 - i, amounts[2 * i], amounts[2 * i + 1]) for i in range(len(amounts) // 2)]


def _source_index(mode: str, n: int, before: int, after: int) -> np.ndarray:
    """For each output position along one axis, the input position it copies."""
    out = np.arange(-before, n + after)
    if mode == "replicate":
        return np.clip(out, 0, n - 1)
    if mode == "circular":
        return out % n
    period = 2 * (n - 1)  # reflect: ... 2 1 [0 1 2 ... n-1] n-2 n-3 ...
    folded = np.abs(out) % period if period else np.zeros_like(out)
    return np.where(folded < n, folded, period - folded)


def _check_mode_shapes(mode: str, x: Tensor, pairs: list) -> None:
    """torch pads 1, 2 or 3 trailing axes in the non-constant modes, of a (batched) input."""
    k = len(pairs)
    if k not in (1, 2, 3) or x.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"pad: mode {mode!r} pads the last 1, 2 or 3 axes of a 2-D to 5-D input "
            f"(pad of length 2, 4 or 6 with an input of {k + 1} or {k + 2} dims); got pad of "
            f"length {2 * k} and input of shape {x.shape}")
    for axis, before, after in pairs:
        n = x.shape[axis]
        if before < 0 or after < 0:
            raise ValueError(f"pad: negative padding ({before}, {after}) is only supported in "
                             f"'constant' mode, got mode {mode!r}")
        limit = n - 1 if mode == "reflect" else (n if mode == "circular" else None)
        if n == 0 or (limit is not None and max(before, after) > limit):
            raise ValueError(f"pad: padding ({before}, {after}) of axis {axis} is too large for "
                             f"mode {mode!r} and input of shape {x.shape} (at most {limit})")


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad (or crop, with negative amounts) the trailing axes named by ``pad``.

    Args:
        input: any shape.
        pad: (before_last, after_last, before_second_last, after_second_last, ...),
            an even number of ints, at most 2 * input.ndim.
        mode: "constant" (fill with ``value``), "reflect" (mirror without repeating the
            edge), "replicate" (repeat the edge) or "circular" (wrap around).
        value: the fill value of "constant" mode (0 by default).
    Returns:
        A tensor whose axis ``d`` has size shape[d] + before + after.
    """
    if mode not in _MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
    input = as_tensor(input)
    pairs = _pad_pairs(pad, input.ndim)
    out = input
    if mode != "constant":
        if value is not None and value != 0:
            raise ValueError(f"pad: padding mode {mode!r} doesn't take in value argument")
        _check_mode_shapes(mode, input, pairs)
        _check_float("pad", input)
        for axis, before, after in pairs:
            index = (slice(None),) * axis + (_source_index(mode, out.shape[axis], before, after),)
            out = getitem(out, index)
        return out
    fill = 0 if value is None else value
    for axis, before, after in pairs:
        n = out.shape[axis]
        cropped = max(-before, 0) + max(-after, 0)
        if cropped > n or n + before + after < 0:
            raise ShapeError(f"pad: padding ({before}, {after}) of axis {axis} would give a "
                             f"negative size for input of shape {input.shape}")
        if before < 0 or after < 0:  # crop first
            index = (slice(None),) * axis + (slice(max(-before, 0), n - max(-after, 0)),)
            out = getitem(out, index)
        pieces = []
        for amount in (before, after):
            shape = list(out.shape)
            shape[axis] = max(amount, 0)
            pieces.append(Tensor._make(np.full(shape, fill, dtype=out.dtype), None))
        if before > 0 or after > 0:
            out = cat([pieces[0], out, pieces[1]], axis)
    return out
