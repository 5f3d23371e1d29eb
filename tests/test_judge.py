"""The judge: both orders asked, a verdict that flips with the order is a tie, replies without a verdict are ties and
counted, the cache asks nothing twice; against a scripted endpoint, and once against `adaptlab serve` of the embedded
model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from adaptlab.config import ExperimentConfig, JudgeConfig
from adaptlab.errors import ConfigError, DataError
from adaptlab.judges import Judge, JudgeCache, parse_score, parse_verdict, rubric_for
from adaptlab.judges.check import check_judge, read_rated_pairs
from adaptlab.results import write_results
from adaptlab.runs.judging import chosen_rows, judge_run

ENDPOINT = {"base_url": "http://judge.test/v1", "name": "fake-judge"}
INPUTS = ["What is my balance?", "Send $50 to Amir.", "Thanks, bye."]
EXPECTED = ["Which account: checking or savings?", "From checking or savings?", "Have a good day."]
ANSWERS = {
    "good": ["good: which account?", "good: from which account?", "good: have a nice day"],
    "bad": ["Your balance is $3.", "Done, I sent $500.", "Your balance is $3."],
    "echo": ["GOOD:   which account?", "good: from which  account?", "good: have a nice day"],  # good's, refolded
}


def _shown(request_body: dict) -> tuple[str, str]:
    """The two answers a pairwise prompt shows, first and second."""
    text = request_body["messages"][-1]["content"]
    ((first, second),) = re.findall(r"## Answer A\n(.*?)\n\n## Answer B\n(.*?)\n\nWhich answer is better", text, re.S)
    return first, second


class FakeJudge:
    """An OpenAI-compatible endpoint that answers with `policy(first, second)` and records what it was shown."""

    def __init__(self, policy):
        self.policy, self.shown, self.scored = policy, [], []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if "## The answer to rate" in body["messages"][-1]["content"]:  # pointwise: a middling score
            self.scored.append(body)
            reply = "Score: 3"
        else:
            first, second = _shown(body)
            self.shown.append((first, second))
            reply = self.policy(first, second)
        return httpx.Response(
            200,
            json={
                "choices": [{"message": {"role": "assistant", "content": reply}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 5},
            },
        )


def prefers_good(first: str, second: str) -> str:
    return "The first asks what is missing.\nVerdict: A" if "good" in first.lower() else "Verdict: B"


def _run(root: Path, answers: dict[str, list[str]], judge: dict | None = None) -> Path:
    """A compare run folder holding results.json (the answers given) and experiment.yaml (with `judge`)."""
    run = root / "run"
    run.mkdir(exist_ok=True)
    strategies = [
        {
            "name": name,
            "metrics": {"chrf": 50.0},
            "ci": {"chrf": [40.0, 60.0]},
            "latency_ms_mean": 1.0,
            "latency_ms_p95": 1.0,
            "prompt_tokens_mean": 0.0,
            "completion_tokens_mean": 0.0,
            "fit_seconds": 0.0,
            "peak_rss_mb": 0.0,
            "predictions": [
                {"input": i, "expected": e, "predicted": p} for i, e, p in zip(INPUTS, EXPECTED, predicted)
            ],
        }
        for name, predicted in answers.items()
    ]
    write_results(
        run / "results.json",
        {
            "task": {"name": "bank", "instruction": "Be a bank's assistant.", "kind": "generate", "metric": "chrf"},
            "base_model": "m",
            "data": {},
            "seed": 0,
            "environment": {},
            "strategies": strategies,
            "recommendation": {"choice": next(iter(answers)), "reasons": []},
            "cost_assumptions": {},
            "audit": {},
        },
    )
    (run / "experiment.yaml").write_text(yaml.safe_dump({"seed": 0} | ({"judge": judge} if judge else {})))
    return run


def _judge(fake: FakeJudge, **settings) -> Judge:
    config = JudgeConfig(model=ENDPOINT, **settings)
    return Judge(config, rubric_for(config, "generate"), "Be a bank's assistant.", transport=httpx.MockTransport(fake))


def test_both_orders_are_asked_and_a_verdict_that_survives_the_swap_stands(tmp_path):
    fake = FakeJudge(prefers_good)
    outcome = judge_run(_run(tmp_path, ANSWERS, {"model": ENDPOINT}), judge=_judge(fake))
    record = json.loads(outcome.path.read_text())
    good_bad = [v for v in record["verdicts"] if {v["a"], v["b"]} == {"good", "bad"}]
    assert len(good_bad) == 3
    for v in good_bad:  # the good answer wins whichever side it is on
        winner = "a" if v["a"] == "good" else "b"
        assert (v["preference"], v["first"], v["second"], v["consistent"]) == (winner, winner, winner, True)
    for row in range(3):  # each pair shown both ways round
        assert (ANSWERS["good"][row], ANSWERS["bad"][row]) in fake.shown
        assert (ANSWERS["bad"][row], ANSWERS["good"][row]) in fake.shown
    # good and echo differ only in case and spacing: ties, never asked
    same = [v for v in record["verdicts"] if {v["a"], v["b"]} == {"good", "echo"}]
    assert all(v["identical"] and v["preference"] == "tie" for v in same)
    assert not any(set(pair) == {ANSWERS["good"][r], ANSWERS["echo"][r]} for r in range(3) for pair in fake.shown)
    counts = record["counts"]
    # 6 pairs asked both ways, less one question asked once: row 2's good and echo answers are the very same text, so
    # good-vs-bad and bad-vs-echo there are one prompt
    assert counts["identical"] == 3 and counts["asked"] == len(fake.shown) == 2 * (9 - 3) - 2 and counts["cached"] == 0
    assert record["judge"]["model"] == {"base_url": "http://judge.test/v1", "name": "fake-judge"}
    assert len(record["judge"]["rubric_sha256"]) == len(record["judge"]["template_sha256"]) == 64


def test_a_judge_that_always_prefers_the_first_answer_gives_only_ties(tmp_path):
    fake = FakeJudge(lambda first, second: "Both are fine.\nVerdict: A")
    record = judge_run(_run(tmp_path, {"good": ANSWERS["good"], "bad": ANSWERS["bad"]}), judge=_judge(fake)).record
    assert [(v.first, v.second, v.preference, v.consistent) for v in record.verdicts] == [("a", "b", "tie", False)] * 3
    assert record.counts.consistent == 0 and record.counts.unparsed == 0


def test_replies_without_a_verdict_are_ties_and_counted(tmp_path):
    fake = FakeJudge(lambda first, second: "I cannot decide between these.")
    record = judge_run(_run(tmp_path, {"good": ANSWERS["good"], "bad": ANSWERS["bad"]}), judge=_judge(fake)).record
    assert all(v.preference == "tie" and v.unparsed == 2 and not v.consistent for v in record.verdicts)
    assert record.counts.unparsed == 6


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("A is more precise.\nVerdict: B", "b"),
        ("Verdict: A\n\nbecause it asks.", "a"),
        ("**Verdict:** tie", "tie"),
        ("verdict - answer b", "b"),
        ("A\n\nA is correct.", "a"),
        ("B", "b"),
        ("Answer B is better than A.", "b"),
        ("A good reply would ask for the account.", None),
        ("", None),
        ('Verdict: B\nStart your reply with "Verdict: A", "Verdict: B" or "Verdict: tie"', "b"),  # then an echo
    ],
)
def test_verdicts_are_read_from_varied_replies(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_scores_are_read_from_replies():
    assert [parse_score(r) for r in ("Fine.\nScore: 4", "5/5", "Score: 9", "no idea")] == [4, 5, None, None]


def test_a_second_run_asks_nothing_and_a_new_contender_asks_only_its_pairs(tmp_path):
    fake = FakeJudge(prefers_good)
    answers = {"good": ANSWERS["good"], "bad": ANSWERS["bad"]}
    run = _run(tmp_path, answers, {"model": ENDPOINT})
    first = judge_run(run, judge=_judge(fake)).record
    assert first.counts.asked == 6
    fake.shown.clear()
    again = judge_run(run, judge=_judge(fake)).record
    assert fake.shown == [] and again.counts.asked == 0 and again.counts.cached == 6
    assert [v.model_dump() for v in again.verdicts] == [v.model_dump() for v in first.verdicts]
    _run(tmp_path, answers | {"new": ["Checking or savings?", "Which account?", "Bye!"]}, {"model": ENDPOINT})
    added = judge_run(run, judge=_judge(fake)).record
    new_pairs = [v for v in added.verdicts if "new" in (v.a, v.b)]
    assert new_pairs and added.counts.asked == len(fake.shown) == 2 * len(new_pairs)
    assert all("new" in (v.a, v.b) for v in added.verdicts if v not in first.verdicts)
    assert added.counts.cached == 6


def test_a_different_rubric_or_judge_is_asked_again(tmp_path):
    fake = FakeJudge(prefers_good)
    run = _run(tmp_path, {"good": ANSWERS["good"], "bad": ANSWERS["bad"]})
    judge_run(run, judge=_judge(fake))
    assert judge_run(run, judge=_judge(fake, rubric="Prefer the shorter answer.")).record.counts.asked == 6
    other = JudgeConfig(model=ENDPOINT | {"name": "another-judge"})
    judge = Judge(other, rubric_for(other, "generate"), transport=httpx.MockTransport(fake))
    assert judge_run(run, judge=judge).record.counts.asked == 6


def test_pointwise_scores_every_answer_once(tmp_path):
    def scorer(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["messages"][-1]["content"]
        reply = "Score: 5" if "## The answer to rate\ngood" in text else "Verdict: A" if "Answer A" in text else "2"
        return httpx.Response(200, json={"choices": [{"message": {"content": reply}}], "usage": {}})

    config = JudgeConfig(model=ENDPOINT, pointwise=True, rows=2)
    judge = Judge(config, rubric_for(config, "generate"), transport=httpx.MockTransport(scorer))
    record = judge_run(_run(tmp_path, {"good": ANSWERS["good"], "bad": ANSWERS["bad"]}), judge=judge).record
    assert len(record.rows) == 2 and len(record.verdicts) == 2
    assert sorted((s.contender, s.score) for s in record.scores) == [("bad", 2)] * 2 + [("good", 5)] * 2
    assert record.counts.asked == 2 * 2 + 4


def test_the_cache_is_shared_across_threads_and_connections(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "cache.sqlite"
    one, two = JudgeCache(path), JudgeCache(path)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: (one if i % 2 else two).put({f"k{i}": f"reply {i}"}, {"name": "m"}), range(40)))
    assert len(JudgeCache(path)) == 40 and two.get(["k3", "k4", "nope"]) == {"k3": "reply 3", "k4": "reply 4"}


def test_rows_are_a_seeded_choice_that_stays_put():
    assert chosen_rows(50, 10, 0) == chosen_rows(50, 10, 0) != chosen_rows(50, 10, 1)
    assert chosen_rows(3, 10, 0) == [0, 1, 2] and len(set(chosen_rows(50, 10, 0))) == 10


@pytest.mark.parametrize(
    ("judge", "field"),
    [
        ({"model": "m", "rows": 0}, "rows"),
        ({"model": "m", "trust_threshold": 1.5}, "trust_threshold"),
        ({"model": "m", "pointwise": "often"}, "pointwise"),
        ({"model": "m", "rubrik": "x"}, "rubrik"),
        ({"rows": 10}, "model"),
        ({"model": {"base_url": "ftp://x", "name": "m"}}, "base_url"),
        ({"model": "m", "rubric": ""}, "rubric"),
    ],
)
def test_bad_judge_settings_name_the_field(judge, field):
    with pytest.raises(ValueError, match=field):
        ExperimentConfig.model_validate(
            {
                "task": {"name": "t", "instruction": "x"},
                "data": {"train": "a", "test": "b"},
                "strategies": [{"name": "zero_shot"}],
                "judge": judge,
            }
        )


def test_a_classify_task_is_refused_a_judge_and_a_run_without_one_says_how_to_give_it(tmp_path):
    with pytest.raises(ConfigError, match="labels"):
        rubric_for(JudgeConfig(model="m"), "classify")
    assert "documents" in rubric_for(None, "qa") and "reference is one good answer" in rubric_for(None, "generate")
    with pytest.raises(ConfigError, match="--judge"):
        judge_run(_run(tmp_path, {"good": ANSWERS["good"]}))


def test_judge_check_reads_rated_pairs_and_measures_agreement(tmp_path):
    lines = [
        {"input": "q1", "answer_a": "good one", "answer_b": "meh", "preference": "a", "reviewer": "ana"},
        {"input": "q1", "answer_a": "good one", "answer_b": "meh", "preference": "tie", "reviewer": "bo"},
        {"input": "q2", "answer_a": "meh", "answer_b": "good two", "preference": "b", "reference": "good"},
        {"input": "q3", "answer_a": "meh", "answer_b": "also meh", "preference": "both_bad"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    fake = FakeJudge(prefers_good)
    outcome = check_judge(_judge(fake), read_rated_pairs(path))
    assert len(fake.shown) == 2 * 3  # q1 rated twice, asked once
    assert outcome.rows == [0, 0, 1, 2]
    # q3: neither answer is good, so the fake says "B" in both orders: a verdict that flips with the order
    assert [(v.first, v.second, v.preference) for v in outcome.verdicts] == [
        ("a", "a", "a"),
        ("b", "b", "b"),
        ("b", "a", "tie"),
    ]
    # ana's a, q2's b and q3's both_bad (a tie) match; bo's tie does not
    assert outcome.figures["raw_agreement"] == 0.75 and outcome.figures["position_consistency"] == round(2 / 3, 4)
    found = outcome.figures["agreement"]  # decide.agreement's: too few ratings to trust any judge
    assert found["compared"] == 4 and found["trusted"] is False and found["reasons"]


def test_bad_lines_of_rated_pairs_are_named_by_number(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = {"input": "q", "answer_a": "x", "answer_b": "y", "preference": "a"}
    path.write_text(
        json.dumps(good)
        + "\n"
        + json.dumps(good | {"preference": "left"})
        + "\n\nnot json\n"
        + json.dumps({"input": "q"})
    )
    with pytest.raises(DataError) as caught:
        read_rated_pairs(path)
    text = str(caught.value)
    assert "line 2: field 'preference'" in text and "'left'" in text and "line 4: not JSON" in text
    assert "line 5: field 'answer_a'" in text
    csv = tmp_path / "pairs.csv"
    csv.write_text('input,answer_a,answer_b,preference\nq,"two\nlines",y,b\nq,x,y,maybe\n')
    with pytest.raises(DataError, match="line 4: field 'preference'"):
        read_rated_pairs(csv)


def test_the_cli_judges_a_run_and_checks_a_file_of_pairs(tmp_path):
    from typer.testing import CliRunner

    from adaptlab.cli import app

    fake = FakeJudge(prefers_good)
    with _fake_server(fake) as url:
        run = _run(tmp_path, {"good": ANSWERS["good"], "bad": ANSWERS["bad"]})
        done = CliRunner().invoke(app, ["judge", str(run), "--judge", f"{url}/v1", "--rows", "2", "--json"])
        assert done.exit_code == 0, done.output
        summary = json.loads(done.stdout)
        assert summary["judge"]["model"]["name"] == "served-judge" and summary["counts"]["asked"] == 4
        pairs = tmp_path / "pairs.jsonl"
        pairs.write_text(json.dumps({"input": "q", "answer_a": "meh", "answer_b": "good", "preference": "b"}) + "\n")
        done = CliRunner().invoke(
            app, ["judge", "check", str(pairs), "--judge", f"{url}/v1", "--json", str(tmp_path / "f.json")]
        )
        assert done.exit_code == 0, done.output
        assert "raw agreement with people: 100%" in done.stdout
        assert json.loads((tmp_path / "f.json").read_text())["raw_agreement"] == 1.0


def _fake_server(fake: FakeJudge):
    """`fake` behind a real OpenAI-compatible HTTP endpoint on loopback (a context manager yielding its URL)."""
    from conftest import serving
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def models(request):
        return JSONResponse({"data": [{"id": "served-judge"}]})

    async def chat(request):
        return JSONResponse(fake(httpx.Request("POST", "http://x", content=await request.body())).json())

    return serving(
        Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"])])
    )


def test_a_compare_with_a_judge_judges_its_answers_and_adaptlab_judge_asks_nothing_new(tmp_path, tiny_model_dir):
    from conftest import write_jsonl
    from typer.testing import CliRunner

    from adaptlab.cli import app
    from adaptlab.runs.compare import run_compare

    train = [
        (f"{q} ({i})", f"good: {a} {i}") for i in range(6) for q, a in zip(INPUTS, ["which account?", "from?", "bye"])
    ]
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", list(zip(INPUTS, EXPECTED)))
    fake = FakeJudge(prefers_good)
    with _fake_server(fake) as url:
        (tmp_path / "e.yaml").write_text(f"""task: {{name: bank, instruction: "Be a bank's assistant.", kind: generate,
  max_new_tokens: 8}}
data: {{train: train.jsonl, test: test.jsonl}}
model: {tiny_model_dir}
strategies:
  - name: zero_shot
judge: {{model: {{base_url: "{url}/v1", name: served-judge}}, pointwise: true}}
""")
        results, run = run_compare(tmp_path / "e.yaml", tmp_path / "run")
        record = json.loads((run / "judge.json").read_text())
        names = [s["name"] for s in results["strategies"]]
        assert len(names) >= 3 and record["rows"] == [0, 1, 2]
        assert len(fake.shown) == 2 * sum(not v["identical"] for v in record["verdicts"]) > 0
        assert record["counts"]["asked"] == len(fake.shown) + len(fake.scored) > len(fake.shown)
        assert {s["contender"] for s in record["scores"]} == {n for p in record["pairs"] for n in p}
        assert {s["score"] for s in record["scores"]} == {3}
        judged = results["judged"]  # in results.json too; with no ratings, the judge's own figures, uncalibrated
        assert judged["judge"]["model"] == {"base_url": f"{url}/v1", "name": "served-judge"}
        assert judged["measures"]["calibrated"] is False and judged["agreement"]["trusted"] is False
        assert json.loads((run / "results.json").read_text())["judged"] == judged
        fake.shown.clear()
        done = CliRunner().invoke(app, ["judge", str(run), "--json"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["counts"]["asked"] == 0 and fake.shown == []


def test_a_local_judge_runs_through_the_engine_and_is_not_loaded_when_everything_is_cached(tmp_path, tiny_model_dir):
    judge = {"model": str(tiny_model_dir), "rubric": "Prefer the better answer."}  # short: the tiny model reads 512
    run = _run(tmp_path, {"good": ANSWERS["good"], "bad": ANSWERS["bad"]}, judge)
    record = judge_run(run).record
    model = record.judge["model"]
    assert model["name"] == str(tiny_model_dir) and model["parameters"] > 0 and model["device"] == "cpu"
    assert (record.counts.asked, record.counts.too_long) == (6, 0) and len(JudgeCache()) == 6
    # the tiny random model writes no verdict: every reply is a tie, counted
    assert record.counts.unparsed == 6 and {v.preference for v in record.verdicts} == {"tie"}
    again = judge_run(run).record
    assert again.counts.asked == 0 and "parameters" not in again.judge["model"]  # never loaded
    assert again.judge["model"]["source"] == str(tiny_model_dir)


@pytest.mark.real_model
def test_the_embedded_model_judges_through_adaptlab_serve(tmp_path):
    """`adaptlab serve` of the embedded SmolLM2-135M as the judge's endpoint: every pair asked both ways, real replies
    cached, the second run asks nothing."""
    import os
    import subprocess
    import sys
    import time

    from conftest import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("ADAPTLAB_API_KEY", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "adaptlab", "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120  # converts the embedded GGUF on first use in this home, then loads it
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        name = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
        config = JudgeConfig(model={"base_url": f"{url}/v1", "name": name, "max_concurrency": 8})
        run = _run(tmp_path, {"good": ANSWERS["good"], "bad": ANSWERS["bad"]}, config.model_dump(mode="json"))
        record = judge_run(run).record
        assert record.judge["model"] == {"base_url": f"{url}/v1", "name": name}
        assert record.counts.asked == 6 and record.counts.cached == 0 and len(JudgeCache()) == 6
        replies = JudgeCache().db.execute("SELECT reply FROM replies").fetchall()
        assert all(reply.strip() for (reply,) in replies)  # the model answered every request
        for v in record.verdicts:  # whatever it says, both orders were read and a flip is a tie
            assert v.preference == (v.first if v.first == v.second else "tie")
        again = judge_run(run).record
        assert again.counts.asked == 0 and again.verdicts == record.verdicts
    finally:
        server.terminate()
        server.wait(timeout=60)
