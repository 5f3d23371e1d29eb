"""setfit: a tiny sentence embedder tuned on label pairs, then a logistic head; saved without pickle, loaded to the same
answers."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from adaptlab.data import Dataset, Example
from adaptlab.errors import AdaptlabError, ConfigError, DataError
from adaptlab.kinds import strategy
from adaptlab.kinds.setfit import WEIGHTS, SetFitSolver, draw_pairs
from adaptlab.task import make_task

ROWS = [
    ("rain is falling all day", "weather"),
    ("the sky is grey and cloudy", "weather"),
    ("a storm with thunder tonight", "weather"),
    ("sunny and warm this morning", "weather"),
    ("snow covers the hills", "weather"),
    ("strong wind and cold rain", "weather"),
    ("fog over the valley at dawn", "weather"),
    ("hot sun and clear sky", "weather"),
    ("the striker scored a goal", "football"),
    ("the referee gave a penalty", "football"),
    ("the keeper saved the shot", "football"),
    ("our team won the match", "football"),
    ("a late goal won the cup", "football"),
    ("the coach picked the team", "football"),
    ("the match ended in a draw", "football"),
    ("fans cheered the striker", "football"),
    ("bake the bread in the oven", "cooking"),
    ("chop the onions and garlic", "cooking"),
    ("stir the soup with a spoon", "cooking"),
    ("fry the eggs in butter", "cooking"),
    ("boil the pasta in salted water", "cooking"),
    ("season the soup with pepper", "cooking"),
    ("roast the chicken in the oven", "cooking"),
    ("mix flour butter and eggs", "cooking"),
]
TESTS = [
    ("cold rain and wind today", "weather"),
    ("clear sky and warm sun", "weather"),
    ("the striker won the match", "football"),
    ("a penalty goal for the team", "football"),
    ("fry the onions in butter", "cooking"),
    ("bake the chicken in the oven", "cooking"),
]
TRAIN = Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(ROWS)], source="train.jsonl")
TEST = Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(TESTS)], source="test.jsonl")
TASK = make_task("topics", "Name the topic.", TRAIN, TEST)
FAST = {
    "name": "setfit",
    "pairs": 6,
    "epochs": 2,
    "batch_size": 12,
    "learning_rate": 2e-3,
}  # 24 rows x 6 = 144 pairs: 2 epochs of 12 steps, a hidden-32 model


def _tiny_bert(folder, hidden: int):
    """A 2-layer BERT with a WordPiece vocabulary of the test sentences, saved as a HF folder (sentence-transformers
    mean-pools it)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.train_from_iterator(
        [t for t, _ in ROWS + TESTS] * 3,
        trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]),
    )
    wordpiece.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=wordpiece,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=2 * hidden,
            max_position_embeddings=64,
        )
    ).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_embedder_dir(tmp_path_factory):
    return _tiny_bert(tmp_path_factory.mktemp("tiny-embedder"), hidden=32)


@pytest.fixture
def tiny_embedder(tiny_embedder_dir):
    from adaptlab.models.embedder import Embedder

    return Embedder(tiny_embedder_dir)


def _margin(embedder, rows) -> float:
    """Mean cosine of same-label pairs minus that of different-label pairs."""
    vectors = embedder.encode([t for t, _ in rows])
    labels = np.array([o for _, o in rows])
    cos = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(rows), dtype=bool)
    return float(cos[same & off].mean() - cos[~same].mean())


def test_setfit_tunes_fits_saves_and_loads_to_the_same_answers(tiny_embedder, tmp_path):
    before = tiny_embedder.encode(TRAIN.inputs)
    steps = []
    solver = strategy(FAST, embedder=tiny_embedder, seed=0, on_step=steps.append).fit(TASK, TRAIN)
    assert np.array_equal(
        tiny_embedder.encode(TRAIN.inputs), before
    )  # it tuned its own copy, not the embedder it was given
    assert _margin(solver.embedder, ROWS) > _margin(tiny_embedder, ROWS) + 0.1  # same-label sentences pulled together
    predicted = [p.output for p in solver.predict(TEST.inputs)]
    assert sum(p == e for p, e in zip(predicted, TEST.outputs)) >= 4, predicted  # chance is 2 of 6
    info = solver.describe()
    assert info["contrastive"] | {"train_loss": None, "seconds": None} == {
        "pairs_per_example": 6,
        "pairs": 144,
        "similar_pairs": 72,
        "epochs": 2,
        "steps": 24,
        "batch_size": 12,
        "learning_rate": 2e-3,
        "loss": "CosineSimilarityLoss",
        "train_loss": None,
        "seconds": None,
    }
    assert info["fit_seconds"] >= info["contrastive"]["seconds"] > 0 and info["contrastive"]["train_loss"] > 0
    assert [s.step for s in steps] == list(range(1, 25)) and steps[-1].total_steps == 24 and steps[-1].epoch == 2

    solver.save(tmp_path / "sf")
    assert sorted(p.name for p in (tmp_path / "sf").iterdir()) == [
        "setfit.safetensors",
        "solver.json",
    ]  # no pickle, one flat folder
    saved = json.loads((tmp_path / "sf" / "solver.json").read_text())
    assert (
        saved["strategy"] == "setfit"
        and saved["classes"] == ["cooking", "football", "weather"]
        and saved["contrastive"]["pairs"] == 144
    )
    loaded = SetFitSolver.load(tmp_path / "sf", SimpleNamespace(embedder=tiny_embedder))
    queries = TEST.inputs + ["something else entirely", "rain"]
    assert [p.output for p in loaded.predict(queries)] == [p.output for p in solver.predict(queries)]
    assert np.allclose(loaded.embedder.encode(queries), solver.embedder.encode(queries), atol=1e-6)
    assert loaded.describe()["contrastive"] == info["contrastive"]


def test_a_saved_setfit_is_served_from_the_registry(tiny_embedder, tiny_base, tmp_path):
    from adaptlab.registry import default_registry
    from adaptlab.serve import ServedModels

    solver = strategy(FAST | {"pairs": 2, "epochs": 1}, embedder=tiny_embedder).fit(TASK, TRAIN)
    solver.save(tmp_path / "sf")
    version = default_registry().add_version("topics", "setfit", tmp_path / "sf", {})
    served = ServedModels(tiny_base, default_registry(), embedder=tiny_embedder).solver(version.ref)
    assert [p.output for p in served.predict(TEST.inputs)] == [p.output for p in solver.predict(TEST.inputs)]


def test_tuned_weights_into_another_embedder_are_a_clear_error(tiny_embedder, tmp_path):
    from adaptlab.models.embedder import Embedder

    strategy(FAST | {"pairs": 2, "epochs": 1}, embedder=tiny_embedder).fit(TASK, TRAIN).save(tmp_path / "sf")
    other = Embedder(_tiny_bert(tmp_path / "other", hidden=16))
    with pytest.raises(AdaptlabError, match=f"{WEIGHTS}.*do not load into the embedder offered"):
        SetFitSolver.load(tmp_path / "sf", SimpleNamespace(embedder=other))


def test_pairs_are_drawn_per_row_half_similar_and_seeded():
    outputs = ["a"] * 4 + ["b"] * 3 + ["c"]
    drawn = draw_pairs(outputs, 6, seed=1)
    assert len(drawn) == 7 * 6 + 3  # "c" has no partner of its own: only its 3 different-label pairs
    for i, j, target in drawn:
        assert i != j and (outputs[i] == outputs[j]) == (target == 1.0)
    assert [sum(1 for i, _, t in drawn if i == row and t == 1.0) for row in range(8)] == [3] * 7 + [0]
    assert draw_pairs(outputs, 6, seed=1) == drawn and draw_pairs(outputs, 6, seed=2) != drawn


def test_one_label_is_a_data_error_naming_the_file(hash_embedder):
    one = Dataset([Example(i, "weather", n + 1) for n, (i, _) in enumerate(ROWS[:8])], source="train.jsonl")
    with pytest.raises(DataError, match="train.jsonl: field 'output': every training row has the label 'weather'"):
        strategy(FAST, embedder=hash_embedder).fit(TASK, one)


@pytest.mark.parametrize(
    "entry, expected",
    [
        ({"pairs": 0}, "'strategies[0].pairs': Input should be greater than 0, got 0"),
        (
            {"pairs": 5},
            "'strategies[0].pairs': Value error, must be an even number (half same-label pairs, half "
            "different-label pairs); try 6, got 5",
        ),
        ({"epochs": 0}, "'strategies[0].epochs'"),
        ({"iterations": 20}, "unknown key 'strategies[0].iterations'"),
    ],
)
def test_setfit_config_errors_name_the_key_and_value(entry, expected):
    from adaptlab.runs.experiment import parse_experiment

    base = {"task": {"name": "t", "instruction": "x"}, "data": {"train": "a", "test": "b"}}
    with pytest.raises(ConfigError) as info:
        parse_experiment(base | {"strategies": [{"name": "setfit"} | entry]}, "exp.yaml")
    assert expected in str(info.value)


def test_setfit_is_a_classify_only_baseline_without_an_llm():
    from adaptlab import kinds
    from adaptlab.tasks import task_kind

    k = kinds.kind("setfit")
    assert (k.family, k.llm, k.tasks, k.servable) == ("baseline", False, ("classify",), True)
    assert "setfit" not in task_kind("classify").references  # listed by hand, not run beside every comparison
    assert kinds.names()[kinds.names().index("embed_classifier") + 1] == "setfit"
    assert k.config.model_validate({"name": "setfit"}).seeded
