"""Remote models: a real HTTP OpenAI-compatible server on 127.0.0.1 (a small FastAPI fake started here)."""

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field

import pytest

from adaptlab.config import RemoteModelConfig
from adaptlab.errors import ConfigError
from adaptlab.remote import ChatClient, RemoteError, RemoteSolver
from adaptlab.task import Task

TASK = Task("cards", "Route the message.", "classify", ("card_arrival", "card_swallowed", "lost_or_stolen_card"))


@dataclass
class Fake:
    """What the fake endpoint answers, and what it saw."""

    answers: dict = field(default_factory=dict)  # query -> answer text
    logprobs: dict = field(default_factory=dict)  # query -> {token: logprob} for the first token
    fail_first: int = 0  # answer 503 (Retry-After: 0) to this many requests first
    status: int | None = None  # answer every request with this status
    key: str | None = None
    accepts_logprobs: bool = True
    delay: float = 0.0
    requests: list = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0


def _app(fake: Fake):
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        fake.requests.append(body)
        if fake.key and request.headers.get("authorization") != f"Bearer {fake.key}":
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
        if fake.status:
            return JSONResponse({"error": {"message": "nope"}}, status_code=fake.status)
        if fake.fail_first > 0:
            fake.fail_first -= 1
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503, headers={"Retry-After": "0"})
        if "logprobs" in body and not fake.accepts_logprobs:
            return JSONResponse({"error": {"message": "logprobs is not supported"}}, status_code=400)
        fake.in_flight += 1
        fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        await asyncio.sleep(fake.delay)
        fake.in_flight -= 1
        query = body["messages"][-1]["content"]
        text = fake.answers.get(query, "I am not sure")
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if body.get("logprobs") and query in fake.logprobs:
            top = [{"token": t, "logprob": lp} for t, lp in fake.logprobs[query].items()]
            choice["logprobs"] = {
                "content": [{"token": top[0]["token"], "logprob": top[0]["logprob"], "top_logprobs": top}]
            }
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        return {
            "id": "x",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(text.split()),
                "total_tokens": prompt_tokens + len(text.split()),
            },
        }

    return app


@pytest.fixture
def endpoint():
    """Start the fake on a free loopback port; yields (Fake, base_url)."""
    import uvicorn

    fake = Fake()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(fake), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    yield fake, f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)


def _client(url, **kw) -> ChatClient:
    return ChatClient(RemoteModelConfig(base_url=url, name="fake-model", **kw))


def test_answers_are_parsed_to_labels_logprobs_fill_in_and_unparseable_ones_count_wrong(endpoint):
    fake, url = endpoint
    fake.answers = {
        "my card never came": "card_arrival",
        "ATM ate it": " Card_Swallowed.",
        "lost it": "Hmm, hard to say",
        "what?": "no idea",
    }
    fake.logprobs = {"lost it": {"Hmm": -0.3, "lost": -0.9, "card": -1.2}}
    solver = RemoteSolver("zero_shot", _client(url), TASK)
    predictions = solver.predict(["my card never came", "ATM ate it", "lost it", "what?"])
    assert [p.output for p in predictions] == ["card_arrival", "card_swallowed", "lost_or_stolen_card", ""]
    info = solver.describe()
    assert info["unparseable"] == 1 and info["unparseable_examples"] == [{"input": "what?", "answer": "no idea"}]
    assert info["labels_from_logprobs"] == 1 and info["usage"]["requests"] == 4
    assert predictions[0].prompt_tokens > 0 and predictions[0].completion_tokens == 1
    system = fake.requests[0]["messages"][0]["content"]
    assert "card_arrival, card_swallowed, lost_or_stolen_card" in system and fake.requests[0]["temperature"] == 0


def test_retries_with_backoff_then_fail_with_a_clear_error(endpoint):
    fake, url = endpoint
    fake.fail_first = 2
    reply = _client(url, max_retries=3).chat([{"role": "user", "content": "hi"}], 8)
    assert reply.retries == 2 and reply.text == "I am not sure"
    fake.status = 503
    with pytest.raises(RemoteError, match="HTTP 503.*after 2 attempts"):
        _client(url, max_retries=1).chat([{"role": "user", "content": "hi"}], 8)
    fake.status = 404
    with pytest.raises(RemoteError, match="HTTP 404"):
        _client(url).chat([{"role": "user", "content": "hi"}], 8)
    assert len([r for r in fake.requests if r["messages"][0]["content"] == "hi"]) == 2 + 1 + 2 + 1  # 404 is not retried


def test_unreachable_endpoint_times_out_into_an_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RemoteError, match="cannot connect"):
        _client(f"http://127.0.0.1:{port}/v1", max_retries=1, timeout_s=2).chat([{"role": "user", "content": "x"}], 4)


def test_api_key_comes_from_the_named_variable(endpoint, monkeypatch):
    fake, url = endpoint
    fake.key = "s3cret"
    with pytest.raises(ConfigError, match="FAKE_KEY is not set"):
        _client(url, api_key_env="FAKE_KEY")
    monkeypatch.setenv("FAKE_KEY", "wrong")
    with pytest.raises(RemoteError, match=r"check the API key in \$FAKE_KEY"):
        _client(url, api_key_env="FAKE_KEY").chat([{"role": "user", "content": "x"}], 4)
    monkeypatch.setenv("FAKE_KEY", "s3cret")
    client = _client(url, api_key_env="FAKE_KEY")
    assert client.chat([{"role": "user", "content": "x"}], 4).text
    assert "s3cret" not in json.dumps(client.describe())


def test_concurrency_is_limited_and_endpoints_without_logprobs_still_work(endpoint):
    fake, url = endpoint
    fake.delay, fake.accepts_logprobs = 0.05, False
    client = _client(url, max_concurrency=3)
    replies = client.chat_many([[{"role": "user", "content": f"q{i}"}] for i in range(12)], 4)
    assert len(replies) == 12 and 1 < fake.max_in_flight <= 3
    assert client.logprobs is False


def test_compare_few_shot_on_a_remote_model_against_lora_on_the_local_one(endpoint, card_experiment, monkeypatch):
    from adaptlab.runs.compare import run_compare

    fake, url = endpoint
    fake.answers = {
        "my card never came": "card_arrival",
        "card was stolen": "lost_or_stolen_card",
        "the ATM kept it": "card_swallowed",
    }
    monkeypatch.setenv("FAKE_KEY", "k")
    text = card_experiment.read_text().replace(
        "  - {name: few_shot, k: 2, selector: random}\n",
        f"  - {{name: few_shot, k: 2, selector: random, model: {{base_url: '{url}', name: "
        f"fake-model, api_key_env: FAKE_KEY, price_input_per_1k: 0.5, price_output_per_1k: 1.5}}}}\n",
    )
    card_experiment.write_text(text)
    results, run_dir = run_compare(card_experiment, card_experiment.parent / "run")
    by_name = {s["name"]: s for s in results["strategies"]}
    remote = by_name["few_shot"]
    assert remote["solver"]["base_model"] == {"base_url": url, "name": "fake-model"}
    assert remote["metrics"]["accuracy"] == pytest.approx(0.5) and remote["solver"]["unparseable"] == 3
    usage = remote["solver"]["usage"]
    assert remote["solver"]["cost_usd"] == pytest.approx(
        (usage["prompt_tokens"] * 0.5 + usage["completion_tokens"] * 1.5) / 1000
    )
    assert all(len(r["messages"]) == 1 + 2 * 2 + 1 for r in fake.requests)  # system, 2 shots, query
    assert by_name["lora"]["solver"]["base_model"] == results["base_model"]
    assert (run_dir / "solvers" / "few_shot" / "solver.json").is_file()


def _scripted(*answers):
    """A ChatClient over an httpx MockTransport that answers (status, JSON body) in turn; returns (client, bodies it
    saw)."""
    import httpx

    seen, queue = [], list(answers)

    def handle(request):
        seen.append(json.loads(request.content))
        status, body = queue.pop(0)
        return httpx.Response(status, json=body, headers={"Retry-After": "0"})

    return ChatClient(
        RemoteModelConfig(base_url="http://fake/v1", name="fake-model", max_retries=0),
        transport=httpx.MockTransport(handle),
    ), seen


def _ok(**choice):
    return 200, {
        "choices": [{"message": {"role": "assistant", "content": "card_arrival"}} | choice],
        "usage": {"prompt_tokens": 7, "completion_tokens": 1},
    }


NO_LOGPROBS = (400, {"error": {"message": "logprobs is not supported"}})


def test_asking_again_without_logprobs_does_not_use_up_the_retries():
    client, seen = _scripted(NO_LOGPROBS, _ok())
    reply = client.chat([{"role": "user", "content": "hi"}], 4)
    assert reply.text == "card_arrival" and reply.retries == 0 and client.logprobs is False
    assert "logprobs" in seen[0] and "logprobs" not in seen[1]
    client, seen = _scripted(NO_LOGPROBS, (503, {"error": {"message": "overloaded"}}))
    with pytest.raises(RemoteError, match="HTTP 503: overloaded after 1 attempts"):
        client.chat([{"role": "user", "content": "hi"}], 4)
    client, seen = _scripted(NO_LOGPROBS, NO_LOGPROBS)
    with pytest.raises(RemoteError, match="HTTP 400: logprobs is not supported"):
        client.chat([{"role": "user", "content": "hi"}], 4)
    assert len(seen) == 2


@pytest.mark.parametrize(
    "status, body, match",
    [
        (503, [1, 2], r"HTTP 503: \[1,2\]"),
        (500, "model crashed", "HTTP 500: model crashed"),
        (502, {"error": ["x"]}, r"HTTP 502: \['x'\]"),
        (200, {"choices": []}, "not an OpenAI chat completion"),
        (200, {"choices": [{"message": None}]}, "not an OpenAI chat completion"),
        (200, [1, 2], "not an OpenAI chat completion"),
        (200, {"choices": [{"message": {"content": ["a", "b"]}}]}, r"message.content is list, not text"),
        (200, {"choices": [{"message": {"content": "a"}}], "usage": [3]}, "usage is list, not an object"),
        (
            200,
            {"choices": [{"message": {"content": "a"}}], "usage": {"prompt_tokens": "many"}},
            "usage.prompt_tokens is 'many', not a token count",
        ),
        (
            200,
            {"choices": [{"message": {"content": "a"}}], "usage": {"completion_tokens": -1}},
            "usage.completion_tokens is -1",
        ),
        (*_ok(logprobs={"content": [5]}), r"logprobs.content\[0\] is 5, not an object"),
        (*_ok(logprobs={"content": "tokens"}), "logprobs.content is str, not a list"),
        (*_ok(logprobs=[1]), "choices\\[0\\].logprobs is list, not an object"),
        (
            *_ok(logprobs={"content": [{"top_logprobs": [{"logprob": -0.1}]}]}),
            r"top_logprobs\[0\] is \{'logprob': -0.1\}",
        ),
        (
            *_ok(
                logprobs={
                    "content": [{"top_logprobs": [{"token": "a", "logprob": -0.1}, {"token": "b", "logprob": "low"}]}]
                }
            ),
            r"top_logprobs\[1\] is",
        ),
        (*_ok(logprobs={"content": [{"top_logprobs": "ab"}]}), "top_logprobs is str, not a list"),
    ],
)
def test_odd_answers_are_a_remote_error_that_says_what_is_wrong(status, body, match):
    client, _ = _scripted((status, body))
    with pytest.raises(RemoteError, match=match):
        client.chat([{"role": "user", "content": "hi"}], 4)


def test_well_formed_logprobs_and_their_absence_are_read():
    top = {
        "content": [
            {
                "token": "card",
                "logprob": -0.1,
                "top_logprobs": [{"token": "card", "logprob": -0.1}, {"token": "lost", "logprob": -3}],
            }
        ]
    }
    for logprobs, expected in [
        (top, {"card": -0.1, "lost": -3.0}),
        (None, None),
        ({"content": None}, None),
        ({"content": []}, None),
        ({"content": [{"token": "a", "top_logprobs": []}]}, None),
    ]:
        client, _ = _scripted(_ok(logprobs=logprobs))
        reply = client.chat([{"role": "user", "content": "hi"}], 4)
        assert reply.first_token_logprobs == expected and (reply.prompt_tokens, reply.completion_tokens) == (7, 1)
