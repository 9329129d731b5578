"""The fused feed-forward op ``F.linear_activation`` (``LinearActivation``):
dropout(act(x W^T + b)) in one node.

Held to: central differences (float64 gradcheck), the unfused Linear -> act -> Dropout
path (the same numbers and the same draws from the global generator, float32 and
float64, both backends), PyTorch (p = 0), the Numba kernel to its NumPy twin, and the
transformer layers that use it (fused and unfused give the same step).
"""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F
from minitensor import kernels, nn
from minitensor.errors import DTypeError, ShapeError
from minitensor.kernels import numba_cpu as nb
from minitensor.kernels import numpy_ref as ref

ACTS = {"relu": F.relu, "gelu": F.gelu}


def _params(rng, shape, n_in, n_out, dtype, bias=True):
    x = mt.tensor(rng.standard_normal(shape + (n_in,)).astype(dtype), requires_grad=True)
    w = mt.tensor((rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype),
                  requires_grad=True)
    b = mt.tensor(rng.standard_normal(n_out).astype(dtype), requires_grad=True) if bias else None
    return x, w, b


def _run(fn, x, w, b, dout):
    """fn's output and the gradients of (out * dout).sum() for x, w (and b)."""
    for t in (x, w, b):
        if t is not None:
            t.grad = None
    out = fn(x, w, b)
    (out * mt.tensor(dout)).sum().backward()
    return [out.data] + [t.grad.data for t in (x, w, b) if t is not None]


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("p", [0.0, 0.3])
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_float64(backend, activation, p, bias):
    x, w, b = _params(np.random.default_rng(0), (2, 3), 5, 7, np.float64, bias)

    def fused(*ts):
        mt.manual_seed(11)          # the same mask at every evaluation
        return F.linear_activation(ts[0], ts[1], ts[2] if bias else None, activation, p)

    inputs = [x, w] + ([b] if bias else [])
    assert mt.gradcheck(fused, inputs, eps=1e-6, atol=1e-7, rtol=1e-6, mode="full", seed=3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
# (64, 11): linear splits its rows over 2 threads; (32, 32): and the backward mask too
@pytest.mark.parametrize("rows", [(4, 6), (64, 11), (32, 32)])
def test_equals_unfused_path(backend, dtype, activation, p, rows):
    """Bit for bit the numbers of F.linear -> act -> F.dropout, and the same random draws."""
    rng = np.random.default_rng(1)
    x, w, b = _params(rng, rows, 64, 256, dtype)
    dout = rng.standard_normal(rows + (256,)).astype(dtype)

    def unfused(x, w, b):
        return F.dropout(ACTS[activation](F.linear(x, w, b)), p)

    def fused(x, w, b):
        return F.linear_activation(x, w, b, activation, p)

    results = []
    for fn in (unfused, fused):
        mt.manual_seed(5)
        got = _run(fn, x, w, b, dout)
        results.append((got, mt.random.next_seed()))
    (want, want_next), (got, got_next) = results
    assert got_next == want_next, "the fused op must consume the generator as F.dropout does"
    for name, g, e in zip(["out", "dx", "dw", "db"], got, want):
        assert g.dtype == e.dtype == np.dtype(dtype), name
        assert np.array_equal(g, e), f"{name}: max diff {np.abs(g - e).max()}"


def test_eval_mode_draws_nothing_and_is_deterministic(backend):
    x, w, b = _params(np.random.default_rng(2), (3,), 4, 6, np.float64)
    mt.manual_seed(3)
    a = F.linear_activation(x, w, b, "relu", 0.5, training=False)
    after = mt.random.next_seed()
    mt.manual_seed(3)
    assert after == mt.random.next_seed()
    assert np.array_equal(a.data, F.relu(F.linear(x, w, b)).data)


def test_nan_units_match_unfused(backend):
    """A NaN pre-activation: its gradient depends on its mask bit, as unfused."""
    rng = np.random.default_rng(4)
    x, w, b = _params(rng, (8,), 4, 32, np.float64)
    x.data[0, 0] = np.nan
    dout = rng.standard_normal((8, 32))
    got, want = [], []
    for fn, into in ((lambda x, w, b: F.dropout(F.relu(F.linear(x, w, b)), 0.5), want),
                     (lambda x, w, b: F.linear_activation(x, w, b, "relu", 0.5), got)):
        mt.manual_seed(9)
        into.extend(_run(fn, x, w, b, dout))
    for g, e in zip(got, want):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("p", [1.0])
def test_drop_everything(backend, p):
    x, w, b = _params(np.random.default_rng(5), (3,), 4, 6, np.float32)
    out = F.linear_activation(x, w, b, "gelu", p)
    out.sum().backward()
    assert not out.data.any() and not x.grad.data.any() and not b.grad.data.any()


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_matches_torch(backend, activation):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x, w, b = _params(rng, (3, 5), 8, 16, np.float64)
    dout = rng.standard_normal((3, 5, 16))
    got = _run(lambda x, w, b: F.linear_activation(x, w, b, activation), x, w, b, dout)
    xt, wt, bt = (torch.tensor(t.data, requires_grad=True) for t in (x, w, b))
    act = getattr(torch.nn.functional, activation)
    yt = torch.nn.functional.dropout(act(torch.nn.functional.linear(xt, wt, bt)), 0.0)
    (yt * torch.tensor(dout)).sum().backward()
    for g, e in zip(got, [yt.detach(), xt.grad, wt.grad, bt.grad]):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------- kernel twins

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("p", [0.0, 0.2])
@pytest.mark.parametrize("threads", [1, 2])
def test_numba_kernel_matches_numpy_twin(dtype, activation, p, threads):
    rng = np.random.default_rng(7)
    tol = {np.float32: 1e-4, np.float64: 1e-11}[dtype]
    cases = [(rng.standard_normal((704, 64)), rng.standard_normal((256, 64)) / 8,
              rng.standard_normal(256)),                       # big enough to split rows
             (rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), None),
             (rng.standard_normal((3, 6)).T, rng.standard_normal((3, 4)).T, rng.standard_normal(4))]
    with kernels.threads(threads):
        for x, w, b in cases:
            x, w = x.astype(dtype), w.astype(dtype)
            b = None if b is None else b.astype(dtype)
            out_nb, cache_nb = nb.linear_act_forward(x, w, b, activation, p, 123)
            out_ref, cache_ref = ref.linear_act_forward(x, w, b, activation, p, 123)
            assert out_nb.dtype == out_ref.dtype == dtype
            np.testing.assert_allclose(out_nb, out_ref, rtol=tol, atol=tol)
            dout = rng.standard_normal(out_ref.shape).astype(dtype)
            for needs in [(True, True, b is not None), (False, True, False), (True, False, False)]:
                got = nb.linear_act_backward(dout, x, w, cache_nb, needs)
                want = ref.linear_act_backward(dout, x, w, cache_ref, needs)
                for g, e, need in zip(got, want, needs):
                    assert (g is None) == (e is None) == (not need)
                    if need:
                        assert g.dtype == e.dtype == dtype
                        np.testing.assert_allclose(g, e, rtol=tol, atol=tol * np.abs(e).max())


def test_bad_input_names_the_op():
    x, w, b = _params(np.random.default_rng(8), (2,), 3, 4, np.float32)
    with pytest.raises(ValueError, match="linear_activation: activation"):
        F.linear_activation(x, w, b, "tanh")
    with pytest.raises(ValueError, match="linear_activation: dropout probability"):
        F.linear_activation(x, w, b, "relu", 1.5)
    with pytest.raises(ShapeError, match=r"linear_activation: input of shape \(2, 3\)"):
        F.linear_activation(x, w.T, b)
    with pytest.raises(ShapeError, match="linear_activation: bias"):
        F.linear_activation(x, w, mt.zeros(3))
    with pytest.raises(DTypeError, match="linear_activation"):
        F.linear_activation(mt.tensor(np.ones((2, 3), np.int64)), w, b)


# ----------------------------------------------------------------- transformer layers

def _layers(activation, dropout, dtype=np.float32):
    from transformer.layers import TransformerDecoderLayer, TransformerEncoderLayer
    mt.manual_seed(0)
    enc = TransformerEncoderLayer(16, 2, 32, dropout, activation=activation, batch_first=True)
    dec = TransformerDecoderLayer(16, 2, 32, dropout, activation=activation, batch_first=True)
    return enc, dec


def _op_names(t):
    """The op names of every graph node behind t."""
    names, stack, seen = [], [t.grad_fn], set()
    while stack:
        node = stack.pop()
        if not hasattr(node, "op") or id(node) in seen:       # None or a leaf tensor
            continue
        seen.add(id(node))
        names.append(node.op.__name__)
        stack.extend(node.parents)
    return names


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_layers_fused_equal_unfused(backend, activation):
    """The layers' fused feed-forward block gives the step of the three modules (dropout
    0.1, train mode): same outputs, same gradients, same random state after."""
    rng = np.random.default_rng(9)
    src = rng.standard_normal((4, 6, 16)).astype(np.float32)
    tgt = rng.standard_normal((4, 5, 16)).astype(np.float32)
    results = []
    for act in (activation, (lambda x: ACTS[activation](x))):   # a lambda is never fused
        enc, dec = _layers(act, 0.1)
        enc.train(), dec.train()
        mt.manual_seed(1)
        memory = enc(mt.tensor(src))
        out = dec(mt.tensor(tgt), memory)
        out.sum().backward()
        fused = "LinearActivation" in _op_names(out)
        grads = {n: p.grad.data for m in (enc, dec) for n, p in m.named_parameters()}
        results.append((fused, out.data, grads, mt.random.next_seed()))
    (fused_a, out_a, grads_a, next_a), (fused_b, out_b, grads_b, next_b) = results
    assert fused_a and not fused_b
    assert np.array_equal(out_a, out_b) and next_a == next_b
    assert grads_a.keys() == grads_b.keys()
    for n in grads_a:
        assert np.array_equal(grads_a[n], grads_b[n]), n


def test_layer_modules_and_keys_unchanged():
    enc, dec = _layers("relu", 0.1)
    assert [n for n, _ in enc.named_children()][:3] == ["self_attn", "linear1", "dropout"]
    assert {"linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"} <= \
        set(enc.state_dict()) and "linear1.weight" in dec.state_dict()


def test_replaced_linear1_is_called():
    """A user's module in place of linear1 keeps running (the fused op would bypass it)."""
    enc, _ = _layers("relu", 0.0)

    class Doubled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    doubled = Doubled(16, 32)
    doubled.load_state_dict(enc.linear1.state_dict())
    x = mt.randn(2, 3, 16)
    plain = enc._ff_block(x)
    enc.linear1 = doubled
    want = enc.linear2(F.relu(F.linear(x, doubled.weight, doubled.bias) * 2))
    assert not np.allclose(enc._ff_block(x).data, plain.data)
    np.testing.assert_allclose(enc._ff_block(x).data, want.data, rtol=1e-6)


@pytest.mark.parametrize("activation,per_fwd,per_bwd", [("relu", 1, 1), ("gelu", 8, 12)])
def test_profiler_flops(activation, per_fwd, per_bwd):
    """Linear's FLOPs, plus the activation's and the mask's per output element."""
    from minitensor import profiler
    from minitensor.profiler import Roofline
    x, w, b = _params(np.random.default_rng(10), (2, 3), 6, 4, np.float32)
    with profiler.profile(roofline=Roofline(peak_flops=1e11, bandwidth=1e10, machine="test")) as prof:
        F.linear_activation(x, w, b, activation, 0.5).sum().backward()
    (fwd,) = [e for e in prof.events if e.name == "LinearActivation" and e.phase == "forward"]
    (bwd,) = [e for e in prof.events if e.name == "LinearActivation" and e.phase == "backward"]
    y = 2 * 3 * 4
    assert fwd.flops == 2 * y * 6 + y + (per_fwd + 2) * y       # x W^T, bias, act, mask
    assert bwd.flops == 2 * (2 * y * 6) + y + (per_bwd + 1) * y  # dX, dW, db, act', mask
