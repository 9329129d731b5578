"""`Task`: the base class of the synthetic tasks, and the helpers their options share.

Every task is a small frozen dataclass whose fields are its options. It draws one
example at a time from a `numpy.random.Generator`, so a seed fixes the data. The
tasks themselves: strings.py (copy, reverse, sort, add), dates.py, brackets.py,
span.py (kv_span); the registry and the splits: tasks.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from .vocab import Vocab


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


def check_range(task: str, lo_name: str, lo: int, hi_name: str, hi: int, minimum: int) -> None:
    if lo < minimum:
        raise ValueError(f"task {task!r}: {lo_name} must be >= {minimum}, got {lo}")
    if hi < lo:
        raise ValueError(f"task {task!r}: {hi_name}={hi} is smaller than {lo_name}={lo}")


def random_string(rng: np.random.Generator, alphabet: str, min_len: int, max_len: int) -> str:
    n = int(rng.integers(min_len, max_len + 1))
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=n))
