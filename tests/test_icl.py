"""In-context learning: selectors, the prompt budget, choice rules, stop strings and precision."""

import re

import pytest
from conftest import CARD_ROWS

from adaptlab.data import Dataset, Example
from adaptlab.errors import AdaptlabError, ConfigError
from adaptlab.icl.selectors import BalancedSelector, DiverseSelector, FixedSelector, SimilarSelector
from adaptlab.kinds import strategy
from adaptlab.runs.experiment import parse_experiment
from adaptlab.task import make_task

TRAIN = Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(CARD_ROWS)], source="train.jsonl")
TASK = make_task("cards", "Route the message.", TRAIN, TRAIN)
POOL = [
    Example("the ATM swallowed my card", "card_swallowed", 1),
    Example("the ATM swallowed my card!", "card_swallowed", 2),  # a near duplicate of line 1
    Example("cash machine kept my card", "card_swallowed", 3),
    Example("I lost my card", "lost_or_stolen_card", 4),
    Example("where is my new card", "card_arrival", 5),
]


def test_diverse_skips_near_duplicates_that_similar_takes(hash_embedder):
    query = ["ATM swallowed my card"]
    similar = [e.line for e in SimilarSelector(POOL, 2, hash_embedder).select(query)[0]]
    diverse = [e.line for e in DiverseSelector(POOL, 2, hash_embedder).select(query)[0]]
    assert set(similar) == {1, 2}
    assert diverse[0] in (1, 2) and diverse[1] not in (1, 2)


def test_balanced_takes_labels_in_turn_best_match_first(hash_embedder):
    (chosen,) = BalancedSelector(POOL, 4, hash_embedder).select(["ATM swallowed my card"])
    assert chosen[0].output == "card_swallowed"
    assert {e.output for e in chosen[:3]} == {"card_swallowed", "lost_or_stolen_card", "card_arrival"}
    assert chosen[3].output == "card_swallowed"  # the second round


def test_fixed_uses_the_lines_given_in_order():
    (chosen,) = FixedSelector(POOL, [4, 1]).select(["anything"])
    assert [e.line for e in chosen] == [4, 1]
    with pytest.raises(ConfigError, match="line 9 of train holds no example"):
        FixedSelector(POOL, [9])


BASE = {"task": {"name": "t", "instruction": "x"}, "data": {"train": "a", "test": "b"}}


def test_fixed_needs_lines_and_lines_need_fixed():
    assert parse_experiment(
        {**BASE, "strategies": [{"name": "few_shot", "selector": "fixed", "lines": [3, 1]}]}
    ).strategies[0].lines == [3, 1]
    for bad in ({"name": "few_shot", "selector": "fixed"}, {"name": "few_shot", "lines": [1]}):
        with pytest.raises(ConfigError, match="'lines' is required with selector 'fixed'"):
            parse_experiment({**BASE, "strategies": [bad]})


@pytest.mark.parametrize("selector", ["random", "similar", "diverse", "balanced"])
def test_every_selector_runs_through_few_shot(tiny_base, hash_embedder, selector):
    predictions = (
        strategy({"name": "few_shot", "k": 3, "selector": selector}, tiny_base, embedder=hash_embedder)
        .fit(TASK, TRAIN)
        .predict(["my card never came"])
    )
    assert predictions[0].shots == 3 and predictions[0].output in TASK.labels


def test_exact_k_fails_where_shots_would_be_dropped(tiny_base):
    tiny_base.context_length = 120
    with pytest.raises(AdaptlabError, match="6 shots do not fit"):
        strategy({"name": "few_shot", "k": 6, "selector": "random", "exact_k": True}, tiny_base).fit(
            TASK, TRAIN
        ).prompts(["my card never came"])


def test_both_choice_rules_are_reported(tiny_base):
    from adaptlab.evaluation import evaluate

    test = Dataset(TRAIN.examples[:4], source="test.jsonl")
    evaluation, solver = evaluate(strategy({"name": "zero_shot"}, tiny_base), TASK, TRAIN, test)
    assert {"accuracy", "macro_f1", "accuracy_length_normalised", "macro_f1_length_normalised"} <= set(
        evaluation.metrics
    )
    assert solver.describe()["choice_rule"].startswith("summed")


def test_stop_strings_end_the_answer(tiny_base, chatty_model):
    from adaptlab.engine.generate import generate
    from adaptlab.engine.prompt import encode_messages

    tok = tiny_base.tokenizer
    prompt = encode_messages(tok, [{"role": "user", "content": "my card never came"}])
    (full,) = generate(chatty_model, tok, [prompt], tiny_base.eot_id, "cpu", max_new_tokens=40)
    assert len(full.text) > 12, "the tiny model's answer is too short to cut"
    stop = full.text[8:11]
    (cut,) = generate(chatty_model, tok, [prompt], tiny_base.eot_id, "cpu", max_new_tokens=40, stop=(stop, "\x00never"))
    assert cut.text == full.text[: full.text.find(stop)].strip()
    assert cut.tokens < full.tokens and not cut.cut  # decoding stopped at the stop string, not at the limit


def test_generated_answers_stay_fp32_even_where_bf16_is_fast(tiny_base, monkeypatch):
    import adaptlab.engine.lm_solver as lm
    from adaptlab.task import Task

    monkeypatch.setattr(lm, "bf16_is_fast", lambda device: True)
    solver = lm.LMSolver("zero_shot", tiny_base, Task("echo", "Repeat the message.", "generate", max_new_tokens=5))
    solver.predict(TRAIN.inputs[:2])
    assert solver.precision == "fp32" and "bf16 changed" in solver.describe()["precision_note"]


def test_bf16_is_used_only_after_it_agrees_with_fp32(tiny_base, monkeypatch):
    import adaptlab.engine.lm_solver as lm

    monkeypatch.setattr(lm, "bf16_is_fast", lambda device: True)
    monkeypatch.setattr(lm, "BF16_CHECK_QUERIES", 2)
    solver = strategy({"name": "zero_shot"}, tiny_base).fit(TASK, TRAIN)
    predictions = solver.predict(TRAIN.inputs[:5])
    agreed = int(re.search(r"for (\d+) of the first 2 queries", solver.precision_note).group(1))
    assert len(predictions) == 5 and solver.precision == ("bf16" if agreed == 2 else "fp32")
    monkeypatch.setattr(lm, "bf16_is_fast", lambda device: False)
    other = strategy({"name": "zero_shot"}, tiny_base).fit(TASK, TRAIN)
    other.predict(TRAIN.inputs[:1])
    assert other.precision == "fp32" and "slower" in other.precision_note


def test_the_bf16_check_spans_calls_so_one_query_at_a_time_is_not_trusted_at_once(tiny_base, monkeypatch):
    """A server's requests come one by one: bf16 is decided only after BF16_CHECK_QUERIES queries, fp32 answers until
    then."""
    import adaptlab.engine.lm_solver as lm

    monkeypatch.setattr(lm, "bf16_is_fast", lambda device: True)
    monkeypatch.setattr(lm, "BF16_CHECK_QUERIES", 3)
    solver = strategy({"name": "zero_shot"}, tiny_base).fit(TASK, TRAIN)
    reference = strategy({"name": "zero_shot"}, tiny_base).fit(TASK, TRAIN)
    reference.precision = "fp32"
    for i, query in enumerate(TRAIN.inputs[:2]):
        assert solver.predict([query])[0].output == reference.predict([query])[0].output
        assert solver.precision in (None, "fp32") and f"of the first {i + 1} queries" in solver.precision_note
    solver.predict(TRAIN.inputs[2:5])
    agreed = int(re.search(r"for (\d+) of the first 3 queries", solver.precision_note).group(1))
    assert solver.precision == ("bf16" if agreed == 3 else "fp32")
