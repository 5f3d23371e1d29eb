"""report.html's charts: the forest plot of scores, the document-update bars, cost against query volume, the
learning curve and the confusion-matrix heatmaps. Each returns an HTML fragment holding an inline SVG.
"""

from __future__ import annotations

import math
from html import escape

from adaptlab.evaluation.freshness import absorbed_by
from adaptlab.report.drawing import (
    COLORS,
    PAGE_WIDTH,
    axes,
    ci_pair,
    clip,
    is_number,
    note,
    number,
    place_labels,
    svg,
    text_width,
)
from adaptlab.tasks import task_kind


def _repeat_scores(s: dict, metric: str) -> list[float]:
    """The headline score of each repeat: `repeats` holds numbers, or dicts with the metric (or its `metrics`)."""
    scores = []
    for r in s.get("repeats") or []:
        value = (
            r if isinstance(r, (int, float)) else (r.get("metrics") or r).get(metric) if isinstance(r, dict) else None
        )
        if isinstance(value, (int, float)):
            scores.append(float(value))
    return scores


def _score(s: dict, metric: str) -> float | None:
    """A contender's score of `metric`, or None where results.json holds no number for it."""
    value = (s.get("metrics") or {}).get(metric)
    return float(value) if is_number(value) else None


def forest_chart(results: dict, metric: str) -> str:
    """Each contender's headline score as a dot on its 95% interval, ticks at its repeats, P(best) beside; the highest
    highlighted."""
    scale = float(task_kind(results["task"]["kind"]).metric(metric).scale)
    fmt = (lambda v: f"{v:.1f}") if scale > 1 else (lambda v: f"{v:.3f}")
    rows = _forest_rows(results, metric)
    values = [v for _, score, ci, reps, _ in rows for v in [score, *(ci or []), *reps] if v is not None]
    if not values:
        return "<p class=muted>No scores.</p>"
    step = scale / 10  # ticks every 0.1 (every 10 for chrF), the axis spans only the scores' range
    lo, hi = math.floor(min(values) / step + 1e-9) * step, math.ceil(max(values) / step - 1e-9) * step
    hi = max(hi, lo + step)
    best = (
        max(score for _, score, _, _, _ in rows if score is not None) if any(r[1] is not None for r in rows) else None
    )
    row_h, top, w = 26, 8, 900
    x0, x1 = 190, w - 250  # names left of the plot, score and P(best) right of it

    def x(v):
        return x0 + (x1 - x0) * (v - lo) / (hi - lo)

    axis_y = top + row_h * len(rows) + 4
    out = []
    for k in range(round((hi - lo) / step) + 1):
        t = lo + k * step
        out.append(
            f"<line x1={x(t):.1f} y1={top} x2={x(t):.1f} y2={axis_y} stroke=#eee /><text "
            f"x={x(t):.1f} y={axis_y + 14} text-anchor=middle>{round(t, 6):g}</text>"
        )
    out.append(
        f"<line x1={x0} y1={axis_y} x2={x1} y2={axis_y} stroke=#444 /><text x={(x0 + x1) / 2:.0f} "
        f"y={axis_y + 30} text-anchor=middle>{escape(metric)}</text>"
    )
    references = [
        (s["name"], _score(s, metric))
        for s in results["strategies"]
        if (s.get("traits") or {}).get("llm") is False and _score(s, metric) is not None
    ]
    out += [
        f"<line class=reference x1={x(v):.1f} y1={top} x2={x(v):.1f} y2={axis_y} stroke=#888 "
        f"stroke-dasharray='4 3'><title>{escape(n)} (reference): {fmt(v)}</title></line>"
        for n, v in references
    ]
    for i, row in enumerate(rows):
        cy, is_best = top + row_h * i + row_h / 2, row[1] is not None and row[1] == best
        out.append(_contender_row(row, cy, is_best, x, fmt, width=w, row_h=row_h, x0=x0, x1=x1))
    height = axis_y + 38
    power = results.get("power") or {}
    d = power.get("detectable_difference") if number(power.get("detectable_difference")) else None
    if d and d <= hi - lo:  # a bar as long as the smallest difference the test rows could detect
        height += 16
        out.append(
            f"<path class=detectable d='M{x0} {height - 4}h{x(lo + d) - x0:.1f}M{x0} "
            f"{height - 8}v8M{x(lo + d):.1f} {height - 8}v8' stroke=#444 stroke-width=1.5 fill=none "
            f"/><text x={x(lo + d) + 8:.1f} y={height}>smallest difference the test rows can detect: "
            f"{fmt(d)}</text>"
        )
    caption = _forest_legend(metric, rows, bool(references))
    if power:  # decide.statistics.power_summary: between the top two contenders
        caption += _power_caption(power, d, fmt, scale)
    return svg(w, height + 6, "".join(out), f"{metric} of each contender with its 95% interval") + caption


def _contender_row(row: tuple, cy: float, is_best: bool, x, fmt, *, width: int, row_h: int, x0: int, x1: int) -> str:
    """One contender's row of the forest plot, centred at `cy`: its name, interval, repeat ticks, dot, score and
    P(best), with a tooltip saying them all."""
    name, score, ci, reps, p_best = row
    label = f"{fmt(score)}" if score is not None else "n/a"
    interval = f"{fmt(ci[0])}-{fmt(ci[1])}" if ci else ""
    tip = (
        f"{name}: {label}"
        + (f" (95% CI {interval})" if ci else "")
        + (f", repeats {', '.join(fmt(r) for r in reps)}" if reps else "")
        + (f", P(best) {p_best:.2f}" if p_best is not None else "")
    )
    g = [f"<g class='contender{' best' if is_best else ''}'><title>{escape(tip)}</title>"]
    if is_best:
        g.append(f"<rect x=0 y={cy - row_h / 2:.1f} width={width} height={row_h} fill=#fff3cd />")
    g.append(
        f"<text x={x0 - 8} y={cy + 4:.1f} "
        f"text-anchor=end{' font-weight=bold' if is_best else ''}>{escape(clip(name, 26))}</text>"
    )
    if ci:
        a, b = x(ci[0]), x(ci[1])
        g.append(
            f"<line class=ci x1={a:.1f} y1={cy:.1f} x2={b:.1f} y2={cy:.1f} stroke=#1f77b4 "
            f"stroke-width=2 /><path d='M{a:.1f} {cy - 5:.1f}v10M{b:.1f} {cy - 5:.1f}v10' "
            "stroke=#1f77b4 />"
        )
    g += [
        f"<line class=repeat x1={x(r):.1f} y1={cy - 7:.1f} x2={x(r):.1f} y2={cy + 7:.1f} "
        "stroke=#333 stroke-opacity=.7 />"
        for r in reps
    ]
    if score is not None:
        g.append(
            f"<circle class=score cx={x(score):.1f} cy={cy:.1f} r={6 if is_best else 4.5} "
            f"fill={'#d62728' if is_best else '#1f77b4'} />"
        )
    g.append(f"<text x={x1 + 12} y={cy + 4:.1f}>{label}" + (f" ({interval})" if ci else "") + "</text>")
    if p_best is not None:
        g.append(f"<text class=p-best x={x1 + 150} y={cy + 4:.1f}>P(best) {p_best:.2f}</text>")
    return "".join(g) + "</g>"


def _forest_rows(results: dict, metric: str) -> list[tuple]:
    """Each contender's (name, score, 95% interval, repeat scores, P(best)), None where results.json has no number."""
    rows = []
    for s in results["strategies"]:
        ci = ci_pair((s.get("ci") or s.get("ci95") or {}).get(metric))
        rows.append(
            (
                s["name"],
                _score(s, metric),
                ci,
                _repeat_scores(s, metric),
                s.get("p_best") if number(s.get("p_best")) else None,
            )
        )
    return rows


def _forest_legend(metric: str, rows: list[tuple], references: bool) -> str:
    """The forest plot's caption: what its dots, lines and ticks show, naming only the marks it has."""
    parts = (
        ["the score on the test rows (dot)", "its 95% interval (line)"]
        + (["each reference's score, the line an LLM contender must beat (dashed)"] if references else [])
        + (["each repeat (ticks)"] if any(r[3] for r in rows) else [])
        + (
            ["the share of resamples in which it scores highest, P(best)"]
            if any(r[4] is not None for r in rows)
            else []
        )
    )
    return f"<p class=muted>{escape(metric)}: " + ", ".join(parts) + "; the highest is highlighted.</p>"


def _power_caption(power: dict, d: float | None, fmt, scale: float) -> str:
    """The paragraph under the forest plot on what the test rows can tell apart between the top two contenders."""
    rows_n, pair = (
        escape(str(power.get("rows", "these"))),
        " and ".join(escape(str(b)) for b in power.get("between") or []),
    )
    caption = ""
    if d:
        caption += (
            f"<p class=power>with {rows_n} test rows, differences under {fmt(d)} cannot be told "
            f"apart (80% power, 5% level{'; between ' + pair if pair else ''})."
        )
        if number(power.get("rows_to_settle")) and number(power.get("difference")):
            caption += (
                f" Their gap of {power['difference']:+.{1 if scale > 1 else 3}f} would take about "
                f"{power['rows_to_settle']:,.0f} test rows to settle."
            )
        caption += "</p>"
    elif pair:
        caption += (
            f"<p class=power>{pair} differ by the same amount on all {rows_n} test rows: no spread "
            "to size a detectable difference by.</p>"
        )
    return caption


def update_chart(results: dict) -> str:
    """Per contender, the update questions' score and stale-answer share before and after the documents changed
    (bars with 95% intervals), then how each absorbed the change and what that took."""
    update = results["updates"]
    rows = [(name, u) for name, u in (update.get("contenders") or {}).items() if isinstance(u, dict)]
    if not rows:
        return note("No contender was asked the update questions.")
    panel, bar, m, top = 300, 9, 150, 28
    h = top + len(rows) * (2 * bar + 12) + 30
    content = []
    for p, (key, title) in enumerate(
        (
            ("score", f"{results['task']['metric']} against the new answers"),
            ("stale", "share still giving the old fact (stale)"),
        )
    ):
        x0 = m + p * (panel + 40)
        content.append(
            f"<text x={x0} y=14 font-weight=bold>{escape(title)}</text><line x1={x0} y1={top - 4} "
            f"x2={x0} y2={h - 24} stroke=#444 />"
        )
        content += [
            f"<text x={x0 + panel * t:.1f} y={h - 10} text-anchor=middle>{t:.1f}</text><line "
            f"x1={x0 + panel * t:.1f} y1={top - 4} x2={x0 + panel * t:.1f} y2={h - 24} stroke=#eee />"
            for t in (0.0, 0.5, 1.0)
        ]
        for i, (name, u) in enumerate(rows):
            y = top + i * (2 * bar + 12)
            if p == 0:
                content.append(
                    f"<text x={m - 6} y={y + bar + 4} "
                    f"text-anchor=end><title>{escape(name)}</title>{escape(clip(name, 20))}</text>"
                )
            for j, (side, color) in enumerate((("before", "#bbb"), ("after", COLORS[0]))):
                value, ci = (u.get(side) or {}).get(key), ci_pair((u.get(side) or {}).get(f"{key}_ci"))
                if not is_number(value):
                    continue  # a side the run did not measure: no bar
                yy = y + j * bar
                content.append(
                    f"<g class=update-bar><title>{escape(name)} {side}: {value:.3f}"
                    + (f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else "")
                    + f"</title><rect x={x0} y={yy} width={panel * value:.1f} height={bar - 1} fill='{color}' />"
                    + (
                        f"<line x1={x0 + panel * ci[0]:.1f} y1={yy + bar / 2:.1f} "
                        f"x2={x0 + panel * ci[1]:.1f} y2={yy + bar / 2:.1f} stroke=#000 />"
                        if ci
                        else ""
                    )
                    + "</g>"
                )
    chart = svg(
        m + 2 * (panel + 40), h, "".join(content), "score and stale answers before and after the document update"
    )
    head = (
        "<tr><th>contender</th><th>score before</th><th>score after</th><th>stale before</th><th>stale "
        "after</th><th>absorbed by</th><th>seconds</th><th>$</th></tr>"
    )
    body = "".join(_update_row(name, u) for name, u in rows)
    changed = ", ".join(
        [str(c) for c in update.get("changed") or []] + [f"{a} (new)" for a in update.get("added") or []]
    )
    asked = f"{escape(str(update['questions']))} questions" if "questions" in update else "Questions"
    return (
        f"<p class=muted>{asked} about the changed "
        f"documents{f' ({escape(changed)})' if changed else ''}, asked before the change and again "
        "after it. "
        "Grey: before; blue: after. A contender that reads the documents re-indexed only the changed "
        "files; one answering from its weights answers the same until retrained.</p>"
        + chart
        + f"<table>{head}{body}</table>"
    )


def _update_row(name: str, u: dict) -> str:
    """One contender's update figures and how it absorbed the change; what the run did not record is blank."""
    before, after, absorb = u.get("before") or {}, u.get("after") or {}, u.get("absorb") or {}
    how = absorbed_by(absorb) if absorb.get("how") else ""
    return (
        f"<tr><td>{escape(name)}</td><td>{number(before.get('score'))}</td>"
        f"<td>{number(after.get('score'))}</td><td>{number(before.get('stale'), '.0%')}</td>"
        f"<td>{number(after.get('stale'), '.0%')}</td>"
        "<td "
        f"title='{escape(str(absorb.get('note', '')))}'>{escape(how)}</td>"
        f"<td>{number(absorb.get('seconds'), '.1f')}</td>"
        f"<td>{number(absorb.get('dollars'), '.4f')}</td></tr>"
    )


def cost_chart(results: dict) -> str:
    """Total cost (fit + queries) against monthly volume, log-log, one line per strategy; break-even points marked."""
    lines = [
        (s["name"], float(s.get("fit_cost") or 0.0), float(s["cost_per_1k_queries"]))
        for s in results["strategies"]
        if number(s.get("cost_per_1k_queries"))
    ]
    if not lines:
        return "<p class=muted>No costs: set prices for remote models.</p>"
    volumes = [10**e for e in range(0, 8)]
    totals = [fit + v / 1000 * per for _, fit, per in lines for v in volumes]
    lo, hi = (
        math.log10(max(min(t for t in totals if t > 0) if any(t > 0 for t in totals) else 1e-6, 1e-6)),
        math.log10(max(max(totals), 1e-6) * 1.5),
    )
    w, h, m = 720, 340, 60

    def x(v):
        return m + (w - m - 10) * math.log10(v) / 7

    def y(c):
        return (h - m) - (h - m - 10) * (math.log10(max(c, 10**lo)) - lo) / max(hi - lo, 1e-9)

    content = [
        axes(
            w,
            h,
            m,
            "queries",
            "total $ (fit + queries)",
            [(x(v), f"1e{int(math.log10(v))}") for v in volumes],
            [(y(10**e), f"{10**e:g}") for e in range(math.ceil(lo), math.floor(hi) + 1)],
        )
    ]
    names = [clip(name, 24) for name, _, _ in lines]
    lx = w + 8  # the legend right of the plot, where no line runs
    legend = (lx - 4, 8, max(text_width(n) for n in names) + 28, 14 * len(lines) + 4)
    for i, (name, fit, per) in enumerate(lines):
        color = COLORS[i % len(COLORS)]
        points = " ".join(f"{x(v):.1f},{y(fit + v / 1000 * per):.1f}" for v in volumes)
        content.append(f"<polyline fill=none stroke='{color}' stroke-width=2 points='{points}' />")
        content.append(
            f"<g class=legend><title>{escape(name)}</title><line x1={lx:.1f} y1={16 + 14 * i} "
            f"x2={lx + 16:.1f} y2={16 + 14 * i} stroke='{color}' stroke-width=2 /><text "
            f"x={lx + 20:.1f} y={20 + 14 * i} fill='{color}'>{escape(names[i])}</text></g>"
        )
    marks = []
    paybacks = [r for r in results.get("break_even_queries") or [] if isinstance(r, dict)]
    for row in paybacks:
        tuned = next((line for line in lines if line[0] == row.get("fine_tuned")), None)
        if tuned and isinstance(row.get("queries"), int) and 1 <= row["queries"] <= 10**7 and "prompted" in row:
            text = f"break-even {clip(row['fine_tuned'], 20)} vs {clip(row['prompted'], 20)}: {row['queries']:,}"
            marks.append(
                (
                    (x(row["queries"]), y(tuned[1] + row["queries"] / 1000 * tuned[2])),
                    text,
                    f"{row['fine_tuned']} vs {row['prompted']}: {row['queries']:,} queries",
                )
            )
    boxes = place_labels(
        [a for a, _, _ in marks], [text_width(t) for _, t, _ in marks], (m + 2, 4, w - 4, h - m - 2), avoid=[legend]
    )
    for (cx, cy), _, _ in marks:
        content.append(f"<circle class=break-even cx={cx:.1f} cy={cy:.1f} r=5 fill=none stroke=#000 />")
    for ((cx, cy), text, tip), (bx, by, bw, bh) in zip(marks, boxes):
        near_x, near_y = min(max(cx, bx), bx + bw), min(max(cy, by), by + bh)
        if math.hypot(near_x - cx, near_y - cy) > 12:  # moved away from its point: a leader line back to it
            content.append(f"<line x1={cx:.1f} y1={cy:.1f} x2={near_x:.1f} y2={near_y:.1f} stroke=#999 />")
        content.append(
            f"<g class=break-even-label><title>{escape(tip)}</title><rect x={bx:.1f} y={by:.1f} "
            f"width={bw:.1f} height={bh:.1f} fill=#fff fill-opacity=.85 /><text x={bx:.1f} "
            f"y={by + bh - 3:.1f}>{escape(text)}</text></g>"
        )
    notes = "".join(
        f"<li>{escape(str(r.get('fine_tuned', '?')))} vs {escape(str(r.get('prompted', '?')))}: "
        f"{escape(str(r.get('queries', '?')))}" + (f" ({escape(str(r['why']))})" if r.get("why") else "") + "</li>"
        for r in paybacks
    )
    return svg(lx + legend[2], h, "".join(content), "cost against query volume") + (
        f"<ul>{notes}</ul>" if notes else ""
    )


def curve_chart(sweep: dict) -> str:
    """Each contender's mean score against the number of labeled examples (sweep.json), and where fine-tuning overtakes
    prompting."""
    sizes = list(sweep.get("sizes") or [])
    curve = {
        name: [p for p in points or [] if isinstance(p, dict) and p.get("n") in sizes and number(p.get("mean"))]
        for name, points in (sweep.get("curve") or {}).items()
    }
    if not any(curve.values()):
        return note("sweep.json holds no learning-curve points.")
    metric = str(sweep.get("metric", "score"))
    w, h, m = 720, 300, 60
    span = max(len(sizes) - 1, 1)
    scale = 100.0 if metric == "chrf" else 1.0

    def x(i):
        return m + (w - m - 10) * i / span

    def y(v):
        return (h - m) - (h - m - 10) * v / scale

    content = [
        axes(
            w,
            h,
            m,
            "labeled examples",
            metric,
            [(x(i), str(n)) for i, n in enumerate(sizes)],
            [(y(t * scale), f"{t * scale:g}") for t in (0, 0.25, 0.5, 0.75, 1.0)],
        )
    ]
    for k, (name, points) in enumerate(curve.items()):
        color = COLORS[k % len(COLORS)]
        coords = " ".join(f"{x(sizes.index(p['n'])):.1f},{y(p['mean']):.1f}" for p in points)
        content.append(
            f"<polyline fill=none stroke='{color}' stroke-width=2 points='{coords}' /><text "
            f"x={w - 150} y={h - m - 14 * (k + 1)} "
            f"fill='{color}'><title>{escape(name)}</title>{escape(clip(name, 22))}</text>"
        )
    notes = "".join(
        f"<li>{escape(str(c.get('fine_tuned', '?')))} overtakes "
        f"{escape(str(c.get('prompted', '?')))}: "
        f"{('from n=' + str(c['crossover_n'])) if c.get('crossover_n') else 'not within the sizes tried'}; "
        + (f"significantly from n={c['significant_from_n']}" if c.get("significant_from_n") else "never significantly")
        + "</li>"
        for c in sweep.get("comparisons") or []
        if isinstance(c, dict)
    )
    return svg(w, h, "".join(content), "learning curve") + (f"<ul>{notes}</ul>" if notes else "")


def heatmap(s: dict, index: int) -> str:
    """The confusion matrix as a grid no wider than the page: shade by the row's share, counts where they fit, full
    names in tooltips."""
    confusion = {str(e): counts for e, counts in s["confusion"].items() if isinstance(counts, dict)}
    rows = list(confusion)
    columns = list(
        dict.fromkeys(str(p) for counts in confusion.values() for p in counts)
    )  # the labels, then "(other)" (a row a run left empty adds none)
    if not columns:
        return ""
    chars = min(
        max(len(n) for n in rows + columns), 32 if len(columns) <= 20 else 22
    )  # few labels leave room for longer names
    left = math.ceil(18 + text_width("x" * chars) + 6)  # the "expected" title, then the row names
    # 77 labels: (1100 - 170) // 78 columns = 11 px a cell, room for 10px names but not for counts
    cell = max(min((PAGE_WIDTH - left - 8) // len(columns), 32), 3)
    size = min(11, cell - 1)  # names' font size: one row's height
    top = math.ceil(
        18 + (text_width("x" * chars, size) if size >= 5 else 0) + 6
    )  # the "predicted" title, then the rotated names
    width, height = left + cell * len(columns) + 8, top + cell * len(rows) + 8
    out = [
        f"<text x={left + cell * len(columns) / 2:.1f} y=12 text-anchor=middle>predicted</text><text "
        f"x=12 y={top + cell * len(rows) / 2:.1f} transform='rotate(-90 12 "
        f"{top + cell * len(rows) / 2:.1f})' text-anchor=middle>expected</text>"
    ]
    if size >= 5:  # smaller names are unreadable: the cells' tooltips still name them
        out.append(f"<g font-size={size:.1f}>")
        out += [
            f"<text x={left - 4:.1f} y={top + cell * (i + 0.5) + size * 0.35:.1f} "
            f"text-anchor=end><title>{escape(n)}</title>{escape(clip(n, chars))}</text>"
            for i, n in enumerate(rows)
        ]
        out += [
            f"<text transform='translate({left + cell * (j + 0.5) + size * 0.35:.1f} {top - 4:.1f}) "
            f"rotate(-90)'><title>{escape(n)}</title>{escape(clip(n, chars))}</text>"
            for j, n in enumerate(columns)
        ]
        out.append("</g>")
    count_size = min(11, int(cell * 0.6))
    gap = 1 if cell >= 6 else 0
    # the empty grid is one rect filled with a pattern; only answered cells get their own (77 labels: ~6,000 cells, ~500
    # answered)
    out.append(
        f"<defs><pattern id=grid{index} x={left} y={top} width={cell} height={cell} "
        f"patternUnits=userSpaceOnUse><rect width={cell - gap} height={cell - gap} fill=#f3f3f3 "
        "/></pattern></defs>"
        f"<rect class=grid x={left} y={top} width={cell * len(columns)} height={cell * len(rows)} "
        f"fill='url(#grid{index})' />"
    )
    for i, (expected, counts) in enumerate(confusion.items()):
        total = sum(counts.values())
        for j, predicted in enumerate(columns):
            n = counts.get(predicted, 0)
            share = n / total if total else 0.0
            cx, cy = left + cell * j, top + cell * i
            if not n:
                continue
            shade = 0.12 + 0.88 * share  # a single row among many stays visible
            color = "#1f77b4" if predicted == expected else "#d62728"
            out.append(
                f"<g><title>{escape(f'expected {expected}, answered {predicted}: {n} of {total} ({share:.0%})')}"
                "</title><rect "
                ""
                ""
                ""
                f"class=cell x={cx} y={cy} width={cell - gap} height={cell - gap} fill={color} "
                f"fill-opacity={shade:.2f} />"
            )
            if count_size >= 8 and text_width(str(n), count_size) <= cell - 3:
                out.append(
                    f"<text x={cx + (cell - gap) / 2:.1f} "
                    f"y={cy + (cell - gap) / 2 + count_size * 0.35:.1f} text-anchor=middle "
                    f"font-size={count_size} fill={'#fff' if shade > 0.55 else '#222'}>{n}</text>"
                )
            out.append("</g>")
    chart = svg(width, height, "".join(out), "confusion matrix of " + s["name"])
    return f"<figure><figcaption>{escape(s['name'])}</figcaption>{chart}</figure>"
