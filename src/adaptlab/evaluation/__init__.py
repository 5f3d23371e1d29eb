"""Measuring a fitted solver on held-out examples: quality, uncertainty, time, tokens, memory."""

from adaptlab.evaluation.evaluate import Evaluation, evaluate

__all__ = ["Evaluation", "evaluate"]
