"""The learning-rate schedule and the optimizer it drives (AdamW, decay on matrices only)."""
from __future__ import annotations

from minitensor import nn, optim
from minitensor.optim.lr_scheduler import cosine_with_warmup, noam_lr

from .config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of optimizer step `step` (1-based: the first update is step 1).

    noam: the paper's d_model^-0.5 * min(step^-0.5, step * warmup^-1.5), rescaled so
    that its peak (at step == warmup) is `lr` (d_model then cancels out).
    cosine: linear warmup, then cosine decay to lr * min_lr_ratio at `steps`
    (`optim.lr_scheduler.cosine_with_warmup`). constant: linear warmup, then lr.
    """
    if cfg.schedule == "noam":
        return cfg.lr * noam_lr(step, 1, cfg.warmup) / noam_lr(cfg.warmup, 1, cfg.warmup)
    if cfg.schedule == "cosine":
        total = max(cfg.steps, cfg.warmup + 1)
        return cfg.lr * cosine_with_warmup(step - 1, cfg.warmup, total, cfg.min_lr_ratio)
    return cfg.lr * min(1.0, step / cfg.warmup) if cfg.warmup else cfg.lr


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> optim.Optimizer:
    """AdamW with two parameter groups: weight decay on ndim >= 2 only (nanoGPT's rule)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps,
                       weight_decay=cfg.weight_decay)
