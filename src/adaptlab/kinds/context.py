"""What a kind gets to build a Strategy (`BuildContext`) and to load a saved Solver (`LoadContext`).

A saved LLM solver records the identity of the model it was fitted on: a local model's
name and the sha256 of its weights, or an endpoint's base_url and model name (never a
key). `LoadContext.base_for` turns that identity back into a model, and refuses one
that is not the model the solver was measured on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from adaptlab.config import RemoteModelConfig
from adaptlab.data import Dataset
from adaptlab.errors import AdaptlabError
from adaptlab.models import BaseModel


class BaseMismatch(AdaptlabError):
    """A saved solver was fitted on another model than the one offered to load it on."""


class ModelSource:
    """The models strategies run on: the experiment's (a local BaseModel, or a ChatClient when it is an endpoint),
    and any other a strategy names (each loaded once)."""

    def __init__(self, default):
        self.default = default
        self.local = {default.name: default} if isinstance(default, BaseModel) else {}
        self.remote = [] if isinstance(default, BaseModel) else [default]

    def get(self, choice: str | RemoteModelConfig | None):
        """A BaseModel for a local model (a name, a {path|id, dtype, device} entry; None: the experiment's), a
        ChatClient for an endpoint."""
        if choice is None:
            return self.default
        if isinstance(choice, RemoteModelConfig):
            from adaptlab.remote import ChatClient

            client = ChatClient(choice)
            self.remote.append(client)
            return client
        key = choice if isinstance(choice, str) else choice.spec()
        if key not in self.local:
            from adaptlab.models import load_base_model

            self.local[key] = load_base_model(
                key, device=self.default.device if isinstance(self.default, BaseModel) else None
            )
        return self.local[key]

    def close(self) -> None:
        for client in self.remote:
            client.close()


def experiment_models(choice) -> ModelSource:
    """The ModelSource of an experiment's `model:`: its local model loaded, or a client of its endpoint."""
    if isinstance(choice, RemoteModelConfig):
        from adaptlab.remote import ChatClient

        return ModelSource(ChatClient(choice))
    from adaptlab.models import load_base_model

    return ModelSource(load_base_model(choice))


@dataclass
class BuildContext:
    """Everything a kind's `build` may use; kinds take what they need."""

    models: ModelSource | None = None
    seed: int = 0
    on_step: Callable | None = None  # training progress (a StepReport per step)
    dev: Dataset | None = None  # a separate dev file; fine-tuning otherwise holds out part of train
    embedder: Any = None
    documents: Any = None  # knowledge tasks: the experiment's documents (adaptlab.knowledge.Documents)
    extra: dict = field(default_factory=dict)  # what a third-party kind needs from its caller

    def model(self, choice=None):
        assert self.models is not None  # only LLM kinds ask for a model, and they are built with `models`
        return self.models.get(choice)


class LoadContext(Protocol):
    """Where a saved solver finds its model again (the server, export and `registry check` each provide one)."""

    embedder: Any

    def base_for(self, info: dict) -> Any: ...  # solver.json -> the BaseModel or ChatClient it was fitted on

    def own_model(self, folder: Path) -> BaseModel: ...  # a solver folder holding whole model weights, loaded


class LocalModels:
    """A LoadContext for one process: loads each local model named by a solver once, endpoints as clients."""

    def __init__(self, embedder=None, device: str | None = None):
        self.embedder = embedder
        self.device = device
        self.loaded: dict[tuple[str, str], BaseModel] = {}  # (name, dtype)

    def base_for(self, info: dict):
        if isinstance(info.get("base_model"), dict):
            return client_for(info)
        name, dtype = info["base_model"], info.get("base_dtype", "auto")  # the precision it was measured in
        if (name, dtype) not in self.loaded:
            from adaptlab.models import load_base_model

            self.loaded[name, dtype] = load_base_model({"path": name, "dtype": dtype}, device=self.device)
        check_base(info, self.loaded[name, dtype])
        return self.loaded[name, dtype]

    def own_model(self, folder: Path) -> BaseModel:
        from adaptlab.models import load_base_model

        return load_base_model(str(folder), device=self.device)


def client_for(info: dict):
    """The ChatClient of the endpoint a remote solver was fitted on (its key from the variable the config names)."""
    from adaptlab.remote import ChatClient

    return ChatClient(RemoteModelConfig(**info["endpoint"]))


def check_base(info: dict, base: BaseModel) -> None:
    """Refuse `base` unless it is the model `info` (solver.json) was fitted on: same weights, or same name when no hash
    was kept."""
    from adaptlab.models.base import weights_digest

    expected = info.get("base_sha256")
    if expected:
        found = weights_digest(base.name)["weights_sha256"]
        if found == expected:
            return
    elif info.get("base_model") == base.name:
        return
    fitted, offered = _shown(str(info.get("base_model"))), _shown(base.name)
    raise BaseMismatch(
        f"this version was fitted on base model {fitted!r}, not on {offered!r}: serve it with "
        f"`adaptlab serve --model` naming its base, or fit it again on {offered!r}"
    )


def _shown(name: str) -> str:
    """A model's name as messages show it: a folder's last part, never a whole path."""
    return Path(name).name if ("/" in name or "\\" in name) else name
