"""Neural-network building blocks: ``Module``, ``Parameter``, layers, containers, init.

    from minitensor import nn
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    model.load_state_dict(torch_state_dict_as_numpy)   # same keys and shapes as torch
"""
from . import functional, init, utils
from .layers import GELU, Dropout, Embedding, Identity, LayerNorm, Linear, ReLU
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .activations import Flatten, LogSoftmax, SiLU, Sigmoid, Softmax, Tanh
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module, Parameter

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Linear",
           "Embedding", "LayerNorm", "Dropout", "ReLU", "GELU", "Identity", "IncompatibleKeys",
           "init", "utils", "functional", "ParameterList", "ParameterDict", "Softmax",
           "LogSoftmax", "Tanh", "Sigmoid", "SiLU", "Flatten", "CrossEntropyLoss", "NLLLoss",
           "MSELoss", "KLDivLoss", "BCEWithLogitsLoss"]
