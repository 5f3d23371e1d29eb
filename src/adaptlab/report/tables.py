"""report.html's tables: the side-by-side scores and costs, the qa measures, the tuning searches, the
distillation students beside their teachers, and the test rows where the strategies disagree.
"""

from __future__ import annotations

from html import escape

from adaptlab.tasks import task_kind


def score_cell(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _flag(s: dict) -> str:
    """A degenerate contender's mark, its findings on hover."""
    return f" <span class=warn title='{escape('; '.join(s['flags']))}'>(degenerate)</span>" if s.get("flags") else ""


def side_by_side_table(results: dict, metric: str) -> str:
    digits = task_kind(results["task"]["kind"]).metric(metric).digits
    with_p_best = any(s.get("p_best") is not None for s in results["strategies"])
    head = f"<tr><th>contender</th><th>kind</th><th>{escape(metric)}</th><th>95% CI</th>{'<th>P(best)</th>' if with_p_best else ''}<th>fit s</th><th>ms/query p50</th><th>p95</th><th>prompt tokens</th><th>$ / 1k queries</th><th>fit $</th></tr>"
    rows = []
    for s in results["strategies"]:
        lo, hi = (s.get("ci") or s.get("ci95"))[metric]  # ci95: results.json before every metric had an interval
        cost, p_best = s.get("cost_per_1k_queries"), s.get("p_best")
        p_cell = (f"<td>{'' if p_best is None else f'{p_best:.2f}'}</td>") if with_p_best else ""
        rows.append(
            f"<tr><td>{escape(s['name'])}{_flag(s)}</td><td>{escape((s.get('traits') or {}).get('kind', s['name']))}</td><td>{s['metrics'][metric]:.{digits}f}</td><td>{lo:.{digits}f}-{hi:.{digits}f}</td>{p_cell}<td>{s['fit_seconds']:.1f}</td><td>{(s.get('latency_ms_p50') or 0):.0f}</td>"
            f"<td>{s['latency_ms_p95']:.0f}</td><td>{s['prompt_tokens_mean']:.0f}</td><td>{'?' if cost is None else f'{cost:.4f}'}</td><td>{(s.get('fit_cost') or 0):.4f}</td></tr>"
        )
    prices = results.get("cost_assumptions") or {}
    note = f"<p class=muted>Costs at ${prices.get('dollars_per_hour', '?')}/hour of machine time on {escape(str(prices.get('device', '?')))} (set <code>costs</code> in the experiment).</p>" if prices else ""
    return f"<table>{head}{''.join(rows)}</table>{note}"


def knowledge_table(results: dict) -> str:
    """Every qa measure per contender, with its 95% interval; a measure that does not apply is blank."""
    spec = task_kind(results["task"]["kind"])
    shown = [(m.name, m.column or m.label, m.meaning) for m in spec.metrics if any(m.name in s["metrics"] for s in results["strategies"])]  # short headers: 11 columns fit the page
    head = "<tr><th>contender</th>" + "".join(f"<th title='{escape(why)}'>{escape(col)}</th>" for _, col, why in shown) + "</tr>"
    rows = []
    for s in results["strategies"]:
        cells = []
        for key, _, _ in shown:
            value, ci = s["metrics"].get(key), (s.get("ci") or {}).get(key)
            cells.append("<td></td>" if value is None else f"<td>{value:.3f}" + (f"<br><span class='muted ci'>{ci[0]:.2f}-{ci[1]:.2f}</span>" if ci else "") + "</td>")
        rows.append(f"<tr><td>{escape(s['name'])}{_flag(s)}</td>{''.join(cells)}</tr>")
    legend = "".join(f"<li><b>{escape(col)}</b>: {escape(why)}</li>" for _, col, why in shown)
    return f"<table>{head}{''.join(rows)}</table><ul class=muted>{legend}</ul>"


def tuning_table(tuned: list[dict], metric: str) -> str:
    """Per tuned contender: the budget it had and used, dev scores untuned and tuned, test scores untuned and tuned, the settings chosen."""
    head = f"<tr><th>contender</th><th>trials (budget)</th><th>seconds</th><th>dev: untuned</th><th>dev: tuned</th><th>test {escape(metric)}: untuned</th><th>test: tuned</th><th>settings chosen</th></tr>"
    rows = []
    for s in tuned:
        t = s["solver"]["tuning"]
        untuned = t.get("untuned") or {}
        test = untuned.get("test")
        lo, hi = s["ci"][metric]
        untuned_test = f"{test['score']:.3f}<br><span class='muted ci'>{test['ci'][0]:.2f}-{test['ci'][1]:.2f}</span>" if isinstance(test, dict) else ("the same" if test else "")
        settings = ", ".join(f"{k}: {v}" for k, v in t["best"]["settings"].items())
        rows.append(f"<tr><td>{escape(s['name'])}</td><td>{t['trials_run']} ({t['budget']['trials']}{', ' + str(t['budget']['budget_minutes']) + ' min' if t['budget'].get('budget_minutes') else ''})</td><td>{t['seconds']:.0f}</td>"
                    f"<td>{'' if untuned.get('dev_score') is None else format(untuned['dev_score'], '.3f')}</td><td>{t['best']['dev_score']:.3f}</td><td>{untuned_test}</td><td>{s['metrics'][metric]:.3f}<br><span class='muted ci'>{lo:.2f}-{hi:.2f}</span></td><td>{escape(settings)}</td></tr>")
    written = [f"<li>{escape(s['name'])}: {escape(t['proposer']['id'])} wrote, from {t['proposer']['rows_shown']} dev rows its own instruction got wrong: "
               + ("; ".join(f"<q>{escape(text)}</q>" for text in t["proposer"]["instructions"]) or "nothing usable") + "</li>"
               for s in tuned if "proposer" in (t := s["solver"]["tuning"])]
    return ("<p class=muted>Every trial fitted on the training rows and was scored on the dev rows (never the test rows); the first trial is the contender's own settings, so the untuned figures are measured, not assumed. "
            "Instructions tried: the task's own, without the label list (or without the labels' meanings), a terse and a detailed phrasing, and any a proposer wrote (results.json: tuning.instructions).</p>"
            f"<table>{head}{''.join(rows)}</table>" + (f"<p>Instructions written by a proposer (tune.proposer):</p><ul>{''.join(written)}</ul>" if written else ""))


def distillation_table(students: dict) -> str:
    """Per student (runs/distill.py): its score beside its teacher's, what the teacher's labels cost, both costs per 1,000 queries, and those numbers in words."""
    def money(v):
        return "?" if v is None else f"{v:.3g}"  # a small model's cost per query is far below a cent

    head = "<tr><th>student</th><th>teacher</th><th>student score</th><th>teacher score</th><th>labeled rows</th><th>labeling s</th><th>labeling $</th><th>student $ / 1k queries</th><th>teacher $ / 1k queries</th></tr>"
    rows, words = [], []
    for name, d in students.items():
        (slo, shi), (tlo, thi), lab = d["student_ci"], d["teacher_ci"], d["labeling"]
        rows.append(f"<tr><td>{escape(name)}</td><td>{escape(d['teacher'])}</td><td>{d['student_score']:.3f} <span class='muted ci'>{slo:.2f}-{shi:.2f}</span></td><td>{d['teacher_score']:.3f} <span class='muted ci'>{tlo:.2f}-{thi:.2f}</span></td>"
                    f"<td>{lab['rows']}</td><td>{lab['seconds']:.3g}</td><td>{money(lab['cost_usd'])}</td><td>{money(d['student_cost_per_1k_queries'])}</td><td>{money(d['teacher_cost_per_1k_queries'])}</td></tr>")
        words += d.get("findings") or []
    note = "<p class=muted>The teacher answered the unlabeled inputs (data.unlabeled) after it was measured; the student trained on the training rows plus those answers. Scores with their 95% intervals on the same test rows.</p>"
    return note + f"<table>{head}{''.join(rows)}</table><ul>" + "".join(f"<li>{escape(w)}</li>" for w in words) + "</ul>"


def disagreements_table(results: dict, limit: int = 50) -> str:
    strategies = [s for s in results["strategies"] if not (s.get("traits") or {}).get("constant")] or results["strategies"]  # a constant answer disagrees everywhere
    rows = []
    for i, first in enumerate(strategies[0]["predictions"]):
        answers = [s["predictions"][i]["predicted"] for s in strategies]
        if len(set(answers)) > 1:
            given = [", ".join(p["source"] for p in s["predictions"][i].get("passages", [])) for s in strategies]  # rag: the passages it was given
            cells = "".join(f"<td>{escape(a[:100])}" + (f"<br><span class=muted>from {escape(g)}</span>" if g else "") + "</td>" for a, g in zip(answers, given))
            rows.append(f"<tr><td>{escape(str(first.get('line')))}</td><td>{escape(first['input'][:200])}</td><td>{escape(first['expected'][:100])}</td>{cells}</tr>")
    if not rows:
        return "<p>Every strategy gave the same answer on every test row.</p>"
    head = "<tr><th>line</th><th>input</th><th>expected</th>" + "".join(f"<th>{escape(s['name'])}</th>" for s in strategies) + "</tr>"
    more = f"<p class=muted>{len(rows) - limit} more rows in results.json.</p>" if len(rows) > limit else ""
    return f"<p>{len(rows)} test rows.</p><table class=text>{head}{''.join(rows[:limit])}</table>{more}"
