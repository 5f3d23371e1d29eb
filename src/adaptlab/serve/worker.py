"""What the model's worker thread runs for one batch: the base model's generation or a version's solver, as `Answer`s.

`run_batch` is the function serve/batcher.py's worker calls with a lane's key and its
requests' payloads. An item of its result may be an exception that belongs to that request
alone (its query is too long for the context: `QueryTooLong`, the client's to fix); an
exception it raises (`Unservable`, `LoadFailed`, out of memory, a bug) reaches every request
of the batch, and serve/failures.py turns it into that request's answer.

Generation runs live (`live_answers`): the base model and every prompted or fine-tuned
version of a generate task decode in one `LiveBatch` (engine/live.py) that the lane's
requests join between steps, each answered as soon as its row ends. Label scoring, rag and
the references that ask no language model answer the batch as it came (`solver_answers`).

A task version's payload is its query: text, or a chat's conversation (serve/requests.py
`Conversation`), handed to its solver as it is, so `LMSolver.prompts` sends its turns
through the chat template and drops its oldest turns to fit the context; each Answer
says how many it dropped (`turns_dropped`).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from adaptlab.errors import AdaptlabError
from adaptlab.kinds.context import BaseMismatch
from adaptlab.registry.store import FilesUnverified
from adaptlab.serve.models import ModelNotFound

log = logging.getLogger("adaptlab.serve")


@dataclass(frozen=True)
class Answer:
    """One request's answer: its text, the tokens sent to the model and generated, whether the token limit cut it, a rag
    answer's passages, and how many of a conversation's oldest turns were left out of the prompt to fit the context."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cut: bool = False
    sources: list | None = None
    turns_dropped: int = 0


def turns_dropped(query) -> int:
    """How many of a conversation's oldest turns its solver left out of the prompt (0 for text, and for a solver that
    sends a conversation whole or as one text)."""
    return getattr(query, "dropped", 0)


class Unservable(Exception):
    """This server cannot serve the version as it is: its files fail verification, or it was fitted on another base
    model. The message is what the client may read (file and model names, never a path); the rest is still served."""


class LoadFailed(Exception):
    """Loading a version failed for another reason (raised from the original error, whose traceback is logged)."""


def run_batch(models, key: tuple, batch) -> list[Answer | Exception]:
    """Answers for one lane's batch (a serve/batcher.py `Running`), in order: `key` is (served name, max_tokens), each
    payload (model input, its Stream)."""
    name, max_tokens = key
    solver = load_solver(models, name)
    generation = (
        base_generation(models.base, max_tokens) if solver is None else getattr(solver, "generation", lambda: None)()
    )
    if generation is not None:
        return live_answers(generation, batch)
    return solver_answers(solver, [c for c, _ in batch], [s for _, s in batch])


def load_solver(models, name: str):
    """The version's solver (None for the base model). A version this server cannot serve as it is raises
    `Unservable`, any other failure to load it `LoadFailed` from the error (out of memory as it is); the worker goes
    on."""
    try:
        return models.solver(name)
    except FilesUnverified as exc:  # the message has the folder's path: the client reads the file names only
        log.error("loading %s failed: %s", name, exc)
        raise Unservable(
            f"its files failed verification: {', '.join(exc.files)} (missing, or changed since they were registered; "
            "`adaptlab registry check` on the server says more)"
        ) from None
    except BaseMismatch as exc:  # fitted on another base: the message names both models (never a path)
        raise Unservable(str(exc)) from None
    except ModelNotFound:  # a kind this server does not serve: the client asked for a model there is not here
        raise
    except Exception as exc:
        if out_of_memory(exc):
            raise
        raise LoadFailed(f"loading {name} failed") from exc


def out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` says memory ran out: MemoryError, torch.OutOfMemoryError ("CUDA out of memory"), or the plain
    RuntimeError of torch's CPU allocator ("not enough memory") and MPS backend ("MPS backend out of memory")."""
    said = str(exc).lower()
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and ("out of memory" in said or "not enough memory" in said)
    )


def base_generation(base, max_tokens: int):
    """How the base model itself answers: every adapter off, up to max_tokens, no loop cut (the raw model answers as
    asked: max_tokens bounds it, as an OpenAI client expects); the payload is already the prompt's token ids."""
    from adaptlab.engine.live import RAW, Generation

    return Generation(base, max_tokens, RAW)


def live_answers(generation, batch) -> list[Answer | Exception]:
    """A generating lane's answers: its requests join one LiveBatch between decoding steps (those that arrive while it
    runs too, through `batch.admit`), each answered as soon as its row ends; it ends when no row is left and none
    waits."""
    from adaptlab.engine.live import LiveBatch
    from adaptlab.engine.lm_solver import _adapter

    live: LiveBatch[int] = LiveBatch(generation, batch.max_rows)
    waiting = deque(range(len(batch)))  # admitted, not yet decoding: no room for them yet
    prompts: dict[int, list[int]] = {}
    answers: dict[int, Answer | Exception] = {}
    with _adapter(generation.base, generation.adapter):
        while True:
            waiting.extend(batch.admit(batch.max_rows - live.rows - len(waiting)))
            live.join(_joining(live, waiting, batch, generation, prompts, answers))
            if not live.rows and not waiting:
                break
            for i, answer in live.step():
                answers[i] = Answer(
                    answer.text, len(prompts[i]), answer.tokens, answer.cut, turns_dropped=turns_dropped(batch[i][0])
                )
                batch.answer(i, answers[i])
    return [answers[i] for i in range(len(batch))]


def _joining(live, waiting: deque, batch, generation, prompts: dict, answers: dict) -> list[tuple]:
    """The waiting requests that fit the live batch now, oldest first, as (index, prompt ids, stream). A request whose
    prompt cannot be built (a query too long for the context) is answered with its own error at once."""
    joining: list[tuple] = []
    while waiting:
        i = waiting[0]
        content, stream = batch[i]
        if i not in prompts:
            try:
                prompts[i] = generation.prompt(content)
            except AdaptlabError as exc:
                answers[i] = exc
                batch.answer(i, exc)
                waiting.popleft()
                continue
        if not live.fits([ids for _, ids, _ in joining] + [prompts[i]]):
            break
        joining.append((i, prompts[i], stream))
        waiting.popleft()
    return joining


def solver_answers(solver, inputs: list[str], streams: list) -> list[Answer | Exception]:
    """A task version's answers; a query it refuses (too long for the context) fails alone, the others are answered one
    by one."""
    try:
        predictions = (
            solver.predict(inputs, sinks=streams) if getattr(solver, "streams", False) else solver.predict(inputs)
        )
    except AdaptlabError as exc:
        if len(inputs) == 1:
            return [exc]
        return [answer for one, stream in zip(inputs, streams) for answer in solver_answers(solver, [one], [stream])]
    # prompt_tokens: what the solver actually sent to its model (instruction, shots, passages and the query). The
    # references that ask no language model (majority, nearest, extract, ...) send no prompt, so 0 is their true count.
    return [
        Answer(p.output, p.prompt_tokens, p.completion_tokens, p.cut, list(p.passages) or None, turns_dropped(q))
        for p, q in zip(predictions, inputs)
    ]
