"""The references every comparison runs beside the LLM contenders: constant and nearest (generate), abstain and
extract (qa). Each fits, answers, saves and loads back through its kind; extract's abstain threshold is fitted on
the training rows; saved nearest and extract versions are served over the OpenAI-compatible API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adaptlab import kinds
from adaptlab.data import Dataset, Example
from adaptlab.errors import ConfigError
from adaptlab.kinds.context import LocalModels
from adaptlab.task import Task

GENERATE = Task("booking", "Turn the message into slots.", "generate")
BOOKINGS = [
    ("a table for four people tonight", '{"people": "four people"}'),
    ("book it under the name Nella Sabb", '{"first_name": "Nella", "last_name": "Sabb"}'),
    ("can we come at 7:45 instead", '{"time": "7:45"}'),
    ("the 7th of April works for us", '{"date": "7th of April"}'),
    ("we will be 6 people", '{"people": "6 people"}'),
    ("my name is Stacee Ellifritt", '{"first_name": "Stacee", "last_name": "Ellifritt"}'),
    ("party of six please", '{"people": "6 people"}'),
]

HANDBOOK = """# Leave

Employees get 25 days of paid leave a year. Unused leave days carry over until March 31.

# Equipment

The company reimburses a standing desk up to $400 once every three years.
"""
FAQ = "Parking: the garage on Elm Street is free for employees after 6 pm. Security badges are renewed every 2 years."
ANSWERABLE = [
    ("How many days of paid leave do employees get?", "Employees get 25 days of paid leave a year."),
    ("Until when do unused leave days carry over?", "Unused leave days carry over until March 31."),
    ("Is the garage on Elm Street free for employees?", "The garage is free for employees after 6 pm."),
]
UNANSWERABLE = [
    ("What is the capital of Peru?", "I don't know"),
    ("Who painted the Mona Lisa?", "I don't know"),
    ("How tall is Mount Everest?", "I don't know"),
]
QA = Task("handbook", "Answer from the documents.", "qa")


def data(rows) -> Dataset:
    return Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(rows)])


def fit(spec: dict, task: Task, rows, **context):
    return kinds.strategy(spec, **context).fit(task, data(rows))


def answers(solver, inputs: list[str]) -> list[str]:
    return [p.output for p in solver.predict(inputs)]


def reloaded(solver, folder, context=None):
    """The solver saved to `folder` and loaded back by its kind, as a registry or server would."""
    solver.save(folder)
    return kinds.kind(json.loads((folder / "solver.json").read_text())["strategy"]).load(folder, context)


@pytest.fixture(scope="module")
def embedder():
    from adaptlab.models.embedder import default_embedder

    return default_embedder()


@pytest.fixture
def documents(tmp_path, tiny_base, embedder):
    from adaptlab.knowledge.index import Documents

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text(HANDBOOK, encoding="utf-8")
    (docs / "faq.txt").write_text(FAQ, encoding="utf-8")
    return Documents(docs, tiny_base.tokenizer, embedder, size=400, overlap=16)  # whole files in one chunk each


def test_every_task_kinds_references_are_non_llm_kinds_that_answer_it_a_constant_one_first():
    from adaptlab.tasks import task_kinds

    for task_kind in task_kinds():
        refs = [kinds.kind(name) for name in task_kind.references]
        assert refs and all(k.answers(task_kind.name) and not k.llm and k.family == "baseline" for k in refs), (
            task_kind.name
        )
        assert refs[0].constant and refs[0].tier == 0, task_kind.name


# --- constant ------------------------------------------------------------------------------


def test_constant_answers_the_most_frequent_output_ties_to_the_first_in_order_and_loads_back(tmp_path):
    solver = fit({"name": "constant"}, GENERATE, BOOKINGS)
    assert answers(solver, ["anything at all", "a table for four"]) == ['{"people": "6 people"}'] * 2
    tied = fit({"name": "constant"}, GENERATE, [("a", "zebra"), ("b", "apple"), ("c", "zebra"), ("d", "apple")])
    assert answers(tied, ["x"]) == ["apple"]
    loaded = reloaded(solver, tmp_path / "constant")
    assert loaded.strategy == "constant" and answers(loaded, ["x", "y"]) == answers(solver, ["x", "y"])
    assert loaded.describe() == solver.describe() and solver.describe()["train_count"] == 2
    assert kinds.kind("constant").traits() == {
        "kind": "constant",
        "family": "baseline",
        "tier": 0,
        "llm": False,
        "constant": True,
        "own_weights": False,
    }
    assert all(p.prompt_tokens == p.completion_tokens == 0 for p in solver.predict(["x"]))


# --- nearest -------------------------------------------------------------------------------


@pytest.mark.parametrize("retriever", ["bm25", "dense"])
def test_nearest_answers_a_paraphrase_with_its_training_output_and_loads_back(tmp_path, embedder, retriever):
    solver = fit({"name": "nearest", "retriever": retriever}, GENERATE, BOOKINGS, embedder=embedder)
    asked = ["please book under the name Nella Sabb", "could we come at 7:45", "my name is Stacee Ellifritt, thanks"]
    assert answers(solver, asked) == [BOOKINGS[1][1], BOOKINGS[2][1], BOOKINGS[5][1]]
    loaded = reloaded(solver, tmp_path / "nearest", LocalModels(embedder))
    assert answers(loaded, asked) == answers(solver, asked)
    assert loaded.describe()["retriever"] == retriever and "most similar training input" in loaded.describe()["rule"]
    assert sorted(p.name for p in (tmp_path / "nearest").iterdir()) == [
        "solver.json"
    ]  # JSON only: dense vectors are computed again


def test_nearest_bm25_answers_an_input_sharing_no_word_with_the_most_frequent_output():
    solver = fit({"name": "nearest", "retriever": "bm25"}, GENERATE, BOOKINGS)
    assert answers(solver, ["zzz qqq"]) == ['{"people": "6 people"}']


def test_nearest_defaults_to_the_retriever_its_benchmark_chose():
    measured = json.loads((Path(__file__).parents[1] / "bench" / "results" / "references-cpu.json").read_text())
    assert kinds.kind("nearest").config.model_validate({"name": "nearest"}).retriever == measured["nearest_default"]


# --- abstain -------------------------------------------------------------------------------


def test_abstain_always_answers_the_tasks_abstain_answer_and_loads_back(tmp_path):
    task = Task("handbook", "Answer.", "qa", abstain="Not in the documents.")
    solver = fit({"name": "abstain"}, task, ANSWERABLE)
    asked = [q for q, _ in ANSWERABLE + UNANSWERABLE]
    assert answers(solver, asked) == ["Not in the documents."] * len(asked)
    loaded = reloaded(solver, tmp_path / "abstain")
    assert loaded.strategy == "abstain" and answers(loaded, asked) == answers(solver, asked)
    assert kinds.kind("abstain").traits()["constant"] and not kinds.kind("abstain").answers("generate")


# --- extract -------------------------------------------------------------------------------


def test_extract_quotes_a_document_sentence_abstains_off_topic_and_loads_back(tmp_path, documents, embedder):
    from adaptlab.kinds.extract import sentences

    solver = fit({"name": "extract", "k": 2}, QA, ANSWERABLE + UNANSWERABLE, documents=documents, embedder=embedder)
    quotable = sentences(HANDBOOK) + sentences(FAQ)
    predictions = solver.predict(["How much is a standing desk reimbursed?", "Who won the 1998 World Cup?"])
    assert (
        predictions[0].output == "The company reimburses a standing desk up to $400 once every three years."
        and predictions[0].output in quotable
    )
    assert predictions[1].output == QA.abstain
    assert [p["source"] for p in predictions[0].passages][0] == "handbook.md" and {
        "source",
        "id",
        "score",
        "text",
    } == predictions[0].passages[0].keys()
    fitted = solver.describe()["train"]
    assert fitted["rows"] == 6 and fitted["answerable_rows"] == 3 and fitted["score"] > fitted["score_never_abstaining"]
    assert (
        solver.describe()["sentences"] == 1 and fitted["score_by_sentences"]["1"] > fitted["score_by_sentences"]["2"]
    )  # one-sentence training answers
    asked = ["How often are security badges renewed?", "Who won the 1998 World Cup?", "Is parking free after 6 pm?"]
    loaded = reloaded(solver, tmp_path / "extract", LocalModels(embedder))
    assert answers(loaded, asked) == answers(solver, asked) and loaded.threshold == solver.threshold
    (
        tmp_path / "extract" / "vectors.npy"
    ).unlink()  # the registry keeps .json files only: the vectors are computed again
    assert answers(kinds.kind("extract").load(tmp_path / "extract", None), asked) == answers(solver, asked)


def test_extract_threshold_is_fitted_on_the_training_rows(documents, embedder):
    from adaptlab.kinds.extract import ABOVE_ANY, BELOW_ANY

    unanswerable = fit({"name": "extract"}, QA, UNANSWERABLE, documents=documents, embedder=embedder)
    answerable = fit({"name": "extract"}, QA, ANSWERABLE, documents=documents, embedder=embedder)
    assert (
        unanswerable.threshold == ABOVE_ANY and answerable.threshold == BELOW_ANY
    )  # only off-topic rows: always abstain; only answerable: never
    assert answers(unanswerable, [ANSWERABLE[0][0]]) == [QA.abstain]
    assert answers(answerable, ["Who won the 1998 World Cup?"]) != [QA.abstain]


def test_extract_fits_the_answer_length_to_the_training_answers_unless_it_is_set(documents, embedder):
    two = [
        (
            "How many days of paid leave do employees get, and do unused days carry over?",
            "Employees get 25 days of paid leave a year. Unused leave days carry over until March 31.",
        ),
        (
            "When is the garage free, and how often are badges renewed?",
            "The garage on Elm Street is free for employees after 6 pm. Security badges are renewed every 2 years.",
        ),
    ]
    fitted = fit({"name": "extract"}, QA, two, documents=documents, embedder=embedder)
    assert fitted.n == 2 and len(fitted.describe()["train"]["score_by_sentences"]) == 5
    assert answers(fitted, [two[0][0]]) == [two[0][1]]
    one = fit({"name": "extract", "sentences": 1}, QA, two, documents=documents, embedder=embedder)
    assert (
        one.n == 1
        and list(one.describe()["train"]["score_by_sentences"]) == ["1"]
        and answers(one, [two[0][0]])[0] in two[0][1]
    )


def test_fit_threshold_picks_the_best_training_mean_and_on_ties_abstains_least():
    from adaptlab.kinds.extract import BELOW_ANY, fit_threshold

    scores = np.array([0.1, 0.3, 0.7, 0.8, float("-inf")])
    if_answered, if_abstained = np.array([0.0, 0.0, 0.9, 0.5, 0.0]), np.array([1.0, 1.0, 0.0, 0.0, 1.0])
    assert fit_threshold(scores, if_answered, if_abstained) == (
        0.5,
        pytest.approx(0.88),
    )  # abstain on the two off-topic rows, and the row with no sentence
    assert (
        fit_threshold(np.array([0.2, 0.6]), np.zeros(2), np.zeros(2))[0] == BELOW_ANY
    )  # nothing to gain: never abstain


def test_extract_without_documents_is_a_config_error_naming_data_docs():
    with pytest.raises(ConfigError, match="data.docs"):
        kinds.strategy({"name": "extract"})


# --- served ----------------------------------------------------------------------------------


def test_saved_nearest_and_extract_versions_answer_through_chat_completions(tmp_path, tiny_base, documents, embedder):
    from starlette.testclient import TestClient

    from adaptlab.registry import default_registry
    from adaptlab.serve import Limits, ServedModels, create_app

    registry = default_registry()
    fit({"name": "nearest"}, GENERATE, BOOKINGS).save(tmp_path / "nearest")
    fit({"name": "extract", "k": 2}, QA, ANSWERABLE + UNANSWERABLE, documents=documents, embedder=embedder).save(
        tmp_path / "extract"
    )
    lookup = registry.add_version("booking", "nearest", tmp_path / "nearest", {}).ref
    quote = registry.add_version("handbook", "extract", tmp_path / "extract", {}).ref
    app = create_app(ServedModels(tiny_base, registry, embedder), "tiny", None, Limits())

    def ask(client, model, text):
        return client.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": text}]}
        )

    with TestClient(app, base_url="http://localhost") as client:
        booked, quoted, declined = (
            ask(client, lookup, "book it under the name Nella Sabb please"),
            ask(client, quote, "How much is a standing desk reimbursed?"),
            ask(client, quote, "Who won the 1998 World Cup?"),
        )
    assert booked.status_code == quoted.status_code == declined.status_code == 200, (
        booked.text,
        quoted.text,
        declined.text,
    )
    assert booked.json()["choices"][0]["message"]["content"] == BOOKINGS[1][1]
    assert (
        quoted.json()["choices"][0]["message"]["content"]
        == "The company reimburses a standing desk up to $400 once every three years."
    )
    assert (
        quoted.json()["sources"][0]["source"] == "handbook.md"
        and declined.json()["choices"][0]["message"]["content"] == QA.abstain
    )
