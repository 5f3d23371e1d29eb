"""`LMSolver`: a base model (optionally with a LoRA adapter) prompted for one task.

Zero-shot, few-shot and fine-tuned solvers are all this one class; they differ
only in which examples ride along in the prompt (`shots`) and which adapter is on.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from adaptlab.data import Example
from adaptlab.data.conversation import History
from adaptlab.engine.generate import Ending, Sink, generate
from adaptlab.engine.live import Generation
from adaptlab.engine.prompt import build_messages, encode_answer, encode_messages
from adaptlab.engine.scoring import label_logprobs
from adaptlab.errors import AdaptlabError, MessagesRefused, QueryTooLong
from adaptlab.models import BaseModel
from adaptlab.models.device import bf16_is_fast
from adaptlab.solver import Prediction, Progress, write_solver_json
from adaptlab.task import Task

BF16_CHECK_QUERIES = 16  # queries scored in both precisions before bf16 is trusted
# Generation stays in fp32. Checked as labels are (the first 8 answers both ways), bf16 autocast gave fp32's
# answer word for word for only 6, 5 and 6 of 8 on booking-sql (zero_shot, few_shot, lora), so the check
# cost 8 extra answers per strategy and always fell back; and it was at best 1.27x faster (docs/generation.md).
GENERATE_PRECISION = "generation runs in fp32: bf16 changed 2-3 of 8 greedy answers on booking-sql (docs/generation.md)"


def refused_messages(exc: BaseException) -> MessagesRefused | None:
    """`exc` as a `MessagesRefused` when it is a chat template refusing the messages it was given (its own
    `raise_exception`, a jinja2 TemplateError); None for any other error: a template that does not compile, or is
    missing, is the model's fault, not the messages'."""
    from jinja2.exceptions import TemplateError, TemplateNotFound, TemplateSyntaxError

    if not isinstance(exc, TemplateError) or isinstance(exc, (TemplateSyntaxError, TemplateNotFound)):
        return None
    return MessagesRefused(f"the model's chat template refuses these messages: {exc}; send messages it accepts")


def encode_chat(tokenizer, messages: list[dict]) -> list[int]:
    """`encode_messages`, with a chat template's refusal of the messages raised as `MessagesRefused` (the query's own
    error: the server answers it alone, 400)."""
    try:
        return encode_messages(tokenizer, messages)
    except Exception as exc:
        refused = refused_messages(exc)
        if refused is None:
            raise
        raise refused from exc


class ShotSelector(Protocol):
    """Chooses the examples placed before each query, best first."""

    def select(self, queries: list[str]) -> list[list[Example]]: ...

    def describe(self) -> dict: ...


class LMSolver:
    """Answers a task's queries with a (possibly adapted) causal LM.

    >>> solver = LMSolver("zero_shot", base, task)          # doctest: +SKIP
    >>> solver.predict(["my card never came"])[0].output     # doctest: +SKIP
    'card_arrival'

    Classification picks the label with the highest summed log-probability of its
    tokens and the end-of-turn token: the model's probability of giving exactly that
    answer and stopping. The length-normalised choice (mean log-probability per
    token) is computed too and reported beside it as `length_normalised`.
    """

    def __init__(
        self,
        strategy: str,
        base: BaseModel,
        task: Task,
        shots: ShotSelector | None = None,
        adapter: str | None = None,
        details: dict | None = None,
        exact_shots: bool = False,
        owns_model: bool = False,
        saved: dict | None = None,
        files: dict[str, dict] | None = None,
    ):
        self.strategy = strategy
        self.base = base
        self.task = task
        self.shots = shots
        self.adapter = adapter
        self.details = details or {}
        self.exact_shots = exact_shots
        self.owns_model = owns_model  # full fine-tuning: the weights are this solver's own and are saved with it
        self.saved = saved or {}  # what its strategy adds to solver.json to rebuild it (few_shot: the shot selection)
        self.files = (
            files or {}
        )  # further JSON files it saves beside solver.json, by name (few_shot: pool.json, the example pool)
        self.precision: str | None = None  # decided on the first classify call: "fp32" or "bf16"
        self.precision_note = ""
        self._checked = self._agreed = 0  # queries scored in both precisions so far, and how many chose the same label
        if task.spec.labelled:
            self._label_ids = [encode_answer(base.tokenizer, label, base.eot_id) for label in task.labels]

    @property
    def streams(self) -> bool:
        """Whether `predict` hands answers to sinks as they are generated (generate tasks; labels are scored whole)."""
        return self.task.generates

    def prompts(self, inputs: list[str]) -> tuple[list[list[int]], list[int]]:
        """Token ids of each query's prompt, and how many shots each one holds.

        Shots are dropped from the least useful end until the prompt leaves room
        for the answer (an error instead with `exact_shots`), then a conversation's
        oldest turns; a query that does not fit even alone is an error. An example
        is never cut.
        """
        chosen = self.shots.select(inputs) if self.shots else [[] for _ in inputs]
        room = self.base.context_length - self._answer_room()
        prompts, counts = [], []
        for query, shots in zip(inputs, chosen):
            shots = list(shots)
            wanted = len(shots)
            while True:
                ids = encode_chat(self.base.tokenizer, build_messages(self.task, shots, query))
                if len(ids) <= room or not shots:
                    break
                if self.exact_shots:
                    raise QueryTooLong(
                        f"{wanted} shots do not fit the {self.base.context_length}-token context "
                        f"with room for the answer ({len(ids)} tokens) for query {query[:60]!r}; "
                        "lower few_shot.k or drop exact_k to use fewer shots where needed"
                    )
                shots.pop()
            while len(ids) > room and isinstance(query, History) and len(query.spoken) > 1:
                query = query.dropping(2)  # a conversation too long for the context loses its oldest exchange first
                ids = encode_chat(self.base.tokenizer, build_messages(self.task, shots, query))
            if len(ids) > room:
                raise QueryTooLong(
                    f"a query's prompt is {len(ids)} tokens, over the model's "
                    f"{self.base.context_length}-token context less {self._answer_room()} for the "
                    f"answer; shorten the instruction or the input ({query[:60]!r}...)"
                )
            prompts.append(ids)
            counts.append(len(shots))
        return prompts, counts

    def predict(
        self, inputs: list[str], progress: Progress | None = None, sinks: list[Sink | None] | None = None
    ) -> list[Prediction]:
        """One Prediction per input, in order; generate tasks hand each answer to its sink as it is made (the server's
        streams)."""
        prompts, counts = self.prompts(inputs)
        with _adapter(self.base, self.adapter):
            if self.task.spec.labelled:
                scores, lengths, seconds = self._scores(prompts, progress)
                summed, normalised = scores.argmax(axis=1), (scores / lengths).argmax(axis=1)
                return [
                    Prediction(
                        self.task.labels[b],
                        len(p),
                        len(self._label_ids[b]),
                        float(s),
                        c,
                        {"length_normalised": self.task.labels[n]},
                    )
                    for b, n, p, s, c in zip(summed, normalised, prompts, seconds, counts)
                ]
            answers = self._generate(prompts, progress, sinks)
            return [
                Prediction(a.text, len(p), a.tokens, a.seconds, c, cut=a.cut, looped=a.looped)
                for a, p, c in zip(answers, prompts, counts)
            ]

    def generation(self) -> Generation | None:
        """How a server decodes this solver's answers in a live batch that requests join (engine/live.py), from each
        query's text; None for classification, whose labels are scored whole."""
        if self.task.spec.labelled:
            return None
        self.precision, self.precision_note = "fp32", GENERATE_PRECISION
        ending = Ending(self.task.stop, self.task.ends, self.task.stop_loops)
        return Generation(
            self.base, self.task.max_new_tokens, ending, self.adapter, lambda query: self.prompts([query])[0][0]
        )

    def reset_precision(self) -> None:
        """Decide bf16 against fp32 again, from scratch (the weights changed: after fine-tuning)."""
        self.precision, self.precision_note = None, ""
        self._checked = self._agreed = 0

    def _generate(self, prompts, progress, sinks):
        """Greedy answers, in fp32 (see GENERATE_PRECISION)."""
        self.precision, self.precision_note = "fp32", GENERATE_PRECISION
        return generate(
            self.base.model,
            self.base.tokenizer,
            prompts,
            self.base.eot_id,
            self.base.device,
            self.task.max_new_tokens,
            progress=progress,
            stop=self.task.stop,
            sinks=sinks,
            ends=self.task.ends,
            stop_loops=self.task.stop_loops,
        )

    def _scores(self, prompts, progress):
        """Label scores, in bf16 where it is fast and chooses the same labels as fp32 on the first queries."""
        import numpy as np
        import torch

        def run(batch, bf16, report=None):
            with torch.autocast(device_type=self.base.device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
                return label_logprobs(self.base.model, batch, self._label_ids, self.base.device, report)

        if self.precision is None and not bf16_is_fast(self.base.device):
            self.precision, self.precision_note = "fp32", "bf16 measured slower than fp32 on this device"
        if self.precision is None:
            # The check spans calls: a server's first requests come one or two at a time, and one
            # query is too few to trust bf16 on. Until BF16_CHECK_QUERIES are checked, answers are fp32's.
            head, tail = prompts[: BF16_CHECK_QUERIES - self._checked], prompts[BF16_CHECK_QUERIES - self._checked :]
            scores, lengths, seconds = run(head, False, progress)
            check = run(head, True)
            seconds[0] += check[2].sum()  # the check is a one-off cost, like the shared prefix
            self._checked += len(head)
            self._agreed += int((scores.argmax(1) == check[0].argmax(1)).sum())
            if self._agreed < self._checked:  # one disagreement settles it
                self.precision = "fp32"
            elif self._checked >= BF16_CHECK_QUERIES:
                self.precision = "bf16"
            self.precision_note = (
                f"bf16 chose the same label as fp32 for {self._agreed} of the first {self._checked} queries"
            )
            if tail:  # only when this call completed the check: the precision is decided
                more_scores, _, more_seconds = run(tail, self.precision == "bf16", progress)
                scores, seconds = np.concatenate([scores, more_scores]), np.concatenate([seconds, more_seconds])
            return scores, lengths, seconds
        return run(prompts, self.precision == "bf16", progress)

    def describe(self) -> dict:
        return {
            "strategy": self.strategy,
            "base_model": self.base.name,
            "adapter": self.adapter,
            "shots": self.shots.describe() if self.shots else None,
            "choice_rule": "summed label log-probability (length-normalised reported beside it)"
            if self.task.spec.labelled
            else "greedy",
            "precision": self.precision,
            "precision_note": self.precision_note,
            **self.details,
        }

    def save(self, folder: Path, **extra) -> None:
        """Write solver.json (with the identity of the base model it was fitted on), any files of its
        strategy, and its own weights: a PEFT adapter, or (full fine-tuning) a Hugging Face model folder.
        `extra`: further solver.json fields from a solver that wraps this one (a RagSolver's index)."""
        from adaptlab.models.base import weights_digest

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.adapter:
            _save_adapter(self.base.model, self.adapter, folder)
        if self.owns_model:
            self.base.model.save_pretrained(folder, safe_serialization=True)
            self.base.tokenizer.save_pretrained(folder)
        write_solver_json(
            folder,
            self,
            self.task,
            self.files,
            base_sha256=weights_digest(self.base.name)["weights_sha256"],
            base_dtype=self.base.dtype,
            **self.saved,
            **extra,
        )

    def _answer_room(self) -> int:
        if self.task.spec.labelled:
            return max(len(ids) for ids in self._label_ids)
        return self.task.max_new_tokens


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
