"""Knowledge tasks end to end on the tiny model: documents in, zero_shot / rag / lora on the documents compared,
the qa measures in results.json and the report, and a rag version served with its sources."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from conftest import FAQ, HANDBOOK, QUESTIONS_TEST, QUESTIONS_TRAIN, serving

from adaptlab.errors import ConfigError, DataError


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def qa_experiment(tmp_path, tiny_model_dir) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text(HANDBOOK, encoding="utf-8")
    (docs / "faq.txt").write_text(FAQ, encoding="utf-8")
    _write(tmp_path / "train.jsonl", QUESTIONS_TRAIN)
    _write(tmp_path / "test.jsonl", QUESTIONS_TEST)
    (tmp_path / "experiment.yaml").write_text(
        f"""task: {{name: handbook, instruction: "Answer from the documents. If they do not say, answer I don't know."}}
data: {{docs: docs, train: train.jsonl, test: test.jsonl, chunk_tokens: 24, chunk_overlap: 4}}
model: {tiny_model_dir}
strategies:
  - name: zero_shot
  - {{name: rag, k: 2, retriever: bm25}}
  - {{id: lora_docs, name: lora, train_on: documents, epochs: 1, batch_size: 4, bf16: false, dev_fraction: 0}}
""",
        encoding="utf-8",
    )
    return tmp_path / "experiment.yaml"


def test_a_qa_compare_measures_every_strategy_and_keeps_each_rag_answers_passages(qa_experiment, tmp_path):
    from adaptlab.runs.compare import run_compare

    results, run_dir = run_compare(qa_experiment, tmp_path / "run")
    task = results["task"]
    assert task["kind"] == "qa" and task["metric"] == "qa_score" and task["abstain"] == "I don't know"
    assert results["data"]["documents"].keys() == {"faq.txt", "handbook.md"} and results["data"]["chunks"] >= 3
    by_name = {s["name"]: s for s in results["strategies"]}
    assert list(by_name) == ["abstain", "extract", "zero_shot", "rag", "lora_docs"]  # the qa references first
    unanswerable = sum(r["expected"] == "I don't know" for r in by_name["abstain"]["predictions"]) / len(
        by_name["abstain"]["predictions"]
    )
    assert (
        by_name["abstain"]["metrics"]["qa_score"] == pytest.approx(unanswerable) and by_name["abstain"]["flags"] == []
    )  # the floor: the share of unanswerable questions
    assert by_name["extract"]["traits"]["llm"] is False and by_name["extract"]["predictions"][0]["passages"]
    for s in by_name.values():  # one unanswerable test row: hallucination and abstention are measured for everyone
        assert {
            "qa_score",
            "token_f1",
            "rouge_l",
            "similarity",
            "abstention_rate",
            "hallucination_rate",
            "false_abstention_rate",
        } <= s["metrics"].keys()
        assert s["metrics"]["abstention_rate"] + s["metrics"]["hallucination_rate"] == pytest.approx(1.0)
        assert s["predictions"][2]["expected"] == "I don't know" and s["predictions"][0]["sources"] == ["handbook.md"]
    rag = by_name["rag"]
    assert {"recall_at_k", "mrr"} <= rag["metrics"].keys() and "recall_at_k" not in by_name["zero_shot"]["metrics"]
    for row in rag["predictions"][:2]:
        assert 1 <= len(row["passages"]) <= 2 and all(
            p["text"] and p["source"] in ("faq.txt", "handbook.md") for p in row["passages"]
        )
    assert (
        "passages" not in rag["predictions"][2]
    )  # no word of the trivia question is in the documents: BM25 finds nothing
    assert (
        rag["prompt_tokens_mean"] > by_name["zero_shot"]["prompt_tokens_mean"]
    )  # the passages are paid for in prompt tokens
    assert (
        rag["solver"]["retrieval"]["retriever"] == "bm25"
        and rag["solver"]["retrieval"]["chunks"] == results["data"]["chunks"]
    )
    reading = by_name["lora_docs"]["solver"]["documents_training"]
    assert reading["passages"] == results["data"]["chunks"] and reading["steps"] >= 1 and reading["tokens"] > 0
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "hallucination" in report and "abstention" in report


def test_a_rag_version_is_served_with_the_passages_it_was_given(qa_experiment, tmp_path, tiny_base):
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare
    from adaptlab.serve import Limits, ServedModels, create_app

    text = qa_experiment.read_text(encoding="utf-8")
    qa_experiment.write_text(
        text[: text.index("  - name: zero_shot")] + "  - {name: rag, k: 1, retriever: bm25}\n", encoding="utf-8"
    )
    run_compare(qa_experiment, tmp_path / "run")
    saved = tmp_path / "run" / "solvers" / "rag"
    assert (saved / "chunks.json").is_file() and not list(saved.glob("*.pkl")) and not list(saved.glob("*.pt"))
    version = next(v for v in default_registry().versions("handbook") if v.strategy == "rag")
    with ExitStack() as stack:
        url = stack.enter_context(
            serving(create_app(ServedModels(tiny_base, default_registry()), "tiny", None, Limits()))
        )
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={
                "model": version.ref,
                "messages": [{"role": "user", "content": "How often are badges renewed?"}],
                "max_tokens": 8,
            },
            timeout=60,
        )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert [s["source"] for s in body["sources"]] == ["faq.txt"] and "Badges" in body["sources"][0]["text"]


def test_null_answers_and_sources_belong_to_knowledge_tasks(tmp_path):
    from adaptlab.data import load_dataset

    _write(tmp_path / "q.jsonl", QUESTIONS_TRAIN)
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path / "q.jsonl")
    assert "line 4" in str(info.value) and "data.docs" in str(info.value)
    data = load_dataset(tmp_path / "q.jsonl", abstain="I don't know")
    assert data.outputs[3] == "I don't know" and data.examples[0].sources == ("handbook.md",)
    _write(tmp_path / "bad.jsonl", [{"input": "q", "output": "a", "sources": "handbook.md"}])
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path / "bad.jsonl", abstain="I don't know")
    assert "sources" in str(info.value) and "line 1" in str(info.value)


def test_rag_without_documents_and_qa_without_documents_are_config_errors(qa_experiment):
    from adaptlab.runs.compare import run_compare

    text = qa_experiment.read_text(encoding="utf-8").replace("docs: docs, ", "")
    qa_experiment.write_text(text, encoding="utf-8")
    with pytest.raises((ConfigError, DataError)):  # the null answer in train is refused first, naming data.docs
        run_compare(qa_experiment)


HANDBOOK_UPDATED = HANDBOOK.replace("up to $400", "up to $650")
UPDATE_QUESTIONS = [
    {
        "input": "How much is a standing desk reimbursed?",
        "output": "Up to $650 once every three years.",
        "old_output": "Up to $400 once every three years.",
        "sources": ["handbook.md"],
    },
    {
        "input": "What is the most the company pays toward a standing desk?",
        "output": "$650.",
        "old_output": "$400.",
        "sources": ["handbook.md"],
    },
]


@pytest.fixture
def update_experiment(qa_experiment) -> Path:
    root = qa_experiment.parent
    (root / "updates").mkdir()
    (root / "updates" / "handbook.md").write_text(HANDBOOK_UPDATED, encoding="utf-8")
    _write(root / "test_updates.jsonl", UPDATE_QUESTIONS)
    text = qa_experiment.read_text(encoding="utf-8").replace(
        "chunk_overlap: 4}", "chunk_overlap: 4, updates: {docs: updates, test: test_updates.jsonl}}"
    )
    text = (
        text[: text.index("  - name: zero_shot")]
        + """  - {name: rag, k: 2, retriever: bm25}
  - {id: raft, name: rag, k: 2, retriever: bm25, without_gold: 0.5, fine_tune: {name: lora, epochs: 1, batch_size: 2, bf16: false, dev_fraction: 0}}
  - {id: closed, name: lora, epochs: 1, batch_size: 2, bf16: false, dev_fraction: 0}
constraints: {data_changes: weekly}
baselines: false
"""
        # the update's mechanics on LLM contenders (tiny random ones lose to the references, and the advice would be to
        # collect data)
    )
    qa_experiment.write_text(text, encoding="utf-8")
    return qa_experiment


def test_a_document_update_reaches_rag_by_reindexing_the_changed_file_and_not_a_closed_book_fine_tune(
    update_experiment, tmp_path
):
    from adaptlab.runs.compare import run_compare

    results, run_dir = run_compare(update_experiment, tmp_path / "run")
    updates = results["updates"]
    assert updates["changed"] == ["handbook.md"] and updates["added"] == [] and updates["questions"] == 2
    by_name = updates["contenders"]
    for name in ("rag", "raft"):  # read the documents at query time: re-index the one changed file, no training
        absorb = by_name[name]["absorb"]
        assert absorb["how"] == "re-index" and absorb["files"] == ["handbook.md"] and absorb["seconds"] < 30
        after = by_name[name]["after"]["answers"]
        assert any("$650" in p["text"] for p in after[0]["passages"]) and not any(
            "$400" in p["text"] for row in after for p in row["passages"]
        )
        assert any("$400" in p["text"] for p in by_name[name]["before"]["answers"][0]["passages"])
    closed = by_name[
        "closed"
    ]  # answers from its weights: asked again, the same answers, stale or not, until it is retrained
    assert closed["absorb"]["how"] == "retrain" and closed["absorb"]["seconds"] > 0 and closed["absorb"]["dollars"] > 0
    assert closed["absorb"]["estimate"] is True and "rag" not in [
        n for n, u in by_name.items() if u["absorb"].get("estimate")
    ]
    assert [a["predicted"] for a in closed["before"]["answers"]] == [a["predicted"] for a in closed["after"]["answers"]]
    for side in ("before", "after"):
        for row in closed[side]["answers"]:  # the stale measure reads each answer for the old figure
            assert row["stale"] == ("400" in row["predicted"].replace(",", "") and "650" not in row["predicted"])
    raft = next(s for s in results["strategies"] if s["name"] == "raft")
    assert (
        raft["traits"]["family"] == "fine_tuned"
        and raft["solver"]["raft"]["rows_without_gold"] == round(0.5 * 3)
        and raft["solver"]["retrieval"]["k"] == 2
    )
    assert raft["solver"]["training"]["steps"] >= 1
    costs = {s["name"]: s for s in results["strategies"]}
    assert "retrain (estimate)" in costs["closed"]["upkeep_basis"]
    assert (
        costs["closed"]["upkeep_per_month"] > costs["rag"]["upkeep_per_month"]
    )  # retraining weekly costs more than re-indexing weekly
    assert any("old fact" in r for r in results["recommendation"]["reasons"])
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "document update" in report.lower()


def test_versions_on_changed_documents_are_marked_stale_and_refresh_reruns_the_recorded_config(
    qa_experiment, tmp_path, tiny_base
):
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import recorded_experiment, run_compare
    from adaptlab.serve import Limits, ServedModels, create_app

    text = qa_experiment.read_text(encoding="utf-8")
    qa_experiment.write_text(
        text[: text.index("  - name: zero_shot")] + "  - name: zero_shot\n  - {name: rag, k: 1, retriever: bm25}\n",
        encoding="utf-8",
    )
    _, run_dir = run_compare(qa_experiment, tmp_path / "run")
    registry = default_registry()
    assert registry.stale() == {}
    (qa_experiment.parent / "docs" / "handbook.md").write_text(HANDBOOK_UPDATED, encoding="utf-8")
    rag = next(v for v in registry.versions("handbook") if v.strategy == "rag")
    extract = next(
        v for v in registry.versions("handbook") if v.strategy == "extract"
    )  # the qa reference reads the documents too
    assert registry.stale() == {
        rag.ref: ["handbook.md"],
        extract.ref: ["handbook.md"],
    }  # zero_shot and abstain read no documents: never stale
    from typer.testing import CliRunner

    from adaptlab.cli import app

    checked = CliRunner().invoke(app, ["registry", "check"])
    assert (
        checked.exit_code == 0
        and f"{rag.ref} is stale" in checked.output
        and f"--refresh {run_dir.name}" in checked.output
    ), checked.output
    with ExitStack() as stack:
        url = stack.enter_context(serving(create_app(ServedModels(tiny_base, registry), "tiny", None, Limits())))
        listed = {m["id"]: m for m in httpx.get(f"{url}/v1/models", timeout=30).json()["data"]}
    assert listed[rag.ref]["stale"] is True and listed[rag.ref]["changed"] == ["handbook.md"]
    assert "stale" not in listed["tiny"]
    assert (
        recorded_experiment(run_dir) == recorded_experiment(run_dir.name) == run_dir / "experiment.yaml"
    )  # a folder, or the id registry check names
    with pytest.raises(ConfigError, match="no compare run"):
        recorded_experiment(tmp_path / "nowhere")
    results, _ = run_compare(recorded_experiment(run_dir), tmp_path / "refreshed")
    refreshed = next(s for s in results["strategies"] if s["name"] == "rag")
    fresh = next(v for v in default_registry().versions("handbook") if v.ref == refreshed["solver"]["registered_as"])
    assert fresh.ref != rag.ref and fresh.ref not in default_registry().stale()
    first = results["strategies"][
        1
        # after abstain, the first to index the documents (extract) reads the changed file again; the others reuse its
        # passages
    ]
    assert (
        first["name"] == "extract"
        and first["solver"]["train"]["documents_rebuilt"] == ["handbook.md"]
        and refreshed["solver"]["retrieval"]["documents_rebuilt"] == []
    )


def test_a_raft_version_is_served_as_one_version_with_its_adapter_and_sources(qa_experiment, tmp_path, tiny_base):
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare
    from adaptlab.serve import Limits, ServedModels, create_app

    text = qa_experiment.read_text(encoding="utf-8")
    qa_experiment.write_text(
        text[: text.index("  - name: zero_shot")]
        + "  - {id: raft, name: rag, k: 1, retriever: bm25, fine_tune: {name: lora, epochs: 1, "
        "batch_size: 2, bf16: false, dev_fraction: 0}}\n",
        encoding="utf-8",
    )
    results, run_dir = run_compare(qa_experiment, tmp_path / "run")
    saved = run_dir / "solvers" / "raft"
    assert {"chunks.json", "adapter_model.safetensors", "adapter_config.json", "solver.json"} <= {
        p.name for p in saved.iterdir()
    }
    version = next(v for v in default_registry().versions("handbook") if v.contender == "raft")
    assert version.lineage["documents"]["files"].keys() == {"faq.txt", "handbook.md"}
    models = ServedModels(tiny_base, default_registry())
    with ExitStack() as stack:
        url = stack.enter_context(serving(create_app(models, "tiny", None, Limits())))
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={
                "model": version.ref,
                "messages": [{"role": "user", "content": "How often are badges renewed?"}],
                "max_tokens": 8,
            },
            timeout=60,
        )
    assert reply.status_code == 200, reply.text
    assert [s["source"] for s in reply.json()["sources"]] == ["faq.txt"]
    from adaptlab.kinds import kind
    from adaptlab.kinds.context import LocalModels

    loaded = kind("rag").load(saved, LocalModels(device="cpu"))
    assert loaded.inner.adapter is not None and loaded.k == 1  # the adapter is on: RAFT, not plain rag
    expected = [
        row["predicted"] for row in next(s for s in results["strategies"] if s["name"] == "raft")["predictions"]
    ]
    assert [p.output for p in loaded.predict([q["input"] for q in QUESTIONS_TEST])] == expected


def test_task_costs_rank_a_qa_compare_by_the_value_of_its_answers(qa_experiment, tmp_path):
    from adaptlab.cli.compare import results_table
    from adaptlab.results import CompareResults
    from adaptlab.runs.compare import run_compare

    text = qa_experiment.read_text(encoding="utf-8").replace(
        "If they do not say, answer I don't know.\"}",
        "If they do not say, answer I don't know.\", costs: {hallucination: 4, wrong_abstention: 0.5}}",
    )
    text = text[: text.index("  - {name: rag")]  # zero_shot and the references are enough
    qa_experiment.write_text(text, encoding="utf-8")
    results, run_dir = run_compare(qa_experiment, tmp_path / "run")
    assert results["task"]["metric"] == "utility" and results["task"]["costs"] == {
        "right_answer": 1.0,
        "hallucination": 4.0,
        "wrong_abstention": 0.5,
    }
    by_name = {s["name"]: s for s in results["strategies"]}
    rows = by_name["abstain"]["predictions"]
    answerable = sum(r["expected"] != "I don't know" for r in rows)
    assert by_name["abstain"]["metrics"]["utility"] == pytest.approx(
        -0.5 * answerable / len(rows)
    )  # abstaining costs only the wrong abstentions
    for s in by_name.values():
        lo, hi = s["ci"]["utility"]
        assert lo <= s["metrics"]["utility"] <= hi and "qa_score" in s["metrics"]  # qa_score stays beside it
    header = [c.header for c in results_table(CompareResults.model_validate(results)).columns]
    assert header[1] == "utility" and "qa score" in header
    assert "utility" in (run_dir / "report.html").read_text(encoding="utf-8")
