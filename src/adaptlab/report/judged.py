"""report.html's judged-quality section: who rated and who judged, the judged win-rate matrix, the judge's agreement
with people with its intervals, and the rated rows where the judge and people disagree.

It reads the typed `results.Judged` (results.json's `judged`), never string keys of a dict.
"""

from __future__ import annotations

from html import escape

from adaptlab.report.drawing import note
from adaptlab.results import Agreement, Figure, Judged, JudgedMeasures, PredictionRow

SHOWN_DISAGREEMENTS = 12  # rows where the judge and people differ, shown with their answers


def judged_section(judged: Judged, predictions: dict[str, list[PredictionRow]]) -> str:
    """The whole section; `predictions` maps each contender to its answers (results.json's strategies)."""
    parts = [_who(judged), win_rate_table(judged.measures), pair_matrix(judged.measures)]
    if judged.judge_measures is not None:
        parts.append(
            "<h3>The judge's own figures: not trusted, shown and not used</h3>" + win_rate_table(judged.judge_measures)
        )
    if judged.agreement is not None:
        parts.append("<h3>The judge against people</h3>" + agreement_table(judged.agreement))
        parts.append(disagreement_rows(judged.agreement, predictions))
    return "\n".join(parts)


def _who(judged: Judged) -> str:
    m = judged.measures
    judge = judged.judge or {}
    model = judge.get("model")
    name = model.get("name") if isinstance(model, dict) else model
    judge_words = (
        f"judge {escape(str(name or '?'))} (rubric sha256 {escape(str(judge.get('rubric_sha256', '?'))[:12])}, "
        f"template {escape(str(judge.get('template_sha256', '?'))[:12])})"
        if judged.judge
        else "no judge: the headline metric is the proxy people correct"
    )
    reviewers = ", ".join(escape(r) for r in judged.reviewers) or "nobody"
    calibrated = (
        "<span class=warn>uncalibrated: nobody rated these rows, so these are the proxy's own figures, not "
        "people's</span>"
        if not m.calibrated
        else f"people's ratings correct the {escape(m.proxy)} (prediction-powered inference)"
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in m.notes)
    return (
        f"<p>{judged.ratings} ratings by {reviewers}; {judge_words}. Figures rest on {escape(m.source)}: "
        f"{calibrated}. Intervals: {m.level:.0%}.</p>" + (f"<ul class=muted>{notes}</ul>" if notes else "")
    )


def _interval(ci: list[float] | None, spec: str = ".2f") -> str:
    return f"{ci[0]:{spec}}-{ci[1]:{spec}}" if ci else ""


def win_rate_table(measures: JudgedMeasures) -> str:
    """One row per contender: its judged win rate against the others, the interval and P(best)."""
    if not measures.contenders:
        return note("No contender was judged.")
    rows = "".join(
        f"<tr><td>{escape(c.name)}</td><td>{c.win_rate:.2f}</td><td>{_interval(c.ci)}</td>"
        f"<td>{'' if c.p_best is None else f'{c.p_best:.2f}'}</td><td>{c.opponents}</td></tr>"
        for c in sorted(measures.contenders, key=lambda c: -c.win_rate)
    )
    return (
        "<table><tr><th>contender</th><th>judged win rate</th><th>interval</th><th>P(best)</th>"
        f"<th>opponents</th></tr>{rows}</table><p class=muted>P(best): {escape(measures.p_best_method)}</p>"
    )


def pair_matrix(measures: JudgedMeasures) -> str:
    """Row contender preferred over column contender: the estimate, its interval, and the rows people rated."""
    names = [c.name for c in measures.contenders]
    if len(names) < 2:
        return ""
    cells = {}
    for p in measures.pairs:
        cells[(p.a, p.b)] = (p.estimate, p.ci, p.n_rated)
        cells[(p.b, p.a)] = (1 - p.estimate, None if p.ci is None else [1 - p.ci[1], 1 - p.ci[0]], p.n_rated)
    head = "<tr><th>preferred over &rarr;</th>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"
    body = ""
    for row in names:
        body += f"<tr><th>{escape(row)}</th>"
        for col in names:
            cell = cells.get((row, col))
            body += (
                "<td></td>"
                if cell is None
                else f"<td>{cell[0]:.2f}<br><span class=muted>{_interval(cell[1])} · {cell[2]} rated</span></td>"
            )
        body += "</tr>"
    return f"<table class=matrix>{head}{body}</table>"


def _figure(name: str, f: Figure | None, spec: str = ".2f") -> str:
    if f is None:
        return ""
    value = "n/a" if f.value is None else f"{f.value:{spec}}"
    return (
        f"<tr><td>{escape(name)}</td><td>{value}</td><td>{_interval(f.ci, spec)}</td><td>{f.n}</td>"
        f"<td class=muted>{escape(f.note or '')}</td></tr>"
    )


def agreement_table(found: Agreement) -> str:
    """Raw agreement, kappa, the score correlations, position consistency and length bias, each with its interval."""
    rows = "".join(
        [
            _figure("raw agreement", found.raw),
            _figure("Cohen's kappa (a, b, tie)", found.kappa),
            _figure("weighted kappa (1-5 scores)", found.weighted_kappa),
            _figure("Kendall's tau (1-5 scores)", found.kendall_tau),
            _figure("position consistency (verdict survives the swap)", found.position_consistency),
            _figure("longer answer wins, by the judge", found.longer_wins_judge),
            _figure("longer answer wins, by people", found.longer_wins_people),
            _figure("reviewers' own kappa (the ceiling)", found.reviewers_kappa),
        ]
    )
    trusted = (
        "<p><b>trusted</b>: the recommendation may rest on it</p>"
        if found.trusted
        else "<p class=warn><b>not trusted</b>: its figures are shown; the recommendation does not rest on them</p>"
    )
    reasons = "".join(f"<li>{escape(r)}</li>" for r in found.reasons)
    return (
        f"{trusted}<table><tr><th>measure</th><th>value</th><th>95% interval</th><th>n</th><th></th></tr>{rows}"
        f"</table><ul>{reasons}</ul>"
    )


def disagreement_rows(found: Agreement, predictions: dict[str, list[PredictionRow]]) -> str:
    """The rated rows where the judge's verdict differs from the reviewer's, with both answers."""
    if not found.disagreements:
        return note("The judge agreed with people on every rated row.")
    rows = ""
    for d in found.disagreements[:SHOWN_DISAGREEMENTS]:
        a, b = predictions.get(d.a, []), predictions.get(d.b, [])
        question = a[d.row].input if d.row < len(a) else ""
        rows += (
            f"<tr><td>{d.row}</td><td class=text>{escape(question[-400:])}</td>"
            f"<td class=text><b>{escape(d.a)}</b>: {escape(a[d.row].predicted if d.row < len(a) else '')}</td>"
            f"<td class=text><b>{escape(d.b)}</b>: {escape(b[d.row].predicted if d.row < len(b) else '')}</td>"
            f"<td>{escape(d.people)} ({escape(d.reviewer)})</td><td>{escape(d.judge)}</td></tr>"
        )
    more = len(found.disagreements) - SHOWN_DISAGREEMENTS
    return (
        f"<h3>Where the judge and people disagree ({len(found.disagreements)} rated pairs)</h3>"
        "<table><tr><th>row</th><th>input</th><th>a</th><th>b</th><th>people</th><th>judge</th></tr>"
        f"{rows}</table>" + (note(f"{more} more in results.json's judged.agreement.disagreements") if more > 0 else "")
    )
