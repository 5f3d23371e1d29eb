"""Task inference and experiment-file validation."""

import pytest

from adaptlab.data import Dataset, Example
from adaptlab.errors import ConfigError, DataError
from adaptlab.runs.experiment import parse_experiment
from adaptlab.task import Task, infer_kind, make_task


def ds(pairs, source="x.jsonl"):
    return Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(pairs)], source=source)


def test_repeated_short_outputs_mean_classify():
    train = ds([(f"q{i}", ["pos", "neg"][i % 2]) for i in range(10)])
    assert infer_kind(train) == "classify"
    assert make_task("t", "Do it.", train, ds([("q", "pos")])).labels == ("neg", "pos")


def test_distinct_outputs_mean_generate():
    assert infer_kind(ds([(f"q{i}", f"answer number {i}") for i in range(10)])) == "generate"
    assert infer_kind(ds([(f"q{i}", "same") for i in range(10)])) == "generate"  # one label is no classification


def test_answer_length_comes_from_the_training_answers_unless_the_experiment_sets_it():
    train = ds([(f"q{i}", " ".join(["w"] * (10 + 5 * i))) for i in range(10)])  # 10 .. 55 words

    def words(text):
        return len(text.split()) + 1  # a stand-in tokenizer: a token per word, + end of turn

    task = make_task("t", "Do it.", train, ds([("q", "w w")]), "generate", count_tokens=words)
    assert task.max_new_tokens == 56 + 16 and "56 tokens" in task.max_new_tokens_from
    long = ds([(f"q{i}", " ".join(["w"] * 200)) for i in range(3)])
    assert make_task("t", "Do it.", long, long, "generate", count_tokens=words).max_new_tokens == 201 + 50  # a quarter
    fixed = make_task("t", "Do it.", train, ds([("q", "w")]), "generate", max_new_tokens=40, count_tokens=words)
    assert fixed.max_new_tokens == 40 and "experiment" in fixed.max_new_tokens_from
    assert "max_new_tokens_from" in fixed.to_dict()


def test_unknown_test_label_names_the_line():
    train = ds([(f"q{i}", ["pos", "neg"][i % 2]) for i in range(10)])
    with pytest.raises(DataError) as info:
        make_task("t", "Do it.", train, ds([("a", "pos"), ("b", "postive")], "test.jsonl"))
    (p,) = info.value.problems
    assert (p.code, p.file, p.line, p.field) == ("unknown_label", "test.jsonl", 2, "output")


BASE = {
    "task": {"name": "t", "instruction": "Do it."},
    "data": {"train": "a", "test": "b"},
    "strategies": [{"name": "zero_shot"}],
}


def test_defaults_are_filled():
    config = parse_experiment(BASE)
    assert config.model == "smollm2-135m-instruct" and config.seed == 0


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"extra": 1}, "unknown key 'extra'"),
        ({"strategies": [{"name": "few_shot", "k": -1}]}, "'strategies[0].k'"),
        ({"strategies": [{"name": "few_shot", "kk": 3}]}, "unknown key 'strategies[0].kk'"),
        (
            {"strategies": [{"name": "magic"}]},
            "must be one of zero_shot, few_shot, rag, lora, full, majority, embed_classifier, "
            "setfit, constant, nearest, abstain, extract; got 'magic'",
        ),
        ({"strategies": [{"name": "zero_shot"}, {"name": "zero_shot"}]}, "listed twice"),
        ({"task": {"name": "Bad Name", "instruction": "x"}}, "'task.name'"),
        ({"strategies": []}, "'strategies'"),
    ],
)
def test_config_errors_name_the_key(change, expected):
    with pytest.raises(ConfigError) as info:
        parse_experiment({**BASE, **change}, "exp.yaml")
    assert expected in str(info.value) and "exp.yaml" in str(info.value)


def test_answer_endings_are_inferred_only_where_every_training_output_shows_them(tmp_path):
    from adaptlab.data import Dataset, Example
    from adaptlab.task import make_task

    def task_on(outputs, **kwargs):
        rows = Dataset([Example(f"q{i}", o, i + 1) for i, o in enumerate(outputs)], "train.jsonl")
        return make_task("t", "i", rows, rows, "generate", max_new_tokens=64, **kwargs)

    sql = task_on(["SELECT a\nFROM b;", "SELECT c\nFROM d;"])
    assert sql.stop == () and sql.ends == (";",) and "every one ends with ';'" in sql.stops_from
    lines = task_on(["date: 9th", "time: 10pm"])
    assert lines.stop == ("\n",) and lines.ends == () and "one line" in lines.stops_from
    for outputs in (
        ["SELECT a\nFROM b;", "SELECT c\nFROM d"],
        ["SELECT a;\nSELECT b;", "SELECT c\nFROM d;"],
    ):  # one output does not end so; one holds it twice
        mixed = task_on(outputs)
        assert mixed.stop == () and mixed.ends == () and mixed.stops_from == ""
    given = task_on(["date: 9th", "time: 10pm"], stop=("|",))
    assert given.stop == ("|",) and given.ends == () and "task.stop" in given.stops_from
    assert task_on(["date: 9th", "time: 10pm"], stop=()).stop == ()  # stop: [] turns inference off
    assert task_on(["a", "b"], stop_loops=False).stop_loops is False
    assert Task.from_dict(sql.to_dict()) == sql
