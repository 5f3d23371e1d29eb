"""`adaptlab init`: a data file in, an experiment compare accepts as is out (columns guessed, kind inferred, split)."""

import csv
import json
import subprocess
import sys
from collections import Counter

import pytest
from conftest import FAQ, HANDBOOK
from typer.testing import CliRunner

from adaptlab.cli import app
from adaptlab.data import load_dataset
from adaptlab.data.columns import guess_pair
from adaptlab.errors import ConfigError, DataError
from adaptlab.runs.experiment import load_experiment
from adaptlab.runs.init import FINE_TUNE_MIN_ROWS, MIN_TEST_ROWS, init_experiment, split_rows

runner = CliRunner()
TOPICS = {
    "card_arrival": "where is my card {}",
    "card_swallowed": "the ATM kept my card at branch {}",
    "lost_or_stolen_card": "I lost my card on day {}",
}


def text_label_rows(per_label: int, rare: int = 0) -> list[dict]:
    """{text, label} rows: per_label of each topic, and `rare` rows of a label with few examples."""
    rows = [
        {"id": i, "text": template.format(i), "label": label}
        for label, template in TOPICS.items()
        for i in range(per_label)
    ]
    return rows + [
        {"id": 1000 + i, "text": f"the card fee on payment {i}", "label": "card_payment_fee_charged"}
        for i in range(rare)
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_text_label_jsonl_gives_an_experiment_compare_accepts(tmp_path):
    data = write_jsonl(tmp_path / "Support Tickets.jsonl", text_label_rows(20, rare=3))
    made = init_experiment(data, gpu=False)
    assert made.folder == tmp_path / "Support Tickets" and made.columns == ("text", "label") and made.kind == "classify"
    config, root = load_experiment(made.folder / "experiment.yaml")
    assert (
        config.task.name == "support-tickets"
        and config.task.kind == "classify"
        and config.baselines
        and config.seed == 0
    )
    assert [s.key for s in config.strategies] == ["zero_shot", "few_shot"]  # 44 training rows: under FINE_TUNE_MIN_ROWS
    train, test = load_dataset(root / config.data.train, min_examples=2), load_dataset(root / config.data.test)
    assert (len(train), len(test)) == (made.train, made.test) == (44, 19)  # round(63 x 0.3) held out
    assert sorted(train.inputs + test.inputs) == sorted(r["text"] for r in text_label_rows(20, rare=3))
    assert not set(train.inputs) & set(test.inputs)
    assert set(train.outputs) == set(TOPICS) | {"card_payment_fee_charged"} and set(test.outputs) <= set(train.outputs)
    assert all(
        6 <= n <= 7 for label, n in Counter(test.outputs).items() if label in TOPICS
    )  # stratified: 0.3 of 20 each
    assert made.labels["card_arrival"] == (train.outputs.count("card_arrival"), test.outputs.count("card_arrival"))
    text = (made.folder / "experiment.yaml").read_text(encoding="utf-8")
    assert "# EDIT the instruction" in text and "majority and embed_classifier" in text and "# - name: lora" in text
    again = init_experiment(data, out=tmp_path / "again", gpu=False)  # seeded: the same split
    assert (again.folder / "test.jsonl").read_text() == (made.folder / "test.jsonl").read_text()


def test_fine_tuning_is_listed_from_enough_rows_with_cpu_epochs(tmp_path):
    data = write_jsonl(tmp_path / "big.jsonl", text_label_rows(40))
    made = init_experiment(data, gpu=False)
    assert made.train >= FINE_TUNE_MIN_ROWS and made.contenders == ("zero_shot", "few_shot", "lora")
    config, _ = load_experiment(made.folder / "experiment.yaml")
    assert config.strategies[-1].epochs == 2
    on_gpu = init_experiment(data, out=tmp_path / "gpu", gpu=True)
    assert load_experiment(on_gpu.folder / "experiment.yaml")[0].strategies[-1].epochs == 3  # the default


def test_a_csv_with_question_answer_columns_gives_a_generate_experiment(tmp_path):
    path = tmp_path / "faq.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Question", "Answer", "team"])
        writer.writerows(
            [
                f"How do I reset password number {i}?",
                f"Open settings, choose security, and reset password {i} there. If that fails, write to the help desk.",
                "it",
            ]
            for i in range(30)
        )
    made = init_experiment(path, out=tmp_path / "out", gpu=False, seed=3)
    assert (
        made.columns == ("Question", "Answer")
        and made.kind == "generate"
        and "longer than 64 characters" in made.kind_reason
    )
    assert made.answer_words == (17, 17, 17) and not made.labels and made.references == ("constant", "nearest")
    config, root = load_experiment(made.folder / "experiment.yaml")
    assert config.task.kind == "generate" and config.seed == 3
    train, test = load_dataset(root / config.data.train, min_examples=2), load_dataset(root / config.data.test)
    assert (len(train), len(test)) == (21, 9) and train.inputs[0].startswith("How do I reset")
    assert any("a useful test needs about 59 rows" in w for w in made.warnings)


def test_a_parquet_file_with_prompt_completion_columns_is_read_like_the_others(tmp_path):
    import pandas as pd

    rows = text_label_rows(12)
    pd.DataFrame(
        {"prompt": [r["text"] for r in rows], "completion": [r["label"] for r in rows], "id": [r["id"] for r in rows]}
    ).to_parquet(tmp_path / "tickets.parquet")
    made = init_experiment(tmp_path / "tickets.parquet", out=tmp_path / "out", gpu=False)
    assert made.columns == ("prompt", "completion") and made.kind == "classify" and (made.train, made.test) == (25, 11)
    config, root = load_experiment(made.folder / "experiment.yaml")
    train, test = load_dataset(root / config.data.train, min_examples=2), load_dataset(root / config.data.test)
    assert sorted(train.inputs + test.inputs) == sorted(r["text"] for r in rows)


def test_split_keeps_every_label_in_train_and_shared_inputs_on_one_side():
    from adaptlab.data import Dataset, Example

    # 5 labels of 3 rows and 6 of one row: at half the rows held out, the rank interleave alone would test singletons
    rows = [Example(f"q{label}-{i}", f"l{label}", 0) for label in range(5) for i in range(3)] + [
        Example(f"single {i}", f"s{i}", 0) for i in range(6)
    ]
    rows += [
        Example("Q0-0", "l0", 0),
        Example("q1-1 ", "l1", 0),
    ]  # the same inputs as two rows above, case and spacing aside
    for seed in range(20):
        train, test, notes = split_rows(Dataset(rows, "d.jsonl"), 0.5, seed, stratify=True)
        assert {e.output for e in rows} == {e.output for e in train} and len(train) + len(test) == len(rows)
        assert not {e.input.lower().strip() for e in train} & {e.input.lower().strip() for e in test}
        assert any("share their input" in n for n in notes)
    with pytest.raises(DataError, match=f"needs {2 * MIN_TEST_ROWS}"):
        split_rows(Dataset(rows[:10], "d.jsonl"), 0.3, 0, stratify=True)


def test_column_guesses():
    assert guess_pair(("input", "output")) == ("input", "output")
    assert guess_pair(("id", "Sentence", "Label")) == ("Sentence", "Label")
    assert guess_pair(("utterance", "intent", "text")) == ("utterance", "intent")
    assert guess_pair(("prompt", "completion")) == ("prompt", "completion")
    assert guess_pair(("text", "label", "answer"), output_col="label") == ("text", "label")
    assert guess_pair(("review", "stars")) is None


def test_the_cli_shows_the_guess_the_split_and_the_next_command(tmp_path):
    data = write_jsonl(tmp_path / "tickets.jsonl", text_label_rows(20))
    done = runner.invoke(app, ["init", str(data), "--name", "cards", "--test-fraction", "0.25"])
    assert done.exit_code == 0, done.output
    out = " ".join(done.stdout.split())
    assert "input 'text', output 'label' (guessed from their names" in out and "columns id, text, label" in out
    assert (
        "kind classify: 3 distinct outputs over 60 rows" in out
        and "card_arrival 15/5" in out
        and "45 train, 15 test" in out
    )
    assert f"adaptlab compare {tmp_path / 'tickets' / 'experiment.yaml'}" in out
    assert load_experiment(tmp_path / "tickets" / "experiment.yaml")[0].task.name == "cards"


def test_an_unguessable_file_names_its_columns_and_the_options(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,stars\ngreat,5\nawful,1\n", encoding="utf-8")
    done = runner.invoke(app, ["init", str(path)])  # the runner does not go through main(), which maps it to exit 2
    assert (
        isinstance(done.exception, DataError) and done.exception.exit_code == 2 and not (tmp_path / "reviews").exists()
    )
    (problem,) = done.exception.problems
    assert (
        problem.code == "unknown_columns"
        and "found: review, stars" in str(problem)
        and "--input-col" in problem.hint
        and "--output-col" in problem.hint
    )
    with pytest.raises(DataError, match="field 'body': no such column"):
        init_experiment(path, input_col="body", output_col="stars", gpu=False)


def test_a_non_empty_out_folder_is_refused(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", text_label_rows(10))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        init_experiment(data, out=tmp_path / "out", gpu=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["notes.txt"]
    with pytest.raises(ConfigError, match="--test-fraction"):
        init_experiment(data, out=tmp_path / "new", test_fraction=1.0, gpu=False)
    with pytest.raises(ConfigError, match="--name"):
        init_experiment(data, out=tmp_path / "new", name="Bad Name", gpu=False)


def test_documents_make_a_qa_experiment_with_rag_and_null_answers(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text(HANDBOOK)
    (docs / "faq.txt").write_text(FAQ)
    rows = [
        {"question": f"How many leave days in year {i}?", "answer": "25 days a year.", "sources": ["handbook.md"]}
        for i in range(16)
    ]
    rows += [{"question": f"Who won the cup in {1990 + i}?", "answer": None} for i in range(6)]
    data = write_jsonl(tmp_path / "questions.jsonl", rows)
    made = init_experiment(data, docs=docs, out=tmp_path / "exp", gpu=False)
    assert (
        made.kind == "qa"
        and "--docs" in made.kind_reason
        and made.unanswerable == 6
        and made.contenders == ("zero_shot", "few_shot", "rag")
    )
    config, root = load_experiment(made.folder / "experiment.yaml")
    assert (root / config.data.docs).resolve() == docs.resolve() and config.data.docs == "../docs"
    lines = [
        json.loads(line)
        for name in ("train.jsonl", "test.jsonl")
        for line in (made.folder / name).read_text().splitlines()
    ]
    assert sum(line["output"] is None for line in lines) == 6 and all(
        line["sources"] == ["handbook.md"] for line in lines if line["output"]
    )


def test_a_chat_file_keeps_its_system_message_as_the_instruction(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Route the card message."},
                {"role": "user", "content": r["text"]},
                {"role": "assistant", "content": r["label"]},
            ]
        }
        for r in text_label_rows(8)
    ]
    made = init_experiment(write_jsonl(tmp_path / "chat.jsonl", rows), gpu=False)
    assert made.columns is None and "chat messages" in made.columns_from
    assert load_experiment(made.folder / "experiment.yaml")[0].task.instruction == "Route the card message."


def test_init_help_does_not_import_torch():
    code = (
        "import sys; from adaptlab.cli import app; from typer.testing import CliRunner; r = "
        "CliRunner().invoke(app, ['init', '--help']); print(r.exit_code, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "False"]


def test_compare_runs_an_initialised_experiment_end_to_end(tmp_path, tiny_model_dir):
    data = write_jsonl(
        tmp_path / "cards.jsonl", text_label_rows(30)
    )  # 63 training rows: no lora (its entry is checked above), ~4x quicker
    assert runner.invoke(app, ["init", str(data)]).exit_code == 0
    done = runner.invoke(
        app,
        [
            "compare",
            str(tmp_path / "cards" / "experiment.yaml"),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(tmp_path / "run"),
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    results = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert results["task"]["kind"] == "classify" and sorted(results["task"]["labels"]) == sorted(TOPICS)
    assert [s["name"] for s in results["strategies"]] == ["majority", "embed_classifier", "zero_shot", "few_shot"]
    assert all(len(s["predictions"]) == 27 for s in results["strategies"])
    assert json.loads(done.stdout)["choice"] == results["recommendation"]["choice"]
