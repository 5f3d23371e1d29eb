"""bench/soak.py for 30 s on the tiny model: the real `adaptlab serve` under mixed traffic never 5xxs, hangs, answers
wrong or leaks."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_30_second_soak_of_mixed_traffic_gets_every_answer_right(tiny_model_dir, tmp_path):
    out = tmp_path / "soak.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--model",
            str(tiny_model_dir),
            "--seconds",
            "30",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.is_file(), done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert json.loads(done.stdout.strip().splitlines()[-1]) == result  # the last printed line is the JSON written
    problems = result["unexpected_detail"] + result["unanswered_detail"]
    assert result["status_5xx"] == 0 and result["unanswered"] == 0 and result["unexpected"] == 0, problems
    assert done.returncode == 0, done.stderr[-3000:]

    sent = result["sent_by_kind"]
    versions = result["versions"]
    assert (
        "banking-cards" in versions and len([v for v in versions if "@v" in v]) == 5
    )  # majority, embed_classifier, zero_shot, few_shot, lora
    expected = (
        {f"chat:{v}" for v in versions}
        | {f"base:max_tokens={n}" for n in (1, 8, 32, 64)}
        | {"completion", "stream:base", "stream:task", "disconnect", "burst", "ready"}
    )
    expected |= {
        f"hostile:{h}"
        for h in (
            "body_too_large_chunked",
            "content_type_text",
            "max_tokens_0",
            "empty_prompt",
            "json_depth_1000",
            "unknown_model",
            "path_model",
            "get_on_post_route",
            "unknown_route",
            "foreign_host",
            "im_end_in_user_text",
        )
    }
    assert set(sent) == expected and all(n > 0 for n in sent.values()), sent
    assert (
        result["bursts"] >= 2
        and sent["burst"] == 64 * result["bursts"]
        and set(result["burst_statuses"]) <= {"200", "429"}
    )
    assert 0 < result["disconnected"] <= sent["disconnect"]  # a disconnect answered 429 never began
    assert result["ttft_s"]["n"] > 0 and result["ttft_s"]["p50"] <= result["ttft_s"]["p95"]
    assert {"413", "415", "400", "404", "405", "403"} <= set(result["statuses"])  # the hostile requests got their 4xx
    assert result["worker"]["batches"] > 0 and result["worker"]["batched_requests"] >= result["worker"]["batches"]
    assert 0 < result["rss_mb"]["start"] and result["rss_growth_pct"] < 10, result["rss_mb_every_30s"]
    assert result["duration_s"] >= 30 and result["server_exit"] in (0, -15)  # SIGTERM: drained and stopped
