"""Property-based tests (hypothesis): random broadcast shape pairs for every binary op, and
random small graphs of 3-6 ops, each gradient-checked in float64 on a random backend."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minitensor as mt
from minitensor import functional as F
from minitensor import kernels

BACKENDS = ["numba", "numpy"] if kernels.numba_available() else ["numpy"]
try:  # torch is a reference only: without it the torch comparison is skipped
    import torch
except ImportError:
    torch = None
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast: suffixes of one base shape with some dims set to 1."""
    base = draw(st.lists(st.integers(1, 4), min_size=0, max_size=4))
    shapes = []
    for _ in range(2):
        keep = draw(st.integers(0, len(base)))
        suffix = base[len(base) - keep:]
        shapes.append(tuple(1 if draw(st.booleans()) else n for n in suffix))
    return shapes


def _array(draw, shape, low, high, seed):
    """Values in [low, high); sometimes laid out as a transposed (non-contiguous) view."""
    rng = np.random.default_rng(seed)
    if len(shape) >= 2 and draw(st.booleans()):
        return rng.uniform(low, high, shape[::-1]).T
    return rng.uniform(low, high, shape)


BINARY = {
    "add": (F.add, "add"), "sub": (F.sub, "sub"), "mul": (F.mul, "mul"), "div": (F.div, "div"),
    "pow": (F.pow, "pow"), "maximum": (F.maximum, "maximum"), "minimum": (F.minimum, "minimum"),
}


@SETTINGS
@given(pair=broadcast_pair(), op=st.sampled_from(sorted(BINARY)), backend=st.sampled_from(BACKENDS),
       seed=st.integers(0, 2**16), data=st.data())
def test_binary_ops_on_random_broadcast_shapes(pair, op, backend, seed, data):
    fn, torch_name = BINARY[op]
    a_np = _array(data.draw, pair[0], 0.5, 2.0, seed)      # positive: div and pow stay smooth
    b_np = _array(data.draw, pair[1], 0.5, 2.0, seed + 1)
    a = mt.as_tensor(a_np).requires_grad_()
    b = mt.as_tensor(b_np).requires_grad_()
    with kernels.use(backend):
        out = fn(a, b)
        assert out.shape == np.broadcast_shapes(a.shape, b.shape)
        dout = np.random.default_rng(seed + 2).standard_normal(out.shape)
        out.backward(dout)
        assert a.grad.shape == a.shape and b.grad.shape == b.shape
        assert mt.gradcheck(fn, [a, b], atol=1e-7, rtol=1e-6, mode="full")
    if torch is not None:
        ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
        to = getattr(torch, torch_name)(ta, tb)
        to.backward(torch.tensor(dout))
        np.testing.assert_allclose(out.data, to.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b.grad.data, tb.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- random graphs
# Each op maps (x, tape) -> new x. ``tape.draw`` makes a random choice and ``tape.param``
# a parameter leaf; the tape records both while the graph is first built and replays them
# when gradcheck re-evaluates it. Every op keeps x non-empty and its values moderate, so
# any composition stays smooth and finite.

class Tape:
    def __init__(self, data):
        self.data, self.choices, self.params = data, [], []
        self.replaying, self.i, self.j = False, 0, 0

    def draw(self, strategy):
        if self.replaying:
            self.i += 1
            return self.choices[self.i - 1]
        value = self.data.draw(strategy)
        self.choices.append(value)
        return value

    def param(self, shape):
        seed = self.draw(st.integers(0, 2**16))
        if self.replaying:
            self.j += 1
            return self.params[self.j - 1]
        p = mt.tensor(np.random.default_rng(seed).standard_normal(shape) * 0.5, requires_grad=True)
        self.params.append(p)
        return p

    def replay(self, params):
        self.replaying, self.i, self.j, self.params = True, 0, 0, list(params)


def _partial_shape(x, tape):
    """A shape that broadcasts against x: a suffix with some dims set to 1."""
    keep = tape.draw(st.integers(0, x.ndim))
    return tuple(1 if tape.draw(st.booleans()) else n for n in x.shape[x.ndim - keep:])


def _axis(x, tape):
    return tape.draw(st.integers(-x.ndim, x.ndim - 1))


def op_tanh(x, tape): return x.tanh()
def op_sigmoid(x, tape): return x.sigmoid()
def op_gelu(x, tape): return F.gelu(x, approximate=tape.draw(st.sampled_from(["none", "tanh"])))
def op_square(x, tape): return x * x
def op_soft_sqrt(x, tape): return (x * x + 1.0).sqrt()
def op_exp_tanh(x, tape): return x.tanh().exp()
def op_softmax(x, tape): return x.softmax(_axis(x, tape)) if x.ndim else x.sigmoid()
def op_log_softmax(x, tape): return x.log_softmax(-1) if x.ndim else x.tanh()
def op_mul_param(x, tape): return x * tape.param(_partial_shape(x, tape))
def op_add_param(x, tape): return x + tape.param(_partial_shape(x, tape))
def op_maximum_param(x, tape): return mt.maximum(x, tape.param(_partial_shape(x, tape)))
def op_sum_keepdims(x, tape): return x.sum(_axis(x, tape), keepdims=True) if x.ndim else x * 2.0
def op_logsumexp(x, tape): return x.logsumexp(_axis(x, tape), keepdims=True) if x.ndim else x.tanh()
def op_var(x, tape): return x.var(-1, keepdims=True, unbiased=False) + x if x.ndim else x * x
def op_transpose(x, tape): return x.transpose(-1, -2) if x.ndim >= 2 else x.reshape(-1)
def op_reshape_flat(x, tape): return x.reshape(-1) if x.ndim != 1 else x.unsqueeze(0)
def op_matmul_param(x, tape): return x @ tape.param((x.shape[-1], tape.draw(st.integers(1, 3)))) if x.ndim else x * 3.0


def op_mean(x, tape):
    if x.ndim == 0:
        return x * 0.5
    out = x.mean(_axis(x, tape), keepdims=tape.draw(st.booleans()))
    return out if out.ndim else out.reshape(1)


def op_flip_or_gather(x, tape):
    """A negative-step slice, or an integer-array gather with repeats, on the last axis."""
    if x.ndim == 0:
        return x.unsqueeze(0)
    n = x.shape[-1]
    if tape.draw(st.booleans()):
        return x[..., ::-1]
    return x[..., np.array(tape.draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n)))]


def op_layer_norm(x, tape):
    if x.ndim == 0 or x.shape[-1] < 2:
        return x.tanh()
    c = x.shape[-1]
    return F.layer_norm(x, c, tape.param((c,)), tape.param((c,)))


OPS = [op_tanh, op_sigmoid, op_gelu, op_square, op_soft_sqrt, op_exp_tanh, op_softmax,
       op_log_softmax, op_mul_param, op_add_param, op_maximum_param, op_sum_keepdims, op_mean,
       op_logsumexp, op_var, op_transpose, op_flip_or_gather, op_layer_norm, op_matmul_param,
       op_reshape_flat]


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
       ops=st.lists(st.sampled_from(OPS), min_size=3, max_size=6),
       backend=st.sampled_from(BACKENDS), seed=st.integers(0, 2**16), data=st.data())
def test_random_op_graphs_gradcheck(shape, ops, backend, seed, data):
    x = mt.tensor(np.random.default_rng(seed).standard_normal(tuple(shape)), requires_grad=True)
    tape = Tape(data)
    with kernels.use(backend):
        t = x
        for op in ops:                     # build once: hypothesis draws every choice here
            t = op(t, tape)
        assert t.requires_grad
        params = tape.params

        def graph(x, *ps):
            tape.replay(ps)
            out = x
            for op in ops:
                out = op(out, tape)
            return out

        assert mt.gradcheck(graph, [x, *params], atol=1e-6, rtol=1e-5, mode="full")
