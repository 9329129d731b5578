"""F.multi_head_sdpa: attention on heads-merged (B, T, H*D) tensors, as projections make
them. It must equal splitting the heads, F.scaled_dot_product_attention, and merging them
back (output and gradients), in all three input layouts (q, k, v / packed qkv / q and
packed kv), and fail early with clear errors."""
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
            out = F.multi_head_sdpa(*args, H, attn_mask=mask, dropout_p=p, is_causal=causal)
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
    F.multi_head_sdpa(q, q, q, H, dropout_p=0.0)
    a = mt.randn(3).data
    mt.manual_seed(1)
    b = mt.randn(3).data
    np.testing.assert_array_equal(a, b)                            # p = 0 drew nothing
    mt.manual_seed(1)
    x = F.multi_head_sdpa(q, q, q, H, dropout_p=0.5).data
    mt.manual_seed(1)
    y = F.multi_head_sdpa(q, q, q, H, dropout_p=0.5).data
    np.testing.assert_array_equal(x, y)


def test_errors_name_the_op():
    t = mt.tensor(np.zeros((B, L, H * D)))
    with pytest.raises(ShapeError, match="multi_head_sdpa.*3-D"):
        F.multi_head_sdpa(mt.tensor(np.zeros((L, H * D))), t, t, H)
    with pytest.raises(ShapeError, match="multi_head_sdpa.*divisible"):
        F.multi_head_sdpa(t, t, t, 4)
    with pytest.raises(ShapeError, match="multi_head_sdpa.*packed"):
        F.multi_head_sdpa(mt.tensor(np.zeros((B, L, 7))), None, None, 1)
    with pytest.raises(ShapeError, match="multi_head_sdpa.*differ"):
        F.multi_head_sdpa(t, mt.tensor(np.zeros((B, S, H * D))), t, H)
    with pytest.raises(ShapeError, match="multi_head_sdpa.*broadcast"):
        F.multi_head_sdpa(t, t, t, H, attn_mask=np.zeros((3, L, L)))
    with pytest.raises(DTypeError, match="multi_head_sdpa"):
        F.multi_head_sdpa(t, t.float(), t, H)
    with pytest.raises(ValueError, match="multi_head_sdpa"):
        F.multi_head_sdpa(t, t, t, H, attn_mask=np.zeros((L, L)), is_causal=True)
    with pytest.raises(ValueError, match="multi_head_sdpa"):
        F.multi_head_sdpa(t, None, t, H)
