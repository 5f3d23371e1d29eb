"""Reasons beside the choice, each from a measured figure: what the seed did (repeats, or a fine-tune trained once),
how a knowledge-task choice gets its score (abstention, hallucination, unsupported figures, retrieval), and what a
document update left stale and costs to absorb. `recommend` appends them to its own reasons."""

from __future__ import annotations

from adaptlab.decide.statistics import top_two
from adaptlab.evaluation import Evaluation


def seed_reasons(choice: str, evaluations: list[Evaluation], metric: str) -> list[str]:
    """What the seed did: each repeated contender's spread, and whether the gap between the top two lies within it;
    for a fine-tuned contender trained once, that its interval does not cover the seed."""
    out = [
        f"{e.name}'s {len(e.repeats)} repeats (seeds {e.repeat_seeds[0]}-{e.repeat_seeds[-1]}) "
        f"scored {', '.join(f'{r:.3f}' for r in e.repeats)} {metric}: a spread of "
        f"{max(e.repeats) - min(e.repeats):.3f}, inside its interval"
        for e in evaluations
        if e.repeats and e.repeat_seeds
    ]
    once = [e.name for e in evaluations if not e.repeats and e.trains]
    if once:
        out.append(
            f"{', '.join(once)} {'was' if len(once) == 1 else 'were'} trained once (repeats: 1): the "
            "interval covers the test rows, not the seed (data order and initial weights can move a "
            "small fine-tune by several points); set repeats: 3 to measure that"
        )
    pair = top_two(evaluations, metric)
    if pair:
        best, runner_up = pair
        gap = best.metrics[metric] - runner_up.metrics[metric]
        spreads = [(e.name, max(e.repeats) - min(e.repeats)) for e in pair if e.repeats]
        for name, spread in spreads:
            if gap < spread:
                out.append(
                    f"the gap between {best.name} and {runner_up.name} ({gap:.3f}) is within the "
                    f"spread of {name}'s repeats ({spread:.3f}): it may be a seed effect"
                )
                break
    return out


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
        out.append(
            f"{chosen.name}'s retriever put a gold source among the passages for "
            f"{rate(chosen, 'recall_at_k')} of the questions with sources (MRR "
            f"{chosen.metrics['mrr']:.2f})"
        )
    return out


def freshness_reasons(choice: str, updates: dict, data_changes: str | None) -> list[str]:
    """After a document update (measured without retraining): the choice's stale-answer share and what absorbing the
    change took, beside the others'; with constraints.data_changes, what that costs a month."""
    if choice not in updates:
        return []
    mine = updates[choice]

    def stale(u: dict) -> str:
        lo, hi = u["after"]["stale_ci"]
        return f"{u['after']['stale']:.0%} (95% CI {lo:.0%}-{hi:.0%})"

    from adaptlab.evaluation.freshness import absorbed_by

    others = "; ".join(
        f"{name} {stale(u)}, {absorbed_by(u['absorb'])}" for name, u in updates.items() if name != choice
    )
    out = [
        f"after the documents changed, {choice} still gave the old fact in {stale(mine)} of the "
        f"update questions ({mine['absorb']['note']})" + (f"; {others}" if others else "")
    ]
    if data_changes is not None:
        from adaptlab.decide.costs import CHANGES_PER_MONTH

        rate = CHANGES_PER_MONTH[data_changes]
        out.append(
            f"the documents change {data_changes} (~{rate:.3g} times a month): keeping {choice} "
            f"current costs ${mine['absorb']['dollars'] * rate:.4f} a month "
            f"({absorbed_by(mine['absorb'])}), counted in its total"
        )
    return out
