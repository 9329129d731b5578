"""Utilities around the core, under torch's paths: ``minitensor.utils.data`` (datasets,
batching and shuffling: ``Dataset``, ``TensorDataset``, ``DataLoader``)."""
from . import data

__all__ = ["data"]
