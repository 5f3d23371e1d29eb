"""`recommend`: pure functions from evaluations to a choice and its reasons.

Rule: the best headline score wins unless a cheaper contender is not significantly
worse (the 95% paired-bootstrap interval of the difference contains 0); then the
cheapest such contender wins and the reason says so. "Cheaper" goes by its kind's
tier (adaptlab.kinds: no LLM, then an LLM prompted, then an LLM trained), then
measured latency per query.

The baselines are contenders too: when a constant answer (the majority label) is not
significantly worse than the best, nothing learned anything usable and the advice is
to collect more (or cleaner) data; when a classifier without an LLM is, the task may
not need an LLM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adaptlab.config import ConstraintsConfig
from adaptlab.decide.constraints import factor_reasons, rule_out
from adaptlab.evaluation import Evaluation

COLLECT_MORE_DATA = "collect_more_data"
NONE_FITS = "none_meets_the_constraints"


@dataclass(frozen=True)
class Decision:
    choice: str
    reasons: list[str]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"choice": self.choice, "reasons": self.reasons, "warnings": self.warnings}


def paired_difference(a: list[float], b: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b over the same rows, with its 95% paired-bootstrap interval."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def pairwise(evaluations: list[Evaluation], resamples: int = 2000, seed: int = 0) -> list[dict]:
    """Every two strategies on the same test rows: mean difference of the headline score (a - b), its 95%
    paired-bootstrap interval, and the two-sided bootstrap p-value (twice the smaller tail of the resampled
    differences beyond 0, at most 1)."""
    out = []
    for i, a in enumerate(evaluations):
        for b in evaluations[i + 1 :]:
            diff = np.asarray(a.scores, dtype=float) - np.asarray(b.scores, dtype=float)
            rng = np.random.default_rng(seed)
            means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
            p_value = 1.0 if not diff.any() else min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
            out.append({"a": a.name, "b": b.name, "difference": float(diff.mean()), "ci95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))], "p_value": p_value})
    return out


def _cost_key(e: Evaluation) -> tuple:
    return (e.tier, e.latency_ms_mean)


def collapse_warnings(e: Evaluation, n_labels: int) -> list[str]:
    """A warning when a classifier predicts few of the labels or mostly one label (a constant baseline excepted: that is its design)."""
    if e.constant:
        return []
    out = []
    if e.labels_predicted is not None and n_labels and e.labels_predicted < n_labels / 2:
        out.append(f"{e.name} predicted only {e.labels_predicted} of {n_labels} labels")
    if e.top_label_share is not None and e.top_label_share > 0.5:
        out.append(f"{e.name} gave one label to {e.top_label_share:.0%} of the test queries")
    return out


def cut_warnings(e: Evaluation) -> list[str]:
    """A warning when answers hit the token limit: they may be incomplete, and their scores with them."""
    if not e.answers_cut:
        return []
    return [f"{e.name}: {e.answers_cut} of {len(e.predictions)} answers were cut at {e.answer_limit} tokens (task.max_new_tokens); if answers should be longer, raise it"]


def recommend(evaluations: list[Evaluation], metric: str, n_labels: int = 0, constraints: ConstraintsConfig | None = None, costs: dict[str, dict] | None = None, break_even: list[dict] | None = None) -> Decision:
    """Choose among evaluated strategies; every reason quotes the figures (or stated constraints) it rests on."""
    if not evaluations:
        raise ValueError("nothing to recommend from: no evaluations")
    constraints = constraints or ConstraintsConfig()
    everything = evaluations
    evaluations, ruled_out = rule_out(evaluations, constraints, costs)
    if not evaluations:
        return Decision(NONE_FITS, ruled_out + ["no strategy meets the constraints; relax one of them, or measure on faster hardware"], _warnings(everything, n_labels))
    decision = _choose(evaluations, metric, n_labels)
    return Decision(decision.choice, decision.reasons + knowledge_reasons(decision.choice, evaluations) + ruled_out + factor_reasons(decision.choice, constraints, break_even, next((e.family for e in evaluations if e.name == decision.choice), None)), _warnings(everything, n_labels))


def _choose(evaluations: list[Evaluation], metric: str, n_labels: int) -> Decision:
    best = max(evaluations, key=lambda e: (e.metrics[metric], -_cost_key(e)[0], -e.latency_ms_mean))
    lo, hi = best.ci.get(metric, (float("nan"), float("nan")))
    reasons = [f"{best.name} scored the highest {metric}: {best.metrics[metric]:.3f} (95% CI {lo:.3f}-{hi:.3f}, n={len(best.scores)})"]
    choice = best
    for e in sorted((e for e in evaluations if e is not best and _cost_key(e) < _cost_key(best)), key=_cost_key):
        diff, dlo, dhi = paired_difference(best.scores, e.scores)
        figures = f"{e.metrics[metric]:.3f} vs {best.metrics[metric]:.3f}, difference {diff:+.3f} (95% paired CI {dlo:+.3f} to {dhi:+.3f})"
        if dlo <= 0 <= dhi:
            if e.constant:
                reasons.append(f"no strategy beats always answering {e.solver.get('label', 'the most frequent label')!r} significantly: {e.name} scores {figures}; collect more (or cleaner) labeled data before choosing")
                return Decision(COLLECT_MORE_DATA, reasons, _warnings(evaluations, n_labels))
            if not e.llm:
                reasons.append(f"the task may not need an LLM: {e.name} is not significantly worse than {best.name} ({figures}) and far cheaper: {_cost_words(e, best)}")
            else:
                reasons.append(f"{e.name} is not significantly worse: {figures}, and it is cheaper ({_cost_words(e, best)}), so prefer it")
            choice = e
            break
        reasons.append(f"{best.name} beats the cheaper {e.name}: {best.metrics[metric]:.3f} vs {e.metrics[metric]:.3f}, difference {diff:+.3f} (95% paired CI {dlo:+.3f} to {dhi:+.3f})")
    llm = [e for e in evaluations if e.llm]
    if choice is best and not best.llm and not best.constant and llm:
        top = max(llm, key=lambda e: e.metrics[metric])
        diff, dlo, dhi = paired_difference(best.scores, top.scores)
        reasons.append(
            f"the task may not need an LLM: {best.name} scores {diff:+.3f} {metric} against the best LLM strategy, {top.name} "
            f"({best.metrics[metric]:.3f} vs {top.metrics[metric]:.3f}, 95% paired CI {dlo:+.3f} to {dhi:+.3f}), at {_cost_words(best, top)}"
        )
    if choice.family == "fine_tuned":
        reasons.append(f"{choice.name} took {choice.fit_seconds:.0f} s to train; it answers in {choice.latency_ms_mean:.0f} ms per query with {choice.prompt_tokens_mean:.0f} prompt tokens")
    elif choice.llm:
        reasons.append(f"{choice.name} needs no training; it answers in {choice.latency_ms_mean:.0f} ms per query with {choice.prompt_tokens_mean:.0f} prompt tokens")
    reasons += _not_beating_majority(evaluations, metric)
    return Decision(choice.name, reasons, _warnings(evaluations, n_labels))


def knowledge_reasons(choice: str, evaluations: list[Evaluation]) -> list[str]:
    """Knowledge tasks: the choice's abstention, hallucination, unsupported figures and retrieval beside the others'
    (the headline score weighs abstaining right; these say how it gets there)."""
    chosen = next((e for e in evaluations if e.name == choice), None)
    if chosen is None or "unsupported_figures" not in chosen.metrics and "hallucination_rate" not in chosen.metrics:
        return []

    def rate(e: Evaluation, key: str) -> str:
        lo, hi = e.ci.get(key, (float("nan"), float("nan")))
        return f"{e.metrics[key]:.0%} (95% CI {lo:.0%}-{hi:.0%})"

    out = []
    others = [e for e in evaluations if e is not chosen and e.llm]
    for key, words in (
        ("hallucination_rate", "answered {} of the questions the documents do not answer (hallucination)"),
        ("false_abstention_rate", "said it did not know on {} of the answerable questions"),
        ("unsupported_figures", "stated a figure found in neither its passages nor the reference in {} of its answers"),
    ):
        if key in chosen.metrics:
            beside = ", ".join(f"{e.name} {e.metrics[key]:.0%}" for e in others if key in e.metrics)
            out.append(f"{chosen.name} {words.format(rate(chosen, key))}" + (f"; {beside}" if beside else ""))
    if "recall_at_k" in chosen.metrics:
        out.append(f"{chosen.name}'s retriever put a gold source among the passages for {rate(chosen, 'recall_at_k')} of the questions with sources (MRR {chosen.metrics['mrr']:.2f})")
    return out


def _not_beating_majority(evaluations: list[Evaluation], metric: str) -> list[str]:
    majority = next((e for e in evaluations if e.constant), None)
    if majority is None:
        return []
    out = []
    for e in evaluations:
        if not e.llm:
            continue
        diff, dlo, dhi = paired_difference(e.scores, majority.scores)
        if dlo <= 0:
            out.append(f"{e.name} does not beat the {majority.name} baseline significantly: {e.metrics[metric]:.3f} vs {majority.metrics[metric]:.3f} (difference {diff:+.3f}, 95% paired CI {dlo:+.3f} to {dhi:+.3f})")
    return out


def _warnings(evaluations: list[Evaluation], n_labels: int) -> list[str]:
    return [w for e in evaluations for w in collapse_warnings(e, n_labels) + cut_warnings(e)]


def _cost_words(cheap: Evaluation, dear: Evaluation) -> str:
    words = f"{cheap.latency_ms_mean:.0f} ms per query vs {dear.latency_ms_mean:.0f} ms"
    if dear.family == "fine_tuned" or not cheap.llm:
        words += f", {cheap.fit_seconds:.1f} s to fit vs {dear.fit_seconds:.1f} s"
    return words
