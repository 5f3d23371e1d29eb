"""A chat request's whole conversation reaches every task version (prompted, fine-tuned, classify), within its context:
the oldest turns left out first, and the client told how many (usage.history_turns_dropped, x-history-turns-dropped).

Apps here run on the tiny model through Starlette's TestClient; a spy on LMSolver.prompts records what each version's
solver was handed and the prompt ids it built."""

from __future__ import annotations

import json

import pytest
from conftest import CARD_ROWS

CHAT = "/v1/chat/completions"
ZED = "My name is Zed and I collect old brass keys."
NAME_TURNS = [("user", ZED), ("assistant", "Nice to meet you. How can I help?"), ("user", "What is my name?")]
CHAT_ROWS = [
    ("hello", "hi there"),
    ("where is my new card", "it is on its way"),
    ("I lost my card", "I will block it"),
    ("thanks", "you are welcome"),
]


class NoRegistry:
    def versions(self):
        return []


def _messages(turns) -> list[dict]:
    return [{"role": role, "content": text} for role, text in turns]


def _ask(model: str, turns, **extra) -> dict:
    return {"model": model, "messages": _messages(turns)} | extra


@pytest.fixture
def built(monkeypatch):
    """Every LMSolver.prompts call from now on, as (solver, query, prompt ids) per query."""
    from adaptlab.engine.lm_solver import LMSolver

    seen: list[tuple] = []
    original = LMSolver.prompts

    def spying(self, inputs):
        prompts, counts = original(self, inputs)
        seen.extend((self, query, ids) for query, ids in zip(inputs, prompts))
        return prompts, counts

    monkeypatch.setattr(LMSolver, "prompts", spying)
    return seen


def _register(registry, tmp_path, base, task, rows, spec) -> str:
    from adaptlab import kinds
    from adaptlab.data import Dataset, Example

    train = Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(rows)])
    folder = tmp_path / f"{task.name}-{spec['name']}"
    kinds.strategy(spec, base, seed=0).fit(task, train).save(folder)
    return registry.add_version(task.name, spec["name"], folder, {}).ref


@pytest.fixture
def served(tmp_path, tiny_base):
    """Versions of a generate task (zero_shot, few_shot, lora) and a classify task (zero_shot), registered, and a
    TestClient on an app serving them; yields (client, refs, base)."""
    from starlette.testclient import TestClient

    from adaptlab.registry import default_registry
    from adaptlab.serve import Limits, ServedModels, create_app
    from adaptlab.task import Task

    registry = default_registry()
    chat = Task("chat", "Answer the user.", "generate", max_new_tokens=8)
    cards = Task("cards", "Route the message.", "classify", tuple(sorted({o for _, o in CARD_ROWS})))
    refs = {
        "zero_shot": _register(registry, tmp_path, tiny_base, chat, CHAT_ROWS, {"name": "zero_shot"}),
        "few_shot": _register(
            registry, tmp_path, tiny_base, chat, CHAT_ROWS, {"name": "few_shot", "k": 1, "selector": "random"}
        ),
        "lora": _register(
            registry,
            tmp_path,
            tiny_base,
            chat,
            CHAT_ROWS,
            {"name": "lora", "epochs": 1, "batch_size": 4, "bf16": False, "dev_fraction": 0, "patience": None},
        ),
        "classify": _register(registry, tmp_path, tiny_base, cards, CARD_ROWS, {"name": "zero_shot"}),
    }
    app = create_app(ServedModels(tiny_base, registry), "tiny", None, Limits())
    with TestClient(app, base_url="http://localhost") as client:
        yield client, refs, tiny_base


def _only(built, start: int) -> tuple:
    """The one (solver, query, ids) recorded since `start`."""
    calls = built[start:]
    assert len(calls) == 1, [str(q)[:40] for _, q, _ in calls]
    return calls[0]


def _chat_prompt(client, built, model: str, turns, **extra) -> tuple:
    """(the reply, the query the solver was handed, the prompt ids it built) for one chat request."""
    start = len(built)
    reply = client.post(CHAT, json=_ask(model, turns, **extra))
    assert reply.status_code == 200, reply.text
    _, query, ids = _only(built, start)
    return reply, query, ids


@pytest.mark.parametrize("version", ["zero_shot", "few_shot", "lora", "classify"])
def test_every_version_answers_from_the_first_turn_of_the_conversation(served, built, version):
    """A three-turn history whose answer depends on the first turn: the solver gets the History itself (not the last
    user message), its prompt holds the first turn, and changing only the first turn changes the prompt ids."""
    from adaptlab.data.conversation import History

    client, refs, base = served
    reply, query, ids = _chat_prompt(client, built, refs[version], NAME_TURNS)
    assert isinstance(query, History) and [t.content for t in query.spoken] == [text for _, text in NAME_TURNS]
    prompt = base.tokenizer.decode(ids)
    assert ZED in prompt and "Nice to meet you" in prompt and prompt.rstrip().endswith("assistant")
    if version == "classify":  # a labelled version reads the conversation as one text, in one user turn
        assert f"User: {ZED}\nAssistant:" in prompt
    else:  # the turns go through the chat template as turns
        assert f"<|im_start|>user\n{ZED}<|im_end|>" in prompt and "<|im_start|>assistant\nNice to meet you" in prompt
    _, _, other = _chat_prompt(
        client, built, refs[version], [("user", "My name is Amy and I collect old brass keys.")] + NAME_TURNS[1:]
    )
    assert other != ids
    _, alone, single = _chat_prompt(client, built, refs[version], NAME_TURNS[2:])
    assert not isinstance(alone, History) and ZED not in base.tokenizer.decode(single)
    usage = reply.json()["usage"]
    assert (
        usage["prompt_tokens"] == len(ids)
        and "history_turns_dropped" not in usage
        and "x-history-turns-dropped" not in reply.headers
    )


def test_a_version_is_handed_a_conversation_as_a_file_of_its_task_holds_it(served, built, tmp_path):
    """The query a solver gets is the input evaluation gave it for the same conversation (data/load.py): a labelled one
    whole (its last assistant turn too, every turn in its text); a turn to answer: the History before it, its text
    the recent turns. Whatever does not send a prompt (embed_classifier, setfit, the lookups) reads that text."""
    from adaptlab.data import load_dataset

    client, refs, _ = served
    turns = [("system", "Be brief.")] + [(("user", "assistant")[i % 2], f"turn {i}: card") for i in range(9)]
    turns += [("assistant", "Glad to help.")]  # 10 spoken turns, more than a History's text shows of recent turns
    for version, line in (("classify", {"label": "card_arrival"}), ("zero_shot", {})):
        path = tmp_path / f"{version}.jsonl"
        path.write_text(json.dumps({"messages": _messages(turns)} | line) + "\n", encoding="utf-8")
        measured = load_dataset(path).examples[-1].input  # labelled: the conversation; else: its last turn's history
        asked = turns if line else turns[:-1]
        _, query, _ = _chat_prompt(client, built, refs[version], asked)
        assert (str(query), query.turns, query.recent) == (str(measured), measured.turns, measured.recent), version
    _, query, _ = _chat_prompt(client, built, refs["classify"], turns)
    assert str(query).startswith("User: turn 0: card") and str(query).endswith("Assistant: Glad to help.")


def test_a_streamed_conversation_builds_the_same_prompt_as_a_plain_one(served, built):
    client, refs, base = served
    _, _, plain = _chat_prompt(client, built, refs["zero_shot"], NAME_TURNS)
    start = len(built)
    streamed = client.post(
        CHAT, json=_ask(refs["zero_shot"], NAME_TURNS, stream=True, stream_options={"include_usage": True})
    )
    assert streamed.status_code == 200
    _, query, ids = _only(built, start)
    assert ids == plain and ZED in base.tokenizer.decode(ids)
    last = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")][-1]
    assert last["usage"]["prompt_tokens"] == len(ids) and "history_turns_dropped" not in last["usage"]


def _long_history(exchanges: int) -> list[tuple[str, str]]:
    """A conversation of `exchanges` long exchanges (any six of its turns overflow the tiny model's context) whose last
    question is about its first turn; each turn starts with a marker of its own ("question 03:")."""
    filler = (
        "Zebras quietly navigate mountainous valleys; kettles whistle beside purple umbrellas while "
        "seventeen jugglers argue. " * 2
    )
    turns = [("user", ZED), ("assistant", "Noted. " + filler)]
    for i in range(1, exchanges):
        turns += [("user", f"question {i:02d}: {filler}"), ("assistant", f"answer {i:02d}: {filler}")]
    return turns + [("user", "What is my name?")]


@pytest.mark.parametrize(
    ("version", "stream"), [("zero_shot", False), ("zero_shot", True), ("lora", False), ("classify", False)]
)
def test_a_history_too_long_for_the_context_is_answered_from_its_latest_turns_and_says_how_many_it_dropped(
    served, built, version, stream
):
    client, refs, base = served
    turns = _long_history(12)
    start = len(built)
    extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    reply = client.post(CHAT, json=_ask(refs[version], turns, **extra))
    assert reply.status_code == 200, reply.text
    solver, query, ids = _only(built, start)
    assert len(query.spoken) == len(turns)  # the whole history was handed to the solver
    if stream:
        usage = [json.loads(line[6:]) for line in reply.text.splitlines() if line.startswith("data: {")][-1]["usage"]
    else:
        usage = reply.json()["usage"]
    dropped = usage["history_turns_dropped"]
    assert 0 < dropped < len(turns) and reply.headers["x-history-turns-dropped"] == str(dropped)
    assert len(ids) + solver._answer_room() <= base.context_length and usage["prompt_tokens"] == len(ids)
    # the count is what the prompt left out: the first kept turn is in it, the last dropped one is not
    prompt = base.tokenizer.decode(ids)
    first_kept, last_dropped = turns[dropped][1], turns[dropped - 1][1]
    assert ZED not in prompt and "What is my name?" in prompt
    assert first_kept.split(":")[0] in prompt and last_dropped.split(":")[0] not in prompt
    assert (
        ids == solver.prompts([query.dropping(dropped)])[0][0]
    )  # the prompt is the one of the history less those turns


def test_a_single_user_message_is_answered_as_before(served, built):
    """One question (with or without a system message) is handed over as its text: no History, nothing dropped."""
    from adaptlab.data.conversation import History
    from adaptlab.serve.requests import model_input

    client, refs, base = served
    for turns in ([("user", "where is my new card")], [("system", "be brief"), ("user", "where is my new card")]):
        reply, query, ids = _chat_prompt(client, built, refs["zero_shot"], turns)
        assert type(query) is str and query == "where is my new card"
        assert ids == built[-1][0].prompts(["where is my new card"])[0][0]
        assert "history_turns_dropped" not in reply.json()["usage"] and "x-history-turns-dropped" not in reply.headers
    assert model_input(base, _messages(turns), False, 8) == "where is my new card"
    assert isinstance(model_input(base, _messages(NAME_TURNS), False, 8), History)
    completion = client.post("/v1/completions", json={"model": refs["zero_shot"], "prompt": "hello"})
    assert completion.status_code == 200 and "history_turns_dropped" not in completion.json()["usage"]


def test_a_conversation_must_end_on_a_user_turn_with_text():
    from adaptlab.serve.guard import ApiError
    from adaptlab.serve.requests import task_input

    with pytest.raises(ApiError) as refused:
        task_input(_messages(NAME_TURNS[:2] + [("user", "  ")]))
    assert (refused.value.status, refused.value.code) == (400, "empty_prompt")


def test_the_conversation_counts_the_turns_its_solver_drops():
    from adaptlab.data.conversation import History, Turn
    from adaptlab.serve.requests import Conversation
    from adaptlab.serve.worker import turns_dropped

    whole = Conversation((Turn("system", "be kind"),) + tuple(Turn(r, t) for r, t in _long_history(3)))
    assert turns_dropped(whole) == 0 and turns_dropped("plain text") == 0 and turns_dropped(History(whole.turns)) == 0
    shorter = whole.dropping(2).dropping(2)
    assert turns_dropped(whole) == 4 == len(whole.spoken) - len(shorter.spoken) and shorter.system == "be kind"
    assert (
        shorter == History(whole.turns).dropping(2).dropping(2)
        and shorter.turns == History(whole.turns).dropping(4).turns
    )
