"""Batched greedy generation with left padding, stopping at the end of the turn.

A row can stream: give it a `Sink` and each piece of its answer is handed over as it
is generated (still in one batch with the other rows); a sink that reports
`cancelled` (its client went away) stops its row at the next token.
"""

from __future__ import annotations

from typing import Protocol

from adaptlab.solver import Progress


class Sink(Protocol):
    """Where one row's answer goes while it is generated."""

    cancelled: bool  # True once nobody wants the rest: the row stops at its next token
    wants_text: bool  # False: only tokens are counted (no incremental decoding on the hot path)

    def token(self) -> None: ...  # one more token was generated for this row

    def put(self, text: str) -> None: ...  # the next piece; the pieces joined are the final answer


def generate(model, tokenizer, prompts: list[list[int]], eot_id: int, device: str, max_new_tokens: int = 128, batch_size: int = 8, progress: Progress | None = None, stop: tuple[str, ...] = (), sinks: list[Sink | None] | None = None) -> list[tuple[str, int]]:
    """Greedy completions of each prompt: (text up to the end of turn or the first stop string, tokens generated)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    stops = [eot_id] + ([tokenizer.eos_token_id] if tokenizer.eos_token_id not in (None, eot_id) else [])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eot_id
    results: list[tuple[str, int]] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        rows = [_Row(sink, tokenizer, stop, stops) for sink in (sinks or [None] * len(prompts))[start : start + batch_size]]
        width = max(len(p) for p in batch)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=device)
        extra = {}
        if any(row.sink for row in rows):

            class Cancelled(StoppingCriteria):
                def __call__(self, input_ids, scores, **kwargs):
                    for row in rows:
                        row.stopping = row.stopping or row.cancelled
                    return torch.tensor([row.stopping for row in rows], device=input_ids.device)

            extra = {"streamer": _Streamer(rows), "stopping_criteria": StoppingCriteriaList([Cancelled()])}
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stops, pad_token_id=pad, **extra)
        for row, ids in zip(rows, out[:, width:].tolist()):
            cut = next((i for i, t in enumerate(ids) if t in stops), len(ids))
            if row.cancelled:
                cut = min(cut, row.generated)  # a cancelled row's pad tokens are not its answer
            text = _answer(tokenizer.decode(ids[:cut], skip_special_tokens=True), stop)
            row.finish(text)
            results.append((text, min(cut + 1, len(ids)) if not row.cancelled else row.generated))
        if progress:
            progress(len(batch))
    return results


def _answer(text: str, stop: tuple[str, ...]) -> str:
    """The answer in `text`: up to the first stop string, stripped."""
    end = _first_stop(text, stop)
    return (text if end is None else text[:end]).strip()


def _first_stop(text: str, stop: tuple[str, ...]) -> int | None:
    """Where the first stop string begins in `text`, or None."""
    ends = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return min(ends) if ends else None


class _Row:
    """One row's streaming state: its tokens so far and the text already handed to its sink."""

    def __init__(self, sink: Sink | None, tokenizer, stop: tuple[str, ...], stops: list[int]):
        self.sink, self.tokenizer, self.stop, self.stops = sink, tokenizer, stop, stops
        self.ids: list[int] = []
        self.sent = ""
        self.done = False  # no more tokens of this row will be real (the model pads it)
        self.stopping = False  # cancelled, and transformers was told: this step's token is its last
        self.generated = 0

    @property
    def cancelled(self) -> bool:
        return bool(self.sink and self.sink.cancelled)

    def add(self, token: int) -> None:
        if self.done:
            return
        self.generated += 1
        self.sink.token()
        self.done = self.stopping or token in self.stops
        if self.done or self.cancelled or not self.sink.wants_text:
            return
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True).lstrip()
        # Hold back what the final answer may still lose: a half-decoded character, the
        # trailing space strip() drops, and the start of a stop string.
        hold = max((len(s) - 1 for s in self.stop if s), default=0)
        end = _first_stop(text, self.stop)
        safe = text[: len(text) - hold] if end is None else text[:end]
        safe = safe.rstrip().rstrip("\ufffd")
        if len(safe) > len(self.sent) and safe.startswith(self.sent):
            self.sink.put(safe[len(self.sent) :])
            self.sent = safe

    def finish(self, text: str) -> None:
        """Hand over the rest of the final answer."""
        if self.sink and self.sink.wants_text and not self.cancelled and text.startswith(self.sent) and len(text) > len(self.sent):
            self.sink.put(text[len(self.sent) :])
            self.sent = text


class _Streamer:
    """transformers' streamer interface: `put` gets the prompt first, then each step's new token of every row."""

    def __init__(self, rows: list[_Row]):
        self.rows = rows
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for row, token in zip(self.rows, value.tolist()):
            if row.sink:
                row.add(token)

    def end(self) -> None:
        pass
