"""Metrics and the recommendation, on hand-built numbers: no model involved."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptlab.decide import paired_difference, recommend
from adaptlab.evaluation import Evaluation
from adaptlab.knowledge.measures import token_f1
from adaptlab.metrics import bootstrap_ci, chrf, macro_f1, per_label, task_metrics


def test_chrf_bounds_and_order():
    assert chrf("the cat sat", "the cat sat") == pytest.approx(100.0)
    assert chrf("xyz", "abc") == 0.0
    assert chrf("the cat sat", "the cat sat on the mat") > chrf("a dog", "the cat sat on the mat")


def test_macro_f1_by_hand():
    # label a: tp=1 fp=1 fn=0 -> 2/3; label b: tp=0 fp=0 fn=1 -> 0
    assert macro_f1(["a", "b"], ["a", "a"], ["a", "b"]) == pytest.approx(1 / 3)
    assert task_metrics("classify", ["a", "b"], ["a", "a"], ["a", "b"])[0]["accuracy"] == 0.5


def test_bootstrap_interval_brackets_the_mean():
    scores = np.array([1.0] * 30 + [0.0] * 10)
    lo, hi = bootstrap_ci(scores)
    assert lo < 0.75 < hi and hi - lo < 0.35


def evaluation(name, correct, n=40, fit=0.0, latency=100.0, labels=8, top=0.2, scores=None):
    scores = scores or [1.0] * correct + [0.0] * (n - correct)
    return Evaluation(
        name,
        {"accuracy": sum(scores) / n},
        {"accuracy": bootstrap_ci(np.array(scores))},
        latency,
        latency,
        50,
        3,
        fit,
        1000,
        scores,
        [],
        labels,
        top,
        {"label": "a"} if name == "majority" else {},
    )


def test_a_cheaper_contender_with_a_wide_interval_is_not_chosen_and_the_reasons_say_what_would_settle_it():
    # 40 rows, 30 vs 31 right: not significantly different, but the rows cannot rule out a loss of 0.15 either
    few, lora = evaluation("few_shot", 30, latency=700), evaluation("lora", 31, fit=120, latency=90)
    decision = recommend([few, lora], "accuracy", 8)
    assert decision.choice == "lora"
    (reason,) = [r for r in decision.reasons if r.startswith("few_shot might be as good as lora")]
    assert "reaches beyond the tolerance of 0.02 accuracy" in reason and "0.0 s to fit vs 120.0 s" in reason
    assert "the measured gap is already at or beyond the tolerance" in reason  # +0.025 against 0.02
    assert not any("so prefer it" in r for r in decision.reasons)
    assert any(r.startswith("lora is the better bet, not a measured winner") for r in decision.reasons)
    # 100 rows, a gap of 0.01 inside the tolerance, the interval not: the rows that would show it, by the formula
    few = evaluation("few_shot", 80, n=100, latency=700, scores=[1.0] * 80 + [0.0] * 20)
    lora = evaluation("lora", 81, n=100, fit=120, latency=90, scores=[1.0] * 81 + [0.0] * 19)
    close = recommend([few, lora], "accuracy", 8)
    d = np.array(lora.scores) - np.array(few.scores)
    rows = int(np.ceil((2.486475 * d.std(ddof=1) / (0.02 - 0.01)) ** 2))  # (z.95 + z.8) * sd / (tolerance - gap)
    assert close.choice == "lora" and rows > 100
    assert any(f"about {rows:,} test rows would settle it" in r for r in close.reasons)


def test_a_cheaper_contender_shown_within_the_tolerance_is_chosen():
    # 4,000 rows, the two differ on 10: difference 0.0025, its 90% interval well inside +-0.02
    few = evaluation("few_shot", 0, n=4000, latency=700, scores=[1.0] * 3500 + [0.0] * 500)
    lora = evaluation("lora", 0, n=4000, fit=120, latency=90, scores=[1.0] * 3510 + [0.0] * 490)
    decision = recommend([few, lora], "accuracy", 8)
    assert decision.choice == "few_shot"
    (reason,) = [r for r in decision.reasons if r.startswith("few_shot is as good within the tolerance")]
    assert "inside the tolerance of 0.02 accuracy: two one-sided tests at 5%" in reason and "so prefer it" in reason


def test_the_teams_tolerance_decides_what_is_as_good():
    from adaptlab.config import ConstraintsConfig

    few, lora = evaluation("few_shot", 30, latency=700), evaluation("lora", 31, fit=120, latency=90)
    loose = recommend([few, lora], "accuracy", 8, ConstraintsConfig(tolerance=0.3))
    assert loose.choice == "few_shot"
    assert any("inside the tolerance of 0.3 accuracy" in r for r in loose.reasons)
    strict = recommend([few, lora], "accuracy", 8, tolerance=0.3, constraints=ConstraintsConfig(tolerance=0.01))
    assert strict.choice == "lora"  # constraints.tolerance wins over the caller's default


def test_significantly_better_strategy_wins_and_reasons_cite_figures():
    decision = recommend(
        [evaluation("zero_shot", 10, latency=80), evaluation("lora", 36, fit=120, latency=90)], "accuracy", 8
    )
    assert decision.choice == "lora"
    assert (
        "0.900" in decision.reasons[0]
        and "beats the cheaper zero_shot: 0.900 vs 0.250, difference +0.650" in decision.reasons[1]
    )
    assert any("120 s to train" in r for r in decision.reasons) and any(
        r.startswith("lora was trained once") for r in decision.reasons
    )


def test_collapse_is_warned():
    decision = recommend([evaluation("zero_shot", 10, labels=2, top=0.7)], "accuracy", 8)
    assert any("only 2 of 8 labels" in w for w in decision.warnings)
    assert any("70%" in w for w in decision.warnings)


def test_answers_cut_by_the_token_limit_are_warned():
    cut = evaluation("lora", 20, n=30)
    cut.answers_cut, cut.answer_limit, cut.predictions = 12, 160, [{}] * 30
    whole = evaluation("zero_shot", 10, n=30)
    whole.answers_cut, whole.answer_limit = 0, 160
    warnings = recommend([cut, whole], "accuracy", 8).warnings
    assert (
        "lora: 12 of 30 answers were cut at 160 tokens (task.max_new_tokens); if answers should be longer, raise it"
        in warnings
    )
    assert not any(w.startswith("zero_shot:") for w in warnings)


def test_paired_difference_is_zero_for_identical_scores():
    mean, lo, hi = paired_difference([1, 0, 1, 1], [1, 0, 1, 1])
    assert mean == lo == hi == 0.0


def test_embed_classifier_within_the_tolerance_is_named_and_the_llm_questioned():
    # 4,000 rows: embed_classifier and few_shot differ on 10 rows (0.875 vs 0.8775), shown within 0.02
    decision = recommend(
        [
            evaluation("majority", 500, n=4000, latency=0.01, labels=1, top=1.0),
            evaluation("embed_classifier", 0, n=4000, fit=0.5, latency=10, scores=[1.0] * 3500 + [0.0] * 500),
            evaluation("few_shot", 0, n=4000, latency=700, scores=[1.0] * 3510 + [0.0] * 490),
            evaluation("lora", 3000, n=4000, fit=200, latency=90),
        ],
        "accuracy",
        8,
    )
    assert decision.choice == "embed_classifier"
    (reason,) = [r for r in decision.reasons if "may not need an LLM" in r]
    assert "0.875 vs 0.877" in reason and "10 ms per query vs 700 ms" in reason and "0.5 s to fit" in reason
    assert not decision.warnings  # majority's single label is by design, not a collapse


def test_embed_classifier_not_shown_within_the_tolerance_loses_to_the_better_llm():
    # 40 rows, 35 vs 36 right: the old rule ("not significantly worse") chose embed_classifier; the rows cannot show
    # it within 0.02 of few_shot
    decision = recommend(
        [
            evaluation("majority", 5, latency=0.01, labels=1, top=1.0),
            evaluation("embed_classifier", 35, fit=0.5, latency=10),
            evaluation("few_shot", 36, latency=700),
        ],
        "accuracy",
        8,
    )
    assert decision.choice == "few_shot"
    (reason,) = [r for r in decision.reasons if r.startswith("embed_classifier might be as good as few_shot")]
    assert "choosing it would save: 10 ms per query vs 700 ms" in reason and "at or beyond the tolerance" in reason


def test_an_llm_strategy_that_does_not_beat_majority_is_called_out():
    # majority right on rows 0-19; zero_shot right on rows 10-31: 22 vs 20 of 40
    majority = evaluation("majority", 20)
    zero = evaluation("zero_shot", 0, scores=[0.0] * 10 + [1.0] * 22 + [0.0] * 8)
    few = evaluation("few_shot", 38, latency=700)
    decision = recommend([majority, zero, few], "accuracy", 8)
    assert decision.choice == "few_shot"
    assert any(
        r.startswith("zero_shot does not beat the majority baseline significantly: 0.550 vs 0.500")
        for r in decision.reasons
    )
    assert not any(r.startswith("few_shot does not beat") for r in decision.reasons)


def test_nothing_above_majority_means_collect_more_data():
    decision = recommend(
        [evaluation("majority", 22), evaluation("few_shot", 21, latency=700), evaluation("lora", 20, fit=100)],
        "accuracy",
        8,
    )
    assert decision.choice == "collect_more_data"
    assert any("always answering 'a'" in r for r in decision.reasons)


def test_a_contender_shown_within_the_tolerance_of_majority_has_learned_nothing():
    # 4,000 rows: few_shot right on 10 more than majority (+0.0025), shown within 0.02 of a constant answer
    majority = evaluation("majority", 0, n=4000, scores=[1.0] * 500 + [0.0] * 3500)
    few = evaluation("few_shot", 0, n=4000, latency=700, scores=[1.0] * 510 + [0.0] * 3490)
    decision = recommend([majority, few], "accuracy", 8)
    assert decision.choice == "collect_more_data"
    assert decision.reasons[0].startswith(
        "the best contender, few_shot, is shown within the tolerance of always answering 'a' (majority): 0.128 vs 0.125"
    )


def test_a_contender_above_majority_but_not_significantly_is_the_better_bet_and_says_so():
    decision = recommend(
        [evaluation("majority", 20), evaluation("few_shot", 22, latency=700), evaluation("lora", 21, fit=100)],
        "accuracy",
        8,
    )
    assert decision.choice == "few_shot"
    (reason,) = [r for r in decision.reasons if r.startswith("few_shot scores above always answering 'a'")]
    assert "cannot tell them apart" in reason and "rows would settle it" in reason and "the better bet" in reason


def test_embed_classifier_best_outright_is_compared_with_the_best_llm():
    decision = recommend(
        [
            evaluation("majority", 5),
            evaluation("embed_classifier", 39, fit=3, latency=9),
            evaluation("few_shot", 30, latency=800),
            evaluation("lora", 28, fit=200, latency=540),
        ],
        "accuracy",
        8,
    )
    assert decision.choice == "embed_classifier"
    (reason,) = [r for r in decision.reasons if "may not need an LLM" in r]
    assert "best LLM strategy, few_shot (0.975 vs 0.750" in reason and "9 ms per query vs 800 ms" in reason


def test_every_metric_gets_an_interval_and_agrees_with_the_plain_formula():
    expected = ["a", "a", "b", "b", "c", "c", "a", "b"] * 5
    predicted = ["a", "b", "b", "b", "c", "a", "a", "x"] * 5
    metrics, ci = task_metrics("classify", expected, predicted, ["a", "b", "c"], resamples=300)
    assert metrics["macro_f1"] == pytest.approx(macro_f1(expected, predicted, ["a", "b", "c"]))
    assert set(ci) == {"accuracy", "macro_f1"} and all(lo <= metrics[k] <= hi for k, (lo, hi) in ci.items())
    f1, confusion = per_label(expected, predicted, ["a", "b", "c"])
    assert confusion["b"] == {"a": 0, "b": 10, "c": 0, "(other)": 5} and f1["c"] == pytest.approx(
        2 * 5 / (2 * 5 + 0 + 5)
    )


def test_generate_metrics_token_f1_and_json_fields():
    assert token_f1("the card is lost", "card lost") == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    expected = ['{"city": "Paris", "people": 2}', '{"city": "Rome", "people": 4}']
    predicted = ['{"city": "Paris", "people": 3}', "not json"]
    metrics, ci = task_metrics("generate", expected, predicted, [], resamples=50)
    assert metrics["json_valid"] == 0.5 and metrics["field_precision"] == 0.5 and metrics["field_recall"] == 0.25
    assert metrics["field_f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75) and {"exact_match", "token_f1", "chrf"} <= set(
        ci
    )
    assert "json_valid" not in task_metrics("generate", ["plain text"], ["plain"], [])[0]


def test_pairwise_tests_every_two_strategies_on_the_same_rows():
    from adaptlab.decide import pairwise

    same = evaluation("zero_shot", 20)
    rows = pairwise([evaluation("few_shot", 36), evaluation("lora", 35), same])
    assert [(r["a"], r["b"]) for r in rows] == [("few_shot", "lora"), ("few_shot", "zero_shot"), ("lora", "zero_shot")]
    assert rows[1]["p_value"] < 0.01 and rows[1]["ci95"][0] > 0 and rows[0]["p_value"] > 0.05


def test_cost_per_query_fit_cost_and_break_even():
    from adaptlab.decide.costs import break_even, strategy_cost

    few = evaluation("few_shot", 36, latency=720)  # 0.72 s of machine time per query
    lora = evaluation("lora", 35, fit=360, latency=360)
    costs = {e.name: strategy_cost(e, hourly=1.0) for e in (few, lora)}
    assert costs["few_shot"]["cost_per_1k_queries"] == pytest.approx(0.2) and costs["lora"][
        "fit_cost"
    ] == pytest.approx(0.1)
    (row,) = break_even(costs)
    assert row["queries"] == 1000  # $0.10 to fit, $0.10 less per 1k queries
    slower = {"few_shot": costs["few_shot"], "lora": strategy_cost(evaluation("lora", 35, fit=360, latency=900), 1.0)}
    assert break_even(slower)[0]["queries"] == "never"
    free = {"few_shot": costs["few_shot"], "lora": strategy_cost(evaluation("lora", 35, fit=0, latency=360), 1.0)}
    assert break_even(free)[0]["queries"] == "from the first query"


def test_sweep_measures_each_size_and_finds_the_crossover(card_experiment, tmp_path):
    from typer.testing import CliRunner

    from adaptlab.cli import app
    from adaptlab.runs.sweep import crossover, sample

    result = CliRunner().invoke(
        app, ["sweep", str(card_experiment), "--sizes", "4,8", "--seeds", "2", "--out", str(tmp_path / "sweep")]
    )
    assert result.exit_code == 0, result.output
    sweep = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert sweep["sizes"] == [4, 8, 12] and set(sweep["curve"]) == {"zero_shot", "few_shot", "lora"}
    assert len(sweep["runs"]) == (2 + 2 + 1) * 3
    assert [(c["fine_tuned"], c["prompted"]) for c in sweep["comparisons"]] == [
        ("lora", "zero_shot"),
        ("lora", "few_shot"),
    ]
    assert "overtakes" in result.stdout
    assert crossover(
        [{"n": 8, "difference": 0.1, "ci95": [0.05, 0.2]}, {"n": 16, "difference": -0.01, "ci95": [-0.1, 0.1]}]
    ) == {"crossover_n": None, "significant_from_n": None}
    from conftest import CARD_ROWS

    from adaptlab.data import Dataset, Example

    rows = Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(CARD_ROWS)])
    assert [e.line for e in sample(rows, 4, 1)] == sorted(e.line for e in sample(rows, 4, 1)) and len(
        sample(rows, 99, 0)
    ) == 12


def test_constraints_rule_strategies_out_and_add_reasons():
    from adaptlab.config import ConstraintsConfig
    from adaptlab.decide.costs import break_even, strategy_cost

    few, lora = evaluation("few_shot", 36, latency=700), evaluation("lora", 30, fit=200, latency=90)
    costs = {e.name: strategy_cost(e, 1.0) for e in (few, lora)}
    plain = recommend([few, lora], "accuracy", 8)
    assert plain.choice == "few_shot"
    fast = recommend([few, lora], "accuracy", 8, ConstraintsConfig(latency_target_ms=300), costs)
    assert fast.choice == "lora" and any(
        "latency target: p95 700 ms per query measured, 300 ms allowed" in r for r in fast.reasons
    )
    broke = recommend(
        [evaluation("few_shot", 30, latency=700), evaluation("lora", 36, fit=200, latency=90)],
        "accuracy",
        8,
        ConstraintsConfig(training_budget_usd=0.01),
        costs,
    )
    assert broke.choice == "few_shot" and any("training budget" in r for r in broke.reasons)
    assert (
        recommend([few, lora], "accuracy", 8, ConstraintsConfig(latency_target_ms=10), costs).choice
        == "none_meets_the_constraints"
    )
    churn = recommend(
        [few, lora],
        "accuracy",
        8,
        ConstraintsConfig(latency_target_ms=300, data_changes="weekly", queries_per_month=5000),
        costs,
        break_even(costs),
    )
    assert any("changes weekly" in r and "retrained" in r for r in churn.reasons)
    assert any("5,000 queries a month you are" in r and "break-even" in r for r in churn.reasons)
    shared = recommend(
        [evaluation("few_shot", 30, latency=700), evaluation("full", 38, fit=50, latency=90)],
        "accuracy",
        8,
        ConstraintsConfig(one_model_many_tasks=True),
    )
    assert shared.choice == "few_shot" and any("full is ruled out" in r for r in shared.reasons)


def test_questionnaire_advice_weighs_each_factor_and_names_the_settling_experiment(tmp_path):
    from typer.testing import CliRunner

    from adaptlab.cli import app
    from adaptlab.config import ConstraintsConfig
    from adaptlab.decide.advice import advise

    many = advise(500, "generate", ConstraintsConfig(queries_per_month=2_000_000, format_control="strict"))
    assert many.choice == "lora" and any("2,000,000 queries" in r for r in many.reasons)
    assert "adaptlab compare" in many.reasons[-1] and "adaptlab sweep" in many.reasons[-1]
    no_gpu = advise(500, "classify", ConstraintsConfig(training_hardware="none"))
    assert (
        no_gpu.choice in ("zero_shot", "few_shot")
        and "lora" not in no_gpu.reasons[-1]
        and any("embedding classifier" in r for r in no_gpu.reasons)
    )
    assert advise(3, "classify", ConstraintsConfig()).choice == "collect_more_data"
    assert advise(60, "classify", ConstraintsConfig(data_changes="daily")).choice == "few_shot"
    answers = tmp_path / "a.yaml"
    answers.write_text("labeled_examples: 40\ntask_kind: classify\none_model_many_tasks: 'yes'\n")
    result = CliRunner().invoke(app, ["recommend", "--questionnaire", "--answers", str(answers)])
    assert (
        result.exit_code == 0
        and result.stdout.startswith("Leaning: few_shot")
        and "share one base model" in result.stdout
    )
    interactive = CliRunner().invoke(
        app, ["recommend", "--questionnaire"], input="400\ngenerate\n\n\ngpu\nrarely\nspecialised\nstrict\nno\n"
    )
    assert interactive.exit_code == 0 and "Leaning: lora" in interactive.stdout


def _advised_kind(name: str, **traits):
    """A language-model kind declared here, by its traits only (build and load are never called by advice)."""
    from adaptlab.config import StrategyConfig
    from adaptlab.kinds import Kind

    return Kind(
        name,
        traits.pop("family", "fine_tuned"),
        StrategyConfig,
        build=lambda config, ctx: None,
        load=lambda folder, ctx: None,
        tier=traits.pop("tier", 3),
        **traits,
    )


def test_a_kind_registered_with_its_traits_is_advised_by_them():
    """A fine-tune that also keeps examples in its prompt wins where both count (many examples, data that changes
    daily),
    is named in the settling experiment, and is ruled out by the same constraints as any kind that trains."""
    from adaptlab import kinds
    from adaptlab.config import ConstraintsConfig
    from adaptlab.decide.advice import advise

    busy = ConstraintsConfig(queries_per_month=2_000_000, data_changes="daily")
    assert advise(500, "generate", busy).choice == "lora"  # before it is registered
    kinds.register(_advised_kind("tuned_shots", short_prompts=True, examples_in_prompt=True))
    try:
        advised = advise(500, "generate", busy)
        assert (
            advised.choice == "tuned_shots"
            and "tuned_shots" in advised.reasons[-1]
            and "adaptlab sweep" in advised.reasons[-1]
        )
        assert (
            advise(500, "generate", ConstraintsConfig(queries_per_month=2_000_000)).choice == "lora"
        )  # a tie: table order
        assert advise(500, "generate", busy.model_copy(update={"training_hardware": "none"})).choice == "few_shot"
    finally:
        kinds.unregister("tuned_shots")
    kinds.register(_advised_kind("own_tune", own_weights=True, short_prompts=True, examples_in_prompt=True))
    try:
        assert (
            advise(500, "generate", busy).choice == "own_tune"
            and "own_tune" in advise(500, "generate", busy).reasons[-1]
        )
        assert (
            "own_tune" not in advise(500, "generate", ConstraintsConfig()).reasons[-1]
        )  # no more votes than lora: a second run, as full
        shared = advise(500, "generate", busy.model_copy(update={"one_model_many_tasks": True}))
        assert shared.choice == "lora" and "own_tune" not in shared.reasons[-1]
    finally:
        kinds.unregister("own_tune")


def test_no_training_hardware_rules_out_every_kind_that_trains_whatever_else_favours_it():
    """Every trainer in the table (built in or registered here) is neither chosen nor suggested, however many votes it
    has: examples, volume, latency, domain and format all favour training below."""
    import re

    from adaptlab import kinds
    from adaptlab.config import ConstraintsConfig
    from adaptlab.decide.advice import advise

    kinds.register(_advised_kind("eager_tune", short_prompts=True, examples_in_prompt=True, tier=0))
    try:
        trainers = [k.name for k in kinds.kinds() if k.trains]
        assert "eager_tune" in trainers and len(trainers) >= 3
        favoured = ConstraintsConfig(
            training_hardware="none",
            queries_per_month=5_000_000,
            latency_target_ms=50,
            domain="specialised",
            format_control="strict",
            data_changes="daily",
        )
        for examples in (5, 60, 500, 5000):
            for task_kind in ("classify", "generate", "qa"):
                advice = advise(examples, task_kind, favoured)
                assert advice.choice not in trainers, (examples, task_kind, advice.choice)
                assert not [t for t in trainers if re.search(rf"\b{t}\b", advice.reasons[-1])], advice.reasons[-1]
                assert "adaptlab sweep" not in advice.reasons[-1]
        trained = advise(500, "generate", favoured.model_copy(update={"training_hardware": "gpu"}))
        assert trained.choice == "eager_tune"  # the same answers with a machine to train on: the trainer wins
    finally:
        kinds.unregister("eager_tune")


def test_cheaper_means_fewer_dollars_at_the_stated_volume_not_the_kind():
    """A hosted few-shot model priced by tokens against a local LoRA adapter, shown within the team's tolerance: at a
    high volume the trained adapter costs less in all, so it is the cheaper one, whatever its kind's tier says."""
    from adaptlab.config import ConstraintsConfig
    from adaptlab.decide.recommend import HORIZON_MONTHS, Costing

    hosted, local = evaluation("few_shot", 31, latency=400), evaluation("lora", 30, fit=600, latency=90)
    costs = {
        "few_shot": {"cost_per_1k_queries": 2.0, "fit_cost": 0.0},
        "lora": {"cost_per_1k_queries": 0.0025, "fit_cost": 0.0167},
    }
    busy = recommend([hosted, local], "accuracy", 8, ConstraintsConfig(queries_per_month=100_000, tolerance=0.3), costs)
    assert busy.choice == "lora"
    (reason,) = [r for r in busy.reasons if "so prefer it" in r]
    assert (
        f"$3.02 vs $2400.00 (796x less) over {HORIZON_MONTHS} months at 100,000 queries a month" in reason
        and "(a default" not in reason
    )
    quiet = recommend([hosted, local], "accuracy", 8, ConstraintsConfig(queries_per_month=0, tolerance=0.3), costs)
    assert quiet.choice == "few_shot"  # no queries: only the fit cost counts, and the hosted model has none
    default = Costing.of(costs, None)
    assert default.queries_per_month == 10_000 and not default.stated
    unknown = Costing.of({"few_shot": {"cost_per_1k_queries": None, "fit_cost": 0.0}, "lora": costs["lora"]}, 5)
    assert unknown.key(hosted) > unknown.key(local)  # an endpoint without prices sorts last
    assert Costing().key(hosted) < Costing().key(local)  # no costs: the kinds' tiers (prompted before trained)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=5, max_size=40),
    st.sampled_from([0.02, 0.1, 0.3]),
)
def test_the_cheaper_contender_is_chosen_only_when_its_interval_lies_within_the_tolerance(rows, tolerance):
    """Whatever the rows, "the cheaper one" wins over a better point estimate only when the 90% paired interval of
    the difference lies inside the tolerance."""
    from adaptlab.decide.statistics import equivalence

    cheap_scores, dear_scores = [float(a) for a, _ in rows], [float(b) for _, b in rows]
    n = len(rows)
    cheap = evaluation("few_shot", 0, n=n, latency=90, scores=cheap_scores)
    dear = evaluation("lora", 0, n=n, fit=120, latency=700, scores=dear_scores)
    choice = recommend([cheap, dear], "accuracy", 8, tolerance=tolerance).choice
    if sum(dear_scores) > sum(cheap_scores) and choice == "few_shot":
        same = equivalence(dear_scores, cheap_scores, tolerance)
        assert same.shown and -tolerance < same.low and same.high < tolerance
