"""`ChatClient`: chat completions from an OpenAI-compatible endpoint, with retries, a concurrency limit and timeouts."""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from adaptlab.config import RemoteModelConfig
from adaptlab.errors import AdaptlabError, ConfigError

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 30.0


class RemoteError(AdaptlabError):
    """The endpoint refused a request, or kept failing after every retry."""


@dataclass(frozen=True)
class Reply:
    """One chat completion: the text, the endpoint's token usage, and the first token's top log-probs when returned."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    first_token_logprobs: dict[str, float] | None = None
    retries: int = 0


class ChatClient:
    """Talks to `{base_url}/chat/completions`; greedy (temperature 0)."""

    def __init__(self, config: RemoteModelConfig, transport=None):
        import httpx

        self.config = config
        headers = {"Content-Type": "application/json"}
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise ConfigError(
                    f"model {config.name!r} at {config.base_url}: environment variable "
                    f"{config.api_key_env} is not set; export the API key there"
                )
            headers["Authorization"] = f"Bearer {key}"
        self.http = httpx.Client(
            base_url=config.base_url.rstrip("/") + "/", headers=headers, timeout=config.timeout_s, transport=transport
        )
        self.logprobs = True  # switched off when the endpoint rejects the parameter

    def describe(self) -> dict:
        """Where the model is; the API key is never part of it."""
        return {"base_url": self.config.base_url, "name": self.config.name}

    def chat_many(
        self, conversations: list[list[dict]], max_tokens: int, stop: list[str] | None = None, progress=None
    ) -> list[Reply]:
        """One reply per conversation, in order, at most `max_concurrency` requests in flight."""

        def one(messages):
            reply = self.chat(messages, max_tokens, stop)
            if progress:
                progress(1)
            return reply

        with ThreadPoolExecutor(max_workers=self.config.max_concurrency) as pool:
            return list(pool.map(one, conversations))

    def chat(self, messages: list[dict], max_tokens: int, stop: list[str] | None = None) -> Reply:
        """One greedy reply; a timeout, connection error, 429 or 5xx is retried up to `max_retries` times, anything else
        is a RemoteError."""
        import httpx

        body = {"model": self.config.name, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
        if stop:
            body["stop"] = stop[:4]  # the OpenAI API takes up to 4
        start = time.perf_counter()
        for attempt in range(self.config.max_retries + 1):
            wait = None
            try:
                response = self._post(body)
            except httpx.TimeoutException:
                problem = f"no answer within {self.config.timeout_s:g} s"
            except httpx.TransportError as exc:
                problem = f"cannot connect ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    return _reply(response, time.perf_counter() - start, attempt)
                problem = f"HTTP {response.status_code}: {_error_text(response)}"
                if response.status_code in (401, 403):
                    raise RemoteError(
                        f"{self.config.base_url} refused the request ({problem}); check the API key"
                        + (f" in ${self.config.api_key_env}" if self.config.api_key_env else " (set model.api_key_env)")
                    )
                if response.status_code not in RETRY_STATUS:
                    raise RemoteError(f"{self.config.base_url} model {self.config.name!r}: {problem}")
                wait = _retry_after(response)
            if attempt < self.config.max_retries:
                time.sleep(
                    wait if wait is not None else min(MAX_BACKOFF_S, 0.5 * 2**attempt) * (0.5 + random.random() / 2)
                )
        raise RemoteError(
            f"{self.config.base_url} model {self.config.name!r}: {problem} after "
            f"{self.config.max_retries + 1} attempts; check that the server is up, or raise "
            "model.timeout_s / model.max_retries"
        )

    def _post(self, body: dict):
        """One request; an endpoint that rejects log-probs (400 naming them) is asked again without, and not asked for
        them again.

        That second request is a negotiation, not a retry: it does not use up `max_retries`.
        """
        if self.logprobs:
            response = self.http.post("chat/completions", json=body | {"logprobs": True, "top_logprobs": 5})
            if response.status_code != 400 or "logprob" not in response.text.lower():
                return response
            self.logprobs = False
        return self.http.post("chat/completions", json=body)

    def close(self) -> None:
        self.http.close()


def _reply(response, seconds: float, retries: int) -> Reply:
    """The Reply in a 200 answer; an answer that is not an OpenAI chat completion (malformed log-probs included) is a
    RemoteError."""
    try:
        data = response.json()
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        usage = data.get("usage") or {}
        logprobs = choice.get("logprobs")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise RemoteError(f"the endpoint's answer is not an OpenAI chat completion: {response.text[:200]!r}") from None
    if not isinstance(text, str):
        raise _malformed(response, f"choices[0].message.content is {type(text).__name__}, not text")
    if not isinstance(usage, dict):
        raise _malformed(response, f"usage is {type(usage).__name__}, not an object")
    tokens = []
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key) or 0
        if not _is_number(value) or value < 0 or not float(value).is_integer():
            raise _malformed(response, f"usage.{key} is {value!r}, not a token count")
        tokens.append(int(value))
    prompt_tokens, completion_tokens = tokens
    return Reply(text, prompt_tokens, completion_tokens, seconds, _first_token_logprobs(response, logprobs), retries)


def _first_token_logprobs(response, logprobs) -> dict[str, float] | None:
    """{token: logprob} of the first token's top alternatives; None when the endpoint sent none (null or empty
    lists)."""
    if logprobs is None:
        return None
    if not isinstance(logprobs, dict):
        raise _malformed(response, f"choices[0].logprobs is {type(logprobs).__name__}, not an object")
    content, where = logprobs.get("content"), "choices[0].logprobs.content"
    if not content:
        return None
    if not isinstance(content, list):
        raise _malformed(response, f"{where} is {type(content).__name__}, not a list")
    if not isinstance(content[0], dict):
        raise _malformed(response, f"{where}[0] is {content[0]!r}, not an object")
    top = content[0].get("top_logprobs")
    if not top:
        return None
    if not isinstance(top, list):
        raise _malformed(response, f"{where}[0].top_logprobs is {type(top).__name__}, not a list")
    result = {}
    for n, entry in enumerate(top):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("token"), str)
            or not _is_number(entry.get("logprob"))
        ):
            raise _malformed(
                response, f"{where}[0].top_logprobs[{n}] is {entry!r}, not {{'token': text, 'logprob': number}}"
            )
        result[entry["token"]] = float(entry["logprob"])
    return result


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _malformed(response, what: str) -> RemoteError:
    return RemoteError(
        f"the endpoint's answer is not an OpenAI chat completion: {what} ({response.text[:200]!r}); "
        "check that base_url points at an OpenAI-compatible server"
    )


def _retry_after(response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(MAX_BACKOFF_S, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def _error_text(response) -> str:
    """The endpoint's error message: `{"error": {"message": ...}}`, `{"error": "..."}`, a JSON string, or else the raw
    body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    error = data.get("error") if isinstance(data, dict) else data if isinstance(data, str) else None
    message = error.get("message") if isinstance(error, dict) else error
    return str(message or response.text)[:200]
