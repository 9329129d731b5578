"""The profiler: FLOP/byte counts against hand-computed values, the table, the Chrome
trace, record_function nesting, and that profiling changes no result."""
from __future__ import annotations

import json

import numpy as np
import pytest

import minitensor as mt
from minitensor import nn, profiler
from minitensor import functional as F
from minitensor.profiler import Roofline

FAKE_ROOF = Roofline(peak_flops=1e11, bandwidth=1e10, machine="test")


def _profile(fn):
    with profiler.profile(roofline=FAKE_ROOF) as prof:
        fn()
    return prof


def _events(prof, name, phase):
    return [e for e in prof.events if e.name == name and e.phase == phase]


def test_matmul_flops_and_bytes():
    a = mt.randn(5, 7, requires_grad=True)
    b = mt.randn(7, 3, requires_grad=True)
    prof = _profile(lambda: (a @ b).sum().backward())
    (fwd,) = _events(prof, "MatMul", "forward")
    assert fwd.flops == 2 * 5 * 3 * 7
    assert fwd.bytes == 4 * (5 * 7 + 7 * 3 + 5 * 3)          # read A, B; write C (float32)
    (bwd,) = _events(prof, "MatMul", "backward")
    assert bwd.flops == 2 * (2 * 5 * 3 * 7)                  # dA = dC B^T and dB = A^T dC
    # read dC, saved A and B; write dA and dB
    assert bwd.bytes == 4 * (5 * 3 + 5 * 7 + 7 * 3 + 5 * 7 + 7 * 3)


def test_matmul_backward_counts_only_needed_gradients():
    a = mt.randn(5, 7, requires_grad=True)
    b = mt.randn(7, 3)                                       # data: no dB
    prof = _profile(lambda: (a @ b).sum().backward())
    (bwd,) = _events(prof, "MatMul", "backward")
    assert bwd.flops == 2 * 5 * 3 * 7


def test_linear_flops():
    layer = nn.Linear(6, 4)
    x = mt.randn(2, 3, 6, requires_grad=True)
    prof = _profile(lambda: layer(x).sum().backward())
    (fwd,) = _events(prof, "Linear", "forward")
    n = 2 * 3
    assert fwd.flops == 2 * n * 6 * 4 + n * 4               # x W^T, + bias
    (bwd,) = _events(prof, "Linear", "backward")
    assert bwd.flops == 2 * (2 * n * 6 * 4) + n * 4         # dX, dW, db


def test_softmax_and_layer_norm_flops():
    x = mt.randn(3, 10, requires_grad=True)
    ln = nn.LayerNorm(10)
    prof = _profile(lambda: ln(F.softmax(x, axis=-1)).sum().backward())
    n = 30
    assert _events(prof, "Softmax", "forward")[0].flops == 5 * n
    assert _events(prof, "Softmax", "backward")[0].flops == 4 * n
    assert _events(prof, "LayerNorm", "forward")[0].flops == 7 * n   # 5n + weight + bias
    assert _events(prof, "LayerNorm", "backward")[0].flops == 11 * n  # 7n dx + 3n w + n b
    assert _events(prof, "Softmax", "forward")[0].bytes == 2 * 4 * n  # read x, write y


@pytest.mark.parametrize("causal", [False, True])
def test_attention_flops(causal):
    b, h, t, d = 2, 2, 5, 3
    q, k, v = (mt.randn(b, h, t, d, requires_grad=True) for _ in range(3))
    prof = _profile(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                    .sum().backward())
    pairs = t * (t + 1) // 2 if causal else t * t
    (fwd,) = _events(prof, "Attention", "forward")
    assert fwd.flops == b * h * pairs * (2 * d + 5 + 2 * d)
    (bwd,) = _events(prof, "Attention", "backward")
    assert bwd.flops == b * h * (pairs * (4 * d + 4 * d + 2) + 2 * t * d)


def test_op_without_cost_shows_bytes_only():
    x = mt.randn(4, 4, requires_grad=True)
    prof = _profile(lambda: mt.cumsum(x, 0).sum().backward())
    (fwd,) = _events(prof, "CumSum", "forward")
    assert fwd.flops is None and fwd.bytes == 2 * 4 * 16
    row = [r for r in prof.key_averages() if r.key == "CumSum" and r.phase == "forward"][0]
    assert row.flops is None and row.gflops_per_s is None


def test_view_ops_move_no_bytes():
    x = mt.randn(4, 6, requires_grad=True)
    prof = _profile(lambda: x.reshape(6, 4).sum().backward())
    (fwd,) = _events(prof, "Reshape", "forward")
    assert (fwd.flops, fwd.bytes) == (0, 0)


def test_record_function_self_time_and_table():
    x = mt.randn(8, 8, requires_grad=True)

    def step():
        with profiler.record_function("outer"):
            with profiler.record_function("inner"):
                y = (x @ x).relu()
            y.sum().backward()
    prof = _profile(step)
    outer = [e for e in prof.events if e.name == "outer"][0]
    inner = [e for e in prof.events if e.name == "inner"][0]
    inside_outer = [e for e in prof.events if e is not outer
                    and e.start_ns >= outer.start_ns and e.phase != "range"]
    ops_in_inner = [e for e in prof.events if e.phase != "range" and
                    inner.start_ns <= e.start_ns < inner.start_ns + inner.duration_ns]
    assert inner.self_ns == inner.duration_ns - sum(e.duration_ns for e in ops_in_inner)
    assert outer.self_ns == outer.duration_ns - inner.duration_ns - sum(
        e.duration_ns for e in inside_outer if e not in ops_in_inner)
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=3)
    lines = table.splitlines()
    assert lines[2].startswith("outer")                      # the longest total first
    assert len(lines) == 2 + 3 + 2                            # header, rule, 3 rows, rule, total
    matmul = [r for r in prof.key_averages() if r.key == "MatMul" and r.phase == "forward"][0]
    assert matmul.count == 1 and matmul.flops == 2 * 8 * 8 * 8
    seconds = matmul.self_cpu_time_total / 1e6
    expected = (matmul.flops / seconds) / FAKE_ROOF.attainable(matmul.flops / matmul.bytes)
    assert matmul.roofline_fraction == pytest.approx(expected)
    with pytest.raises(ValueError, match="sort_by"):
        prof.key_averages().table(sort_by="nope")


def test_chrome_trace_is_valid(tmp_path):
    x = mt.randn(4, 4, requires_grad=True)

    def step():
        with profiler.record_function("my range"):
            (x * x).sum().backward()
    prof = _profile(step)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    assert len(events) == len(prof.events)
    for e in events:
        assert e["ph"] == "X" and e["dur"] >= 0 and e["ts"] >= 0
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int) and isinstance(e["name"], str)
    names = {e["name"] for e in events}
    assert {"my range", "Mul (forward)", "Mul (backward)", "Sum (forward)"} <= names
    mul = [e for e in events if e["name"] == "Mul (forward)"][0]
    assert mul["args"]["shapes"] == [[4, 4], [4, 4]] and mul["args"]["flops"] == 16


def test_profiling_does_not_change_results():
    def run():
        mt.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 3))
        x = mt.randn(5, 8)
        loss = F.cross_entropy(model(x), mt.tensor([0, 1, 2, 1, 0]))
        loss.backward()
        return [loss.data] + [p.grad.data for p in model.parameters()]
    plain = run()
    with profiler.profile(roofline=FAKE_ROOF):
        profiled = run()
    assert all(np.array_equal(a, b) for a, b in zip(plain, profiled))


def test_profiler_is_off_outside_its_block():
    from minitensor import autograd
    with profiler.profile(roofline=FAKE_ROOF) as prof:
        pass
    assert autograd._observers == ()
    (mt.randn(3, requires_grad=True) * 2).sum().backward()
    assert prof.events == []


def test_roofline_cache_is_written_once(tmp_path, monkeypatch):
    from minitensor.profiler import roofline as rl
    calls = []
    monkeypatch.setattr(rl, "probe_peak_flops", lambda: calls.append(1) or 1e10)
    monkeypatch.setattr(rl, "probe_bandwidth", lambda: 2e9)
    path = str(tmp_path / "cache" / "roofline.json")
    first = rl.measure_roofline(path=path)
    second = rl.measure_roofline(path=path)
    assert first == second and len(calls) == 1
    assert first.attainable(1.0) == 2e9 and first.attainable(100.0) == 1e10
    stored = json.loads(open(path).read())
    assert list(stored) == [rl.machine_identity()]


def test_pass_through_backward_moves_no_bytes():
    a = mt.randn(3, 4, requires_grad=True)
    b = mt.randn(3, 4, requires_grad=True)
    prof = _profile(lambda: (a + b).sum().backward())
    (bwd,) = _events(prof, "Add", "backward")        # returns g itself for both inputs
    assert (bwd.flops, bwd.bytes) == (0, 0)
    (fwd,) = _events(prof, "Add", "forward")
    assert (fwd.flops, fwd.bytes) == (12, 3 * 4 * 12)


def test_full_reduction_counts_its_bytes():
    x = mt.randn(8, 4, requires_grad=True)
    prof = _profile(lambda: x.sum().backward())
    (fwd,) = _events(prof, "Sum", "forward")          # np.sum returns a NumPy scalar here
    assert (fwd.flops, fwd.bytes) == (32, 4 * 32 + 4)


def test_an_op_that_raises_leaves_the_profile_consistent():
    class Boom(mt.Function):
        @staticmethod
        def forward(ctx, x):
            raise ValueError("boom")

    x = mt.randn(3, requires_grad=True)
    with profiler.profile(roofline=FAKE_ROOF) as prof:
        with profiler.record_function("outer"):
            with pytest.raises(ValueError):
                Boom.apply(x)
            (x * 2).sum()
    assert prof._stack == []
    outer = [e for e in prof.events if e.name == "outer"][0]
    ops = [e for e in prof.events if e.phase == "forward"]
    assert [e.name for e in ops] == ["Mul", "Sum"]
    assert outer.self_ns == outer.duration_ns - sum(e.duration_ns for e in ops)


def test_torch_style_arguments():
    x = mt.randn(2, 2, requires_grad=True)
    with profiler.profile(activities=[profiler.ProfilerActivity.CPU], record_shapes=False,
                          roofline=FAKE_ROOF) as prof:
        (x * x).sum()
    assert prof.events and all(e.shapes == [] for e in prof.events)
    with pytest.raises(ValueError, match="CPU only"):
        profiler.profile(activities=["cuda"])
