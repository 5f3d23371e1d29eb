"""Judge speed: 100 pairs of real answers judged in both orders (200 requests) by the embedded SmolLM2-135M through
`adaptlab serve`, concurrently as `adaptlab judge` sends them, against the same 200 prompts one at a time.

The answers are a bank-assistant compare run's (--run, default /tmp/shared-runs/bank: conversations, contenders
constant, nearest, zero_shot, few_shot, lora), else examples/bank-assistant's test turns paired with rewordings of
themselves. 100 (row, pair) items are drawn with seed 0 among those whose answers differ. `adaptlab serve` runs as a
subprocess on a free loopback port; both passes use an empty in-memory cache, so every request reaches the server.
Reported: wall time of each pass, requests per second, the speed-up, whether both passes got the same replies
(greedy), and what the judge said: verdicts that survived the swap, ties, replies without a verdict, the first
position's share of the verdicts read.
Last line: one JSON object, also written to bench/results/judge-speed-cpu.json (--out).

    python bench/judge_speed.py [--pairs 100] [--concurrency 16] [--run RUN] [--out bench/results/judge-speed-cpu.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _results import write_result

from adaptlab.config import JudgeConfig
from adaptlab.judges import Judge, JudgeCache, Pair, rubric_for

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bank-assistant"
BASE = "smollm2-135m-instruct"
TARGET_S = 180.0  # the bound for 100 pairs both orders on this CPU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--run", type=Path, default=Path("/tmp/shared-runs/bank"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "judge-speed-cpu.json")
    args = parser.parse_args()
    os.environ.setdefault("ADAPTLAB_HOME", tempfile.mkdtemp(prefix="adaptlab-bench-"))
    pairs, source, instruction = _pairs(args.run, args.pairs)
    server, url = _serve()
    try:
        name = httpx.get(f"{url}/v1/models", timeout=30).json()["data"][0]["id"]
        passes = {c: _pass(url, name, pairs, instruction, c) for c in (args.concurrency, 1)}
    finally:
        server.terminate()
        server.wait(timeout=60)
    fast, slow = passes[args.concurrency], passes[1]
    result = {
        "bench": "judge_speed",
        "judge": BASE,
        "answers": source,
        "pairs": len(pairs),
        "requests": fast["asked"],
        "concurrency": args.concurrency,
        "seconds": fast["seconds"],
        "requests_per_s": round(fast["asked"] / fast["seconds"], 2),
        "sequential_seconds": slow["seconds"],
        "sequential_requests_per_s": round(slow["asked"] / slow["seconds"], 2),
        "speedup": round(slow["seconds"] / fast["seconds"], 2),
        "same_replies": fast["replies"] == slow["replies"],
        "under_target": fast["seconds"] < TARGET_S,
        "target_s": TARGET_S,
        "cpus": os.cpu_count(),
    } | fast["verdicts"]
    _print(result)
    write_result(args.out, result)


def _pairs(run: Path, n: int) -> tuple[list[Pair], str, str]:
    """`n` (row, pair of contenders) items with different answers, drawn with seed 0 from a compare run's results."""
    from adaptlab.judges.judge import folded
    from adaptlab.results import load_results

    if not (run / "results.json").is_file():
        return _example_pairs(n)
    results = load_results(run / "results.json")
    names = [s.name for s in results.strategies]
    rows = range(len(results.strategies[0].predictions))
    items = []
    for row, (a, b) in itertools.product(rows, itertools.combinations(names, 2)):
        left, right = results.contender(a).predictions[row], results.contender(b).predictions[row]
        if folded(left.predicted) != folded(right.predicted):
            items.append(Pair(row, a, b, left.input, left.predicted, right.predicted, left.expected))
    chosen = random.Random(0).sample(items, min(n, len(items)))
    return chosen, f"{run}/results.json ({', '.join(names)})", results.task.instruction


def _example_pairs(n: int) -> tuple[list[Pair], str, str]:
    """Without a run: each test conversation's assistant turns against the reply two turns later (real answers, the
    wrong one for the turn)."""
    import yaml

    instruction = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())["task"]["instruction"]
    items = []
    for line in (EXAMPLE / "test.jsonl").read_text().splitlines():
        messages = json.loads(line)["messages"]
        for i, m in enumerate(messages):
            later = i + 2 < len(messages) and messages[i + 2]["role"] == "assistant"
            if m["role"] == "assistant" and later:
                asked = "\n".join(f"{t['role'].title()}: {t['content']}" for t in messages[:i])
                wrong = messages[i + 2]["content"]
                items.append(Pair(len(items), "turn", "later", asked, m["content"], wrong, m["content"]))
    chosen = random.Random(0).sample(items, min(n, len(items)))
    return chosen, f"{EXAMPLE}/test.jsonl (turn against a later turn)", instruction


def _serve() -> tuple[subprocess.Popen, str]:
    """`adaptlab serve` of the embedded model on a free loopback port, waited for until /ready says 200."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "ADAPTLAB_API_KEY"}
    server = subprocess.Popen(
        [sys.executable, "-m", "adaptlab", "serve", "--model", BASE, "--port", str(port), "--max-queue", "256"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url, deadline = f"http://127.0.0.1:{port}", time.time() + 600
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise SystemExit("adaptlab serve did not become ready within 600 s")


def _pass(url: str, name: str, pairs: list[Pair], instruction: str, concurrency: int) -> dict:
    """Judge every pair both orders with `concurrency` requests in flight, from an empty cache; the wall time, the raw
    replies and what the verdicts say."""
    config = JudgeConfig(model={"base_url": f"{url}/v1", "name": name, "max_concurrency": concurrency})
    cache = JudgeCache(":memory:")
    judge = Judge(config, rubric_for(config, "generate"), instruction, cache=cache)
    clock = time.perf_counter()
    verdicts = judge.compare(pairs)
    seconds = round(time.perf_counter() - clock, 2)
    replies = sorted(cache.db.execute("SELECT key, reply FROM replies").fetchall())
    judge.close()
    read = [s for v in verdicts for s in (v.first, v.second)]
    asked = [v for v in verdicts if not v.identical]
    first_position = sum(v.first == "a" for v in asked) + sum(v.second == "b" for v in asked)
    decided = sum(s != "tie" for s in read)
    print(f"concurrency {concurrency}: {judge.asked} requests in {seconds:.1f} s", file=sys.stderr)
    return {
        "seconds": seconds,
        "asked": judge.asked,
        "replies": replies,
        "verdicts": {
            "consistent": sum(v.consistent for v in asked),
            "ties": sum(v.preference == "tie" for v in verdicts),
            "unparsed_replies": sum(v.unparsed for v in verdicts),
            "first_position_share": round(first_position / decided, 3) if decided else None,
            "reply_sample": [r for _, r in replies[:3]],
        },
    }


def _print(result: dict) -> None:
    print(f"{'':24}{'concurrent':>12}{'sequential':>12}")
    print(f"{'requests':24}{result['requests']:>12}{result['requests']:>12}")
    print(f"{'seconds':24}{result['seconds']:>12.1f}{result['sequential_seconds']:>12.1f}")
    print(f"{'requests per second':24}{result['requests_per_s']:>12.2f}{result['sequential_requests_per_s']:>12.2f}")
    print(
        f"speed-up {result['speedup']}x at {result['concurrency']} in flight; same replies: {result['same_replies']}; "
        f"under {TARGET_S:.0f} s: {result['under_target']}"
    )
    print(
        f"verdicts: {result['consistent']} of {result['pairs']} survive the swap, {result['ties']} ties, "
        f"{result['unparsed_replies']} replies without a verdict, first position {result['first_position_share']} "
        "of the verdicts read"
    )


if __name__ == "__main__":
    main()
