"""Chat prompts as token ids, in the model's own chat template.

Text from the data never becomes a control token: each message's content is
tokenized with special tokens split, so `<|im_end|>` typed by a user stays text.

The pinned transformers sets the Rust tokenizer's `encode_special_tokens` flag on
each call (on for content, off for the template's own markers) and leaves it set: two
threads tokenizing at once (the server's event loop and its model worker) could
each run with the other's flag, and user text would become control tokens. Every
encode here holds `_ENCODE`, so the flag and the encode that reads it go together.
"""

from __future__ import annotations

import re
import threading

from adaptlab.data import Example
from adaptlab.data.conversation import History, messages_of
from adaptlab.task import Task

_SLOT = "\u27e6slot{}\u27e7"  # placeholders no real text contains: ⟦slot0⟧
_SLOT_RE = re.compile("\u27e6slot(\\d+)\u27e7")
_ENCODE = threading.Lock()


def system_text(task: Task) -> str:
    """The system turn: the instruction, plus the label set for classification (unless the task leaves it out), each
    label with what it means when the task says (task.labels)."""
    if task.spec.labelled and task.list_labels and task.descriptions:
        meaning = dict(task.descriptions)
        lines = "\n".join(f"- {label}: {meaning[label]}" if label in meaning else f"- {label}" for label in task.labels)
        return f"{task.instruction}\nAnswer with exactly one label from this list:\n{lines}"
    if task.spec.labelled and task.list_labels:
        return f"{task.instruction}\nAnswer with exactly one label from: {', '.join(task.labels)}."
    return task.instruction


def build_messages(task: Task, shots: list[Example], query: str) -> list[dict]:
    """System turn, then each shot as a user/assistant pair, then the query.

    A conversation's History (data/conversation.py) is sent as its turns: a shot's, then its answer; the
    query's, ending on the user turn to answer. The conversation's own system message follows the task's
    instruction in the one system turn. A labelled task reads a conversation as one text to classify.
    """
    system = system_text(task)
    if isinstance(query, History) and query.system:
        system = f"{system}\n\n{query.system}"
    messages = [{"role": "system", "content": system}]
    for shot in shots:
        messages += _asked(task, shot.input) + [{"role": "assistant", "content": shot.output}]
    return messages + _asked(task, query)


def _asked(task: Task, query: str) -> list[dict]:
    """A query as the turns that ask it: a History's turns, else (a labelled task's conversation too) one user turn."""
    if task.spec.labelled:
        return [{"role": "user", "content": str(query.whole() if isinstance(query, History) else query)}]
    return messages_of(query)


def encode_messages(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of `messages` followed by the assistant's generation header."""
    slotted = [{**m, "content": _SLOT.format(i)} for i, m in enumerate(messages)]
    rendered = tokenizer.apply_chat_template(slotted, tokenize=False, add_generation_prompt=True)
    ids: list[int] = []
    pos = 0
    for match in _SLOT_RE.finditer(rendered):
        ids += _template_ids(tokenizer, rendered[pos : match.start()])
        ids += encode_text(tokenizer, messages[int(match.group(1))]["content"])
        pos = match.end()
    ids += _template_ids(tokenizer, rendered[pos:])
    return ids


def encode_text(tokenizer, text: str) -> list[int]:
    """Plain text to ids; special-token strings inside it are split into ordinary tokens."""
    if not text:
        return []
    with _ENCODE:
        return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def encode_answer(tokenizer, answer: str, eot_id: int) -> list[int]:
    """The assistant's answer as it is trained on and scored: its text, then end of turn."""
    return encode_text(tokenizer, answer) + [eot_id]


def _template_ids(tokenizer, text: str) -> list[int]:
    if not text:
        return []
    with _ENCODE:
        return tokenizer(text, add_special_tokens=False, split_special_tokens=False)["input_ids"]
