"""What a request's `model` names, made ready to answer: one base model in memory, a solver per task version.

    the base model's name    plain chat with no adaptation (every adapter off)
    TASK                     the task's promoted version
    TASK@vN                  that version

In-context versions rebuild their prompt (instruction, selector and example pool from
the registry); fine-tuned versions load their LoRA adapter into the one base model as a
named PEFT adapter, switched on per request; the baselines load their JSON. Files are
sha256-verified before anything is loaded; names are validated before any file is touched.
"""

from __future__ import annotations

import json
import threading

from adaptlab.data import Dataset, Example
from adaptlab.errors import AdaptlabError
from adaptlab.models import BaseModel
from adaptlab.registry import Registry, parse_ref
from adaptlab.task import Task

SERVABLE = ("zero_shot", "few_shot", "lora", "majority", "embed_classifier")


class ModelNotFound(AdaptlabError):
    """The request names no servable model."""


class ServedModels:
    def __init__(self, base: BaseModel, registry: Registry, embedder=None):
        self.base = base
        self.registry = registry
        self.embedder = embedder
        self._solvers: dict[str, object] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The base model, every task with a promoted version, and every version."""
        versions = self.registry.versions()
        return [self.base.name] + sorted({v.task for v in versions if v.promoted}) + [v.ref for v in versions if v.strategy in SERVABLE]

    def find(self, name: str):
        """None for the base model itself, else the registry version `name` resolves to; nothing is loaded."""
        if name == self.base.name:
            return None
        try:
            parse_ref(name)
            return self.registry.get(name)
        except AdaptlabError:
            raise ModelNotFound(f"the model {name!r} does not exist; GET /v1/models lists the ones served") from None

    def solver(self, name: str):
        """None for the base model itself, else the solver of the version `name` resolves to (loaded once, files verified)."""
        version = self.find(name)
        if version is None:
            return None
        with self._lock:
            if version.ref not in self._solvers:
                self._solvers[version.ref] = self._load(self.registry.get(version.ref, verify=True))
            return self._solvers[version.ref]

    def _load(self, version):
        from adaptlab.engine.lm_solver import LMSolver

        if version.strategy not in SERVABLE:
            raise ModelNotFound(f"{version.ref} is a {version.strategy} solver, which is not served here; export it (`adaptlab export`) and serve it with vLLM")
        if version.strategy == "embed_classifier":
            from adaptlab.baselines import EmbedClassifierSolver

            return EmbedClassifierSolver.load(version.folder, self.embedder)
        if version.strategy == "majority":
            from adaptlab.baselines import MajoritySolver

            return MajoritySolver.load(version.folder)
        task = Task.from_dict(json.loads((version.folder / "task.json").read_text(encoding="utf-8")))
        if version.strategy == "lora":
            return LMSolver(version.ref, self.base, task, adapter=self._load_adapter(version))
        config = version.lineage.get("strategy") or {}
        if version.strategy == "zero_shot":
            from adaptlab.icl import ZeroShot

            return ZeroShot(self.base).fit(task, Dataset([]))
        from adaptlab.icl import FewShot

        pool = json.loads((version.folder / "pool.json").read_text(encoding="utf-8"))
        examples = Dataset([Example(e["input"], e["output"], e["line"]) for e in pool["examples"]], pool.get("source", "pool"))
        return FewShot(self.base, k=config.get("k", 4), selector=config.get("selector", "similar"), seed=version.lineage.get("seed", 0), embedder=self.embedder, lines=config.get("lines"), exact_k=config.get("exact_k", False)).fit(task, examples)

    def _load_adapter(self, version) -> str:
        """Load the version's adapter into the shared base model under its own name (PEFT multi-adapter).

        A load that fails leaves nothing behind: PEFT keeps a failed adapter's name (a retry
        would find it and serve an adapter with no weights), and a failed first adapter
        leaves its layers wrapped around the base model's. Both are undone here.
        """
        from peft import PeftConfig, PeftModel

        name = f"{version.task}_v{version.version}".replace(".", "_").replace("-", "_")
        model = self.base.model
        if isinstance(model, PeftModel) and name in model.peft_config:
            return name
        try:
            config = PeftConfig.from_pretrained(str(version.folder))
        except Exception as exc:
            raise AdaptlabError(f"{version.ref}: adapter_config.json cannot be read ({type(exc).__name__})") from None
        wrapped = model if isinstance(model, PeftModel) else PeftModel(model, config, adapter_name=name)
        try:
            wrapped.load_adapter(str(version.folder), adapter_name=name)
        except Exception as exc:
            if wrapped is model:
                if name in model.peft_config:
                    model.delete_adapter(name)
            else:
                wrapped.unload()  # the base model's own layers back in place
            raise AdaptlabError(f"{version.ref}: the adapter does not load onto base model {self.base.name!r} ({type(exc).__name__}); was it trained on another base?") from None
        self.base.model = wrapped
        self.base.model.eval()
        return name
