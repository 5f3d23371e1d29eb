"""Batched greedy generation: the prompts' shared prefix runs once, rows decode together.

How a call runs (figures: bench/generate.py, docs/generation.md):
- The common prefix of all prompts (system turn, instruction, fixed shots) runs
  once; every batch starts from a copy of its keys and values.
- Prompts are sorted by length and cut into batches sized by a memory budget for
  the key/value cache (`memory_mb`), so rows of a batch pad little; a batch's prompts
  run in slices of about PREFILL_TOKENS tokens, so activations stay bounded too.
- Each batch keeps its cache in buffers allocated once for the whole answer
  (engine/session.py): transformers' default cache concatenates every step, copying the
  whole cache each token, which dominated decoding with long prompts.
- Attention runs grouped-query attention natively (engine/session.py) instead of
  copying the keys and values once per query head, as transformers does on CPU
  whenever a mask is given (always, with left padding).
- Rows that finished (end of turn, a stop string, an end string, a loop, or a
  cancelled stream) leave the batch once a quarter of it is done, so the rest decode
  on a smaller batch.
- A row that has begun repeating itself (`loop_start`: its last LOOP_TOKENS tokens or
  more are one span repeated LOOP_REPEATS times or more) ends there, keeping one copy
  of the span: a small model that loops would otherwise run to max_new_tokens, which
  was most of the predict time on long answers (docs/generation.md). `stop_loops=False`
  turns it off.

A row can stream: give it a `Sink` and each piece of its answer is handed over as
it is generated (still in one batch with the other rows); a sink that reports
`cancelled` (its client went away) stops its row at the next token.
"""

from __future__ import annotations

import time
from typing import NamedTuple, Protocol, cast

from adaptlab.engine.kv import prefix_kv
from adaptlab.engine.scoring import common_prefix
from adaptlab.engine.session import Session, native_attention
from adaptlab.solver import Progress

LOOP_TOKENS = 32  # a row's tail this long (or longer) ...
LOOP_REPEATS = 3  # ... made of one span repeated this many times (or more) has begun looping
LOOP_PERIOD = 64  # the longest span looked for, in tokens
MEMORY_MB = 1024  # key/value cache of one batch, at most (SmolLM2-135M: 46 KB per token in fp32)
MAX_BATCH = 32  # rows decoded together, at most
PREFILL_TOKENS = 4096  # prompt tokens per forward pass (all rows together)


class Sink(Protocol):
    """Where one row's answer goes while it is generated."""

    cancelled: bool  # True once nobody wants the rest: the row stops at its next token
    wants_text: bool  # False: only tokens are counted (no incremental decoding on the hot path)

    def token(self) -> None: ...  # one more token was generated for this row

    def put(self, text: str) -> None: ...  # the next piece; the pieces joined are the final answer


class Answer(NamedTuple):
    text: str  # up to the end of turn or the first stop string, stripped
    tokens: int  # tokens generated, the end-of-turn token included
    cut: bool  # stopped by max_new_tokens, not by the model: the answer may be incomplete
    seconds: float = 0.0  # its batch's wall time over the batch's rows (the shared prefix goes to the first batch)
    looped: bool = False  # ended because it began repeating itself (the repeats dropped, one copy kept)


def generate(
    model,
    tokenizer,
    prompts: list[list[int]],
    eot_id: int,
    device: str,
    max_new_tokens: int = 128,
    progress: Progress | None = None,
    stop: tuple[str, ...] = (),
    sinks: list[Sink | None] | None = None,
    memory_mb: int = MEMORY_MB,
    max_batch: int = MAX_BATCH,
    bf16: bool = False,
    ends: tuple[str, ...] = (),
    stop_loops: bool = True,
) -> list[Answer]:
    """Greedy completions of each prompt, in order; `progress` is told as batches finish.

    An answer ends before the first `stop` string, after the first `ends` string, at the end of turn, or (with
    `stop_loops`) where it began repeating itself."""
    import torch

    if not prompts:
        return []
    stops, pad = stop_tokens(tokenizer, eot_id), pad_token(tokenizer, eot_id)
    sinks = sinks or [None] * len(prompts)
    shared = common_prefix(prompts)[: min(len(p) for p in prompts) - 1]  # every row keeps a token of its own
    answers: list[Answer | None] = [None] * len(prompts)
    with (
        torch.inference_mode(),
        native_attention(model),
        torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16),
    ):
        clock = time.perf_counter()
        prefix = prefix_kv(model, shared, device)
        for batch in _batches(prompts, len(shared), max_new_tokens, bytes_per_token(model, bf16), memory_mb, max_batch):
            rows = [AnswerRow(sinks[i], tokenizer, Ending(stop, ends, stop_loops), stops) for i in batch]
            rests = [prompts[i][len(shared) :] for i in batch]
            done = _decode(model, prefix, len(shared), rests, rows, pad, device, max_new_tokens)
            now = time.perf_counter()
            for i, answer in zip(batch, done):
                answers[i] = answer._replace(seconds=(now - clock) / len(batch))
            clock = now
            if progress:
                progress(len(batch))
    return cast(list[Answer], answers)  # every prompt is in one batch, so every answer is set


def _decode(
    model,
    prefix,
    start: int,
    rests: list[list[int]],
    rows: list[AnswerRow],
    pad: int,
    device: str,
    max_new_tokens: int,
) -> list[Answer]:
    """Decode one batch: each row's own prompt tokens (left-padded) after the shared prefix, then greedy steps (a
    `Session`
    that starts full and only shrinks)."""
    session = Session(model, pad, device, prefix, start, PREFILL_TOKENS)
    session.join(rests, rows, max_new_tokens)
    while session.live:
        session.step()
    return [row.finish() for row in rows]


def stop_tokens(tokenizer, eot_id: int) -> set[int]:
    """The tokens that end an answer: the end of turn, and the tokenizer's end of sequence."""
    return {eot_id} | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


def pad_token(tokenizer, eot_id: int) -> int:
    """The token left padding is made of (masked: any token does)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eot_id


def _batches(
    prompts: list[list[int]], shared: int, max_new_tokens: int, per_token: int, memory_mb: int, max_batch: int
) -> list[list[int]]:
    """Prompt indices by batch: sorted by length, each batch's cache within the budget (one row at least)."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    budget = memory_mb * 2**20
    batches: list[list[int]] = []
    for i in order:
        if (
            batches
            and len(batches[-1]) < max_batch
            and (len(batches[-1]) + 1) * (len(prompts[i]) + max_new_tokens) * per_token <= budget
        ):
            batches[-1].append(i)  # sorted: this prompt is the batch's longest
        else:
            batches.append([i])
    return batches


def bytes_per_token(model, bf16: bool) -> int:
    """Key/value cache bytes one token of one row takes."""
    config = model.config
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers * 2 * heads * head_dim * (2 if bf16 else 4)


class Ending(NamedTuple):
    """How an answer ends besides the end of turn: before a stop string, after an end string, where it loops."""

    stop: tuple[str, ...] = ()
    ends: tuple[str, ...] = ()
    loops: bool = True

    def cut(self, text: str) -> int | None:
        """Where the answer in `text` ends (before the first stop string, after the first end string), or None."""
        found = [i for i in (text.find(s) for s in self.stop if s) if i >= 0] + [
            i + len(s) for s, i in ((s, text.find(s)) for s in self.ends if s) if i >= 0
        ]
        return min(found) if found else None

    @property
    def reads_text(self) -> bool:
        return bool(self.stop or self.ends)

    @property
    def hold(self) -> int:
        """Characters a stream holds back: what a stop string not yet complete may still remove."""
        return max((len(s) - 1 for s in self.stop if s), default=0)


def _answer(text: str, ending: Ending) -> str:
    """The answer in `text`: up to its ending, stripped."""
    end = ending.cut(text)
    return (text if end is None else text[:end]).strip()


def loop_start(ids: list[int]) -> int | None:
    """Where `ids` should end because its tail repeats one span: the tail of LOOP_TOKENS tokens or more is the span
    (of at most LOOP_PERIOD tokens) LOOP_REPEATS times or more; the answer keeps everything before the repeats and one
    copy of the span. None while the tail is not such a loop.

    >>> loop_start([7, 8] + [1, 2, 3, 4] * 10)  # the span 1 2 3 4, ten times: keep it once
    6
    >>> loop_start([5, 6, 7] * 3) is None  # a short answer may repeat a phrase
    True
    """
    n = len(ids)
    if n < LOOP_TOKENS:
        return None
    for period in range(1, min(LOOP_PERIOD, n // LOOP_REPEATS) + 1):
        tail = max(LOOP_TOKENS, LOOP_REPEATS * period)
        if tail > n:
            break
        if all(ids[n - i] == ids[n - i - period] for i in range(1, tail - period + 1)):
            start = n - tail
            while start > 0 and ids[start - 1] == ids[start - 1 + period]:
                start -= 1
            return start + period
    return None


class AnswerRow:
    """One row's state: its tokens so far, whether it is done, and the text already handed to its sink."""

    def __init__(self, sink: Sink | None, tokenizer, ending: Ending, stops: set[int]):
        self.sink, self.tokenizer, self.ending, self.stops = sink, tokenizer, ending, stops
        self.ids: list[int] = []  # the answer's tokens (no end of turn)
        self.sent = ""
        self.done = False
        self.ended = False  # the model ended its turn (or a stop or end string came, or it looped): not cut
        self.looped = False
        self.generated = 0

    @property
    def cancelled(self) -> bool:
        return bool(self.sink and self.sink.cancelled)

    def add(self, token: int) -> None:
        if self.done:
            return
        if self.cancelled:  # its client left: stop here
            self.done = True
            return
        self.generated += 1
        if self.sink:
            self.sink.token()
        if token in self.stops:
            self.done = self.ended = True
            return
        self.ids.append(token)
        if self.ending.loops and (start := loop_start(self.ids)) is not None:
            if not self.sent:  # a stream keeps what it already sent: the client has it
                del self.ids[start:]
            self.done = self.ended = self.looped = True
            return
        if self.ending.reads_text or (self.sink and self.sink.wants_text):
            text = self.tokenizer.decode(self.ids, skip_special_tokens=True).lstrip()
            if self.ending.cut(text) is not None:
                self.done = self.ended = True
            elif self.sink and self.sink.wants_text:
                self._send(text)

    def _send(self, text: str) -> None:
        # Hold back what the final answer may still lose: a half-decoded character, the
        # trailing space strip() drops, and the start of a stop string.
        hold = self.ending.hold
        safe = text[: len(text) - hold].rstrip().rstrip("\ufffd")
        if len(safe) > len(self.sent) and safe.startswith(self.sent):
            assert self.sink is not None  # only a row with a sink sends text
            self.sink.put(safe[len(self.sent) :])
            self.sent = safe

    def finish(self) -> Answer:
        """The final answer; hands the rest of it to the sink."""
        text = _answer(self.tokenizer.decode(self.ids, skip_special_tokens=True), self.ending)
        if (
            self.sink
            and self.sink.wants_text
            and not self.cancelled
            and text.startswith(self.sent)
            and len(text) > len(self.sent)
        ):
            self.sink.put(text[len(self.sent) :])
            self.sent = text
        return Answer(text, self.generated, not self.ended and not self.cancelled, looped=self.looped)
