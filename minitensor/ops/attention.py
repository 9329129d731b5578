"""The attention op: ``Attention``, one Function for every kind of scaled dot-product
attention the library does, whose forward and backward are single kernel calls (as the
fused ops of ``fused.py``).

The arithmetic lives in ``minitensor/kernels``; this class only picks the kernel pair
and connects it to the graph. ``functional/attention.py`` checks inputs and builds the
additive mask (with ``minitensor/masks.py``).
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function
from ..kernels.layouts import pack_qkv, unpack_qkv
from ..masks import causal_additive_mask
from .registry import register


# Up to this many scores per head (L * S) the weights kernels are used even when the fused
# ones could be: on small tiles they are faster (no head split/merge copies, no 128 x 64
# blocks for 11 x 11 data) and the weights they keep are small. bench/attention_route.py,
# 1 thread, forward + backward: 2x at the default task's 11 x 11, 1.9x at 32 x 32, 1.4x
# at 64 x 64; decoding (one query, 10-20 keys) 3.3-4.5x.
FUSED_MIN_SCORES = 64 * 64


@register
class Attention(Function):
    """Per head h: $\\mathrm{dropout}(\\mathrm{softmax}(Q_h K_h^T \\cdot s + M)) V_h$, on
    heads-merged, batch-first inputs q (B, L, H*D), k (B, S, H*D), v (B, S, H*Dv)
    -> out (B, L, H*Dv), or (out, weights (B, H, L, S)) when ``need_weights``.

    The layout projections produce, so multi-head attention needs no head split/merge
    ops. ``layout`` says how the inputs hold q, k, v: "q,k,v" (three tensors), "qkv"
    (one (B, L, 3*H*D) tensor, self-attention) or "q,kv" (q, and k and v side by side in
    one tensor); a packed input gets one gradient array, not slices to be summed.

    Attributes: ``num_heads`` H; ``mask`` additive (0 visible, -inf blocked),
    broadcastable to (B, H, L, S), or None; ``is_causal`` (query i sees keys j <= i;
    not combined with a mask); ``scale`` s; ``dropout_p`` and ``seed`` (dropout on the
    weights, its mask regenerated from the seed in backward); ``need_weights``.

    The weights are after softmax and before dropout, and differentiable. A query with
    no visible key outputs zeros (weights zero) and gets zero gradient.

    Which kernel pair runs:
        no weights needed, no dropout,  attention_forward/backward: fused (online softmax;
        more than FUSED_MIN_SCORES      the L x S matrix is never stored), on (B, H, T, D)
        scores per head
                                        arrays; the heads are split here and merged back
                                        in backward (array copies, not graph ops).
        otherwise                       attention_weights_forward/backward: the weights
                                        materialized and kept, heads read in place.
    """
    @staticmethod
    def forward(ctx, *inputs, layout="q,k,v", num_heads=1, mask=None, is_causal=False, scale=1.0,
                dropout_p=0.0, seed=0, need_weights=False):
        ctx.layout, ctx.num_heads = layout, num_heads
        scores = inputs[0].shape[1] * inputs[-1].shape[1]                   # L * S per head
        ctx.fused = not need_weights and dropout_p == 0.0 and scores > FUSED_MIN_SCORES
        if ctx.fused:
            q, k, v = (_split_heads(x, num_heads) for x in unpack_qkv(inputs, layout))  # (B, H, T, D)
            out, cache = kernels.get().attention_forward(q, k, v, mask, is_causal, scale)
            ctx.save_for_backward(cache)
            return _merge_heads(out)                                         # (B, L, H*Dv)
        if is_causal:
            l, s = inputs[0].shape[1], inputs[-1].shape[1]
            mask = causal_additive_mask(l, s, dtype=inputs[0].dtype)         # (L, S)
        out, cache = kernels.get().attention_weights_forward(inputs, layout, num_heads, mask,
                                                             scale, dropout_p, seed)
        ctx.save_for_backward(cache)
        ctx.out_shape = out.shape
        if need_weights:
            weights = cache[0]                                               # (B, H, L, S), kept p
            return out, weights
        return out

    @staticmethod
    def backward(ctx, g, g_weights=None):
        cache = ctx.saved_arrays[0]
        if ctx.fused:
            dout = _split_heads(g, ctx.num_heads)                            # (B, H, L, Dv)
            grads = kernels.get().attention_backward(dout, cache)            # (B, H, T, D) each
            return pack_qkv(*[_merge_heads(x) for x in grads], ctx.layout)
        if g is None:  # only the weights were used
            g = np.zeros(ctx.out_shape, g_weights.dtype)
        return kernels.get().attention_weights_backward(g, g_weights, cache)


# ------------------------------------------------------- heads-merged <-> per-head arrays

def _split_heads(x, num_heads):
    """(B, T, H*D) -> (B, H, T, D), a contiguous copy."""
    b, t, e = x.shape
    return np.ascontiguousarray(x.reshape(b, t, num_heads, e // num_heads).transpose(0, 2, 1, 3))


def _merge_heads(x):
    """(B, H, T, D) -> (B, T, H*D), a contiguous copy."""
    b, h, t, d = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(b, t, h * d)


# ------------------------------------------------------------ costs, for the profiler
# Kept as one appended block (imported here) so the kernels above stay untouched.
from ..masks import causal_mask  # noqa: E402
from .costs import set_costs  # noqa: E402


def _attention_cost(ctx, phase, ins, outs, attrs):
    """Per head and per (query, key) pair that is computed: forward 2D (q.k) + 5
    (softmax) + 2Dv (weights times v); backward 4D (dQ, dK) + 4Dv (dV, dP) + 2 (dS),
    + 2 Dv per query for the row term sum(dO * O). Recompute in the fused backward is
    not counted (these are the model's FLOPs). A causal mask computes only the visible
    pairs; any other mask is dense."""
    if phase == "forward":
        ctx.causal_cost = bool(attrs.get("is_causal", False))
    b, l, s, h, d, dv = _dims(ctx)
    pairs = l * s
    if getattr(ctx, "causal_cost", False):  # False when the forward ran unprofiled
        pairs = int((~causal_mask(l, s)).sum())
    if phase == "forward":
        return b * h * pairs * (2 * d + 5 + 2 * dv)
    return b * h * (pairs * (4 * d + 4 * dv + 2) + 2 * l * dv)


def _dims(ctx):
    """(B, L, S, H, D, Dv) from the input shapes and the layout."""
    shapes, h = ctx.input_shapes, ctx.num_heads
    b, l = shapes[0][0], shapes[0][1]
    if ctx.layout == "qkv":
        e = shapes[0][2] // 3
        return b, l, l, h, e // h, e // h
    if ctx.layout == "q,kv":
        e = shapes[0][2]
        return b, l, shapes[1][1], h, e // h, (shapes[1][2] - e) // h
    return b, l, shapes[1][1], h, shapes[0][2] // h, shapes[2][2] // h


set_costs({Attention: _attention_cost})
