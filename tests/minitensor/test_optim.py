"""optim: SGD / Adam / AdamW against torch's single-tensor updates, parameter groups,
resuming from a state dict, and the learning-rate schedules against torch's LambdaLR.

Parity runs in float64 on the same parameters and the same random gradients, so the
two implementations must agree to rounding (1e-12) after every step.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import minitensor as mt
from minitensor import nn, optim
from minitensor.optim.lr_scheduler import (LambdaLR, NoamLR, WarmupCosineLR, cosine_with_warmup,
                                           noam_lr)

TOL = 1e-12
SHAPES = [(3, 4), (4,), (2, 3, 2)]


# ----------------------------------------------------------------------------- helpers


def _pair(torch, rng, shapes=SHAPES):
    """The same float64 parameters as minitensor Parameters and torch Parameters."""
    arrays = [rng.standard_normal(s) for s in shapes]
    ours = [nn.Parameter(a.copy()) for a in arrays]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    return ours, theirs


def _set_grads(torch, rng, ours, theirs, skip=()):
    for i, (p, t) in enumerate(zip(ours, theirs)):
        if i in skip:
            p.grad, t.grad = None, None
            continue
        g = rng.standard_normal(p.shape)
        p.grad, t.grad = mt.tensor(g), torch.tensor(g)


def _assert_same(ours, theirs, tol=TOL):
    for i, (p, t) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=tol, atol=tol,
                                   err_msg=f"parameter {i}")


def _run_parity(torch, our_cls, torch_cls, kwargs, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    ours, theirs = _pair(torch, rng)
    opt, topt = our_cls(ours, **kwargs), torch_cls(theirs, foreach=False, **kwargs)
    for step in range(steps):
        _set_grads(torch, rng, ours, theirs)
        opt.step()
        topt.step()
        _assert_same(ours, theirs)
    return opt, topt


# ----------------------------------------------------------------------------- parity


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.05),
    dict(lr=0.05, momentum=0.8, dampening=0.1, weight_decay=0.02),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02),
    dict(lr=0.1, momentum=0.5, maximize=True),
]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_sgd_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    _run_parity(torch, optim.SGD, torch.optim.SGD, kwargs)


ADAM_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.01, amsgrad=True, weight_decay=0.1),
    dict(lr=0.02, betas=(0.3, 0.9), eps=1e-6),   # beta1 < 0.5: the other lerp branch
    dict(lr=0.01, maximize=True),
]


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_adam_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    opt, topt = _run_parity(torch, optim.Adam, torch.optim.Adam, kwargs)
    tstate = list(topt.state.values())
    for ours, theirs in zip(opt.state.values(), tstate):
        assert ours["step"] == int(theirs["step"]) == 5
        np.testing.assert_allclose(ours["exp_avg"], theirs["exp_avg"].numpy(), rtol=TOL, atol=TOL)
        np.testing.assert_allclose(ours["exp_avg_sq"], theirs["exp_avg_sq"].numpy(), rtol=TOL, atol=TOL)


ADAMW_CASES = [dict(lr=0.01), dict(lr=0.01, weight_decay=0.3), dict(lr=0.01, amsgrad=True),
               dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.0)]


@pytest.mark.parametrize("kwargs", ADAMW_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_adamw_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    _run_parity(torch, optim.AdamW, torch.optim.AdamW, kwargs)


def _groups(params, lib_options):
    """Weights decay, biases (1-D) do not and use their own lr: nanoGPT's recipe."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [{"params": decay, **lib_options[0]}, {"params": no_decay, **lib_options[1]}]


@pytest.mark.parametrize("name, kwargs, groups", [
    ("SGD", dict(lr=0.1, momentum=0.9), [dict(weight_decay=0.1), dict(lr=0.01, nesterov=True)]),
    ("Adam", dict(lr=0.01), [dict(weight_decay=0.1, amsgrad=True), dict(lr=0.05)]),
    ("AdamW", dict(lr=0.01, weight_decay=0.2), [{}, dict(weight_decay=0.0, betas=(0.5, 0.9))]),
])
def test_param_groups_with_own_options_match_torch(name, kwargs, groups):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    shapes = SHAPES + [(5,), (2, 2)]
    ours, theirs = _pair(torch, rng, shapes)
    opt = getattr(optim, name)(_groups(ours, groups), **kwargs)
    topt = getattr(torch.optim, name)(_groups(theirs, groups), foreach=False, **kwargs)
    assert [len(g["params"]) for g in opt.param_groups] == [3, 2]
    for step in range(6):
        # parameters without a gradient this step are skipped (no state, no decay)
        _set_grads(torch, rng, ours, theirs, skip={1} if step % 2 else {4})
        opt.step()
        topt.step()
        _assert_same(ours, theirs)
    assert opt.param_groups[1]["lr"] == topt.param_groups[1]["lr"]


def test_add_param_group_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    ours, theirs = _pair(torch, rng)
    opt = optim.Adam(ours[:2], lr=0.01)
    topt = torch.optim.Adam(theirs[:2], lr=0.01, foreach=False)
    for step in range(4):
        if step == 2:
            opt.add_param_group({"params": ours[2], "lr": 0.1})
            topt.add_param_group({"params": theirs[2], "lr": 0.1})
        _set_grads(torch, rng, ours, theirs)
        opt.step()
        topt.step()
        _assert_same(ours[:2], theirs[:2])
    _assert_same(ours, theirs)


def test_parameters_without_grad_are_skipped():
    p, q = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.AdamW([p, q], lr=0.1)
    p.grad = mt.tensor(np.ones(2))
    opt.step()
    assert q not in opt.state and np.all(q.data == 1.0)  # not even decayed
    assert p in opt.state and np.all(p.data < 1.0)


def test_float32_parameters_stay_float32_in_place():
    lin = nn.Linear(3, 2)
    weight = lin.weight.data
    for cls, kw in ((optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
                    (optim.Adam, dict(weight_decay=0.1, amsgrad=True)), (optim.AdamW, {})):
        opt = cls(lin.parameters(), **kw)
        for _ in range(2):
            lin(mt.randn(4, 3)).sum().backward()
            opt.step()
            opt.zero_grad()
        assert lin.weight.data is weight and weight.dtype == np.float32
        assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values()
                   if isinstance(v, np.ndarray))


def test_zero_grad():
    lin = nn.Linear(2, 2)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    lin(mt.randn(1, 2)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.data == 0) for p in lin.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in lin.parameters())


def test_step_invalidates_graphs_that_saved_the_old_weights():
    lin = nn.Linear(2, 2)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    lin(mt.randn(1, 2)).sum().backward()
    stale = lin(mt.randn(1, 2, requires_grad=True)).sum()
    opt.step()  # changes the weight that `stale`'s graph saved
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        stale.backward()


def test_closure_is_called_and_its_loss_returned():
    p = nn.Parameter(np.array([2.0]))
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 4.0
    np.testing.assert_array_equal(p.data, [1.0])


def test_constructor_errors():
    p = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="invalid learning rate"):
        optim.SGD([p], lr=-1)
    with pytest.raises(TypeError, match="ordered"):
        optim.Adam({p})
    with pytest.raises(ValueError, match="non-leaf"):
        optim.Adam([p * 2])
    opt = optim.SGD([p, p], lr=0.1)  # a tied parameter listed twice is updated once
    assert len(opt.param_groups[0]["params"]) == 1


# ----------------------------------------------------------------------------- resuming


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.norm, self.fc2 = nn.Linear(3, 8), nn.LayerNorm(8), nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(self.norm(self.fc1(x)).relu())


def _make(name):
    model = Tiny().double()
    params = [{"params": [model.fc1.weight, model.fc2.weight], "weight_decay": 0.1},
              {"params": [model.fc1.bias, model.fc2.bias, model.norm.weight, model.norm.bias],
               "weight_decay": 0.0}]
    opt = {"SGD": lambda: optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True),
           "Adam": lambda: optim.Adam(params, lr=0.01, amsgrad=True),
           "AdamW": lambda: optim.AdamW(params, lr=0.01)}[name]()
    return model, opt, WarmupCosineLR(opt, warmup=2, total=8, min_ratio=0.1)


def _train(model, opt, sched, steps, rng):
    for _ in range(steps):
        x = mt.tensor(rng.standard_normal((4, 3)))
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_state_dict_round_trip_through_a_file_resumes_identically(name, tmp_path):
    mt.manual_seed(0)
    model, opt, sched = _make(name)
    start = model.state_dict()
    _train(model, opt, sched, 6, np.random.default_rng(5))
    expected = model.state_dict()

    model, opt, sched = _make(name)
    model.load_state_dict(start)
    rng = np.random.default_rng(5)
    _train(model, opt, sched, 3, rng)
    opt_doc, arrays = mt.io.split_arrays(opt.state_dict(), prefix="optimizer")
    opt_json = json.dumps(opt_doc)  # plain JSON
    mt.save({**{f"model.{k}": v for k, v in model.state_dict().items()}, **arrays},
            tmp_path / "ckpt.safetensors",
            metadata={"optimizer": opt_json, "scheduler": json.dumps(sched.state_dict())})

    model, opt, sched = _make(name)  # fresh objects, as in a new process
    for g in opt.param_groups:
        g["lr"] = 123.0               # overwritten by the loaded groups
    loaded = mt.load(tmp_path / "ckpt.safetensors")
    meta = mt.io.load_metadata(tmp_path / "ckpt.safetensors")
    model.load_state_dict({k[6:]: v for k, v in loaded.items() if k.startswith("model.")})
    opt.load_state_dict(mt.io.join_arrays(json.loads(meta["optimizer"]), loaded))
    sched.load_state_dict(json.loads(meta["scheduler"]))
    assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()
    _train(model, opt, sched, 3, rng)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, expected[k], err_msg=k)


def test_state_dict_layout_is_torch_like_and_copies():
    p, q = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    opt = optim.Adam([{"params": [p]}, {"params": [q], "lr": 0.5}], betas=(0.8, 0.9))
    p.grad, q.grad = mt.tensor(np.ones(2)), mt.tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and sd["param_groups"][1]["params"] == [1]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["betas"] == [0.8, 0.9]
    assert sd["state"][1]["step"] == 1 and sd["state"][1]["exp_avg"].shape == (3,)
    sd["state"][0]["exp_avg"][...] = 99.0
    assert not np.any(opt.state[p]["exp_avg"] == 99.0)
    with pytest.raises(ValueError, match="parameter group"):
        optim.Adam([p]).load_state_dict(sd)


def test_torch_optimizer_state_loads_into_ours():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    ours, theirs = _pair(torch, rng)
    topt = torch.optim.Adam(theirs, lr=0.01, foreach=False)
    for _ in range(2):
        _set_grads(torch, rng, ours, theirs)
        topt.step()
    for p, t in zip(ours, theirs):
        p.data[...] = t.detach().numpy()
    tsd = topt.state_dict()
    opt = optim.Adam(ours, lr=0.01)
    opt.load_state_dict({"state": {i: {k: v.numpy() for k, v in s.items()} for i, s in tsd["state"].items()},
                         "param_groups": tsd["param_groups"]})
    for _ in range(3):
        _set_grads(torch, rng, ours, theirs)
        opt.step()
        topt.step()
    _assert_same(ours, theirs)


# ----------------------------------------------------------------------------- schedules


def _torch_lrs(torch, lr_lambda, lrs, n):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    out = [sched.get_last_lr()]
    for _ in range(n):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr())
    return out


def _our_lrs(make, lrs, n):
    params = [nn.Parameter(np.zeros(1)) for _ in lrs]
    opt = optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)])
    sched = make(opt)
    out = [sched.get_last_lr()]
    for _ in range(n):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == out[-1]
    return out


@pytest.mark.parametrize("case", ["lambda", "per_group", "noam", "cosine", "cosine_no_warmup"])
def test_schedules_match_torch_lambda_lr(case):
    torch = pytest.importorskip("torch")
    lrs = (0.5, 2.0)
    lambdas = {
        "lambda": lambda s: 0.95 ** s,
        "per_group": [lambda s: 0.9 ** s, lambda s: 1.0 / (s + 1)],
        "noam": lambda s: noam_lr(s, 64, 10, factor=2.0),
        "cosine": lambda s: cosine_with_warmup(s, 5, 30, 0.1),
        "cosine_no_warmup": lambda s: cosine_with_warmup(s, 0, 30),
    }
    makers = {
        "lambda": lambda opt: LambdaLR(opt, lambdas["lambda"]),
        "per_group": lambda opt: LambdaLR(opt, lambdas["per_group"]),
        "noam": lambda opt: NoamLR(opt, d_model=64, warmup=10, factor=2.0),
        "cosine": lambda opt: WarmupCosineLR(opt, warmup=5, total=30, min_ratio=0.1),
        "cosine_no_warmup": lambda opt: WarmupCosineLR(opt, warmup=0, total=30),
    }
    assert _our_lrs(makers[case], lrs, 40) == _torch_lrs(torch, lambdas[case], lrs, 40)


def test_noam_lr_formula():
    # The Annotated Transformer's rate(step, model_size, factor, warmup)
    def rate(step, model_size, factor, warmup):
        step = 1 if step == 0 else step
        return factor * (model_size ** (-0.5) * min(step ** (-0.5), step * warmup ** (-1.5)))

    for s in range(0, 3000, 7):
        assert noam_lr(s, 512, 400, 1.5) == rate(s, 512, 1.5, 400)
    assert noam_lr(0, 512, 400) == noam_lr(1, 512, 400)
    assert noam_lr(400, 512, 400) == pytest.approx(1 / math.sqrt(512 * 400), rel=1e-12)
    assert max(range(1, 2000), key=lambda s: noam_lr(s, 512, 400)) == 400
    lin = nn.Linear(1, 1)
    opt = optim.Adam(lin.parameters(), lr=1.0)
    NoamLR(opt, 512, 400)
    assert opt.param_groups[0]["lr"] == noam_lr(0, 512, 400)  # applied at construction


def test_cosine_with_warmup_shape():
    assert cosine_with_warmup(0, 10, 110) == 1 / 11
    assert cosine_with_warmup(9, 10, 110) == 10 / 11
    assert cosine_with_warmup(10, 10, 110) == 1.0
    assert cosine_with_warmup(60, 10, 110, 0.2) == pytest.approx(0.6)
    assert cosine_with_warmup(110, 10, 110, 0.2) == pytest.approx(0.2)
    assert cosine_with_warmup(500, 10, 110, 0.2) == 0.2
    values = [cosine_with_warmup(s, 10, 110) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError):
        cosine_with_warmup(0, 10, 10)


def test_scheduler_state_dict_round_trip():
    p = nn.Parameter(np.zeros(1))
    opt = optim.SGD([p], lr=0.3)
    sched = WarmupCosineLR(opt, warmup=3, total=20)
    for _ in range(7):
        sched.step()
    sd = json.loads(json.dumps(sched.state_dict()))
    opt2 = optim.SGD([nn.Parameter(np.zeros(1))], lr=0.3)
    sched2 = WarmupCosineLR(opt2, warmup=3, total=20)
    sched2.load_state_dict(sd)
    assert sched2.last_epoch == 7 and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    sched.step(), sched2.step()
    assert sched.get_last_lr() == sched2.get_last_lr()
    resumed = WarmupCosineLR(opt, warmup=3, total=20, last_epoch=7)  # torch's resume style
    assert resumed.get_last_lr() == sched.get_last_lr()


# ----------------------------------------------------------------------- fused Adam


FUSED_CASES = ADAM_CASES + [dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.3),
                            dict(lr=0.01, decoupled_weight_decay=True, amsgrad=True,
                                 weight_decay=0.1, maximize=True)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", FUSED_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_fused_adam_is_bit_identical_to_numpy_adam(kwargs, dtype):
    """The one-pass Numba update (numba backend) and the NumPy adam_step (numpy backend)
    do the same arithmetic in the same order and dtype: equal bits after every step,
    parameters and state alike, including grads with inf/NaN-free extremes."""
    from minitensor import kernels
    if not kernels.numba_available():
        pytest.skip("numba not installed")
    from minitensor.kernels.numba_cpu import adam as fused_adam
    rng = np.random.default_rng(5)
    shapes = [(3, 4), (7,), (2, 3, 5), (130, 17)]
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    runs = {}
    for backend in ("numba", "numpy"):
        params = [nn.Parameter(a.copy()) for a in arrays]
        opt = optim.Adam(params, **kwargs)
        grad_rng = np.random.default_rng(6)
        with kernels.use(backend):
            for _ in range(4):
                for p in params:
                    g = grad_rng.standard_normal(p.shape) * 10.0 ** grad_rng.integers(-6, 6, p.shape)
                    p.grad = mt.tensor(g.astype(dtype))
                if backend == "numba":
                    amsgrad = opt.param_groups[0]["amsgrad"]
                    assert all(fused_adam.can_fuse(p.data, p.grad.data, opt._init_state(p, amsgrad))
                               for p in params)
                opt.step()
        runs[backend] = (params, opt)
    (p_nb, opt_nb), (p_np, opt_np) = runs["numba"], runs["numpy"]
    for a, b in zip(p_nb, p_np):
        np.testing.assert_array_equal(a.data, b.data)
    for sa, sb in zip(opt_nb.state.values(), opt_np.state.values()):
        assert sa.keys() == sb.keys() and sa["step"] == sb["step"] == 4
        for key in sa:
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


def test_fused_adam_skips_what_it_cannot_fuse():
    """Non-contiguous parameters and float16 take the NumPy path (and still update)."""
    fused_adam = pytest.importorskip("minitensor.kernels.numba_cpu.adam")
    p = np.zeros((4, 6), np.float32)[:, ::2]
    state = {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
    assert not fused_adam.can_fuse(p, np.ones_like(p), state)
    half = np.zeros(3, np.float16)
    assert not fused_adam.can_fuse(half, np.ones_like(half), {"exp_avg": half, "exp_avg_sq": half})
    param = nn.Parameter(np.zeros((4, 6))[:, ::2])
    param.grad = mt.tensor(np.ones((4, 3)))
    optim.Adam([param], lr=0.1).step()
    np.testing.assert_allclose(param.data, -0.1)
