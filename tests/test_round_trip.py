"""What compare registers, the server serves as it was measured: every kind, each task kind, both document forms.

Each case runs a compare on the tiny model, then serves every registered version and asks it
every test row through /v1/chat/completions: the answer must be the one the run recorded, and
usage must count the prompt the version sends (0 only for the references without an LLM).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from conftest import CARD_ROWS, FAQ, HANDBOOK, QUESTIONS_TEST, QUESTIONS_TRAIN, serving, write_jsonl

DOCS = {"handbook.md": HANDBOOK, "faq.txt": FAQ}


def _classify(root: Path, model: Path) -> Path:
    write_jsonl(root / "train.jsonl", CARD_ROWS)
    write_jsonl(
        root / "test.jsonl",
        [
            ("my card never came", "card_arrival"),
            ("the ATM kept it", "card_swallowed"),
            ("lost card", "lost_or_stolen_card"),
        ],
    )
    strategies = (
        "  - name: zero_shot\n  - {name: few_shot, k: 2, selector: similar}\n  - {name: lora, epochs: 1, "
        "batch_size: 4, bf16: false, dev_fraction: 0}\n  - {name: full, epochs: 1, batch_size: 4, bf16: "
        "false, dev_fraction: 0}\n"
    )
    return _experiment(
        root, "cards", "Route the message.", "data: {train: train.jsonl, test: test.jsonl}", model, strategies
    )


def _generate(root: Path, model: Path) -> Path:
    write_jsonl(
        root / "train.jsonl",
        [("say card", "card card"), ("say atm", "atm atm"), ("say lost", "lost lost"), ("say bank", "bank bank")],
    )
    write_jsonl(root / "test.jsonl", [("say cards", "cards cards"), ("say atms", "atms atms")])
    return _experiment(
        root,
        "echo",
        "Repeat the word twice.",
        "data: {train: train.jsonl, test: test.jsonl}",
        model,
        "  - name: zero_shot\n  - {name: few_shot, k: 2, selector: similar}\n",
    )


def _qa(root: Path, model: Path, form: str) -> Path:
    if form == "folder":
        (root / "docs").mkdir()
        for name, text in DOCS.items():
            (root / "docs" / name).write_text(text, encoding="utf-8")
        docs = "docs"
    else:
        (root / "docs.jsonl").write_text(
            "".join(json.dumps({"id": name, "text": text}) + "\n" for name, text in DOCS.items()), encoding="utf-8"
        )
        docs = "docs.jsonl"
    for name, rows in (("train.jsonl", QUESTIONS_TRAIN), ("test.jsonl", QUESTIONS_TEST)):
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    strategies = (
        "  - name: zero_shot\n  - {name: rag, k: 2, retriever: hybrid}\n  - {id: rag_bm25, name: rag, k: "
        "1, retriever: bm25}\n"
    )
    data = f"data: {{docs: {docs}, train: train.jsonl, test: test.jsonl, chunk_tokens: 24, chunk_overlap: 4}}"
    return _experiment(
        root, "handbook", "Answer from the documents. If they do not say, answer I don't know.", data, model, strategies
    )


def _experiment(root: Path, name: str, instruction: str, data: str, model: Path, strategies: str) -> Path:
    (root / "experiment.yaml").write_text(
        f'task: {{name: {name}, instruction: "{instruction}"}}\n{data}\nmodel: {model}\nstrategies:\n{strategies}',
        encoding="utf-8",
    )
    return root / "experiment.yaml"


CASES = {
    "classify": (_classify, {"majority", "embed_classifier", "zero_shot", "few_shot", "lora", "full"}),
    "generate": (_generate, {"constant", "nearest", "zero_shot", "few_shot"}),
    "qa-folder": (
        lambda root, model: _qa(root, model, "folder"),
        {"abstain", "extract", "zero_shot", "rag", "rag_bm25"},
    ),
    "qa-jsonl": (lambda root, model: _qa(root, model, "jsonl"), {"abstain", "extract", "zero_shot", "rag", "rag_bm25"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_registered_version_answers_as_the_run_measured_it(case, tmp_path, tiny_model_dir, tiny_base):
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare
    from adaptlab.serve import Limits, ServedModels, create_app

    make, contenders = CASES[case]
    results, _ = run_compare(make(tmp_path, tiny_model_dir), tmp_path / "run")
    assert {s["name"] for s in results["strategies"]} == contenders
    with ExitStack() as stack:
        url = stack.enter_context(
            serving(create_app(ServedModels(tiny_base, default_registry()), "tiny", None, Limits()))
        )
        for s in results["strategies"]:
            ref = s["solver"]["registered_as"]
            prompt_tokens = []
            for row in s["predictions"]:
                reply = httpx.post(
                    f"{url}/v1/chat/completions",
                    json={"model": ref, "messages": [{"role": "user", "content": row["input"]}]},
                    timeout=120,
                )
                assert reply.status_code == 200, f"{ref}: {reply.text}"
                body = reply.json()
                assert body["choices"][0]["message"]["content"] == row["predicted"], (
                    f"{s['name']} ({ref}) answered {row['input']!r} otherwise than the run measured"
                )
                prompt_tokens.append(body["usage"]["prompt_tokens"])
            if s["traits"]["llm"]:
                assert min(prompt_tokens) > 0 and sum(prompt_tokens) / len(prompt_tokens) == pytest.approx(
                    s["prompt_tokens_mean"]
                ), s["name"]
            else:
                assert prompt_tokens == [0] * len(prompt_tokens), s["name"]  # a lookup sends no prompt
