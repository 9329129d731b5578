"""The kv_span task (span extraction): find a key's value in ``"a=17;qx=5;b=203"``.

An example is a `SpanExample` (a character span of its context); the model reads
``query + SPAN_SEPARATOR + context`` (see `encode_span` in batching.py).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from .task_base import Task, check_range, random_string

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
        check_range(self.name, "min_pairs", self.min_pairs, "max_pairs", self.max_pairs, minimum=1)
        if self.max_key_len < 1 or self.max_value_digits < 1:
            raise ValueError("task 'kv_span': max_key_len and max_value_digits must be >= 1")
        n_keys = sum(26**k for k in range(1, self.max_key_len + 1))
        if self.max_pairs > n_keys:
            raise ValueError(f"task 'kv_span': max_pairs={self.max_pairs} exceeds the {n_keys} possible keys")

    def sample(self, rng: np.random.Generator) -> SpanExample:
        n = int(rng.integers(self.min_pairs, self.max_pairs + 1))
        keys: list[str] = []
        while len(keys) < n:  # distinct keys, so the answer is unique
            k = random_string(rng, string.ascii_lowercase, 1, self.max_key_len)
            if k not in keys:
                keys.append(k)
        values = [random_string(rng, string.digits, 1, self.max_value_digits) for _ in keys]
        q = int(rng.integers(0, n))
        context = ";".join(f"{k}={v}" for k, v in zip(keys, values))
        start = sum(len(k) + len(v) + 2 for k, v in zip(keys[:q], values[:q])) + len(keys[q]) + 1
        return SpanExample(context, keys[q], start, start + len(values[q]) - 1)

    def key(self, example: SpanExample) -> str:
        return example.query + SPAN_SEPARATOR + example.context

    @property
    def chars(self) -> str:
        return "".join(sorted(string.ascii_lowercase + string.digits + "=;" + SPAN_SEPARATOR))
