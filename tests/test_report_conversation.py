"""Conversations in results.json and report.html: every test row of a conversation keeps its conversation id and turn
index, and the report shows one test conversation turn by turn with each contender's answer beside the real one."""

import json
import re
from html import unescape
from pathlib import Path

from adaptlab.data import load_dataset
from adaptlab.evaluation.evaluate import prediction_row
from adaptlab.report import render
from adaptlab.results import CompareResults, PredictionRow, load_results, write_results
from adaptlab.solver import Prediction

TASK = {"name": "banking", "instruction": "Help the customer.", "kind": "generate", "metric": "chrf"}

BALANCE = {
    "id": "balance-1",
    "messages": [
        {"role": "system", "content": "You are a bank's assistant."},
        {"role": "user", "content": "What's my balance?"},
        {"role": "assistant", "content": "In checking or savings?"},
        {"role": "user", "content": "In checking <please>."},
        {"role": "assistant", "content": "Your checking account has $5,118.77."},
        {"role": "user", "content": "Ok, I want to transfer\nsome money."},
        {"role": "assistant", "content": "To whom?"},
        {"role": "user", "content": "To Amir."},
        {"role": "assistant", "content": "How much?"},
        {"role": "user", "content": "Send $1,630."},
        {"role": "assistant", "content": "Please confirm: $1,630 to Amir."},
        {"role": "user", "content": "Confirmed."},
        {"role": "assistant", "content": "Your transfer is complete."},
    ],
}
SHORT = {
    "id": "short-2",
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye."},
    ],
}

ANSWERS = {
    "echo": lambda e: e.output,
    "shout": lambda e: e.output.upper() + " <b>!</b>",
}  # echo: the real answer every time


def _test_rows(tmp_path: Path, conversations=(SHORT, BALANCE)):
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in conversations), encoding="utf-8")
    return load_dataset(path)


def _results(test, names=("echo", "shout")) -> dict:
    """results.json of a run over `test`, its rows built as evaluate builds them, validated by the results model."""
    strategies = []
    for name in names:
        rows = [prediction_row(e, Prediction(ANSWERS[name](e), 10, 5, 0.01)) for e in test]
        strategies.append(
            {
                "name": name,
                "metrics": {"chrf": 50.0},
                "ci": {"chrf": [40.0, 60.0]},
                "latency_ms_mean": 1.0,
                "latency_ms_p95": 1.0,
                "prompt_tokens_mean": 10.0,
                "completion_tokens_mean": 5.0,
                "fit_seconds": 0.0,
                "peak_rss_mb": 1.0,
                "predictions": rows,
            }
        )
    results = {
        "task": TASK,
        "base_model": "m",
        "data": {},
        "seed": 0,
        "environment": {},
        "strategies": strategies,
        "recommendation": {"choice": "echo", "reasons": ["echo scored the highest"]},
        "cost_assumptions": {},
        "audit": {},
    }
    return CompareResults.model_validate(results).model_dump(mode="json", exclude_unset=True)


def _section(page: str) -> str:
    start = page.index("<h2>A conversation</h2>")
    return page[start : page.index("<h2>", start + 1)]


def _cells(section: str) -> list[tuple[str, str, str]]:
    """The conversation table's rows as (turn, who, text), tags dropped, text unescaped."""
    rows = re.findall(r"<tr[^>]*><td>(.*?)</td><td[^>]*>(.*?)</td><td[^>]*>(.*?)</td></tr>", section, re.DOTALL)

    def plain(cell):
        return unescape(re.sub(r"<[^>]+>", "", cell.replace("<br>", "\n"))).strip()

    return [(plain(a), plain(b), plain(c)) for a, b, c in rows]


def test_prediction_rows_keep_the_conversation_and_turn_and_the_history_as_text(tmp_path):
    test = _test_rows(tmp_path)
    rows = _results(test)["strategies"][0]["predictions"]
    assert [(r["conversation"], r["turn"]) for r in rows] == [("short-2", 1), ("short-2", 3)] + [
        ("balance-1", t) for t in (2, 4, 6, 8, 10, 12)
    ]
    assert (
        rows[1]["input"] == "User: Hi\nAssistant: Hello, how can I help?\nUser: Bye" and type(rows[1]["input"]) is str
    )
    write_results(tmp_path / "results.json", _results(test))
    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["strategies"][1]["predictions"][-1]
    assert saved["conversation"] == "balance-1" and saved["turn"] == 12 and saved["input"].endswith("User: Confirmed.")
    assert load_results(tmp_path / "results.json").strategies[0].predictions[2].turn == 2


def test_results_of_older_runs_without_conversations_still_load(tmp_path):
    old = _results(_test_rows(tmp_path))
    for s in old["strategies"]:
        for row in s["predictions"]:
            del row["conversation"], row["turn"]
    (tmp_path / "results.json").write_text(json.dumps(old), encoding="utf-8")
    row = load_results(tmp_path / "results.json").strategies[0].predictions[0]
    assert row.conversation is None and row.turn is None
    assert PredictionRow(input="x", expected="a", predicted="b").model_dump(exclude_unset=True) == {
        "input": "x",
        "expected": "a",
        "predicted": "b",
    }


def test_the_report_shows_the_longest_of_the_first_conversations_turn_by_turn_with_each_contenders_answer(tmp_path):
    page = render(_results(_test_rows(tmp_path)))
    section = _section(page)
    assert "Conversation <b>balance-1</b>: 6 tested assistant turn(s); 1 other test conversation(s)" in section
    assert "Hello, how can I help?" not in section  # the shorter conversation is not the one shown
    user = [m["content"] for m in BALANCE["messages"] if m["role"] == "user"]
    real = [m["content"] for m in BALANCE["messages"] if m["role"] == "assistant"]
    expected = []
    for i, (question, answer) in enumerate(zip(user, real)):
        expected += [
            (str(2 * i + 1), "user", question),
            (str(2 * i + 2), "assistant (real)", answer),
            ("", "echo", f"{answer} (same as the real answer)"),
            ("", "shout", answer.upper() + " <b>!</b>"),
        ]
    assert _cells(section) == expected  # every turn in order, the real answer then each contender's under it
    assert "In checking &lt;please&gt;." in section and "<b>!</b>" not in section  # escaped
    assert "transfer<br>some money." in section  # a user turn of two lines stays one turn
    assert "may be left out" not in section and "not in results.json)" not in section


def test_the_section_follows_the_turn_index_not_the_row_order_and_marks_what_is_missing(tmp_path):
    results = _results(_test_rows(tmp_path, [BALANCE]))
    echo, shout = results["strategies"]
    echo["predictions"] = list(reversed(echo["predictions"]))  # rows in another order than the turns
    shout["predictions"] = shout["predictions"][1:]  # the first turn missing
    cells = _cells(_section(render(results)))
    assert [c[0] for c in cells if c[1] == "assistant (real)"] == ["2", "4", "6", "8", "10", "12"]
    assert cells[3] == ("", "shout", "no answer recorded") and cells[7] == (
        "",
        "shout",
        "YOUR CHECKING ACCOUNT HAS $5,118.77. <b>!</b>",
    )


def test_a_long_conversation_says_which_earlier_turns_its_rows_do_not_hold(tmp_path):
    long = {
        "id": "long",
        "messages": [
            m
            for i in range(8)
            for m in (
                {"role": "user", "content": f"question {i}"},
                {"role": "assistant", "content": f"answer {i}", "weight": int(i in (5, 7))},
            )
        ],
    }
    section = _section(render(_results(_test_rows(tmp_path, [long]))))
    cells = _cells(section)
    assert cells[0] == ("5", "assistant (not tested)", "answer 2")  # the first tested turn's history: its last 6 turns
    assert [c[2] for c in cells if c[1] == "user"] == [
        "question 3",
        "question 4",
        "question 5",
        "question 6",
        "question 7",
    ]
    assert "Turns before turn 5 may be left out" in section


def test_a_run_without_conversations_has_no_conversation_section(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text(
        "".join(json.dumps({"input": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(3)), encoding="utf-8"
    )
    results = _results(load_dataset(path))
    assert "conversation" not in results["strategies"][0]["predictions"][0]
    page = render(results)
    assert "<h2>A conversation</h2>" not in page and "<h2>Where the strategies disagree</h2>" in page


def test_the_published_schema_and_reference_hold_the_conversation_fields():
    from adaptlab.results import reference, schemas

    folder = Path(__file__).parents[1] / "docs" / "schema"
    published = json.loads((folder / "results.schema.json").read_text(encoding="utf-8"))
    assert published == schemas()["results.schema.json"], (
        "docs/schema/results.schema.json is out of date: run python -m adaptlab.results docs/schema"
    )
    assert {"conversation", "turn"} <= published["$defs"]["PredictionRow"]["properties"].keys()
    assert (folder.parent / "results.md").read_text(encoding="utf-8") == reference()


def test_turns_no_row_holds_are_counted_where_they_fall(tmp_path):
    apart = {
        "id": "apart",
        "messages": [
            m
            for i in range(8)
            for m in (
                {"role": "user", "content": f"question {i}"},
                {"role": "assistant", "content": f"answer {i}", "weight": int(i in (1, 7))},
            )
        ],
    }
    cells = _cells(_section(render(_results(_test_rows(tmp_path, [apart])))))
    assert [c[0] for c in cells] == ["0", "1", "2", "3", "", "", "", "9", "10", "11", "12", "13", "14", "15", "", ""]
    assert cells[6] == ("", "", "(5 turn(s) not in results.json)")  # turns 4 to 8: before the last row's recent turns
