"""The audit finds planted defects in a clean slice of Banking77 and leaves clean rows alone."""

import json
from pathlib import Path

import pytest
from conftest import HashEmbedder

from adaptlab.audit import audit
from adaptlab.data import Dataset, Example, load_dataset

EXAMPLE = Path(__file__).parents[1] / "examples" / "banking-cards"
OFF_TOPIC = [
    "What's the weather going to be like in Paris tomorrow?",
    "Give me a recipe for chocolate cake",
    "Who won the football world cup in 1998?",
    "Translate good morning into Japanese",
    "How many legs does a spider have?",
]


PARAPHRASES = {
    "What do I do if my card has been lost or stolen?": "What should I do if my card was lost or stolen?",
    "I am having trouble activating my card.": "I'm having trouble activating my card",
    "What do I do to activate my new card?": "What do I have to do to activate my new card?",
    "I would like to track the card you sent to me.": "I would like to track the card that you sent me.",
}
LEAK_PARAPHRASES = {
    "I need help activating my new card.": "I need some help activating my new card.",
    "I ordered my card 2 weeks ago and it still isn't here? What do I do?": (
        "I ordered my card two weeks ago and it still is not here, what do I do?"
    ),
}


@pytest.fixture(scope="module")
def planted():
    """The demo's training slice with known defects; returns (train, test, {line: criterion})."""
    clean = load_dataset(EXAMPLE / "train.jsonl").examples
    test = load_dataset(EXAMPLE / "test.jsonl")
    starved_label = "card_swallowed"
    kept = [e for e in clean if e.output != starved_label] + [e for e in clean if e.output == starved_label][:3]
    rows = [(e.input, e.output, "starved" if e.output == starved_label else None) for e in kept]
    base = [r for r in rows if r[2] is None]
    rows += [(i, o, "duplicate") for i, o, _ in base[:5]]
    rows += [(f"{i.upper().rstrip('?.!')}  ?!", o, "near_duplicate") for i, o, _ in base[5:10]]
    other = sorted({o for _, o, _ in base})
    rows += [(i, next(x for x in other if x != o), "conflict") for i, o, _ in base[10:15]]
    rows += [(text, other[n % len(other)], "off_topic") for n, text in enumerate(OFF_TOPIC)]
    rows += [(e.input, e.output, "leak") for e in test.examples[:5]]
    # paraphrases that no normalisation makes equal: only the embeddings can find them (cosine 0.98-0.997 measured)
    rows += [(PARAPHRASES[i], o, "near_duplicate") for i, o, _ in base if i in PARAPHRASES]
    rows += [(LEAK_PARAPHRASES[e.input], e.output, "leak") for e in test.examples if e.input in LEAK_PARAPHRASES]
    train = Dataset([Example(i, o, n + 1) for n, (i, o, _) in enumerate(rows)], source="train.jsonl")
    truth = {n + 1: kind for n, (_, _, kind) in enumerate(rows) if kind}
    partners = {
        base_row + 1 for base_row in range(10, 15)
    }  # the originals a conflict copies: flagged with it, by design
    return train, test, truth, partners


def test_planted_defects_are_found_and_clean_rows_left_alone(planted):
    train, test, truth, partners = planted
    report = audit(train, test, instruction="Route the bank customer's card message to the right team.")
    flagged = {name: {f.line for f in c.flagged if f.file == "train"} for name, c in report.criteria.items()}
    where = {
        "duplicate": "diverse",
        "near_duplicate": "diverse",
        "conflict": "consistent",
        "off_topic": "relevant",
        "starved": "balanced",
    }
    found = [
        line
        for line, kind in truth.items()
        if (line in flagged[where[kind]] if kind != "leak" else _leaked(report, train, line))
    ]
    recall = len(found) / len(truth)
    clean = [e.line for e in train if e.line not in truth and e.line not in partners]
    false = [line for line in clean if any(line in lines for lines in flagged.values())]
    assert recall >= 0.9, {
        kind: [line for line, k in truth.items() if k == kind and line not in found] for kind in where
    }
    assert len(false) / len(clean) < 0.1, false
    assert (
        report.criteria["balanced"].stats["label_counts"]["card_swallowed"]
        == sum(e.output == "card_swallowed" for e in train.examples)
        < 6
    )
    assert {"score", "flagged", "hint"} <= set(report.to_dict()["criteria"]["diverse"])


def _leaked(report, train, line):
    text = train.examples[line - 1].input
    return any(train.examples[p["train_line"] - 1].input == text or p["train_line"] == line for p in report.leakage)


def test_paraphrased_duplicates_and_leaks_are_found_by_the_embeddings(planted):
    """Every planted paraphrase (no normalisation makes it equal to its original) is flagged: the embedding path."""
    train, test, truth, _ = planted
    report = audit(train, test, instruction="Route the bank customer's card message to the right team.")
    paraphrased = [e.line for e in train if e.input in PARAPHRASES.values()]
    leaked = [e.line for e in train if e.input in LEAK_PARAPHRASES.values()]
    assert len(paraphrased) == len(PARAPHRASES) and len(leaked) == len(LEAK_PARAPHRASES)
    assert set(paraphrased) <= {f.line for f in report.criteria["diverse"].flagged if f.file == "train"}
    assert all(_leaked(report, train, line) for line in leaked), report.leakage


def test_without_a_test_set_representative_is_not_scored(planted):
    train, _, _, _ = planted
    report = audit(Dataset(train.examples[:40], source="train.jsonl"))
    assert report.criteria["representative"].score is None and report.leakage == []


def test_generate_outputs_balanced_by_length_and_json_consistency(hash_embedder):
    rows = [Example(f"order {n}", json.dumps({"item": n}), n + 1) for n in range(30)] + [
        Example("order x", "{broken", 31)
    ]
    report = audit(Dataset(rows), kind="generate", embedder=hash_embedder)
    assert [f.line for f in report.criteria["consistent"].flagged] == [31]
    assert "output_length_cv" in report.criteria["balanced"].stats


@pytest.fixture
def no_weights(monkeypatch, hash_embedder):
    """Loading any model's weights raises; the embedder is the hash stand-in, so only the tokenizer is real."""
    import transformers

    import adaptlab.models.base

    def refuse(*args, **kwargs):
        raise AssertionError("the audit loaded a model's weights")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(adaptlab.models.base, "load_base_model", refuse)
    monkeypatch.setattr("adaptlab.models.embedder.default_embedder", lambda: hash_embedder)


@pytest.mark.parametrize("model, context", [("tiny", 512), ("smollm2-135m-instruct", 8192)])
def test_audit_command_counts_tokens_without_loading_weights(no_weights, tiny_model_dir, tmp_path, model, context):
    from typer.testing import CliRunner

    from adaptlab.cli import app

    result = CliRunner().invoke(
        app,
        ["audit", str(EXAMPLE / "train.jsonl"), "--json", "--model", str(tiny_model_dir) if model == "tiny" else model],
    )
    assert result.exit_code == 0, result.output
    tokens = json.loads(result.stdout)["tokens"]
    assert tokens["context_length"] == context and tokens["input_max"] > tokens["input_mean"] > 1
    assert not (tmp_path / "home" / "models").exists()  # the embedded GGUF was not converted either


def test_tokenizer_of_a_converted_gguf_is_its_copy():
    from adaptlab.models.base import load_tokenizer
    from adaptlab.models.embedded import embedded_gguf, gguf_cache_folder

    from_gguf, context = load_tokenizer("smollm2-135m-instruct")
    text = "my card never came <|im_end|> Ünïcødé"
    folder = gguf_cache_folder(embedded_gguf())
    from_gguf.save_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 1234}))
    (folder / "model.safetensors").write_bytes(b"")  # marks the conversion done; its weights are never read here
    from_copy, copy_context = load_tokenizer("smollm2-135m-instruct")
    assert (context, copy_context) == (8192, 1234)
    assert from_copy(text).input_ids == from_gguf(text).input_ids and from_copy.chat_template == from_gguf.chat_template


def test_a_generate_tasks_new_answers_are_not_missing_labels():
    train = Dataset(
        [
            Example(f"book a table for {n} people on friday", f"INSERT INTO bookings VALUES ({n}, 'friday');", n)
            for n in range(1, 21)
        ],
        source="train.jsonl",
    )
    test = Dataset(
        [
            Example(f"book a table for {n} people on friday", f"INSERT INTO bookings VALUES ({n}, 'friday');", n - 20)
            for n in range(21, 26)
        ],
        source="test.jsonl",
    )
    found = audit(train, test, kind="generate", embedder=HashEmbedder()).criteria["representative"]
    assert found.score == 100.0 and not any("label" in f.reason for f in found.flagged)
