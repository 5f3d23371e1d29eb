"""Turning evaluations into a recommendation whose every reason cites a measured figure."""

from adaptlab.decide.recommend import Decision, paired_difference, pairwise, recommend

__all__ = ["Decision", "paired_difference", "pairwise", "recommend"]
