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


# --- conversations --------------------------------------------------------------------------------------------------

OPENERS = {  # what a conversation is about is said in its first turns only; the turns after them are alike
    "balance": [
        "What's my checking balance?",
        "How much money is in my savings account?",
        "Tell me the balance of my account.",
        "How much do I have in checking?",
        "Show my account balance please.",
        "What is left in my savings?",
        "Balance of my checking account?",
        "How much money do I have?",
    ],
    "transfer": [
        "Send 100 dollars to Amir.",
        "Transfer money to my landlord.",
        "Pay 50 dollars to Maria now.",
        "Move 200 dollars to my brother.",
        "Wire money to Sam please.",
        "Send rent to my landlord.",
        "Transfer 30 dollars to Ana.",
        "Pay my friend Lee 20 dollars.",
    ],
}
TAIL = ["Sure, one moment.", "Is the branch open today?", "Yes, until five.", "Can I order a card?", "Yes, in the app."]
TAIL += ["Thanks.", "Anything else?", "No, that's all.", "Have a nice day."]  # 10 turns in all: more than 6


def _conversations(root: Path, model: Path, task_kind: str) -> dict:
    """A compare of every kind the table has for `task_kind` (those that need no documents) on conversations of 10
    turns whose first turn decides the answer: labelled conversations (classify), or their assistant turns answered
    (generate)."""
    from adaptlab import kinds

    settings = {  # only what keeps the tiny run quick; any other kind runs with its defaults
        "few_shot": {"k": 2, "selector": "similar"},
        "lora": {"epochs": 1, "batch_size": 4, "bf16": False, "dev_fraction": 0},
        "full": {"epochs": 1, "batch_size": 4, "bf16": False, "dev_fraction": 0},
        "setfit": {"pairs": 4, "batch_size": 8},
    }
    for split, picks in (("train", slice(0, 6)), ("test", slice(6, 8))):
        lines = []
        for label, openers in OPENERS.items():
            for opener in openers[picks]:
                texts = [opener, *TAIL]
                messages = [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(texts)]
                if task_kind == "generate":  # the second answer (turn 3) follows the first turn too
                    messages[3]["content"] = f"Yes, until five. About the {label}: done."
                lines.append({"messages": messages} | ({"label": label} if task_kind == "classify" else {}))
        (root / f"{split}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    strategies = [
        {"name": k.name, **settings.get(k.name, {})}
        for k in kinds.kinds()
        if k.answers(task_kind) and not k.reads_documents  # these conversations come with no documents
    ]
    return {
        "task": {"name": "bank", "kind": task_kind, "instruction": "What does the customer want?", "max_new_tokens": 6},
        "data": {"train": str(root / "train.jsonl"), "test": str(root / "test.jsonl")},
        "model": str(model),
        "baselines": False,
        "strategies": strategies,
    }


@pytest.mark.parametrize("task_kind", ["classify", "generate"])
def test_every_kind_answers_a_served_conversation_as_the_run_measured_it(
    task_kind, tmp_path, tiny_model_dir, tiny_base
):
    """Each test conversation is sent as the chat messages it holds (a labelled one whole, ending on its last assistant
    turn; a turn to answer: the turns before it): every version's answer is the one the run recorded for that row."""
    from adaptlab import kinds
    from adaptlab.registry import default_registry
    from adaptlab.runs.compare import run_compare
    from adaptlab.serve import Limits, ServedModels, create_app

    results, _ = run_compare(_conversations(tmp_path, tiny_model_dir, task_kind), tmp_path / "run")
    assert results["task"]["kind"] == task_kind
    assert {s["name"] for s in results["strategies"]} == {
        k.name for k in kinds.kinds() if k.answers(task_kind) and not k.reads_documents
    }
    lines = (tmp_path / "test.jsonl").read_text(encoding="utf-8").splitlines()
    conversations = {f"line {n}": json.loads(line)["messages"] for n, line in enumerate(lines, 1)}
    if task_kind == "classify":  # the labels are told apart by the first turn alone: a window of the latest turns
        told = [s for s in results["strategies"] if not s["traits"]["llm"] and not s["traits"]["constant"]]
        assert told and all(len({r["predicted"] for r in s["predictions"]}) > 1 for s in told)  # would read one text
    otherwise = []  # (kind, conversation, turn, served answer, measured answer), and each prompt count that differs
    with serving(create_app(ServedModels(tiny_base, default_registry()), "tiny", None, Limits())) as url:
        for s in results["strategies"]:
            ref = s["solver"]["registered_as"]
            prompt_tokens = []
            asked = [(r, conversations[r["conversation"]][: r.get("turn")]) for r in s["predictions"]]
            asked = [(row, messages) for row, messages in asked if len(messages) > 6]  # classify: every conversation
            assert len(asked) == (len(s["predictions"]) if task_kind == "classify" else 8)  # generate: turns 7 and 9
            for row, messages in asked:
                reply = httpx.post(f"{url}/v1/chat/completions", json={"model": ref, "messages": messages}, timeout=120)
                assert reply.status_code == 200, f"{ref}: {reply.text}"
                body = reply.json()
                if body["choices"][0]["message"]["content"] != row["predicted"]:
                    said = body["choices"][0]["message"]["content"]
                    otherwise.append((s["name"], row["conversation"], row.get("turn"), said, row["predicted"]))
                prompt_tokens.append(body["usage"]["prompt_tokens"])
            if not s["traits"]["llm"]:
                assert prompt_tokens == [0] * len(prompt_tokens), s["name"]  # a lookup sends no prompt
            elif task_kind == "classify" and sum(prompt_tokens) / len(prompt_tokens) != pytest.approx(
                s["prompt_tokens_mean"]
            ):
                otherwise.append(
                    (s["name"], "prompt tokens", None, sum(prompt_tokens) / len(prompt_tokens), s["prompt_tokens_mean"])
                )
    assert not otherwise, (
        f"served otherwise than the run measured (kind, conversation, turn, served, measured): {otherwise}"
    )
