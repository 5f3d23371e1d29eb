"""`report.html`: one self-contained page (inline CSS and SVG, no scripts, no external assets) from results.json.

Sections: the recommendation and its reasons, a forest plot of each contender's score
with its interval, the side-by-side table, cost against query volume with the
break-even points, the learning curve (when the run folder holds a sweep.json), the
audit scores, confusion matrices as heatmaps, one test conversation turn by turn with every
contender's answer beside the real one (when the test rows are turns of conversations), and the
test rows where the strategies disagree. Every piece of text from the data is escaped.

The page is assembled here; its charts are in report.charts, its tables in report.tables, and the SVG
pieces both draw with in report.drawing. Every chart fits the page's 1100px body.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from adaptlab.files import write_text_atomic
from adaptlab.report.charts import cost_chart, curve_chart, forest_chart, heatmap, update_chart
from adaptlab.report.drawing import note, place_labels
from adaptlab.report.judged import judged_section
from adaptlab.report.tables import (
    audit_table,
    conversation_table,
    disagreements_table,
    distillation_table,
    knowledge_table,
    side_by_side_table,
    tuning_of,
    tuning_table,
)
from adaptlab.results import CompareResults, load_results, load_sweep, upgrade
from adaptlab.tasks import task_kind

__all__ = ["place_labels", "render", "write_report"]  # place_labels: the label placer the tests check on its own

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}table.text td,table.text th{text-align:left}
.choice{font-size:1.3em;font-weight:bold}
.muted{color:#666}.warn{color:#a15c00}table.text td{overflow-wrap:anywhere}span.ci{white-space:nowrap;font-size:.85em}
svg.chart{font:11px system-ui,sans-serif;max-width:100%;height:auto;display:block}
.heatmaps{display:flex;flex-wrap:wrap;gap:1em 2em;align-items:flex-start}
figure{margin:0;max-width:100%}figcaption{font-weight:bold}
"""


def write_report(run_dir: Path) -> Path:
    """Render run_dir/results.json (and sweep.json, if there) into run_dir/report.html."""
    run_dir = Path(run_dir)
    results, mismatch = _read(run_dir / "results.json", load_results)
    sweep, _ = _read(run_dir / "sweep.json", load_sweep) if (run_dir / "sweep.json").is_file() else (None, None)
    page = render(results, sweep)
    if mismatch:  # rendered as far as it goes, and said
        page = page.replace("</h1>", f"</h1><p class=warn>{escape(mismatch)}</p>", 1)
    path = run_dir / "report.html"
    write_text_atomic(path, page)
    return path


def _read(path: Path, load) -> tuple[dict, str | None]:
    """The file through its typed model (adaptlab.results: validated, an older run's upgraded), as the page reads it;
    a file the model refuses is still shown as far as it goes, with the reason (the second value)."""
    from adaptlab.errors import AdaptlabError

    try:
        return load(path).model_dump(mode="json", exclude_unset=True), None
    except AdaptlabError as exc:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return (upgrade(raw) if load is load_results else raw), f"{exc}; the report shows what it can."


def render(results: dict, sweep: dict | None = None) -> str:
    """report.html's page from results.json (and sweep.json): each optional section shown when the run recorded it,
    a short muted line where it recorded the section but nothing in it."""
    task = results["task"]
    strategies = results.get("strategies") or []
    rows = len((strategies[0].get("predictions") or []) if strategies else [])
    seed = f", seed {escape(str(results['seed']))}" if results.get("seed") is not None else ""
    parts = [
        f"<h1>adaptlab: {escape(task['name'])}</h1>",
        f"<p class=muted>{escape(task['kind'])} task, base model "
        f"{escape(str(results.get('base_model', '?')))}, {rows} test rows{seed}</p>",
    ]
    parts.append("<h2>Recommendation</h2>" + recommendation(results.get("recommendation") or {}))
    if not strategies:
        parts.append(note("This run recorded no contenders: nothing to compare."))
    else:
        parts += contender_sections(results, sweep)
    body = "\n".join(parts)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>adaptlab report: "
        f"{escape(task['name'])}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def recommendation(rec: dict) -> str:
    """The choice in large print, its reasons and warnings."""
    if not rec.get("choice"):
        return note("No recommendation recorded.")
    tolerance = rec.get("tolerance")
    return (
        f"<p class=choice>{escape(str(rec['choice']))}</p>"
        + (
            f"<p class=muted>Tolerance: {tolerance:g}, the largest loss of the headline a cheaper contender may cost; "
            "it must be shown within it to be chosen.</p>"
            if isinstance(tolerance, (int, float))
            else ""
        )
        + "<ul>"
        + "".join(f"<li>{escape(str(r))}</li>" for r in rec.get("reasons") or [])
        + "".join(f"<li class=warn>warning: {escape(str(w))}</li>" for w in rec.get("warnings") or [])
        + "</ul>"
    )


def contender_sections(results: dict, sweep: dict | None) -> list[str]:
    """Every section about the contenders, in page order; an optional one only where results.json (or sweep.json) holds
    it."""
    task, strategies = results["task"], results["strategies"]
    metric = task["metric"]
    parts = [
        "<h2>Scores at a glance</h2>" + forest_chart(results, metric),
        "<h2>Side by side</h2>" + side_by_side_table(results, metric),
    ]
    typed = CompareResults.model_validate(results) if results.get("judged") else None
    if typed is not None and typed.judged is not None:  # the section reads the typed results, not string keys
        answers = {s.name: s.predictions for s in typed.strategies}
        parts.append("<h2>Judged quality: people and a judge</h2>" + judged_section(typed.judged, answers))
    if task_kind(task["kind"]).abstains:
        parts.append(
            "<h2>Answers from the documents: quality beside abstention and hallucination</h2>"
            + knowledge_table(results)
        )
    tuned = [s for s in strategies if tuning_of(s)]
    if tuned:
        parts.append(
            "<h2>Tuning: each contender's settings searched on the dev rows</h2>" + tuning_table(tuned, metric)
        )
    if results.get("updates"):
        parts.append("<h2>After a document update, without retraining</h2>" + update_chart(results))
    parts.append("<h2>Cost against query volume</h2>" + cost_chart(results))
    if results.get("distillation"):
        parts.append("<h2>Distillation</h2>" + distillation_table(results["distillation"]))
    if sweep:
        parts.append("<h2>Learning curve</h2>" + curve_chart(sweep))
    if (results.get("audit") or {}).get("criteria"):
        parts.append("<h2>Training data audit</h2>" + audit_table(results["audit"]["criteria"]))
    confusions = [s for s in strategies if s.get("confusion")]
    if confusions:
        maps = "".join(heatmap(s, i) for i, s in enumerate(confusions))
        parts.append(
            "<h2>Confusion matrices</h2>"
            + (
                "<p class=muted>Rows: the expected label; columns: the answer given. Shade: the "
                "share of the row, blue on the diagonal (right), red off it (confused). Hover a name "
                "or a cell for the full text.</p>"
                f"<div class=heatmaps>{maps}</div>"
                if maps
                else note("The confusion matrices recorded no labels.")
            )
        )
    shown = conversation_table(results)
    if shown:  # the test rows are turns of conversations (results.json: predictions' conversation and turn)
        parts.append("<h2>A conversation</h2>" + shown)
    parts.append("<h2>Where the strategies disagree</h2>" + disagreements_table(results))
    return parts
