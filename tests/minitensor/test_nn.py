"""nn: Module registration and traversal, state dicts, layers, init, clip_grad_norm_.

Torch-dependent tests start with ``torch = pytest.importorskip("torch")`` so the rest
runs without it. Parity is checked in float64 with a random upstream gradient.
"""
from __future__ import annotations

import copy
import math
import time

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F
from minitensor import nn, optim

RTOL, ATOL = 1e-10, 1e-12


# ----------------------------------------------------------------------------- helpers


class Block(nn.Module):
    """A small nested model: Sequential of Linear/ReLU/LayerNorm plus a ModuleList."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.LayerNorm(5))
        self.layers = nn.ModuleList([nn.Linear(5, 5), nn.Linear(5, 4, bias=False)])
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        x = self.net(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def torch_block(torch):
    """The same architecture as ``Block`` in torch."""
    tnn = torch.nn

    class TorchBlock(tnn.Module):
        def __init__(self):
            super().__init__()
            self.net = tnn.Sequential(tnn.Linear(3, 5), tnn.ReLU(), tnn.LayerNorm(5))
            self.layers = tnn.ModuleList([tnn.Linear(5, 5), tnn.Linear(5, 4, bias=False)])
            self.head = tnn.Linear(4, 2)

        def forward(self, x):
            x = self.net(x)
            for layer in self.layers:
                x = layer(x)
            return self.head(x)

    return TorchBlock()


def torch_state(module) -> dict:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def check_parity(torch, t_module, m_module, x_np, index_input=False):
    """Load torch's weights into ours, run both on x, compare output and every gradient."""
    t_module = t_module.double()
    m_module.double().load_state_dict(torch_state(t_module))
    if index_input:
        xt, xm = torch.tensor(x_np), x_np
    else:
        xt, xm = torch.tensor(x_np, requires_grad=True), mt.tensor(x_np, requires_grad=True)
    out_t, out_m = t_module(xt), m_module(xm)
    np.testing.assert_allclose(out_m.data, out_t.detach().numpy(), rtol=RTOL, atol=ATOL)
    dout = np.random.default_rng(7).standard_normal(out_m.shape)
    out_t.backward(torch.tensor(dout))
    out_m.backward(dout)
    if not index_input:
        np.testing.assert_allclose(xm.grad.data, xt.grad.numpy(), rtol=RTOL, atol=ATOL)
    t_params = dict(t_module.named_parameters())
    for name, p in m_module.named_parameters():
        np.testing.assert_allclose(p.grad.data, t_params[name].grad.numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=name)


# ----------------------------------------------------------------------------- Parameter


def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter(np.ones((2, 3)))
    assert isinstance(p, mt.Tensor) and p.is_leaf and p.requires_grad
    assert p.dtype == np.float64
    assert repr(p).startswith("Parameter containing:\ntensor(")
    frozen = nn.Parameter(mt.zeros(2), requires_grad=False)
    assert not frozen.requires_grad and frozen.dtype == np.float32
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32
    y = (p * 2).sum()
    assert type(p * 2) is mt.Tensor  # ops return plain tensors
    y.backward()
    np.testing.assert_array_equal(p.grad.data, np.full((2, 3), 2.0))


def test_parameter_shares_memory_like_torch():
    t = mt.randn(3)
    assert nn.Parameter(t).data is t.data


# ----------------------------------------------------------------------------- registration


def test_registration_order_and_dotted_names():
    model = Block()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias",
                     "layers.0.weight", "layers.0.bias", "layers.1.weight",
                     "head.weight", "head.bias"]
    assert [n for n, _ in model.named_modules()] == [
        "", "net", "net.0", "net.1", "net.2", "layers", "layers.0", "layers.1", "head"]
    assert [n for n, _ in model.named_children()] == ["net", "layers", "head"]
    assert list(model.children())[0] is model.net
    assert len(list(model.modules())) == 9
    assert model.layers[1].bias is None


def test_state_dict_keys_and_shapes_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = Block(), torch_block(torch)
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert list(sd) == list(tsd)
    assert {k: v.shape for k, v in sd.items()} == {k: tuple(v.shape) for k, v in tsd.items()}
    assert all(v.dtype == np.float32 for v in sd.values())
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())


def test_state_dict_returns_copies():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict()
    sd["weight"][...] = 123.0
    assert not np.any(lin.weight.data == 123.0)
    assert lin.state_dict(keep_vars=True)["weight"] is lin.weight


def test_unknown_attribute_raises_attribute_error_naming_class_and_attribute():
    lin = nn.Linear(2, 2)
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'wieght'"):
        lin.wieght
    assert not hasattr(lin, "nothing")


def test_assigning_before_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_reassignment_moves_between_registries():
    m = nn.Module()
    m.x = nn.Parameter(np.zeros(2))
    m.x = nn.Linear(2, 2)            # now a submodule, no longer a parameter
    assert list(m._parameters) == [] and list(m._modules) == ["x"]
    with pytest.raises(TypeError, match="nn.Module or None"):
        m.x = np.zeros(2)
    m.x = None
    assert m.x is None
    del m.x
    with pytest.raises(AttributeError):
        m.x


def test_tied_parameters_are_listed_and_updated_once():
    emb, head = nn.Embedding(5, 3), nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    model = nn.ModuleDict({"emb": emb, "head": head})
    assert [n for n, _ in model.named_parameters()] == ["emb.weight"]
    assert len(list(model.parameters())) == 1
    assert model.num_parameters() == 15
    # state_dict keeps both names, as torch does, so it loads into an untied model too
    assert list(model.state_dict()) == ["emb.weight", "head.weight"]
    opt = optim.SGD(model.parameters(), lr=1.0)
    before = emb.weight.data.copy()
    loss = head(emb(np.array([0, 1]))).sum()
    loss.backward()
    opt.step()
    np.testing.assert_allclose(emb.weight.data, before - emb.weight.grad.data, rtol=1e-6)


def test_tied_parameters_match_torch_listing():
    torch = pytest.importorskip("torch")
    t = torch.nn.ModuleDict({"emb": torch.nn.Embedding(5, 3),
                             "head": torch.nn.Linear(3, 5, bias=False)})
    t["head"].weight = t["emb"].weight
    m = nn.ModuleDict({"emb": nn.Embedding(5, 3), "head": nn.Linear(3, 5, bias=False)})
    m["head"].weight = m["emb"].weight
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert list(m.state_dict()) == list(t.state_dict())


def test_buffers_persistent_and_not():
    m = nn.Module()
    m.register_buffer("table", mt.arange(4).to(mt.float32))
    m.register_buffer("cache", np.zeros(2), persistent=False)
    assert list(m.state_dict()) == ["table"]
    assert [n for n, _ in m.named_buffers()] == ["table", "cache"]
    m.load_state_dict({"table": np.full(4, 7.0)})
    np.testing.assert_array_equal(m.table.data, np.full(4, 7.0, np.float32))
    assert m.table.dtype == np.float32
    assert list(m.parameters()) == []


# ----------------------------------------------------------------------------- load_state_dict


def test_load_state_dict_strict_error_lists_every_problem_in_one_message():
    model = Block()
    sd = model.state_dict()
    del sd["head.bias"], sd["net.2.weight"]
    sd["extra.weight"] = np.zeros(3)
    sd["layers.0.weight"] = np.zeros((5, 6))
    before = model.state_dict()
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(sd)
    msg = str(info.value)
    assert "Error(s) in loading state_dict for Block" in msg
    assert "Missing key(s) in state_dict: 'net.2.weight', 'head.bias'." in msg
    assert "Unexpected key(s) in state_dict: 'extra.weight'." in msg
    assert "size mismatch for layers.0.weight: copying a param with shape (5, 6) from " \
           "checkpoint, the shape in current model is (5, 5)." in msg
    # validated before copying anything: the model is unchanged
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_non_strict_returns_named_tuple():
    model = Block()
    sd = Block().state_dict()
    del sd["head.bias"]
    sd["extra"] = np.zeros(1)
    result = model.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(model.head.weight.data, sd["head.weight"])
    with pytest.raises(RuntimeError, match="size mismatch"):  # shapes are checked anyway
        model.load_state_dict({"head.weight": np.zeros((1, 1))}, strict=False)


def test_load_state_dict_accepts_tensors_and_converts_dtype_in_place():
    lin = nn.Linear(2, 3)
    weight = lin.weight
    array = lin.weight.data
    new = {"weight": mt.tensor(np.arange(6.0).reshape(3, 2)), "bias": np.array([1, 2, 3])}
    lin.load_state_dict(new)
    assert lin.weight is weight and lin.weight.data is array  # same objects, new values
    assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32
    np.testing.assert_array_equal(lin.weight.data, np.arange(6.0).reshape(3, 2))


# ----------------------------------------------------------------------------- modes, dtype, misc


def test_train_eval_recursive_and_dropout_follows_it():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Dropout(0.5)))
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    x = mt.ones(8, 4)
    np.testing.assert_array_equal(model[1](x).data, x.data)
    model.train()
    assert all(m.training for m in model.modules())
    y = model[1](x).data
    assert set(np.unique(y)) <= {0.0, 2.0} and (y == 0).any()


def test_to_double_keeps_parameter_objects_and_optimizer_still_works():
    model = Block()
    params = list(model.parameters())
    opt = optim.Adam(model.parameters(), lr=0.1)
    model(mt.randn(2, 3)).sum().backward()
    opt.step()
    assert model.double() is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in params)
    opt.zero_grad()
    model(mt.randn(2, 3, dtype=mt.float64)).sum().backward()
    opt.step()
    assert all(p.dtype == np.float64 for p in params)
    assert all(v.dtype == np.float64 for s in opt.state.values() for v in s.values()
               if isinstance(v, np.ndarray))
    model.float()
    assert all(p.dtype == np.float32 for p in params)


def test_zero_grad_and_apply_and_requires_grad():
    model = Block()
    model(mt.randn(2, 3)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.data == 0) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen[-1] == "Block" and seen.count("Linear") == 4
    model.requires_grad_(False)
    assert model.num_parameters(trainable_only=True) == 0


def test_repr_matches_torch():
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    def build(lib):
        return lib.Sequential(
            lib.Linear(2, 3), lib.ReLU(), lib.LayerNorm(3),
            lib.ModuleList([lib.Linear(3, 3), lib.Linear(3, 3), lib.GELU(approximate="tanh")]),
            lib.Embedding(10, 3, padding_idx=0), lib.Dropout(0.1), lib.Identity(),
            lib.LayerNorm((2, 3), eps=1e-6, bias=False), lib.Linear(3, 1, bias=False),
            lib.ModuleDict({"a": lib.ReLU()}), lib.ModuleList())

    assert repr(build(nn)) == repr(build(tnn))


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[1] is seq[2]
    with pytest.raises(IndexError):
        seq[3]
    seq.append(nn.ReLU())
    assert len(seq) == 4 and seq(mt.randn(5, 2)).shape == (5, 1)

    ml = nn.ModuleList()
    ml.append(nn.Linear(1, 1)).extend([nn.ReLU(), nn.GELU()])
    ml.insert(0, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Identity", "Linear", "ReLU", "GELU"]
    assert list(ml._modules) == ["0", "1", "2", "3"]
    del ml[0]
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias"]
    ml[1] = nn.Linear(2, 2)
    assert len(list(ml.parameters())) == 4 and len(ml[:2]) == 2

    md = nn.ModuleDict({"b": nn.Linear(1, 1)})
    md["a"] = nn.ReLU()
    assert list(md) == ["b", "a"] and "a" in md and len(md) == 2
    assert [k for k, _ in md.items()] == ["b", "a"]


def test_deepcopy_gives_independent_parameters():
    model = Block()
    clone = copy.deepcopy(model)
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), clone.named_parameters()):
        assert n1 == n2 and p1 is not p2 and isinstance(p2, nn.Parameter) and p2.requires_grad
        np.testing.assert_array_equal(p1.data, p2.data)
        assert not np.shares_memory(p1.data, p2.data)


# ----------------------------------------------------------------------------- layers vs torch


def test_linear_parity_with_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    check_parity(torch, torch.nn.Linear(4, 5), nn.Linear(4, 5), x)
    check_parity(torch, torch.nn.Linear(4, 5, bias=False), nn.Linear(4, 5, bias=False), x)


def test_embedding_parity_with_torch_including_padding_idx():
    torch = pytest.importorskip("torch")
    idx = np.array([[0, 2, 1, 2], [3, 0, 0, 4]])
    check_parity(torch, torch.nn.Embedding(5, 3), nn.Embedding(5, 3), idx, index_input=True)
    t, m = torch.nn.Embedding(5, 3, padding_idx=0), nn.Embedding(5, 3, padding_idx=0)
    check_parity(torch, t, m, idx, index_input=True)
    assert np.all(m.weight.grad.data[0] == 0.0)


def test_layer_norm_parity_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6)) * 3 + 1
    t, m = torch.nn.LayerNorm(6), nn.LayerNorm(6)
    with torch.no_grad():  # non-trivial affine parameters
        t.weight.copy_(torch.tensor(rng.standard_normal(6)))
        t.bias.copy_(torch.tensor(rng.standard_normal(6)))
    check_parity(torch, t, m, x)
    check_parity(torch, torch.nn.LayerNorm((3, 6), eps=1e-3), nn.LayerNorm((3, 6), eps=1e-3), x)
    check_parity(torch, torch.nn.LayerNorm(6, bias=False), nn.LayerNorm(6, bias=False), x)


def test_nested_model_parity_with_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((4, 3))
    check_parity(torch, torch_block(torch), Block(), x)


def test_torch_default_init_distributions():
    torch = pytest.importorskip("torch")
    from torch.nn import init as tinit
    from minitensor.nn import init
    for shape in [(3, 4), (5, 2, 3), (4, 3, 2, 2)]:
        assert init._calculate_fan_in_and_fan_out(mt.zeros(*shape)) == \
            tinit._calculate_fan_in_and_fan_out(torch.zeros(shape))
    for name, param in [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                        ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None),
                        ("leaky_relu", math.sqrt(5))]:
        assert init.calculate_gain(name, param) == pytest.approx(tinit.calculate_gain(name, param),
                                                                 rel=1e-15)


# ----------------------------------------------------------------------------- init


def test_linear_and_embedding_init():
    mt.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (lin.weight, lin.bias):
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.98 * bound  # fills the interval
    # U(-b, b) has std b / sqrt(3)
    assert lin.weight.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    emb = nn.Embedding(1000, 64, padding_idx=-1)
    assert emb.padding_idx == 999 and np.all(emb.weight.data[999] == 0)
    assert emb.weight.data[:999].std() == pytest.approx(1.0, rel=0.02)
    ln = nn.LayerNorm(8)
    assert np.all(ln.weight.data == 1) and np.all(ln.bias.data == 0)
    assert nn.Linear(2, 2, dtype=mt.float64).weight.dtype == np.float64


def test_init_is_seeded_and_in_place():
    from minitensor.nn import init
    mt.manual_seed(3)
    a = nn.Linear(5, 5).weight.data.copy()
    mt.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(5, 5).weight.data, a)
    w = mt.zeros(200, 300)
    array = w.data
    assert init.xavier_uniform_(w) is w and w.data is array
    assert np.abs(w.data).max() <= math.sqrt(6 / 500)
    assert w.data.std() == pytest.approx(math.sqrt(2 / 500), rel=0.02)
    init.xavier_normal_(w, gain=2.0)
    assert w.data.std() == pytest.approx(2 * math.sqrt(2 / 500), rel=0.02)
    init.kaiming_normal_(w, nonlinearity="relu")
    assert w.data.std() == pytest.approx(math.sqrt(2 / 300), rel=0.02)
    init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu")
    assert np.abs(w.data).max() <= math.sqrt(6 / 200)
    init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert np.abs(w.data).max() <= 0.5
    init.constant_(w, 0.25)
    assert np.all(w.data == 0.25) and w.dtype == np.float32
    init.ones_(w), init.zeros_(w)
    assert np.all(w.data == 0)
    init.normal_(w, 1.0, 0.1, generator=np.random.default_rng(0))
    assert w.data.mean() == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(mt.zeros(3))


# ----------------------------------------------------------------------------- gradcheck


def _double(module):
    return module.double()


def test_gradcheck_linear():
    mt.manual_seed(0)
    layer = _double(nn.Linear(4, 3))
    x = mt.randn(2, 5, 4, dtype=mt.float64, requires_grad=True)
    assert mt.gradcheck(lambda x, w, b: layer(x), [x, layer.weight, layer.bias])


def test_gradcheck_embedding():
    mt.manual_seed(0)
    emb = _double(nn.Embedding(6, 3))
    idx = np.array([[0, 5, 2], [2, 2, 1]])
    assert mt.gradcheck(lambda w: emb(idx), [emb.weight])


def test_embedding_padding_row_gets_exactly_zero_gradient():
    emb = _double(nn.Embedding(6, 3, padding_idx=2))
    idx = np.array([[0, 5, 2], [2, 2, 1]])
    out = emb(idx)
    out.backward(np.random.default_rng(0).standard_normal(out.shape))
    assert np.all(emb.weight.grad.data[2] == 0.0)
    assert np.all(emb.weight.grad.data[[0, 1, 5]] != 0.0)


def test_gradcheck_layer_norm():
    mt.manual_seed(0)
    ln = _double(nn.LayerNorm(5))
    nn.init.normal_(ln.weight)  # non-trivial affine parameters
    nn.init.normal_(ln.bias)
    x = mt.randn(3, 5, dtype=mt.float64, requires_grad=True)
    assert mt.gradcheck(lambda x, w, b: ln(x), [x, ln.weight, ln.bias])


@pytest.mark.parametrize("p, training", [(0.0, True), (0.5, False)])
def test_gradcheck_dropout_identity_cases(p, training):
    mt.manual_seed(0)
    drop = nn.Dropout(p).train(training)
    lin = _double(nn.Linear(3, 3))
    x = mt.randn(4, 3, dtype=mt.float64, requires_grad=True)
    assert mt.gradcheck(lambda x, w, b: drop(lin(x)), [x, lin.weight, lin.bias])
    np.testing.assert_array_equal(drop(x).data, x.data)


def test_gradcheck_dropout_training_is_deterministic_under_gradcheck():
    mt.manual_seed(0)
    drop = nn.Dropout(0.3)
    x = mt.randn(4, 6, dtype=mt.float64, requires_grad=True)
    assert mt.gradcheck(lambda x: drop(x), [x])


# ----------------------------------------------------------------------------- clip_grad_norm_


def _grads_pair(torch, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    arrays = [rng.standard_normal(s) * scale for s in shapes]
    ours = [nn.Parameter(np.zeros(s)) for s in shapes]
    theirs = [torch.nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in shapes]
    for a, p, t in zip(arrays, ours, theirs):
        p.grad = mt.tensor(a)
        t.grad = torch.tensor(a)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    ours, theirs = _grads_pair(torch)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type, foreach=False)
    assert isinstance(total, mt.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), t_total.item(), rtol=1e-14)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-14, atol=1e-15)


def test_clip_grad_norm_formula_and_edge_cases():
    p = nn.Parameter(np.zeros(2))
    p.grad = mt.tensor(np.array([3.0, 4.0]))
    q = nn.Parameter(np.zeros(2))  # no grad: ignored
    total = nn.utils.clip_grad_norm_([p, q], 1.0)
    assert total.item() == 5.0
    np.testing.assert_allclose(p.grad.data, np.array([3.0, 4.0]) * (1.0 / (5.0 + 1e-6)), rtol=1e-15)
    p.grad = mt.tensor(np.array([0.3, 0.4]))
    nn.utils.clip_grad_norm_(p, 1.0)  # below max_norm: unchanged
    np.testing.assert_array_equal(p.grad.data, [0.3, 0.4])
    p.grad = mt.tensor(np.array([np.inf, 1.0]))
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert nn.utils.clip_grad_norm_([q], 1.0).item() == 0.0
    p.grad = mt.tensor(np.array([-3.0, 0.5]))
    nn.utils.clip_grad_value_(p, 1.0)
    np.testing.assert_array_equal(p.grad.data, [-1.0, 0.5])


def test_clip_grad_norm_keeps_float32():
    p = nn.Parameter(np.zeros(3, np.float32))
    p.grad = mt.tensor(np.array([10.0, 0.0, 0.0], np.float32))
    total = nn.utils.clip_grad_norm_([p], 1.0)
    assert total.dtype == np.float32 and p.grad.dtype == np.float32
    assert p.grad.data[0] == pytest.approx(1.0, rel=1e-6)


# ----------------------------------------------------------------------------- end to end


def test_mlp_learns_two_moons_to_full_train_accuracy():
    mt.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 100  # two interleaved half circles with a little noise
    t = rng.uniform(0, np.pi, n)
    x = np.concatenate([np.stack([np.cos(t), np.sin(t)], 1),
                        np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)]) + rng.normal(0, 0.05, (2 * n, 2))
    y = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    xs = mt.tensor(x.astype(np.float32))
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = optim.Adam(model.parameters(), lr=0.02)
    F.cross_entropy(nn.Linear(2, 2)(xs), y).backward()  # compile kernels outside the timing
    start = time.perf_counter()
    for step in range(400):
        loss = F.cross_entropy(model(xs), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with mt.no_grad():
        accuracy = (model(xs).data.argmax(1) == y).mean()
    assert accuracy == 1.0, f"train accuracy {accuracy} (loss {loss.item():.4f})"
    assert time.perf_counter() - start < 10.0


def test_embedding_from_pretrained():
    table = np.arange(12.0).reshape(4, 3)
    emb = nn.Embedding.from_pretrained(table, padding_idx=1)
    assert emb.weight.dtype == np.float64 and not emb.weight.requires_grad
    np.testing.assert_array_equal(emb(np.array([1, 3])).data, table[[1, 3]])
    assert not np.shares_memory(emb.weight.data, table)
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
