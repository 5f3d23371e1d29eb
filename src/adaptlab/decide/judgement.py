"""What the judged measure says of the choice: the recommendation's reasons where people (and a judge calibrated by
them) agree or disagree with the headline metric, and the choice itself under `task.headline: judged`.

Pure functions over the typed judged figures (decide.judged, decide.agreement). The figures count only when people
rated some rows: a judge nobody checked is shown as uncalibrated and the recommendation never rests on it; nor does it
rest on a judge whose agreement with people is too low (`Agreement.trusted`), whose numbers are still shown.

    >>> from adaptlab.results import JudgedMeasures
    >>> m = JudgedMeasures(proxy="judge", source="judge only (uncalibrated)", calibrated=False, level=0.95, pairs=[],
    ...                    contenders=[], p_best_method="-")
    >>> usable(m, None)[0]
    False
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adaptlab.results import Agreement, JudgedMeasures

HEADLINE = "judged"  # task.headline: judged makes the judged win rate the headline


@dataclass(frozen=True)
class Judgement:
    """The choice under the judged measure (None: it does not decide), and its reasons and warnings."""

    choice: str | None
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def usable(measures: JudgedMeasures, agreement: Agreement | None) -> tuple[bool, str]:
    """Whether a decision may rest on the judged figures (some pair is corrected by people, and an untrusted judge
    weighs in none of them: where its verdicts carried no information they rest on people alone), and why not."""
    if not any(p.calibrated for p in measures.pairs):
        return False, (
            f"the judged figures rest on {measures.source}: no person rated enough rows to correct the "
            f"{measures.proxy}, so they are shown as uncalibrated and nothing rests on them "
            "(rate rows with `adaptlab review RUN`)"
        )
    judge_counts = any(p.calibrated and measures.proxy in p.source for p in measures.pairs)  # PPI gave it weight
    if measures.proxy == "judge" and agreement is not None and not agreement.trusted and judge_counts:
        why = agreement.reasons[0] if agreement.reasons else "its agreement with people is too low"
        return False, (
            f"the judge is not trusted ({why}); its figures are shown and the recommendation does not rest on them"
        )
    return True, ""


def _pair(measures: JudgedMeasures, x: str, y: str) -> tuple[float, list[float] | None] | None:
    """P(x preferred over y) and its interval, oriented from x's side; None when people did not rate the pair (an
    uncalibrated proxy is no evidence)."""
    for p in measures.pairs:
        if not p.calibrated:
            continue
        if (p.a, p.b) == (x, y):
            return p.estimate, p.ci
        if (p.a, p.b) == (y, x):
            return 1 - p.estimate, None if p.ci is None else [1 - p.ci[1], 1 - p.ci[0]]
    return None


def _words(measures: JudgedMeasures, x: str, y: str) -> str:
    found = _pair(measures, x, y)
    if found is None:
        return f"people did not rate {x} against {y}"
    estimate, ci = found
    interval = "" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    source = next(p.source for p in measures.pairs if {p.a, p.b} == {x, y})
    return f"{x} preferred over {y} {estimate:.0%} of the time{interval} ({source})"


def _beats(measures: JudgedMeasures, x: str, y: str) -> bool:
    """x preferred over y beyond the interval (its low end above one half), on a pair people rated."""
    found = _pair(measures, x, y)
    return found is not None and found[1] is not None and found[1][0] > 0.5


def judgement(
    choice: str,
    order: list[str],
    candidates: list[str],
    measures: JudgedMeasures,
    agreement: Agreement | None,
    headline: bool,
    metric: str,
) -> Judgement:
    """The judged measure's word on `choice` (the headline metric's pick): `order` ranks the contenders by that
    metric, best first; `candidates` are those the recommendation may choose (not ruled out, not degenerate).

    Only pairs people rated count. The judged pick is the candidate no other beats beyond the interval, the highest
    judged win rate among several. With `headline` (task.headline: judged) and usable figures it is the choice;
    otherwise the choice stays and the reasons say where the judged measure disagrees with `metric`. A judge that is
    not trusted adds a warning to every answer (`_untrusted`)."""
    warned = _untrusted(agreement)
    ok, why = usable(measures, agreement)
    if not ok:
        return warned(Judgement(None, [why] if headline else [], [why] if headline else []))
    judged = [c for c in candidates if any(c in (p.a, p.b) for p in measures.pairs if p.calibrated)]
    if not judged:
        return warned(
            Judgement(None, [f"people rated no candidate, so the judged measure decides nothing ({metric} does)"])
        )
    unbeaten = [c for c in judged if not any(_beats(measures, o, c) for o in judged if o != c)]
    if not unbeaten:
        return warned(Judgement(None, ["the judged pairs form a cycle (each beaten by another): they decide nothing"]))
    rate = {c.name: c.win_rate for c in measures.contenders}
    best = max(unbeaten, key=lambda c: rate.get(c, 0.0))
    best_words = f"no contender is preferred over {best} beyond the interval; its judged win rate is {rate[best]:.0%}"
    if headline:
        return warned(_headline_choice(best, best_words, judged, measures))
    beaters = [x for x in judged if x != choice and _beats(measures, x, choice)]
    if choice not in judged:
        reasons = [f"{best_words}; {metric} chose {choice}, which people did not rate"]
    elif beaters:
        reasons = [
            f"people disagree with {metric} here: {_words(measures, beaters[0], choice)}, though {metric} ranks "
            f"{choice} first; read the rows on the review page before you ship"
        ]
    elif best == choice:
        reasons = [f"the judged measure agrees with {metric}: {best_words}"]
    else:
        reasons = [f"the judged measure does not separate {choice} from {best}: {_words(measures, best, choice)}"]
    told = {(choice, beaters[0])} if beaters else set()  # already said above
    reasons += [words for pair, words in _flips(order, measures, metric) if pair not in told]
    return warned(Judgement(None, reasons))


def _untrusted(agreement: Agreement | None):
    """What each of judgement's answers gets: a warning whenever the judge is not trusted (its own figures are then
    shown apart, and the judged measures rest on people's ratings and the metric)."""

    def warned(said: Judgement) -> Judgement:
        if agreement is None or agreement.trusted:
            return said
        why = agreement.reasons[0] if agreement.reasons else "its agreement with people is too low"
        warning = f"the judge is not trusted ({why}); the recommendation does not rest on its verdicts"
        return Judgement(said.choice, said.reasons, [w for w in said.warnings if "not trusted" not in w] + [warning])

    return warned


def _headline_choice(best: str, best_words: str, judged: list[str], measures: JudgedMeasures) -> Judgement:
    unsettled = [c for c in judged if c != best and not _beats(measures, best, c)]
    reasons = [f"the headline is the judged win rate (task.headline: judged): {best_words}"]
    if unsettled:
        reasons.append(
            "not separated from " + "; ".join(_words(measures, best, c) for c in unsettled) + ": more ratings would "
            "settle it"
        )
    return Judgement(best, reasons)


def _flips(order: list[str], measures: JudgedMeasures, metric: str) -> list[tuple[tuple[str, str], str]]:
    """Two contenders whose order by the judged measure is the reverse of their order by the metric, beyond the
    judged interval."""
    out = []
    for i, upper in enumerate(order):
        for lower in order[i + 1 :]:
            if _beats(measures, lower, upper):
                out.append(
                    ((upper, lower), f"{metric} ranks {upper} above {lower}, but {_words(measures, lower, upper)}")
                )
    return out
