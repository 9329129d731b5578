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
        no weights needed, no dropout   attention_forward/backward: fused (online softmax;
                                        the L x S matrix is never stored), on (B, H, T, D)
                                        arrays; the heads are split here and merged back
                                        in backward (array copies, not graph ops).
        otherwise                       attention_weights_forward/backward: the weights
                                        materialized and kept, heads read in place.
    """
    @staticmethod
    def forward(ctx, *inputs, layout="q,k,v", num_heads=1, mask=None, is_causal=False, scale=1.0,
                dropout_p=0.0, seed=0, need_weights=False):
        ctx.layout, ctx.num_heads = layout, num_heads
        ctx.fused = not need_weights and dropout_p == 0.0
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
