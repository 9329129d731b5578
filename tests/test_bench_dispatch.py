"""Smoke test of bench/dispatch.py: every row at one repetition, in this process.

Asserts only that the rows come out, named and finite (speed is never asserted)."""
from __future__ import annotations

import math

from bench import dispatch, harness


def test_dispatch_rows_come_out_finite():
    for cpu_time in (True, False):
        rows = dispatch.measure(harness.TOY, cpu_time=cpu_time)
        names = [r["name"] for r in rows]
        assert names[:2] == ["numpy floor", "Function.apply"]
        assert "backward (difference)" in names and "zero_grad (Module)" in names
        for r in rows:
            assert math.isfinite(r["us"]), r
            if r["name"] != "backward (difference)":   # a difference of two medians may be < 0
                assert r["us"] >= 0, r
