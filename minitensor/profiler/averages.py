"""``key_averages()``: the events summed per (name, phase), and the table that prints them.

Rates use *self* time (an op's time minus nothing: ops do not nest; a range's minus what
ran inside it). The roofline share compares the achieved rate with what this machine
could reach at the op's arithmetic intensity I = FLOPs / byte:
min(peak FLOP/s, I * bandwidth); an op without a FLOP count is compared on bytes alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# torch's sort keys, and ours (the columns this table adds).
_SORT_KEYS = {
    "self_cpu_time_total": lambda a: a.self_cpu_time_total,
    "cpu_time_total": lambda a: a.cpu_time_total,
    "self_cpu_time": lambda a: a.self_cpu_time_total / a.count,
    "cpu_time": lambda a: a.cpu_time,
    "count": lambda a: a.count,
    "flops": lambda a: a.flops or 0,
    "bytes": lambda a: a.bytes,
    "gflops_per_s": lambda a: a.gflops_per_s or 0.0,
    "roofline": lambda a: a.roofline_fraction or 0.0,
}


@dataclass
class EventAverage:
    """The sum of one (name, phase)'s events. Times in microseconds, as torch's."""
    key: str
    phase: str
    count: int = 0
    cpu_time_total: float = 0.0       # µs
    self_cpu_time_total: float = 0.0  # µs
    flops: int | None = 0             # None when the op states no FLOP count
    bytes: int = 0
    roofline_fraction: float | None = None  # achieved / attainable, set by EventAverages

    @property
    def cpu_time(self) -> float:
        """Mean total time per call, µs."""
        return self.cpu_time_total / self.count

    @property
    def gflops_per_s(self) -> float | None:
        if not self.flops or self.self_cpu_time_total <= 0:
            return None
        return self.flops / (self.self_cpu_time_total * 1e3)

    @property
    def gbytes_per_s(self) -> float | None:
        if not self.bytes or self.self_cpu_time_total <= 0:
            return None
        return self.bytes / (self.self_cpu_time_total * 1e3)


class EventAverages(list):
    """A list of ``EventAverage`` with torch's ``table(sort_by, row_limit)``."""

    def __init__(self, rows, roofline=None):
        super().__init__(rows)
        self.roofline = roofline

    @classmethod
    def from_events(cls, events, get_roofline: Callable) -> "EventAverages":
        rows: dict[tuple, EventAverage] = {}
        for e in events:
            row = rows.get((e.name, e.phase))
            if row is None:
                row = rows[(e.name, e.phase)] = EventAverage(e.name, e.phase,
                                                             flops=None if e.phase == "range" else 0)
            row.count += 1
            row.cpu_time_total += e.duration_ns / 1e3
            row.self_cpu_time_total += e.self_ns / 1e3
            row.bytes += e.bytes
            row.flops = None if (row.flops is None or e.flops is None) else row.flops + e.flops
        roofline = get_roofline() if any(r.phase != "range" for r in rows.values()) else None
        if roofline is not None:
            for row in rows.values():
                row.roofline_fraction = roofline_fraction(row, roofline)
        return cls(rows.values(), roofline)

    def table(self, sort_by: str = "self_cpu_time_total", row_limit: int = 100) -> str:
        """The rows as a fixed-width text table, largest ``sort_by`` first.

        Args:
            sort_by: a torch key ("self_cpu_time_total", "cpu_time_total", "cpu_time",
                "self_cpu_time", "count", "flops") or "bytes", "gflops_per_s", "roofline".
            row_limit: at most this many rows (-1: all).
        """
        if sort_by not in _SORT_KEYS:
            raise ValueError(f"key_averages().table: unknown sort_by {sort_by!r}; "
                             f"choose from {sorted(_SORT_KEYS)}")
        rows = sorted(self, key=_SORT_KEYS[sort_by], reverse=True)
        if row_limit is not None and row_limit >= 0:
            rows = rows[:row_limit]
        total_self = sum(r.self_cpu_time_total for r in self) or 1.0
        header = ("Name", "Phase", "Calls", "Total ms", "Self ms", "Self %", "MFLOP",
                  "MB", "GFLOP/s", "GB/s", "% roof")
        lines = [_row(header)]
        lines.append("-" * len(lines[0]))
        for r in rows:
            lines.append(_row((
                r.key[:28], r.phase, str(r.count), f"{r.cpu_time_total / 1e3:.3f}",
                f"{r.self_cpu_time_total / 1e3:.3f}",
                f"{100 * r.self_cpu_time_total / total_self:.1f}",
                _fmt(None if r.flops is None else r.flops / 1e6, ".2f"),
                _fmt(r.bytes / 1e6 if r.phase != "range" else None, ".2f"),
                _fmt(r.gflops_per_s, ".2f"), _fmt(r.gbytes_per_s, ".2f"),
                _fmt(None if r.roofline_fraction is None else 100 * r.roofline_fraction, ".1f"))))
        lines.append("-" * len(lines[0]))
        lines.append(f"Self time total: {total_self / 1e3:.3f} ms" + (
            f"; roofline: {self.roofline.describe()}" if self.roofline is not None else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def roofline_fraction(row: EventAverage, roofline) -> float | None:
    """Achieved rate / the rate the roofline allows at this row's arithmetic intensity."""
    if row.phase == "range" or row.self_cpu_time_total <= 0 or not row.bytes:
        return None
    seconds = row.self_cpu_time_total / 1e6
    if row.flops:
        attainable = roofline.attainable(row.flops / row.bytes)
        return (row.flops / seconds) / attainable
    return (row.bytes / seconds) / roofline.bandwidth


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


_WIDTHS = (28, 8, 6, 9, 9, 6, 8, 8, 8, 7, 6)


def _row(cells) -> str:
    first = f"{cells[0]:<{_WIDTHS[0]}} {cells[1]:<{_WIDTHS[1]}}"
    return first + "".join(f" {c:>{w}}" for c, w in zip(cells[2:], _WIDTHS[2:]))
