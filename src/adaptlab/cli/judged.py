"""Printing a run's judged figures (results.json's `judged`): shared by `adaptlab judge` and `adaptlab review`."""

from __future__ import annotations

from adaptlab.results import Judged


def print_judged(judged: Judged | None, reasons: list[str]) -> None:
    """Each contender's judged win rate with its interval and source, then the recommendation's judged reasons."""
    if judged is None:
        return
    m = judged.measures
    print(f"judged win rates ({m.source}; {judged.ratings} rating(s) by {', '.join(judged.reviewers) or 'nobody'}):")
    for c in sorted(m.contenders, key=lambda c: -c.win_rate):
        interval = f" [{c.ci[0]:.2f}, {c.ci[1]:.2f}]" if c.ci else ""
        mark = "" if c.calibrated else "  (uncalibrated)"
        print(f"  {c.name}: {c.win_rate:.2f}{interval}, P(best) {'?' if c.p_best is None else f'{c.p_best:.2f}'}{mark}")
    for reason in reasons:
        print(f"  {reason}")
