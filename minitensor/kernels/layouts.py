"""How attention's inputs hold q, k and v: the three layouts a projection produces.

    "q,k,v"  three arrays q (B, L, E), k (B, S, E), v (B, S, Ev)
    "qkv"    one array (B, L, 3E): q, k, v side by side (self-attention, one projection)
    "q,kv"   q (B, L, E) and one array (B, S, E + Ev): k, v side by side (key is value)

A packed input gets its gradient back packed the same way, as one array. Shared by the
attention Function (``ops/attention.py``) and the attention kernels of both backends.
"""
from __future__ import annotations

import numpy as np


def unpack_qkv(inputs, layout):
    """Views q, k, v of ``inputs`` as ``layout`` holds them (k always has q's width)."""
    if layout == "qkv":
        (x,) = inputs
        e = x.shape[-1] // 3
        return x[..., :e], x[..., e:2 * e], x[..., 2 * e:]
    if layout == "q,kv":
        q, kv = inputs
        e = q.shape[-1]
        return q, kv[..., :e], kv[..., e:]
    return tuple(inputs)


def pack_qkv(dq, dk, dv, layout):
    """Gradients dq, dk, dv laid out like the inputs (``unpack_qkv``'s inverse)."""
    if layout == "qkv":
        return (np.concatenate((dq, dk, dv), axis=-1),)
    if layout == "q,kv":
        return dq, np.concatenate((dk, dv), axis=-1)
    return dq, dk, dv
