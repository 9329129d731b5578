"""String-to-string tasks (seq2seq): copy, reverse, sort, and add (``"12+345"`` -> ``"357"``)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .task_base import Task, check_range, random_string


@dataclass(frozen=True)
class _StringTask(Task):
    """Random strings over `alphabet` with lengths in [min_len, max_len]."""

    min_len: int = 1
    max_len: int = 16
    alphabet: str = string.ascii_lowercase

    kind: ClassVar[str] = "seq2seq"

    def __post_init__(self) -> None:
        check_range(self.name, "min_len", self.min_len, "max_len", self.max_len, minimum=1)
        if len(set(self.alphabet)) != len(self.alphabet) or not self.alphabet:
            raise ValueError(f"task {self.name!r}: alphabet must be non-empty with no repeats")

    def transform(self, s: str) -> str:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> tuple[str, str]:
        s = random_string(rng, self.alphabet, self.min_len, self.max_len)
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
