"""What a request's `model` names, made ready to answer: one base model in memory, a solver per task version.

    the base model's name    plain chat with no adaptation (every adapter off)
    TASK                     the task's promoted version
    TASK@vN                  that version

Each version is loaded by its own kind (adaptlab.kinds), on the model it was fitted on:
prompts and LoRA adapters on the served base model (adapters as named PEFT adapters,
switched on per request), a full fine-tune as its own model (at most `max_models` of
them in memory, least recently used out), a version fitted on an endpoint by
forwarding its prompts there. A version fitted on another base model is refused,
naming both. Files are sha256-verified before anything is loaded; names are validated
before any file is touched.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

from adaptlab import kinds
from adaptlab.errors import AdaptlabError
from adaptlab.kinds.context import check_base, client_for
from adaptlab.models import BaseModel
from adaptlab.registry import Registry, parse_ref
from adaptlab.registry.store import changed_documents
from adaptlab.task import Task


class ModelNotFound(AdaptlabError):
    """The request names no servable model."""


class ServedModels:
    """The registry's versions as solvers over one base model; also the LoadContext their kinds load with."""

    def __init__(self, base: BaseModel, registry: Registry, embedder=None, max_models: int = 1):
        self.base = base
        self.registry = registry
        self.embedder = embedder
        self.max_models = max_models  # whole fine-tuned models held beside the base (each as large as it)
        self._solvers: dict[str, object] = {}
        self._own: OrderedDict[str, BaseModel] = OrderedDict()
        self._clients: dict[str, object] = {}
        self._whole: dict[str, bool] = {}  # version ref -> reads_whole
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The base model, every task with a promoted version, and every version."""
        versions = self.registry.versions()
        servable = {k.name for k in kinds.kinds() if k.servable}
        return (
            [self.base.name]
            + sorted({v.task for v in versions if v.promoted})
            + [v.ref for v in versions if v.strategy in servable]
        )

    def stale(self) -> dict[str, list[str]]:
        """Served names (versions, and tasks by their promoted version) whose documents changed since: name -> changed
        files."""
        versions = self.registry.versions()
        by_ref = {v.ref: changed for v in versions if (changed := changed_documents(v))}
        return by_ref | {v.task: by_ref[v.ref] for v in versions if v.promoted and v.ref in by_ref}

    def find(self, name: str):
        """None for the base model itself, else the registry version `name` resolves to; nothing is loaded."""
        if name == self.base.name:
            return None
        try:
            parse_ref(name)
            return self.registry.get(name)
        except AdaptlabError:
            raise ModelNotFound(f"the model {name!r} does not exist; GET /v1/models lists the ones served") from None

    def reads_whole(self, version) -> bool:
        """Whether a registry version classifies a conversation whole (its task is labelled, as its solver.json says):
        read once, before the version is loaded; False when it cannot be read (loading the version says why)."""
        if version.ref not in self._whole:
            try:
                info = json.loads((Path(version.folder) / "solver.json").read_text(encoding="utf-8"))
                self._whole[version.ref] = Task.from_dict(info["task"]).spec.labelled
            except (OSError, ValueError, KeyError, TypeError, AttributeError, AdaptlabError):
                return False
        return self._whole[version.ref]

    def solver(self, name: str):
        """None for the base model itself, else the solver of the version `name` resolves to (loaded once, files
        verified)."""
        version = self.find(name)
        if version is None:
            return None
        with self._lock:
            if version.ref not in self._solvers:
                version = self.registry.get(version.ref, verify=True)
                kind = kinds.kind(version.strategy)
                if not kind.servable:
                    raise ModelNotFound(f"{version.ref} is a {kind.name} solver, which is not served here")
                self._solvers[version.ref] = kind.load(version.folder, self)
            return self._solvers[version.ref]

    # --- LoadContext: where a saved solver finds its model ---

    def base_for(self, info: dict):
        """The served base model, or the endpoint client, a solver was fitted on; BaseMismatch for any other model."""
        if isinstance(info.get("base_model"), dict):
            key = repr(sorted(info["endpoint"].items()))
            if key not in self._clients:
                self._clients[key] = client_for(info)
            return self._clients[key]
        check_base(info, self.base)
        return self.base

    def own_model(self, folder: Path) -> BaseModel:
        """A full fine-tune's own model, loaded once; beyond `max_models`, the least recently used one is dropped."""
        from adaptlab.models import load_base_model

        key = str(Path(folder).resolve())
        if key in self._own:
            self._own.move_to_end(key)
            return self._own[key]
        if len(self._own) >= self.max_models:
            dropped, _ = self._own.popitem(last=False)
            self._solvers = {
                ref: s for ref, s in self._solvers.items() if getattr(getattr(s, "base", None), "name", None) != dropped
            }
        self._own[key] = load_base_model(key, device=self.base.device)
        return self._own[key]
