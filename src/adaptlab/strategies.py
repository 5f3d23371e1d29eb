"""From a strategy's config to the Strategy object; the one place that knows every kind."""

from __future__ import annotations

from adaptlab.config import EmbedClassifierConfig, FewShotConfig, FullConfig, LoraConfig, MajorityConfig, StrategyConfig, ZeroShotConfig
from adaptlab.models import BaseModel
from adaptlab.solver import Strategy


def make_strategy(config: StrategyConfig, base: BaseModel, seed: int, on_step=None) -> Strategy:
    """The Strategy a config entry names; `on_step` receives training progress."""
    from adaptlab.baselines import EmbedClassifier, Majority
    from adaptlab.finetune import FineTune
    from adaptlab.icl import FewShot, ZeroShot

    if isinstance(config, ZeroShotConfig):
        return ZeroShot(base)
    if isinstance(config, FewShotConfig):
        return FewShot(base, k=config.k, selector=config.selector, seed=seed, lines=config.lines, exact_k=config.exact_k)
    if isinstance(config, (LoraConfig, FullConfig)):
        return FineTune(base, config, seed=seed, on_step=on_step)
    if isinstance(config, MajorityConfig):
        return Majority()
    if isinstance(config, EmbedClassifierConfig):
        return EmbedClassifier(seed=seed)
    raise TypeError(f"no strategy for {config!r}")
