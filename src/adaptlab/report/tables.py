"""report.html's tables: the side-by-side scores and costs, the qa measures, the tuning searches, the
distillation students beside their teachers, the training data audit, one test conversation turn by turn, and the test
rows where the strategies disagree.

Every table renders from any results.json a run wrote, old ones included: a figure it lacks is blank (or "n/a", "?"),
and a table with nothing to show is a short muted line saying so.
"""

from __future__ import annotations

from html import escape

from adaptlab.report.drawing import ci_pair, note, number
from adaptlab.tasks import task_kind


def score_cell(value) -> str:
    """An audit score (0-100), or n/a."""
    return number(value, ".0f", "n/a")


def _flag(s: dict) -> str:
    """A degenerate contender's mark, its findings on hover."""
    return f" <span class=warn title='{escape('; '.join(s['flags']))}'>(degenerate)</span>" if s.get("flags") else ""


def ci_of(s: dict, metric: str) -> tuple[float, float] | None:
    """A contender's 95% interval of `metric` (`ci95`: results.json before every metric had an interval), or None."""
    return ci_pair((s.get("ci") or s.get("ci95") or {}).get(metric))


def side_by_side_table(results: dict, metric: str) -> str:
    """One row per contender: its score and interval, P(best), fit time, latency, prompt tokens and costs; a figure a
    run did not record is blank."""
    digits = task_kind(results["task"]["kind"]).metric(metric).digits
    with_p_best = any(s.get("p_best") is not None for s in results["strategies"])
    head = (
        f"<tr><th>contender</th><th>kind</th><th>{escape(metric)}</th><th>95% "
        f"CI</th>{'<th>P(best)</th>' if with_p_best else ''}<th>fit s</th><th>ms/query "
        "p50</th><th>p95</th><th>prompt tokens</th><th>$ / 1k queries</th><th>fit $</th></tr>"
    )
    rows = []
    for s in results["strategies"]:
        ci, spec = ci_of(s, metric), f".{digits}f"
        p_cell = f"<td>{number(s.get('p_best'), '.2f')}</td>" if with_p_best else ""
        rows.append(
            f"<tr><td>{escape(s['name'])}{_flag(s)}</td>"
            f"<td>{escape(str((s.get('traits') or {}).get('kind', s['name'])))}</td>"
            f"<td>{number((s.get('metrics') or {}).get(metric), spec, 'n/a')}</td>"
            f"<td>{f'{ci[0]:{spec}}-{ci[1]:{spec}}' if ci else ''}</td>{p_cell}"
            f"<td>{number(s.get('fit_seconds'), '.1f')}</td><td>{number(s.get('latency_ms_p50'), '.0f')}</td>"
            f"<td>{number(s.get('latency_ms_p95'), '.0f')}</td>"
            f"<td>{number(s.get('prompt_tokens_mean'), '.0f')}</td>"
            f"<td>{number(s.get('cost_per_1k_queries'), '.4f', '?')}</td>"
            f"<td>{number(s.get('fit_cost') or 0, '.4f', '?')}</td></tr>"
        )
    prices = results.get("cost_assumptions") or {}
    prices_note = (
        f"<p class=muted>Costs at ${escape(str(prices.get('dollars_per_hour', '?')))}/hour of "
        f"machine time on {escape(str(prices.get('device', '?')))} (set <code>costs</code> in the "
        "experiment).</p>"
        if prices
        else ""
    )
    return f"<table>{head}{''.join(rows)}</table>{prices_note}"


def knowledge_table(results: dict) -> str:
    """Every qa measure per contender, with its 95% interval; a measure that does not apply is blank."""
    spec = task_kind(results["task"]["kind"])
    measured = [s.get("metrics") or {} for s in results["strategies"]]
    shown = [
        (m.name, m.column or m.label, m.meaning)
        for m in spec.metrics
        if any(number(values.get(m.name)) for values in measured)
    ]  # short headers: 11 columns fit the page
    if not shown:
        return note("No qa measures recorded for any contender (a results.json from before they were measured).")
    head = (
        "<tr><th>contender</th>"
        + "".join(f"<th title='{escape(why)}'>{escape(col)}</th>" for _, col, why in shown)
        + "</tr>"
    )
    rows = []
    for s, values in zip(results["strategies"], measured):
        cells = []
        for key, _, _ in shown:
            value, ci = number(values.get(key)), ci_of(s, key)
            cells.append(f"<td>{value}{_ci_span(ci)}</td>" if value else "<td></td>")
        rows.append(f"<tr><td>{escape(s['name'])}{_flag(s)}</td>{''.join(cells)}</tr>")
    legend = "".join(f"<li><b>{escape(col)}</b>: {escape(why)}</li>" for _, col, why in shown)
    return f"<table>{head}{''.join(rows)}</table><ul class=muted>{legend}</ul>"


def tuning_of(s: dict) -> dict | None:
    """A contender's settings search (runs/tune.py's record under solver.tuning), or None: not tuned, or a kind's own
    training record under the same key (setfit's contrastive tuning: pairs and epochs, no trials)."""
    t = (s.get("solver") or {}).get("tuning")
    return t if isinstance(t, dict) and t.keys() & {"budget", "trials", "trials_run", "best"} else None


def tuning_table(tuned: list[dict], metric: str) -> str:
    """Per tuned contender: the budget it had and used, dev scores untuned and tuned, test scores untuned and tuned, the
    settings chosen."""
    head = (
        "<tr><th>contender</th><th>trials (budget)</th><th>seconds</th><th>dev: untuned</th><th>dev: "
        f"tuned</th><th>test {escape(metric)}: untuned</th><th>test: tuned</th><th>settings "
        "chosen</th></tr>"
    )
    rows = [_tuning_row(s, tuning_of(s) or {}, metric) for s in tuned]
    written = [
        _proposed(s["name"], t["proposer"])
        for s in tuned
        if isinstance((t := tuning_of(s) or {}).get("proposer"), dict)
    ]
    return (
        "<p class=muted>Every trial fitted on the training rows and was scored on the dev rows "
        "(never the test rows); the first trial is the contender's own settings, so the untuned "
        "figures are measured, not assumed. "
        "Instructions tried: the task's own, without the label list (or without the labels' "
        "meanings), a terse and a detailed phrasing, and any a proposer wrote (results.json: "
        "tuning.instructions).</p>"
        f"<table>{head}{''.join(rows)}</table>"
        + (f"<p>Instructions written by a proposer (tune.proposer):</p><ul>{''.join(written)}</ul>" if written else "")
    )


def _tuning_row(s: dict, t: dict, metric: str) -> str:
    """One tuned contender's row; a search that recorded no best trial (none finished within its budget) says so where
    the settings would be."""
    budget, untuned, best = t.get("budget") or {}, t.get("untuned") or {}, t.get("best") or {}
    trials = t.get("trials")
    ran = t.get("trials_run", len(trials) if isinstance(trials, list) else None)
    allowed = ", ".join(
        filter(
            None,
            [
                number(budget.get("trials"), "g"),
                number(budget.get("budget_minutes"), "g") and f"{budget['budget_minutes']:g} min",
            ],
        )
    )
    test = untuned.get("test")
    untuned_test = (
        number(test.get("score")) + _ci_span(ci_pair(test.get("ci")))
        if isinstance(test, dict)
        else ("the same" if test else "")
    )
    settings = best.get("settings")
    if isinstance(settings, dict):
        chosen = escape(", ".join(f"{k}: {v}" for k, v in settings.items()))
    else:
        chosen = (
            "<span "
            f"class=muted>{'no trial finished within the budget' if ran == 0 else 'no best trial recorded'}</span>"
        )
    return (
        f"<tr><td>{escape(s['name'])}</td>"
        f"<td>{number(ran, 'g', '?')}{f' ({allowed})' if allowed else ''}</td>"
        f"<td>{number(t.get('seconds'), '.0f')}</td>"
        f"<td>{number(untuned.get('dev_score'))}</td><td>{number(best.get('dev_score'))}</td><td>{untuned_test}</td>"
        f"<td>{number((s.get('metrics') or {}).get(metric), '.3f', 'n/a')}{_ci_span(ci_of(s, metric))}</td>"
        f"<td>{chosen}</td></tr>"
    )


def _ci_span(ci: tuple[float, float] | None) -> str:
    """An interval in small print under its score, or nothing."""
    return f"<br><span class='muted ci'>{ci[0]:.2f}-{ci[1]:.2f}</span>" if ci else ""


def _proposed(name: str, proposer: dict) -> str:
    """What a proposer wrote for one contender (tune.proposer), in a list item."""
    texts = "; ".join(f"<q>{escape(str(text))}</q>" for text in proposer.get("instructions") or []) or "nothing usable"
    return (
        f"<li>{escape(name)}: {escape(str(proposer.get('id', 'the proposer')))} wrote, from "
        f"{number(proposer.get('rows_shown'), 'g', '?')} dev rows its own instruction got wrong: "
        f"{texts}</li>"
    )


def distillation_table(students: dict) -> str:
    """Per student (runs/distill.py): its score beside its teacher's, what the teacher's labels cost, both costs per
    1,000 queries, and those numbers in words."""
    students = {name: d for name, d in (students or {}).items() if isinstance(d, dict)}
    if not students:
        return note("No contender learned from a teacher's labels in this run.")
    head = (
        "<tr><th>student</th><th>teacher</th><th>student score</th><th>teacher score</th><th>labeled "
        "rows</th><th>labeling s</th><th>labeling $</th><th>student $ / 1k queries</th><th>teacher $ / "
        "1k queries</th></tr>"
    )
    rows: list[str] = []
    words: list[object] = []  # the students' findings, as results.json holds them
    for name, d in students.items():
        lab = d.get("labeling") or {}
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{escape(str(d.get('teacher', '?')))}</td>"
            f"<td>{_score_and_ci(d.get('student_score'), d.get('student_ci'))}</td>"
            f"<td>{_score_and_ci(d.get('teacher_score'), d.get('teacher_ci'))}</td>"
            f"<td>{number(lab.get('rows'), 'g', '?')}</td>"
            f"<td>{number(lab.get('seconds'), '.3g', '?')}</td><td>{_money(lab.get('cost_usd'))}</td>"
            f"<td>{_money(d.get('student_cost_per_1k_queries'))}</td>"
            f"<td>{_money(d.get('teacher_cost_per_1k_queries'))}</td></tr>"
        )
        words += d.get("findings") or []
    intro = (
        "<p class=muted>The teacher answered the unlabeled inputs (data.unlabeled) after it was "
        "measured; the student trained on the training rows plus those answers. Scores with their 95% "
        "intervals on the same test rows.</p>"
    )
    return (
        intro
        + f"<table>{head}{''.join(rows)}</table>"
        + (f"<ul>{''.join(f'<li>{escape(str(w))}</li>' for w in words)}</ul>" if words else "")
    )


def _money(value) -> str:
    return number(value, ".3g", "?")  # a small model's cost per query is far below a cent


def _score_and_ci(score, ci) -> str:
    """A score with its interval beside it in small print ("n/a" for a score results.json lacks)."""
    bounds = ci_pair(ci)
    return number(score, ".3f", "n/a") + (
        f" <span class='muted ci'>{bounds[0]:.2f}-{bounds[1]:.2f}</span>" if bounds else ""
    )


def disagreements_table(results: dict, limit: int = 50) -> str:
    """The test rows where the contenders (constant answers left out) answered differently, up to `limit`."""
    strategies = [s for s in results["strategies"] if not (s.get("traits") or {}).get("constant")] or results[
        "strategies"
    ]  # a constant answer disagrees everywhere
    answered = [s.get("predictions") or [] for s in strategies]
    if not all(answered):
        return note("Not every contender's test-row answers are in results.json: nothing to compare row by row.")
    rows = []
    for i in range(min(len(a) for a in answered)):
        first, row = answered[0][i], [a[i] for a in answered]
        answers = [str(p.get("predicted", "")) for p in row]
        if len(set(answers)) > 1:
            given = [
                ", ".join(str(g.get("source", "?")) for g in p.get("passages") or [] if isinstance(g, dict))
                for p in row
            ]  # rag: the passages it was given
            cells = "".join(
                f"<td>{escape(a[:100])}" + (f"<br><span class=muted>from {escape(g)}</span>" if g else "") + "</td>"
                for a, g in zip(answers, given)
            )
            rows.append(
                f"<tr><td>{escape(str(first.get('line')))}</td>"
                f"<td>{escape(str(first.get('input', ''))[:200])}</td>"
                f"<td>{escape(str(first.get('expected', ''))[:100])}</td>{cells}</tr>"
            )
    if not rows:
        return "<p>Every strategy gave the same answer on every test row.</p>"
    head = (
        "<tr><th>line</th><th>input</th><th>expected</th>"
        + "".join(f"<th>{escape(s['name'])}</th>" for s in strategies)
        + "</tr>"
    )
    more = f"<p class=muted>{len(rows) - limit} more rows in results.json.</p>" if len(rows) > limit else ""
    return f"<p>{len(rows)} test rows.</p><table class=text>{head}{''.join(rows[:limit])}</table>{more}"


def audit_table(criteria: dict) -> str:
    """The training data audit: each criterion's score (0-100) and how many rows it flagged."""
    rows = "".join(
        f"<tr><td>{escape(str(k))}</td><td>{score_cell(v.get('score'))}</td><td>{len(v.get('flagged') or [])}</td></tr>"
        for k, v in criteria.items()
        if isinstance(v, dict)
    )
    return (
        f"<table><tr><th>criterion</th><th>score</th><th>rows flagged</th></tr>{rows}</table>"
        if rows
        else note("The audit recorded no criteria.")
    )


SPOKEN = {
    "User": "user",
    "Assistant": "assistant",
}  # how a History's text names its speakers (data.conversation.SPEAKERS)


def conversation_table(results: dict, candidates: int = 5, limit: int = 30, chars: int = 600) -> str | None:
    """One test conversation turn by turn: each user turn, the real assistant answer, and under each tested answer every
    contender's; None when no test row records its conversation and turn (not a conversation task, or an older run).

    The conversation shown is the one with the most tested turns among the first `candidates` (ties: the earlier); its
    turns are rebuilt from its rows' inputs, each its answer's recent turns written out, laid side by side by turn
    index."""
    strategies = results.get("strategies") or []
    answered = [[p for p in s.get("predictions") or [] if isinstance(p, dict)] for s in strategies]
    tested: dict[str, dict[int, dict]] = {}  # conversation -> turn -> its first row (input, expected)
    for predictions in answered:
        for p in predictions:
            if p.get("conversation") is not None and isinstance(p.get("turn"), int):
                tested.setdefault(str(p["conversation"]), {}).setdefault(p["turn"], p)
    if not tested:
        return None
    ids = list(tested)  # first seen first: the first contender's test-file order
    chosen = max(ids[:candidates], key=lambda c: (len(tested[c]), -ids.index(c)))
    rows = tested[chosen]
    turns = sorted(rows)[:limit]
    said, cut_before = rebuilt_conversation(rows, turns)
    answers = [
        {p["turn"]: p for p in reversed(a) if str(p.get("conversation")) == chosen and isinstance(p.get("turn"), int)}
        for a in answered
    ]
    out, last = [], None
    for pos in sorted(said):
        if last is not None and pos > last + 1:
            out.append(
                f"<tr><td></td><td></td><td class=muted>({pos - last - 1} turn(s) not in results.json)</td></tr>"
            )
        last = pos
        role, text = said[pos]
        if pos not in rows:
            who = escape(role) + (" <span class=muted>(not tested)</span>" if role == "assistant" else "")
            out.append(f"<tr><td>{pos}</td><td>{who}</td><td>{_turn_text(text, chars)}</td></tr>")
            continue
        expected = str(rows[pos].get("expected", ""))
        out.append(
            f"<tr class=real><td>{pos}</td><td><b>assistant "
            f"(real)</b></td><td><b>{_turn_text(expected, chars)}</b></td></tr>"
        )
        for s, given in zip(strategies, answers):
            answer = given.get(pos)
            if answer is None:
                cell = "<span class=muted>no answer recorded</span>"
            else:
                predicted = str(answer.get("predicted", ""))
                cell = _turn_text(predicted, chars) + (
                    " <span class=muted>(same as the real answer)</span>"
                    if predicted.strip() == expected.strip()
                    else ""
                )
            out.append(
                f"<tr class=answer><td></td><td>{escape(str(s.get('name', '?')))}{_flag(s)}</td><td>{cell}</td></tr>"
            )
    others = len(ids) - 1
    intro = (
        f"<p>Conversation <b>{escape(chosen)}</b>: {len(rows)} tested assistant turn(s)"
        + (f"; {others} other test conversation(s) in results.json" if others else "")
        + ".</p>"
        "<p class=muted>Each tested assistant turn shows the real answer in bold, then every "
        "contender's answer to the same history. "
        "The turns are rebuilt from the test rows' inputs (results.json keeps each answer's recent "
        "turns); turn: the index in the conversation's messages.</p>"
    )
    notes = []
    if cut_before:
        notes.append(
            f"Turns before turn {min(said)} may be left out: results.json keeps only each answer's "
            f"last {len(spoken_turns(str(rows[turns[0]].get('input', ''))))} turns."
        )
    if len(rows) > len(turns):
        notes.append(f"{len(rows) - len(turns)} more tested turn(s) of this conversation in results.json.")
    head = "<tr><th title=\"the turn's index in the conversation's messages\">turn</th><th>who</th><th>text</th></tr>"
    return intro + f"<table class=text>{head}{''.join(out)}</table>" + "".join(note(n) for n in notes)


def rebuilt_conversation(rows: dict[int, dict], turns: list[int]) -> tuple[dict[int, tuple[str, str]], bool]:
    """The conversation's turns by index, up to the last tested one of `turns`: each row's input holds the turns just
    before its own, the tested turns are the real answers. Also whether turns before the first shown may be missing."""
    from adaptlab.data.conversation import RECENT_TURNS

    said: dict[int, tuple[str, str]] = {}
    for t in turns:
        spoken = spoken_turns(str(rows[t].get("input", "")))
        for k, turn in enumerate(spoken):
            if (pos := t - len(spoken) + k) >= 0:
                said.setdefault(pos, turn)
        said[t] = ("assistant", str(rows[t].get("expected", "")))
    first = len(spoken_turns(str(rows[turns[0]].get("input", ""))))
    return said, first >= RECENT_TURNS and turns[0] - first > 0


def spoken_turns(text: str) -> list[tuple[str, str]]:
    """A History's text ("User: ...\\nAssistant: ...") as (role, content) turns; a line without a speaker continues the
    turn before it, and text that names no speaker at all is one user turn."""
    turns: list[list[str]] = []
    for line in text.split("\n") if text else []:
        speaker, sep, rest = line.partition(": ")
        if sep and speaker in SPOKEN:
            turns.append([SPOKEN[speaker], rest])
        elif turns:
            turns[-1][1] += "\n" + line
        else:
            turns.append(["user", line])
    return [(role, content) for role, content in turns]


def _turn_text(text: str, chars: int) -> str:
    """A turn's text, escaped, its line breaks kept, cut at `chars` characters."""
    text = text if len(text) <= chars else text[: chars - 1] + "\u2026"
    return escape(text).replace("\n", "<br>")
