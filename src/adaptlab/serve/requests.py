"""Reading and checking what a client sent, before anything is queued: the JSON body, `model`, `max_tokens`, the
messages or prompt.

Each check is a plain function that returns the checked value or raises an ApiError (400
or 404, OpenAI-shaped) saying what to send instead; none of them needs a running server.

    >>> max_tokens_of({"max_tokens": 8}, 512)
    8
    >>> last_user_text([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    'hi'

A task version answers a single question as that text, and a conversation as a `Conversation`:
the History a conversation file's line of its task is read as (data/conversation.py
`history_of`), so every kind answers from the input it was measured on. A generate or qa
task answers the last user turn, from every turn before it (an assistant turn among them
makes it a conversation); a labelled task classifies the whole conversation, every message
in its text (`whole`). Only an LLM's prompt is shortened, oldest turns first, to fit its
context, where the solver builds it; `dropped` counts what it left out.

    >>> asked = task_input([
    ...     {"role": "user", "content": "I'm Zed."},
    ...     {"role": "assistant", "content": "Hi Zed."},
    ...     {"role": "user", "content": "My name?"},
    ... ])
    >>> [t.content for t in asked.spoken], asked.dropping(2).spoken[0].content, asked.dropped
    (["I'm Zed.", 'Hi Zed.', 'My name?'], 'My name?', 2)
    >>> said = [{"role": "user", "content": "Send $5."}, {"role": "assistant", "content": "Done."}]
    >>> str(task_input(said, whole=True))
    'User: Send $5.\\nAssistant: Done.'
"""

from __future__ import annotations

import json
import re

from adaptlab.data.conversation import RECENT_TURNS, History, Turn, history_of
from adaptlab.serve.guard import ApiError, json_depth

MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")  # a registry id; path-like names never reach a file
ROLES = ("system", "user", "assistant")


async def read_json(request, max_depth: int) -> dict:
    """The request's body as a JSON object, refused (400) when it nests too deeply, does not parse, or is not text."""
    raw = await request.body()
    if json_depth(raw) > max_depth:
        raise ApiError(400, f"the JSON body nests deeper than {max_depth} levels")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # "\ud800": a lone surrogate escape parses, but is no text a tokenizer can take
        raise ApiError(
            400, "the request body holds a lone surrogate escape (like \\ud800), which is not valid Unicode text"
        ) from None
    return body


def model_of(body: dict) -> str:
    """The `model` the request names, if it is a valid served name (404 otherwise, before any lookup)."""
    model = body.get("model")
    if not isinstance(model, str) or not MODEL_NAME.match(model):
        raise ApiError(404, "model must be a served name: GET /v1/models lists them", code="model_not_found")
    return model


def check_n(body: dict) -> None:
    """One answer per request: `n` other than 1 is refused."""
    if body.get("n", 1) != 1:
        raise ApiError(400, "only n=1 is supported", code="unsupported_n")


def max_tokens_of(body: dict, limit: int) -> int:
    """`max_tokens` (or `max_completion_tokens`), an integer from 1 to `limit`; absent: 128, or `limit` if lower."""
    value = body.get("max_tokens", body.get("max_completion_tokens"))
    if value is None:
        return min(128, limit)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise ApiError(
            400,
            f"max_tokens must be an integer from 1 to {limit}, got {json.dumps(value)[:40]}",
            code="invalid_max_tokens",
        )
    return value


def chat_messages(body: dict, max_messages: int, max_chars: int) -> list[dict]:
    """The chat request's `messages`: 1 to `max_messages` of them, each a known role with string content, some text in
    all."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > max_messages:
        raise ApiError(400, f"messages must be a list of 1 to {max_messages} messages")
    if not all(isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in messages):
        raise ApiError(400, "each message needs a role (system, user or assistant) and string content")
    if sum(len(m["content"]) for m in messages) > max_chars:
        raise ApiError(400, f"the messages exceed {max_chars} characters", code="context_length_exceeded")
    if not any(m["content"].strip() for m in messages):
        raise ApiError(400, "every message is empty; send some text", code="empty_prompt")
    return messages


def completion_prompt(body: dict, max_chars: int) -> str:
    """The completion request's `prompt`: a non-empty string of at most `max_chars` characters, not streamed."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or len(prompt) > max_chars:
        raise ApiError(400, f"prompt must be a string of at most {max_chars} characters")
    if not prompt.strip():
        raise ApiError(400, "the prompt is empty; send some text", code="empty_prompt")
    if body.get("stream"):
        raise ApiError(
            400, "stream is supported on /v1/chat/completions; send this request without it", code="unsupported_stream"
        )
    return prompt


def last_user_text(messages: list[dict]) -> str:
    """What a task version answers for a single question: the last user message (a conversation is a `Conversation`)."""
    users = [m["content"] for m in messages if m["role"] == "user"]
    if not users or not users[-1].strip():
        raise ApiError(400, "a task model answers the last user message; send one with text", code="empty_prompt")
    return users[-1]


class Conversation(History):
    """A request's conversation as its task version answers it: the History its messages make (data/conversation.py
    `history_of`), which counts in `dropped` the oldest spoken turns its solver left out to fit the context
    (LMSolver.prompts shortens a History through `dropping`; a copy or a pickle is a plain History, and counts
    nothing)."""

    dropped: int
    original: Conversation  # the request's own conversation, which the shortened copies count their drops on

    def __new__(cls, turns: tuple[Turn, ...], recent: int | None = RECENT_TURNS, original: Conversation | None = None):
        made = super().__new__(cls, turns, recent)
        made.original, made.dropped = made if original is None else original, 0
        return made

    def dropping(self, n: int) -> Conversation:
        kept = super().dropping(n)
        kept = Conversation(kept.turns, kept.recent, self.original)
        self.original.dropped = len(self.original.spoken) - len(kept.spoken)
        return kept


def task_input(messages: list[dict], whole: bool = False) -> str:
    """What a task version answers from a chat's `messages`: their Conversation when they hold one, else the last user
    message. `whole`: a labelled task's version, which classifies the conversation whole, as it was measured."""
    history = history_of(messages, whole)
    if history is None:
        return last_user_text(messages)
    last_user_text(messages)  # the turn to answer must hold text, as for a single question
    return Conversation(history.turns, history.recent)


def model_input(base, prompt: str | list[dict], is_base: bool, max_tokens: int, whole: bool = False) -> list[int] | str:
    """What the worker is handed for a chat's `messages` or a completion's `prompt`.

    For the base model: the token ids of the whole prompt (messages through the chat
    template, a prompt as plain text), refused when they and `max_tokens` overflow the
    context. For a task version: what it answers (`task_input`, `whole` for a labelled
    task's; it builds its own prompt).
    """
    if not is_base:
        return prompt if isinstance(prompt, str) else task_input(prompt, whole)
    from adaptlab.engine.prompt import encode_messages, encode_text

    ids = encode_text(base.tokenizer, prompt) if isinstance(prompt, str) else encode_messages(base.tokenizer, prompt)
    check_context(len(ids), max_tokens, base.context_length)
    return ids


def check_context(prompt_tokens: int, max_tokens: int, context_length: int) -> None:
    """The prompt and the answer must fit the model's context together (400 naming the three numbers otherwise)."""
    if prompt_tokens + max_tokens > context_length:
        raise ApiError(
            400,
            f"the prompt is {prompt_tokens} tokens and max_tokens {max_tokens}: over the model's "
            f"context of {context_length} tokens; shorten the prompt or lower max_tokens",
            code="context_length_exceeded",
        )
