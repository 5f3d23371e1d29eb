"""Conversations are split, checked for leakage and audited whole: no turn of a test conversation is in train, and the
turns of one conversation (which share their history) are never taken for duplicates of each other."""

import json

import pytest
from conftest import HashEmbedder

from adaptlab.audit import audit
from adaptlab.audit.criteria import close_pairs
from adaptlab.data import check_leakage, load_dataset
from adaptlab.data.leakage import conversation_leaks
from adaptlab.errors import DataError
from adaptlab.runs.init import init_experiment

SUBJECTS = [
    "checking account",
    "savings jar",
    "mortgage payment",
    "credit card bill",
    "wire to Berlin",
    "pension fund",
    "car loan",
    "student debt",
    "gold coins",
    "crypto wallet",
    "rent deposit",
    "tax refund",
    "phone plan",
    "gym membership",
    "water invoice",
    "flight refund",
    "hotel booking",
    "parking fine",
    "library fee",
    "vet bill",
    "piano lessons",
    "garden tools",
    "bike repair",
    "wedding gift",
]


def conversation(n: int, answers: int = 3, with_id: bool = True) -> dict:
    """A conversation of `answers` exchanges about its own subject (distinct words, so conversations differ)."""
    subject = SUBJECTS[n % len(SUBJECTS)]
    messages = []
    for k in range(answers):
        messages.append(
            {
                "role": "user",
                "content": f"Question {k} about my {subject} number {n * 7 + k}: what happens next with the {subject}?",
            }
        )
        messages.append(
            {
                "role": "assistant",
                "content": f"Step {k} for the {subject} ({n}-{k}) is "
                f"{['review', 'approval', 'payout', 'closing'][k % 4]} of the {subject.split()[-1]}.",
            }
        )
    return ({"id": f"conv-{n}"} if with_id else {}) | {"messages": messages}


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def by_content(data) -> dict:
    """Each conversation's turns and answers, keyed by its text (ids of id-less lines are their line numbers, which
    change)."""
    found = {}
    for e in data:
        found.setdefault(str(type(e.input)(e.input.turns, recent=None)).split("\n")[0], []).append(
            (tuple(e.input.turns), e.output, e.turn)
        )
    return found


def test_init_holds_out_whole_conversations_and_writes_their_lines(tmp_path):
    rows = [conversation(n, answers=2 + n % 3, with_id=n % 4 != 0) for n in range(20)]
    rows.append(
        conversation(5, answers=2 + 5 % 3) | {"id": "conv-5-copy"}
    )  # the same turns as conv-5 under another id: kept on its side
    data = write(tmp_path / "chats.jsonl", rows)
    made = init_experiment(data, out=tmp_path / "exp", gpu=False)
    assert made.kind == "generate" and "conversations, held out whole" in made.split
    assert any("share a turn" in w for w in made.warnings)
    train, test = load_dataset(made.folder / "train.jsonl"), load_dataset(made.folder / "test.jsonl")
    assert (
        train.conversations
        and test.conversations
        and (len(train), len(test)) == (made.train, made.test)
        and len(test) >= 8
    )
    original = load_dataset(data)
    assert len(train) + len(test) == len(original)
    # every line written is one of the data file's lines, as it was, each once
    source = data.read_text(encoding="utf-8").splitlines()
    written = (made.folder / "train.jsonl").read_text(encoding="utf-8").splitlines() + (
        made.folder / "test.jsonl"
    ).read_text(encoding="utf-8").splitlines()
    assert sorted(written) == sorted(source)

    # no conversation has turns on both sides: by id where the line has one, by content for every line
    def named(d):
        return {e.conversation for e in d if not e.conversation.startswith("line ")}

    assert not named(train) & named(test) and named(train) | named(test) == {r["id"] for r in rows if "id" in r}
    assert not set(by_content(train)) & set(by_content(test))
    assert {**by_content(train), **by_content(test)} == by_content(
        original
    )  # they load back as the same conversations, turn for turn
    assert ("conv-5" in named(test)) == ("conv-5-copy" in named(test))
    assert check_leakage(train, test) == []
    again = init_experiment(data, out=tmp_path / "again", gpu=False)  # seeded: the same conversations held out
    assert (again.folder / "test.jsonl").read_text() == (made.folder / "test.jsonl").read_text()
    other = init_experiment(data, out=tmp_path / "other", seed=3, gpu=False)
    assert (other.folder / "test.jsonl").read_text() != (made.folder / "test.jsonl").read_text()


def test_plain_data_is_still_split_by_row(tmp_path):
    rows = [{"input": f"question {i} about {SUBJECTS[i % len(SUBJECTS)]}", "output": f"answer {i}"} for i in range(30)]
    made = init_experiment(write(tmp_path / "plain.jsonl", rows), out=tmp_path / "exp", gpu=False)
    assert "distinct inputs" in made.split and (made.train, made.test) == (21, 9)
    lines = [json.loads(line) for line in (made.folder / "test.jsonl").read_text().splitlines()]
    assert set(lines[0]) == {"input", "output"}


def test_leakage_of_a_test_conversation_into_train(tmp_path):
    train_rows = [conversation(n) for n in range(8)]
    test_rows = [conversation(n) for n in range(8, 12)]
    train, test = (
        load_dataset(write(tmp_path / "train.jsonl", train_rows)),
        load_dataset(write(tmp_path / "test.jsonl", test_rows)),
    )
    assert check_leakage(train, test) == [] and conversation_leaks(train, test) == []
    assert audit(train, test, kind="generate", embedder=HashEmbedder()).leakage == []

    # test conversation conv-9 copied into train under another id
    leaky = load_dataset(write(tmp_path / "leaky.jsonl", train_rows + [conversation(9) | {"id": "copied"}]))
    with pytest.raises(DataError) as raised:
        check_leakage(leaky, test)
    (problem,) = raised.value.problems
    assert (
        problem.code == "leakage"
        and problem.line == 2
        and "conversation conv-9" in str(problem)
        and "copied" in str(problem)
        and "line 9" in str(problem)
    )
    (warning,) = check_leakage(leaky, test, allow=True)
    assert "line 2" in warning and "conv-9" in warning and "allowed" in warning
    (pair,) = audit(leaky, test, kind="generate", embedder=HashEmbedder()).leakage
    assert pair | {"turns": None} == {
        "test_line": 2,
        "train_line": 9,
        "kind": "exact",
        "test_conversation": "conv-9",
        "train_conversation": "copied",
        "turns": None,
    }
    assert pair["turns"] == [1, 3, 5]

    # one turn only: a training conversation that opens as conv-10 does, then goes elsewhere
    opening = conversation(10)["messages"][:2] + conversation(3)["messages"][2:]
    partial = load_dataset(write(tmp_path / "partial.jsonl", train_rows + [{"id": "opens-alike", "messages": opening}]))
    (leak,) = conversation_leaks(partial, test)
    assert (leak["test_conversation"], leak["train_conversation"], leak["how"], leak["turns"]) == (
        "conv-10",
        "opens-alike",
        "turn",
        [1],
    )

    # the same id with other turns is the same conversation on both sides
    same_id = load_dataset(write(tmp_path / "same-id.jsonl", train_rows + [conversation(20) | {"id": "conv-11"}]))
    with pytest.raises(DataError, match="conversation id 'conv-11' is also in"):
        check_leakage(same_id, test)
    assert [
        (p["test_conversation"], p["kind"])
        for p in audit(same_id, test, kind="generate", embedder=HashEmbedder()).leakage
    ] == [("conv-11", "id")]

    # lines without an id are named by their line number: line 1 of train and line 1 of test are different conversations
    def no_ids(rows):
        return [{"messages": r["messages"]} for r in rows]

    train, test = (
        load_dataset(write(tmp_path / "a.jsonl", no_ids(train_rows))),
        load_dataset(write(tmp_path / "b.jsonl", no_ids(test_rows))),
    )
    assert train.examples[0].conversation == test.examples[0].conversation == "line 1"
    assert check_leakage(train, test) == []


def test_audit_compares_whole_conversations_not_their_turns(tmp_path):
    rows = [conversation(n, answers=4) for n in range(12)]
    train = load_dataset(write(tmp_path / "train.jsonl", rows))
    embedder = HashEmbedder()
    # the turns of one conversation share their history: compared row by row, they are near duplicates of each other
    vectors = embedder.encode(train.inputs)
    pairs = close_pairs(vectors @ vectors.T, train.inputs)
    assert any(train.examples[i].conversation == train.examples[j].conversation for i, js in pairs.items() for j in js)

    report = audit(train, kind="generate", embedder=embedder)
    for name in ("diverse", "consistent", "relevant"):
        assert report.criteria[name].flagged == [], name
    diverse = report.criteria["diverse"]
    assert diverse.score == 100.0 and diverse.stats["unit"] == "conversation" and diverse.stats["conversations"] == 12
    assert (diverse.stats["turns_mean"], diverse.stats["turns_max"]) == (8.0, 8)

    # a duplicated conversation is flagged once, at its line; one that differs only in case and punctuation too
    again = conversation(4, answers=4) | {"id": "again"}
    shouting = conversation(7, answers=4) | {"id": "shouting"}
    shouting["messages"] = [m | {"content": m["content"].upper().replace("?", "!")} for m in shouting["messages"]]
    dup = load_dataset(write(tmp_path / "dup.jsonl", rows + [again, shouting]))
    flagged = audit(dup, kind="generate", embedder=embedder).criteria["diverse"].flagged
    assert [(f.line, f.reason.split(":")[0]) for f in flagged] == [
        (13, "conversation again"),
        (14, "conversation shouting"),
    ]
    assert "duplicate of line 5" in flagged[0].reason and "line 8" in flagged[1].reason

    # the same whole history answered two ways is inconsistent; it is named by its conversation
    other = {
        "id": "other-answer",
        "messages": conversation(2, answers=1)["messages"][:1]
        + [{"role": "assistant", "content": "Something else entirely."}],
    }
    report = audit(load_dataset(write(tmp_path / "mixed.jsonl", rows + [other])), kind="generate", embedder=embedder)
    assert sorted(f.line for f in report.criteria["consistent"].flagged) == [3, 13]
    assert any(f.reason.startswith("conversation other-answer:") for f in report.criteria["consistent"].flagged)


def test_labelled_conversations_duplicated_whole_are_flagged(tmp_path):
    rows = [conversation(n, answers=2) | {"label": ["billing", "loans", "travel"][n % 3]} for n in range(12)]
    rows.append(conversation(6, answers=2) | {"id": "copy", "label": "billing"})
    train = load_dataset(write(tmp_path / "labelled.jsonl", rows))
    assert train.conversations and len(train) == 13
    flagged = audit(train, kind="classify", embedder=HashEmbedder()).criteria["diverse"].flagged
    assert [f.line for f in flagged] == [13]


def test_token_figures_per_conversation(tmp_path):
    rows = [conversation(n, answers=1 + n % 4) for n in range(8)]
    rows[3]["messages"].insert(0, {"role": "system", "content": "You are the bank."})
    train = load_dataset(write(tmp_path / "train.jsonl", rows))

    def words(text):
        return len(text.split())

    tokens = audit(train, kind="generate", embedder=HashEmbedder(), count_tokens=words, context_length=60).tokens
    per = [sum(words(m["content"]) for m in r["messages"]) for r in rows]
    turns = [len([m for m in r["messages"] if m["role"] != "system"]) for r in rows]
    figures = tokens["conversations"]
    assert (
        figures["count"] == 8
        and figures["turns_max"] == max(turns) == 8
        and figures["turns_mean"] == round(sum(turns) / 8, 1)
    )
    assert (
        figures["tokens_max"] == max(per)
        and figures["tokens_total"] == sum(per)
        and figures["tokens_mean"] == round(sum(per) / 8, 1)
    )
    assert figures["answers_mean"] == round(sum(t // 2 for t in turns) / 8, 1)
    assert figures["longer_than_context"] == [n + 1 for n, p in enumerate(per) if p > 60] != []
    assert tokens["training_tokens_per_epoch_excluding_prompt_template"] == sum(
        per
    )  # each conversation trained once, whole
    # a turn's input counts its whole history (7 turns before the last answer here), not only the 6 recent turns its
    # text shows
    history = [[m for m in r["messages"] if m["role"] != "system"][:-1] for r in rows]
    assert max(len(h) for h in history) == 7 and tokens["input_max"] == max(
        sum(words(m["content"]) + 1 for m in h) for h in history
    )  # + 1: "User:"
