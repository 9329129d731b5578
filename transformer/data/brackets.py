"""The brackets task (classify): is a string of ``()[]{}`` balanced? Negatives are near misses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .task_base import Task, check_range


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
        check_range(self.name, "min_len", self.min_len, "max_len", self.max_len, minimum=1)
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
