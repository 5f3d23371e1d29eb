"""Turning evaluations into a recommendation whose every reason cites a measured figure."""

from adaptlab.decide.recommend import Decision, recommend
from adaptlab.decide.statistics import p_best, paired_difference, pairwise, power_summary

__all__ = ["Decision", "p_best", "paired_difference", "pairwise", "power_summary", "recommend"]
