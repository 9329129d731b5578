"""optim.RMSprop and optim.Adagrad against torch's single-tensor updates, step for step.

Parity runs in float64 on the same parameters and the same random gradients: the two
implementations must agree to 1e-14 after every one of several steps, with every option,
with parameter groups, with parameters that have no gradient, and after resuming from a
state dict (ours or torch's).
"""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
from minitensor import nn, optim

TOL = 1e-14
SHAPES = [(3, 4), (4,), (2, 3, 2)]
STEPS = 8

RMSPROP_CASES = [
    dict(),
    dict(lr=0.05),
    dict(lr=0.01, alpha=0.9, eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, momentum=0.9),
    dict(lr=0.01, centered=True),
    dict(lr=0.02, alpha=0.3, centered=True),  # lerp weight 0.7 >= 0.5: torch's other formula
    dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.05),
    dict(lr=0.01, momentum=0.8, maximize=True),
]
ADAGRAD_CASES = [
    dict(),
    dict(lr=0.1),
    dict(lr=0.1, lr_decay=0.05),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.1, initial_accumulator_value=0.5),
    dict(lr=0.05, eps=1e-6, lr_decay=0.01, weight_decay=0.02, initial_accumulator_value=0.1),
    dict(lr=0.1, maximize=True),
]
OPTIMIZERS = [("RMSprop", c) for c in RMSPROP_CASES] + [("Adagrad", c) for c in ADAGRAD_CASES]


def _ids(case):
    name, kwargs = case
    return name + ":" + (",".join(f"{a}={b}" for a, b in kwargs.items()) or "defaults")


def _pair(torch, rng):
    arrays = [rng.standard_normal(s) for s in SHAPES]
    return ([nn.Parameter(a.copy()) for a in arrays],
            [torch.nn.Parameter(torch.tensor(a)) for a in arrays])


def _set_grads(torch, rng, ours, theirs, skip=()):
    for i, (p, t) in enumerate(zip(ours, theirs)):
        if i in skip:
            p.grad, t.grad = None, None
        else:
            g = rng.standard_normal(p.shape)
            p.grad, t.grad = mt.tensor(g), torch.tensor(g)


def _assert_same(ours, theirs, step):
    for i, (p, t) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=TOL, atol=TOL,
                                   err_msg=f"parameter {i} after step {step}")


@pytest.mark.parametrize("case", OPTIMIZERS, ids=_ids)
def test_matches_torch_step_for_step(case):
    torch = pytest.importorskip("torch")
    name, kwargs = case
    rng = np.random.default_rng(0)
    ours, theirs = _pair(torch, rng)
    opt = getattr(optim, name)(ours, **kwargs)
    topt = getattr(torch.optim, name)(theirs, foreach=False, **kwargs)
    for step in range(STEPS):
        _set_grads(torch, rng, ours, theirs, skip=(1,) if step == 2 else ())
        opt.step()
        topt.step()
        _assert_same(ours, theirs, step)
    tsd = topt.state_dict()
    sd = opt.state_dict()
    assert sd["state"].keys() == tsd["state"].keys()
    for i, s in tsd["state"].items():
        assert sd["state"][i].keys() == s.keys()
        for k, v in s.items():
            np.testing.assert_allclose(np.asarray(sd["state"][i][k]), v.numpy(), rtol=TOL,
                                       atol=TOL, err_msg=f"state {i} {k}")
    assert {k for k in sd["param_groups"][0]} <= set(tsd["param_groups"][0]) | {"params"}
    for k, v in sd["param_groups"][0].items():
        assert v == tsd["param_groups"][0][k], k


@pytest.mark.parametrize("name, kwargs", [("RMSprop", dict(lr=0.02, momentum=0.9, centered=True)),
                                          ("Adagrad", dict(lr=0.1, lr_decay=0.01))])
def test_param_groups_with_own_options_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    ours, theirs = _pair(torch, rng)
    opt = getattr(optim, name)([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.003}], **kwargs)
    topt = getattr(torch.optim, name)([{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.003}],
                                      foreach=False, **kwargs)
    for step in range(STEPS):
        _set_grads(torch, rng, ours, theirs)
        opt.step()
        topt.step()
        _assert_same(ours, theirs, step)


@pytest.mark.parametrize("name, kwargs", [("RMSprop", dict(lr=0.02, momentum=0.9, centered=True)),
                                          ("Adagrad", dict(lr=0.1, lr_decay=0.01,
                                                           initial_accumulator_value=0.2))])
def test_resuming_from_our_state_dict_and_from_torchs(name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    ours, theirs = _pair(torch, rng)
    opt = getattr(optim, name)(ours, **kwargs)
    topt = getattr(torch.optim, name)(theirs, foreach=False, **kwargs)
    for _ in range(3):
        _set_grads(torch, rng, ours, theirs)
        opt.step()
        topt.step()
    resumed = getattr(optim, name)(ours, lr=123.0)      # options come back from the dict
    resumed.load_state_dict(opt.state_dict())
    clones = [nn.Parameter(p.data.copy()) for p in ours]
    from_torch = getattr(optim, name)(clones)
    tsd = topt.state_dict()
    from_torch.load_state_dict({
        "state": {i: {k: v.numpy() for k, v in s.items()} for i, s in tsd["state"].items()},
        "param_groups": tsd["param_groups"]})
    for step in range(3):
        _set_grads(torch, rng, ours, theirs)
        for p, c in zip(ours, clones):
            c.grad = mt.tensor(p.grad.data.copy())
        resumed.step()
        from_torch.step()
        topt.step()
        _assert_same(ours, theirs, step)
        _assert_same(clones, theirs, step)


def test_adagrad_state_exists_from_the_start_as_torchs():
    p = nn.Parameter(np.ones(3))
    opt = optim.Adagrad([p], initial_accumulator_value=0.25)
    sd = opt.state_dict()
    assert sd["state"][0]["step"] == 0
    np.testing.assert_array_equal(sd["state"][0]["sum"], 0.25)
    q = nn.Parameter(np.ones(2))
    opt.add_param_group({"params": [q], "initial_accumulator_value": 1.0})
    np.testing.assert_array_equal(opt.state[q]["sum"], 1.0)


def test_float32_parameters_stay_float32():
    for cls in (optim.RMSprop, optim.Adagrad):
        p = nn.Parameter(np.ones(3, np.float32))
        array = p.data
        opt = cls([p], lr=0.1)
        p.grad = mt.tensor(np.ones(3, np.float32))
        opt.step()
        assert p.data is array and p.data.dtype == np.float32
        assert all(v.dtype == np.float32 for v in opt.state[p].values()
                   if isinstance(v, np.ndarray))


@pytest.mark.parametrize("call, words", [
    (lambda p: optim.RMSprop([p], lr=-1.0), ["RMSprop", "learning rate", "-1.0"]),
    (lambda p: optim.RMSprop([p], alpha=-0.5), ["RMSprop", "alpha", "-0.5"]),
    (lambda p: optim.RMSprop([p], momentum=-0.1), ["RMSprop", "momentum"]),
    (lambda p: optim.RMSprop([p], eps=-1e-8), ["RMSprop", "epsilon"]),
    (lambda p: optim.Adagrad([p], lr_decay=-0.1), ["Adagrad", "lr_decay"]),
    (lambda p: optim.Adagrad([p], initial_accumulator_value=-1), ["Adagrad",
                                                                   "initial_accumulator_value"]),
    (lambda p: optim.Adagrad([p], weight_decay=-1), ["Adagrad", "weight_decay"]),
])
def test_invalid_options_are_named(call, words):
    with pytest.raises(ValueError) as info:
        call(nn.Parameter(np.ones(2)))
    for word in words:
        assert word in str(info.value)
