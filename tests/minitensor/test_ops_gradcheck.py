"""Every registered op, gradient-checked in float64 on both kernel backends.

Three layers (STYLE item 15), each contracting the output with a random upstream
gradient ``dout`` (never a bare ``.sum()``):

1. per op: ``Op.backward(ctx, dout)`` called directly (un-broadcast with the engine's
   ``unbroadcast``) against central differences of ``<dout, Op.forward(x)>``;
2. ``mt.gradcheck`` (through the engine's ``Tensor.backward(dout)``);
3. through ``.backward()`` of the scalar ``(out * dout).sum()``.

An op with several outputs (attention returning its weights) has one ``dout`` per
output, and every layer contracts each output with its own.

The sample inputs live in ``minitensor/op_samples.py``; an op registered without samples fails
``test_every_registered_op_has_samples``.
"""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F
from minitensor.autograd import Function, unbroadcast
from minitensor.ops import REGISTRY

from minitensor.op_samples import SAMPLES

CASES = [(name, sample) for name in sorted(SAMPLES) for sample in SAMPLES[name]]
IDS = [f"{name}-{sample.desc}" for name, sample in CASES]
# mt.gradcheck compares with the true derivative, so samples with a documented departure
# from it (numeric_fix) are checked by the other two layers only.
TRUE_CASES = [(n, s) for n, s in CASES if s.numeric_fix is None]
TRUE_IDS = [f"{name}-{sample.desc}" for name, sample in TRUE_CASES]


def test_every_registered_op_has_samples():
    missing = sorted(set(REGISTRY) - set(SAMPLES))
    stale = sorted(set(SAMPLES) - set(REGISTRY))
    assert not missing, f"ops registered without gradcheck samples in op_samples.py: {missing}"
    assert not stale, f"op_samples.py has samples for ops that are not registered: {stale}"
    assert all(SAMPLES[name] for name in REGISTRY), "every op needs at least one sample"


def test_sample_table_covers_the_shape_classes():
    """The table must keep exercising non-contiguous views, 0-d tensors and broadcasting."""
    rng = np.random.default_rng(0)
    made = [(name, s.make(rng)) for name, s in CASES]
    strided = {n for n, arrays in made if any(a.ndim >= 2 and not a.flags.c_contiguous for a in arrays)}
    zero_d = {n for n, arrays in made if any(a.ndim == 0 for a in arrays)}
    broadcast = {n for n, arrays in made if len({a.shape for a in arrays}) > 1}
    assert {"Add", "Mul", "Div", "MatMul", "Linear", "Softmax", "LayerNorm", "Sum", "GetItem",
            "Attention", "CrossEntropy", "Permute"} <= strided
    assert {"Add", "Exp", "Sum", "Max", "Reshape", "Expand", "Stack", "GELU", "Where"} <= zero_d
    assert {"Add", "Sub", "Mul", "Div", "Pow", "Maximum", "Where", "MatMul"} <= broadcast
    assert any(s.attrs.get("keepdims") for _, s in CASES)
    assert any(isinstance(s.attrs.get("axis"), int) and s.attrs["axis"] < 0 for _, s in CASES)


def _leaves(arrays):
    """Wrap the arrays (no copy: views stay non-contiguous) as leaves requiring grad."""
    tensors = []
    for a in arrays:
        t = mt.as_tensor(a)
        assert t.data is a
        t.requires_grad = True
        tensors.append(t)
    return tensors


def numeric_vjp(f, arrays, douts, eps, fix=None):
    """Central differences of sum_i <douts[i], f()[i]> with respect to every element of
    every array (f returns one array per output)."""
    def contract():
        return sum(np.sum(o * d) for o, d in zip(f(), douts))

    grads = []
    for a in arrays:
        g = np.zeros(a.shape)
        for index in np.ndindex(a.shape):
            original = a[index]
            a[index] = original + eps
            plus = contract()
            a[index] = original - eps
            minus = contract()
            a[index] = original
            g[index] = (plus - minus) / (2 * eps)
        grads.append(g)
    return fix(grads) if fix is not None else grads


def _outputs(result):
    """An op's result as a tuple of Tensors (several for a multi-output op)."""
    return result if isinstance(result, tuple) else (result,)


def _setup(name, sample):
    op = REGISTRY[name]
    rng = np.random.default_rng(0)
    arrays = sample.make(rng)
    tensors = _leaves(arrays)
    outs = _outputs(op.apply(*tensors, **sample.attrs))
    douts = [rng.standard_normal(o.shape) for o in outs]

    def forward():
        with mt.no_grad():
            return [o.data.astype(np.float64) for o in _outputs(op.apply(*tensors, **sample.attrs))]

    return op, arrays, tensors, outs, douts, forward


def _assert_close(analytic, numeric, sample, what):
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        assert a.shape == n.shape, f"{what}: input {i} gradient shape {a.shape} != {n.shape}"
        np.testing.assert_allclose(a, n, rtol=sample.rtol, atol=sample.atol,
                                   err_msg=f"{what}: gradient of input {i}")


@pytest.mark.parametrize("name,sample", CASES, ids=IDS)
def test_op_backward_against_central_differences(backend, name, sample):
    """Layer 1: the op's own backward, called directly, without the engine's walk."""
    op, arrays, tensors, outs, douts, forward = _setup(name, sample)
    ctx = outs[0].grad_fn
    assert ctx is not None and ctx.op is op and all(o.grad_fn is ctx for o in outs)
    raw = op.backward(ctx, *[d.astype(o.dtype) for d, o in zip(douts, outs)])
    raw = raw if isinstance(raw, tuple) else (raw,)
    assert len(raw) == len(tensors), f"{name}.backward returned {len(raw)} grads for {len(tensors)} inputs"
    analytic = [unbroadcast(np.asarray(g, dtype=np.float64), t.shape, name) for g, t in zip(raw, tensors)]
    numeric = numeric_vjp(forward, arrays, douts, sample.fd_eps, sample.numeric_fix)
    _assert_close(analytic, numeric, sample, f"{name}.backward")


@pytest.mark.parametrize("name,sample", TRUE_CASES, ids=TRUE_IDS)
def test_op_gradcheck(backend, name, sample):
    """Layer 2: mt.gradcheck (engine backward with a random upstream gradient)."""
    op = REGISTRY[name]
    tensors = _leaves(sample.make(np.random.default_rng(0)))
    assert mt.gradcheck(lambda *ts: op.apply(*ts, **sample.attrs), tensors, eps=sample.fd_eps,
                        atol=sample.atol, rtol=sample.rtol, mode="full", seed=3)


@pytest.mark.parametrize("name,sample", CASES, ids=IDS)
def test_op_through_scalar_backward(backend, name, sample):
    """Layer 3: loss = sum of (out * dout).sum() over the outputs; loss.backward() fills
    every leaf's .grad."""
    op, arrays, tensors, outs, douts, forward = _setup(name, sample)
    loss = sum((o * mt.as_tensor(d.astype(o.dtype))).sum() for o, d in zip(outs, douts))
    loss.backward()
    for t in tensors:
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == t.dtype
    numeric = numeric_vjp(forward, arrays, douts, sample.fd_eps, sample.numeric_fix)
    _assert_close([t.grad.data for t in tensors], numeric, sample, f"{name} via .backward()")


# ----------------------------------------------------------------------------- the checker can fail

class _SwappedMul(Function):
    """A deliberately wrong op (not registered): returns the two gradients swapped."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        return g * a, g * b


def test_gradcheck_catches_a_wrong_gradient():
    rng = np.random.default_rng(0)
    a, b = _leaves([rng.standard_normal((2, 3)), rng.standard_normal((2, 3))])
    with pytest.raises(mt.GradcheckError, match=r"input \d .* at index"):
        mt.gradcheck(lambda x, y: _SwappedMul.apply(x, y), [a, b])
    assert mt.gradcheck(lambda x, y: _SwappedMul.apply(x, y), [a, b], raise_exception=False) is False


def test_gradcheck_projection_mode_on_a_layer():
    """HIPS-style random projections: a few forward passes whatever the input size."""
    rng = np.random.default_rng(0)
    x, w, b = _leaves([rng.standard_normal((8, 16)), rng.standard_normal((12, 16)),
                       rng.standard_normal(12)])
    fn = lambda x, w, b: F.layer_norm(F.gelu(F.linear(x, w, b)), 12)
    assert mt.gradcheck(fn, [x, w, b], mode="projection", n_projections=6, atol=1e-7, rtol=1e-6)
    with pytest.raises(mt.GradcheckError, match="projection"):
        mt.gradcheck(lambda x, y: _SwappedMul.apply(x, y), _leaves([rng.standard_normal((3, 4)),
                                                                    rng.standard_normal((3, 4))]),
                     mode="projection")


# ----------------------------------------------------------------------------- numerical stability
# (the torch comparisons of the same cases are in test_torch_parity.py)

def test_softmax_family_with_huge_logits(backend):
    x = mt.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4 + 1.0, -1e4], [3.0, -np.inf, 1.0]]),
                  requires_grad=True)
    p = x.softmax(-1)
    lp = x.log_softmax(-1)
    assert np.all(np.isfinite(p.data))
    np.testing.assert_allclose(p.data.sum(-1), 1.0, rtol=1e-15)
    c = np.log(2 + np.e)
    np.testing.assert_allclose(lp.data[:2], [[0.0, -2e4, -1e4], [-c, 1 - c, -c]], rtol=1e-15, atol=1e-12)
    assert lp.data[2, 1] == -np.inf and np.isfinite(lp.data[2, [0, 2]]).all()
    loss = F.cross_entropy(x, [0, 1, 2])
    assert np.isfinite(loss.item())
    loss.backward()
    assert np.all(np.isfinite(x.grad.data))


@pytest.mark.parametrize("fn", ["sdpa", "with_weights"])
@pytest.mark.parametrize("kind", ["bool", "float", "large"])
def test_attention_fully_masked_rows_are_zero(backend, fn, kind):
    rng = np.random.default_rng(0)
    q, k, v = (mt.tensor(rng.standard_normal(s) * (100.0 if kind == "large" else 1.0), requires_grad=True)
               for s in [(2, 3, 4), (2, 5, 4), (2, 5, 3)])
    allowed = rng.random((2, 3, 5)) > 0.4
    allowed[..., 0] = True
    allowed[1, 2, :] = False                                       # one query row sees no key
    mask = allowed if kind == "bool" else np.where(allowed, 0.0, -np.inf)
    if fn == "sdpa":
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    else:
        out, weights = F.multi_head_attention(q, k, v, 1, attn_mask=mask[:, None], need_weights=True)
        weights = weights[:, 0]                                    # (B, 1, L, S) -> (B, L, S)
        assert np.all(weights.data[1, 2] == 0) and np.all(np.isfinite(weights.data))
        np.testing.assert_allclose(weights.data[0].sum(-1), 1.0, rtol=1e-12)
    assert np.all(np.isfinite(out.data)) and np.all(out.data[1, 2] == 0)
    out.backward(rng.standard_normal(out.shape))
    for t in (q, k, v):
        assert np.all(np.isfinite(t.grad.data))
    assert np.all(q.grad.data[1, 2] == 0)


# ----------------------------------------------------------------------------- dropout (statistics only)

def test_dropout_statistics(backend):
    x = mt.ones(200, 100, dtype="float64", requires_grad=True)
    mt.manual_seed(3)
    a = F.dropout(x, 0.3)
    mt.manual_seed(3)
    b = F.dropout(x, 0.3)
    np.testing.assert_array_equal(a.data, b.data)                         # same seed, same mask
    c = F.dropout(x, 0.3)
    assert not np.array_equal(a.data, c.data)                              # the next call differs
    kept = a.data != 0
    assert abs(kept.mean() - 0.7) < 0.01                                   # 20,000 Bernoulli draws
    np.testing.assert_allclose(a.data[kept], 1 / 0.7, rtol=1e-12)
    assert abs(a.data.mean() - 1.0) < 0.03                                 # E[out] = x
    dout = np.random.default_rng(0).standard_normal(x.shape)
    a.backward(dout)
    np.testing.assert_allclose(x.grad.data, dout * a.data, rtol=1e-12)     # same mask in backward
    assert F.dropout(x, 0.0) is x and F.dropout(x, 0.9, training=False) is x
    assert np.all(F.dropout(x, 1.0).data == 0)


def test_attention_dropout(backend):
    rng = np.random.default_rng(0)
    q, k, v = (mt.tensor(rng.standard_normal(s), requires_grad=True) for s in [(2, 8, 4), (2, 8, 4), (2, 8, 3)])
    plain = F.scaled_dot_product_attention(q, k, v)
    mt.manual_seed(1)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    mt.manual_seed(1)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.allclose(a.data, plain.data)
    a.backward(rng.standard_normal(a.shape))
    assert all(np.isfinite(t.grad.data).all() for t in (q, k, v))
