"""`LMSolver`: a base model (optionally with a LoRA adapter) prompted for one task.

Zero-shot, few-shot and fine-tuned solvers are all this one class; they differ
only in which examples ride along in the prompt (`shots`) and which adapter is on.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from adaptlab.data import Example
from adaptlab.engine.generate import generate
from adaptlab.engine.prompt import build_messages, encode_answer, encode_messages
from adaptlab.engine.scoring import label_logprobs
from adaptlab.errors import AdaptlabError
from adaptlab.models import BaseModel
from adaptlab.solver import Prediction, Progress
from adaptlab.task import Task


class ShotSelector(Protocol):
    """Chooses the examples placed before each query, best first."""

    def select(self, queries: list[str]) -> list[list[Example]]: ...

    def describe(self) -> dict: ...


class LMSolver:
    """Answers a task's queries with a (possibly adapted) causal LM.

    >>> solver = LMSolver("zero_shot", base, task)          # doctest: +SKIP
    >>> solver.predict(["my card never came"])[0].output     # doctest: +SKIP
    'card_arrival'
    """

    def __init__(self, strategy: str, base: BaseModel, task: Task, shots: ShotSelector | None = None, adapter: str | None = None, details: dict | None = None, max_new_tokens: int = 128):
        self.strategy = strategy
        self.base = base
        self.task = task
        self.shots = shots
        self.adapter = adapter
        self.details = details or {}
        self.max_new_tokens = max_new_tokens
        if task.kind == "classify":
            self._label_ids = [encode_answer(base.tokenizer, label, base.eot_id) for label in task.labels]

    def prompts(self, inputs: list[str]) -> tuple[list[list[int]], list[int]]:
        """Token ids of each query's prompt, and how many shots each one holds.

        Shots are dropped from the least relevant end until the prompt leaves room
        for the answer; a query that does not fit even alone is an error.
        """
        chosen = self.shots.select(inputs) if self.shots else [[] for _ in inputs]
        room = self.base.context_length - self._answer_room()
        prompts, counts = [], []
        for query, shots in zip(inputs, chosen):
            shots = list(shots)
            while True:
                ids = encode_messages(self.base.tokenizer, build_messages(self.task, shots, query))
                if len(ids) <= room or not shots:
                    break
                shots.pop()
            if len(ids) > room:
                raise AdaptlabError(f"a query's prompt is {len(ids)} tokens, over the model's {self.base.context_length}-token context less {self._answer_room()} for the answer; shorten the instruction or the input ({query[:60]!r}...)")
            prompts.append(ids)
            counts.append(len(shots))
        return prompts, counts

    def predict(self, inputs: list[str], progress: Progress | None = None) -> list[Prediction]:
        """One Prediction per input, in order."""
        prompts, counts = self.prompts(inputs)
        with _adapter(self.base, self.adapter):
            if self.task.kind == "classify":
                scores, _, seconds = label_logprobs(self.base.model, prompts, self._label_ids, self.base.device, progress)
                best = scores.argmax(axis=1)
                return [
                    Prediction(self.task.labels[b], len(p), len(self._label_ids[b]), float(s), c)
                    for b, p, s, c in zip(best, prompts, seconds, counts)
                ]
            predictions = []
            for start in range(0, len(prompts), 8):
                batch = prompts[start : start + 8]
                clock = time.perf_counter()
                answers = generate(self.base.model, self.base.tokenizer, batch, self.base.eot_id, self.base.device, self.max_new_tokens, batch_size=8, progress=progress)
                each = (time.perf_counter() - clock) / len(batch)  # a batch's queries share its wall time
                predictions += [Prediction(text, len(p), n, each, c) for (text, n), p, c in zip(answers, batch, counts[start:])]
            return predictions

    def describe(self) -> dict:
        return {
            "strategy": self.strategy,
            "base_model": self.base.name,
            "adapter": self.adapter,
            "shots": self.shots.describe() if self.shots else None,
            **self.details,
        }

    def save(self, folder: Path) -> None:
        """Write solver.json (and, with an adapter, its PEFT-format weights) into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.adapter:
            _save_adapter(self.base.model, self.adapter, folder)
        info = {"task": self.task.to_dict(), **self.describe()}
        (folder / "solver.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def _answer_room(self) -> int:
        if self.task.kind == "classify":
            return max(len(ids) for ids in self._label_ids)
        return self.max_new_tokens


@contextmanager
def _adapter(base: BaseModel, name: str | None):
    """Run with adapter `name` active, or with every adapter off when `name` is None."""
    from peft import PeftModel

    model = base.model
    if not isinstance(model, PeftModel):
        if name:
            raise AdaptlabError(f"adapter {name!r} is not loaded on base model {base.name!r}")
        yield
    elif name is None:
        with model.disable_adapter():
            yield
    else:
        model.set_adapter(name)
        yield


def _save_adapter(model, name: str, folder: Path) -> None:
    """adapter_config.json + adapter_model.safetensors: the files PEFT and vLLM's --enable-lora load."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    state = get_peft_model_state_dict(model, adapter_name=name)
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(folder / "adapter_model.safetensors"))
    model.peft_config[name].save_pretrained(str(folder))
