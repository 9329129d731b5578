"""Evaluation metrics on plain NumPy arrays and strings: no tensors, no autograd.

    token_accuracy   share of non-PAD target positions predicted right (teacher forcing)
    exact_match      share of sequences (or strings) reproduced exactly
    bleu             corpus BLEU via sacrebleu (an optional dependency)
    perplexity       exp(mean cross-entropy in nats)
    accuracy         share of labels predicted right (classification)
    span_exact_match share of (start, end) spans predicted exactly (extractive QA)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def token_accuracy(pred: np.ndarray, target: np.ndarray, ignore_index: int = 0) -> tuple[int, int]:
    """Count the non-ignored target positions where ``pred`` equals ``target``.

    Args:
        pred: (B, T) int predicted ids (e.g. logits.argmax(-1)).
        target: (B, T) int target ids.
        ignore_index: positions where target == ignore_index (PAD) are not counted.

    Returns:
        (correct, total); the accuracy is correct / total. Counts, not a ratio, so
        batches of different sizes add up exactly.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"token_accuracy: pred {pred.shape} and target {target.shape} differ")
    keep = target != ignore_index
    return int(((pred == target) & keep).sum()), int(keep.sum())


def sequence_exact_match(pred: np.ndarray, target: np.ndarray, ignore_index: int = 0) -> tuple[int, int]:
    """Count the rows of ``target`` whose every non-ignored position ``pred`` gets right.

    Args:
        pred, target: (B, T) int ids, as in `token_accuracy`.
        ignore_index: PAD id; padded positions do not have to match.

    Returns:
        (correct rows, rows).
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"sequence_exact_match: pred {pred.shape} and target {target.shape} differ")
    ok = (pred == target) | (target == ignore_index)  # (B, T)
    return int(ok.all(axis=1).sum()), int(target.shape[0])


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of predicted strings equal to their reference (0.0 for no examples)."""
    if len(predictions) != len(references):
        raise ValueError(f"exact_match: {len(predictions)} predictions but {len(references)} references")
    if not references:
        return 0.0
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


def accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Share of predicted labels equal to the true labels (0.0 for no examples)."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    if pred.shape != labels.shape:
        raise ValueError(f"accuracy: pred {pred.shape} and labels {labels.shape} differ")
    return float((pred == labels).mean()) if labels.size else 0.0


def span_exact_match(
    start_pred: np.ndarray, end_pred: np.ndarray, start: np.ndarray, end: np.ndarray
) -> float:
    """Share of examples whose predicted (start, end) equals the true span exactly."""
    start_pred, end_pred = np.asarray(start_pred), np.asarray(end_pred)
    start, end = np.asarray(start), np.asarray(end)
    if not (start_pred.shape == end_pred.shape == start.shape == end.shape):
        raise ValueError("span_exact_match: all four arrays must have the same shape")
    return float(((start_pred == start) & (end_pred == end)).mean()) if start.size else 0.0


def best_span(start_logits: np.ndarray, end_logits: np.ndarray, allowed: np.ndarray,
              max_answer_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The (start, end) pair with the highest start + end score, start <= end, per row.

    Args:
        start_logits, end_logits: (B, S) scores.
        allowed: (B, S) bool, True where a span may begin or end (the context).
        max_answer_len: longest span considered (None: any).

    Returns:
        start, end: (B,) int64 token positions (end inclusive).
    """
    s = np.where(allowed, start_logits, -np.inf)  # (B, S)
    e = np.where(allowed, end_logits, -np.inf)  # (B, S)
    n = s.shape[1]
    score = s[:, :, None] + e[:, None, :]  # (B, S_start, S_end)
    i, j = np.indices((n, n))
    valid = j >= i
    if max_answer_len is not None:
        valid &= j - i < max_answer_len
    score = np.where(valid[None], score, -np.inf)
    flat = score.reshape(score.shape[0], -1).argmax(axis=1)  # (B,)
    return (flat // n).astype(np.int64), (flat % n).astype(np.int64)


def perplexity(mean_nll: float) -> float:
    """exp(mean negative log-likelihood per token, in nats); inf when it overflows."""
    try:
        return math.exp(mean_nll)
    except OverflowError:
        return math.inf


class SacreBleuMissing(ImportError):
    """sacrebleu is not installed; BLEU is optional."""


def bleu(predictions: Sequence[str], references: Sequence[str], tokenize: str = "char") -> float:
    """Corpus BLEU (0-100) of predictions against one reference each, via sacrebleu.

    Args:
        predictions: hypothesis strings.
        references: one reference string per hypothesis.
        tokenize: sacrebleu tokenizer; "char" suits the char-level toy tasks (an ISO
            date is one "word" to the default 13a tokenizer, so BLEU would be all or nothing).

    Returns:
        The corpus BLEU score.

    Raises:
        SacreBleuMissing: sacrebleu is not installed (``pip install sacrebleu``).
    """
    try:
        import sacrebleu
    except ImportError:  # pragma: no cover - depends on the environment
        raise SacreBleuMissing(
            "BLEU needs the optional package sacrebleu: pip install sacrebleu "
            "(or pip install 'minitensor[bleu]')"
        ) from None
    if len(predictions) != len(references):
        raise ValueError(f"bleu: {len(predictions)} predictions but {len(references)} references")
    if not references:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)], tokenize=tokenize).score)


def bleu_available() -> bool:
    """True when sacrebleu imports."""
    try:
        import sacrebleu  # noqa: F401
    except ImportError:  # pragma: no cover
        return False
    return True
