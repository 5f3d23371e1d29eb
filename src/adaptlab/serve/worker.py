"""What the model's worker thread runs for one batch: the base model's generation or a version's solver, as `Answer`s.

`run_batch` is the function serve/batcher.py's worker calls with a lane's key and its
requests' payloads. An item of its result may be an exception that belongs to that request
alone (its query is too long for the context); an exception it raises (`LoadFailed`, or a
torch RuntimeError such as out of memory) reaches every request of the batch, and
serve/failures.py turns it into that request's answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from adaptlab.errors import AdaptlabError
from adaptlab.kinds.context import BaseMismatch

log = logging.getLogger("adaptlab.serve")


@dataclass(frozen=True)
class Answer:
    """One request's answer: its text, the tokens sent to the model and generated, whether the token limit cut it, a rag answer's passages."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cut: bool = False
    sources: list | None = None


class LoadFailed(Exception):
    """A version's files failed verification or loading (the server answers 503 for it and serves the rest)."""

    def __init__(self, message: str, public: str | None = None):
        super().__init__(message)
        self.public = public  # what the client may read (no paths); None: a generic sentence


def run_batch(models, key: tuple, payloads: list) -> list[Answer | Exception]:
    """Answers for one lane's batch, in order: `key` is (served name, max_tokens), each payload (model input, its Stream)."""
    name, max_tokens = key
    solver = load_solver(models, name)
    contents, streams = [c for c, _ in payloads], [s for _, s in payloads]
    if solver is None:
        return base_answers(models.base, contents, streams, max_tokens)
    return solver_answers(solver, contents, streams)


def load_solver(models, name: str):
    """The version's solver (None for the base model); a failure to load it is `LoadFailed`, and the worker goes on."""
    try:
        return models.solver(name)
    except BaseMismatch as exc:  # fitted on another base: the message names both models (never a path)
        raise LoadFailed(str(exc), str(exc)) from None
    except Exception as exc:  # verification or a library's load error: this model fails, the worker goes on
        log.error("loading %s failed: %s: %s", name, type(exc).__name__, exc)
        raise LoadFailed(str(exc)) from None


def base_answers(base, prompts: list[list[int]], streams: list, max_tokens: int) -> list[Answer]:
    """The base model itself, every adapter off: batched greedy generation from the prompts' token ids."""
    from adaptlab.engine.generate import generate
    from adaptlab.engine.lm_solver import _adapter

    with _adapter(base, None):
        answers = generate(base.model, base.tokenizer, prompts, base.eot_id, base.device, max_tokens, sinks=streams, stop_loops=False)  # the raw model answers as asked: max_tokens bounds it, as an OpenAI client expects
    return [Answer(a.text, len(ids), a.tokens, a.cut) for a, ids in zip(answers, prompts)]


def solver_answers(solver, inputs: list[str], streams: list) -> list[Answer | Exception]:
    """A task version's answers; a query it refuses (too long for the context) fails alone, the others are answered one by one."""
    try:
        predictions = solver.predict(inputs, sinks=streams) if getattr(solver, "streams", False) else solver.predict(inputs)
    except AdaptlabError as exc:
        if len(inputs) == 1:
            return [exc]
        return [answer for one, stream in zip(inputs, streams) for answer in solver_answers(solver, [one], [stream])]
    # prompt_tokens: what the solver actually sent to its model (instruction, shots, passages and the query). The
    # references that ask no language model (majority, nearest, extract, ...) send no prompt, so 0 is their true count.
    return [Answer(p.output, p.prompt_tokens, p.completion_tokens, p.cut, list(p.passages) or None) for p in predictions]
