"""The dates task (seq2seq): a date in one of many human formats -> ISO ``YYYY-MM-DD``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from .task_base import Task


MONTHS = ("January", "February", "March", "April", "May", "June", "July",
          "August", "September", "October", "November", "December")  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DATE_MIN = dt.date(1950, 1, 1)
DATE_MAX = dt.date(2049, 12, 31)


def year_from_2digits(yy: int) -> int:
    """Two-digit year -> full year in 1950-2049: 50..99 -> 19yy, 00..49 -> 20yy."""
    return 1900 + yy if yy >= 50 else 2000 + yy


def ordinal(n: int) -> str:
    """1 -> "1st", 2 -> "2nd", 3 -> "3rd", 11 -> "11th", 22 -> "22nd"."""
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _parts(d: dt.date) -> tuple[str, str, str, str]:
    """(month name, month abbr, weekday name, weekday abbr), English, locale-free."""
    month, weekday = MONTHS[d.month - 1], WEEKDAYS[d.weekday()]
    return month, month[:3], weekday, weekday[:3]


# Each format is a function date -> text. They are chosen so that no string is
# produced by two (format, date) pairs: numeric formats differ by separator or by
# where the 4-digit year sits, and "/" always means US month/day/year or year/month/day.
DATE_FORMATS: dict[str, Callable[[dt.date], str]] = {
    "weekday_month_d_y": lambda d: f"{_parts(d)[2]}, {_parts(d)[0]} {d.day}, {d.year}",  # Tuesday, March 5
    "d_mon_yy": lambda d: f"{d.day} {_parts(d)[1].lower()} {d.year % 100:02d}",  # 5 mar 24
    "us_mm_dd_yyyy": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",  # 03/05/2024
    "y_month_dth": lambda d: f"{d.year} {_parts(d)[0]} {ordinal(d.day)}",  # 2024 March 5th
    "month_dth_y": lambda d: f"{_parts(d)[0]} {ordinal(d.day)}, {d.year}",  # March 5th, 2024
    "d_month_y": lambda d: f"{d.day} {_parts(d)[0]} {d.year}",  # 5 March 2024
    "mon_d_y": lambda d: f"{_parts(d)[1]} {d.day} {d.year}",  # Mar 5 2024
    "eu_dd_mm_yyyy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",  # 05.03.2024
    "yyyy_mm_dd_slash": lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",  # 2024/03/05
    "wkd_d_mon_y": lambda d: f"{_parts(d)[3].lower()} {d.day} {_parts(d)[1].lower()} {d.year}",  # tue 5 mar
    "dth_of_month_y": lambda d: f"{ordinal(d.day)} of {_parts(d)[0]}, {d.year}",  # 5th of March, 2024
    "month_upper": lambda d: f"{_parts(d)[0].upper()} {d.day}, {d.year}",  # MARCH 5, 2024
    "compact_yyyymmdd": lambda d: f"{d.year}{d.month:02d}{d.day:02d}",  # 20240305
    "d_mon_y_dash": lambda d: f"{d.day}-{_parts(d)[1]}-{d.year}",  # 5-Mar-2024
    "month_d_apostrophe_yy": lambda d: f"{_parts(d)[0]} {d.day}, '{d.year % 100:02d}",  # March 5, '24
}


@dataclass(frozen=True)
class DatesTask(Task):
    """Human-written date -> ISO date: "Tuesday, March 5, 2024" -> "2024-03-05".

    The date is uniform over 1950-01-01..2049-12-31 and the format uniform over
    `formats` (default: all of DATE_FORMATS). Two-digit years map into that range
    (see `year_from_2digits`), so every source has exactly one target.
    """

    formats: tuple[str, ...] | None = None

    name: ClassVar[str] = "dates"
    kind: ClassVar[str] = "seq2seq"

    def __post_init__(self) -> None:
        if self.formats is not None:
            if isinstance(self.formats, str):  # a lone name, not an iterable of chars
                object.__setattr__(self, "formats", (self.formats,))
            object.__setattr__(self, "formats", tuple(self.formats))
            unknown = [f for f in self.formats if f not in DATE_FORMATS]
            if unknown or not self.formats:
                raise ValueError(
                    f"task 'dates': unknown or empty formats {unknown}; "
                    f"choose from {', '.join(DATE_FORMATS)}"
                )

    @property
    def format_names(self) -> tuple[str, ...]:
        return self.formats if self.formats is not None else tuple(DATE_FORMATS)

    def sample(self, rng: np.random.Generator) -> tuple[str, str]:
        span_days = (DATE_MAX - DATE_MIN).days
        d = DATE_MIN + dt.timedelta(days=int(rng.integers(0, span_days + 1)))
        names = self.format_names
        fmt = DATE_FORMATS[names[int(rng.integers(0, len(names)))]]
        return fmt(d), d.isoformat()

    def num_distinct(self) -> int:
        return ((DATE_MAX - DATE_MIN).days + 1) * len(self.format_names)

    @property
    def chars(self) -> str:
        # Rendering every day of one leap year meets every month, weekday, day
        # number and ordinal suffix; digits of years are covered by day numbers.
        days = [dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(366)]
        seen = {c for d in days for name in self.format_names for c in DATE_FORMATS[name](d)}
        return "".join(sorted(seen | set("-0123456789")))
