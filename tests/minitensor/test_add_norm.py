"""The fused Add & Norm ops (``F.add_norm``: LayerNorm(x + Dropout(y)); ``F.add_dropout``:
x + Dropout(y)): gradients against central differences (float64), PyTorch parity
(p = 0), the same numbers and the same random stream as the unfused Dropout -> Add ->
LayerNorm at p > 0, the Numba kernels against their NumPy twins, the Transformer layers
using them, and errors that name the op, the argument and the shapes.
"""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
import transformer as T
from minitensor import functional as F
from minitensor.errors import DTypeError, ShapeError
from minitensor.kernels import numpy_ref as ref

nb = pytest.importorskip("minitensor.kernels.numba_cpu")

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-5, np.float64: 1e-12}     # test_kernels.py's, for kernel twins


def assert_close(got, want, dtype, scale=0.0):
    """test_kernels.py's rule: same shape and dtype; |got - want| <= tol * (|want| + s), s
    the largest |want| or ``scale`` (the size of terms that cancel into small entries)."""
    assert got.shape == want.shape and got.dtype == want.dtype == np.dtype(dtype)
    scale = max(scale, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype] * scale)


def _leaves(rng, dtype, *shapes):
    return [mt.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]


def _unfused(x, y, w, b, p, eps=1e-5, training=True):
    shape = x.shape[-1:] if w is None else w.shape
    return F.layer_norm(x + F.dropout(y, p, training), shape, w, b, eps)


def _fused(x, y, w, b, p, eps=1e-5, training=True):
    shape = x.shape[-1:] if w is None else w.shape
    return F.add_norm(x, y, shape, w, b, eps, p, training)


def _run(fn, tensors, p, dout, seed=7, **kw):
    """Output and every input gradient of fn(*tensors, p) contracted with dout, from a fixed
    global seed; also the generator's next draw (did both consume the same randomness?)."""
    for t in tensors:
        if t is not None:
            t.grad = None
    mt.manual_seed(seed)
    out = fn(*tensors, p, **kw)
    (out * mt.tensor(dout)).sum().backward()
    return out.data, [None if t is None or t.grad is None else t.grad.data for t in tensors], \
        mt.rand(1).item()


# ------------------------------------------------------------------- gradients, float64


@pytest.mark.parametrize("p", [0.0, 0.4])
@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, False)])
def test_add_norm_gradcheck(backend, p, affine):
    rng = np.random.default_rng(0)
    x, y, w, b = _leaves(rng, np.float64, (2, 3, 6), (2, 3, 6), (6,), (6,))
    w = w if affine[0] else None
    b = b if affine[1] else None
    inputs = [t for t in (x, y, w, b) if t is not None]

    def fn(*ts):
        it = iter(ts)
        xx, yy = next(it), next(it)
        ww = next(it) if affine[0] else None
        bb = next(it) if affine[1] else None
        mt.manual_seed(5)                      # the same mask at every evaluation
        return F.add_norm(xx, yy, 6, ww, bb, 1e-5, p)
    assert mt.gradcheck(fn, inputs, mode="full", seed=1)


def test_add_norm_gradcheck_over_two_axes(backend):
    rng = np.random.default_rng(1)
    x, y, w, b = _leaves(rng, np.float64, (3, 2, 4), (3, 2, 4), (2, 4), (2, 4))

    def fn(xx, yy, ww, bb):
        mt.manual_seed(9)
        return F.add_norm(xx, yy, (2, 4), ww, bb, 1e-5, 0.25)
    assert mt.gradcheck(fn, [x, y, w, b], mode="full", seed=2)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_add_dropout_gradcheck(backend, p):
    x, y = _leaves(np.random.default_rng(2), np.float64, (4, 5), (4, 5))

    def fn(xx, yy):
        mt.manual_seed(3)
        return F.add_dropout(xx, yy, p)
    assert mt.gradcheck(fn, [x, y], mode="full", seed=4)


# ----------------------------------------------------------------------- torch parity


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_norm_matches_torch_layer_norm_of_the_sum(backend, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(4, 7, 16), (4, 7, 16), (16,), (16,)]]
    ours = [mt.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    dout = rng.standard_normal((4, 7, 16)).astype(dtype)
    out = F.add_norm(*ours[:2], 16, *ours[2:], 1e-5, 0.0)
    tout = torch.nn.functional.layer_norm(theirs[0] + theirs[1], (16,), theirs[2], theirs[3], 1e-5)
    (out * mt.tensor(dout)).sum().backward()
    (tout * torch.tensor(dout)).sum().backward()
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), **tol)
    for name, a, t in zip(["x", "y", "weight", "bias"], ours, theirs):
        np.testing.assert_allclose(a.grad.data, t.grad.numpy(), err_msg=name, **tol)


# -------------------------------------- the same numbers as Dropout -> Add -> LayerNorm


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("affine", [(True, True), (False, False)])
def test_add_norm_equals_the_unfused_path(backend, dtype, p, affine):
    """Bit for bit: outputs, every gradient, and the random state left behind."""
    rng = np.random.default_rng(4)
    x, y, w, b = _leaves(rng, dtype, (5, 9, 32), (5, 9, 32), (32,), (32,))
    w, b = (w if affine[0] else None), (b if affine[1] else None)
    dout = rng.standard_normal((5, 9, 32)).astype(dtype)
    out, grads, next_draw = _run(_fused, [x, y, w, b], p, dout)
    want, want_grads, want_next = _run(_unfused, [x, y, w, b], p, dout)
    assert out.dtype == want.dtype == dtype
    np.testing.assert_array_equal(out, want)
    for name, g, wg in zip(["x", "y", "weight", "bias"], grads, want_grads):
        assert (g is None) == (wg is None), name
        if g is not None:
            np.testing.assert_array_equal(g, wg, err_msg=name)
    assert next_draw == want_next              # one seed drawn exactly when dropout draws one


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_norm_in_eval_mode_draws_no_seed_and_equals_unfused(backend, dtype):
    rng = np.random.default_rng(5)
    x, y, w, b = _leaves(rng, dtype, (3, 4, 8), (3, 4, 8), (8,), (8,))
    dout = rng.standard_normal((3, 4, 8)).astype(dtype)
    out, grads, next_draw = _run(_fused, [x, y, w, b], 0.3, dout, training=False)
    want, want_grads, want_next = _run(_unfused, [x, y, w, b], 0.3, dout, training=False)
    np.testing.assert_array_equal(out, want)
    for g, wg in zip(grads, want_grads):
        np.testing.assert_array_equal(g, wg)
    mt.manual_seed(7)
    assert next_draw == want_next == mt.rand(1).item()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.2, 1.0])
def test_add_dropout_equals_the_unfused_path(backend, dtype, p):
    rng = np.random.default_rng(6)
    x, y = _leaves(rng, dtype, (6, 33), (6, 33))
    dout = rng.standard_normal((6, 33)).astype(dtype)
    out, grads, next_draw = _run(lambda a, b, q: F.add_dropout(a, b, q), [x, y], p, dout)
    want, want_grads, want_next = _run(lambda a, b, q: a + F.dropout(b, q), [x, y], p, dout)
    np.testing.assert_array_equal(out, want)
    for g, wg in zip(grads, want_grads):
        np.testing.assert_array_equal(g, wg)
    assert next_draw == want_next


def test_add_norm_is_one_graph_node():
    x, y, w, b = _leaves(np.random.default_rng(7), np.float32, (2, 3, 4), (2, 3, 4), (4,), (4,))
    out = F.add_norm(x, y, 4, w, b, 1e-5, 0.1)
    assert out.grad_fn.name == "AddNorm"
    assert all(parent is t for parent, t in zip(out.grad_fn.parents, (x, y, w, b)))
    assert F.add_dropout(x, y, 0.1).grad_fn.name == "AddDropout"


# ------------------------------------------------------- Numba kernels vs NumPy twins


def _kernel_inputs(case, dtype, rng):
    """x, y of the named shape class (non-contiguous views included), weight, bias."""
    shape = {"tiny": (1, 1), "odd": (7, 13), "3d": (3, 11, 64), "big": (1024, 128),
             "transposed": (9, 5), "wide": (2, 3000)}[case]
    x, y = (rng.standard_normal(shape[::-1] if case == "transposed" else shape).astype(dtype)
            for _ in range(2))
    if case == "transposed":
        x, y = x.T, y.T
    c = shape[-1]
    return x, y, rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)


CASES = ["tiny", "odd", "3d", "big", "transposed", "wide"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.6, 1.0])
@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, False)])
def test_add_norm_kernel_matches_numpy_twin(dtype, case, p, affine):
    rng = np.random.default_rng(len(case) + int(10 * p))
    x, y, w, b = _kernel_inputs(case, dtype, rng)
    w, b = (w if affine[0] else None), (b if affine[1] else None)
    dout = rng.standard_normal(x.shape).astype(dtype)
    out, cache = nb.add_norm_forward(x, y, w, b, 1e-5, p, 1234)
    want, want_cache = ref.add_norm_forward(x, y, w, b, 1e-5, p, 1234)
    assert_close(out, want, dtype)
    grads = nb.add_norm_backward(dout, cache)
    want_grads = ref.add_norm_backward(dout, want_cache)
    scale = float(np.abs(dout).max() * np.abs(want_cache[0][2]).max()) * (1 if w is None else
                                                                         float(np.abs(w).max()))
    for name, g, wg in zip(["dx", "dy", "dweight", "dbias"], grads, want_grads):
        assert (g is None) == (wg is None), name
        if g is not None:
            assert_close(g.reshape(wg.shape), wg, dtype, scale=scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["tiny", "odd", "big", "transposed"])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_add_dropout_kernel_matches_numpy_twin(dtype, case, p):
    rng = np.random.default_rng(len(case))
    x, y, _, _ = _kernel_inputs(case, dtype, rng)
    dout = rng.standard_normal(x.shape).astype(dtype)
    out, cache = nb.add_dropout_forward(x, y, p, 99)
    want, want_cache = ref.add_dropout_forward(x, y, p, 99)
    np.testing.assert_array_equal(out, want)          # one multiply and one add: exact
    for g, wg in zip(nb.add_dropout_backward(dout, cache), ref.add_dropout_backward(dout, want_cache)):
        np.testing.assert_array_equal(g, wg)


def test_add_norm_kernel_does_not_depend_on_the_thread_count():
    """Serial twin and parallel kernel give the same bits (dweight/dbias in fixed chunks)."""
    from minitensor.kernels.numba_cpu import _threads
    rng = np.random.default_rng(8)
    x, y, w, b = _kernel_inputs("big", np.float32, rng)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for min_work in (0, 1 << 62):                 # everything parallel, everything serial
        old, _threads.PARALLEL_MIN_WORK = _threads.PARALLEL_MIN_WORK, min_work
        try:
            out, cache = nb.add_norm_forward(x, y, w, b, 1e-5, 0.1, 5)
            results.append((out, *nb.add_norm_backward(dout, cache)))
        finally:
            _threads.PARALLEL_MIN_WORK = old
    for a, b_ in zip(*results):
        np.testing.assert_array_equal(a, b_)


# -------------------------------------------------------------- the Transformer layers


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_give_the_unfused_numbers_with_dropout(backend, norm_first, dtype, monkeypatch):
    """A decoder layer (three Add & Norm boxes) with dropout 0.2, training: outputs, every
    parameter gradient and the random state left behind equal those of the unfused boxes."""
    def unfused_add_norm(self, x, sublayer, norm, dropout):
        if self.norm_first:
            return x + dropout(sublayer(norm(x)))
        return norm(x + dropout(sublayer(x)))

    layer = T.TransformerDecoderLayer(16, 2, 32, dropout=0.2, batch_first=True, norm_first=norm_first)
    if dtype == np.float64:
        layer.double()
    rng = np.random.default_rng(9)
    tgt = mt.tensor(rng.standard_normal((2, 5, 16)).astype(dtype), requires_grad=True)
    memory = mt.tensor(rng.standard_normal((2, 4, 16)).astype(dtype), requires_grad=True)
    dout = mt.tensor(rng.standard_normal((2, 5, 16)).astype(dtype))

    def run():
        layer.zero_grad()
        tgt.grad = memory.grad = None
        mt.manual_seed(11)
        out = layer(tgt, memory)
        (out * dout).sum().backward()
        grads = {n: p.grad.data.copy() for n, p in layer.named_parameters()}
        return out.data, grads, tgt.grad.data, memory.grad.data, mt.rand(1).item()

    fused = run()
    monkeypatch.setattr(T.TransformerDecoderLayer, "_add_norm", unfused_add_norm)
    unfused = run()
    np.testing.assert_array_equal(fused[0], unfused[0])
    assert fused[1].keys() == unfused[1].keys()
    for name in fused[1]:
        np.testing.assert_array_equal(fused[1][name], unfused[1][name], err_msg=name)
    np.testing.assert_array_equal(fused[2], unfused[2])
    np.testing.assert_array_equal(fused[3], unfused[3])
    assert fused[4] == unfused[4]


def test_post_norm_layer_makes_add_norm_nodes():
    layer = T.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True)
    out = layer(mt.randn(2, 3, 8, requires_grad=True))
    assert out.grad_fn.name == "AddNorm"
    assert [k for k in layer.state_dict() if "norm" in k or "dropout" in k] == \
        ["norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"]


def test_a_replaced_norm_module_is_called_as_it_is():
    layer = T.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    layer.norm2 = mt.nn.Identity()
    src = mt.randn(2, 3, 8)
    out = layer(src)
    assert out.grad_fn is None or out.grad_fn.name != "AddNorm"
    x = layer._add_norm(src, lambda t: layer.self_attn(t, t, t, need_weights=False)[0], layer.norm1,
                        layer.dropout1)
    np.testing.assert_array_equal(out.data, (x + layer._ff_block(x)).data)


# ---------------------------------------------------------------------------- errors


def test_add_norm_errors_name_the_op_the_argument_and_the_shapes():
    x, y = mt.randn(2, 3, 4), mt.randn(2, 3, 5)
    w = mt.randn(4)
    with pytest.raises(ShapeError, match=r"add_norm: the residual x of shape \(2, 3, 4\) and the "
                                         r"sub-layer output y of shape \(2, 3, 5\)"):
        F.add_norm(x, y, 4, w)
    with pytest.raises(ShapeError, match=r"add_norm: x of shape \(2, 3, 4\) does not end with "
                                         r"normalized_shape \(5,\)"):
        F.add_norm(x, mt.randn(2, 3, 4), 5)
    with pytest.raises(TypeError, match=r"add_norm: normalized_shape must be an int or a tuple "
                                        r"of ints \(the trailing axes of x\), got a Tensor of "
                                        r"shape \(4,\)"):
        F.add_norm(x, mt.randn(2, 3, 4), w, w)
    with pytest.raises(ShapeError, match=r"add_norm: weight of shape \(3,\) does not match "
                                         r"normalized_shape \(4,\)"):
        F.add_norm(x, mt.randn(2, 3, 4), 4, mt.randn(3))
    with pytest.raises(ShapeError, match=r"add_norm: bias of shape \(4, 1\)"):
        F.add_norm(x, mt.randn(2, 3, 4), 4, w, mt.randn(4, 1))
    with pytest.raises(DTypeError, match=r"add_norm: expected a floating-point tensor, got dtype "
                                         r"int64 \(shape \(2, 4\)\)"):
        F.add_norm(mt.randn(2, 4), mt.tensor(np.ones((2, 4), np.int64)), 4)
    with pytest.raises(ValueError, match=r"add_norm: dropout probability p has to be between 0 "
                                         r"and 1, but got 1.5"):
        F.add_norm(x, mt.randn(2, 3, 4), 4, w, p=1.5)
    with pytest.raises(ShapeError, match=r"add_dropout: the residual x of shape \(3,\) and the "
                                         r"sub-layer output y of shape \(2, 3\)"):
        F.add_dropout(mt.randn(3), mt.randn(2, 3), 0.1)
    with pytest.raises(ValueError, match=r"add_dropout: dropout probability p .* got -0.1"):
        F.add_dropout(mt.randn(3), mt.randn(3), -0.1)


def test_mixed_dtypes_take_the_composed_path_with_its_promotion():
    x = mt.randn(2, 4, dtype=mt.float64, requires_grad=True)
    y = mt.randn(2, 4, requires_grad=True)                              # float32
    w, b = mt.ones(4, requires_grad=True), mt.zeros(4, requires_grad=True)
    out = F.add_norm(x, y, 4, w, b, 1e-5, 0.0)
    want = F.layer_norm(x + y, 4, w, b)
    np.testing.assert_array_equal(out.data, want.data)
    assert out.dtype == want.dtype


# -------------------------------------------------------------------------- profiler


@pytest.mark.parametrize("p", [0.0, 0.2])
def test_add_norm_states_the_flops_of_the_ops_it_replaces(p):
    """The profiler's FLOPs for AddNorm are those of Dropout + Add + LayerNorm (ops/costs.py)."""
    from minitensor import profiler
    x, y, w, b = _leaves(np.random.default_rng(10), np.float32, (3, 10), (3, 10), (10,), (10,))

    def flops(fn):
        with profiler.profile() as prof:
            fn(x, y, w, b, p).sum().backward()
        by_phase = {"forward": 0, "backward": 0}
        for e in prof.events:
            if e.name in ("AddNorm", "Dropout", "Add", "LayerNorm"):
                by_phase[e.phase] += e.flops
        return by_phase

    assert flops(_fused) == flops(_unfused)
