"""Server throughput: one client at a time against 8 at once, the same requests both ways: label scoring and generation.

(a) Classification: the banking-cards task (examples/) is registered as a zero-shot version
over the embedded SmolLM2-135M and served by `adaptlab serve`'s app on 127.0.0.1 (uvicorn in
this process). --requests test messages are sent one after another by one client, then by 8
client threads at once; the server scores the labels of requests that arrive together in
one pass (sharing the prompt prefix). Both runs must return the same labels.
(b) Generation: --streams streamed chat requests to the base model itself ("Write two
sentences about: ...", max_tokens 64), one at a time, then 8 at a time. The server batches
generation continuously: a request that arrives while a batch decodes joins it at the next
step. Reported: requests and answer tokens per second, the time to the first content token
and to the whole answer (p50, p95) both ways, and whether both runs gave the same answers
(greedy, fp32).
Last line: one JSON object, also written to bench/results/serve-cpu.json (--out).

    python bench/serve.py [--requests 48] [--streams 32] [--out bench/results/serve-cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

EXAMPLE = Path(__file__).parents[1] / "examples" / "banking-cards"
BASE = "smollm2-135m-instruct"
CLIENTS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "serve-cpu.json")
    args = parser.parse_args()
    os.environ.setdefault("ADAPTLAB_HOME", tempfile.mkdtemp(prefix="adaptlab-bench-"))
    app, served, ref, port = _start()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    messages = [json.loads(line)["input"] for line in (EXAMPLE / "test.jsonl").read_text().splitlines()]
    http = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=16))
    labels = _classification(http, url, ref, messages[: args.requests], app)
    solver = served.solver(ref)
    labels |= {"precision": solver.precision, "precision_note": solver.precision_note}
    chats = _generation(http, url, [f"Write two sentences about: {m}" for m in messages[: args.streams]], app)
    _print(labels, chats, ref)
    result = {key: value for key, value in (labels | chats).items() if key != "precision_note"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result) + "\n")
    print(json.dumps(result))


def _start():
    """The zero-shot version registered and the app serving it on a free port: (app, served models, version ref,
    port)."""
    import uvicorn

    from adaptlab.data import load_dataset
    from adaptlab.kinds import strategy
    from adaptlab.models import load_base_model
    from adaptlab.registry import Registry
    from adaptlab.serve import Limits, ServedModels, create_app
    from adaptlab.task import make_task

    config = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())
    train, test = load_dataset(EXAMPLE / "train.jsonl"), load_dataset(EXAMPLE / "test.jsonl")
    task = make_task("banking-cards", config["task"]["instruction"], train, test)
    home = Path(os.environ["ADAPTLAB_HOME"])
    registry = Registry(home / "bench-registry")
    base = load_base_model(BASE, device="cpu")
    strategy({"name": "zero_shot"}, base).fit(task, train).save(
        home / "bench-solver"
    )  # solver.json records the base it runs on
    version = registry.add_version(
        task.name,
        "zero_shot",
        home / "bench-solver",
        {"strategy": {"name": "zero_shot"}},
        extra={"task.json": task.to_dict()},
    )
    served = ServedModels(base, registry)
    app = create_app(served, BASE, None, Limits(max_queue=256, max_batch=CLIENTS))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return app, served, version.ref, port


def _classification(http: httpx.Client, url: str, ref: str, messages: list[str], app) -> dict:
    """Label requests to the version, one client then CLIENTS at once: requests per second and whether the labels
    agree."""

    def ask(text: str) -> str:
        reply = http.post(url, json={"model": ref, "messages": [{"role": "user", "content": text}]})
        reply.raise_for_status()
        return reply.json()["choices"][0]["message"]["content"]

    ask(messages[0])  # warm-up: loads the version, first-call costs
    start = time.perf_counter()
    sequential = [ask(m) for m in messages]
    seq_s = time.perf_counter() - start
    batches = _batches(app)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        concurrent = list(pool.map(ask, messages))
    conc_s = time.perf_counter() - start
    rps_seq, rps_conc = len(messages) / seq_s, len(messages) / conc_s
    differing = sum(a != b for a, b in zip(sequential, concurrent))
    return {
        "requests": len(messages),
        "seconds_sequential": seq_s,
        "seconds_concurrent_8": conc_s,
        "rps_sequential": rps_seq,
        "rps_concurrent_8": rps_conc,
        "speedup_concurrent": rps_conc / rps_seq,
        "batches_concurrent": _batches(app) - batches,
        "same_answers": sequential == concurrent,
        "answers_differing": differing,
    }


def _generation(http: httpx.Client, url: str, texts: list[str], app) -> dict:
    """Streamed chats to the base model, one client then CLIENTS at once: throughput, first-token and whole-answer
    times."""
    _stream(http, url, texts[0])  # warm-up
    start = time.perf_counter()
    alone = [_stream(http, url, t) for t in texts]
    seq_s = time.perf_counter() - start
    batches = _batches(app)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        loaded = list(pool.map(lambda t: _stream(http, url, t), texts))
    conc_s = time.perf_counter() - start
    tokens = sum(r["tokens"] for r in loaded)
    first, full = [r["first_s"] for r in loaded], [r["full_s"] for r in loaded]
    rps_seq, rps_conc = len(texts) / seq_s, len(texts) / conc_s
    return {
        "streams": len(texts),
        "stream_tokens": tokens,
        "generate_seconds_sequential": seq_s,
        "generate_seconds_concurrent_8": conc_s,
        "generate_rps_sequential": rps_seq,
        "generate_rps_concurrent_8": rps_conc,
        "generate_speedup_concurrent": rps_conc / rps_seq,
        "generate_tokens_per_s_sequential": sum(r["tokens"] for r in alone) / seq_s,
        "generate_tokens_per_s_concurrent_8": tokens / conc_s,
        "generate_batches_concurrent": _batches(app) - batches,
        "generate_same_answers": [r["text"] for r in alone] == [r["text"] for r in loaded],
        "generate_answers_differing": sum(a["text"] != b["text"] for a, b in zip(alone, loaded)),
        "ttft_p50_sequential_s": _pct([r["first_s"] for r in alone], 50),
        "full_answer_p50_sequential_s": _pct([r["full_s"] for r in alone], 50),
        "ttft_p50_s": _pct(first, 50),
        "ttft_p95_s": _pct(first, 95),
        "full_answer_p50_s": _pct(full, 50),
        "full_answer_p95_s": _pct(full, 95),
    }


def _stream(http: httpx.Client, url: str, text: str) -> dict:
    """One streamed chat to the base model: its text, completion tokens, and seconds to the first content and to the
    end."""
    start, first, pieces, tokens = time.perf_counter(), None, [], 0
    body = {
        "model": BASE,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 64,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with http.stream("POST", url, json=body) as reply:
        reply.raise_for_status()
        for line in reply.iter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            if event["choices"] and (content := event["choices"][0]["delta"].get("content")):
                first = first if first is not None else time.perf_counter() - start
                pieces.append(content)
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
    return {"text": "".join(pieces), "tokens": tokens, "first_s": first, "full_s": time.perf_counter() - start}


def _print(labels: dict, chats: dict, ref: str) -> None:
    """The two tables."""
    print(
        f"{labels['requests']} chat requests to {ref} (zero-shot, labels scored), SmolLM2-135M, CPU, "
        f"{os.cpu_count()} cores"
    )
    print(f"{'clients':<12} {'seconds':>8} {'req/s':>7}")
    print(f"{'1 (in turn)':<12} {labels['seconds_sequential']:>8.1f} {labels['rps_sequential']:>7.2f}")
    print(
        f"{'8 at once':<12} {labels['seconds_concurrent_8']:>8.1f} "
        f"{labels['rps_concurrent_8']:>7.2f}   {labels['speedup_concurrent']:.2f}x, "
        f"{labels['batches_concurrent']} batches"
    )
    print(
        f"labels that differ between the two runs: {labels['answers_differing']} of "
        f"{labels['requests']} (scoring precision {labels['precision']}: {labels['precision_note']})"
    )
    print(f"\n{chats['streams']} streamed chats to the base model, max_tokens 64, generation batched continuously")
    print(f"{'clients':<12} {'seconds':>8} {'req/s':>7} {'tok/s':>7} {'first p50':>10} {'whole p50':>10}")
    for name, key, first, full in (
        ("1 (in turn)", "sequential", "ttft_p50_sequential_s", "full_answer_p50_sequential_s"),
        ("8 at once", "concurrent_8", "ttft_p50_s", "full_answer_p50_s"),
    ):
        print(
            f"{name:<12} {chats['generate_seconds_' + key]:>8.1f} "
            f"{chats['generate_rps_' + key]:>7.2f} {chats['generate_tokens_per_s_' + key]:>7.1f} "
            f"{chats[first]:>10.2f} {chats[full]:>10.2f}"
        )
    print(
        f"8 at once: {chats['generate_speedup_concurrent']:.2f}x the requests per second of one at a "
        f"time; first token p95 {chats['ttft_p95_s']:.2f} s; "
        f"answers that differ between the two runs: {chats['generate_answers_differing']} of {chats['streams']}"
    )


def _pct(values: list, q: float) -> float:
    """The q-th percentile of the values measured (NaN when none was: no answer had content)."""
    import numpy as np

    measured = [v for v in values if v is not None]
    return float(np.percentile(measured, q)) if measured else float("nan")


def _batches(app) -> int:
    """Batches the server's worker has run so far (read from the app's state for the table)."""
    return app.state.batcher.batches if hasattr(app.state, "batcher") else -1


if __name__ == "__main__":
    main()
