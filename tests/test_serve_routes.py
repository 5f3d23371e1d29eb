"""The server's parts on their own: request checks, failures as answers with their true status (a bug: 500 with a
request id), token usage of task versions, and the rule that keeps serve/ readable. Apps here run on the tiny model,
without a compare run."""

import ast
import asyncio
import logging
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import CARD_ROWS, serving

from adaptlab.data.conversation import History

CHAT = "/v1/chat/completions"
SERVE = Path(__file__).resolve().parents[1] / "src" / "adaptlab" / "serve"


class NoRegistry:
    def versions(self):
        return []


def _app(base, registry=None):
    from adaptlab.serve import Limits, ServedModels, create_app

    return create_app(ServedModels(base, registry or NoRegistry()), "tiny", None, Limits())


def _ask(text: str, model: str = "tiny", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}]} | extra


# --- request checks, no server -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "status", "code"),
    [
        (lambda r: r.model_of({"model": "../etc/passwd"}), 404, "model_not_found"),
        (lambda r: r.check_n({"n": 2}), 400, "unsupported_n"),
        (lambda r: r.max_tokens_of({"max_tokens": 513}, 512), 400, "invalid_max_tokens"),
        (lambda r: r.max_tokens_of({"max_tokens": True}, 512), 400, "invalid_max_tokens"),
        (lambda r: r.chat_messages({"messages": [{"role": "human", "content": "hi"}]}, 64, 100), 400, None),
        (
            lambda r: r.chat_messages({"messages": [{"role": "user", "content": "x" * 101}]}, 64, 100),
            400,
            "context_length_exceeded",
        ),
        (lambda r: r.chat_messages({"messages": [{"role": "user", "content": " "}]}, 64, 100), 400, "empty_prompt"),
        (lambda r: r.completion_prompt({"prompt": "hi", "stream": True}, 100), 400, "unsupported_stream"),
        (lambda r: r.last_user_text([{"role": "system", "content": "be brief"}]), 400, "empty_prompt"),
        (lambda r: r.check_context(500, 20, 512), 400, "context_length_exceeded"),
    ],
)
def test_each_request_check_refuses_with_its_status_and_code(check, status, code):
    from adaptlab.serve import requests
    from adaptlab.serve.guard import ApiError

    with pytest.raises(ApiError) as refused:
        check(requests)
    assert (refused.value.status, refused.value.code) == (status, code) and refused.value.message


def test_stream_options_are_read_only_on_a_stream_and_must_be_an_object():
    from adaptlab.serve.guard import ApiError
    from adaptlab.serve.routes import stream_usage_of

    assert stream_usage_of({"stream": True, "stream_options": {"include_usage": True}}) and not stream_usage_of(
        {"stream": True}
    )
    assert not stream_usage_of({"stream_options": "ignored when not streamed"})
    with pytest.raises(ApiError, match="stream_options must be an object"):  # was an AttributeError mid-stream
        stream_usage_of({"stream": True, "stream_options": ["include_usage"]})


def test_the_model_input_is_token_ids_for_the_base_model_and_the_text_for_a_task(tiny_base):
    """The one prompt helper of both routes: chat messages through the template, a completion prompt as plain text."""
    from adaptlab.engine.prompt import encode_messages, encode_text
    from adaptlab.serve.guard import ApiError
    from adaptlab.serve.requests import model_input

    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "lost my card"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "the ATM kept it"},
    ]
    assert model_input(tiny_base, messages, True, 8) == encode_messages(tiny_base.tokenizer, messages)
    assert model_input(tiny_base, "lost my card", True, 8) == encode_text(tiny_base.tokenizer, "lost my card")
    asked = model_input(tiny_base, messages, False, 8)  # a conversation: a task version answers from every turn
    assert (
        isinstance(asked, History)
        and [t.content for t in asked.spoken] == ["lost my card", "ok", "the ATM kept it"]
        and asked.system == "be brief"
    )
    assert model_input(tiny_base, "lost my card", False, 8) == "lost my card"
    with pytest.raises(ApiError) as long:
        model_input(tiny_base, "card " * 400, True, 200)  # ~400 + 200 tokens > the context of 512
    assert long.value.code == "context_length_exceeded"


def test_each_failure_gets_its_true_status_and_only_logged_ones_a_request_id(caplog):
    from adaptlab.errors import AdaptlabError, QueryTooLong
    from adaptlab.remote.client import RemoteError
    from adaptlab.serve.failures import api_error_of
    from adaptlab.serve.models import ModelNotFound
    from adaptlab.serve.worker import LoadFailed, Unservable

    caplog.set_level(logging.ERROR, logger="adaptlab.serve")

    def failed(exc: BaseException) -> BaseException:  # raised, so it has a traceback to log
        try:
            raise exc
        except BaseException as raised:
            return raised

    def answer(exc: BaseException):
        error = api_error_of(failed(exc), "cards@v9")
        return error.status, error.retry_after is not None, error.request_id is not None, error

    too_long = answer(QueryTooLong("a query's prompt is 900 tokens, over the model's 512-token context"))
    assert too_long[:3] == (400, False, False) and too_long[3].code == "context_length_exceeded"
    assert answer(ModelNotFound("cards@v9 is a majority solver, which is not served here"))[:3] == (404, False, False)
    assert answer(RemoteError("no answer within 30 s"))[0] == 504 and answer(RemoteError("HTTP 500"))[0] == 502
    status, retry, logged, unservable = answer(Unservable("its files failed verification: adapter.safetensors"))
    assert (status, retry, logged) == (503, False, False) and "adapter.safetensors" in unservable.message
    for overload in (RuntimeError("CUDA out of memory at /srv/weights"), MemoryError()):  # retry later: 503
        status, retry, logged, error = answer(overload)
        assert (status, retry, logged) == (503, True, True) and "/srv" not in error.message
    load = LoadFailed("loading cards@v9 failed")
    load.__cause__ = failed(RuntimeError("size mismatch for lora_A in /srv/x"))
    for bug in (ZeroDivisionError("division by zero"), AdaptlabError("adapter 'x' is not loaded"), load):  # 500
        status, retry, logged, error = answer(bug)
        assert (status, retry, logged, error.kind) == (500, False, True, "server_error"), bug
        assert error.request_id in error.message and "/srv" not in error.message and "division" not in error.message
        assert dict(error.headers())[b"x-request-id"] == error.request_id.encode()
        assert error.request_id in error.body().decode() and "Traceback" not in error.body().decode()
        assert any(error.request_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert "size mismatch" in logging.Formatter().format(caplog.records[-1])  # a load error's cause is in its traceback


def test_loading_a_version_fails_as_what_went_wrong():
    """Only a verification failure says the files failed verification (naming them, not their folder); out of memory
    stays out of memory (503); anything else is a LoadFailed raised from the error (500, its traceback logged)."""
    from adaptlab.registry.store import FilesUnverified
    from adaptlab.serve.worker import LoadFailed, Unservable, load_solver

    class Failing:
        def __init__(self, exc: Exception):
            self.exc = exc

        def solver(self, name: str):
            raise self.exc

    unverified = FilesUnverified(
        "cards@v2: adapter_model.safetensors is missing from /srv/a", ["adapter_model.safetensors"]
    )
    with pytest.raises(Unservable, match="verification: adapter_model.safetensors") as refused:
        load_solver(Failing(unverified), "cards@v2")
    assert "/srv" not in str(refused.value)
    oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(RuntimeError) as raised:
        load_solver(Failing(oom), "cards@v2")
    assert raised.value is oom
    with pytest.raises(LoadFailed) as failed:
        load_solver(Failing(KeyError("base_model.model.lora_A")), "cards@v2")
    assert isinstance(failed.value.__cause__, KeyError) and "verification" not in str(failed.value)


# --- each failure its status -----------------------------------------------------------------------------


def _by_id(records, request_id: str):
    return [r for r in records if request_id in r.getMessage()]


def test_a_failing_batch_answers_503_with_a_request_id_to_each_of_its_requests_and_the_server_goes_on(
    tiny_base, caplog, monkeypatch
):
    """A torch RuntimeError (here: an injected out-of-memory) raised while a batch runs reaches each of its requests as
    a 503
    with its own request id, the traceback is in the log under the ids, and the next request is answered."""
    from adaptlab.engine.session import Session

    original, gate, sizes = Session.step, threading.Event(), []

    def failing(session):  # the first decoding step of the first two batches fails
        if len(sizes) >= 2:
            return original(session)
        sizes.append(session.live)
        if len(sizes) == 1:
            gate.wait(10)  # the worker is held on the first batch while the batch under test queues behind it
        raise RuntimeError("CUDA out of memory (injected)")

    monkeypatch.setattr(Session, "step", failing)
    caplog.set_level(logging.ERROR, logger="adaptlab.serve")
    app = _app(tiny_base)

    async def until(condition):
        deadline = time.monotonic() + 10
        while not condition() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def traffic(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            first = asyncio.ensure_future(client.post(CHAT, json=_ask("hello", max_tokens=4)))
            await until(lambda: sizes)
            batch = [
                asyncio.ensure_future(client.post(CHAT, json=_ask(f"hello {i}", max_tokens=4, stream=i == 3)))
                for i in range(4)
            ]
            await until(lambda: app.state.batcher.waiting == 4)
            gate.set()
            replies = await asyncio.gather(first, *batch)
            return replies, await client.post(CHAT, json=_ask("hello again", max_tokens=4))

    with serving(app) as url:
        replies, after = asyncio.run(traffic(url))
    assert sizes[:2] == [1, 4]  # the four concurrent requests (one streamed) shared the second failing batch
    assert [r.status_code for r in replies] == [503] * 5
    ids = [r.headers["x-request-id"] for r in replies]
    assert len(set(ids)) == 5 and all(i.startswith("req_") for i in ids)
    for reply, request_id in zip(replies, ids):
        error = reply.json()["error"]
        assert error["request_id"] == request_id and request_id in error["message"] and error["type"] == "server_error"
        assert reply.headers["retry-after"] and "Traceback" not in reply.text
    assert after.status_code == 200 and after.json()["choices"][0]["finish_reason"] in ("stop", "length")
    traced = {i for i in ids if any(r.exc_info for r in _by_id(caplog.records, i))}
    assert len(traced) == 2  # one traceback per failed batch, under the id of its first request answered
    assert all("CUDA out of memory (injected)" in logging.Formatter().format(r) for r in caplog.records if r.exc_info)
    for request_id in (
        set(ids) - traced
    ):  # the other requests of a batch log a line naming the id its traceback is under
        assert any(t in _by_id(caplog.records, request_id)[0].getMessage() for t in traced)


def test_a_bug_in_a_route_answers_500_with_a_request_id_and_the_traceback_only_in_the_log(
    tiny_base, caplog, monkeypatch
):
    from starlette.testclient import TestClient

    from adaptlab.serve import routes

    class Broken(NoRegistry):
        def versions(self):
            raise ZeroDivisionError("division by zero (injected)")

    def broken_answer(*args, **kwargs):
        return 1 / 0

    monkeypatch.setattr(routes, "chat_completion", broken_answer)  # the chat route's answer, after generation
    caplog.set_level(logging.ERROR, logger="adaptlab.serve")
    with TestClient(_app(tiny_base, Broken()), base_url="http://localhost") as client:
        replies = {
            "GET /v1/models": client.get("/v1/models"),
            f"POST {CHAT}": client.post(CHAT, json=_ask("hi", max_tokens=2)),
        }
        assert client.get("/health").status_code == 200
        after = client.post(CHAT, json=_ask("hi", stream=True, max_tokens=2))  # the server goes on
    assert after.status_code == 200 and after.text.rstrip().endswith("data: [DONE]")
    for where, reply in replies.items():
        request_id = reply.headers["x-request-id"]
        error = reply.json()["error"]
        assert reply.status_code == 500 and "retry-after" not in reply.headers, where
        assert error["request_id"] == request_id and request_id in error["message"] and error["type"] == "server_error"
        assert not any(t in reply.text for t in ("Traceback", "ZeroDivisionError", "division by zero", ".py"))
        logged = _by_id(caplog.records, request_id)
        traceback = logging.Formatter().format(logged[0])
        assert where in logged[0].getMessage()
        assert "Traceback" in traceback and "ZeroDivisionError" in traceback


def test_out_of_memory_in_a_route_answers_503_with_retry_after(tiny_base, caplog):
    from starlette.testclient import TestClient

    class Overloaded(NoRegistry):
        def versions(self):
            raise MemoryError()

    caplog.set_level(logging.ERROR, logger="adaptlab.serve")
    with TestClient(_app(tiny_base, Overloaded()), base_url="http://localhost") as client:
        reply = client.get("/v1/models")
    assert reply.status_code == 503 and int(reply.headers["retry-after"]) > 0
    assert reply.json()["error"]["request_id"] == reply.headers["x-request-id"] and "Traceback" not in reply.text


def test_a_version_whose_files_fail_verification_answers_503_naming_them(tmp_path, tiny_base):
    """Every time, without the folder's path, and the other models are still served."""
    from starlette.testclient import TestClient

    from adaptlab import kinds
    from adaptlab.data import Dataset, Example
    from adaptlab.registry import default_registry
    from adaptlab.task import Task

    task = Task("cards", "Route the message.", "classify", tuple(sorted({o for _, o in CARD_ROWS})))
    train = Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(CARD_ROWS)])
    kinds.strategy({"name": "zero_shot"}, tiny_base).fit(task, train).save(tmp_path / "zero_shot")
    registry = default_registry()
    good = registry.add_version("cards", "zero_shot", tmp_path / "zero_shot", {})
    bad = registry.add_version("cards", "zero_shot", tmp_path / "zero_shot", {})
    name = sorted(bad.files)[0]
    (bad.folder / name).write_text((bad.folder / name).read_text() + " ")
    with TestClient(_app(tiny_base, registry), base_url="http://localhost") as client:
        replies = [client.post(CHAT, json=_ask("my card never came", bad.ref)) for _ in range(2)]
        assert client.post(CHAT, json=_ask("my card never came", good.ref)).status_code == 200
    for reply in replies:
        message = reply.json()["error"]["message"]
        assert reply.status_code == 503 and name in message and "failed verification" in message
        assert str(bad.folder) not in reply.text and "request_id" not in reply.json()["error"]


# A Mistral-style rule: a template that refuses messages whose roles do not alternate, in its own words.
ALTERNATING = (
    "{% for m in messages %}{% if not loop.first and m['role'] == messages[loop.index0 - 1]['role'] %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% endfor %}"
)


def test_messages_the_chat_template_refuses_answer_400_in_its_words_and_the_others_are_answered(tmp_path, tiny_base):
    """The base model's and a task version's: 400 naming the template's rule, no request id (not a bug); the same
    server answers messages the template accepts, and one refused query among several fails alone. A template that
    does not compile is the server's fault: 500."""
    from jinja2.exceptions import TemplateSyntaxError
    from starlette.testclient import TestClient

    from adaptlab import kinds
    from adaptlab.data import Dataset, Example
    from adaptlab.engine.lm_solver import refused_messages
    from adaptlab.errors import MessagesRefused
    from adaptlab.registry import default_registry
    from adaptlab.serve.worker import Answer, solver_answers
    from adaptlab.task import Task

    template = tiny_base.tokenizer.chat_template
    tiny_base.tokenizer.chat_template = ALTERNATING + template
    task = Task("notes", "Answer the customer.", "generate", max_new_tokens=4)
    train = Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(CARD_ROWS)])
    solver = kinds.strategy({"name": "zero_shot"}, tiny_base).fit(task, train)
    solver.save(tmp_path / "zero_shot")
    version = default_registry().add_version("notes", "zero_shot", tmp_path / "zero_shot", {})
    repeated = [  # two assistant turns in a row: a conversation, and the template refuses it
        {"role": "user", "content": "my card never came"},
        {"role": "assistant", "content": "when did you order it?"},
        {"role": "assistant", "content": "and where?"},
        {"role": "user", "content": "last week, at home"},
    ]
    with TestClient(_app(tiny_base, default_registry()), base_url="http://localhost") as client:
        refused = {
            "base": client.post(CHAT, json={"model": "tiny", "messages": repeated, "max_tokens": 2}),
            "base, streamed": client.post(
                CHAT, json={"model": "tiny", "messages": repeated, "max_tokens": 2, "stream": True}
            ),
            "version": client.post(CHAT, json={"model": version.ref, "messages": repeated}),
            "version, streamed": client.post(CHAT, json={"model": version.ref, "messages": repeated, "stream": True}),
        }
        accepted = [client.post(CHAT, json=_ask("my card never came", m, max_tokens=2)) for m in ("tiny", version.ref)]
        tiny_base.tokenizer.chat_template = "{% if %}" + template  # does not compile
        broken = client.post(CHAT, json=_ask("my card never came", max_tokens=2))
    for where, reply in refused.items():
        error = reply.json()["error"]
        assert reply.status_code == 400, (where, reply.text)
        assert "Conversation roles must alternate" in error["message"] and "chat template" in error["message"], where
        assert error["code"] == "invalid_messages" and "request_id" not in error, where
    assert [r.status_code for r in accepted] == [200, 200]
    assert broken.status_code == 500 and broken.json()["error"]["request_id"]
    assert refused_messages(TemplateSyntaxError("unexpected end of template", 1)) is None
    tiny_base.tokenizer.chat_template = ALTERNATING + template
    from adaptlab.data.conversation import history_of

    answers = solver_answers(solver, ["my card never came", history_of(repeated)], [None, None])
    assert isinstance(answers[0], Answer) and isinstance(answers[1], MessagesRefused)  # the refused one fails alone


# --- usage: what a task version sent ------------------------------------------------------------


def test_task_versions_report_the_prompt_tokens_they_sent_and_references_report_none(tmp_path, tiny_base):
    from starlette.testclient import TestClient

    from adaptlab import kinds
    from adaptlab.data import Dataset, Example
    from adaptlab.registry import default_registry
    from adaptlab.task import Task

    task = Task("cards", "Route the message.", "classify", tuple(sorted({o for _, o in CARD_ROWS})))
    train = Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(CARD_ROWS)])
    registry = default_registry()
    refs = {}
    for spec in ({"name": "zero_shot"}, {"name": "few_shot", "k": 2, "selector": "random"}, {"name": "majority"}):
        kinds.strategy(spec, tiny_base).fit(task, train).save(tmp_path / spec["name"])
        refs[spec["name"]] = registry.add_version("cards", spec["name"], tmp_path / spec["name"], {}).ref
    app = _app(tiny_base, registry)
    text = "my card never came"
    with TestClient(app, base_url="http://localhost") as client:
        used = {
            name: client.post(CHAT, json=_ask(text, ref)).json()["usage"]["prompt_tokens"] for name, ref in refs.items()
        }
        streamed = [
            line
            for line in client.post(
                CHAT, json=_ask(text, refs["zero_shot"], stream=True, stream_options={"include_usage": True})
            ).text.splitlines()
            if '"usage"' in line
        ]
        completion = client.post("/v1/completions", json={"model": refs["zero_shot"], "prompt": text}).json()["usage"]
        sent = app.state.server.models.solver(refs["zero_shot"]).predict([text])[0].prompt_tokens
    assert (
        used["zero_shot"] == sent > 0 and completion["prompt_tokens"] == sent
    )  # what the solver's prompt held, in tokens
    assert f'"prompt_tokens": {sent}' in streamed[0]
    assert used["few_shot"] > used["zero_shot"]  # two shots in the prompt cost tokens
    assert used["majority"] == 0  # a reference that asks no model sends no prompt


# --- the rule that keeps serve/ readable -----------------------------------------------------------


def test_no_function_in_src_is_over_100_lines():
    """A function a person can hold in their head: create_app was 283 lines of closures once, run_compare 125."""
    long = []
    for path in SERVE.parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 100:
                long.append(f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long
