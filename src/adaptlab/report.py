"""`report.html`: one self-contained page (inline CSS and SVG, no scripts, no external assets) from results.json.

Sections: the recommendation and its reasons, a forest plot of each contender's score
with its interval, the side-by-side table, cost against query volume with the
break-even points, the learning curve (when the run folder holds a sweep.json), the
audit scores, confusion matrices as heatmaps, and the test rows where the strategies
disagree. Every piece of text from the data is escaped. Every chart fits the page's
1100px body; text widths are estimated at ~6.6 px per character of 11px text.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

from adaptlab.files import write_text_atomic

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}table.text td,table.text th{text-align:left}.choice{font-size:1.3em;font-weight:bold}
.muted{color:#666}.warn{color:#a15c00}table.text td{overflow-wrap:anywhere}span.ci{white-space:nowrap;font-size:.85em}
svg.chart{font:11px system-ui,sans-serif;max-width:100%;height:auto;display:block}
.heatmaps{display:flex;flex-wrap:wrap;gap:1em 2em;align-items:flex-start}figure{margin:0;max-width:100%}figcaption{font-weight:bold}
"""
PAGE_WIDTH = 1100  # px: the body's max-width above, so no chart is wider
CHAR_WIDTH = 6.6  # px per character of 11px system-ui text: DejaVu Sans (Debian's) measures 5.2 for figures to 6.5 for snake_case names


def write_report(run_dir: Path) -> Path:
    """Render run_dir/results.json (and sweep.json, if there) into run_dir/report.html."""
    run_dir = Path(run_dir)
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    sweep_file = run_dir / "sweep.json"
    sweep = json.loads(sweep_file.read_text(encoding="utf-8")) if sweep_file.is_file() else None
    path = run_dir / "report.html"
    write_text_atomic(path, render(results, sweep))
    return path


def render(results: dict, sweep: dict | None = None) -> str:
    task = results["task"]
    metric = task["metric"]
    parts = [f"<h1>adaptlab: {escape(task['name'])}</h1>", f"<p class=muted>{escape(task['kind'])} task, base model {escape(str(results['base_model']))}, {len(results['strategies'][0]['predictions'])} test rows, seed {results.get('seed')}</p>"]
    rec = results["recommendation"]
    parts.append("<h2>Recommendation</h2>" + f"<p class=choice>{escape(rec['choice'])}</p><ul>" + "".join(f"<li>{escape(r)}</li>" for r in rec["reasons"]) + "".join(f"<li class=warn>warning: {escape(w)}</li>" for w in rec["warnings"]) + "</ul>")
    parts.append("<h2>Scores at a glance</h2>" + _forest(results, metric))
    parts.append("<h2>Side by side</h2>" + _table(results, metric))
    if task["kind"] == "qa":
        parts.append("<h2>Answers from the documents: quality beside abstention and hallucination</h2>" + _knowledge_table(results))
    tuned = [s for s in results["strategies"] if (s.get("solver") or {}).get("tuning")]
    if tuned:
        parts.append("<h2>Tuning: each contender's settings searched on the dev rows</h2>" + _tuning_table(tuned, metric))
    if results.get("updates"):
        parts.append("<h2>After a document update, without retraining</h2>" + _update_chart(results))
    parts.append("<h2>Cost against query volume</h2>" + _cost_chart(results))
    if results.get("distillation"):
        parts.append("<h2>Distillation</h2>" + _distillation(results["distillation"]))
    if sweep:
        parts.append("<h2>Learning curve</h2>" + _curve_chart(sweep))
    audit = results.get("audit") or {}
    if audit.get("criteria"):
        rows = "".join(f"<tr><td>{escape(k)}</td><td>{_score(v.get('score'))}</td><td>{len(v.get('flagged', []))}</td></tr>" for k, v in audit["criteria"].items())
        parts.append(f"<h2>Training data audit</h2><table><tr><th>criterion</th><th>score</th><th>rows flagged</th></tr>{rows}</table>")
    confusions = [s for s in results["strategies"] if s.get("confusion")]
    if confusions:
        parts.append("<h2>Confusion matrices</h2><p class=muted>Rows: the expected label; columns: the answer given. Shade: the share of the row, blue on the diagonal (right), red off it (confused). Hover a name or a cell for the full text.</p>"
                     + "<div class=heatmaps>" + "".join(_heatmap(s, i) for i, s in enumerate(confusions)) + "</div>")
    parts.append("<h2>Where the strategies disagree</h2>" + _disagreements(results))
    body = "\n".join(parts)
    return f"<!doctype html><html lang=en><head><meta charset=utf-8><title>adaptlab report: {escape(task['name'])}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"


def _score(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _table(results: dict, metric: str) -> str:
    with_p_best = any(s.get("p_best") is not None for s in results["strategies"])
    head = f"<tr><th>contender</th><th>kind</th><th>{escape(metric)}</th><th>95% CI</th>{'<th>P(best)</th>' if with_p_best else ''}<th>fit s</th><th>ms/query p50</th><th>p95</th><th>prompt tokens</th><th>$ / 1k queries</th><th>fit $</th></tr>"
    rows = []
    for s in results["strategies"]:
        lo, hi = (s.get("ci") or s.get("ci95"))[metric]  # ci95: results.json before every metric had an interval
        cost, p_best = s.get("cost_per_1k_queries"), s.get("p_best")
        p_cell = (f"<td>{'' if p_best is None else f'{p_best:.2f}'}</td>") if with_p_best else ""
        rows.append(
            f"<tr><td>{escape(s['name'])}</td><td>{escape((s.get('traits') or {}).get('kind', s['name']))}</td><td>{s['metrics'][metric]:.3f}</td><td>{lo:.3f}-{hi:.3f}</td>{p_cell}<td>{s['fit_seconds']:.1f}</td><td>{(s.get('latency_ms_p50') or 0):.0f}</td>"
            f"<td>{s['latency_ms_p95']:.0f}</td><td>{s['prompt_tokens_mean']:.0f}</td><td>{'?' if cost is None else f'{cost:.4f}'}</td><td>{(s.get('fit_cost') or 0):.4f}</td></tr>"
        )
    prices = results.get("cost_assumptions") or {}
    note = f"<p class=muted>Costs at ${prices.get('dollars_per_hour', '?')}/hour of machine time on {escape(str(prices.get('device', '?')))} (set <code>costs</code> in the experiment).</p>" if prices else ""
    return f"<table>{head}{''.join(rows)}</table>{note}"


def _text_width(text: str, size: float = 11) -> float:
    return len(text) * CHAR_WIDTH * size / 11


def _clip(text: str, chars: int) -> str:
    """text cut to `chars` characters around an ellipsis, keeping its start and end (label names often differ only at the end)."""
    if len(text) <= chars:
        return text
    tail = (chars - 1) * 2 // 5
    return text[: chars - 1 - tail] + "\u2026" + (text[-tail:] if tail else "")


def _repeat_scores(s: dict, metric: str) -> list[float]:
    """The headline score of each repeat: `repeats` holds numbers, or dicts with the metric (or its `metrics`)."""
    scores = []
    for r in s.get("repeats") or []:
        value = r if isinstance(r, (int, float)) else (r.get("metrics") or r).get(metric) if isinstance(r, dict) else None
        if isinstance(value, (int, float)):
            scores.append(float(value))
    return scores


def _forest(results: dict, metric: str) -> str:
    """Each contender's headline score as a dot on its 95% interval, ticks at its repeats, P(best) beside; the highest highlighted."""
    scale = 100.0 if metric == "chrf" else 1.0
    fmt = (lambda v: f"{v:.1f}") if scale > 1 else (lambda v: f"{v:.3f}")
    rows = []
    for s in results["strategies"]:
        ci = (s.get("ci") or s.get("ci95") or {}).get(metric)
        rows.append((s["name"], s["metrics"].get(metric), ci, _repeat_scores(s, metric), s.get("p_best")))
    values = [v for _, score, ci, reps, _ in rows for v in [score, *(ci or []), *reps] if v is not None]
    if not values:
        return "<p class=muted>No scores.</p>"
    step = scale / 10  # ticks every 0.1 (every 10 for chrF), the axis spans only the scores' range
    lo, hi = math.floor(min(values) / step + 1e-9) * step, math.ceil(max(values) / step - 1e-9) * step
    hi = max(hi, lo + step)
    best = max(score for _, score, _, _, _ in rows if score is not None) if any(r[1] is not None for r in rows) else None
    row_h, top, w = 26, 8, 900
    x0, x1 = 190, w - 250  # names left of the plot, score and P(best) right of it

    def x(v):
        return x0 + (x1 - x0) * (v - lo) / (hi - lo)

    axis_y = top + row_h * len(rows) + 4
    out = []
    for k in range(round((hi - lo) / step) + 1):
        t = lo + k * step
        out.append(f"<line x1={x(t):.1f} y1={top} x2={x(t):.1f} y2={axis_y} stroke=#eee /><text x={x(t):.1f} y={axis_y + 14} text-anchor=middle>{round(t, 6):g}</text>")
    out.append(f"<line x1={x0} y1={axis_y} x2={x1} y2={axis_y} stroke=#444 /><text x={(x0 + x1) / 2:.0f} y={axis_y + 30} text-anchor=middle>{escape(metric)}</text>")
    for i, (name, score, ci, reps, p_best) in enumerate(rows):
        cy, is_best = top + row_h * i + row_h / 2, score is not None and score == best
        label = f"{fmt(score)}" if score is not None else "n/a"
        interval = f"{fmt(ci[0])}-{fmt(ci[1])}" if ci else ""
        tip = f"{name}: {label}" + (f" (95% CI {interval})" if ci else "") + (f", repeats {', '.join(fmt(r) for r in reps)}" if reps else "") + (f", P(best) {p_best:.2f}" if p_best is not None else "")
        g = [f"<g class='contender{' best' if is_best else ''}'><title>{escape(tip)}</title>"]
        if is_best:
            g.append(f"<rect x=0 y={cy - row_h / 2:.1f} width={w} height={row_h} fill=#fff3cd />")
        g.append(f"<text x={x0 - 8} y={cy + 4:.1f} text-anchor=end{' font-weight=bold' if is_best else ''}>{escape(_clip(name, 26))}</text>")
        if ci:
            a, b = x(ci[0]), x(ci[1])
            g.append(f"<line class=ci x1={a:.1f} y1={cy:.1f} x2={b:.1f} y2={cy:.1f} stroke=#1f77b4 stroke-width=2 /><path d='M{a:.1f} {cy - 5:.1f}v10M{b:.1f} {cy - 5:.1f}v10' stroke=#1f77b4 />")
        g += [f"<line class=repeat x1={x(r):.1f} y1={cy - 7:.1f} x2={x(r):.1f} y2={cy + 7:.1f} stroke=#333 stroke-opacity=.7 />" for r in reps]
        if score is not None:
            g.append(f"<circle class=score cx={x(score):.1f} cy={cy:.1f} r={6 if is_best else 4.5} fill={'#d62728' if is_best else '#1f77b4'} />")
        g.append(f"<text x={x1 + 12} y={cy + 4:.1f}>{label}" + (f" ({interval})" if ci else "") + "</text>")
        if p_best is not None:
            g.append(f"<text class=p-best x={x1 + 150} y={cy + 4:.1f}>P(best) {p_best:.2f}</text>")
        out.append("".join(g) + "</g>")
    height = axis_y + 38
    power = results.get("power") or {}
    d = power.get("detectable_difference")
    if d and d <= hi - lo:  # a bar as long as the smallest difference the test rows could detect
        height += 16
        out.append(f"<path class=detectable d='M{x0} {height - 4}h{x(lo + d) - x0:.1f}M{x0} {height - 8}v8M{x(lo + d):.1f} {height - 8}v8' stroke=#444 stroke-width=1.5 fill=none /><text x={x(lo + d) + 8:.1f} y={height}>smallest difference the test rows can detect: {fmt(d)}</text>")
    parts = ["the score on the test rows (dot)", "its 95% interval (line)"] + (["each repeat (ticks)"] if any(r[3] for r in rows) else []) + (["the share of resamples in which it scores highest, P(best)"] if any(r[4] is not None for r in rows) else [])
    caption = f"<p class=muted>{escape(metric)}: " + ", ".join(parts) + "; the highest is highlighted.</p>"
    if power:  # decide.statistics.power_summary: between the top two contenders
        rows_n, pair = escape(str(power.get("rows", "?"))), " and ".join(escape(str(b)) for b in power.get("between") or [])
        if d:
            caption += f"<p class=power>with {rows_n} test rows, differences under {fmt(d)} cannot be told apart (80% power, 5% level{'; between ' + pair if pair else ''})."
            if power.get("rows_to_settle") and power.get("difference") is not None:
                caption += f" Their gap of {power['difference']:+.{1 if scale > 1 else 3}f} would take about {power['rows_to_settle']:,} test rows to settle."
            caption += "</p>"
        elif pair:
            caption += f"<p class=power>{pair} differ by the same amount on all {rows_n} test rows: no spread to size a detectable difference by.</p>"
    return _svg(w, height + 6, "".join(out), f"{metric} of each contender with its 95% interval") + caption


KNOWLEDGE = [  # (metric, column, what it means)
    ("qa_score", "qa score", "per row: token F1 on answerable questions (0 when it abstained), 1/0 for abstaining on unanswerable ones"),
    ("token_f1", "token F1", "answerable questions"),
    ("rouge_l", "ROUGE-L", "answerable questions"),
    ("similarity", "similarity", "the embedder's cosine of answer and reference, answerable questions"),
    ("false_abstention_rate", "false abstention", "answerable questions answered with the abstain answer"),
    ("abstention_rate", "abstention", "unanswerable questions answered with the abstain answer (the right answer)"),
    ("hallucination_rate", "hallucination", "unanswerable questions answered anyway"),
    ("unsupported_figures", "unsupported figures", "answers holding a number, amount or date found neither in the passages given nor in the reference"),
    ("recall_at_k", "recall@k", "gold source pages among the retrieved passages"),
    ("mrr", "MRR", "reciprocal rank of the first gold source"),
    ("citing", "citing", "answers that name a retrieved passage"),
]


def _knowledge_table(results: dict) -> str:
    """Every qa measure per contender, with its 95% interval; a measure that does not apply is blank."""
    shown = [m for m in KNOWLEDGE if any(m[0] in s["metrics"] for s in results["strategies"])]
    head = "<tr><th>contender</th>" + "".join(f"<th title='{escape(why)}'>{escape(col)}</th>" for _, col, why in shown) + "</tr>"
    rows = []
    for s in results["strategies"]:
        cells = []
        for key, _, _ in shown:
            value, ci = s["metrics"].get(key), (s.get("ci") or {}).get(key)
            cells.append("<td></td>" if value is None else f"<td>{value:.3f}" + (f"<br><span class='muted ci'>{ci[0]:.2f}-{ci[1]:.2f}</span>" if ci else "") + "</td>")
        rows.append(f"<tr><td>{escape(s['name'])}</td>{''.join(cells)}</tr>")
    legend = "".join(f"<li><b>{escape(col)}</b>: {escape(why)}</li>" for _, col, why in shown)
    return f"<table>{head}{''.join(rows)}</table><ul class=muted>{legend}</ul>"


def _tuning_table(tuned: list[dict], metric: str) -> str:
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
    return ("<p class=muted>Every trial fitted on the training rows and was scored on the dev rows (never the test rows); the first trial is the contender's own settings, so the untuned figures are measured, not assumed. "
            "Instructions tried: the task's own, without the label list, a terse and a detailed phrasing (results.json: tuning.instructions).</p>"
            f"<table>{head}{''.join(rows)}</table>")


def _update_chart(results: dict) -> str:
    """Per contender, the update questions' score and stale-answer share before and after the documents changed
    (bars with 95% intervals), then how each absorbed the change and what that took."""
    update = results["updates"]
    rows = list(update["contenders"].items())
    panel, bar, m, top = 300, 9, 150, 28
    h = top + len(rows) * (2 * bar + 12) + 30
    content = []
    for p, (key, title) in enumerate((("score", f"{results['task']['metric']} against the new answers"), ("stale", "share still giving the old fact (stale)"))):
        x0 = m + p * (panel + 40)
        content.append(f"<text x={x0} y=14 font-weight=bold>{escape(title)}</text><line x1={x0} y1={top - 4} x2={x0} y2={h - 24} stroke=#444 />")
        content += [f"<text x={x0 + panel * t:.1f} y={h - 10} text-anchor=middle>{t:.1f}</text><line x1={x0 + panel * t:.1f} y1={top - 4} x2={x0 + panel * t:.1f} y2={h - 24} stroke=#eee />" for t in (0.0, 0.5, 1.0)]
        for i, (name, u) in enumerate(rows):
            y = top + i * (2 * bar + 12)
            if p == 0:
                content.append(f"<text x={m - 6} y={y + bar + 4} text-anchor=end><title>{escape(name)}</title>{escape(_clip(name, 20))}</text>")
            for j, (side, color) in enumerate((("before", "#bbb"), ("after", COLORS[0]))):
                value, (lo, hi) = u[side][key], u[side][f"{key}_ci"]
                yy = y + j * bar
                content.append(f"<g class=update-bar><title>{escape(name)} {side}: {value:.3f} (95% CI {lo:.3f}-{hi:.3f})</title><rect x={x0} y={yy} width={panel * value:.1f} height={bar - 1} fill='{color}' />"
                               f"<line x1={x0 + panel * lo:.1f} y1={yy + bar / 2:.1f} x2={x0 + panel * hi:.1f} y2={yy + bar / 2:.1f} stroke=#000 /></g>")
    chart = _svg(m + 2 * (panel + 40), h, "".join(content), "score and stale answers before and after the document update")
    head = "<tr><th>contender</th><th>score before</th><th>score after</th><th>stale before</th><th>stale after</th><th>absorbed by</th><th>seconds</th><th>$</th></tr>"
    body = "".join(
        f"<tr><td>{escape(name)}</td><td>{u['before']['score']:.3f}</td><td>{u['after']['score']:.3f}</td><td>{u['before']['stale']:.0%}</td><td>{u['after']['stale']:.0%}</td>"
        f"<td title='{escape(u['absorb']['note'])}'>{escape(u['absorb']['how'])}</td><td>{u['absorb']['seconds']:.1f}</td><td>{u['absorb']['dollars']:.4f}</td></tr>"
        for name, u in rows
    )
    changed = ", ".join(update["changed"] + [f"{a} (new)" for a in update["added"]])
    return (f"<p class=muted>{update['questions']} questions about the changed documents ({escape(changed)}), asked before the change and again after it. "
            "Grey: before; blue: after. A contender that reads the documents re-indexed only the changed files; one answering from its weights answers the same until retrained.</p>"
            + chart + f"<table>{head}{body}</table>")


def _distillation(students: dict) -> str:
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


def _svg(width: float, height: float, content: str, label: str) -> str:
    return f"<svg class=chart role=img aria-label='{escape(label)}' width={width:.0f} height={height:.0f} viewBox='0 0 {width:.0f} {height:.0f}' xmlns='http://www.w3.org/2000/svg'>{content}</svg>"


def _axes(w, h, m, xlabel, ylabel, xticks, yticks) -> str:
    out = [f"<line x1={m} y1={h - m} x2={w - 10} y2={h - m} stroke=#444 /><line x1={m} y1=10 x2={m} y2={h - m} stroke=#444 />"]
    out += [f"<text x={x:.1f} y={h - m + 14} text-anchor=middle>{escape(t)}</text>" for x, t in xticks]
    out += [f"<text x={m - 4} y={y + 4:.1f} text-anchor=end>{escape(t)}</text>" for y, t in yticks]
    out.append(f"<text x={(w + m) / 2:.0f} y={h - 4} text-anchor=middle>{escape(xlabel)}</text><text x=12 y={h / 2:.0f} transform='rotate(-90 12 {h / 2:.0f})' text-anchor=middle>{escape(ylabel)}</text>")
    return "".join(out)


def place_labels(anchors: list[tuple[float, float]], widths: list[float], bounds: tuple[float, float, float, float], avoid: list[tuple[float, float, float, float]] = (), height: float = 14, gap: float = 2) -> list[tuple[float, float, float, float]]:
    """Boxes (x, y, width, height) for labels beside their anchor points, inside bounds (x0, y0, x1, y1), overlapping neither each other, `avoid` nor the points.

    A label goes up and right of its point (left of it where it would leave the chart), then
    steps a line up or down at a time, nearest first, trying the point's other side at each step,
    until it is clear; labels are placed top to bottom.
    """
    x0, y0, x1, y1 = bounds
    avoid = [*avoid, *((ax - 5, ay - 5, 10, 10) for ax, ay in anchors)]  # no label hides a point (circles of radius 5)
    placed: list[tuple[float, float, float, float]] = []
    boxes: dict[int, tuple[float, float, float, float]] = {}

    def clear(box):
        bx, by, bw, bh = box
        return all(bx >= ox + ow + gap or ox >= bx + bw + gap or by >= oy + oh + gap or oy >= by + bh + gap for ox, oy, ow, oh in [*placed, *avoid])

    for i in sorted(range(len(anchors)), key=lambda i: (anchors[i][1], anchors[i][0])):
        (ax, ay), w = anchors[i], min(widths[i], x1 - x0)
        sides = [ax + 8, ax - 8 - w] if ax + 8 + w <= x1 else [ax - 8 - w, ax + 8]
        sides = [min(max(bx, x0), x1 - w) for bx in sides]
        start = min(max(ay - 4 - height, y0), y1 - height)
        steps = int((y1 - y0) / (height + gap)) + 1
        candidates = [start + sign * k * (height + gap) for k in range(steps + 1) for sign in ((1,) if k == 0 else (-1, 1))]
        candidates = [y for y in candidates if y0 <= y <= y1 - height] or [start]
        box = next((b for b in ((bx, y, w, height) for y in candidates for bx in sides) if clear(b)), (sides[0], candidates[0], w, height))
        placed.append(box)
        boxes[i] = box
    return [boxes[i] for i in range(len(anchors))]


def _cost_chart(results: dict) -> str:
    """Total cost (fit + queries) against monthly volume, log-log, one line per strategy; break-even points marked."""
    lines = [(s["name"], s.get("fit_cost") or 0.0, s.get("cost_per_1k_queries")) for s in results["strategies"] if s.get("cost_per_1k_queries") is not None]
    if not lines:
        return "<p class=muted>No costs: set prices for remote models.</p>"
    volumes = [10**e for e in range(0, 8)]
    totals = [fit + v / 1000 * per for _, fit, per in lines for v in volumes]
    lo, hi = math.log10(max(min(t for t in totals if t > 0) if any(t > 0 for t in totals) else 1e-6, 1e-6)), math.log10(max(max(totals), 1e-6) * 1.5)
    w, h, m = 720, 340, 60

    def x(v):
        return m + (w - m - 10) * math.log10(v) / 7

    def y(c):
        return (h - m) - (h - m - 10) * (math.log10(max(c, 10**lo)) - lo) / max(hi - lo, 1e-9)

    content = [_axes(w, h, m, "queries", "total $ (fit + queries)", [(x(v), f"1e{int(math.log10(v))}") for v in volumes], [(y(10**e), f"{10**e:g}") for e in range(math.ceil(lo), math.floor(hi) + 1)])]
    names = [_clip(name, 24) for name, _, _ in lines]
    lx = w + 8  # the legend right of the plot, where no line runs
    legend = (lx - 4, 8, max(_text_width(n) for n in names) + 28, 14 * len(lines) + 4)
    for i, (name, fit, per) in enumerate(lines):
        color = COLORS[i % len(COLORS)]
        points = " ".join(f"{x(v):.1f},{y(fit + v / 1000 * per):.1f}" for v in volumes)
        content.append(f"<polyline fill=none stroke='{color}' stroke-width=2 points='{points}' />")
        content.append(f"<g class=legend><title>{escape(name)}</title><line x1={lx:.1f} y1={16 + 14 * i} x2={lx + 16:.1f} y2={16 + 14 * i} stroke='{color}' stroke-width=2 /><text x={lx + 20:.1f} y={20 + 14 * i} fill='{color}'>{escape(names[i])}</text></g>")
    marks = []
    for row in results.get("break_even_queries", []):
        tuned = next((l for l in lines if l[0] == row["fine_tuned"]), None)
        if tuned and isinstance(row["queries"], int) and 1 <= row["queries"] <= 10**7:
            text = f"break-even {_clip(row['fine_tuned'], 20)} vs {_clip(row['prompted'], 20)}: {row['queries']:,}"
            marks.append(((x(row["queries"]), y(tuned[1] + row["queries"] / 1000 * tuned[2])), text, f"{row['fine_tuned']} vs {row['prompted']}: {row['queries']:,} queries"))
    boxes = place_labels([a for a, _, _ in marks], [_text_width(t) for _, t, _ in marks], (m + 2, 4, w - 4, h - m - 2), avoid=[legend])
    for ((cx, cy), text, tip), (bx, by, bw, bh) in zip(marks, boxes):
        content.append(f"<circle class=break-even cx={cx:.1f} cy={cy:.1f} r=5 fill=none stroke=#000 />")
    for ((cx, cy), text, tip), (bx, by, bw, bh) in zip(marks, boxes):
        near_x, near_y = min(max(cx, bx), bx + bw), min(max(cy, by), by + bh)
        if math.hypot(near_x - cx, near_y - cy) > 12:  # moved away from its point: a leader line back to it
            content.append(f"<line x1={cx:.1f} y1={cy:.1f} x2={near_x:.1f} y2={near_y:.1f} stroke=#999 />")
        content.append(f"<g class=break-even-label><title>{escape(tip)}</title><rect x={bx:.1f} y={by:.1f} width={bw:.1f} height={bh:.1f} fill=#fff fill-opacity=.85 /><text x={bx:.1f} y={by + bh - 3:.1f}>{escape(text)}</text></g>")
    notes = "".join(f"<li>{escape(r['fine_tuned'])} vs {escape(r['prompted'])}: {escape(str(r['queries']))} ({escape(r['why'])})</li>" for r in results.get("break_even_queries", []))
    return _svg(lx + legend[2], h, "".join(content), "cost against query volume") + (f"<ul>{notes}</ul>" if notes else "")


def _curve_chart(sweep: dict) -> str:
    sizes = sweep["sizes"]
    w, h, m = 720, 300, 60
    span = max(len(sizes) - 1, 1)
    scale = 100.0 if sweep["metric"] == "chrf" else 1.0

    def x(i):
        return m + (w - m - 10) * i / span

    def y(v):
        return (h - m) - (h - m - 10) * v / scale

    content = [_axes(w, h, m, "labeled examples", sweep["metric"], [(x(i), str(n)) for i, n in enumerate(sizes)], [(y(t * scale), f"{t * scale:g}") for t in (0, 0.25, 0.5, 0.75, 1.0)])]
    for k, (name, points) in enumerate(sweep["curve"].items()):
        color = COLORS[k % len(COLORS)]
        coords = " ".join(f"{x(sizes.index(p['n'])):.1f},{y(p['mean']):.1f}" for p in points)
        content.append(f"<polyline fill=none stroke='{color}' stroke-width=2 points='{coords}' /><text x={w - 150} y={h - m - 14 * (k + 1)} fill='{color}'><title>{escape(name)}</title>{escape(_clip(name, 22))}</text>")
    notes = "".join(f"<li>{escape(c['fine_tuned'])} overtakes {escape(c['prompted'])}: {('from n=' + str(c['crossover_n'])) if c['crossover_n'] else 'not within the sizes tried'}; {('significantly from n=' + str(c['significant_from_n'])) if c['significant_from_n'] else 'never significantly'}</li>" for c in sweep.get("comparisons", []))
    return _svg(w, h, "".join(content), "learning curve") + f"<ul>{notes}</ul>"


def _heatmap(s: dict, index: int) -> str:
    """The confusion matrix as a grid no wider than the page: shade by the row's share, counts where they fit, full names in tooltips."""
    rows = list(s["confusion"])
    columns = list(next(iter(s["confusion"].values())))  # the labels, then "(other)"
    if not columns:
        return ""
    chars = min(max(len(n) for n in rows + columns), 32 if len(columns) <= 20 else 22)  # few labels leave room for longer names
    left = math.ceil(18 + _text_width("x" * chars) + 6)  # the "expected" title, then the row names
    # 77 labels: (1100 - 170) // 78 columns = 11 px a cell, room for 10px names but not for counts
    cell = max(min((PAGE_WIDTH - left - 8) // len(columns), 32), 3)
    size = min(11, cell - 1)  # names' font size: one row's height
    top = math.ceil(18 + (_text_width("x" * chars, size) if size >= 5 else 0) + 6)  # the "predicted" title, then the rotated names
    width, height = left + cell * len(columns) + 8, top + cell * len(rows) + 8
    out = [f"<text x={left + cell * len(columns) / 2:.1f} y=12 text-anchor=middle>predicted</text><text x=12 y={top + cell * len(rows) / 2:.1f} transform='rotate(-90 12 {top + cell * len(rows) / 2:.1f})' text-anchor=middle>expected</text>"]
    if size >= 5:  # smaller names are unreadable: the cells' tooltips still name them
        out.append(f"<g font-size={size:.1f}>")
        out += [f"<text x={left - 4:.1f} y={top + cell * (i + 0.5) + size * 0.35:.1f} text-anchor=end><title>{escape(n)}</title>{escape(_clip(n, chars))}</text>" for i, n in enumerate(rows)]
        out += [f"<text transform='translate({left + cell * (j + 0.5) + size * 0.35:.1f} {top - 4:.1f}) rotate(-90)'><title>{escape(n)}</title>{escape(_clip(n, chars))}</text>" for j, n in enumerate(columns)]
        out.append("</g>")
    count_size = min(11, int(cell * 0.6))
    gap = 1 if cell >= 6 else 0
    # the empty grid is one rect filled with a pattern; only answered cells get their own (77 labels: ~6,000 cells, ~500 answered)
    out.append(f"<defs><pattern id=grid{index} x={left} y={top} width={cell} height={cell} patternUnits=userSpaceOnUse><rect width={cell - gap} height={cell - gap} fill=#f3f3f3 /></pattern></defs>"
               f"<rect class=grid x={left} y={top} width={cell * len(columns)} height={cell * len(rows)} fill='url(#grid{index})' />")
    for i, (expected, counts) in enumerate(s["confusion"].items()):
        total = sum(counts.values())
        for j, predicted in enumerate(columns):
            n = counts.get(predicted, 0)
            share = n / total if total else 0.0
            cx, cy = left + cell * j, top + cell * i
            if not n:
                continue
            shade = 0.12 + 0.88 * share  # a single row among many stays visible
            color = "#1f77b4" if predicted == expected else "#d62728"
            out.append(f"<g><title>{escape(f'expected {expected}, answered {predicted}: {n} of {total} ({share:.0%})')}</title><rect class=cell x={cx} y={cy} width={cell - gap} height={cell - gap} fill={color} fill-opacity={shade:.2f} />")
            if count_size >= 8 and _text_width(str(n), count_size) <= cell - 3:
                out.append(f"<text x={cx + (cell - gap) / 2:.1f} y={cy + (cell - gap) / 2 + count_size * 0.35:.1f} text-anchor=middle font-size={count_size} fill={'#fff' if shade > 0.55 else '#222'}>{n}</text>")
            out.append("</g>")
    return f"<figure><figcaption>{escape(s['name'])}</figcaption>{_svg(width, height, ''.join(out), 'confusion matrix of ' + s['name'])}</figure>"


def _disagreements(results: dict, limit: int = 50) -> str:
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
