"""Labeled examples: reading files, validating them, and the Dataset they become."""

from adaptlab.data.dataset import Dataset, Example
from adaptlab.data.load import load_dataset

__all__ = ["Dataset", "Example", "load_dataset"]
