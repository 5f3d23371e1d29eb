"""Every strategy through the one Solver contract on the tiny model: fit, predict, save."""

import json
from types import SimpleNamespace

import pytest
from conftest import CARD_ROWS

from adaptlab.data import Dataset, Example
from adaptlab.icl.selectors import SimilarSelector
from adaptlab.kinds import strategy
from adaptlab.kinds.embed_classifier import EmbedClassifierSolver
from adaptlab.kinds.lora import LoraConfig
from adaptlab.kinds.majority import majority_label
from adaptlab.task import make_task

TRAIN = Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(CARD_ROWS)], source="train.jsonl")
TEST = Dataset(
    [Example("my card never came", "card_arrival", 1), Example("the ATM kept it", "card_swallowed", 2)],
    source="test.jsonl",
)
TASK = make_task("cards", "Route the message.", TRAIN, TEST)
FAST_LORA = LoraConfig(name="lora", epochs=3, batch_size=4, learning_rate=0.02, bf16=False)


def strategies(base, embedder):
    return {
        "majority": strategy({"name": "majority"}),
        "embed_classifier": strategy({"name": "embed_classifier"}, embedder=embedder),
        "zero_shot": strategy({"name": "zero_shot"}, base),
        "few_shot_random": strategy({"name": "few_shot", "k": 3, "selector": "random"}, base, seed=1),
        "few_shot_similar": strategy({"name": "few_shot", "k": 3, "selector": "similar"}, base, embedder=embedder),
        "lora": strategy(FAST_LORA, base, seed=0),
    }


@pytest.mark.parametrize(
    "which", ["majority", "embed_classifier", "zero_shot", "few_shot_random", "few_shot_similar", "lora"]
)
def test_solver_contract(tiny_base, hash_embedder, tmp_path, which):
    solver = strategies(tiny_base, hash_embedder)[which].fit(TASK, TRAIN)
    predictions = solver.predict(TEST.inputs)
    assert len(predictions) == 2
    for p in predictions:
        assert p.output in TASK.labels and (p.seconds > 0 or which in ("majority", "embed_classifier"))
        assert (p.prompt_tokens > 0) == (which not in ("majority", "embed_classifier"))
    assert [p.shots for p in predictions] == [3 if which.startswith("few_shot") else 0] * 2
    solver.save(tmp_path / which)
    info = json.loads((tmp_path / which / "solver.json").read_text())
    assert info["strategy"] == solver.strategy and info["task"]["labels"] == list(TASK.labels)


def test_few_shot_prompts_are_longer_than_zero_shot(tiny_base):
    zero = strategy({"name": "zero_shot"}, tiny_base).fit(TASK, TRAIN).prompts(TEST.inputs)[0]
    few = (
        strategy({"name": "few_shot", "k": 3, "selector": "random"}, tiny_base).fit(TASK, TRAIN).prompts(TEST.inputs)[0]
    )
    assert all(len(f) > len(z) for f, z in zip(few, zero))


def test_similar_selector_picks_nearest(hash_embedder):
    pool = [
        Example("the ATM swallowed my card", "card_swallowed"),
        Example("I lost my card", "lost_or_stolen_card"),
        Example("where is my new card", "card_arrival"),
    ]
    (chosen,) = SimilarSelector(pool, 1, hash_embedder).select(["ATM swallowed the card"])
    assert chosen[0].output == "card_swallowed"


def test_shots_are_dropped_not_cut_when_the_prompt_is_too_long(tiny_base):
    tiny_base.context_length = 120  # room for the system turn, the query and about one shot
    solver = strategy({"name": "few_shot", "k": 6, "selector": "random"}, tiny_base).fit(TASK, TRAIN)
    prompts, counts = solver.prompts(TEST.inputs)
    assert all(0 < c < 6 for c in counts) and all(len(p) <= 120 for p in prompts)


def test_lora_learns_and_leaves_the_base_model_alone(tiny_base, tmp_path):
    zero = strategy({"name": "zero_shot"}, tiny_base).fit(TASK, TRAIN)
    before = zero.prompts(TEST.inputs)[0]
    from adaptlab.engine.scoring import label_logprobs

    base_scores = label_logprobs(tiny_base.model, before, zero._label_ids, "cpu")[0]
    lora = strategy(FAST_LORA, tiny_base, seed=0).fit(TASK, TRAIN)
    losses = lora.details["training"]["epoch_losses"]
    assert losses[-1] < losses[0]  # it learned the training set
    # Zero-shot still runs on the untouched base weights (the adapter is switched off for it).
    import torch

    zero_after = [p.output for p in zero.predict(TEST.inputs)]
    with torch.inference_mode():
        assert zero_after == [TASK.labels[i] for i in base_scores.argmax(axis=1)]
    lora.save(tmp_path / "lora")
    assert {"adapter_config.json", "adapter_model.safetensors", "solver.json"} <= {
        p.name for p in (tmp_path / "lora").iterdir()
    }


def test_saved_adapter_loads_in_peft_and_predicts_the_same(tiny_base, tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from adaptlab.engine.scoring import label_logprobs

    solver = strategy(FAST_LORA, tiny_base, seed=0).fit(TASK, TRAIN)
    solver.save(tmp_path / "lora")
    prompts = solver.prompts(TEST.inputs)[0]
    ours = [p.output for p in solver.predict(TEST.inputs)]
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "lora").eval()
    scores = label_logprobs(reloaded, prompts, solver._label_ids, "cpu")[0]
    assert [TASK.labels[i] for i in scores.argmax(axis=1)] == ours


def test_lora_training_is_deterministic_for_a_seed(tiny_model_dir):
    from adaptlab.models import load_base_model

    runs = [
        strategy(FAST_LORA, load_base_model(str(tiny_model_dir), "cpu"), seed=3)
        .fit(TASK, TRAIN)
        .details["training"]["epoch_losses"]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_generate_task_predicts_text(tiny_base):
    train = Dataset([Example(f"say {w}", f"{w} {w}", n + 1) for n, w in enumerate(["card", "lost", "atm", "new"])])
    task = make_task("echo", "Repeat the word twice.", train, train, kind="generate", max_new_tokens=5)
    solver = strategy({"name": "zero_shot"}, tiny_base).fit(task, train)
    predictions = solver.predict(train.inputs)
    assert len(predictions) == 4 and all(
        isinstance(p.output, str) and 1 <= p.completion_tokens <= 5 for p in predictions
    )


def test_majority_tie_goes_to_the_label_that_sorts_first():
    assert majority_label(["b", "a", "b", "a", "c"]) == "a"
    assert majority_label(["b", "b", "a"]) == "b"


def test_embed_classifier_saves_as_json_and_reloads_to_the_same_answers(hash_embedder, tmp_path):
    solver = strategy({"name": "embed_classifier"}, embedder=hash_embedder).fit(TASK, TRAIN)
    assert [p.output for p in solver.predict(TRAIN.inputs)] == TRAIN.outputs  # separable training set
    solver.save(tmp_path / "ec")
    assert [p.name for p in (tmp_path / "ec").iterdir()] == ["solver.json"]
    loaded = EmbedClassifierSolver.load(tmp_path / "ec", SimpleNamespace(embedder=hash_embedder))
    queries = TEST.inputs + ["some other text"]
    assert [p.output for p in loaded.predict(queries)] == [p.output for p in solver.predict(queries)]


def test_embed_classifier_handles_two_classes(hash_embedder):
    train = Dataset(
        [
            Example(i, o, n)
            for n, (i, o) in enumerate(
                [("good film", "pos"), ("great film", "pos"), ("bad film", "neg"), ("awful film", "neg")]
            )
        ]
    )
    task = make_task("s", "Sentiment.", train, train)
    assert [
        p.output
        for p in strategy({"name": "embed_classifier"}, embedder=hash_embedder).fit(task, train).predict(train.inputs)
    ] == train.outputs


def test_a_training_example_longer_than_the_context_is_an_error_with_its_line(tiny_base):
    from adaptlab.errors import DataError
    from adaptlab.finetune.fit import training_rows

    tiny_base.context_length = max(len(r.input_ids) for r in training_rows(tiny_base, TASK, TRAIN))
    long = Dataset(TRAIN.examples[:2] + [Example("card " * 80, "card_arrival", 3)], source="train.jsonl")
    with pytest.raises(DataError) as info:
        training_rows(tiny_base, TASK, long)
    assert [(p.code, p.line) for p in info.value.problems] == [("too_long", 3)]


def test_model_source_loads_each_named_local_model_once(tiny_base, tiny_model_dir, tmp_path):
    import shutil

    from adaptlab.kinds.context import ModelSource

    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    models = ModelSource(tiny_base)
    assert models.get(None) is tiny_base and models.get(tiny_base.name) is tiny_base
    loaded = models.get(str(other))
    assert loaded is not tiny_base and models.get(str(other)) is loaded and loaded.name == str(other)
