"""Smoke test of bench/: every code path at toy sizes, one repetition.

Asserts only that rows come out with the expected columns and finite numbers (a kernel
that does not exist yet may be skipped with a note). Never asserts speed: benches report
speed, tests check correctness.
"""
from __future__ import annotations

import json
import math

import pytest

from bench import __main__ as bench_main
from bench import cold_start, harness, kernels

TOY = harness.TOY
NUMERIC = ("numba_ms", "numpy_ms", "torch_ms", "numpy_over_numba", "torch_over_numba")


@pytest.fixture(scope="module")
def results():
    """One toy run of the in-process sections (kernels, memory, e2e)."""
    torch = harness.try_import_torch()
    return bench_main.run_all(TOY, sections=("kernels", "e2e"), torch=torch, log=lambda s: None)


def _finite_or_none(row, keys):
    for k in keys:
        v = row.get(k)
        assert v is None or (isinstance(v, float) and math.isfinite(v) and v >= 0), (row["name"], k, v)


def _check_timed_rows(rows, columns, numeric):
    assert rows
    for row in rows:
        assert not row.get("error"), (row["name"], row.get("error"))
        for key, _, _ in columns:
            assert key in row or key not in numeric, (row["name"], key)
        if row.get("numba_ms") is None:
            assert row["notes"], f"{row['name']} has no numba time and no note saying why"
        else:
            assert row["numba_ms"] > 0
            _finite_or_none(row, numeric)


def test_kernel_rows(results):
    rows = results["rows"]["kernels"]
    assert [r["name"] for r in rows] == [c.name for c in kernels.cases("toy")]
    _check_timed_rows(rows, kernels.KERNEL_COLUMNS, NUMERIC + ("throughput",))


def test_memory_rows(results):
    rows = results["rows"]["memory"]
    assert {r["name"].split(" (")[0] for r in rows} == {"fused", "materialized"}
    _finite_or_none_all = [r[k] for r in rows for k in ("traced_mb", "total_mb") if r[k] is not None]
    assert all(math.isfinite(v) and v >= 0 for v in _finite_or_none_all)


def test_e2e_rows(results):
    """The fair protocol's processes (toy config, one round, 2 and 1 threads)."""
    rows = results["rows"]["e2e"]
    assert [r["threads"] for r in rows] == [2, 1]
    for row in rows:
        assert not row.get("error"), row["error"]
        assert row["ours_ms"] > 0 and math.isfinite(row["ours_tok_s"])
        if harness.try_import_torch() is not None:
            assert row["reference"] in ("default", "PASSIVE")
            _finite_or_none(row, ("torch_ms", "torch_over_ours"))
            # each torch process ran under its own policy, minitensor's under none
            assert [r["omp_wait_policy"] for r in row["variants"]["torch PASSIVE"]["runs"]] == ["PASSIVE"]
            assert [r["omp_wait_policy"] for r in row["variants"]["minitensor"]["runs"]] == [None]


def test_render_and_json(results, tmp_path):
    text = bench_main.render(results)
    assert "numba ms" in text and "CPU" in text
    path = tmp_path / "out.json"
    harness.write_json_atomic(str(path), results)
    back = json.loads(path.read_text())
    assert back["rows"]["kernels"][0]["name"] == results["rows"]["kernels"][0]["name"]
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_cold_start_rows():
    # Subprocesses, default Numba cache (already warm), one kernel row: a few seconds.
    rows = cold_start.run(TOY, log=lambda s: None, fresh_cache=False, only=["gelu fwd"],
                          parts=("import", "kernels"))
    assert [r["name"] for r in rows][:2] == ["import minitensor", "load numba backend"]
    for row in rows:
        assert not row.get("error"), row
        assert math.isfinite(row["seconds"])
    # The e2e child's code, in this process (a subprocess of it costs seconds more).
    out = cold_start._child_e2e("toy", steps=1)
    assert all(math.isfinite(out[k]) for k in ("import_s", "build_s", "first_step_s", "steady_s"))


def test_args():
    a = bench_main.parse_args(["--quick", "--only", "kernels", "--only", "cold", "--json", "x.json"])
    assert a.quick and a.only == ["kernels", "cold"] and a.json == "x.json"


def test_profile_step_and_matmul_shapes_run_at_toy_size():
    """bench.profile_step and bench.matmul_shapes, in this process at the toy config."""
    from bench import matmul_shapes, profile_step
    times, totals, opt_time, _, faults = profile_step.profile("toy", threads=1, steps=1, warmup=1)
    text = profile_step.report("toy", 1, 1, times, totals, opt_time, None, faults)
    assert "Linear" in text and "Python overhead" in text and "page faults per step" in text
    rows, peak = matmul_shapes.run(["toy"], TOY, harness.try_import_torch(), log=lambda s: None)
    assert peak > 0 and [r["name"].split()[1] for r in rows[:3]] == ["fwd", "dX", "dW"]
    for row in rows:
        assert math.isfinite(row["numba_gflops"]) and row["numba_gflops"] > 0
