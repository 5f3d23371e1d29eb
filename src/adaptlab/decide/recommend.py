"""`recommend`: pure functions from evaluations to a choice and its reasons.

Rule: the best headline score wins unless a cheaper contender is shown equivalent to it: the 90%
paired interval of the difference lies within the tolerance (two one-sided tests at 5%,
adaptlab.decide.statistics.equivalence; `constraints.tolerance`, by default 2% of the headline's
scale: 0.02 accuracy or qa_score, 2 chrF). Then the cheapest such contender wins and the reason
says so. "Not significantly worse" is not enough: with few test rows a large loss cannot be told
apart either, so a cheaper contender that the rows cannot show within the tolerance loses to the
better point estimate, and the reasons say what it might save and how many rows would settle it.
"Cheaper" means fewer dollars in all (fit once, then the
measured per-query cost at the stated monthly volume over HORIZON_MONTHS: `Costing`);
without costs, the kind's tier (no LLM, then an LLM prompted, then an LLM trained),
then measured latency per query.

When the best and the runner-up cannot be told apart, the reasons say "inconclusive",
with the difference the test split could detect and the rows that would settle the
gap, and call the choice what it then is: a default by cost. The choice's probability
of being best (P(best)) is quoted.

The references are contenders too, and set the bar (the task kind names them):
- the trivial reference (a kind with `constant`: one answer whatever the input) is the floor, and the cheapest
  contender of all: a contender is recommended only if it scores above it, and not when it is shown within the
  tolerance of it (then it has learned nothing a constant answer does not give). When none qualifies, the choice is
  COLLECT_MORE_DATA and the reason says so in the task's words (`trivial_words`) with what to try (`remedy`). A
  choice the paired test cannot tell from the floor is still the better bet (the reasons say so, with the rows
  that would settle it): requiring significance over the floor, as this module did before, let a lookup that
  merely scored above it win over a prompted contender scoring far higher (bench/decide.py, restaurant-json-2);
- a reference without an LLM that is best, or shown equivalent to the best LLM contender within the tolerance, is
  the recommendation (whatever it costs): the task may not need an LLM;
- a contender whose answers are degenerate (`Evaluation.flags`) is not recommended while one without findings
  beats the floor; the reasons and the warnings name it and its findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adaptlab.config import ConstraintsConfig
from adaptlab.decide.constraints import factor_reasons, rule_out
from adaptlab.decide.costs import HORIZON_MONTHS, Costing  # noqa: F401 (HORIZON_MONTHS re-exported for callers)
from adaptlab.decide.findings import freshness_reasons, knowledge_reasons, seed_reasons
from adaptlab.decide.statistics import (
    ALPHA,
    P_BEST_RESAMPLES,
    equivalence,
    p_best,
    paired_difference,
    paired_test,
    power,
    top_two,
)
from adaptlab.evaluation import Evaluation
from adaptlab.tasks import default_tolerance

COLLECT_MORE_DATA = "collect_more_data"
NONE_FITS = "none_meets_the_constraints"


@dataclass(frozen=True)
class Decision:
    choice: str
    reasons: list[str]
    warnings: list[str] = field(default_factory=list)
    p_best: dict[str, float] = field(
        default_factory=dict
    )  # every contender's probability of being best (results.json keeps it per strategy)
    tolerance: float | None = None  # the largest loss of the headline a cheaper contender may cost

    def to_dict(self) -> dict:
        out = {"choice": self.choice, "reasons": self.reasons, "warnings": self.warnings}
        return out | ({"tolerance": self.tolerance} if self.tolerance is not None else {})


def collapse_warnings(e: Evaluation, n_labels: int) -> list[str]:
    """A warning when a classifier predicts few of the labels or mostly one label (a constant baseline excepted: that is
    its design)."""
    if e.constant:
        return []
    out = []
    if e.labels_predicted is not None and n_labels and e.labels_predicted < n_labels / 2:
        out.append(f"{e.name} predicted only {e.labels_predicted} of {n_labels} labels")
    if e.top_label_share is not None and e.top_label_share > 0.5 and not e.flags:  # a flagged one says it in its flag
        out.append(f"{e.name} gave one label to {e.top_label_share:.0%} of the test queries")
    return out


def cut_warnings(e: Evaluation) -> list[str]:
    """A warning when answers hit the token limit (they may be incomplete, and their scores with them), and when
    answers began repeating themselves and were ended there (task.stop_loops)."""
    out = []
    if e.answers_cut:
        out.append(
            f"{e.name}: {e.answers_cut} of {len(e.predictions)} answers were cut at {e.answer_limit} "
            "tokens (task.max_new_tokens); if answers should be longer, raise it"
        )
    if e.answers_looped:
        out.append(
            f"{e.name}: {e.answers_looped} of {len(e.predictions)} answers began repeating "
            "themselves and were ended there, one copy of the repeated span kept (task.stop_loops)"
        )
    return out


# what to try when nothing beats the trivial reference (recommend's `remedy`)
REMEDY = "collect more (or cleaner) labeled data before choosing"


def recommend(
    evaluations: list[Evaluation],
    metric: str,
    n_labels: int = 0,
    constraints: ConstraintsConfig | None = None,
    costs: dict[str, dict] | None = None,
    break_even: list[dict] | None = None,
    updates: dict | None = None,
    trivial_words: str | None = None,
    remedy: str | None = None,
    tolerance: float | None = None,
) -> Decision:
    """Choose among evaluated strategies; every reason quotes the figures (or stated constraints) it rests on.

    `tolerance`: the largest loss of `metric` worth a cheaper contender (constraints.tolerance wins over it; with
    neither, the task kinds' default for the metric, `default_tolerance`).

    `costs` (decide.costs.strategy_cost per contender) make "cheaper" mean fewer dollars over HORIZON_MONTHS at
    constraints.queries_per_month (DEFAULT_QUERIES_PER_MONTH when not set); without them the kinds' tiers order them.
    `updates` (evaluation.freshness, per contender) add what a document update did to each.
    `trivial_words` says what the trivial reference does ("always saying the abstain answer"; default: "always
    answering 'X'" from its label) and `remedy` what to try when nothing beats it (default: REMEDY)."""
    if not evaluations:
        raise ValueError("nothing to recommend from: no evaluations")
    constraints = constraints or ConstraintsConfig()
    everything = evaluations
    chances = p_best(
        {e.name: e.scores for e in everything}
    )  # over every contender measured, as results.json and the table show it
    evaluations, ruled_out = rule_out(evaluations, constraints, costs)
    if not evaluations:
        return Decision(
            NONE_FITS,
            ruled_out + ["no strategy meets the constraints; relax one of them, or measure on faster hardware"],
            _warnings(everything, n_labels),
            chances,
        )
    margin = next((t for t in (constraints.tolerance, tolerance) if t is not None), default_tolerance(metric))
    decision = _choose(
        evaluations,
        metric,
        n_labels,
        chances,
        Costing.of(costs, constraints.queries_per_month),
        trivial_words,
        remedy,
        margin,
    )
    family = next((e.family for e in evaluations if e.name == decision.choice), None)
    reasons = (
        decision.reasons
        + seed_reasons(decision.choice, evaluations, metric)
        + knowledge_reasons(decision.choice, evaluations)
        + freshness_reasons(decision.choice, updates or {}, constraints.data_changes)
        + ruled_out
        + factor_reasons(decision.choice, constraints, break_even, family)
    )
    return Decision(decision.choice, reasons, _warnings(everything, n_labels, decision.choice), chances, margin)


def _choose(
    evaluations: list[Evaluation],
    metric: str,
    n_labels: int,
    chances: dict[str, float],
    costing: Costing | None = None,
    trivial_words: str | None = None,
    remedy: str | None = None,
    tolerance: float | None = None,
) -> Decision:
    """The choice among the contenders that can be recommended (`recommendable`): the best by `metric`, or the
    cheapest shown equivalent to it within `tolerance` (a contender without an LLM first); with none,
    COLLECT_MORE_DATA."""
    costing = costing or Costing()
    tolerance = default_tolerance(metric) if tolerance is None else tolerance
    trivial = trivial_reference(evaluations)
    words = trivial_words or _trivial_words(trivial)
    pool = recommendable(evaluations, trivial)
    if not pool:
        return Decision(
            COLLECT_MORE_DATA,
            _nothing_beats(evaluations, trivial, metric, words, remedy or REMEDY) + flag_reasons(evaluations),
        )
    best = max(pool, key=lambda e: (e.metrics[metric], tuple(-x for x in costing.key(e))))
    if trivial is not None and equivalence(best.scores, trivial.scores, tolerance).shown:
        return Decision(
            COLLECT_MORE_DATA,
            [_as_good_as_trivial(best, trivial, metric, words, tolerance, remedy or REMEDY)]
            + flag_reasons(evaluations),
        )
    choice, cheaper = _prefer_cheaper(best, pool, metric, costing, tolerance)
    reasons = (
        [_best_words(best, evaluations, metric)]
        + flag_reasons(evaluations, choice)
        + cheaper
        + _no_llm_needed(choice, best, evaluations, metric, costing)
    )
    reasons += inconclusive_reasons(pool, metric, choice, costing, tolerance)
    reasons.append(_chance_words(choice, metric, chances))
    reasons += _running_words(choice) + _floor_reasons(choice, evaluations, trivial, metric, words)
    return Decision(choice.name, reasons, _warnings(evaluations, n_labels, choice.name))


def trivial_reference(evaluations: list[Evaluation]) -> Evaluation | None:
    """The task's trivial reference: the contender that gives one answer whatever the input (majority, constant,
    abstain)."""
    return next((e for e in evaluations if e.constant), None)


def beats(e: Evaluation, reference: Evaluation | None) -> bool:
    """`e` scores higher than `reference` on the same rows, significantly (paired test at ALPHA); anything beats no
    reference."""
    if reference is None:
        return True
    diff, _, _ = paired_difference(e.scores, reference.scores)
    return diff > 0 and paired_test(e.scores, reference.scores)[1] < ALPHA


def recommendable(evaluations: list[Evaluation], trivial: Evaluation | None) -> list[Evaluation]:
    """The contenders that may be recommended: those that score above the trivial reference (the better point
    estimate is the better bet; the reasons say when the test rows could not tell them apart), less those with
    degenerate answers (`flags`) while one without them remains."""
    beating = [e for e in evaluations if not e.constant and above(e, trivial)]
    usable = [e for e in beating if not e.flags]
    return usable or beating


def above(e: Evaluation, reference: Evaluation | None) -> bool:
    """`e` scores higher than `reference` on the same rows (no test); anything is above no reference."""
    return reference is None or paired_difference(e.scores, reference.scores)[0] > 0


def _trivial_words(trivial: Evaluation | None) -> str:
    label = trivial.solver.get("label") if trivial is not None else None
    if label is not None:
        return f"always answering {label!r}"
    return f"always giving {trivial.name}'s one answer" if trivial is not None else "a trivial answer"


def _reference_words(trivial: Evaluation, words: str) -> str:
    """ "always answering the most frequent training label (majority: 'a')": the words, the reference and its answer."""
    label = trivial.solver.get("label")
    return f"{words} ({trivial.name}" + (f": {label!r})" if label is not None and repr(label) not in words else ")")


def _versus(a: Evaluation, b: Evaluation, metric: str) -> str:
    """a's score against b's on the same rows: "0.520 vs 0.500 (difference +0.020, 95% paired CI ...; McNemar exact
    p=...)"."""
    diff, lo, hi = paired_difference(a.scores, b.scores)
    test, p = paired_test(a.scores, b.scores)
    return (
        f"{a.metrics[metric]:.3f} vs {b.metrics[metric]:.3f} (difference {diff:+.3f}, 95% paired CI "
        f"{lo:+.3f} to {hi:+.3f}; {test} {_p(p)})"
    )


def _nothing_beats(
    evaluations: list[Evaluation], trivial: Evaluation | None, metric: str, words: str, remedy: str
) -> list[str]:
    """Why nothing is recommended: no contender scores above the trivial reference; the best one's figures and what
    to try."""
    assert trivial is not None  # nothing is recommendable only below a trivial reference (`recommendable`)
    others = [e for e in evaluations if not e.constant]
    if not others:
        return [
            f"only the trivial reference, {_reference_words(trivial, words)}, was measured: there is "
            f"nothing to compare it with; add contenders, and {remedy}"
        ]
    top = max(others, key=lambda e: e.metrics[metric])
    return [
        f"no contender answers better than {_reference_words(trivial, words)}: the "
        f"best, {top.name}, has {metric} {_versus(top, trivial, metric)}; {remedy}"
    ]


def _as_good_as_trivial(
    best: Evaluation, trivial: Evaluation, metric: str, words: str, tolerance: float, remedy: str
) -> str:
    """Why nothing is recommended when the best contender is shown as good as the trivial reference, and no better."""
    same = equivalence(best.scores, trivial.scores, tolerance)
    return (
        f"the best contender, {best.name}, is shown within the tolerance of {_reference_words(trivial, words)}: "
        f"{best.metrics[metric]:.3f} vs {trivial.metrics[metric]:.3f}, difference {same.difference:+.3f} (90% paired "
        f"CI {same.low:+.3f} to {same.high:+.3f}, inside {tolerance:g} {metric}); it has learned nothing a constant "
        f"answer does not give; {remedy}"
    )


def _best_words(best: Evaluation, evaluations: list[Evaluation], metric: str) -> str:
    lo, hi = best.ci.get(metric, (float("nan"), float("nan")))
    among = (
        ""
        if all(e.metrics[metric] <= best.metrics[metric] for e in evaluations)
        else " of the contenders that can be recommended"
    )
    return (
        f"{best.name} scored the highest {metric}{among}: {best.metrics[metric]:.3f} (95% CI "
        f"{lo:.3f}-{hi:.3f}, n={len(best.scores)})"
    )


def _prefer_cheaper(
    best: Evaluation, pool: list[Evaluation], metric: str, costing: Costing, tolerance: float
) -> tuple[Evaluation, list[str]]:
    """The first contender shown equivalent to `best` within `tolerance` (two one-sided tests): below an LLM `best`,
    one without an LLM first (cheaper or not: then the task may not need an LLM), then the cheaper ones in cost
    order; with a reason per contender tried. One the rows cannot show within the tolerance is not chosen, however
    close its point estimate: its reason says what it might save and the rows that would settle it."""

    def order(e: Evaluation) -> tuple:
        return (e.llm or not best.llm, costing.key(e))

    reasons = []
    for e in sorted(
        (e for e in pool if e is not best and (costing.key(e) < costing.key(best) or (best.llm and not e.llm))),
        key=order,
    ):
        cheaper = costing.key(e) < costing.key(best)
        same = equivalence(best.scores, e.scores, tolerance)
        within = (
            f"{e.metrics[metric]:.3f} vs {best.metrics[metric]:.3f}, difference {same.difference:+.3f} (90% paired "
            f"CI {same.low:+.3f} to {same.high:+.3f}"
        )
        if not same.shown:
            diff, dlo, dhi = paired_difference(best.scores, e.scores)
            test, p = paired_test(best.scores, e.scores)
            if p < ALPHA:
                reasons.append(
                    f"{best.name} beats the {'cheaper ' if cheaper else ''}{e.name}: "
                    f"{best.metrics[metric]:.3f} vs {e.metrics[metric]:.3f}, difference {diff:+.3f} "
                    f"(95% paired CI {dlo:+.3f} to {dhi:+.3f}; {test} {_p(p)})"
                )
            else:
                saving = costing.words(e, best) if cheaper else "needs no LLM"
                reasons.append(_unsettled(e, best, metric, same, within, saving))
            continue
        shown = f"{within}, inside the tolerance of {tolerance:g} {metric}: two one-sided tests at 5%)"
        if best.llm and not e.llm:
            reasons.append(
                f"the task may not need an LLM: {e.name} is as good as {best.name} within the tolerance "
                f"({shown}) and {'far cheaper' if cheaper else 'needs no LLM'}: {costing.words(e, best)}"
            )
        else:
            reasons.append(
                f"{e.name} is as good within the tolerance: {shown}, and it is cheaper ({costing.words(e, best)}), so "
                "prefer it"
            )
        return e, reasons
    return best, reasons


def _unsettled(e: Evaluation, best: Evaluation, metric: str, same, within: str, saving: str) -> str:
    """Why a cheaper contender the test rows cannot show within the tolerance of the best is not chosen."""
    if same.rows_to_show is not None:
        settle = f"about {same.rows_to_show:,} test rows would settle it if the gap stays this size"
    elif abs(same.difference) >= same.tolerance:
        settle = "the measured gap is already at or beyond the tolerance"
    else:
        settle = "the rows give no spread to size how many more would settle it"
    return (
        f"{e.name} might be as good as {best.name}, but the test rows do not show it: {within}) reaches beyond the "
        f"tolerance of {same.tolerance:g} {metric} (constraints.tolerance); {settle}; choosing it would save: "
        f"{saving}; {best.name} is chosen on its higher score"
    )


def _no_llm_needed(
    choice: Evaluation, best: Evaluation, evaluations: list[Evaluation], metric: str, costing: Costing
) -> list[str]:
    """A contender without an LLM best outright: its margin over the best LLM contender, and what it saves."""
    llm = [e for e in evaluations if e.llm]
    if choice is not best or best.llm or not llm:
        return []
    top = max(llm, key=lambda e: e.metrics[metric])
    diff, dlo, dhi = paired_difference(best.scores, top.scores)
    test, p = paired_test(best.scores, top.scores)
    return [
        f"the task may not need an LLM: {best.name} scores {diff:+.3f} {metric} against the best LLM "
        f"strategy, {top.name} "
        f"({best.metrics[metric]:.3f} vs {top.metrics[metric]:.3f}, 95% paired CI {dlo:+.3f} to "
        f"{dhi:+.3f}; {test} {_p(p)}), at {costing.words(best, top)}"
    ]


def _running_words(choice: Evaluation) -> list[str]:
    if choice.trains:
        return [
            f"{choice.name} took {choice.fit_seconds:.0f} s to train; it answers in "
            f"{choice.latency_ms_mean:.0f} ms per query with {choice.prompt_tokens_mean:.0f} prompt "
            "tokens"
        ]
    if choice.llm:
        return [
            f"{choice.name} needs no training; it answers in {choice.latency_ms_mean:.0f} ms per "
            f"query with {choice.prompt_tokens_mean:.0f} prompt tokens"
        ]
    return []


def _floor_reasons(
    choice: Evaluation, evaluations: list[Evaluation], trivial: Evaluation | None, metric: str, words: str
) -> list[str]:
    """The choice against the trivial reference, and every other contender that does not beat it significantly."""
    if trivial is None:
        return []
    if beats(choice, trivial):
        out = [
            f"{choice.name} answers better than {_reference_words(trivial, words)} significantly: "
            f"{_versus(choice, trivial, metric)}"
        ]
    else:  # above the trivial reference, but not significantly
        rows = power(choice.scores, trivial.scores)["rows_to_settle"]
        out = [
            f"{choice.name} scores above {_reference_words(trivial, words)}, but the test rows "
            f"cannot tell them apart: {_versus(choice, trivial, metric)}"
            + (f"; about {rows:,} rows would settle it" if rows else "")
            + ("; it needs no LLM" if not choice.llm else "")
            + "; it is the better bet until more test rows say otherwise"
        ]
    return out + [
        _short_of(e, trivial, metric)
        for e in evaluations
        if not e.constant and e is not choice and not beats(e, trivial)
    ]


def _short_of(e: Evaluation, trivial: Evaluation, metric: str) -> str:
    """A contender that does not beat the trivial reference: worse than it (significantly), or not told apart from
    it."""
    if beats(trivial, e):
        return f"{e.name} answers worse than the {trivial.name} baseline: {_versus(e, trivial, metric)}"
    return f"{e.name} does not beat the {trivial.name} baseline significantly: {_versus(e, trivial, metric)}"


def flag_reasons(evaluations: list[Evaluation], choice: Evaluation | None = None) -> list[str]:
    """Each contender with degenerate answers named with its findings: not recommended, or (`choice`, when every
    contender that could be recommended has findings) recommended with a caution."""
    out = []
    for e in (e for e in evaluations if e.flags):
        if e is choice:
            out.append(
                f"{e.name} is recommended although it {'; '.join(e.flags)}: no contender without "
                "such findings is left to recommend; read its answers before relying on it"
            )
        else:
            out.append(f"{e.name} is not recommended: it {'; '.join(e.flags)}")
    return out


def flag_warnings(e: Evaluation, choice: str | None = None) -> list[str]:
    """A warning per contender with degenerate answers, its findings in words."""
    if not e.flags:
        return []
    return [
        f"{e.name}: {'; '.join(e.flags)} — "
        + (
            "recommended only because no contender without such findings is left; check its answers"
            if e.name == choice
            else "not recommended"
        )
    ]


def inconclusive_reasons(
    evaluations: list[Evaluation],
    metric: str,
    choice: Evaluation,
    costing: Costing | None = None,
    tolerance: float | None = None,
) -> list[str]:
    """When the paired test cannot tell the best from the runner-up: "inconclusive", with what the test split could
    detect and the rows that would settle the gap; and the choice named for what it then is, a default by cost."""
    pair = top_two(evaluations, metric)
    if pair is None:
        return []
    best, runner_up = pair
    test, p = paired_test(best.scores, runner_up.scores)
    if p < ALPHA:
        return []
    diff, dlo, dhi = paired_difference(best.scores, runner_up.scores)
    split = power(best.scores, runner_up.scores)
    n = len(best.scores)
    words = (
        f"inconclusive between {best.name} and {runner_up.name}: difference {diff:+.3f} {metric} (95% CI "
        f"{dlo:+.3f} to {dhi:+.3f}; {test} {_p(p)})"
    )
    if split["detectable_difference"] is None:
        words += (
            f"; the two differ by the same amount on all {n} test rows, which gives no spread to size a "
            "detectable difference by"
        )
    else:
        words += (
            f"; the test split ({n} rows) could detect differences of about "
            f"{split['detectable_difference']:.3f} (80% power, 5% level)"
        )
        words += (
            f"; about {split['rows_to_settle']:,} rows would settle a gap this size"
            if split["rows_to_settle"]
            else "; the observed gap is 0, which no number of rows would settle"
        )
    costing = costing or Costing()
    if choice is not best:
        default = (
            f"{choice.name} is a default by cost, not a measured winner: it is the cheapest contender shown within "
            f"the tolerance ({tolerance if tolerance is not None else default_tolerance(metric):g} {metric}) of "
            f"{best.name}"
        )
    elif costing.key(runner_up) < costing.key(best):
        default = (
            f"{best.name} is the better bet, not a measured winner: it scored highest, and the cheaper "
            f"{runner_up.name} is not shown to be as good"
        )
    else:
        default = (
            f"{best.name} is a default by cost, not a measured winner: it scored highest and "
            f"{runner_up.name} is not cheaper ({costing.words(best, runner_up)})"
        )
    return [words, default]


def _chance_words(choice: Evaluation, metric: str, chances: dict[str, float]) -> str:
    others = sorted(((name, p) for name, p in chances.items() if name != choice.name), key=lambda item: -item[1])[:3]
    words = (
        f"P(best) for {choice.name}: {chances.get(choice.name, float('nan')):.0%}, the share of "
        f"{P_BEST_RESAMPLES:,} bootstrap resamples of the test rows in which it scores the highest "
        f"{metric}"
    )
    return words + (" (" + ", ".join(f"{name} {p:.0%}" for name, p in others) + ")" if others else "")


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _warnings(evaluations: list[Evaluation], n_labels: int, choice: str | None = None) -> list[str]:
    return [w for e in evaluations for w in collapse_warnings(e, n_labels) + cut_warnings(e) + flag_warnings(e, choice)]
