"""From a strategy's config to the Strategy object; the one place that knows every kind."""

from __future__ import annotations

from adaptlab.config import EmbedClassifierConfig, FewShotConfig, FullConfig, LoraConfig, MajorityConfig, RemoteModelConfig, StrategyConfig, ZeroShotConfig
from adaptlab.data import Dataset
from adaptlab.models import BaseModel
from adaptlab.solver import Strategy


class ModelSource:
    """The models strategies run on: the experiment's base model, and any other a strategy names (each loaded once)."""

    def __init__(self, default: BaseModel):
        self.default = default
        self.local = {default.name: default}
        self.remote = []

    def get(self, choice: str | RemoteModelConfig | None):
        """A BaseModel for a local model (None: the experiment's), a ChatClient for an endpoint."""
        if choice is None:
            return self.default
        if isinstance(choice, RemoteModelConfig):
            from adaptlab.remote import ChatClient

            client = ChatClient(choice)
            self.remote.append(client)
            return client
        if choice not in self.local:
            from adaptlab.models import load_base_model

            self.local[choice] = load_base_model(choice, device=self.default.device)
        return self.local[choice]

    def close(self) -> None:
        for client in self.remote:
            client.close()


def make_strategy(config: StrategyConfig, models: ModelSource, seed: int, on_step=None, dev: Dataset | None = None) -> Strategy:
    """The Strategy a config entry names; `on_step` receives training progress, `dev` scores fine-tuning checkpoints."""
    from adaptlab.baselines import EmbedClassifier, Majority
    from adaptlab.finetune import FineTune
    from adaptlab.icl import FewShot, ZeroShot

    if isinstance(config, ZeroShotConfig):
        return ZeroShot(models.get(config.model))
    if isinstance(config, FewShotConfig):
        return FewShot(models.get(config.model), k=config.k, selector=config.selector, seed=seed, lines=config.lines, exact_k=config.exact_k)
    if isinstance(config, (LoraConfig, FullConfig)):
        return FineTune(models.get(config.model), config, seed=seed, on_step=on_step, dev=dev)
    if isinstance(config, MajorityConfig):
        return Majority()
    if isinstance(config, EmbedClassifierConfig):
        return EmbedClassifier(seed=seed)
    raise TypeError(f"no strategy for {config!r}")
