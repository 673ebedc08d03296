"""Datasets for the scaling experiments: loading by name, validation splits (augmentation: :mod:`.augment`).

Importing this package does not import torch; :mod:`scalelab.data.augment` does.
"""

from scalelab.data.dataset import ImageDataset
from scalelab.data.registry import data_root, dataset_names, load_dataset
from scalelab.data.splits import SPLIT_NAMES, Splits, split_validation

__all__ = [
    "SPLIT_NAMES",
    "ImageDataset",
    "Splits",
    "data_root",
    "dataset_names",
    "load_dataset",
    "split_validation",
]
