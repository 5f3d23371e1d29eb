"""`recommend`: pure functions from evaluations to a choice and its reasons.

Rule: the best headline score wins unless a cheaper strategy is not significantly
worse (the 95% paired-bootstrap interval of the difference contains 0); then the
cheaper one wins and the reason says so. "Cheaper" is, in order: needs no
training (zero_shot, few_shot) before needs training (lora, full); then lower
measured latency per query.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adaptlab.evaluation import Evaluation

NEEDS_TRAINING = {"lora", "full"}


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


def _cost_key(e: Evaluation) -> tuple:
    return (e.name in NEEDS_TRAINING, e.latency_ms_mean)


def collapse_warnings(e: Evaluation, n_labels: int) -> list[str]:
    """A warning when a classifier predicts few of the labels or mostly one label."""
    out = []
    if e.labels_predicted is not None and n_labels and e.labels_predicted < n_labels / 2:
        out.append(f"{e.name} predicted only {e.labels_predicted} of {n_labels} labels")
    if e.top_label_share is not None and e.top_label_share > 0.5:
        out.append(f"{e.name} gave one label to {e.top_label_share:.0%} of the test queries")
    return out


def recommend(evaluations: list[Evaluation], metric: str, n_labels: int = 0) -> Decision:
    """Choose among evaluated strategies; every reason quotes the figures it rests on."""
    if not evaluations:
        raise ValueError("nothing to recommend from: no evaluations")
    best = max(evaluations, key=lambda e: (e.metrics[metric], -_cost_key(e)[0], -e.latency_ms_mean))
    lo, hi = best.ci95.get(metric, (float("nan"), float("nan")))
    reasons = [f"{best.name} scored the highest {metric}: {best.metrics[metric]:.3f} (95% CI {lo:.3f}-{hi:.3f}, n={len(best.scores)})"]
    choice = best
    cheaper = sorted((e for e in evaluations if e is not best and _cost_key(e) < _cost_key(best)), key=_cost_key)
    for e in cheaper:
        diff, dlo, dhi = paired_difference(best.scores, e.scores)
        if dlo <= 0 <= dhi:
            reasons.append(
                f"{e.name} is not significantly worse: {e.metrics[metric]:.3f} vs {best.metrics[metric]:.3f}, "
                f"difference {diff:+.3f} (95% paired CI {dlo:+.3f} to {dhi:+.3f}), and it is cheaper "
                f"({_cost_words(e, best)}), so prefer it"
            )
            choice = e
            break
        reasons.append(f"{best.name} beats the cheaper {e.name} by {diff:+.3f} {metric} (95% paired CI {dlo:+.3f} to {dhi:+.3f})")
    if choice.name in NEEDS_TRAINING:
        reasons.append(f"{choice.name} took {choice.fit_seconds:.0f} s to train; it answers in {choice.latency_ms_mean:.0f} ms per query with {choice.prompt_tokens_mean:.0f} prompt tokens")
    else:
        reasons.append(f"{choice.name} needs no training; it answers in {choice.latency_ms_mean:.0f} ms per query with {choice.prompt_tokens_mean:.0f} prompt tokens")
    warnings = [w for e in evaluations for w in collapse_warnings(e, n_labels)]
    return Decision(choice.name, reasons, warnings)


def _cost_words(cheap: Evaluation, dear: Evaluation) -> str:
    if cheap.name not in NEEDS_TRAINING and dear.name in NEEDS_TRAINING:
        return f"no training, vs {dear.fit_seconds:.0f} s for {dear.name}"
    return f"{cheap.latency_ms_mean:.0f} ms per query vs {dear.latency_ms_mean:.0f} ms"
