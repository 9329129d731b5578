"""Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) and learning-rate schedules.

    opt = optim.AdamW(model.parameters(), lr=3e-4)
    sched = optim.lr_scheduler.WarmupCosineLR(opt, warmup=100, total=5000)
    loss.backward(); opt.step(); sched.step(); opt.zero_grad()
"""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
