"""Habits PyTorch users bring, on the core: devices (CPU only), ``.to`` in all its forms,
dtype names, legacy constructors, ``from_numpy``, ``mt.cuda``, ``Module.to("cpu")``,
``mt.save(module)``, gradcheck's float64 rule, and clear errors on bad input.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F
from minitensor import nn
from minitensor.errors import DTypeError, ShapeError

CPU_ONLY = "minitensor runs on the CPU only"


def raises(exc, text):
    return pytest.raises(exc, match=re.escape(text))


# ----------------------------------------------------------------------------- devices

def test_device_is_the_cpu_and_prints_like_torch():
    x = mt.ones(2)
    assert x.device == "cpu" and x.device == mt.device("cpu") and "cpu" == x.device
    assert repr(x.device) == "device(type='cpu')" and str(x.device) == "cpu"
    assert x.device.type == "cpu" and not x.is_cuda
    assert x.device != "cuda" and mt.device("cpu:0") == "cpu"
    assert x.cpu() is x


def test_device_repr_matches_torch():
    torch = pytest.importorskip("torch")
    assert repr(mt.ones(2).device) == repr(torch.ones(2).device)
    assert str(mt.ones(2).device) == str(torch.ones(2).device)


@pytest.mark.parametrize("where", ["cuda", "cuda:0", "mps", mt.device("cuda", 1)])
def test_other_devices_get_one_clear_error(where):
    x = mt.ones(2)
    with raises(RuntimeError, f"to: device '{where}' is not available: {CPU_ONLY}"):
        x.to(where)
    with raises(RuntimeError, CPU_ONLY):
        x.to(device=where, dtype=mt.float64)
    with raises(RuntimeError, f"zeros: device '{where}' is not available: {CPU_ONLY}"):
        mt.zeros(2, device=where)
    with raises(RuntimeError, CPU_ONLY):
        x.cuda()
    with raises(RuntimeError, f"Module.to: device '{where}' is not available"):
        nn.Linear(2, 2).to(where)


def test_device_argument_of_the_wrong_type():
    with raises(TypeError, "zeros: device must be a string such as 'cpu' or a device, got int"):
        mt.zeros(2, device=0)


FACTORIES = {
    "tensor": lambda d: mt.tensor([1, 2], device=d), "zeros": lambda d: mt.zeros(2, device=d),
    "ones": lambda d: mt.ones(2, device=d), "empty": lambda d: mt.empty(2, device=d),
    "full": lambda d: mt.full((2,), 1.5, device=d), "arange": lambda d: mt.arange(3, device=d),
    "linspace": lambda d: mt.linspace(0, 1, 3, device=d), "eye": lambda d: mt.eye(2, device=d),
    "randn": lambda d: mt.randn(2, device=d), "rand": lambda d: mt.rand(2, device=d),
    "randint": lambda d: mt.randint(0, 5, (2,), device=d),
    "zeros_like": lambda d: mt.zeros_like(mt.ones(2), device=d),
    "ones_like": lambda d: mt.ones_like(mt.ones(2), device=d),
    "full_like": lambda d: mt.full_like(mt.ones(2), 3.0, device=d),
    "randn_like": lambda d: mt.randn_like(mt.ones(2), device=d),
    "rand_like": lambda d: mt.rand_like(mt.ones(2), device=d),
    "LongTensor": lambda d: mt.LongTensor([1, 2], device=d),
    "new_zeros": lambda d: mt.ones(2).new_zeros(3, device=d),
    "new_ones": lambda d: mt.ones(2).new_ones(3, device=d),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_factory_takes_device(name):
    make = FACTORIES[name]
    for ok in ("cpu", None, mt.device("cpu"), "cpu:0"):
        assert make(ok).device == "cpu"
    with raises(RuntimeError, f"{name}: device 'cuda' is not available: {CPU_ONLY}"):
        make("cuda")


def test_factories_accept_a_torch_device():
    torch = pytest.importorskip("torch")
    assert mt.zeros(2, device=torch.device("cpu")).device == "cpu"
    assert mt.ones(2).to(torch.device("cpu"), torch.float64).dtype == np.float64
    with raises(RuntimeError, CPU_ONLY):
        mt.zeros(2, device=torch.device("cuda"))


def test_cuda_module_answers_like_a_machine_without_gpu():
    assert mt.cuda.is_available() is False and mt.cuda.device_count() == 0
    device = "cuda" if mt.cuda.is_available() else "cpu"  # the idiom it exists for
    assert mt.randn(2, device=device).device == "cpu"


# ----------------------------------------------------------------------------- .to and friends

def test_to_in_all_its_forms():
    x = mt.tensor([1, 2, 3])
    assert x.to("cpu") is x and x.to(device="cpu") is x and x.to(x) is x
    assert x.to(mt.float64).dtype == np.float64 and x.to("float32").dtype == np.float32
    assert x.to("cpu", mt.float32).dtype == np.float32
    assert x.to(device="cpu", dtype=mt.double).dtype == np.float64
    assert x.to(mt.ones(1, dtype="float16")).dtype == np.float16
    assert x.to(dtype="torch.int32").dtype == np.int32
    y = x.to(copy=True)
    assert y is not x and y.data is not x.data and y.tolist() == x.tolist()
    with raises(TypeError, "to: expected a dtype, a device or a tensor, got 'float64'"):
        x.to(mt.float32, "float64")


def test_to_keeps_the_graph_between_float_dtypes():
    w = mt.randn(3, requires_grad=True)
    (w.to("cpu", mt.float64) * 2).sum().backward()
    assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad.data, np.full(3, 2, np.float32))


def test_type_type_as_half_and_new_tensors():
    x = mt.tensor([1.5, 2.5])
    assert x.type() == "minitensor.FloatTensor" and mt.tensor([1]).type() == "minitensor.LongTensor"
    assert x.type(mt.int64).dtype == np.int64 and x.type("torch.DoubleTensor").dtype == np.float64
    assert x.type_as(mt.tensor([1])).dtype == np.int64
    h = x.half()
    assert h.dtype == np.float16 and h.float().tolist() == [1.5, 2.5]
    z = x.new_zeros(2, 3)
    assert z.shape == (2, 3) and z.dtype == np.float32 and not z.data.any()
    o = x.double().new_ones((4,))
    assert o.shape == (4,) and o.dtype == np.float64 and o.data.all()
    assert x.new_zeros(2, dtype=mt.long).dtype == np.int64
    assert x.new_ones(2, requires_grad=True).requires_grad
    assert x.new_full((2,), 7).tolist() == [7.0, 7.0]


def test_conversions_match_torch():
    torch = pytest.importorskip("torch")
    data = [1.25, -2.5, 3.0]
    ours, theirs = mt.tensor(data), torch.tensor(data)
    assert ours.type().split(".")[1] == theirs.type().split(".")[1]
    for convert in ("half", "double", "long", "int", "bool", "float"):
        got, want = getattr(ours, convert)(), getattr(theirs, convert)()
        assert got.dtype == mt.as_dtype(str(want.dtype)), convert
        np.testing.assert_array_equal(got.data, want.numpy())
    assert ours.new_zeros(2, 3).dtype == mt.as_dtype(str(theirs.new_zeros(2, 3).dtype))
    assert mt.tensor([1]).type_as(ours).dtype == mt.as_dtype(str(torch.tensor([1]).type_as(theirs).dtype))


# ----------------------------------------------------------------------------- names and constructors

def test_dtype_names_at_top_level():
    expected = {"long": np.int64, "float": np.float32, "double": np.float64, "int": np.int32,
                "bool": np.bool_, "uint8": np.uint8, "half": np.float16, "float16": np.float16,
                "float32": np.float32, "float64": np.float64, "int32": np.int32,
                "int64": np.int64, "int8": np.int8, "int16": np.int16, "short": np.int16}
    for name, dtype in expected.items():
        assert getattr(mt, name) == np.dtype(dtype), name
        assert mt.as_dtype(name) == dtype and mt.as_dtype("torch." + name) == dtype
        assert mt.zeros(1, dtype=getattr(mt, name)).dtype == dtype


def test_dtype_names_match_torch_and_torch_dtypes_are_understood():
    torch = pytest.importorskip("torch")
    for name in ("long", "float", "double", "int", "bool", "uint8", "half", "int8", "int16"):
        assert mt.as_dtype(getattr(torch, name)) == getattr(mt, name)
        assert str(getattr(torch, name)) == "torch." + getattr(mt, name).name.replace("bool", "bool")
    assert mt.tensor([1.0]).to(torch.float64).dtype == np.float64


def test_builtins_still_work_inside_the_package():
    assert mt.float is not float and isinstance(mt.tensor([2.5]).item(), float)
    assert int(mt.tensor(3)) == 3 and bool(mt.tensor(True)) is True
    assert mt.tensor([1, 2]).sum().item() == 3


def test_legacy_constructors():
    a = mt.LongTensor([1, 2, 3])
    assert a.dtype == np.int64 and a.tolist() == [1, 2, 3]
    b_ = mt.FloatTensor(2, 3)
    assert b_.dtype == np.float32 and b_.shape == (2, 3)
    assert mt.FloatTensor([[1, 2]]).dtype == np.float32 and mt.FloatTensor().shape == (0,)
    assert mt.DoubleTensor([1]).dtype == np.float64 and mt.BoolTensor([1, 0]).tolist() == [True, False]
    assert mt.ByteTensor([1]).dtype == np.uint8 and mt.IntTensor(4).shape == (4,)


def test_legacy_constructors_match_torch():
    torch = pytest.importorskip("torch")
    for name in ("LongTensor", "FloatTensor", "DoubleTensor", "IntTensor", "ByteTensor", "BoolTensor"):
        for args in (([1, 0, 2],), (2, 3), ((4, 5),)):
            got, want = getattr(mt, name)(*args), getattr(torch, name)(*args)
            assert got.dtype == mt.as_dtype(str(want.dtype)) and got.shape == tuple(want.shape), (name, args)
        np.testing.assert_array_equal(getattr(mt, name)([1, 0, 2]).data,
                                      getattr(torch, name)([1, 0, 2]).numpy())


def test_from_numpy_shares_memory_is_tensor_numel():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    t = mt.from_numpy(a)
    assert t.dtype == np.int32 and t.shape == (2, 3)
    a[0, 0] = 42
    assert t[0, 0].item() == 42  # one memory, as torch.from_numpy
    t.data[1, 2] = -1
    assert a[1, 2] == -1
    assert mt.is_tensor(t) and not mt.is_tensor(a) and mt.numel(t) == 6
    with raises(TypeError, "from_numpy: expected a numpy.ndarray, got list"):
        mt.from_numpy([1, 2])
    with raises(DTypeError, "from_numpy: NumPy dtype <U1 (string) is not supported"):
        mt.from_numpy(np.array(["a"]))


# ----------------------------------------------------------------------------- modules and saving

def test_module_to_cpu_and_dtype():
    m = nn.Linear(3, 2)
    assert m.to("cpu") is m and m.cpu() is m and m.weight.dtype == np.float32
    assert m.to("cpu", mt.float64).weight.dtype == np.float64
    assert m.to(device="cpu", dtype="float32").bias.dtype == np.float32
    assert m.to(mt.ones(1, dtype=mt.double)).weight.dtype == np.float64
    assert m.to(mt.float32).weight.dtype == np.float32
    with raises(TypeError, "Module.to: only floating-point dtypes are supported, got int64"):
        m.to(mt.long)


def test_save_a_module_saves_its_state_dict(tmp_path):
    m = nn.Linear(3, 2)
    path = tmp_path / "linear.safetensors"
    mt.save(m, path)
    loaded = mt.load(path)
    assert sorted(loaded) == ["bias", "weight"]
    fresh = nn.Linear(3, 2)
    fresh.load_state_dict(loaded)
    np.testing.assert_array_equal(fresh.weight.data, m.weight.data)
    with raises(TypeError, "save: expected a state dict ({name: Tensor | ndarray}) or a Module, got list"):
        mt.save([m.weight], path)


# ----------------------------------------------------------------------------- gradcheck

def test_gradcheck_refuses_float32_inputs_before_computing():
    calls = []

    def fn(x):
        calls.append(1)
        return x * x

    x = mt.randn(3, requires_grad=True)
    with raises(DTypeError, "gradcheck: input 0 (shape (3,)) has dtype float32; gradcheck needs "
                            "float64 inputs: a finite difference with eps=1e-06 drowns in float32 "
                            "rounding"):
        mt.gradcheck(fn, [x])
    assert calls == []  # refused before fn ran
    with raises(DTypeError, "input 1 (shape (2,)) has dtype float16"):
        mt.gradcheck(fn, [mt.randn(2, dtype=mt.float64, requires_grad=True),
                          mt.randn(2, dtype=mt.half, requires_grad=True)])
    assert mt.gradcheck(fn, [x.double().detach().requires_grad_()])


@pytest.mark.parametrize("returns,what", [
    (lambda x: x.data, "a ndarray"), (lambda x: x.sum().item(), "a float"),
    (lambda x: x > 0, "a bool Tensor"), (lambda x: None, "a NoneType"),
    (lambda x: (x.argmax(), None), "a tuple of (Tensor, NoneType)"),
])
def test_gradcheck_needs_a_floating_tensor_output(returns, what):
    x = mt.randn(3, dtype=mt.float64, requires_grad=True)
    with raises(TypeError, f"gradcheck: the function must return a floating-point Tensor (or a "
                           f"tuple holding some), got {what}"):
        mt.gradcheck(returns, [x])


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("array,described", [
    (np.array(["a"]), "<U1 (string)"), (np.array([b"ab"]), "|S2 (bytes)"),
    (np.array([1 + 2j]), "<c16 (complex)"), (np.array([object()]), "|O (object)"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "<M8[D] (datetime)"),
])
def test_unsupported_numpy_dtypes_are_named(array, described):
    with raises(DTypeError, f"tensor: NumPy dtype {described} is not supported; supported: "
                            "float32, float64, float16, int64, int32, int16, int8, uint8, bool"):
        mt.tensor(array)


def test_lists_of_strings_name_the_type_string():
    with raises(DTypeError, "tensor: NumPy dtype <U5 (string) is not supported"):
        mt.tensor(["hello", "world"])
    with raises(DTypeError, "(complex)"):
        mt.tensor([1j])


def test_attention_mask_that_does_not_broadcast():
    q = mt.randn(2, 3, 4, 8)
    k = mt.randn(2, 3, 5, 8)
    with raises(ShapeError, "scaled_dot_product_attention: attn_mask of shape (4, 4) does not "
                            "broadcast to the attention scores' shape (2, 3, 4, 5) (..., L, S): "
                            "L = 4 queries, S = 5 keys"):
        F.scaled_dot_product_attention(q, k, k, attn_mask=mt.ones(4, 4, dtype=mt.bool))
    with raises(ShapeError, "attn_mask of shape (2, 4, 5)"):  # a batch axis where heads go
        F.scaled_dot_product_attention(q, k, k, attn_mask=mt.zeros(2, 4, 5))
    fits = F.scaled_dot_product_attention(q, k, k, attn_mask=mt.zeros(2, 1, 4, 5))
    assert fits.shape == (2, 3, 4, 8)


def test_integer_attention_mask_is_refused():
    q = mt.randn(1, 2, 3, 4)
    with pytest.raises(DTypeError, match="attn_mask must be bool or float, got dtype int64"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=mt.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]))


def test_cross_entropy_targets_follow_torch():
    logits = mt.randn(3, 4, dtype=mt.float64)
    probs = F.softmax(mt.randn(3, 4, dtype=mt.float64), -1)
    soft = F.cross_entropy(logits, probs)  # float target of the logits' shape: probabilities
    assert soft.shape == ()
    with raises(DTypeError, "cross_entropy: target of dtype float32 and shape (3,): class indices "
                            "must be an integer tensor (.long()), and class probabilities a "
                            "floating-point tensor of the logits' shape (3, 4)"):
        F.cross_entropy(logits, mt.tensor([0.0, 1.0, 2.0]))
    with raises(DTypeError, "target of dtype bool"):
        F.cross_entropy(logits, mt.tensor([True, False, True]))
    hard = F.cross_entropy(logits, mt.tensor([0, 1, 2]))  # Python ints: int64, as torch
    assert hard.dtype == np.float64


def test_cross_entropy_targets_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 4))
    probs = rng.dirichlet(np.ones(4), size=3)
    got = F.cross_entropy(mt.tensor(logits), mt.tensor(probs), label_smoothing=0.1)
    want = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(probs), label_smoothing=0.1)
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-12)
    with pytest.raises(RuntimeError):  # torch refuses float class indices too
        torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(RuntimeError):
        F.cross_entropy(mt.tensor(logits), mt.tensor([0.0, 1.0, 2.0]))


def test_integer_indices_only():
    weight = mt.randn(5, 2)
    assert F.embedding(mt.tensor([0, 4]), weight).shape == (2, 2)  # Python ints: int64
    with raises(DTypeError, "embedding: indices must be an integer or bool tensor, got dtype float32"):
        F.embedding(mt.tensor([0.0, 4.0]), weight)
    x = mt.ones(3, 4)
    assert x[mt.tensor([0, 2])].shape == (2, 4)
    with raises(DTypeError, "getitem: indices must be an integer or bool tensor, got dtype float32"):
        x[mt.tensor([0.0, 2.0])]


def test_in_place_ops_refuse_a_result_they_cannot_hold():
    x = mt.tensor([1, 2, 3])
    with raises(DTypeError, "add_: the result has dtype float32, which can't be written into "
                            "this int64 tensor (shape (3,)) in place"):
        x += 2.5
    x += 2  # int64 + Python int stays int64
    assert x.tolist() == [3, 4, 5] and x.dtype == np.int64
    p = mt.ones(2)
    p.add_(mt.ones(2, dtype=mt.float64))  # float64 into float32: same kind, allowed (as torch)
    assert p.dtype == np.float32 and p.tolist() == [2.0, 2.0]


def test_in_place_refusal_matches_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="can't be cast"):
        t = torch.tensor([1, 2, 3])
        t += 2.5
    with pytest.raises(RuntimeError):
        x = mt.tensor([1, 2, 3])
        x += 2.5


def test_view_as_takes_the_other_tensors_shape():
    x = mt.arange(6.0, requires_grad=True)
    y = x.view_as(mt.zeros(2, 3))
    assert y.shape == (2, 3)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(6))
