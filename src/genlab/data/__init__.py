"""Datasets: registry, verified files, readers, splits, in-memory tensors and batches."""

from genlab.data.batches import Batches, iterate, to_float, to_uint8
from genlab.data.datasets import ImageSet, load, splits_of
from genlab.data.registry import DATASETS, get_spec

__all__ = ["Batches", "DATASETS", "ImageSet", "get_spec", "iterate", "load", "splits_of", "to_float", "to_uint8"]
