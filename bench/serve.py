"""Server throughput: 8 concurrent clients against one client at a time, same requests, same task; streaming.

The banking-cards task (examples/) is registered as a zero-shot version over the
embedded SmolLM2-135M and served by `adaptlab serve`'s app on 127.0.0.1 (uvicorn in
this process). The same --requests test messages are sent (a) one after another by
one client and (b) by 8 client threads at once; the server batches requests that
arrive together (one scoring pass shares the prompt prefix). Both runs must return
the same labels. Then --streams chat requests to the base model itself (max_tokens 64), 8
at a time, streamed: the time to the first content token against the time to the full
answer, per request. Last line: one JSON object, also written to
bench/results/serve-cpu.json (--out).

    python bench/serve.py [--requests 48] [--streams 16] [--out bench/results/serve-cpu.json]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "serve-cpu.json")
    args = parser.parse_args()
    os.environ.setdefault("ADAPTLAB_HOME", tempfile.mkdtemp(prefix="adaptlab-bench-"))
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
    registry = Registry(Path(os.environ["ADAPTLAB_HOME"]) / "bench-registry")
    base = load_base_model("smollm2-135m-instruct", device="cpu")
    saved = Path(os.environ["ADAPTLAB_HOME"]) / "bench-solver"
    strategy({"name": "zero_shot"}, base).fit(task, train).save(saved)  # solver.json records the base it runs on
    version = registry.add_version(task.name, "zero_shot", saved, {"strategy": {"name": "zero_shot"}}, extra={"task.json": task.to_dict()})
    served = ServedModels(base, registry)
    app = create_app(served, "smollm2-135m-instruct", None, Limits(max_queue=256, max_batch=8))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    messages = [e.input for e in test][: args.requests]
    http = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=16))

    def ask(text: str) -> str:
        reply = http.post(url, json={"model": version.ref, "messages": [{"role": "user", "content": text}]})
        reply.raise_for_status()
        return reply.json()["choices"][0]["message"]["content"]

    ask(messages[0])  # warm-up: loads the version, first-call costs
    start = time.perf_counter()
    sequential = [ask(m) for m in messages]
    seq_s = time.perf_counter() - start
    batcher_before = _batches(app)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(ask, messages))
    conc_s = time.perf_counter() - start
    batches = _batches(app) - batcher_before
    first_s, full_s, tokens = [], [], []

    def stream(text: str) -> None:
        start, first = time.perf_counter(), None
        body = {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": text}], "max_tokens": 64, "stream": True, "stream_options": {"include_usage": True}}
        with http.stream("POST", url, json=body) as reply:
            for line in reply.iter_lines():
                if not line.startswith("data: {"):
                    continue
                event = json.loads(line[6:])
                if first is None and event["choices"][0]["delta"].get("content"):
                    first = time.perf_counter() - start
                if event.get("usage"):
                    tokens.append(event["usage"]["completion_tokens"])
        first_s.append(first)
        full_s.append(time.perf_counter() - start)

    stream(messages[0])  # warm-up
    first_s.clear(), full_s.clear(), tokens.clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(stream, [f"Write two sentences about: {m}" for m in messages[: args.streams]]))
    server.should_exit = True
    rps_seq, rps_conc = len(messages) / seq_s, len(messages) / conc_s
    print(f"{len(messages)} chat requests to {version.ref} (zero-shot, 8 labels) on SmolLM2-135M, CPU, {os.cpu_count()} cores")
    print(f"{'clients':<12} {'seconds':>8} {'req/s':>7} {'batches':>8}")
    print(f"{'1 (in turn)':<12} {seq_s:>8.1f} {rps_seq:>7.2f} {len(messages):>8}")
    print(f"{'8 at once':<12} {conc_s:>8.1f} {rps_conc:>7.2f} {batches:>8}")
    solver = served.solver(version.ref)
    differing = sum(a != b for a, b in zip(sequential, concurrent))
    print(f"labels that differ between the two runs: {differing} of {len(messages)} (scoring precision {solver.precision}: {solver.precision_note})")
    print(f"\n{len(full_s)} streamed chat requests to the base model, 8 at once, max_tokens 64 ({sum(tokens)} tokens in all)")
    print(f"{'':<24} {'p50 s':>7} {'p95 s':>7}")
    print(f"{'first content token':<24} {_pct(first_s, 50):>7.2f} {_pct(first_s, 95):>7.2f}")
    print(f"{'full answer':<24} {_pct(full_s, 50):>7.2f} {_pct(full_s, 95):>7.2f}")
    result = {"requests": len(messages), "rps_sequential": rps_seq, "rps_concurrent_8": rps_conc, "speedup_concurrent": rps_conc / rps_seq, "batches_concurrent": batches, "same_answers": sequential == concurrent, "answers_differing": differing, "precision": solver.precision,
              "streams": len(full_s), "stream_tokens": sum(tokens), "ttft_p50_s": _pct(first_s, 50), "ttft_p95_s": _pct(first_s, 95), "full_answer_p50_s": _pct(full_s, 50), "full_answer_p95_s": _pct(full_s, 95)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result) + "\n")
    print(json.dumps(result))


def _pct(values: list, q: float) -> float:
    import numpy as np

    return float(np.percentile([v for v in values if v is not None], q))


def _batches(app) -> int:
    """Batches the server's worker has run so far (read from the app's state for the table)."""
    return app.state.batcher.batches if hasattr(app.state, "batcher") else -1


if __name__ == "__main__":
    main()
