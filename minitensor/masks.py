"""Attention masks: every conversion, in one place.

An attention op wants one *additive* float mask: 0 where a query may look at a key,
-inf where it may not, added to the scores before the softmax. Callers hand masks over
in three forms, and this module turns each into that one:

==================================  ======================================================
the caller passes                   becomes
==================================  ======================================================
a bool mask, True = **may attend**  0 where True, -inf where False (``true_means="attend"``:
                                    ``F.scaled_dot_product_attention``, as torch.nn.functional)
a bool mask, True = **blocked**     -inf where True, 0 where False (``true_means="blocked"``:
                                    ``MultiheadAttention`` and the Transformer modules, as torch.nn)
a float mask                        the same values, cast to the scores' dtype
``is_causal``                       ``causal_mask(L, S, past)``: query i sees keys j <= past + i
==================================  ======================================================

The two bool conventions are PyTorch's, both of them; naming the convention at every call
(``true_means=...``) is what keeps them from meeting.

    additive_mask(mask, dtype, true_means, name)   any mask above -> additive array (or None)
    causal_mask(L, S, past)                        bool (L, S), True = blocked
    causal_additive_mask(L, S, past, dtype)        the same as 0 / -inf

This module imports no op: the attention Function (``ops/attention.py``), the functional
wrappers and ``transformer/masks.py`` all build on it.
"""
from __future__ import annotations

import numpy as np

from .errors import DTypeError
from .tensor import Tensor

_CONVENTIONS = ("attend", "blocked")


def additive_mask(mask, dtype, true_means: str, name: str = "attention",
                  label: str = "mask") -> np.ndarray | None:
    """A bool or float mask (ndarray, Tensor or nested lists) as an additive float array.

    Args:
        mask: None, a bool mask or a float mask (any shape; no broadcasting happens here).
        dtype: the scores' dtype; the result has it.
        true_means: "attend" (bool True = may attend, torch.nn.functional's convention)
            or "blocked" (bool True = may NOT attend, torch.nn's modules' convention).
        name, label: the caller and the argument, for the error message.
    Returns:
        None for None; else an array of ``dtype``: 0 = visible, -inf = blocked (float
        masks keep their values).
    """
    if true_means not in _CONVENTIONS:
        raise ValueError(f"additive_mask: true_means must be one of {_CONVENTIONS}, got {true_means!r}")
    if mask is None:
        return None
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype == np.bool_:
        visible = m if true_means == "attend" else ~m
        return np.where(visible, np.asarray(0, dtype), np.asarray(-np.inf, dtype))
    if m.dtype.kind != "f":
        raise DTypeError(f"{name}: {label} must be bool or float, got dtype {m.dtype} "
                         f"(shape {m.shape})")
    return m.astype(dtype, copy=False)


def causal_mask(size: int, keys: int | None = None, past: int = 0) -> np.ndarray:
    """(L, S) bool mask, True where query i may NOT see key j, i.e. j > past + i.

    Args:
        size: L, the number of queries.
        keys: S, the number of keys (default L).
        past: keys already cached before this block of queries (KV-cached decoding:
            the new positions are past .. past + L - 1). 0 gives torch's top-left
            aligned causal mask.
    """
    keys = size if keys is None else keys
    return np.triu(np.ones((size, keys), dtype=bool), k=past + 1)  # (L, S)


def causal_additive_mask(size: int, keys: int | None = None, past: int = 0,
                         dtype=np.float64) -> np.ndarray:
    """``causal_mask`` as an additive float mask (L, S): -inf above the shifted diagonal, 0 elsewhere."""
    return additive_mask(causal_mask(size, keys, past), dtype, true_means="blocked")  # (L, S)
