"""Tuning (`tune:`): settings searched on the dev rows only, the same budget for each side, both figures kept."""

from __future__ import annotations

import json

import pytest
from conftest import CARD_ROWS, cards_experiment

from adaptlab.errors import ConfigError

TEST_ROWS = [
    ("my card never came", "card_arrival"),
    ("card was stolen", "lost_or_stolen_card"),
    ("the ATM kept it", "card_swallowed"),
    ("where's my card", "card_arrival"),
    ("lost card", "lost_or_stolen_card"),
    ("ATM ate the card", "card_swallowed"),
]


@pytest.fixture
def tuned_experiment(tmp_path, tiny_model_dir):
    rows = CARD_ROWS + [
        (f"{text}, please help ({n})", label) for n in range(2) for text, label in CARD_ROWS
    ]  # 36 rows: a dev split of 9
    return cards_experiment(
        tmp_path,
        tiny_model_dir,
        rows,
        TEST_ROWS,
        """  - {name: few_shot, k: 2, selector: similar, tune: {trials: 3, dev_fraction: 0.25}}
  - {name: lora, epochs: 1, batch_size: 8, bf16: false, dev_fraction: 0.25, tune: {trials: 3}}
""",
    )


def test_tuning_searches_on_dev_rows_only_and_keeps_the_untuned_figures(tuned_experiment, tmp_path, monkeypatch):
    import adaptlab.runs.tune as tune_module
    from adaptlab.runs.compare import run_compare

    seen: list[str] = []
    real = tune_module._predict
    monkeypatch.setattr(tune_module, "_predict", lambda solver, inputs: (seen.extend(inputs), real(solver, inputs))[1])
    results, run_dir = run_compare(tuned_experiment, tmp_path / "run")
    held = results["data"]["held_out_for_dev"]
    train_lines = (tuned_experiment.parent / "train.jsonl").read_text().splitlines()
    dev_inputs = {json.loads(train_lines[line - 1])["input"] for line in held["lines"]}
    test_inputs = {text for text, _ in TEST_ROWS}
    assert seen and set(seen) <= dev_inputs and not set(seen) & test_inputs  # the tuner read dev rows, never a test row
    for s in results["strategies"]:
        tuning = s["solver"]["tuning"]
        assert (
            tuning["trials_run"] == 3 and len(tuning["trials"]) == 3 and tuning["dev_rows"] == len(held["lines"]) == 9
        )
        assert tuning["budget"]["trials"] == 3  # the same budget on both sides
        first = tuning["trials"][0]["settings"]
        assert tuning["untuned"]["settings"] == first
        best = tuning["best"]
        assert best["dev_score"] == max(t["dev_score"] for t in tuning["trials"])
        untuned_test = tuning["untuned"]["test"]
        assert isinstance(untuned_test, str) if best["trial"] == 0 else 0 <= untuned_test["score"] <= 1
    few, lora = results["strategies"]
    assert few["solver"]["tuning"]["trials"][0]["settings"] == {"k": 2, "selector": "similar", "instruction": "own"}
    assert set(few["solver"]["tuning"]["searched"]) == {"k", "selector", "instruction"}
    assert (
        set(lora["solver"]["tuning"]["searched"]) == {"learning_rate", "epochs", "r"}
        and lora["solver"]["tuning"]["trials"][0]["settings"]["learning_rate"] == 5e-3
    )
    chosen = few["solver"]["tuning"]["best"]["settings"]
    saved = json.loads((run_dir / "solvers" / "few_shot" / "solver.json").read_text())
    assert (
        saved["selection"]["k"] == chosen["k"] and saved["selection"]["selector"] == chosen["selector"]
    )  # the contender measured on test is the tuned one
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Tuning" in report and "untuned" in report


@pytest.mark.parametrize(
    "entry, message",
    [
        ("{name: majority, tune: {}}", "majority has no settings to search"),
        (
            "{name: zero_shot, tune: {trials: 2}}",
            "no dev rows",
        ),  # 12 training rows: a 10% split would hold out fewer than 8
        (
            "{name: few_shot, id: tuned, tune: {proposer: nobody}}\n  - name: zero_shot",
            "tune.proposer 'nobody' is not another prompted contender of this experiment; name one "
            "of: zero_shot, few_shot",
        ),
        (
            "{name: lora, id: tuned, tune: {proposer: zero_shot}}\n  - name: zero_shot",
            "lora has no instruction to tune",
        ),
    ],
)
def test_tune_settings_that_cannot_work_are_config_errors(card_experiment, tmp_path, entry, message):
    from adaptlab.runs.compare import run_compare

    card_experiment.write_text(card_experiment.read_text().replace("  - name: zero_shot\n", f"  - {entry}\n"))
    with pytest.raises(ConfigError, match=message):
        run_compare(card_experiment, tmp_path / "run")


def _cards():
    """CARD_ROWS as a Dataset (train and dev at once in these unit tests) and the cards Task."""
    from adaptlab.data import Dataset, Example
    from adaptlab.task import Task

    rows = Dataset([Example(text, label, i + 1) for i, (text, label) in enumerate(CARD_ROWS)], "train.jsonl")
    return rows, Task("cards", "Route the message.", "classify", tuple(sorted({label for _, label in CARD_ROWS})))


def test_instruction_variants_keep_the_task_and_leave_out_the_label_list_in_one():
    from adaptlab.engine.prompt import system_text
    from adaptlab.runs.tune import instructions
    from adaptlab.task import Task

    task = Task("cards", "Route the message.", "classify", ("a", "b"))
    variants = dict(instructions(task))
    assert variants["own"] is task and list(variants)[0] == "own"
    assert "a, b" in system_text(variants["own"]) and "a, b" not in system_text(variants["own, no label list"])
    assert Task.from_dict(variants["own, no label list"].to_dict()) == variants["own, no label list"]
    qa = Task("hb", "Answer from the documents.", "qa")
    assert [n for n, _ in instructions(qa)] == ["own", "terse", "detailed"]


def test_a_space_the_budget_covers_is_tried_whole_and_repeats_are_not_refitted(tiny_base):
    from adaptlab.kinds import kind
    from adaptlab.kinds.context import BuildContext, ModelSource
    from adaptlab.runs.tune import tune

    rows, task = _cards()
    spec = kind("zero_shot")
    fits = []
    build = lambda c: (fits.append(c), spec.build(c, BuildContext(ModelSource(tiny_base), 0)))[1]  # noqa: E731
    tuned = tune(
        spec.config.model_validate({"name": "zero_shot", "tune": {"trials": 6}}), spec, task, rows, rows, build, 0
    )
    tried = [t["settings"]["instruction"] for t in tuned.record["trials"] if "repeat_of" not in t]
    assert (
        sorted(tried) == sorted(["own", "own, no label list", "terse", "detailed"]) and len(fits) == 4
    )  # four instructions, each fitted once


def test_label_meanings_from_task_labels_are_listed_and_tuning_tries_the_list_without_them(tmp_path):
    from adaptlab.engine.prompt import system_text
    from adaptlab.runs.tune import instructions
    from adaptlab.task import Task, make_task

    rows, _ = _cards()
    task = make_task("cards", "Route the message.", rows, rows, descriptions={"card_swallowed": "an ATM kept the card"})
    text = system_text(task)
    assert (
        "- card_swallowed: an ATM kept the card" in text and "- card_arrival\n" in text
    )  # undescribed labels listed bare
    assert Task.from_dict(task.to_dict()) == task  # solver.json keeps the meanings
    variants = dict(instructions(task))
    assert list(variants)[:3] == ["own", "own, labels without meanings", "own, no label list"]
    assert "an ATM kept" not in system_text(
        variants["own, labels without meanings"]
    ) and "card_swallowed" in system_text(variants["own, labels without meanings"])
    with pytest.raises(
        ConfigError, match=r"'card_swalowed', which no training output uses; the labels are: card_arrival"
    ):
        make_task("cards", "Route.", rows, rows, descriptions={"card_swalowed": "typo"})
    with pytest.raises(ConfigError, match="generate task"):
        make_task("cards", "Route.", rows, rows, kind="generate", descriptions={"card_swallowed": "x"})


class _Writer:
    """A stand-in proposer model: records the prompts it is given, answers with the texts it was handed."""

    def __init__(self, answers):
        self.answers, self.prompts = answers, []

    def predict(self, prompts, progress=None):
        from adaptlab.solver import Prediction

        answers = self.answers[len(self.prompts) : len(self.prompts) + len(prompts)]
        self.prompts += prompts
        return [Prediction(a, 50, 10, 0.1) for a in answers]


def test_a_proposer_writes_instructions_from_the_dev_rows_trial_0_got_wrong(tiny_base):
    from adaptlab.kinds import kind
    from adaptlab.kinds.context import BuildContext, ModelSource
    from adaptlab.runs.tune import Proposer, tune

    rows, task = _cards()
    spec = kind("zero_shot")
    writer = _Writer(
        [
            'New instruction: "Name the card problem: arrival, theft or an ATM."\n\nThis is better because...',
            "Route the message.",
        ]
    )
    build = lambda c: spec.build(c, BuildContext(ModelSource(tiny_base), 0))  # noqa: E731
    tuned = tune(
        spec.config.model_validate({"name": "zero_shot", "tune": {"trials": 8, "proposer": "big"}}),
        spec,
        task,
        rows,
        rows,
        build,
        0,
        proposer=Proposer("big", writer, 2),
    )
    record = tuned.record
    assert record["proposer"]["instructions"] == ["Name the card problem: arrival, theft or an ATM."]  # cleaned
    assert record["proposer"]["rejected"] == ["Route the message."]  # the own instruction again: dropped
    assert record["instructions"]["proposed 1"].startswith("Name the card problem")
    assert "proposed 1" in record["searched"]["instruction"] and any(
        t["settings"]["instruction"] == "proposed 1" for t in record["trials"]
    )
    untuned = record["trials"][0]
    assert (
        untuned["settings"] == {"instruction": "own"} and "repeat_of" not in untuned
    )  # trial 0 was the proposer's evidence, fitted once
    wrong = record["proposer"]["rows_shown"]
    assert (untuned["dev_score"] < 1) == (wrong > 0) and all(
        "Instruction: Route the message." in p for p in writer.prompts
    )
    shown = [
        line.removeprefix("Input: ") for p in writer.prompts for line in p.splitlines() if line.startswith("Input: ")
    ]
    assert len(shown) == wrong and set(shown) <= {
        text for text, _ in CARD_ROWS
    }  # dev rows only, each handful different
    assert len(set(shown)) == len(shown)


def test_compare_asks_the_named_contenders_model_for_instructions_and_reports_them(tmp_path, tiny_model_dir):
    from adaptlab.runs.compare import run_compare

    rows = CARD_ROWS + [(f"{text}, please help ({n})", label) for n in range(2) for text, label in CARD_ROWS]
    experiment = cards_experiment(
        tmp_path,
        tiny_model_dir,
        rows,
        TEST_ROWS,
        """  - name: zero_shot
  - {name: few_shot, k: 2, selector: similar, tune: {trials: 3, dev_fraction: 0.25, proposer: zero_shot, proposals: 2}}
""",
    )
    results, run_dir = run_compare(experiment, tmp_path / "run")
    tuning = next(s for s in results["strategies"] if s["name"] == "few_shot")["solver"]["tuning"]
    written = tuning["proposer"]
    assert (
        written["id"] == "zero_shot" and len(written["instructions"]) + len(written["rejected"]) == 2
    )  # the tiny model's text, kept or dropped
    assert written["tokens"]["prompt"] > 0 and [f"proposed {i + 1}" for i in range(len(written["instructions"]))] == [
        n for n in tuning["instructions"] if n.startswith("proposed")
    ]
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Instructions written by a proposer" in report


def test_settings_that_act_alike_are_fitted_once(tiny_base):
    from adaptlab.kinds import kind
    from adaptlab.kinds.context import BuildContext, ModelSource
    from adaptlab.runs.tune import tune

    rows, task = _cards()
    from dataclasses import replace

    spec = replace(
        kind("few_shot"), space={"k": ("choice", [0]), "selector": ("choice", ["similar", "random", "balanced"])}
    )
    fits = []
    build = lambda c: (fits.append(c), spec.build(c, BuildContext(ModelSource(tiny_base), 0)))[1]  # noqa: E731
    tuned = tune(
        spec.config.model_validate({"name": "few_shot", "k": 0, "tune": {"trials": 12}}),
        spec,
        task,
        rows,
        rows,
        build,
        0,
    )
    instructions = {t["settings"]["instruction"] for t in tuned.record["trials"]}
    assert (
        len(fits) == len(instructions) < len(tuned.record["trials"])
    )  # k 0 with any selector is one prompt per instruction
