"""A linear probe: logistic regression, trained with minitensor, on frozen sentence embeddings.

The baseline that fine-tuning must beat: the encoder is not trained, only a Linear
layer on top of its (standardised) embeddings. The L2 penalty is picked on the
validation split; the accuracy reported is the held-out test split's.

    python -m transformer.pretrained.probe          # the intents task, all-MiniLM-L6-v2
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

import minitensor as mt
from minitensor import functional as F
from minitensor import nn, optim

from .intents import IntentsTask
from .sentence import SentenceEncoder

PENALTIES = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclass
class ProbeResult:
    penalty: float          # the L2 strength picked on the validation split
    val_accuracy: float
    test_accuracy: float


def fit_logistic_regression(x: np.ndarray, y: np.ndarray, num_classes: int, penalty: float,
                            steps: int = 300, lr: float = 0.05, seed: int = 0) -> nn.Linear:
    """Full-batch softmax regression: x (N, D) float, y (N,) int -> a trained Linear(D, C).

    Loss: mean cross-entropy + penalty * ||W||^2 (the bias is not penalised). Adam.
    """
    mt.manual_seed(seed)
    head = nn.Linear(x.shape[1], num_classes, dtype=x.dtype)
    opt = optim.Adam(head.parameters(), lr=lr)
    xs = mt.tensor(x)
    for _ in range(steps):
        loss = F.cross_entropy(head(xs), y) + penalty * (head.weight * head.weight).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head


def accuracy(head: nn.Linear, x: np.ndarray, y: np.ndarray) -> float:
    with mt.no_grad():
        return float((head(mt.tensor(x)).data.argmax(-1) == y).mean())


def linear_probe(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                 test: tuple[np.ndarray, np.ndarray], num_classes: int) -> ProbeResult:
    """Standardise with the training statistics, pick the penalty on val, report test."""
    mean, std = train[0].mean(0), train[0].std(0) + 1e-6
    scale = lambda x: ((x - mean) / std).astype(np.float64)   # noqa: E731
    best = None
    for penalty in PENALTIES:
        head = fit_logistic_regression(scale(train[0]), train[1], num_classes, penalty)
        val_acc = accuracy(head, scale(val[0]), val[1])
        if best is None or val_acc > best[1]:
            best = (penalty, val_acc, head)
    penalty, val_acc, head = best
    return ProbeResult(penalty, val_acc, accuracy(head, scale(test[0]), test[1]))


def probe_intents(encoder: SentenceEncoder | None = None, seed: int = 0) -> ProbeResult:
    """The linear probe on the intents task (the trainer's splits for that seed)."""
    encoder = encoder or SentenceEncoder.from_pretrained()
    task = IntentsTask()
    parts = []
    for examples in task.splits(seed):
        emb = encoder.encode([t for t, _ in examples])                      # (n, D), frozen
        parts.append((emb, np.array([y for _, y in examples], dtype=np.int64)))
    return linear_probe(*parts, num_classes=len(task.labels))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transformer.pretrained.probe",
                                     description="Linear probe on frozen all-MiniLM-L6-v2 embeddings "
                                                 "(intents task): held-out accuracy.")
    parser.add_argument("--seed", type=int, default=0, help="the split seed (as train --seed)")
    args = parser.parse_args(argv)
    r = probe_intents(seed=args.seed)
    print(f"linear probe (frozen embeddings, L2 {r.penalty:g} picked on val): "
          f"val accuracy {100 * r.val_accuracy:.2f}%, test accuracy {100 * r.test_accuracy:.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
