"""`report.html`: one self-contained page (inline CSS and SVG, no scripts, no external assets) from results.json.

Sections: the recommendation and its reasons, the side-by-side table with intervals,
cost against query volume with the break-even points, the learning curve (when the
run folder holds a sweep.json), the audit scores, confusion matrices, and the test
rows where the strategies disagree. Every piece of text from the data is escaped.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from adaptlab.files import write_text_atomic

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}table.text td,table.text th{text-align:left}.choice{font-size:1.3em;font-weight:bold}
.muted{color:#666}svg text{font:11px system-ui,sans-serif}.warn{color:#a15c00}
"""


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
    parts.append("<h2>Side by side</h2>" + _table(results, metric))
    if task["kind"] == "qa":
        parts.append("<h2>Answers from the documents: quality beside abstention and hallucination</h2>" + _knowledge_table(results))
    parts.append("<h2>Cost against query volume</h2>" + _cost_chart(results))
    if sweep:
        parts.append("<h2>Learning curve</h2>" + _curve_chart(sweep))
    audit = results.get("audit") or {}
    if audit.get("criteria"):
        rows = "".join(f"<tr><td>{escape(k)}</td><td>{_score(v.get('score'))}</td><td>{len(v.get('flagged', []))}</td></tr>" for k, v in audit["criteria"].items())
        parts.append(f"<h2>Training data audit</h2><table><tr><th>criterion</th><th>score</th><th>rows flagged</th></tr>{rows}</table>")
    confusions = [s for s in results["strategies"] if s.get("confusion")]
    if confusions:
        parts.append("<h2>Confusion matrices</h2>" + "".join(_confusion(s) for s in confusions))
    parts.append("<h2>Where the strategies disagree</h2>" + _disagreements(results))
    body = "\n".join(parts)
    return f"<!doctype html><html lang=en><head><meta charset=utf-8><title>adaptlab report: {escape(task['name'])}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"


def _score(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _table(results: dict, metric: str) -> str:
    head = f"<tr><th>contender</th><th>kind</th><th>{escape(metric)}</th><th>95% CI</th><th>fit s</th><th>ms/query p50</th><th>p95</th><th>prompt tokens</th><th>$ / 1k queries</th><th>fit $</th></tr>"
    rows = []
    for s in results["strategies"]:
        lo, hi = (s.get("ci") or s.get("ci95"))[metric]  # ci95: results.json before every metric had an interval
        cost = s.get("cost_per_1k_queries")
        rows.append(
            f"<tr><td>{escape(s['name'])}</td><td>{escape((s.get('traits') or {}).get('kind', s['name']))}</td><td>{s['metrics'][metric]:.3f}</td><td>{lo:.3f}-{hi:.3f}</td><td>{s['fit_seconds']:.1f}</td><td>{(s.get('latency_ms_p50') or 0):.0f}</td>"
            f"<td>{s['latency_ms_p95']:.0f}</td><td>{s['prompt_tokens_mean']:.0f}</td><td>{'?' if cost is None else f'{cost:.4f}'}</td><td>{(s.get('fit_cost') or 0):.4f}</td></tr>"
        )
    prices = results.get("cost_assumptions") or {}
    note = f"<p class=muted>Costs at ${prices.get('dollars_per_hour', '?')}/hour of machine time on {escape(str(prices.get('device', '?')))} (set <code>costs</code> in the experiment).</p>" if prices else ""
    return f"<table>{head}{''.join(rows)}</table>{note}"


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
            cells.append("<td></td>" if value is None else f"<td>{value:.3f}" + (f"<br><span class=muted>{ci[0]:.2f}-{ci[1]:.2f}</span>" if ci else "") + "</td>")
        rows.append(f"<tr><td>{escape(s['name'])}</td>{''.join(cells)}</tr>")
    legend = "".join(f"<li><b>{escape(col)}</b>: {escape(why)}</li>" for _, col, why in shown)
    return f"<table>{head}{''.join(rows)}</table><ul class=muted>{legend}</ul>"


def _svg(width: int, height: int, content: str, label: str) -> str:
    return f"<svg class=chart role=img aria-label='{escape(label)}' width={width} height={height} viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg'>{content}</svg>"


def _axes(w, h, m, xlabel, ylabel, xticks, yticks) -> str:
    out = [f"<line x1={m} y1={h - m} x2={w - 10} y2={h - m} stroke=#444 /><line x1={m} y1=10 x2={m} y2={h - m} stroke=#444 />"]
    out += [f"<text x={x:.1f} y={h - m + 14} text-anchor=middle>{escape(t)}</text>" for x, t in xticks]
    out += [f"<text x={m - 4} y={y + 4:.1f} text-anchor=end>{escape(t)}</text>" for y, t in yticks]
    out.append(f"<text x={(w + m) / 2:.0f} y={h - 4} text-anchor=middle>{escape(xlabel)}</text><text x=12 y={h / 2:.0f} transform='rotate(-90 12 {h / 2:.0f})' text-anchor=middle>{escape(ylabel)}</text>")
    return "".join(out)


def _cost_chart(results: dict) -> str:
    """Total cost (fit + queries) against monthly volume, log-log, one line per strategy; break-even points marked."""
    import math

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
    for i, (name, fit, per) in enumerate(lines):
        color = COLORS[i % len(COLORS)]
        points = " ".join(f"{x(v):.1f},{y(fit + v / 1000 * per):.1f}" for v in volumes)
        content.append(f"<polyline fill=none stroke='{color}' stroke-width=2 points='{points}' /><text x={w - 150} y={20 + 14 * i} fill='{color}'>{escape(name)}</text>")
    for row in results.get("break_even_queries", []):
        if isinstance(row["queries"], int) and 1 <= row["queries"] <= 10**7:
            tuned = next(l for l in lines if l[0] == row["fine_tuned"])
            cx, cy = x(row["queries"]), y(tuned[1] + row["queries"] / 1000 * tuned[2])
            content.append(f"<circle class=break-even cx={cx:.1f} cy={cy:.1f} r=5 fill=none stroke=#000 /><text x={cx + 7:.1f} y={cy - 7:.1f}>break-even {escape(row['fine_tuned'])} vs {escape(row['prompted'])}: {row['queries']:,}</text>")
    notes = "".join(f"<li>{escape(r['fine_tuned'])} vs {escape(r['prompted'])}: {escape(str(r['queries']))} ({escape(r['why'])})</li>" for r in results.get("break_even_queries", []))
    return _svg(w, h, "".join(content), "cost against query volume") + (f"<ul>{notes}</ul>" if notes else "")


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
        content.append(f"<polyline fill=none stroke='{color}' stroke-width=2 points='{coords}' /><text x={w - 150} y={h - m - 14 * (k + 1)} fill='{color}'>{escape(name)}</text>")
    notes = "".join(f"<li>{escape(c['fine_tuned'])} overtakes {escape(c['prompted'])}: {('from n=' + str(c['crossover_n'])) if c['crossover_n'] else 'not within the sizes tried'}; {('significantly from n=' + str(c['significant_from_n'])) if c['significant_from_n'] else 'never significantly'}</li>" for c in sweep.get("comparisons", []))
    return _svg(w, h, "".join(content), "learning curve") + f"<ul>{notes}</ul>"


def _confusion(s: dict) -> str:
    columns = list(next(iter(s["confusion"].values())).keys())
    head = "<tr><th>expected \\ predicted</th>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr>"
    rows = "".join(f"<tr><td>{escape(e)}</td>" + "".join(f"<td>{n or ''}</td>" for n in counts.values()) + "</tr>" for e, counts in s["confusion"].items())
    return f"<h3>{escape(s['name'])}</h3><table>{head}{rows}</table>"


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
