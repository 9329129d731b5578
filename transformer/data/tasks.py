"""Synthetic tasks generated from a seed, and train/val/test splits that never overlap.

Every task is a small frozen dataclass whose fields are its options. It draws one
example at a time from a `numpy.random.Generator`, so a seed fixes the data:

    seq2seq   (source, target) strings   copy, reverse, sort, add, dates
    classify  (text, label) with label 0/1   brackets
    span      SpanExample(context, query, start, end)   kv_span

The tasks live one family per module (strings.py, dates.py, brackets.py, span.py; their
base class in task_base.py). Here: `make_task(name, **options)` builds one from the
`TASKS` registry and
`make_splits(task, n_train, n_val, n_test, seed)` draws distinct examples for the
three splits. `task.vocab()` is a char vocabulary that covers every character the
task can produce, shared by source and target, so no split ever meets UNK.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from .brackets import BracketsTask
from .dates import DatesTask
from .span import KvSpanTask, SpanExample
from .strings import AddTask, CopyTask, ReverseTask, SortTask
from .task_base import Task

Example = Union[tuple[str, str], tuple[str, int], SpanExample]


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
