"""Distillation: a teacher contender labels data.unlabeled, a fine-tuned student trains on train plus those labels."""

import json
from pathlib import Path

import pytest
from conftest import CARD_ROWS, serving

from adaptlab.errors import ConfigError, DataError

TEST_ROWS = 6  # card_experiment's test file
UNLABELED = ["has my card shipped yet", "a thief took my card", "the machine swallowed it", "card still not here"]
STUDENT = (
    "{id: student, name: lora, teacher: TEACHER, epochs: 1, batch_size: 4, learning_rate: 0.01, bf16: "
    "false, dev_fraction: 0}"
)


def _label(text: str) -> str:
    """The fake endpoint's answer: a label picked by keyword."""
    t = text.lower()
    return (
        "card_swallowed"
        if any(w in t for w in ("atm", "machine", "swallow"))
        else "lost_or_stolen_card"
        if any(w in t for w in ("stole", "thief", "lost"))
        else "card_arrival"
    )


def _fake_endpoint(requests: list):
    """An OpenAI-compatible stand-in: answers by keyword, usage counts words (prompt: every message; completion: the
    answer)."""
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        requests.append(body)
        text = _label(body["messages"][-1]["content"])
        prompt = sum(len(m["content"].split()) for m in body["messages"])
        return {
            "id": "x",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": len(text.split()),
                "total_tokens": prompt + len(text.split()),
            },
        }

    return app


def _experiment(card_experiment: Path, strategies: list[str], unlabeled: list[str] | None = UNLABELED) -> Path:
    """card_experiment (12 training rows, 6 test rows) with these contenders, no baselines, and data.unlabeled holding
    `unlabeled`."""
    folder, extra = card_experiment.parent, ""
    if unlabeled is not None:
        (folder / "unlabeled.jsonl").write_text(
            "".join(json.dumps({"input": i}) + "\n" for i in unlabeled), encoding="utf-8"
        )
        extra = ", unlabeled: unlabeled.jsonl"
    head = (
        card_experiment.read_text(encoding="utf-8")
        .split("strategies:")[0]
        .replace("test.jsonl}", "test.jsonl" + extra + "}")
    )
    card_experiment.write_text(
        head + "baselines: false\nstrategies:\n" + "".join(f"  - {s}\n" for s in strategies), encoding="utf-8"
    )
    return card_experiment


@pytest.fixture
def fits(monkeypatch):
    """Every FineTune.fit's training rows, as (input, output) pairs."""
    from adaptlab.finetune.fit import FineTune

    seen, real = [], FineTune.fit

    def spy(self, task, train_set, *args, **kwargs):
        seen.append([(e.input, e.output) for e in train_set])
        return real(self, task, train_set, *args, **kwargs)

    monkeypatch.setattr(FineTune, "fit", spy)
    return seen


def test_a_remote_teacher_labels_the_unlabeled_inputs_and_the_student_trains_on_them(card_experiment, tmp_path, fits):
    from adaptlab.runs.compare import run_compare

    requests: list = []
    with serving(_fake_endpoint(requests)) as url:
        teacher = (
            f"{{id: hosted, name: zero_shot, model: {{base_url: '{url}/v1', name: fake-model, "
            f"price_input_per_1k: 0.5, price_output_per_1k: 1.5}}}}"
        )
        path = _experiment(
            card_experiment, [STUDENT.replace("TEACHER", "hosted"), teacher]
        )  # the student listed first: it still runs second
        results, run_dir = run_compare(path, tmp_path / "run")
    assert [s["name"] for s in results["strategies"]] == ["hosted", "student"]
    by_name = {s["name"]: s for s in results["strategies"]}
    assert fits == [
        CARD_ROWS + [(i, _label(i)) for i in UNLABELED]
    ]  # train rows, then the teacher's labels of the same inputs
    assert by_name["student"]["solver"]["train_rows"] == len(CARD_ROWS) + len(UNLABELED)

    labeling = [r for r in requests if r["messages"][-1]["content"] in UNLABELED]
    prompt = sum(len(m["content"].split()) for r in labeling for m in r["messages"])
    completion = sum(len(_label(r["messages"][-1]["content"]).split()) for r in labeling)
    record = by_name["student"]["solver"]["distillation"]
    assert len(labeling) == len(UNLABELED) and record["teacher"] == "hosted" and record["rows"] == len(UNLABELED)
    assert record["tokens"] == {"prompt": prompt, "completion": completion} and record["agreement_with_gold"] is None
    assert record["cost_usd"] == pytest.approx((prompt * 0.5 + completion * 1.5) / 1000) and record["seconds"] > 0
    hosted = by_name["hosted"]["solver"]
    assert hosted["usage"]["requests"] == TEST_ROWS  # the teacher's own measurement does not include the labeling

    summary = results["distillation"]["student"]
    assert summary["teacher"] == "hosted" and summary["labeling"]["rows"] == len(UNLABELED)
    assert (
        summary["teacher_score"] == by_name["hosted"]["metrics"]["accuracy"]
        and summary["teacher_ci"] == by_name["hosted"]["ci"]["accuracy"]
    )
    assert (
        summary["student_score"] == by_name["student"]["metrics"]["accuracy"]
        and summary["student_ci"] == by_name["student"]["ci"]["accuracy"]
    )
    assert summary["teacher_cost_per_1k_queries"] == pytest.approx(by_name["hosted"]["cost_per_1k_queries"])
    assert summary["student_cost_per_1k_queries"] == pytest.approx(by_name["student"]["cost_per_1k_queries"])
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<h2>Distillation</h2>" in html and "hosted labeled 4 unlabeled inputs" in html
    assert any("per 1,000 queries student costs" in f for f in summary["findings"])
    recorded = (run_dir / "experiment.yaml").read_text(encoding="utf-8")
    assert str((card_experiment.parent / "unlabeled.jsonl").resolve()) in recorded


def test_a_local_few_shot_teacher_labels_at_the_measured_machine_time(card_experiment, tmp_path, fits):
    from adaptlab.runs.compare import run_compare

    path = _experiment(
        card_experiment,
        [
            STUDENT.replace("TEACHER", "teacher"),
            "{id: teacher, name: few_shot, k: 2, selector: random}",
            "{name: zero_shot}",
        ],
    )
    results, run_dir = run_compare(path, tmp_path / "run")
    assert [s["name"] for s in results["strategies"]] == [
        "teacher",
        "student",
        "zero_shot",
    ]  # the given order otherwise kept
    labels = results["task"]["labels"]
    (rows,) = fits
    assert (
        rows[: len(CARD_ROWS)] == CARD_ROWS
        and [i for i, _ in rows[len(CARD_ROWS) :]] == UNLABELED
        and all(o in labels for _, o in rows[len(CARD_ROWS) :])
    )
    student = next(s for s in results["strategies"] if s["name"] == "student")
    assert student["solver"]["train_rows"] == len(CARD_ROWS) + len(UNLABELED)
    record = student["solver"]["distillation"]
    hourly = results["cost_assumptions"]["dollars_per_hour"]
    assert record["cost_usd"] == pytest.approx(record["seconds"] / 3600 * hourly) and record["tokens"]["prompt"] > 0
    assert "measured machine time" in record["cost_basis"]
    assert results["distillation"]["student"]["teacher"] == "teacher"
    zero = next(s for s in results["strategies"] if s["name"] == "zero_shot")
    assert "distillation" not in zero["solver"]
    assert "<h2>Distillation</h2>" in (run_dir / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "strategies, unlabeled, message",
    [
        (
            [STUDENT.replace("TEACHER", "nobody"), "{name: zero_shot}"],
            UNLABELED,
            "teacher 'nobody' is not a contender of this experiment; name one of zero_shot",
        ),
        (
            [STUDENT.replace("TEACHER", "student"), "{name: zero_shot}"],
            UNLABELED,
            "'student' names itself as its teacher",
        ),
        ([STUDENT.replace("TEACHER", "zero_shot"), "{name: zero_shot}"], None, "no data.unlabeled: set data.unlabeled"),
        (["{name: lora}", "{name: zero_shot}"], UNLABELED, "no contender names a teacher to label it"),
        (
            [STUDENT.replace("TEACHER", "other"), STUDENT.replace("student", "other").replace("TEACHER", "student")],
            UNLABELED,
            r"cycle \(student learns from other learns from student\)",
        ),
    ],
)
def test_teacher_settings_that_cannot_work_are_config_errors(card_experiment, tmp_path, strategies, unlabeled, message):
    from adaptlab.runs.compare import run_compare

    with pytest.raises(ConfigError, match=message):
        run_compare(_experiment(card_experiment, strategies, unlabeled), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before any run folder or model


def test_unlabeled_inputs_that_are_test_inputs_are_leakage(card_experiment, tmp_path):
    from adaptlab.runs.compare import run_compare

    path = _experiment(
        card_experiment,
        [STUDENT.replace("TEACHER", "zero_shot"), "{name: zero_shot}"],
        ["has my card shipped yet", "Lost  card"],
    )
    with pytest.raises(
        DataError, match=r"test.jsonl line 5: field 'input': the same input is in .*unlabeled.jsonl line 2"
    ):
        run_compare(path, tmp_path / "run")


def test_unlabeled_file_problems_name_the_line_and_field(tmp_path):
    from adaptlab.data.unlabeled import load_unlabeled

    bad = tmp_path / "unlabeled.jsonl"
    bad.write_text(
        '{"input": "fine"}\n{"input": ""}\n{"text": "x"}\nnot json\n{"input": 3}\n{"input": '
        '"labeled", "output": "card_arrival"}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError) as caught:
        load_unlabeled(bad)
    found = [(p.line, p.field, p.code) for p in caught.value.problems]
    assert found == [
        (2, "input", "empty_field"),
        (3, "input", "missing_field"),
        (4, None, "invalid_json"),
        (5, "input", "wrong_type"),
        (6, "output", "has_output"),
    ]  # in line order
    table = tmp_path / "unlabeled.csv"
    table.write_text('text,other\n"where, is it",1\nwhere is it too,2\n', encoding="utf-8")
    assert load_unlabeled(table, input_col="text").inputs == ["where, is it", "where is it too"]
    with pytest.raises(DataError, match="unlabeled.csv line 1: field 'input': no column 'input'"):
        load_unlabeled(table)


def test_ordering_puts_teachers_first_and_keeps_the_rest_in_place():
    from types import SimpleNamespace

    from adaptlab.runs.distill import ordered

    contenders = [SimpleNamespace(key=k) for k in ("a", "s1", "b", "s2", "t")]
    assert [c.key for c in ordered(contenders, {"s1": "t", "s2": "s1"}, "u.jsonl")] == ["a", "b", "t", "s1", "s2"]
    assert [c.key for c in ordered(contenders, {}, None)] == ["a", "s1", "b", "s2", "t"]


def test_a_tuned_student_tries_its_settings_on_the_rows_it_trains_on_with_the_teachers_labels(
    card_experiment, tmp_path, fits
):
    from adaptlab.runs.compare import run_compare

    requests: list = []
    with serving(_fake_endpoint(requests)) as url:
        teacher = f"{{id: hosted, name: zero_shot, model: {{base_url: '{url}/v1', name: fake-model}}}}"
        student = STUDENT.replace("TEACHER", "hosted").replace(
            "dev_fraction: 0}", "dev_fraction: 0, tune: {trials: 2, dev_fraction: 0.7}}"
        )
        results, _ = run_compare(_experiment(card_experiment, [teacher, student]), tmp_path / "run")
    labeled = {(text, _label(text)) for text in UNLABELED}
    assert len(fits) == 3 + (
        tuning_best_trial(results) != 0
    )  # two trials, the chosen settings (and the untuned ones on test when they differ)
    assert all(
        labeled <= set(rows) for rows in fits
    )  # every trial learned from the teacher's labels, as the student does
    tuning = next(s for s in results["strategies"] if s["name"] == "student")["solver"]["tuning"]
    assert tuning["trials_run"] == 2 and tuning["dev_rows"] == 8


def tuning_best_trial(results: dict) -> int:
    return next(s for s in results["strategies"] if s["name"] == "student")["solver"]["tuning"]["best"]["trial"]
