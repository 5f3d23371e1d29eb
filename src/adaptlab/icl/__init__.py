"""In-context learning: the weights stay; the prompt carries the instruction and examples."""

from adaptlab.icl.strategies import FewShot, ZeroShot

__all__ = ["FewShot", "ZeroShot"]
