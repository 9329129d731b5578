"""Attention kernels: numpy_ref.attention against PyTorch's SDPA, numba_cpu.attention against it.

The reference is checked against torch.nn.functional.scaled_dot_product_attention in
float64 (forward and backward with a random upstream gradient); the fused Numba kernel is
then held to the reference on every shape class (tiny, odd, not a multiple of the block
size, long, non-contiguous), every mask kind, fully masked rows and large logits. A
tracemalloc test checks that the fused forward's extra memory is linear in T.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from minitensor.kernels.numpy_ref import attention as ref

numba_impl = pytest.importorskip("minitensor.kernels.numba_cpu.attention")
_math = pytest.importorskip("minitensor.kernels.numba_cpu._math")

RTOL = {np.float64: 1e-10, np.float32: 1e-5}
ATOL = {np.float64: 1e-12, np.float32: 1e-6}


def _inputs(rng, B, H, Tq, Tk, D, Dv, dtype=np.float64):
    q = rng.standard_normal((B, H, Tq, D)).astype(dtype)
    k = rng.standard_normal((B, H, Tk, D)).astype(dtype)
    v = rng.standard_normal((B, H, Tk, Dv)).astype(dtype)
    dout = rng.standard_normal((B, H, Tq, Dv)).astype(dtype)
    return q, k, v, dout


def _key_padding(rng, B, Tk, n_pad):
    """(B, 1, 1, Tk) additive mask: the last n_pad[b] keys of batch b are blocked."""
    m = np.zeros((B, 1, 1, Tk))
    for b, n in enumerate(n_pad):
        if n:
            m[b, ..., Tk - n:] = -np.inf
    return m


# ------------------------------------------------------------------ reference vs torch
torch_cases = {
    "plain": dict(shape=(2, 3, 5, 5, 4, 4)),
    "causal": dict(shape=(2, 3, 6, 6, 4, 4), causal=True),
    "causal_tq_lt_tk": dict(shape=(2, 2, 4, 7, 4, 4), causal=True),
    "causal_tq_gt_tk": dict(shape=(2, 2, 7, 4, 4, 4), causal=True),
    "float_mask": dict(shape=(2, 3, 5, 6, 4, 4), mask="float"),
    "bool_mask": dict(shape=(2, 3, 5, 6, 4, 4), mask="bool"),
    "mask_TqTk": dict(shape=(2, 3, 5, 6, 4, 4), mask="2d"),
    "mask_B1TqTk": dict(shape=(2, 3, 5, 6, 4, 4), mask="b1"),
    "key_padding": dict(shape=(2, 3, 5, 6, 4, 4), mask="pad"),
    "tq_ne_tk_dv_ne_d": dict(shape=(2, 2, 3, 8, 5, 7)),
    "custom_scale": dict(shape=(2, 2, 4, 6, 4, 3), scale=0.37),
}


def _make_mask(kind, rng, B, H, Tq, Tk):
    """(our additive float mask, torch's attn_mask) for a mask kind; no row fully blocked."""
    if kind is None:
        return None, None
    if kind == "float":
        m = rng.standard_normal((B, H, Tq, Tk))
        return m, m
    if kind == "bool":
        allowed = rng.random((B, H, Tq, Tk)) < 0.6
        allowed[..., 0] = True  # keep every row alive
        return np.where(allowed, 0.0, -np.inf), allowed
    if kind == "2d":
        m = np.where(rng.random((Tq, Tk)) < 0.3, -np.inf, rng.standard_normal((Tq, Tk)))
        m[:, 0] = 0.0
        return m, m
    if kind == "b1":
        m = np.where(rng.random((B, 1, Tq, Tk)) < 0.3, -np.inf, 0.0)
        m[..., 1] = 0.0
        return m, m
    if kind == "pad":
        m = _key_padding(rng, B, Tk, [2, 0][:B] + [1] * (B - 2))
        return m, m
    raise ValueError(kind)


@pytest.mark.parametrize("name", list(torch_cases))
def test_ref_matches_torch(name):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    case = torch_cases[name]
    rng = np.random.default_rng(0)
    B, H, Tq, Tk, D, Dv = case["shape"]
    q, k, v, dout = _inputs(rng, B, H, Tq, Tk, D, Dv)
    mask, tmask = _make_mask(case.get("mask"), rng, B, H, Tq, Tk)
    causal = case.get("causal", False)
    scale = case.get("scale", 1.0 / np.sqrt(D))

    out, cache = ref.attention_forward(q, k, v, mask, causal, scale)
    dq, dk, dv = ref.attention_backward(dout, cache)

    tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    tm = None if tmask is None else torch.tensor(tmask)
    tout = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, is_causal=causal,
                                          scale=case.get("scale"))
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in ((dq, tq), (dk, tk), (dv, tv)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ fully masked rows
@pytest.mark.parametrize("impl", [ref, numba_impl], ids=["ref", "numba"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fully_masked_rows_give_zeros(impl, dtype):
    rng = np.random.default_rng(1)
    q, k, v, dout = _inputs(rng, 2, 2, 5, 6, 4, 3, dtype)
    mask = np.zeros((2, 2, 5, 6), dtype)
    mask[0, 1, 2, :] = -np.inf  # one row blocked
    mask[1, :, :, :] = -np.inf  # a whole batch element blocked
    out, cache = impl.attention_forward(q, k, v, mask, False, 0.5)
    dq, dk, dv = impl.attention_backward(dout, cache)
    for x in (out, dq, dk, dv):
        assert np.all(np.isfinite(x))
    assert np.all(out[0, 1, 2] == 0) and np.all(out[1] == 0)
    assert np.all(dq[0, 1, 2] == 0) and np.all(dq[1] == 0)
    assert np.all(dk[1] == 0) and np.all(dv[1] == 0)
    assert np.isneginf(cache["lse"][0, 1, 2]) and np.all(np.isneginf(cache["lse"][1]))
    # the visible rows are unaffected: compare with a run on the live part only
    out2, _ = impl.attention_forward(q[:1], k[:1], v[:1], mask[:1], False, 0.5)
    np.testing.assert_allclose(out[0, 0], out2[0, 0], rtol=RTOL[dtype])


# ------------------------------------------------------------------ numba vs reference
def _check_fused(q, k, v, dout, mask=None, causal=False, scale=None, dtype=np.float64,
                 rtol=None, grad_atol=None):
    rtol = RTOL[dtype] if rtol is None else rtol
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[-1])
    o1, c1 = ref.attention_forward(q, k, v, mask, causal, scale)
    o2, c2 = numba_impl.attention_forward(q, k, v, mask, causal, scale)
    assert o2.dtype == o1.dtype == dtype and o2.shape == o1.shape
    g1 = ref.attention_backward(dout, c1)
    g2 = numba_impl.attention_backward(dout, c2)
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), (o1, c1["lse"]) + g1,
                          (o2, c2["lse"]) + g2):
        assert a.shape == b.shape and b.dtype == dtype, name
        assert np.all(np.isfinite(b) | np.isneginf(a)), name
        atol = ATOL[dtype] * max(1.0, float(np.max(np.abs(a[np.isfinite(a)]), initial=0)))
        if grad_atol is not None and name in ("dq", "dk"):
            atol = grad_atol
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=name)
    assert "p" not in c2, "the fused cache must not hold (Tq, Tk) probabilities"


shape_cases = {
    "tiny": (1, 1, 1, 1, 1, 1),
    "odd": (2, 3, 7, 11, 5, 5),
    "odd_dv": (2, 3, 7, 11, 5, 3),
    "not_block_multiple": (1, 2, 130, 67, 16, 16),
    "tq_gt_tk": (1, 2, 200, 70, 8, 8),
    "long": (1, 2, 512, 512, 32, 32),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", list(shape_cases))
def test_fused_matches_ref_shapes(name, causal, dtype):
    rng = np.random.default_rng(2)
    _check_fused(*_inputs(rng, *shape_cases[name], dtype), causal=causal, dtype=dtype)


mask_kinds = ["float_full", "bool_full", "TqTk", "B1TqTk", "key_padding", "broadcast_view",
              "inf_entries", "per_query"]


def _fused_mask(kind, rng, B, H, Tq, Tk, dtype):
    if kind == "float_full":
        return rng.standard_normal((B, H, Tq, Tk)).astype(dtype)
    if kind == "bool_full":
        return np.where(rng.random((B, H, Tq, Tk)) < 0.5, 0.0, -np.inf).astype(dtype)
    if kind == "TqTk":
        return rng.standard_normal((Tq, Tk)).astype(dtype)
    if kind == "B1TqTk":
        return np.where(rng.random((B, 1, Tq, Tk)) < 0.3, -np.inf, 0.0).astype(dtype)
    if kind == "key_padding":
        return _key_padding(rng, B, Tk, [3, 0] + [1] * (B - 2)).astype(dtype)
    if kind == "broadcast_view":  # zero strides, as np.broadcast_to makes
        return np.broadcast_to(rng.standard_normal((1, H, 1, Tk)).astype(dtype), (B, H, Tq, Tk))
    if kind == "inf_entries":  # -inf scattered, some rows fully blocked
        m = np.where(rng.random((B, H, Tq, Tk)) < 0.2, -np.inf, rng.standard_normal((B, H, Tq, Tk)))
        m[0, 0, 3, :] = -np.inf
        return m.astype(dtype)
    if kind == "per_query":  # (B, H, Tq, 1): constant along keys
        return rng.standard_normal((B, H, Tq, 1)).astype(dtype)
    raise ValueError(kind)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kind", mask_kinds)
def test_fused_matches_ref_masks(kind, causal, dtype):
    rng = np.random.default_rng(3)
    B, H, Tq, Tk, D = 2, 3, 150, 140, 8
    q, k, v, dout = _inputs(rng, B, H, Tq, Tk, D, D, dtype)
    mask = _fused_mask(kind, rng, B, H, Tq, Tk, dtype)
    _check_fused(q, k, v, dout, mask=mask, causal=causal, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_non_contiguous_inputs(dtype):
    rng = np.random.default_rng(4)
    # (B, T, H, D) buffers viewed as (B, H, T, D), as multi-head attention produces them
    q = rng.standard_normal((2, 70, 3, 8)).astype(dtype).transpose(0, 2, 1, 3)
    k = rng.standard_normal((2, 90, 3, 8)).astype(dtype).transpose(0, 2, 1, 3)
    v = rng.standard_normal((2, 3, 6, 90)).astype(dtype).swapaxes(-1, -2)
    dout = rng.standard_normal((2, 70, 3, 6)).astype(dtype).transpose(0, 2, 1, 3)
    assert not (q.flags.c_contiguous or k.flags.c_contiguous or v.flags.c_contiguous)
    mask = np.zeros((2, 3, 90, 70), dtype).swapaxes(-1, -2)  # a transposed mask view
    _check_fused(q, k, v, dout, mask=mask, causal=True, dtype=dtype)


def test_fused_large_logits():
    # scale 1e3 makes logits ~1e3-1e4: exercises the max-shifting. float64 only: in
    # float32 the score itself carries an absolute error ~ulp(1e4) ~ 1e-3, which exp
    # turns into ~1e-3 relative differences between *any* two summation orders.
    # Saturated softmax makes dq, dk almost exactly 0: ds = p * (dp - rowsum(dout*out))
    # cancels O(|dp|) terms, so both implementations return rounding noise of size
    # eps * scale * |dp| * |k| there (~1e-12). dq/dk are compared at 1e-10 of that
    # term size instead of 1e-10 of their own (vanishing) size.
    rng = np.random.default_rng(5)
    q, k, v, dout = _inputs(rng, 2, 2, 40, 50, 8, 8, np.float64)
    scale = 1e3
    terms = scale * np.abs(dout @ np.swapaxes(v, -1, -2)).max() * max(np.abs(k).max(), np.abs(q).max())
    kw = dict(scale=scale, dtype=np.float64, grad_atol=1e-10 * terms)
    _check_fused(q, k, v, dout, **kw)
    _check_fused(q, k, v, dout, causal=True, **kw)
    mask = _fused_mask("inf_entries", rng, 2, 2, 40, 50, np.float64)
    _check_fused(q, k, v, dout, mask=mask, **kw)


def test_fused_backward_accepts_reference_cache():
    # backends can be switched between forward and backward: both caches carry lse
    rng = np.random.default_rng(6)
    q, k, v, dout = _inputs(rng, 1, 2, 9, 13, 4, 4)
    mask = _fused_mask("inf_entries", rng, 1, 2, 9, 13, np.float64)
    _, c = ref.attention_forward(q, k, v, mask, True, 0.5)
    for a, b in zip(ref.attention_backward(dout, c), numba_impl.attention_backward(dout, c)):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
    _, c2 = numba_impl.attention_forward(q, k, v, mask, True, 0.5)
    c2 = dict(c2, p=None)
    del c2["p"]
    for a, b in zip(ref.attention_backward(dout, c), ref.attention_backward(dout, c2)):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ vectorized exp
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vectorized_exp_matches_numpy(dtype):
    rng = np.random.default_rng(7)
    lo = -700.0 if dtype == np.float64 else -85.0
    hi = 700.0 if dtype == np.float64 else 88.0
    x = np.concatenate([rng.uniform(lo, hi, 100_000), rng.uniform(-1, 1, 10_000),
                        np.linspace(-1, 0, 1001), [0.0, -0.0, 1e-300, -1e-300]]).astype(dtype)
    y = np.empty_like(x)
    _math._math_array(x, 0, y)             # the exp every kernel, attention's too, uses
    expected = np.exp(x.astype(np.float64))
    ulp = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(y, expected, rtol=4 * ulp, atol=0)
    # -inf and far-negative inputs give exactly 0 (softmax's blocked entries), never NaN
    tail = np.array([-np.inf, -1e30, -5000.0, 2 * lo], dtype)
    got = np.empty_like(tail)
    _math._math_array(tail, 0, got)
    assert np.all(got == 0.0)


# ------------------------------------------------------------------ memory
def _peak_forward_bytes(fn, T, dtype=np.float32):
    from minitensor.kernels import buffers
    rng = np.random.default_rng(8)
    q, k, v, _ = _inputs(rng, 1, 1, T, T, 32, 32, dtype)
    fn(q, k, v, None, False, 0.2)  # compile / warm up outside the measurement
    # The buffer pool would serve the second call from the first call's freed arrays,
    # which tracemalloc does not see: measure what the kernel asks for, pool off.
    previous = buffers.set_enabled(False)
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        out, cache = fn(q, k, v, None, False, 0.2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        buffers.set_enabled(previous)
    del out, cache
    return peak


def test_fused_forward_memory_is_linear_in_T():
    import numba

    itemsize = np.dtype(np.float32).itemsize
    T1, T2, D = 256, 2048, 32
    ref1 = _peak_forward_bytes(ref.attention_forward, T1)
    ref2 = _peak_forward_bytes(ref.attention_forward, T2)
    fused1 = _peak_forward_bytes(numba_impl.attention_forward, T1)
    fused2 = _peak_forward_bytes(numba_impl.attention_forward, T2)
    scores = T2 * T2 * itemsize
    outputs = (T2 * D + T2) * itemsize  # out + lse: what any implementation returns
    # The measurement is meaningful: the reference's peak does show the T^2 term...
    assert ref2 >= scores
    assert ref2 - ref1 >= 0.9 * (T2 * T2 - T1 * T1) * itemsize
    # ...and the fused kernel's scratch is seen too: Numba's own np.empty inside @njit
    # does not go through NumPy's allocator (tracemalloc would miss it), so the kernel
    # takes its per-thread scratch from the caller, allocated with NumPy.
    work = numba.get_num_threads() * numba_impl._fwd_work_size(T2, D, D) * itemsize
    assert fused2 >= outputs + work
    # The fused path's extra memory is far below one (T, T) score matrix and grows
    # linearly: 8x the length costs ~8x the memory (quadratic would be 64x).
    assert fused2 - outputs < scores / 16
    assert fused2 < 10 * fused1


# ------------------------------------- heads-merged kernels (attention_weights_*) vs reference
# tests/minitensor/test_kernels.py holds the two packages together on small cases; these are
# the shapes MultiheadAttention calls them with: one query per head (greedy decoding with a
# KV cache, its own loop kernel), the default task's tiles, masks with broadcast query axes.
weights_cases = {
    # name: (B, H, L, S, D, Dv, layout, mask kind)
    "decode_self": (5, 4, 1, 9, 16, 16, "q,k,v", None),
    "decode_cross_padding": (5, 4, 1, 10, 16, 16, "q,k,v", "pad"),
    "decode_one_key": (3, 2, 1, 1, 8, 8, "q,k,v", None),
    "decode_blocked_query": (3, 2, 1, 6, 4, 3, "q,kv", "blocked"),
    "dates_self_causal_padding": (4, 4, 11, 11, 16, 16, "qkv", "causal_pad"),
    "dates_cross_padding": (4, 4, 11, 8, 16, 16, "q,kv", "pad"),
    "odd_dims": (3, 3, 7, 5, 5, 3, "q,k,v", "pad"),
}


def _weights_inputs(rng, B, H, L, S, D, Dv, layout, dtype):
    q = rng.standard_normal((B, L, H * D)).astype(dtype)
    k = rng.standard_normal((B, S, H * D)).astype(dtype)
    v = rng.standard_normal((B, S, H * Dv)).astype(dtype)
    if layout == "qkv":  # self-attention: L = S, D = Dv
        return (np.concatenate([q, k, v], axis=2),)
    if layout == "q,kv":
        return q, np.concatenate([k, v], axis=2)
    return q, k, v


def _weights_mask(kind, rng, B, H, L, S, dtype):
    if kind is None:
        return None
    pad = _key_padding(rng, B, S, [b % max(1, S // 2) for b in range(B)]).astype(dtype)
    if kind == "pad":
        return pad                                                      # (B, 1, 1, S)
    if kind == "causal_pad":
        return np.triu(np.full((L, S), -np.inf, dtype), 1)[None, None] + pad   # (B, 1, L, S)
    mask = np.zeros((B, H, L, S), dtype)                                # "blocked"
    mask[1, 1] = -np.inf                                                # a query seeing no key
    return mask


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dropout_p", [0.0, 0.3])
@pytest.mark.parametrize("name", list(weights_cases))
def test_weights_kernels_match_ref(name, dropout_p, dtype):
    B, H, L, S, D, Dv, layout, kind = weights_cases[name]
    rng = np.random.default_rng(abs(hash((name, dropout_p))) % 2**32)
    inputs = _weights_inputs(rng, B, H, L, S, D, Dv, layout, dtype)
    mask = _weights_mask(kind, rng, B, H, L, S, dtype)
    scale = 1.0 / np.sqrt(D)
    out_ref, cache_ref = ref.attention_weights_forward(inputs, layout, H, mask, scale,
                                                       dropout_p, 11)
    out_nb, cache_nb = numba_impl.attention_weights_forward(inputs, layout, H, mask, scale,
                                                            dropout_p, 11)
    atol = ATOL[dtype]
    assert out_nb.dtype == out_ref.dtype == dtype and out_nb.shape == out_ref.shape
    np.testing.assert_allclose(out_nb, out_ref, rtol=RTOL[dtype], atol=atol)
    np.testing.assert_allclose(cache_nb[0], cache_ref[0], rtol=RTOL[dtype], atol=atol)  # weights
    if kind == "blocked":
        assert np.all(cache_nb[0][1, 1] == 0) and np.all(out_nb[1, :, Dv:2 * Dv] == 0)
    dout = rng.standard_normal(out_ref.shape).astype(dtype)
    dweights = rng.standard_normal(cache_ref[0].shape).astype(dtype)
    for dw in (None, dweights):
        grads_ref = ref.attention_weights_backward(dout, dw, cache_ref)
        grads_nb = numba_impl.attention_weights_backward(dout, dw, cache_nb)
        for g_nb, g_ref in zip(grads_nb, grads_ref):
            assert g_nb.shape == g_ref.shape and g_nb.dtype == dtype
            np.testing.assert_allclose(g_nb, g_ref, rtol=RTOL[dtype],
                                       atol=atol * float(np.abs(dout).max()))


@pytest.mark.parametrize("kind", ["causal", "padding", "none"])
def test_op_routes_agree(monkeypatch, kind):
    """ops/attention.py sends small tiles (L * S <= FUSED_MIN_SCORES) to the weights
    kernels even without dropout; the fused route it no longer takes there gives the same
    output and gradients (float64)."""
    import minitensor as mt
    from minitensor import functional as F
    from minitensor.ops import attention as op

    rng = np.random.default_rng(3)
    B, H, L, D = 3, 2, 6, 4
    x = rng.standard_normal((B, L, 3 * H * D))
    mask = _key_padding(rng, B, L, [0, 2, 1]) if kind == "padding" else None
    dout = rng.standard_normal((B, L, H * D))
    results = []
    for min_scores in (0, 10**9):                                  # fused, then weights
        monkeypatch.setattr(op, "FUSED_MIN_SCORES", min_scores)
        leaf = mt.tensor(x, requires_grad=True)
        out = F.multi_head_attention(leaf, None, None, H, attn_mask=mask,
                                     is_causal=kind == "causal")
        (out * mt.tensor(dout)).sum().backward()
        results.append((out.data, leaf.grad.data))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
