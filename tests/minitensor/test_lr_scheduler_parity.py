"""optim.lr_scheduler against torch's schedulers, step for step.

Each case builds the same scheduler (same class name and arguments) on ours and on torch's
optimizer, steps both ``STEPS`` times (``optimizer.step()`` then ``scheduler.step()``) and
compares every group's lr (and momentum / beta1 where the scheduler moves it) after every
step: equal to 1e-15 relative, since the formulas are torch's own, in the same order.
Also: chained schedulers, the deprecated ``step(epoch)`` closed forms, resuming with
``last_epoch``, and state dicts through JSON.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from minitensor import nn, optim

STEPS = 50
REL = 1e-15


def _optimizer(lib, kind="sgd", lrs=(0.1, 0.03)):
    """An optimizer of ``lib`` (torch or minitensor) with one group per lr."""
    if lib is optim:
        params = [nn.Parameter(np.zeros(2)) for _ in lrs]
    else:
        import torch
        params = [torch.nn.Parameter(torch.zeros(2)) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    if kind == "adam":
        return lib.Adam(groups)
    return lib.SGD(groups, momentum=0.9)


def _record(opt) -> list:
    """What a scheduler may change: each group's lr, momentum and beta1."""
    return [(g["lr"], g.get("momentum"), g["betas"][0] if "betas" in g else None)
            for g in opt.param_groups]


def _run(lib, make, kind="sgd", steps=STEPS, metrics=None, lrs=(0.1, 0.03)):
    opt = _optimizer(lib, kind, lrs)
    scheds = make(lib.lr_scheduler, opt)
    scheds = scheds if isinstance(scheds, tuple) else (scheds,)
    out = [(_record(opt), scheds[-1].get_last_lr())]
    for i in range(steps):
        opt.step()
        for s in scheds:
            if metrics is not None:
                s.step(metrics[i])
            else:
                s.step()
        out.append((_record(opt), list(scheds[-1].get_last_lr())))
    return out


def _assert_same(ours, theirs):
    assert len(ours) == len(theirs)
    for step, ((rec, last), (trec, tlast)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(last, tlast, rtol=REL, atol=0, err_msg=f"get_last_lr, step {step}")
        for (lr, m, b), (tlr, tm, tb) in zip(rec, trec):
            np.testing.assert_allclose(lr, tlr, rtol=REL, atol=0, err_msg=f"lr, step {step}")
            assert (m is None) == (tm is None) and (b is None) == (tb is None)
            if m is not None:
                np.testing.assert_allclose(m, tm, rtol=REL, atol=0, err_msg=f"momentum, step {step}")
            if b is not None:
                np.testing.assert_allclose(b, tb, rtol=REL, atol=0, err_msg=f"beta1, step {step}")


CASES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "StepLR default gamma": lambda m, o: m.StepLR(o, 3),
    "MultiStepLR repeated milestone": lambda m, o: m.MultiStepLR(o, [5, 12, 12, 30], gamma=0.3),
    "CosineAnnealingLR several periods": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
    "CosineAnnealingLR default eta_min": lambda m, o: m.CosineAnnealingLR(o, T_max=45),
    "LinearLR defaults": lambda m, o: m.LinearLR(o),
    "LinearLR decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=30),
    "LinearLR warmup": lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=20),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=STEPS),
    "OneCycleLR linear three_phase": lambda m, o: m.OneCycleLR(
        o, max_lr=0.4, total_steps=STEPS + 3, anneal_strategy="linear", three_phase=True,
        pct_start=0.25),
    "OneCycleLR epochs no momentum": lambda m, o: m.OneCycleLR(
        o, max_lr=0.3, epochs=5, steps_per_epoch=10, cycle_momentum=False, div_factor=10.0,
        final_div_factor=100.0),
    "SequentialLR warmup then cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.2, total_iters=10), m.CosineAnnealingLR(o, T_max=40)],
        milestones=[10]),
    "SequentialLR three": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.5, total_iters=4), m.StepLR(o, 5, 0.5),
            m.MultiStepLR(o, [3, 8], 0.1)], milestones=[6, 25]),
    "chained StepLR + LinearLR": lambda m, o: (m.LinearLR(o, start_factor=0.25, total_iters=8),
                                               m.StepLR(o, 10, 0.5)),
    "chained MultiStepLR + CosineAnnealingLR": lambda m, o: (m.MultiStepLR(o, [10, 20], 0.5),
                                                             m.CosineAnnealingLR(o, 15, 0.001)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_torch(name):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "step order" notes
        theirs = _run(torch.optim, CASES[name])
    _assert_same(_run(optim, CASES[name]), theirs)


def test_one_cycle_moves_adams_beta1_as_torch():
    torch = pytest.importorskip("torch")
    make = lambda m, o: m.OneCycleLR(o, max_lr=0.01, total_steps=STEPS, base_momentum=0.8)
    _assert_same(_run(optim, make, kind="adam"), _run(torch.optim, make, kind="adam"))


def test_one_cycle_past_total_steps_is_an_error():
    opt = _optimizer(optim)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="OneCycleLR: tried to step 4 times"):
        sched.step()


PLATEAU_METRICS = [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.94, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
                   0.49999, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6] * 2 + [0.1, 0.2, 0.3, 0.4]

PLATEAU_CASES = {
    "min rel": lambda m, o: m.ReduceLROnPlateau(o, patience=2),
    "min abs cooldown": lambda m, o: m.ReduceLROnPlateau(o, factor=0.5, patience=1, cooldown=3,
                                                         threshold=0.01, threshold_mode="abs"),
    "max rel min_lr per group": lambda m, o: m.ReduceLROnPlateau(o, mode="max", factor=0.3,
                                                                 patience=0, min_lr=[0.01, 0.02]),
    "max abs": lambda m, o: m.ReduceLROnPlateau(o, mode="max", patience=3, threshold=0.05,
                                                threshold_mode="abs", min_lr=1e-3),
}


@pytest.mark.parametrize("name", list(PLATEAU_CASES))
def test_reduce_on_plateau_matches_torch(name):
    torch = pytest.importorskip("torch")
    n = len(PLATEAU_METRICS)
    theirs = _run(torch.optim, PLATEAU_CASES[name], steps=n, metrics=PLATEAU_METRICS)
    ours = _run(optim, PLATEAU_CASES[name], steps=n, metrics=PLATEAU_METRICS)
    _assert_same(ours, theirs)
    assert ours[-1][0][0][0] < 0.1  # it did cut the lr


CLOSED_FORM = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=4, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, [3, 7, 7], gamma=0.5),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=6, eta_min=0.01),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.2, total_iters=8),
}


@pytest.mark.parametrize("name", list(CLOSED_FORM))
def test_step_with_epoch_uses_the_closed_form_as_torch(name):
    torch = pytest.importorskip("torch")
    epochs = [3, 9, 1, 14, 7, 7, 0, 20]
    results = []
    for lib in (optim, torch.optim):
        opt = _optimizer(lib)
        sched = CLOSED_FORM[name](lib.lr_scheduler, opt)
        lrs = []
        for e in epochs:
            with pytest.warns(UserWarning, match="epoch parameter"):
                sched.step(e)
            lrs.append(sched.get_last_lr())
            sched.step()  # a chainable step from there
            lrs.append(sched.get_last_lr())
        results.append(lrs)
    np.testing.assert_allclose(results[0], results[1], rtol=REL, atol=0)


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "LinearLR", "MultiStepLR"])
def test_resuming_with_last_epoch_matches_torch(name):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (optim, torch.optim):
        opt = _optimizer(lib)
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
        sched = {"StepLR": lambda: lib.lr_scheduler.StepLR(opt, 4, 0.5, last_epoch=9),
                 "CosineAnnealingLR": lambda: lib.lr_scheduler.CosineAnnealingLR(
                     opt, 6, 0.01, last_epoch=9),
                 "LinearLR": lambda: lib.lr_scheduler.LinearLR(opt, 0.2, total_iters=8,
                                                               last_epoch=3),
                 "MultiStepLR": lambda: lib.lr_scheduler.MultiStepLR(opt, [3, 12], last_epoch=9),
                 }[name]()
        lrs = [sched.get_last_lr()]
        for _ in range(12):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr())
        results.append(lrs)
    np.testing.assert_allclose(results[0], results[1], rtol=REL, atol=0)


def test_resuming_without_initial_lr_is_an_error():
    with pytest.raises(KeyError, match="initial_lr"):
        optim.lr_scheduler.StepLR(_optimizer(optim), 3, last_epoch=5)


STATEFUL = {**{k: CASES[k] for k in ("StepLR", "MultiStepLR repeated milestone",
                                      "CosineAnnealingLR several periods", "LinearLR warmup",
                                      "OneCycleLR", "SequentialLR warmup then cosine")},
            "ReduceLROnPlateau": PLATEAU_CASES["min abs cooldown"]}


@pytest.mark.parametrize("name", list(STATEFUL))
def test_state_dict_through_json_resumes_identically(name):
    make = STATEFUL[name]
    metrics = PLATEAU_METRICS if name == "ReduceLROnPlateau" else None
    full = _run(optim, make, steps=30, metrics=metrics)

    opt = _optimizer(optim)
    sched = make(optim.lr_scheduler, opt)
    for i in range(12):
        sched.step(*([metrics[i]] if metrics else []))
    saved_sched = json.loads(json.dumps(sched.state_dict()))
    saved_groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]

    opt2 = _optimizer(optim)
    sched2 = make(optim.lr_scheduler, opt2)
    for g, saved in zip(opt2.param_groups, saved_groups):  # as optimizer.load_state_dict does
        g.update(saved)
    sched2.load_state_dict(saved_sched)
    rest = [_record(opt2)]
    for i in range(12, 30):
        sched2.step(*([metrics[i]] if metrics else []))
        rest.append(_record(opt2))
    assert rest == [rec for rec, _ in full[12:]]


def test_scheduler_argument_errors():
    opt = _optimizer(optim)
    sched = optim.lr_scheduler
    with pytest.raises(TypeError, match="is not an Optimizer"):
        sched.StepLR(object(), 3)
    with pytest.raises(ValueError, match="LinearLR: start_factor"):
        sched.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: factor"):
        sched.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        sched.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="total_steps OR"):
        sched.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        sched.OneCycleLR(opt, max_lr=[0.1], total_steps=10)
    with pytest.raises(ValueError, match="one milestone fewer"):
        sched.SequentialLR(opt, [sched.StepLR(opt, 2), sched.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        sched.SequentialLR(opt, [sched.ReduceLROnPlateau(opt)], milestones=[])
    with pytest.raises(ValueError, match="same optimizer"):
        sched.SequentialLR(opt, [sched.StepLR(_optimizer(optim), 2)], milestones=[])
    with pytest.raises(ValueError, match="StepLR: step_size"):
        sched.StepLR(opt, 0)
