"""MultiheadAttention: parity with torch.nn.MultiheadAttention (outputs, weights, every
parameter and input gradient, float64), gradcheck, fully masked rows, masks, KV cache."""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
import transformer as T
from transformer.attention import KVCache

E, H = 8, 2
RTOL, ATOL = 1e-7, 1e-10


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _close(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def _pair(torch, seed=0, **kwargs):
    """A torch MHA (float64, train mode: no fast path) and ours with its weights."""
    torch.manual_seed(seed)
    theirs = torch.nn.MultiheadAttention(E, H, **kwargs).double()
    ours = T.MultiheadAttention(E, H, **kwargs).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _run_both(torch, ours, theirs, arrays, same, masks, **call):
    """Run both modules on the same inputs; backward a random projection of the output
    (and of the weights); compare outputs, weights, parameter and input grads."""
    rng = np.random.default_rng(1)
    ours_in = [mt.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    q, k, v = (ours_in[i] for i in same)
    tq, tk, tv = (theirs_in[i] for i in same)
    t_masks = {name: None if m is None else torch.tensor(m) for name, m in masks.items()}
    out, w = ours(q, k, v, **masks, **call)
    tout, tw = theirs(tq, tk, tv, **t_masks, **call)
    _close(out.data, tout.detach().numpy(), "output")
    assert (w is None) == (tw is None)
    r = rng.standard_normal(out.shape)
    loss, tloss = (out * mt.tensor(r)).sum(), (tout * torch.tensor(r)).sum()
    if w is not None:
        assert w.shape == tuple(tw.shape)
        _close(w.data, tw.detach().numpy(), "weights")
        r2 = rng.standard_normal(w.shape)
        loss, tloss = loss + (w * mt.tensor(r2)).sum(), tloss + (tw * torch.tensor(r2)).sum()
    loss.backward()
    tloss.backward()
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad.data, tparams[name].grad.numpy(), f"grad of {name}")
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        _close(a.grad.data, b.grad.numpy(), f"grad of input {i}")


def _inputs(rng, batch_first, L=4, S=5, N=3, kdim=E, vdim=E):
    shape = (lambda T_, d: (N, T_, d)) if batch_first else (lambda T_, d: (T_, N, d))
    return [rng.standard_normal(shape(L, E)), rng.standard_normal(shape(S, kdim)),
            rng.standard_normal(shape(S, vdim))]


def _kpm(rng, N=3, S=5):
    m = rng.random((N, S)) < 0.4
    m[:, 0] = False  # every query keeps at least one key (torch gives NaN otherwise)
    return m


# ----------------------------------------------------------------------------- torch parity

@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("need_weights,average", [(False, True), (True, True), (True, False)])
def test_self_attention_parity(torch, batch_first, need_weights, average):
    rng = np.random.default_rng(0)
    ours, theirs = _pair(torch, batch_first=batch_first)
    x = _inputs(rng, batch_first, L=5)[0]
    _run_both(torch, ours, theirs, [x], (0, 0, 0), {}, need_weights=need_weights,
              average_attn_weights=average)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("kv_same", [True, False])
@pytest.mark.parametrize("need_weights", [True, False])
def test_cross_attention_parity(torch, batch_first, kv_same, need_weights):
    rng = np.random.default_rng(1)
    ours, theirs = _pair(torch, batch_first=batch_first, kdim=E, vdim=E)
    arrays = _inputs(rng, batch_first)
    if kv_same:
        _run_both(torch, ours, theirs, arrays[:2], (0, 1, 1), {}, need_weights=need_weights)
    else:
        _run_both(torch, ours, theirs, arrays, (0, 1, 2), {}, need_weights=need_weights)


@pytest.mark.parametrize("mask_kind", ["kpm_bool", "kpm_float", "attn_bool", "attn_float",
                                       "attn_3d", "both_bool", "both_float"])
@pytest.mark.parametrize("need_weights", [True, False])
def test_masks_parity(torch, mask_kind, need_weights):
    rng = np.random.default_rng(2)
    ours, theirs = _pair(torch, batch_first=True)
    arrays = _inputs(rng, True)
    N, L, S = 3, 4, 5
    kpm = _kpm(rng)
    attn = rng.random((L, S)) < 0.4
    attn[:, 0] = False
    masks = {
        "kpm_bool": {"key_padding_mask": kpm},
        "kpm_float": {"key_padding_mask": np.where(kpm, -np.inf, rng.standard_normal((N, S)))},
        "attn_bool": {"attn_mask": attn},
        "attn_float": {"attn_mask": np.where(attn, -np.inf, rng.standard_normal((L, S)))},
        "attn_3d": {"attn_mask": np.concatenate([rng.random((N * H, L, S - 1)) < 0.5,
                                                 np.zeros((N * H, L, 1), bool)], axis=2)},
        "both_bool": {"key_padding_mask": kpm, "attn_mask": attn},
        "both_float": {"key_padding_mask": np.where(kpm, -np.inf, 0.0),
                       "attn_mask": np.where(attn, -np.inf, rng.standard_normal((L, S)))},
    }[mask_kind]
    _run_both(torch, ours, theirs, arrays, (0, 1, 2), masks, need_weights=need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_kpm", [True, False])
def test_is_causal_with_mask_parity(torch, need_weights, with_kpm):
    rng = np.random.default_rng(3)
    ours, theirs = _pair(torch, batch_first=True)
    x = _inputs(rng, True, L=5)[0]
    masks = {"attn_mask": T.causal_mask(5)}
    if with_kpm:
        masks["key_padding_mask"] = _kpm(rng)
    _run_both(torch, ours, theirs, [x], (0, 0, 0), masks, need_weights=need_weights,
              is_causal=True)


@pytest.mark.parametrize("need_weights,average", [(False, True), (True, True), (True, False)])
def test_unbatched_parity(torch, need_weights, average):
    rng = np.random.default_rng(4)
    ours, theirs = _pair(torch, batch_first=True)  # batch_first is ignored when unbatched
    q, kv = rng.standard_normal((4, E)), rng.standard_normal((6, E))
    kpm = np.array([False, True, False, False, True, False])
    _run_both(torch, ours, theirs, [q, kv], (0, 1, 1), {"key_padding_mask": kpm},
              need_weights=need_weights, average_attn_weights=average)


def test_separate_kdim_vdim_parity(torch):
    rng = np.random.default_rng(5)
    ours, theirs = _pair(torch, batch_first=True, kdim=6, vdim=3)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    _run_both(torch, ours, theirs, _inputs(rng, True, kdim=6, vdim=3), (0, 1, 2),
              {"key_padding_mask": _kpm(rng)}, need_weights=True)


@pytest.mark.parametrize("kwargs", [{}, {"bias": False}, {"kdim": 4, "vdim": 5},
                                    {"batch_first": True, "dropout": 0.1}])
def test_state_dict_keys_and_shapes_match_torch(torch, kwargs):
    theirs = torch.nn.MultiheadAttention(E, H, **kwargs)
    ours = T.MultiheadAttention(E, H, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        assert ours.state_dict()[k].shape == tuple(v.shape), k


def test_init_like_torch():
    mha = T.MultiheadAttention(16, 4)
    assert np.all(mha.in_proj_bias.data == 0) and np.all(mha.out_proj.bias.data == 0)
    bound = np.sqrt(6.0 / (16 + 48))  # xavier_uniform_ on the (3E, E) matrix
    w = mha.in_proj_weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound


# ----------------------------------------------------------------------------- fully masked rows

@pytest.mark.parametrize("need_weights", [True, False])
def test_fully_masked_query_gives_zeros_not_nan(need_weights):
    rng = np.random.default_rng(6)
    mha = T.MultiheadAttention(E, H, batch_first=True).double()
    nn_init_bias(mha, rng)
    x = mt.tensor(rng.standard_normal((2, 4, E)), requires_grad=True)
    attn = np.zeros((4, 4), bool)
    attn[1, :] = True               # query 1 sees nothing
    kpm = np.zeros((2, 4), bool)
    kpm[1, :] = True                # batch row 1 sees nothing at all
    out, w = mha(x, x, x, attn_mask=attn, key_padding_mask=kpm, need_weights=need_weights)
    assert np.isfinite(out.data).all()
    bias = mha.out_proj.bias.data
    np.testing.assert_allclose(out.data[0, 1], bias, atol=1e-12)  # zero attention -> W^O 0 + b
    np.testing.assert_allclose(out.data[1], np.broadcast_to(bias, (4, E)), atol=1e-12)
    if need_weights:
        assert np.all(w.data[0, 1] == 0) and np.all(w.data[1] == 0)
    (out * mt.tensor(rng.standard_normal(out.shape))).sum().backward()
    assert np.isfinite(x.grad.data).all()
    for name, p in mha.named_parameters():
        assert np.isfinite(p.grad.data).all(), name


def test_fully_masked_rows_match_torch_elsewhere(torch):
    rng = np.random.default_rng(7)
    ours, theirs = _pair(torch, batch_first=True)
    x = rng.standard_normal((2, 4, E))
    attn = np.zeros((4, 4), bool)
    attn[2, :] = True
    out, _ = ours(*[mt.tensor(x)] * 3, attn_mask=attn, need_weights=False)
    tx = torch.tensor(x)
    tout, _ = theirs(tx, tx, tx, attn_mask=torch.tensor(attn), need_weights=True)
    assert torch.isnan(tout[:, 2]).all()  # torch: NaN; ours: defined (see docstring)
    keep = [0, 1, 3]
    _close(out.data[:, keep], tout.detach().numpy()[:, keep], "unmasked rows")


def nn_init_bias(mha, rng):
    """Non-zero biases so the checks see them."""
    mha.in_proj_bias.data[:] = rng.standard_normal(mha.in_proj_bias.shape)
    mha.out_proj.bias.data[:] = rng.standard_normal(mha.out_proj.bias.shape)


# ----------------------------------------------------------------------------- gradcheck

@pytest.mark.parametrize("need_weights", [True, False])
def test_gradcheck_mha(need_weights):
    rng = np.random.default_rng(8)
    mha = T.MultiheadAttention(E, H, batch_first=True).double()
    nn_init_bias(mha, rng)
    q = mt.tensor(rng.standard_normal((2, 3, E)), requires_grad=True)
    kv = mt.tensor(rng.standard_normal((2, 4, E)), requires_grad=True)
    kpm = np.array([[False, False, True, False], [False, True, True, False]])
    params = list(mha.parameters())

    def f(q, kv, *ps):
        out, w = mha(q, kv, kv, key_padding_mask=kpm, need_weights=need_weights)
        return (out, w) if need_weights else out

    assert mt.gradcheck(f, [q, kv], mode="full")
    assert mt.gradcheck(f, [q, kv, *params], mode="projection", n_projections=6)


# ----------------------------------------------------------------------------- misc

def test_mask_shape_errors():
    mha = T.MultiheadAttention(E, H, batch_first=True)
    x = mt.randn(2, 3, E)
    with pytest.raises(ValueError, match="2-D attn_mask"):
        mha(x, x, x, attn_mask=np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="3-D attn_mask"):
        mha(x, x, x, attn_mask=np.zeros((2, 3, 3), bool))
    with pytest.raises(ValueError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=np.zeros((2, 4), bool))
    with pytest.raises(ValueError, match="divisible"):
        T.MultiheadAttention(10, 3)


def test_is_causal_without_mask_builds_it():
    rng = np.random.default_rng(9)
    mha = T.MultiheadAttention(E, H, batch_first=True).double()
    x = mt.tensor(rng.standard_normal((2, 5, E)))
    ref, _ = mha(x, x, x, attn_mask=T.causal_mask(5), need_weights=False)
    for nw in (True, False):
        out, _ = mha(x, x, x, is_causal=True, need_weights=nw)
        np.testing.assert_allclose(out.data, ref.data, rtol=1e-12, atol=1e-13)


def test_kv_cache_matches_full_causal_attention():
    rng = np.random.default_rng(10)
    mha = T.MultiheadAttention(E, H, batch_first=True).double()
    nn_init_bias(mha, rng)
    x = rng.standard_normal((2, 6, E))
    mem = mt.tensor(rng.standard_normal((2, 3, E)))
    full, _ = mha(*[mt.tensor(x)] * 3, is_causal=True, need_weights=False)
    cross_full, _ = mha(mt.tensor(x), mem, mem, need_weights=False)
    self_cache, cross_cache = KVCache(), KVCache(static=True)
    steps, cross_steps = [], []
    with mt.no_grad():
        for t in range(6):
            xt = mt.tensor(x[:, t:t + 1])
            steps.append(mha(xt, xt, xt, is_causal=True, need_weights=False, cache=self_cache)[0].data)
            cross_steps.append(mha(xt, mem, mem, need_weights=False, cache=cross_cache)[0].data)
    assert len(self_cache) == 6 and len(cross_cache) == 3
    np.testing.assert_allclose(np.concatenate(steps, 1), full.data, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.concatenate(cross_steps, 1), cross_full.data, rtol=1e-12, atol=1e-13)


def test_kv_cache_in_chunks_uses_the_offset_causal_mask():
    """Blocks of several new positions: query i of a block after P cached positions sees
    keys j <= P + i (the core causal mask's offset), with and without returned weights."""
    rng = np.random.default_rng(13)
    mha = T.MultiheadAttention(E, H, batch_first=True).double()
    x = rng.standard_normal((2, 6, E))
    full, full_w = mha(*[mt.tensor(x)] * 3, is_causal=True, average_attn_weights=False)
    for need_weights in (False, True):
        cache, outs = KVCache(), []
        with mt.no_grad():
            for lo, hi in ((0, 2), (2, 5), (5, 6)):
                xt = mt.tensor(x[:, lo:hi])
                out, w = mha(xt, xt, xt, is_causal=True, need_weights=need_weights,
                             average_attn_weights=False, cache=cache)
                outs.append(out.data)
                if need_weights:
                    np.testing.assert_allclose(w.data, full_w.data[:, :, lo:hi, :hi], rtol=1e-12,
                                               atol=1e-13)
        assert len(cache) == 6 and cache.k.shape == (2, 6, E)
        np.testing.assert_allclose(np.concatenate(outs, 1), full.data, rtol=1e-12, atol=1e-13)


def test_dropout_on_weights_only_in_training():
    rng = np.random.default_rng(11)
    mha = T.MultiheadAttention(E, H, dropout=0.5, batch_first=True).double()
    x = mt.tensor(rng.standard_normal((2, 5, E)))
    a = mha(x, x, x, need_weights=False)[0].data
    mha.eval()
    b = mha(x, x, x, need_weights=False)[0].data
    c = mha(x, x, x, need_weights=False)[0].data
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("kind", ["self", "cross", "cross_kv_differ", "causal_and_padding",
                                  "separate_kdim"])
def test_training_with_dropout_merged_heads_path_equals_per_head_path(backend, kind):
    """In training with dropout, the attention Function runs its materialized kernel on the
    projections with the heads side by side (q/k/v packed where they can be), whether or
    not the weights are returned. With the same seed, need_weights=False gives what
    need_weights=True gives: output and every gradient."""
    rng = np.random.default_rng(12)
    kwargs = dict(kdim=6, vdim=4) if kind == "separate_kdim" else {}
    mha = T.MultiheadAttention(E, H, dropout=0.3, batch_first=True, **kwargs).double()
    x = rng.standard_normal((3, 5, E))
    mem = rng.standard_normal((3, 7, kwargs.get("kdim", E)))
    mem_v = rng.standard_normal((3, 7, kwargs.get("vdim", E)))
    masks = {}
    if kind == "causal_and_padding":
        kpm = np.zeros((3, 5), bool)
        kpm[1, 3:] = True
        masks = dict(attn_mask=T.causal_mask(5), key_padding_mask=kpm)
    dout = rng.standard_normal((3, 5, E))
    results = []
    for need_weights in (False, True):
        mha.zero_grad()
        xs = [mt.tensor(a, requires_grad=True) for a in (x, mem, mem_v)]
        if kind in ("self", "causal_and_padding"):
            q = k = v = xs[0]
        elif kind == "cross":
            q, k, v = xs[0], xs[1], xs[1]
        else:
            q, k, v = xs
        mt.manual_seed(5)
        out, _ = mha(q, k, v, need_weights=need_weights, **masks)
        out.backward(mt.tensor(dout))
        grads = [t.grad.data for t in xs if t.grad is not None]
        results.append([out.data] + grads + [p.grad.data for p in mha.parameters()])
    for merged, per_head in zip(*results):
        np.testing.assert_allclose(merged, per_head, rtol=1e-10, atol=1e-12)
