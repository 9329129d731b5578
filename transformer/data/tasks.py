"""Synthetic tasks generated from a seed, and train/val/test splits that never overlap.

Every task is a small frozen dataclass whose fields are its options. It draws one
example at a time from a `numpy.random.Generator`, so a seed fixes the data:

    seq2seq   (source, target) strings   copy, reverse, sort, add, dates
    classify  (text, label) with label 0/1   brackets
    span      SpanExample(context, query, start, end)   kv_span

`make_task(name, **options)` builds one from the `TASKS` registry and
`make_splits(task, n_train, n_val, n_test, seed)` draws distinct examples for the
three splits. `task.vocab()` is a char vocabulary that covers every character the
task can produce, shared by source and target, so no split ever meets UNK.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import string
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple, Union

import numpy as np

from .vocab import Vocab

# Separates query from context in a span example's token sequence ("qx|a=17;qx=5").
SPAN_SEPARATOR = "|"


class SpanExample(NamedTuple):
    """One extractive-QA example: `context[start:end + 1] == answer` (end inclusive)."""

    context: str
    query: str
    start: int
    end: int

    @property
    def answer(self) -> str:
        return self.context[self.start : self.end + 1]


Example = Union[tuple[str, str], tuple[str, int], SpanExample]


class Task:
    """Base class: options are dataclass fields, `sample` draws one example.

    Subclasses set `name` and `kind` ("seq2seq", "classify" or "span") and implement
    `sample`, `chars` and `num_distinct`.
    """

    name: ClassVar[str]
    kind: ClassVar[str]

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one example (see the module docstring for its type per kind)."""
        raise NotImplementedError

    def samples(self, rng: np.random.Generator, n: int) -> list[Any]:
        """Draw `n` examples; repeats are possible (use `make_splits` for distinct ones)."""
        return [self.sample(rng) for _ in range(n)]

    def key(self, example: Any) -> str:
        """The input string of an example: what must not repeat across splits."""
        if isinstance(example, SpanExample):
            return example.query + SPAN_SEPARATOR + example.context
        return example[0]

    def num_distinct(self) -> int | None:
        """How many distinct inputs the task can produce, or None when not counted."""
        return None

    @property
    def chars(self) -> str:
        """Every character that can appear in an input or output, sorted."""
        raise NotImplementedError

    def vocab(self) -> Vocab:
        """A char vocab over `chars`, shared by source and target."""
        return Vocab.from_alphabet(self.chars)

    def options(self) -> dict[str, Any]:
        """The task's options as a dict (what `make_task` was given, plus defaults)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def _check_range(task: str, lo_name: str, lo: int, hi_name: str, hi: int, minimum: int) -> None:
    if lo < minimum:
        raise ValueError(f"task {task!r}: {lo_name} must be >= {minimum}, got {lo}")
    if hi < lo:
        raise ValueError(f"task {task!r}: {hi_name}={hi} is smaller than {lo_name}={lo}")


def _random_string(rng: np.random.Generator, alphabet: str, min_len: int, max_len: int) -> str:
    n = int(rng.integers(min_len, max_len + 1))
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=n))


# ---- copy / reverse / sort ---------------------------------------------------------


@dataclass(frozen=True)
class _StringTask(Task):
    """Random strings over `alphabet` with lengths in [min_len, max_len]."""

    min_len: int = 1
    max_len: int = 16
    alphabet: str = string.ascii_lowercase

    kind: ClassVar[str] = "seq2seq"

    def __post_init__(self) -> None:
        _check_range(self.name, "min_len", self.min_len, "max_len", self.max_len, minimum=1)
        if len(set(self.alphabet)) != len(self.alphabet) or not self.alphabet:
            raise ValueError(f"task {self.name!r}: alphabet must be non-empty with no repeats")

    def transform(self, s: str) -> str:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> tuple[str, str]:
        s = _random_string(rng, self.alphabet, self.min_len, self.max_len)
        return s, self.transform(s)

    def num_distinct(self) -> int:
        k = len(self.alphabet)
        return sum(k**n for n in range(self.min_len, self.max_len + 1))

    @property
    def chars(self) -> str:
        return "".join(sorted(self.alphabet))


@dataclass(frozen=True)
class CopyTask(_StringTask):
    """"abc" -> "abc"."""

    name: ClassVar[str] = "copy"

    def transform(self, s: str) -> str:
        return s


@dataclass(frozen=True)
class ReverseTask(_StringTask):
    """"abc" -> "cba"."""

    name: ClassVar[str] = "reverse"

    def transform(self, s: str) -> str:
        return s[::-1]


@dataclass(frozen=True)
class SortTask(_StringTask):
    """"cab" -> "abc" (characters sorted by code point)."""

    name: ClassVar[str] = "sort"

    def transform(self, s: str) -> str:
        return "".join(sorted(s))


# ---- add ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AddTask(Task):
    """"1234+56" -> "1290"; each operand has 1..max_digits digits.

    The digit count is drawn uniformly first, then the value, so short operands are
    as common as long ones (a uniform value would almost always have max_digits).
    """

    max_digits: int = 4

    name: ClassVar[str] = "add"
    kind: ClassVar[str] = "seq2seq"

    def __post_init__(self) -> None:
        if self.max_digits < 1:
            raise ValueError(f"task 'add': max_digits must be >= 1, got {self.max_digits}")

    def _operand(self, rng: np.random.Generator) -> int:
        k = int(rng.integers(1, self.max_digits + 1))
        lo = 0 if k == 1 else 10 ** (k - 1)
        return int(rng.integers(lo, 10**k))

    def sample(self, rng: np.random.Generator) -> tuple[str, str]:
        a, b = self._operand(rng), self._operand(rng)
        return f"{a}+{b}", str(a + b)

    def num_distinct(self) -> int:
        return (10**self.max_digits) ** 2

    @property
    def chars(self) -> str:
        return "+0123456789"


# ---- dates -------------------------------------------------------------------------

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


# ---- brackets (classification) -----------------------------------------------------

OPEN_TO_CLOSE = {"(": ")", "[": "]", "{": "}"}
_OPENERS = "([{"


def is_balanced(text: str) -> bool:
    """True when every bracket in `text` is closed by its own kind, in order."""
    stack: list[str] = []
    for c in text:
        if c in OPEN_TO_CLOSE:
            stack.append(OPEN_TO_CLOSE[c])
        elif not stack or stack.pop() != c:
            return False
    return not stack


def _random_balanced(rng: np.random.Generator, n_pairs: int) -> str:
    """A random balanced string of `n_pairs` bracket pairs (random walk on depth)."""
    out: list[str] = []
    stack: list[str] = []
    for remaining in range(2 * n_pairs, 0, -1):
        must_open = not stack
        must_close = len(stack) == remaining
        if must_open or (not must_close and rng.random() < 0.5):
            opener = _OPENERS[int(rng.integers(0, 3))]
            out.append(opener)
            stack.append(OPEN_TO_CLOSE[opener])
        else:
            out.append(stack.pop())
    return "".join(out)


def _near_miss(rng: np.random.Generator, balanced: str) -> str:
    """Corrupt a balanced string by one small edit so that it is unbalanced.

    Mostly swap two different characters: that keeps the count of every bracket
    kind, so a model cannot answer by counting. Sometimes retype one bracket
    (e.g. "(" -> "["), which always breaks the matching.
    """
    chars = list(balanced)
    if rng.random() < 0.75:
        for _ in range(20):  # most swaps break balance; retry the few that do not
            i, j = (int(x) for x in rng.choice(len(chars), size=2, replace=False))
            if chars[i] == chars[j]:
                continue
            swapped = chars.copy()
            swapped[i], swapped[j] = swapped[j], swapped[i]
            if not is_balanced("".join(swapped)):
                return "".join(swapped)
    i = int(rng.integers(0, len(chars)))
    pool = _OPENERS if chars[i] in OPEN_TO_CLOSE else ")]}"
    others = [c for c in pool if c != chars[i]]
    chars[i] = others[int(rng.integers(0, 2))]
    return "".join(chars)


@dataclass(frozen=True)
class BracketsTask(Task):
    """Is a string of ()[]{} balanced? Label 1 = balanced, 0 = not; 50/50.

    Lengths are even, in [min_len, max_len], for both classes, so length gives no
    hint; unbalanced strings are one edit away from a balanced one (`_near_miss`).
    """

    min_len: int = 2
    max_len: int = 16

    name: ClassVar[str] = "brackets"
    kind: ClassVar[str] = "classify"

    def __post_init__(self) -> None:
        _check_range(self.name, "min_len", self.min_len, "max_len", self.max_len, minimum=1)
        if self._pair_range()[0] > self._pair_range()[1]:
            raise ValueError(
                f"task 'brackets': [min_len, max_len] = [{self.min_len}, {self.max_len}] "
                "contains no even length >= 2"
            )

    def _pair_range(self) -> tuple[int, int]:
        return max(1, (self.min_len + 1) // 2), self.max_len // 2

    def sample(self, rng: np.random.Generator) -> tuple[str, int]:
        lo, hi = self._pair_range()
        label = int(rng.integers(0, 2))
        text = _random_balanced(rng, int(rng.integers(lo, hi + 1)))
        return (text, 1) if label == 1 else (_near_miss(rng, text), 0)

    def num_distinct(self) -> int:
        # Balanced strings are the scarce class (Catalan(n) * 3^n of length 2n) and
        # half the draws must be balanced, so the usable total is twice their count.
        lo, hi = self._pair_range()
        return 2 * sum(math.comb(2 * n, n) // (n + 1) * 3**n for n in range(lo, hi + 1))

    @property
    def chars(self) -> str:
        return "".join(sorted("()[]{}"))


# ---- kv_span (span extraction) -----------------------------------------------------


@dataclass(frozen=True)
class KvSpanTask(Task):
    """Find a key's value in "a=17;qx=5;b=203": query "qx" -> span of "5".

    Keys are distinct lowercase strings of 1..max_key_len letters; values have
    1..max_value_digits digits. The answer span is in characters of the context.
    """

    min_pairs: int = 2
    max_pairs: int = 6
    max_key_len: int = 2
    max_value_digits: int = 3

    name: ClassVar[str] = "kv_span"
    kind: ClassVar[str] = "span"

    def __post_init__(self) -> None:
        _check_range(self.name, "min_pairs", self.min_pairs, "max_pairs", self.max_pairs, minimum=1)
        if self.max_key_len < 1 or self.max_value_digits < 1:
            raise ValueError("task 'kv_span': max_key_len and max_value_digits must be >= 1")
        n_keys = sum(26**k for k in range(1, self.max_key_len + 1))
        if self.max_pairs > n_keys:
            raise ValueError(f"task 'kv_span': max_pairs={self.max_pairs} exceeds the {n_keys} possible keys")

    def sample(self, rng: np.random.Generator) -> SpanExample:
        n = int(rng.integers(self.min_pairs, self.max_pairs + 1))
        keys: list[str] = []
        while len(keys) < n:  # distinct keys, so the answer is unique
            k = _random_string(rng, string.ascii_lowercase, 1, self.max_key_len)
            if k not in keys:
                keys.append(k)
        values = [_random_string(rng, string.digits, 1, self.max_value_digits) for _ in keys]
        q = int(rng.integers(0, n))
        context = ";".join(f"{k}={v}" for k, v in zip(keys, values))
        start = sum(len(k) + len(v) + 2 for k, v in zip(keys[:q], values[:q])) + len(keys[q]) + 1
        return SpanExample(context, keys[q], start, start + len(values[q]) - 1)

    @property
    def chars(self) -> str:
        return "".join(sorted(string.ascii_lowercase + string.digits + "=;" + SPAN_SEPARATOR))


# ---- registry ------------------------------------------------------------------------

TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (CopyTask, ReverseTask, SortTask, AddTask, DatesTask, BracketsTask, KvSpanTask)
}


def make_task(name: str, **options: Any) -> Task:
    """Build a task from the registry.

    Args:
        name: one of TASKS ("copy", "reverse", "sort", "add", "dates", "brackets", "kv_span").
        **options: the task's dataclass fields, e.g. max_len=10 or max_digits=3.

    Returns:
        The task instance.

    Raises:
        ValueError: unknown task name, unknown option, or invalid option value.
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of: {', '.join(sorted(TASKS))}")
    cls = TASKS[name]
    valid = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"task {name!r} got unknown option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(valid) or '(none)'}"
        )
    return cls(**options)


# ---- splits ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Splits:
    """Three lists of examples whose inputs (task.key) are pairwise distinct."""

    train: list[Any]
    val: list[Any]
    test: list[Any]


def make_splits(
    task: Task,
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int = 0,
    max_draws: int | None = None,
) -> Splits:
    """Draw n_train + n_val + n_test examples with distinct inputs, then cut them.

    Examples are drawn in order from `np.random.default_rng(seed)`, repeats of an
    input already seen are skipped, and the first n_train go to train, the next
    n_val to val, the rest to test. So no input appears in two splits (or twice in
    one), and train stays the same when only n_val or n_test change.

    Args:
        task: a Task (see `make_task`).
        n_train, n_val, n_test: split sizes (>= 0).
        seed: fixes the data.
        max_draws: give up after this many draws (default 100 * total + 10_000).

    Returns:
        Splits(train, val, test).

    Raises:
        ValueError: the total exceeds `task.num_distinct()` (the task cannot produce
            that many distinct inputs: lower the counts or enlarge the task), or the
            draw budget ran out first (the task's space is nearly exhausted).
    """
    sizes = {"n_train": n_train, "n_val": n_val, "n_test": n_test}
    for label, n in sizes.items():
        if n < 0:
            raise ValueError(f"make_splits: {label} must be >= 0, got {n}")
    total = n_train + n_val + n_test
    capacity = task.num_distinct()
    described = f"task {task.name!r} ({_describe_options(task)})"
    if capacity is not None and total > capacity:
        raise ValueError(
            f"{described} has only {capacity} distinct inputs but {total} examples were "
            f"requested (train={n_train}, val={n_val}, test={n_test}); lower the counts "
            "or enlarge the task (e.g. max_len, max_digits)"
        )
    budget = max_draws if max_draws is not None else 100 * total + 10_000
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    examples: list[Any] = []
    draws = 0
    while len(examples) < total:
        if draws >= budget:
            raise ValueError(
                f"{described}: found only {len(examples)} distinct inputs of the {total} "
                f"requested after {draws} draws; the task's input space is nearly "
                "exhausted, so lower the counts or enlarge the task"
            )
        example = task.sample(rng)
        draws += 1
        key = task.key(example)
        if key not in seen:
            seen.add(key)
            examples.append(example)
    return Splits(
        train=examples[:n_train],
        val=examples[n_train : n_train + n_val],
        test=examples[n_train + n_val :],
    )


def _describe_options(task: Task) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in task.options().items()) or "no options"
