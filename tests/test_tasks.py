"""Task kinds are declared once (adaptlab.tasks): their metrics, answer rules, references and checks."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from adaptlab import kinds
from adaptlab.tasks import Metric, TaskKind, register, task_kind, task_kind_names, task_kinds, unregister

SRC = Path(__file__).parents[1] / "src" / "adaptlab"


def _branches(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines that compare with a task kind's name (==, !=, in a tuple) or key a dispatch table by one."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            values = [c for o in operands for c in ([o] if isinstance(o, ast.Constant) else getattr(o, "elts", []))]
            lines += [node.lineno for c in values if isinstance(c, ast.Constant) and c.value in names]
        elif isinstance(node, ast.Dict):
            lines += [node.lineno for k in node.keys if isinstance(k, ast.Constant) and k.value in names]
    return lines


def test_no_module_outside_tasks_branches_on_a_task_kind():
    """Everything but tasks/ reads a task kind's traits and specs; none asks "is this a qa task?"."""
    names = set(task_kind_names())
    found = [
        f"{path.relative_to(SRC)}:{line}"
        for path in SRC.rglob("*.py")
        if "tasks" not in path.relative_to(SRC).parts
        for line in _branches(ast.parse(path.read_text(encoding="utf-8")), names)
    ]
    assert not found, "modules branching on a task kind's name:\n" + "\n".join(found)


def test_the_architecture_check_catches_a_branch():
    code = ast.parse('if task.kind == "qa":\n    pass\nx = {"classify": 1}[k]\ny = kind in ("generate", "other")\n')
    assert sorted(_branches(code, {"qa", "classify", "generate"})) == [1, 3, 4]


def test_every_task_kind_declares_its_references_and_headline():
    for spec in task_kinds():
        assert spec.headline in {m.name for m in spec.metrics}, spec.name
        assert len(spec.references) == 2
        trivial, lookup = (kinds.kind(name) for name in spec.references)
        assert trivial.constant and not trivial.llm and trivial.answers(spec.name), spec.name
        assert not lookup.constant and not lookup.llm and lookup.answers(spec.name), spec.name


def test_metric_specs_drive_the_cli_columns():
    assert [m.name for m in task_kind("qa").columns("qa_score")] == [
        "token_f1",
        "abstention_rate",
        "hallucination_rate",
        "unsupported_figures",
        "recall_at_k",
    ]
    assert task_kind("generate").metric("chrf").digits == 1 and task_kind("generate").metric("chrf").scale == 100
    assert task_kind("qa").metric("hallucination_rate").higher_is_better is False


def test_degenerate_checks():
    qa, generate = task_kind("qa"), task_kind("generate")
    expected = ["It is $500.", "Ten days.", "I don't know", "Twelve."]
    assert qa.checks(expected, ["I don't know"] * 4, [False] * 4, "I don't know") == [
        "abstained on 100% of the answerable questions (3 of 3)"
    ]
    assert (
        qa.checks(expected, ["It is $500.", "Ten days.", "I don't know", "Twelve."], [False] * 4, "I don't know") == []
    )
    assert generate.checks(["a", "b", "c", "d", "e"], ["x"] * 4 + ["y"], [False] * 5) == [
        "gave the same answer ('x') to 80% of the test rows (4 of 5)"
    ]
    assert generate.checks(["a", "b"], ["a b", "b"], [True, False]) == [
        "ran to the token limit on 50% of the test rows (answers cut, often repeating themselves)"
    ]
    assert task_kind("classify").checks(["a", "b", "c"], ["a", "b", "c"], []) == []


def test_a_plugin_task_kind_is_one_registration():
    def rows(expected, predicted, labels, context=None):
        return {"len": np.array([float(len(p) == len(e)) for e, p in zip(expected, predicted)])}  # noqa: E731

    spec = TaskKind(
        "same_length",
        "an answer as long as the reference",
        "length_match",
        "len",
        (Metric("length_match", "length match", "answers as long as the reference"),),
        rows,
        lambda r, idx: {"length_match": float(r["len"][idx].mean())},
        ("constant", "nearest"),
        "always the most frequent output",
        "more data",
        lambda *a, **k: [],
        generates=True,
    )
    register(spec)
    try:
        from adaptlab.metrics import task_metrics
        from adaptlab.task import Task

        assert Task("t", "i", "same_length").metric == "length_match"
        metrics, ci = task_metrics("same_length", ["ab", "cd"], ["xy", "z"], [], resamples=20)
        assert metrics == {"length_match": 0.5} and "length_match" in ci
    finally:
        unregister("same_length")
    with pytest.raises(Exception, match="unknown task kind"):
        task_kind("same_length")


class _Always:
    """A fake LLM strategy whose solver gives one answer to everything."""

    name = "zero_shot"

    def __init__(self, answer: str):
        self.answer = answer

    def fit(self, task, train, dev=None, progress=None):
        from adaptlab.solver import Prediction

        outer = self

        class Solver:
            strategy = "zero_shot"

            def predict(self, inputs, progress=None):
                return [Prediction(outer.answer, 10, 3, 0.01) for _ in inputs]

            def describe(self):
                return {"strategy": "zero_shot"}

        return Solver()


def test_evaluate_flags_a_constant_output_generator_but_not_the_constant_reference():
    from adaptlab.data import Dataset, Example
    from adaptlab.evaluation import evaluate
    from adaptlab.task import Task

    train = Dataset([Example(f"say {w}", f"{w} {w}", i + 1) for i, w in enumerate(["card", "lost", "atm", "card"])])
    test = Dataset(
        [Example(f"please say {w}", f"{w} {w}", i + 1) for i, w in enumerate(["new", "old", "red", "blue", "card"])]
    )
    task = Task("echo", "Repeat the word twice.", "generate")
    llm, _ = evaluate(_Always("card card"), task, train, test, traits=kinds.kind("zero_shot").traits())
    assert llm.flags == [
        "gave the same answer ('card card') to 100% of the test rows (5 of 5), where 20% of the expected answers are "
        "that answer"
    ]
    reference, _ = evaluate(
        kinds.strategy({"name": "constant"}), task, train, test, traits=kinds.kind("constant").traits()
    )
    assert (
        reference.predictions[0]["predicted"] == "card card" and reference.flags == []
    )  # one answer is the reference's design


def test_priced_qa_task_ranks_by_utility_and_only_qa_can_be_priced():
    from adaptlab.data import Dataset, Example
    from adaptlab.errors import ConfigError
    from adaptlab.metrics import row_scores, task_metrics
    from adaptlab.task import AnswerCosts, Task, make_task

    costs = AnswerCosts(right_answer=2, hallucination=3, wrong_abstention=1)
    task = Task("kb", "Answer.", "qa", costs=costs)
    assert (
        task.metric == "utility" and task.spec.row_key == "utility" and Task("kb", "Answer.", "qa").metric == "qa_score"
    )
    assert Task.from_dict(task.to_dict()) == task
    expected, predicted = ["It is $500.", "Ten days.", "I don't know"], ["It is $500.", "I don't know", "Twelve."]
    assert row_scores(task.spec, expected, predicted, task.scoring).tolist() == [2.0, -1.0, -3.0]
    metrics, ci = task_metrics(task.spec, expected, predicted, [], resamples=50, qa=task.scoring)
    assert (
        metrics["utility"] == pytest.approx(-2 / 3) and metrics["qa_score"] == pytest.approx(1 / 3) and "utility" in ci
    )
    rows = Dataset(
        [Example("a", "x", 1), Example("b", "y", 2), Example("c", "x", 3), Example("d", "y", 4)], "train.jsonl"
    )
    with pytest.raises(ConfigError, match="task.costs"):
        make_task("t", "i", rows, rows, "classify", costs=costs)
