"""The OpenAI-compatible server, live on 127.0.0.1, driven by the official `openai` client."""

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

API_KEY = "test-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    """compare on the card experiment (it registers its solvers), lora promoted, then the server on a free port."""
    import os

    import uvicorn

    from adaptlab.models import load_base_model
    from adaptlab.registry import Registry
    from adaptlab.serve import Limits, ServedModels, create_app
    from conftest import CARD_ROWS, write_jsonl

    root = tmp_path_factory.mktemp("serve")
    home = root / "home"
    old = os.environ.get("ADAPTLAB_HOME")
    os.environ["ADAPTLAB_HOME"] = str(home)
    write_jsonl(root / "train.jsonl", CARD_ROWS)
    write_jsonl(root / "test.jsonl", [("my card never came", "card_arrival"), ("card was stolen", "lost_or_stolen_card"), ("the ATM kept it", "card_swallowed")])
    (root / "e.yaml").write_text(f"""task: {{name: cards, instruction: "Route the message."}}
data: {{train: train.jsonl, test: test.jsonl}}
model: {tiny_model_dir}
baselines: false
strategies:
  - name: zero_shot
  - {{name: few_shot, k: 2, selector: random}}
  - {{name: lora, epochs: 1, batch_size: 4, bf16: false}}
""")
    from adaptlab.experiment import run_compare

    run_compare(root / "e.yaml", root / "run")
    registry = Registry(home / "registry")
    registry.promote("cards@v3")  # the lora version
    base = load_base_model(str(tiny_model_dir), device="cpu")
    app = create_app(ServedModels(base, registry), "tiny", API_KEY, Limits(max_queue=4, max_tokens=64))
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not uv.started and time.time() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", registry
    uv.should_exit = True
    thread.join(timeout=30)
    if old is None:
        os.environ.pop("ADAPTLAB_HOME", None)
    else:
        os.environ["ADAPTLAB_HOME"] = old


@pytest.fixture(autouse=True)
def _home():  # the module's server keeps its own ADAPTLAB_HOME
    yield


def _client(url, key=API_KEY):
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def test_models_chat_stream_and_completions_with_the_openai_client(server):
    url, _ = server
    client = _client(url)
    ids = [m.id for m in client.models.list().data]
    assert ids[:2] == ["tiny", "cards"] and {"cards@v1", "cards@v2", "cards@v3"} <= set(ids)
    labels = {"card_arrival", "lost_or_stolen_card", "card_swallowed"}
    for model in ("cards", "cards@v1", "cards@v2"):
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "my card never came"}])
        assert reply.choices[0].message.content in labels and reply.model == model
    plain = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello"}], max_tokens=5)
    assert isinstance(plain.choices[0].message.content, str) and plain.usage.prompt_tokens > 0 and plain.usage.completion_tokens <= 5
    stream = client.chat.completions.create(model="cards", messages=[{"role": "user", "content": "lost my card"}], stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream]
    assert "".join(pieces) in labels
    completion = client.completions.create(model="cards@v1", prompt="the ATM kept it")
    assert completion.choices[0].text in labels


def test_errors_are_openai_shaped_and_name_no_paths(server):
    import openai

    url, registry = server
    client = _client(url)
    for bad in ("nope", "../etc/passwd", "cards@v99", "/abs", "a%2fb", "x\x00y"):
        with pytest.raises(openai.NotFoundError) as info:
            client.chat.completions.create(model=bad, messages=[{"role": "user", "content": "hi"}])
        assert "error" in info.value.body or info.value.body.get("message")
    with pytest.raises(openai.AuthenticationError):
        _client(url, "wrong").models.list()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="cards", messages=[])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=100000)
    big = httpx.post(f"{url}/v1/chat/completions", content=b"x" * 2_000_000, headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert big.status_code == 413
    broken = httpx.post(f"{url}/v1/chat/completions", content=b"{not json", headers={"Authorization": f"Bearer {API_KEY}"})
    assert broken.status_code == 400 and "Traceback" not in broken.text and "/" not in broken.json()["error"]["message"].replace("/v1", "")
    for path in ("/v1/models", "/v1/chat/completions", "/v1/completions"):  # every route but health and ready needs the key
        method = httpx.get if path == "/v1/models" else httpx.post
        assert method(f"{url}{path}").status_code == 401
    assert httpx.get(f"{url}/health").status_code == 200 and httpx.get(f"{url}/ready").status_code == 200


def test_a_corrupted_adapter_is_refused_and_the_rest_still_served(server):
    url, registry = server
    lora = registry.get("cards@v3")
    copy = registry.add_version("cards", "lora", lora.folder, lora.lineage)
    weights = copy.folder / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
    reply = httpx.post(f"{url}/v1/chat/completions", json={"model": copy.ref, "messages": [{"role": "user", "content": "hi"}]}, headers={"Authorization": f"Bearer {API_KEY}"})
    assert reply.status_code == 503 and str(copy.folder) not in reply.text
    ok = _client(url).chat.completions.create(model="cards", messages=[{"role": "user", "content": "hi"}])
    assert ok.choices[0].message.content


def test_64_concurrent_requests_get_200_or_429_never_500(server):
    url, _ = server

    async def burst():
        async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
            requests = [client.post(f"{url}/v1/chat/completions", json={"model": "tiny", "messages": [{"role": "user", "content": f"hello {i}"}], "max_tokens": 8}) for i in range(64)]
            return await asyncio.gather(*requests)

    replies = asyncio.run(burst())
    codes = [r.status_code for r in replies]
    assert set(codes) <= {200, 429, 503} and codes.count(200) >= 4
    assert all(r.headers.get("retry-after") for r in replies if r.status_code != 200)
    assert all(json.loads(r.text)["error"]["type"] for r in replies if r.status_code != 200)
    after = _client(url).chat.completions.create(model="cards", messages=[{"role": "user", "content": "lost my card"}])
    assert after.choices[0].message.content


def test_serve_refuses_a_public_address_without_a_key(monkeypatch):
    from typer.testing import CliRunner

    from adaptlab.cli import app
    from adaptlab.errors import ConfigError

    monkeypatch.delenv("ADAPTLAB_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert isinstance(result.exception, ConfigError) and "ADAPTLAB_API_KEY" in str(result.exception)


def test_sigterm_finishes_accepted_requests_and_exits_cleanly(tiny_model_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    port = _free_port()
    env = {**os.environ, "ADAPTLAB_HOME": str(tmp_path / "home"), "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("ADAPTLAB_API_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "adaptlab", "serve", "--model", str(tiny_model_dir), "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/ready").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    name = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]

    def ask(i):
        try:
            return httpx.post(f"{url}/v1/chat/completions", json={"model": name, "messages": [{"role": "user", "content": f"hello {i}"}], "max_tokens": 64}, timeout=60).status_code
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
            return "refused"  # connecting as the server stopped listening: never accepted

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(ask, i) for i in range(16)]
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        codes = [f.result() for f in futures]
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGTERM), stderr  # uvicorn re-raises SIGTERM after draining, as supervisors expect
    assert set(codes) <= {200, 503, "refused"} and codes.count(200) >= 1 and "Traceback" not in stderr


def test_a_query_too_long_for_the_context_fails_alone(server):
    url, _ = server

    async def together():
        async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
            texts = ["lost my card", "where is my card " * 300, "the ATM kept it"]
            return await asyncio.gather(*[client.post(f"{url}/v1/chat/completions", json={"model": "cards@v1", "messages": [{"role": "user", "content": t}]}) for t in texts])

    ok1, long, ok2 = asyncio.run(together())
    assert (ok1.status_code, long.status_code, ok2.status_code) == (200, 400, 200)
    assert "context" in long.json()["error"]["message"]


def test_adaptlab_serve_is_a_remote_model_for_adaptlab_itself(server):
    """A strategy's remote model can be adaptlab's own server: here its served task answers a RemoteSolver."""
    from adaptlab.config import RemoteModelConfig
    from adaptlab.remote import ChatClient, RemoteSolver
    from adaptlab.task import Task

    url, _ = server
    import os

    os.environ["ADAPTLAB_TEST_KEY"] = API_KEY
    try:
        client = ChatClient(RemoteModelConfig(base_url=f"{url}/v1", name="cards", api_key_env="ADAPTLAB_TEST_KEY"))
        base = ChatClient(RemoteModelConfig(base_url=f"{url}/v1", name="tiny", api_key_env="ADAPTLAB_TEST_KEY"))
    finally:
        os.environ.pop("ADAPTLAB_TEST_KEY")
    task = Task("cards", "Route the message.", "classify", ("card_arrival", "card_swallowed", "lost_or_stolen_card"))
    solver = RemoteSolver("zero_shot", client, task)
    predictions = solver.predict(["my card never came", "the ATM kept it"])
    assert all(p.output in task.labels for p in predictions) and solver.describe()["unparseable"] == 0  # the served task answers with a label
    reply = base.chat([{"role": "user", "content": "hi"}], 4)
    assert isinstance(reply.text, str) and reply.prompt_tokens > 0 and reply.completion_tokens <= 4  # usage from adaptlab's own server
