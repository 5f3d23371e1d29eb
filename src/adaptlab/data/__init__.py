"""Labeled examples: reading files, validating them, and the Dataset they become."""

from adaptlab.data.dataset import Dataset, Example
from adaptlab.data.leakage import check_leakage
from adaptlab.data.load import load_dataset
from adaptlab.data.split import split_dev

__all__ = ["Dataset", "Example", "check_leakage", "load_dataset", "split_dev"]
