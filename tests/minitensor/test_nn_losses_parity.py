"""torch.nn's losses, activations, padding and vector functions on minitensor.

Each function is gradchecked in float64 (no torch needed), compared with PyTorch in
float64 (values and every input gradient, for a random upstream gradient), and fed bad
input to check the error names the op. Also the ParameterList/ParameterDict keys and
``nn.init.orthogonal_``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F
from minitensor import nn
from minitensor.errors import IndexOutOfRange, ShapeError

RTOL, ATOL = 1e-10, 1e-12


def _rand(shape, seed, low=None, high=None):
    rng = np.random.default_rng(seed)
    if low is not None:
        return rng.uniform(low, high, size=shape)
    return rng.standard_normal(shape)


def _probs(shape, seed, axis=-1):
    x = np.exp(_rand(shape, seed))
    return x / x.sum(axis, keepdims=True)


# Each case: (name, our_fn, torch_fn, float inputs (arrays; all differentiable), constants).
# The functions take the differentiable inputs first, then the constants as they are
# (NumPy arrays; the torch side converts them).
TARGET_3 = np.array([0, 2, 1, 2, 0])
TARGET_IGN = np.array([0, -100, 1, 2, -100])
TARGET_ND = np.array([[0, 1, 2], [2, -100, 1]])  # (N=2, d=3) for input (2, C=3, 3)


def _cases():
    tnn = _torch().nn.functional if _torch() else None

    def t(name):  # the torch function of that name, resolved lazily
        return lambda *a, **k: getattr(_torch().nn.functional, name)(*a, **k)
    w3 = _rand(3, 9, 0.5, 2.0)
    sparse_p = _probs((3, 4), 14) * (np.arange(12).reshape(3, 4) % 3 > 0)
    del tnn
    return [
        ("nll (N,C) mean", lambda x: F.nll_loss(x, TARGET_3),
         lambda x: t("nll_loss")(x, _T(TARGET_3)), [_rand((5, 3), 1)]),
        ("nll (C,) unbatched", lambda x: F.nll_loss(x, np.array(2)),
         lambda x: t("nll_loss")(x, _T(np.array(2))), [_rand(3, 1)]),
        ("nll weight ignore mean", lambda x, w: F.nll_loss(x, TARGET_IGN, weight=w),
         lambda x, w: t("nll_loss")(x, _T(TARGET_IGN), weight=w), [_rand((5, 3), 2), w3]),
        ("nll weight sum", lambda x, w: F.nll_loss(x, TARGET_IGN, weight=w, reduction="sum"),
         lambda x, w: t("nll_loss")(x, _T(TARGET_IGN), weight=w, reduction="sum"),
         [_rand((5, 3), 2), w3]),
        ("nll (N,C,d) none", lambda x: F.nll_loss(x, TARGET_ND, reduction="none"),
         lambda x: t("nll_loss")(x, _T(TARGET_ND), reduction="none"), [_rand((2, 3, 3), 3)]),
        ("nll (N,C,d) weight mean", lambda x, w: F.nll_loss(x, TARGET_ND, weight=w),
         lambda x, w: t("nll_loss")(x, _T(TARGET_ND), weight=w), [_rand((2, 3, 3), 3), w3]),
        ("ce weight", lambda x, w: F.cross_entropy(x, TARGET_IGN, weight=w),
         lambda x, w: t("cross_entropy")(x, _T(TARGET_IGN), weight=w), [_rand((5, 3), 4), w3]),
        ("ce weight smoothing mean",
         lambda x, w: F.cross_entropy(x, TARGET_IGN, weight=w, label_smoothing=0.2),
         lambda x, w: t("cross_entropy")(x, _T(TARGET_IGN), weight=w, label_smoothing=0.2),
         [_rand((5, 3), 4), w3]),
        ("ce weight smoothing none (N,C,d)",
         lambda x, w: F.cross_entropy(x, TARGET_ND, weight=w, label_smoothing=0.3,
                                      reduction="none"),
         lambda x, w: t("cross_entropy")(x, _T(TARGET_ND), weight=w, label_smoothing=0.3,
                                         reduction="none"), [_rand((2, 3, 3), 5), w3]),
        ("ce weight smoothing sum",
         lambda x, w: F.cross_entropy(x, TARGET_3, weight=w, label_smoothing=0.1,
                                      reduction="sum"),
         lambda x, w: t("cross_entropy")(x, _T(TARGET_3), weight=w, label_smoothing=0.1,
                                         reduction="sum"), [_rand((5, 3), 6), w3]),
        ("ce weight probability targets",
         lambda x, p, w: F.cross_entropy(x, p, weight=w, label_smoothing=0.1),
         lambda x, p, w: t("cross_entropy")(x, p, weight=w, label_smoothing=0.1),
         [_rand((4, 3), 7), _probs((4, 3), 8), w3]),
        ("ce smoothing ignore, no class weight",
         lambda x: F.cross_entropy(x, TARGET_IGN, label_smoothing=0.25),
         lambda x: t("cross_entropy")(x, _T(TARGET_IGN), label_smoothing=0.25),
         [_rand((5, 3), 10)]),
        *[(f"kl_div {red} log_target={lt}",
           (lambda red, lt: lambda x, y: F.kl_div(x, y, reduction=red, log_target=lt))(red, lt),
           (lambda red, lt: lambda x, y: t("kl_div")(x, y, reduction=red, log_target=lt))(red, lt),
           [np.log(_probs((4, 5), 11)),
            np.log(_probs((4, 5), 12)) if lt else _probs((4, 5), 12)])
          for red in ("mean", "batchmean", "sum", "none") for lt in (False, True)],
        # t log t has no derivative at t = 0: only the input is differentiated here
        ("kl_div zeros in target (xlogy)", lambda x: F.kl_div(x, sparse_p, reduction="sum"),
         lambda x: t("kl_div")(x, _T(sparse_p), reduction="sum"), [np.log(_probs((3, 4), 13))]),
        ("kl_div broadcast target", lambda x, y: F.kl_div(x, y, reduction="batchmean"),
         lambda x, y: t("kl_div")(x, y, reduction="batchmean"),
         [np.log(_probs((3, 4), 15)), _probs((4,), 16)]),
        *[(f"bce_with_logits {red}",
           (lambda red: lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=red))(red),
           (lambda red: lambda x, y: t("binary_cross_entropy_with_logits")(x, y, reduction=red))(red),
           [_rand((4, 3), 17) * 4, _rand((4, 3), 18, 0.0, 1.0)])
          for red in ("mean", "sum", "none")],
        ("bce_with_logits weight pos_weight",
         lambda x, y, w, pw: F.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw),
         lambda x, y, w, pw: t("binary_cross_entropy_with_logits")(x, y, w, pos_weight=pw),
         [_rand((4, 3), 19) * 30, _rand((4, 3), 20, 0.0, 1.0), _rand((1, 3), 21, 0.5, 2.0),
          _rand(3, 22, 0.5, 3.0)]),
        ("mse weighted mean", lambda x, y, w: F.mse_loss(x, y, weight=w),
         lambda x, y, w: t("mse_loss")(x, y, weight=w), [_rand((3, 4), 36), _rand((3, 4), 37),
                                                         _rand((3, 4), 38, 0.5, 2.0)]),
        ("mse weighted none", lambda x, y, w: F.mse_loss(x, y, reduction="none", weight=w),
         lambda x, y, w: t("mse_loss")(x, y, reduction="none", weight=w),
         [_rand((3, 4), 36), _rand((3, 4), 37), _rand((3, 4), 38, 0.5, 2.0)]),
        ("mse broadcast target sum", lambda x, y: F.mse_loss(x, y, reduction="sum"),
         lambda x, y: t("mse_loss")(x, y, reduction="sum"), [_rand((3, 4), 39), _rand(4, 40)]),
        ("silu", lambda x: F.silu(x), lambda x: t("silu")(x), [_rand((3, 4), 23) * 3]),
        *[(f"normalize p={p} dim={d}", (lambda p, d: lambda x: F.normalize(x, p, d))(p, d),
           (lambda p, d: lambda x: t("normalize")(x, p, d))(p, d), [_rand((3, 4, 2), 24)])
          for p, d in ((2, 1), (1, -1), (3, 0), (math.inf, 1))],
        ("normalize defaults", lambda x: F.normalize(x), lambda x: t("normalize")(x),
         [_rand((5, 3), 25)]),
        ("cosine_similarity", lambda a, b: F.cosine_similarity(a, b),
         lambda a, b: t("cosine_similarity")(a, b), [_rand((4, 5), 26), _rand((4, 5), 27)]),
        ("cosine_similarity broadcast dim=-1", lambda a, b: F.cosine_similarity(a, b, dim=-1),
         lambda a, b: t("cosine_similarity")(a, b, dim=-1), [_rand((2, 3, 4), 28), _rand((3, 4), 29)]),
        ("pad constant 1 axis", lambda x: F.pad(x, (1, 2)), lambda x: t("pad")(x, (1, 2)),
         [_rand((2, 3), 30)]),
        ("pad constant 3 axes value", lambda x: F.pad(x, (0, 1, 2, 0, 1, 1), value=-1.5),
         lambda x: t("pad")(x, (0, 1, 2, 0, 1, 1), value=-1.5), [_rand((2, 3, 4), 31)]),
        ("pad constant crop", lambda x: F.pad(x, (-1, 2, 1, -2)),
         lambda x: t("pad")(x, (-1, 2, 1, -2)), [_rand((2, 4, 5), 32)]),
        ("pad constant every axis of 4-d", lambda x: F.pad(x, (1, 0, 0, 1, 2, 2, 1, 0)),
         lambda x: t("pad")(x, (1, 0, 0, 1, 2, 2, 1, 0)), [_rand((1, 2, 2, 3), 33)]),
        *[(f"pad {mode}", (lambda m: lambda x: F.pad(x, (2, 1, 1, 3), mode=m))(mode),
           (lambda m: lambda x: t("pad")(x, (2, 1, 1, 3), mode=m))(mode), [_rand((2, 1, 4, 5), 34)])
          for mode in ("reflect", "replicate", "circular")],
        ("pad reflect 1 axis, 2-d", lambda x: F.pad(x, (3, 3), mode="reflect"),
         lambda x: t("pad")(x, (3, 3), mode="reflect"), [_rand((2, 4), 35)]),
    ]


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _T(a):
    return _torch().from_numpy(np.asarray(a))


CASES = _cases()
# Cases whose last input is a class weight ("w"), or whose last two are weight and
# pos_weight ("p", torch differentiates pos_weight but not weight: both constants here).
_WEIGHTED = {name: "w" for name in (
    "nll weight ignore mean", "nll weight sum", "nll (N,C,d) weight mean", "ce weight",
    "ce weight smoothing mean", "ce weight smoothing none (N,C,d)", "ce weight smoothing sum",
    "ce weight probability targets")}
_WEIGHTED["bce_with_logits weight pos_weight"] = "p"
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(case):
    _, ours, _, arrays = case
    inputs = [mt.tensor(a.copy(), dtype=np.float64, requires_grad=True) for a in arrays]
    assert mt.gradcheck(ours, inputs, mode="full")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    name, ours, theirs, arrays = case
    # torch does not differentiate class weights (nll_loss) or weight (bce): constants there
    n_diff = len(arrays) - {"w": 1, "p": 2}.get(_WEIGHTED.get(name, ""), 0)
    mine = [mt.tensor(a.copy(), dtype=np.float64, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a.copy(), dtype=torch.float64, requires_grad=i < n_diff)
           for i, a in enumerate(arrays)]
    out, expected = ours(*mine), theirs(*ref)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=RTOL, atol=ATOL)
    upstream = _rand(expected.shape, 99)
    out.backward(mt.tensor(upstream))
    expected.backward(torch.from_numpy(upstream))
    for m, r in zip(mine[:n_diff], ref):
        np.testing.assert_allclose(m.grad.data, r.grad.numpy(), rtol=RTOL, atol=ATOL)


def test_all_ignored_targets_give_nan_loss_and_zero_gradient():
    x = mt.tensor(_rand((2, 3), 0), requires_grad=True)
    loss = F.nll_loss(x, np.array([-100, -100]))
    assert math.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(x.grad.data, 0.0)


def test_zero_vectors_normalize_to_zero_with_finite_gradient():
    x = mt.tensor(np.zeros((2, 3)), requires_grad=True)
    out = F.normalize(x)
    out.sum().backward()
    np.testing.assert_array_equal(out.data, 0.0)
    assert np.isfinite(x.grad.data).all()


# ----------------------------------------------------------------------------- modules

def _module_pairs():
    w3 = _rand(3, 40, 0.5, 2.0)
    return [
        ("CrossEntropyLoss", lambda m: m.CrossEntropyLoss(), [_rand((5, 3), 41)], TARGET_3),
        ("CrossEntropyLoss all options",
         lambda m: m.CrossEntropyLoss(weight=_lib(m).tensor(w3), ignore_index=1,
                                      reduction="sum", label_smoothing=0.15),
         [_rand((5, 3), 42)], TARGET_3),
        ("NLLLoss weight", lambda m: m.NLLLoss(weight=_lib(m).tensor(w3), reduction="mean"),
         [_rand((5, 3), 43)], TARGET_3),
        ("MSELoss sum", lambda m: m.MSELoss(reduction="sum"), [_rand((3, 4), 44)],
         _rand((3, 4), 45)),
        ("KLDivLoss batchmean", lambda m: m.KLDivLoss(reduction="batchmean"),
         [np.log(_probs((3, 4), 46))], _probs((3, 4), 47)),
        ("KLDivLoss log_target", lambda m: m.KLDivLoss(reduction="sum", log_target=True),
         [np.log(_probs((3, 4), 46))], np.log(_probs((3, 4), 47))),
        ("BCEWithLogitsLoss pos_weight",
         lambda m: m.BCEWithLogitsLoss(pos_weight=_lib(m).tensor(_rand(4, 48, 0.5, 2.0))),
         [_rand((3, 4), 49)], _rand((3, 4), 50, 0.0, 1.0)),
        ("Softmax dim=0", lambda m: m.Softmax(dim=0), [_rand((3, 4), 51)], None),
        ("LogSoftmax dim=1", lambda m: m.LogSoftmax(dim=1), [_rand((3, 4), 52)], None),
        ("Tanh", lambda m: m.Tanh(), [_rand((3, 4), 53)], None),
        ("Sigmoid", lambda m: m.Sigmoid(), [_rand((3, 4), 54)], None),
        ("SiLU", lambda m: m.SiLU(), [_rand((3, 4), 55)], None),
        ("Flatten", lambda m: m.Flatten(), [_rand((2, 3, 4, 2), 56)], None),
        ("Flatten(0, 1)", lambda m: m.Flatten(0, 1), [_rand((2, 3, 4), 57)], None),
    ]


def _lib(nn_module):
    """The tensor library an ``nn`` module belongs to (torch or minitensor)."""
    return mt if nn_module is nn else _torch()


@pytest.mark.parametrize("case", _module_pairs(), ids=[c[0] for c in _module_pairs()])
def test_module_matches_torch(case):
    torch = pytest.importorskip("torch")
    _, build, arrays, target = case
    mine = mt.tensor(arrays[0], dtype=np.float64, requires_grad=True)
    ref = torch.tensor(arrays[0], dtype=torch.float64, requires_grad=True)
    ours, theirs = build(nn), build(torch.nn)
    if target is None:
        out, expected = ours(mine), theirs(ref)
    else:
        tt = torch.from_numpy(np.asarray(target))
        out, expected = ours(mine, target), theirs(ref, tt)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=RTOL, atol=ATOL)
    upstream = _rand(expected.shape, 7)
    out.backward(mt.tensor(upstream))
    expected.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(mine.grad.data, ref.grad.numpy(), rtol=RTOL, atol=ATOL)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())


def test_softmax_without_dim_uses_torchs_legacy_axis():
    torch = pytest.importorskip("torch")
    for shape in ((4,), (2, 3), (2, 3, 4), (2, 3, 2, 2)):
        x = _rand(shape, 3)
        with pytest.warns(UserWarning):
            expected = torch.nn.Softmax()(torch.from_numpy(x)).numpy()
        with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
            ours = nn.Softmax()(mt.tensor(x))
        np.testing.assert_allclose(ours.data, expected, rtol=RTOL)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("call, error, words", [
    (lambda: F.nll_loss(mt.randn(4, 3), [0, 1, 3, 0]), IndexOutOfRange, ["nll_loss", "3 classes"]),
    (lambda: F.nll_loss(mt.randn(4, 3), [0, 1]), ShapeError, ["nll_loss", "(4,)", "(2,)"]),
    (lambda: F.nll_loss(mt.randn(4, 3), [0, 1, 2, 0], weight=mt.ones(4)), ShapeError,
     ["nll_loss", "weight", "(3,)"]),
    (lambda: F.nll_loss(mt.randn(4, 3), [0, 1, 2, 0], reduction="avg"), ValueError,
     ["nll_loss", "reduction", "'avg'"]),
    (lambda: F.cross_entropy(mt.randn(4, 3), [0, 1, 2, 0], weight=mt.ones(2)), ShapeError,
     ["cross_entropy", "weight"]),
    (lambda: F.kl_div(mt.randn(4, 3), mt.randn(2, 3)), ShapeError, ["kl_div", "(4, 3)", "(2, 3)"]),
    (lambda: F.kl_div(mt.randn(4, 3), mt.randn(4, 3), reduction="batch"), ValueError,
     ["kl_div", "'batchmean', 'sum' or 'none'"]),
    (lambda: F.binary_cross_entropy_with_logits(mt.randn(4, 3), mt.rand(4)), ShapeError,
     ["binary_cross_entropy_with_logits", "(4,)", "(4, 3)"]),
    (lambda: F.binary_cross_entropy_with_logits(mt.randn(4, 3), mt.rand(4, 3),
                                                pos_weight=mt.ones(2)), ShapeError,
     ["pos_weight", "(2,)"]),
    (lambda: F.silu(mt.tensor(np.array([1, 2]))), TypeError, ["silu", "int64"]),
    (lambda: F.normalize(mt.randn(4, 3), dim=2), IndexOutOfRange, ["normalize", "axis 2"]),
    (lambda: F.cosine_similarity(mt.randn(4, 3), mt.randn(3, 4)), ShapeError,
     ["cosine_similarity", "(4, 3)", "(3, 4)"]),
    (lambda: F.pad(mt.randn(2, 3), (1, 2, 3)), ValueError, ["pad", "divisible by 2"]),
    (lambda: F.pad(mt.randn(2, 3), (1,) * 6), ValueError, ["pad", "2 dims"]),
    (lambda: F.pad(mt.randn(2, 3), (1, 1), mode="wrap"), ValueError, ["pad", "'wrap'"]),
    (lambda: F.pad(mt.randn(2, 3), (3, 0), mode="reflect"), ValueError, ["pad", "too large"]),
    (lambda: F.pad(mt.randn(3), (1, 0), mode="reflect"), NotImplementedError,
     ["pad", "'reflect'", "(3,)"]),
    (lambda: F.pad(mt.randn(2, 3), (-2, -2)), ShapeError, ["pad", "negative size"]),
    (lambda: F.pad(mt.randn(2, 3), (-4, 5)), ShapeError, ["pad", "(-4, 5)", "(2, 3)"]),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, ["CrossEntropyLoss", "'avg'"]),
    (lambda: nn.SiLU(inplace=True), NotImplementedError, ["SiLU"]),
    (lambda: nn.ParameterList([1.0]), TypeError, ["ParameterList", "float"]),
    (lambda: nn.init.orthogonal_(mt.zeros(3)), ValueError, ["orthogonal_", "(3,)"]),
])
def test_bad_input_names_the_op(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)


# ----------------------------------------------------------------------------- containers

class _Holder(nn.Module):
    def __init__(self, lib):
        super().__init__()
        self.plist = lib.ParameterList([lib.Parameter(np.ones(2)), lib.Parameter(np.zeros(3))])
        self.pdict = lib.ParameterDict({"scale": lib.Parameter(np.ones(4)),
                                        "shift": lib.Parameter(np.zeros(1))})


def test_parameter_containers_register_torchs_names():
    names = [n for n, _ in _Holder(nn).named_parameters()]
    assert names == ["plist.0", "plist.1", "pdict.scale", "pdict.shift"]
    holder = _Holder(nn)
    assert list(holder.state_dict()) == names
    assert len(list(holder.parameters())) == 4
    holder.plist.append(mt.zeros(5))  # a plain Tensor becomes a Parameter
    assert isinstance(holder.plist[2], nn.Parameter) and holder.plist[-1].shape == (5,)
    holder.pdict["bias"] = mt.ones(2)
    assert list(holder.pdict) == ["scale", "shift", "bias"] and "bias" in holder.pdict
    assert [p.shape for p in holder.plist] == [(2,), (3,), (5,)]


def test_parameter_containers_match_torch_state_dict():
    torch = pytest.importorskip("torch")

    class TorchHolder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.plist = torch.nn.ParameterList([torch.nn.Parameter(torch.rand(2)),
                                                 torch.nn.Parameter(torch.rand(3))])
            self.pdict = torch.nn.ParameterDict({"scale": torch.nn.Parameter(torch.rand(4)),
                                                 "shift": torch.nn.Parameter(torch.rand(1))})

    theirs, ours = TorchHolder(), _Holder(nn)
    assert list(theirs.state_dict()) == list(ours.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(ours.pdict["scale"].data, theirs.pdict["scale"].detach().numpy())


# ----------------------------------------------------------------------------- orthogonal_

@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (2, 3, 4)])
def test_orthogonal_gives_orthonormal_rows_or_columns(shape):
    mt.manual_seed(0)
    w = nn.Parameter(np.zeros(shape))
    assert nn.init.orthogonal_(w, gain=2.0) is w
    q = w.data.reshape(shape[0], -1) / 2.0
    gram = q @ q.T if q.shape[0] <= q.shape[1] else q.T @ q
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-12)
    mt.manual_seed(0)
    again = nn.init.orthogonal_(nn.Parameter(np.zeros(shape)), gain=2.0)
    np.testing.assert_array_equal(again.data, w.data)  # seeded: reproducible


# ----------------------------------------------------------------------------- signatures

def _signature_cases():
    import minitensor.nn.functional as NF
    from minitensor import optim
    from minitensor.optim import lr_scheduler as LS
    from minitensor.utils import data
    opt_extras = {"foreach", "capturable", "differentiable"}
    return [
        *[(getattr(F, n), f"nn.functional.{n}", set()) for n in
          ("nll_loss", "cross_entropy", "kl_div", "binary_cross_entropy_with_logits", "pad",
           "normalize", "silu", "mse_loss")],
        *[(getattr(nn, n), f"nn.{n}", set()) for n in
          ("CrossEntropyLoss", "NLLLoss", "MSELoss", "KLDivLoss", "BCEWithLogitsLoss", "Softmax",
           "LogSoftmax", "SiLU", "Flatten", "ParameterList", "ParameterDict")],
        (nn.init.orthogonal_, "nn.init.orthogonal_", set()),
        (optim.RMSprop, "optim.RMSprop", opt_extras),
        (optim.Adagrad, "optim.Adagrad", opt_extras | {"fused"}),
        *[(getattr(LS, n), f"optim.lr_scheduler.{n}", set()) for n in
          ("StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR",
           "ReduceLROnPlateau", "SequentialLR")],
        (data.DataLoader, "utils.data.DataLoader",
         {"multiprocessing_context", "pin_memory_device", "in_order"}),
        (data.TensorDataset, "utils.data.TensorDataset", set()),
        (NF.pad, "nn.functional.pad", set()),
    ]


def _torch_object(torch, path):
    obj = torch
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("ours, path, missing", _signature_cases(),
                         ids=[c[1] for c in _signature_cases()])
def test_arguments_and_defaults_are_torchs(ours, path, missing):
    import inspect
    torch = pytest.importorskip("torch")
    theirs = _torch_object(torch, path)
    sig_t = inspect.signature(theirs.__init__ if inspect.isclass(theirs) else theirs)
    sig_o = inspect.signature(ours.__init__ if inspect.isclass(ours) else ours)
    mine = sig_o.parameters
    shared = [n for n in sig_t.parameters if n not in missing]
    for name in shared:
        assert name in mine, f"{path}: argument {name!r} is missing"
        assert mine[name].default == sig_t.parameters[name].default or (
            mine[name].default is inspect.Parameter.empty) == (
            sig_t.parameters[name].default is inspect.Parameter.empty) and name == "generator", \
            f"{path}: {name} defaults to {mine[name].default!r}, torch's to " \
            f"{sig_t.parameters[name].default!r}"
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    order_t = [n for n in shared if sig_t.parameters[n].kind in positional]
    order_o = [n for n in mine if n in order_t]
    assert order_o == order_t, f"{path}: positional order {order_o} vs torch's {order_t}"


def test_functions_are_exported_under_both_paths():
    import minitensor.functional as MF
    import minitensor.nn.functional as NF
    for name in ("mse_loss", "pad", "silu", "normalize", "kl_div", "binary_cross_entropy_with_logits",
                 "cosine_similarity", "nll_loss", "cross_entropy"):
        assert getattr(MF, name) is getattr(NF, name), name
