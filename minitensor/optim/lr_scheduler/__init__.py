"""Learning-rate schedulers, as ``torch.optim.lr_scheduler``, one family per file:

    base        LRScheduler (torch's stepping rules)
    lambda_lr   LambdaLR, and the Transformer schedules noam_lr / NoamLR,
                cosine_with_warmup / WarmupCosineLR
    decay       StepLR, MultiStepLR, LinearLR, CosineAnnealingLR (chainable, closed forms)
    one_cycle   OneCycleLR
    plateau     ReduceLROnPlateau (steps with a metric)
    sequential  SequentialLR (one scheduler after another at milestones)

Call ``optimizer.step()`` then ``scheduler.step()`` once per epoch (per batch for
OneCycleLR and the Transformer schedules); ``get_last_lr()`` gives the current rates.
"""
from .base import LRScheduler
from .decay import CosineAnnealingLR, LinearLR, MultiStepLR, StepLR
from .lambda_lr import (LambdaLR, NoamLR, TransformerWarmup, WarmupCosineLR,
                        cosine_with_warmup, noam_lr)
from .one_cycle import OneCycleLR
from .plateau import ReduceLROnPlateau
from .sequential import SequentialLR

_LRScheduler = LRScheduler  # torch's old name, still subclassed by older code

__all__ = ["LRScheduler", "LambdaLR", "NoamLR", "TransformerWarmup", "WarmupCosineLR",
           "noam_lr", "cosine_with_warmup", "StepLR", "MultiStepLR", "LinearLR",
           "CosineAnnealingLR", "OneCycleLR", "ReduceLROnPlateau", "SequentialLR"]
