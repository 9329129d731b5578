"""F.multi_head_attention: attention on heads-merged (B, T, H*D) tensors, as projections
make them. It must equal splitting the heads, F.scaled_dot_product_attention, and merging
them back (output and gradients), in all three input layouts (q, k, v / packed qkv / q and
packed kv); its weights (need_weights=True) must equal the composed softmax(q k^T * s + m),
gradients included; and it must fail early with clear errors."""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F
from minitensor.errors import DTypeError, ShapeError

B, L, S, H, D = 2, 4, 6, 2, 3


def _split(t, T):
    return t.reshape(B, T, H, -1).transpose(1, 2)                 # (B, H, T, d)


def _per_head(q, k, v, mask, p, causal=False):
    out = F.scaled_dot_product_attention(_split(q, L), _split(k, k.shape[1]), _split(v, v.shape[1]),
                                         attn_mask=mask, dropout_p=p, is_causal=causal)
    return out.transpose(1, 2).reshape(B, L, -1)


LAYOUT_MASKS = [(layout, mask) for layout in ("q,k,v", "qkv", "q,kv")
                for mask in (None, "bool", "float_per_head")] + [("qkv", "causal")]


@pytest.mark.parametrize("p", [0.0, 0.4])
@pytest.mark.parametrize("layout,mask_kind", LAYOUT_MASKS)
def test_equals_split_heads_attention(backend, layout, mask_kind, p):
    rng = np.random.default_rng(3)
    tk = L if layout == "qkv" else S
    mask = None
    if mask_kind == "bool":
        mask = rng.random((B, 1, L, tk)) > 0.3
        mask[0, 0, 1] = False                                     # a query that sees nothing
    elif mask_kind == "float_per_head":
        mask = rng.standard_normal((B, H, L, tk))
    causal = mask_kind == "causal"
    dout = rng.standard_normal((B, L, H * D))
    if layout == "qkv":
        packed = [rng.standard_normal((B, L, 3 * H * D))]
    elif layout == "q,kv":
        packed = [rng.standard_normal((B, L, H * D)), rng.standard_normal((B, S, 2 * H * D))]
    else:
        packed = [rng.standard_normal((B, L, H * D)), rng.standard_normal((B, S, H * D)),
                  rng.standard_normal((B, S, H * D))]
    results = []
    for merged in (True, False):
        leaves = [mt.tensor(a, requires_grad=True) for a in packed]
        if layout == "qkv":
            q, k, v = leaves[0].chunk(3, axis=-1)
            args = (leaves[0], None, None)
        elif layout == "q,kv":
            q, (k, v) = leaves[0], leaves[1].chunk(2, axis=-1)
            args = (leaves[0], leaves[1], None)
        else:
            q, k, v = leaves
            args = tuple(leaves)
        mt.manual_seed(9)
        if merged:
            out = F.multi_head_attention(*args, H, attn_mask=mask, dropout_p=p, is_causal=causal)
        else:
            out = _per_head(q, k, v, mask, p, causal)
        out.backward(mt.tensor(dout))
        results.append([out.data] + [t.grad.data for t in leaves])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert np.isfinite(results[0][0]).all()


def test_dropout_draws_one_seed_and_only_with_dropout():
    q = mt.tensor(np.random.default_rng(0).standard_normal((B, L, H * D)))
    mt.manual_seed(1)
    F.multi_head_attention(q, q, q, H, dropout_p=0.0)
    a = mt.randn(3).data
    mt.manual_seed(1)
    b = mt.randn(3).data
    np.testing.assert_array_equal(a, b)                            # p = 0 drew nothing
    mt.manual_seed(1)
    x = F.multi_head_attention(q, q, q, H, dropout_p=0.5).data
    mt.manual_seed(1)
    y = F.multi_head_attention(q, q, q, H, dropout_p=0.5).data
    np.testing.assert_array_equal(x, y)


def test_errors_name_the_op():
    t = mt.tensor(np.zeros((B, L, H * D)))
    with pytest.raises(ShapeError, match="multi_head_attention.*3-D"):
        F.multi_head_attention(mt.tensor(np.zeros((L, H * D))), t, t, H)
    with pytest.raises(ShapeError, match="multi_head_attention.*divisible"):
        F.multi_head_attention(t, t, t, 4)
    with pytest.raises(ShapeError, match="multi_head_attention.*packed"):
        F.multi_head_attention(mt.tensor(np.zeros((B, L, 7))), None, None, 1)
    with pytest.raises(ShapeError, match="multi_head_attention.*differ"):
        F.multi_head_attention(t, mt.tensor(np.zeros((B, S, H * D))), t, H)
    with pytest.raises(ShapeError, match="multi_head_attention.*broadcast"):
        F.multi_head_attention(t, t, t, H, attn_mask=np.zeros((3, L, L)))
    with pytest.raises(DTypeError, match="multi_head_attention"):
        F.multi_head_attention(t, t.float(), t, H)
    with pytest.raises(ValueError, match="multi_head_attention"):
        F.multi_head_attention(t, t, t, H, attn_mask=np.zeros((L, L)), is_causal=True)
    with pytest.raises(ValueError, match="multi_head_attention"):
        F.multi_head_attention(t, None, t, H)


def _composed_weights(q, k, mask, causal, scale):
    """softmax(q_h k_h^T * scale + mask) per head from separate ops, blocked rows zeroed."""
    qh, kh = _split(q, q.shape[1]), _split(k, k.shape[1])                # (B, H, T, D)
    s = F.matmul(qh, kh.transpose(-1, -2)) * scale                        # (B, H, L, S)
    m = np.zeros(s.shape)
    if causal:
        m = np.where(np.tril(np.ones(s.shape[-2:], bool)), 0.0, -np.inf) + m
    elif mask is not None:
        m = np.where(mask, 0.0, -np.inf) + m
    blocked = np.all(np.isneginf(m), axis=-1, keepdims=True)
    w = F.softmax(s + mt.tensor(np.where(blocked, 0.0, m)), -1)
    return F.masked_fill(w, np.broadcast_to(blocked, w.shape), 0.0)


@pytest.mark.parametrize("p", [0.0, 0.4])
@pytest.mark.parametrize("mask_kind", [None, "bool", "causal"])
def test_weights_equal_the_composed_softmax_with_gradients(backend, mask_kind, p):
    """need_weights=True: the weights (before dropout) equal softmax(q k^T * s + m) from
    separate ops, and a loss on both outputs gives the same gradients."""
    rng = np.random.default_rng(4)
    mask = None
    if mask_kind == "bool":
        mask = rng.random((B, 1, L, L)) > 0.3
        mask[1, 0, 2] = False                                     # a query that sees nothing
    causal = mask_kind == "causal"
    x = rng.standard_normal((B, L, 3 * H * D))
    dout, dw = rng.standard_normal((B, L, H * D)), rng.standard_normal((B, H, L, L))
    results = []
    for fused in (True, False):
        leaf = mt.tensor(x, requires_grad=True)
        q, k, v = leaf.chunk(3, axis=-1)
        mt.manual_seed(2)
        if fused:
            out, w = F.multi_head_attention(leaf, None, None, H, attn_mask=mask, dropout_p=p,
                                            is_causal=causal, need_weights=True)
        else:
            out = _per_head(q, k, v, mask, p, causal)
            w = _composed_weights(q, k, mask, causal, 1 / np.sqrt(D))
        loss = (out * mt.tensor(dout)).sum() + (w * mt.tensor(dw)).sum()
        loss.backward()
        results.append([out.data, w.data, leaf.grad.data])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert np.all(results[0][1][1, :, 2] == 0) if mask_kind == "bool" else True


def test_weights_alone_get_gradients(backend):
    """Only the weights reach the loss: the output's gradient is None inside the op."""
    rng = np.random.default_rng(5)
    leaf = mt.tensor(rng.standard_normal((B, L, 3 * H * D)), requires_grad=True)
    _, w = F.multi_head_attention(leaf, None, None, H, need_weights=True)
    (w * w).sum().backward()
    q, k, _ = mt.tensor(leaf.data, requires_grad=True).chunk(3, axis=-1)
    assert np.isfinite(leaf.grad.data).all() and np.abs(leaf.grad.data).max() > 0
    assert np.all(leaf.grad.data[..., 2 * H * D:] == 0)                  # v is not used


def test_mask_shape_error_names_the_mask_and_the_shape_it_should_fit():
    t = mt.tensor(np.zeros((B, L, H * D)))
    with pytest.raises(ShapeError, match=r"attn_mask of shape \(3, 4, 4\) does not broadcast to "
                                         r"the attention scores' shape \(2, 2, 4, 4\)"):
        F.multi_head_attention(t, t, t, H, attn_mask=np.zeros((3, L, L)))
