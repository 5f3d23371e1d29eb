"""Conversations as data: every shape and error, the split by conversation, history-aware prompts, and one
training row per conversation whose loss is the per-turn loss."""

from __future__ import annotations

import json

import pytest
import torch

from adaptlab.data import Dataset, load_dataset, split_dev
from adaptlab.data.conversation import History, Turn, history_of
from adaptlab.data.split import whole_conversations
from adaptlab.engine.prompt import build_messages, encode_answer, encode_messages
from adaptlab.errors import DataError
from adaptlab.finetune.fit import fit_and_dev, training_rows
from adaptlab.finetune.loss import TrainRow, mean_loss
from adaptlab.kinds import strategy
from adaptlab.kinds.lora import LoraConfig
from adaptlab.task import make_task


def chat(*pairs, system=None, weights=None, **extra) -> dict:
    """A conversation line: user/assistant turns alternating from `pairs` (texts), with optional weights on the
    assistant turns."""
    messages = [{"role": "system", "content": system}] if system else []
    for i, text in enumerate(pairs):
        message = {"role": ("user", "assistant")[i % 2], "content": text}
        if weights and i % 2 and weights[i // 2] is not None:
            message["weight"] = weights[i // 2]
        messages.append(message)
    return {"messages": messages, **extra}


def write(tmp_path, rows, name="chats.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def problems(path):
    with pytest.raises(DataError) as info:
        load_dataset(path)
    return [(p.code, p.line, p.field) for p in info.value.problems]


BANK = [
    chat(
        "What's my balance?",
        "Checking or savings?",
        "Checking.",
        "You have $5,118.",
        "Thanks, bye.",
        "Have a nice day.",
        id="c1",
    ),
    chat("Send money to Amir.", "How much?", "$100.", "Please confirm: $100 to Amir.", "Yes.", "Done.", id="c2"),
    chat("Is my savings balance high?", "You have $9,000 in savings.", id="c3"),
]


def test_each_learned_assistant_turn_is_one_example_answered_from_the_history_before_it(tmp_path):
    ds = load_dataset(write(tmp_path, BANK))
    assert ds.conversations and len(ds) == 7
    first = [e for e in ds if e.conversation == "c1"]
    assert [(e.turn, e.output) for e in first] == [
        (1, "Checking or savings?"),
        (3, "You have $5,118."),
        (5, "Have a nice day."),
    ]
    third = first[2].input
    assert isinstance(third, History) and [t.content for t in third.spoken] == [
        "What's my balance?",
        "Checking or savings?",
        "Checking.",
        "You have $5,118.",
        "Thanks, bye.",
    ]
    assert str(third).endswith("Assistant: You have $5,118.\nUser: Thanks, bye.")


def test_weight_zero_turns_are_context_not_examples_and_ids_default_to_the_line(tmp_path):
    rows = [chat("hi", "Hello!", "balance?", "$5.", weights=[0, 1])]
    (only,) = load_dataset(write(tmp_path, rows)).examples
    assert (only.output, only.conversation, only.turn) == ("$5.", "line 1", 3)
    assert only.input.spoken[1] == Turn("assistant", "Hello!", 0)


def test_sharegpt_lines_read_as_the_same_conversations(tmp_path):
    mapping = {"user": "human", "assistant": "gpt", "system": "system"}
    share = [
        {"id": r["id"], "conversations": [{"from": mapping[m["role"]], "value": m["content"]} for m in r["messages"]]}
        for r in BANK
    ]
    a, b = load_dataset(write(tmp_path, BANK)), load_dataset(write(tmp_path, share, "share.jsonl"))
    assert [(str(e.input), e.output, e.conversation, e.turn) for e in a] == [
        (str(e.input), e.output, e.conversation, e.turn) for e in b
    ]
    assert a.content_hash == b.content_hash


def test_single_exchanges_stay_plain_examples_with_the_system_message_as_instruction(tmp_path):
    ds = load_dataset(
        write(tmp_path, [chat("card lost", "lost_card", system="Route it."), chat("pin?", "pin", system="Route it.")])
    )
    assert not ds.conversations and ds.instruction == "Route it."
    assert [(e.input, e.output) for e in ds] == [("card lost", "lost_card"), ("pin?", "pin")]
    assert type(ds.examples[0].input) is str


def test_a_labelled_conversation_is_one_example_of_the_whole_conversation(tmp_path):
    ds = load_dataset(write(tmp_path, [dict(BANK[0], label="balance"), dict(BANK[1], label="transfer")]))
    assert [(e.output, e.conversation) for e in ds] == [("balance", "c1"), ("transfer", "c2")]
    assert str(ds.examples[0].input).startswith("User: What's my balance?")  # every turn, not only the recent ones
    assert len(ds.examples[0].input.turns) == 6


@pytest.mark.parametrize(
    "messages, expected",
    [
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
                {"role": "user", "content": "and?"},
            ],
            ("ends_on_user", 1, "messages[2]"),
        ),
        (
            [
                {"role": "system", "content": "a"},
                {"role": "system", "content": "b"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
            ],
            ("misplaced_system", 1, "messages[1]"),
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "b"},
                {"role": "assistant", "content": "yo"},
            ],
            ("misplaced_system", 1, "messages[1]"),
        ),
        (
            [{"role": "user", "content": "hi"}, {"role": "agent", "content": "yo"}],
            ("unknown_role", 1, "messages[1].role"),
        ),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
                {"role": "user", "content": "  "},
                {"role": "assistant", "content": "ok"},
            ],
            ("empty_field", 1, "messages[2].content"),
        ),
        (
            [{"role": "user", "content": "hi", "weight": 0}, {"role": "assistant", "content": "yo"}],
            ("wrong_type", 1, "messages[0].weight"),
        ),
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "weight": 2}],
            ("wrong_type", 1, "messages[1].weight"),
        ),
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "weight": 0}],
            ("no_assistant", 1, "messages"),
        ),
    ],
)
def test_conversation_errors_name_the_line_and_the_turn(tmp_path, messages, expected):
    assert problems(write(tmp_path, [{"messages": messages}])) == [expected]


def test_sharegpt_errors_name_its_own_fields(tmp_path):
    line = {"conversations": [{"from": "human", "value": "hi"}, {"from": "robot", "value": "yo"}]}
    assert problems(write(tmp_path, [line])) == [("unknown_role", 1, "conversations[1].from")]


def test_the_dev_split_holds_out_whole_conversations(tmp_path):
    rows = [
        chat(*[f"q{c}-{t}" if i % 2 == 0 else f"a{c}-{t}" for t in range(3) for i in range(2)], id=f"c{c}")
        for c in range(20)
    ]
    ds = load_dataset(write(tmp_path, rows))
    train, dev = split_dev(ds, 0.25, seed=0, stratify=False)
    held = {e.conversation for e in dev}
    assert len(held) == 5 and not held & {e.conversation for e in train}
    assert len(train) + len(dev) == len(ds) == 60
    whole = whole_conversations(train)
    assert len(whole) == 15 and all(
        e.turn == 5 for e in whole
    )  # each conversation's last answer, holding every turn before it


def test_a_history_is_prompted_as_its_turns_after_the_instruction_and_its_own_system_message(tmp_path):
    (_, last) = load_dataset(
        write(tmp_path, [chat("Name's Zed.", "Hi Zed.", "My name?", "Zed.", system="You are a bank.")])
    ).examples
    task = make_task("chat", "Answer the customer.", Dataset([last]), Dataset([last]), kind="generate")
    messages = build_messages(task, [], last.input)
    assert messages == [
        {"role": "system", "content": "Answer the customer.\n\nYou are a bank."},
        {"role": "user", "content": "Name's Zed."},
        {"role": "assistant", "content": "Hi Zed."},
        {"role": "user", "content": "My name?"},
    ]
    shot = build_messages(task, [last], "plain question")  # a shot is its turns, then its answer
    assert [m["content"] for m in shot[1:]] == ["Name's Zed.", "Hi Zed.", "My name?", "Zed.", "plain question"]
    labelled = make_task("route", "Route it.", Dataset([last]), Dataset([last]), kind="classify")
    assert build_messages(labelled, [], last.input)[-1] == {"role": "user", "content": str(last.input)}


def test_history_of_a_chat_request():
    assert history_of([{"role": "user", "content": "hi"}]) is None
    assert history_of([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]) is None
    h = history_of(
        [
            {"role": "user", "content": "I'm Zed"},
            {"role": "assistant", "content": "Hi"},
            {"role": "user", "content": "name?"},
        ]
    )
    assert [t.content for t in h.spoken] == ["I'm Zed", "Hi", "name?"]


def test_a_conversation_trains_as_one_row_whose_loss_is_the_per_turn_loss(tiny_base, tmp_path):
    """One pass over the conversation, loss on learned assistant turns only, equals the per-turn rows' token-weighted
    loss."""
    rows = [
        chat(
            "hi there",
            "hello, how can I help",
            "balance please",
            "you have five",
            "thanks",
            "bye now",
            weights=[1, 0, 1],
            id="c1",
        )
    ]
    ds = load_dataset(write(tmp_path, rows))
    assert [e.turn for e in ds] == [1, 5]  # the weight-0 answer is no example
    task = make_task("chat", "Answer the customer.", ds, ds, kind="generate", max_new_tokens=16)
    (whole,) = training_rows(tiny_base, task, whole_conversations(ds))
    assert whole.learn is not None and 0 < whole.learned < len(
        whole.answer
    )  # the user turns and the weight-0 answer between are not learned
    tokens = tiny_base.tokenizer
    learned_text = tokens.decode([a for a, keep in zip(whole.answer, whole.learn) if keep])
    assert "hello, how can I help" in learned_text and "bye now" in learned_text and "you have five" not in learned_text
    per_turn = [
        TrainRow(
            encode_messages(tokens, build_messages(task, [], e.input)),
            encode_answer(tokens, e.output, tiny_base.eot_id),
        )
        for e in ds
    ]
    torch.manual_seed(0)
    model = tiny_base.model.eval()
    pad = tokens.pad_token_id
    assert mean_loss(model, [whole], pad, "cpu") == pytest.approx(mean_loss(model, per_turn, pad, "cpu"), abs=1e-5)


def test_fine_tuning_on_conversations_trains_one_row_per_conversation(tmp_path, tiny_base):
    rows = [chat(f"q{c}", f"a{c}", f"more {c}", f"answer {c}", id=f"c{c}") for c in range(16)]
    ds = load_dataset(write(tmp_path, rows))
    task = make_task("chat", "Answer.", ds, ds, kind="generate", max_new_tokens=8)
    config = LoraConfig(name="lora", epochs=1, batch_size=4, dev_fraction=0.25, bf16=False, patience=None)
    train, dev = fit_and_dev(task, ds, None, config, seed=0)
    assert (
        len(train) == 12 and {e.conversation for e in train}.isdisjoint({e.conversation for e in dev}) and len(dev) == 8
    )
    steps = []
    fit = strategy(config, tiny_base, seed=0)
    fit.on_step = steps.append
    solver = fit.fit(task, ds)
    assert steps[-1].total_steps == 3  # 12 conversations in batches of 4, not 24 turns
    (answer,) = solver.predict([ds.examples[1].input])
    assert (
        answer.prompt_tokens > solver.predict([ds.examples[0].input])[0].prompt_tokens
    )  # the later turn's prompt holds the earlier turns


def test_rag_puts_its_passages_in_the_last_user_turn_and_keeps_the_turns_before():
    from adaptlab.icl.rag import with_passages
    from adaptlab.knowledge.documents import Chunk

    history = History(
        (Turn("user", "I'm on the Basic plan."), Turn("assistant", "Noted."), Turn("user", "My deductible?"))
    )
    asked = with_passages(history, [(Chunk("hb.pdf", 3, 0, 0, 9, "Basic: $1,500."), 1.0)])
    assert isinstance(asked, History) and [t.content for t in asked.spoken[:2]] == ["I'm on the Basic plan.", "Noted."]
    assert asked.spoken[2].content == "[hb.pdf#page=3]\nBasic: $1,500.\n\nQuestion: My deductible?"
    labelled = make_task("route", "Route it.", Dataset([]), Dataset([]), kind="classify")
    long = History(tuple(Turn(("user", "assistant")[i % 2], f"turn {i}") for i in range(9)))
    assert (
        "turn 0" in build_messages(labelled, [], long)[-1]["content"]
    )  # a conversation is classified whole, not its recent turns


def test_labelled_conversations_make_a_classify_task_answered_from_the_whole_conversation(tmp_path, tiny_base):
    from adaptlab.icl.strategies import FewShot, ZeroShot

    rows = [
        dict(
            chat(f"hello {i}", "Hi, how can I help?", "What's my balance?" if i % 2 else "Send $5 to Amir.", "Done."),
            label=("balance", "transfer")[i % 2 == 0],
        )
        for i in range(8)
    ]
    ds = load_dataset(write(tmp_path, rows))
    task = make_task("intent", "Which service did the customer use?", ds, ds)
    assert task.kind == "classify" and task.labels == ("balance", "transfer")
    solver = ZeroShot(tiny_base, "zero_shot").fit(task, ds)
    (prompt,), _ = solver.prompts([ds.examples[1].input])
    assert "What's my balance?" in tiny_base.tokenizer.decode(prompt) and "hello 1" in tiny_base.tokenizer.decode(
        prompt
    )
    assert {p.output for p in solver.predict(ds.inputs)} <= {"balance", "transfer"}
    shots = FewShot(tiny_base, "few_shot", k=2, selector="random").fit(task, ds)
    (prompt,), (count,) = shots.prompts([ds.examples[0].input])
    assert (
        count == 2 and tiny_base.tokenizer.decode(prompt).count("Hi, how can I help?") == 3
    )  # two shots, each its whole conversation, then the query


def test_a_template_that_rewrites_earlier_turns_is_an_error_not_a_turn_left_unlearned(tiny_base, tmp_path, monkeypatch):
    from adaptlab.errors import AdaptlabError

    monkeypatch.setattr(
        tiny_base.tokenizer,
        "chat_template",
        (  # earlier answers are shown as "[answered]" once a later turn follows
            "{% for message in messages %}{% if message['role'] == 'assistant' and not loop.last %}"
            "{{ '<|im_start|>assistant\\n[answered]<|im_end|>\\n' }}{% else %}"
            "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% "
            "endif %}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        ),
    )
    ds = load_dataset(
        write(tmp_path, [chat("hi there", "hello, how can I help", "balance please", "you have five", id="c1")])
    )
    task = make_task("chat", "Answer the customer.", ds, ds, kind="generate", max_new_tokens=16)
    with pytest.raises(AdaptlabError, match="renders an earlier assistant turn"):
        training_rows(tiny_base, task, whole_conversations(ds))
