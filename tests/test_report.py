"""report.html: self-contained, escaped, charts that fit the page, rendered by headless Chromium without console
errors."""

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import chromium_browser

from adaptlab.report import place_labels, render, write_report


def test_compare_writes_a_report_chromium_renders_with_its_charts(card_experiment):
    from adaptlab.runs.compare import run_compare
    from adaptlab.runs.sweep import run_sweep

    test_file = card_experiment.parent / "test.jsonl"
    test_file.write_text(
        test_file.read_text()
        + json.dumps(
            {
                "input": "<img src=x onerror=alert(1)> my card <script>console.error(1)</script>",
                "output": "card_arrival",
            }
        )
        + "\n"
    )
    results, run = run_compare(card_experiment, card_experiment.parent / "run")
    assert (run / "report.html").is_file()
    run_sweep(card_experiment, sizes=(6,), seeds=1, out=run)  # sweep.json beside results.json adds the learning curve
    page = write_report(run).read_text()
    assert "<script" not in page and "<img" not in page and "&lt;img src=x" in page  # data is escaped
    assert (
        "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    )  # no external assets
    browser = chromium_browser()
    try:
        browser.get(Path(run / "report.html").as_uri())
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        charts = {c.get_attribute("aria-label"): c for c in browser.find_elements("css selector", "svg.chart")}
        names = [s["name"] for s in results["strategies"]]
        assert list(charts) == [
            "accuracy of each contender with its 95% interval",
            "cost against query volume",
            "learning curve",
        ] + [f"confusion matrix of {n}" for n in names]
        assert len(
            charts["accuracy of each contender with its 95% interval"].find_elements("css selector", "g.contender")
        ) == len(names)
        assert all(
            len(charts[c].find_elements("css selector", "polyline")) >= 3
            for c in ("cost against query volume", "learning curve")
        )
        text = browser.find_element("tag name", "body").text
        assert "Recommendation" in text and "Confusion matrices" in text and "Where the strategies disagree" in text
        assert results["recommendation"]["choice"] in text
    finally:
        browser.quit()


def test_report_renders_old_results_and_remote_strategies_without_costs():
    results = {
        "task": {"name": "t", "kind": "classify", "metric": "accuracy", "labels": ["a", "b"]},
        "base_model": "m",
        "seed": 0,
        "recommendation": {"choice": "few_shot", "reasons": ["because <b>"], "warnings": []},
        "strategies": [
            {
                "name": "few_shot",
                "metrics": {"accuracy": 0.5},
                "ci95": {"accuracy": [0.1, 0.9]},
                "fit_seconds": 0,
                "latency_ms_p95": 1,
                "prompt_tokens_mean": 3,
                "cost_per_1k_queries": None,
                "predictions": [{"input": "x", "expected": "a", "predicted": "b", "line": 1}],
            }
        ],
    }
    page = render(results)
    assert "because &lt;b&gt;" in page and "No costs" in page and "0.100-0.900" in page


class _Elements(HTMLParser):
    """Every start tag of a page as (tag, attributes, the text right after it), in order."""

    def __init__(self, page: str):
        super().__init__()
        self.found: list[tuple[str, dict, str]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs), ""))

    def handle_startendtag(self, tag, attrs):
        self.found.append((tag, dict(attrs), ""))

    def handle_data(self, data):
        if self.found:
            tag, attrs, text = self.found[-1]
            self.found[-1] = (tag, attrs, text + data)


def _svg_of(page: str, label: str) -> str:
    """The one chart whose aria-label is `label`."""
    start = page.index(f"aria-label='{label}'")
    return page[start : page.index("</svg>", start)]


def _with_class(fragment: str, name: str) -> list[dict]:
    return [attrs for _, attrs, _ in _Elements(fragment).found if name in (attrs.get("class") or "").split()]


def _strategy(
    name: str, score: float, ci: list[float], labels: list[str] | None = None, seed: int = 0, **extra
) -> dict:
    """A contender as results.json holds it; with labels, a confusion matrix where about `score` of each row is
    right."""
    out = {
        "name": name,
        "metrics": {"accuracy": score},
        "ci": {"accuracy": ci},
        "fit_seconds": 1.0,
        "latency_ms_p50": 20,
        "latency_ms_p95": 30,
        "prompt_tokens_mean": 90,
        "cost_per_1k_queries": 0.05,
        "fit_cost": 0.0,
        "predictions": [{"input": "x", "expected": "a", "predicted": name, "line": 1}],
        **extra,
    }
    if labels:
        columns = labels + ["(other)"]
        out["confusion"] = {e: {c: 0 for c in columns} for e in labels}
        for i, e in enumerate(
            labels
        ):  # 10 rows each: round(10 * score) right, the rest spread over the next labels and "(other)"
            right = round(10 * score)
            out["confusion"][e][e] = right
            for k in range(10 - right):
                out["confusion"][e][columns[(i + 1 + (k * 7 + seed) % len(labels)) % len(columns)]] += 1
    return out


def _classify(labels: list[str], **extra) -> dict:
    """A classify run with three contenders, their costs and break-even points."""
    strategies = [
        _strategy("zero_shot", 0.31, [0.24, 0.39], labels, seed=1, cost_per_1k_queries=0.08),
        _strategy(
            "few_shot",
            0.68,
            [0.60, 0.75],
            labels,
            seed=2,
            cost_per_1k_queries=0.2,
            p_best=0.05,
            repeats=[0.65, 0.68, 0.70],
        ),
        _strategy(
            "lora",
            0.83,
            [0.75, 0.90],
            labels,
            seed=3,
            cost_per_1k_queries=0.01,
            fit_cost=0.5,
            p_best=0.95,
            repeats=[0.80, 0.83, 0.85],
        ),
    ]
    return {
        "task": {"name": "cards", "kind": "classify", "metric": "accuracy", "labels": labels},
        "base_model": "m",
        "seed": 0,
        "recommendation": {"choice": "lora", "reasons": ["lora scored the highest"], "warnings": []},
        "strategies": strategies,
        "break_even_queries": [
            {"fine_tuned": "lora", "prompted": "zero_shot", "queries": 7143, "why": "w"},
            {"fine_tuned": "lora", "prompted": "few_shot", "queries": 2632, "why": "w"},
        ],
        **extra,
    }


LONG_LABELS = [f"card_payment_wrong_exchange_rate_for_transfer_{i}" if i % 3 == 0 else f"label_{i}" for i in range(12)]


def _qa() -> dict:
    """The northwind qa run's figures (4 contenders, 4 break-even points in one corner of the cost chart), with long
    answers."""
    measures = [
        "qa_score",
        "token_f1",
        "rouge_l",
        "similarity",
        "false_abstention_rate",
        "abstention_rate",
        "hallucination_rate",
        "unsupported_figures",
    ]
    long_answer = (
        "Prior-authorization at Northwind Health is a process where a provider asks before a service; see "
        + "Northwind_Standard_Benefits_Details.pdf#page=32" * 6
    )
    strategies = []
    for name, score, ci, per, fit in [
        ("zero_shot", 0.146, [0.115, 0.175], 0.0243, 0.0),
        ("rag", 0.212, [0.158, 0.266], 0.0836, 0.0007),
        ("lora_qa", 0.342, [0.218, 0.475], 0.0149, 0.0045),
        ("lora_docs", 0.373, [0.291, 0.468], 0.0148, 0.0159),
    ]:
        metrics = {m: score for m in measures} | (
            {"recall_at_k": 0.7, "mrr": 0.58, "citing": 0.0} if name == "rag" else {}
        )
        predictions = [
            {
                "input": f"question {i} " * 20,
                "expected": "x" * 150,
                "predicted": f"{name}: {long_answer}",
                "line": i,
                "passages": [{"source": "Northwind_Health_Plus_Benefits_Details.pdf#page=64"}] * 4
                if name == "rag"
                else [],
            }
            for i in range(5)
        ]
        strategies.append(
            {
                "name": name,
                "metrics": metrics,
                "ci": {m: ci for m in metrics},
                "fit_seconds": 10.0,
                "latency_ms_p50": 500,
                "latency_ms_p95": 900,
                "prompt_tokens_mean": 56,
                "cost_per_1k_queries": per,
                "fit_cost": fit,
                "predictions": predictions,
                "p_best": {"lora_qa": 0.17, "lora_docs": 0.83}.get(name),
            }
        )
    return {
        "task": {"name": "northwind-benefits", "kind": "qa", "metric": "qa_score", "labels": []},
        "base_model": "smollm2-135m-instruct",
        "seed": 0,
        "recommendation": {"choice": "lora_docs", "reasons": ["lora_docs scored the highest qa_score"], "warnings": []},
        "strategies": strategies,
        "cost_assumptions": {"device": "cpu", "dollars_per_hour": 0.1},
        "power": {"detectable_difference": 0.12, "rows": 40, "between": ["lora_docs", "lora_qa"]},
        "break_even_queries": [
            {"fine_tuned": "lora_qa", "prompted": "zero_shot", "queries": 483, "why": "w"},
            {"fine_tuned": "lora_qa", "prompted": "rag", "queries": 56, "why": "w"},
            {"fine_tuned": "lora_docs", "prompted": "zero_shot", "queries": 1686, "why": "w"},
            {"fine_tuned": "lora_docs", "prompted": "rag", "queries": 222, "why": "w"},
        ],
    }


FOREST = "accuracy of each contender with its 95% interval"


def test_forest_plot_draws_one_row_per_contender_on_its_interval_and_highlights_the_highest():
    results = _classify([])
    page = render(results)
    assert page.index(FOREST) < page.index("<h2>Side by side")  # the picture comes before the table
    forest = _svg_of(page, FOREST)
    rows, lines, dots = _with_class(forest, "contender"), _with_class(forest, "ci"), _with_class(forest, "score")
    assert len(rows) == len(lines) == len(dots) == 3
    assert ["best" in r["class"] for r in rows] == [False, False, True]  # lora's 0.83 is the highest
    px = [
        (float(ln["x2"]) - float(ln["x1"])) / (s["ci"]["accuracy"][1] - s["ci"]["accuracy"][0])
        for ln, s in zip(lines, results["strategies"])
    ]
    assert max(px) / min(px) < 1.01  # one scale: each line is as long as its interval (to the rounding of .1 px)
    assert [float(ln["x1"]) for ln in lines] == sorted(float(ln["x1"]) for ln in lines)  # 0.24 < 0.60 < 0.75
    assert all(float(ln["x1"]) < float(d["cx"]) < float(ln["x2"]) for ln, d in zip(lines, dots))
    assert "0.310 (0.240-0.390)" in forest and "0.830 (0.750-0.900)" in forest


def test_forest_plot_marks_repeats_and_p_best_only_when_given():
    page = render(_classify([]))
    forest = _svg_of(page, FOREST)
    assert len(_with_class(forest, "repeat")) == 6  # few_shot's and lora's 3 repeats
    assert [t for tag, a, t in _Elements(forest).found if a.get("class") == "p-best"] == [
        "P(best) 0.05",
        "P(best) 0.95",
    ]
    assert "each repeat (ticks)" in page and "<th>P(best)</th>" in page

    plain = _classify([])
    for s in plain["strategies"]:
        s.pop("p_best", None), s.pop("repeats", None)
    page = render(plain)
    assert "P(best)" not in page and "class=repeat" not in page and "each repeat" not in page


def test_forest_plot_states_what_the_test_rows_can_detect_when_results_hold_power():
    power = {
        "metric": "accuracy",
        "rows": 40,
        "between": ["lora", "few_shot"],
        "difference": 0.15,
        "detectable_difference": 0.12,
        "rows_to_settle": 26,
    }  # decide's power_summary
    page = render(_classify([], power=power))
    assert (
        "with 40 test rows, differences under 0.120 cannot be told apart (80% power, 5% level; "
        "between lora and few_shot)." in page
    )
    assert "Their gap of +0.150 would take about 26 test rows to settle." in page
    assert len(_with_class(_svg_of(page, FOREST), "detectable")) == 1
    assert "cannot be told apart" not in render(_classify([]))
    same = render(_classify([], power=power | {"detectable_difference": None, "rows_to_settle": None}))
    assert "lora and few_shot differ by the same amount on all 40 test rows" in same and "class=detectable" not in same


def test_forest_plot_of_chrf_reads_on_its_0_to_100_scale():
    results = _classify([])
    for s, score in zip(results["strategies"], (40.0, 45.0, 52.5)):
        s["metrics"], s["ci"], s["repeats"] = {"chrf": score}, {"chrf": [score - 5, score + 5]}, None
    results["task"] |= {"kind": "generate", "metric": "chrf"}
    forest = _svg_of(render(results), "chrf of each contender with its 95% interval")
    assert "52.5 (47.5-57.5)" in forest
    assert {t for _, a, t in _Elements(forest).found if a.get("text-anchor") == "middle"} >= {
        "30",
        "60",
        "chrf",
    }  # ticks every 10


def test_confusion_heatmap_has_a_cell_per_answered_pair_on_a_labels_by_answers_grid():
    results = _classify(LONG_LABELS)
    page = render(results)
    heatmap = _svg_of(page, "confusion matrix of lora")
    confusion = results["strategies"][2]["confusion"]
    answered = [(e, p, n) for e, row in confusion.items() for p, n in row.items() if n]
    cells, grid = _with_class(heatmap, "cell"), _with_class(heatmap, "grid")[0]
    assert len(cells) == len(answered)
    size = float(grid["width"]) / 13  # 12 labels and "(other)"
    assert float(grid["height"]) == size * 12 and size >= 20  # few labels: room for counts
    spots = {
        (round((float(c["x"]) - float(grid["x"])) / size), round((float(c["y"]) - float(grid["y"])) / size))
        for c in cells
    }
    assert spots == {
        (list(confusion[e]).index(p), list(confusion).index(e)) for e, p, _ in answered
    }  # each in its row and column
    e, p, n = answered[0]
    assert f"<title>expected {e}, answered {p}: {n} of 10 ({n / 10:.0%})</title>" in heatmap
    assert (
        "<title>card_payment_wrong_exchange_rate_for_transfer_0</title>" in heatmap
        and "card_payment_wrong_exchange_rate_for_transfer_0</text>" not in heatmap
    )  # shown cut, named in full


@pytest.mark.parametrize("n", [8, 80])
def test_confusion_heatmap_fits_the_page_from_8_to_80_labels(n):
    page = render(_classify([f"intent_{i}_{'x' * (i % 30)}" for i in range(n)]))
    for name in ("zero_shot", "few_shot", "lora"):
        heatmap = _svg_of(page, f"confusion matrix of {name}")
        assert int(re.search(r"width=(\d+)", heatmap).group(1)) <= 1100
        counts = [t for tag, a, t in _Elements(heatmap).found if tag == "text" and t.isdigit()]
        assert (len(counts) > 0) == (n == 8)  # counts only where they fit: not in 80 columns of ~11 px


def test_placed_labels_overlap_neither_each_other_the_legend_nor_the_points_and_stay_inside():
    anchors = [
        (240, 260),
        (270, 255),
        (300, 262),
        (330, 250),
        (700, 40),
        (65, 270),
    ]  # a cluster, one at the right edge, one in the corner
    widths = [len(f"break-even lora_docs vs zero_shot: {q:,}") * 6.6 for q in (56, 222, 483, 1686, 9_000_000, 7)]
    bounds, legend = (62, 4, 716, 278), (560, 8, 150, 60)
    boxes = place_labels(anchors, widths, bounds, avoid=[legend])

    def overlap(a, b):
        return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]

    assert [b[2] for b in boxes] == widths
    assert not any(overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert not any(overlap(b, legend) for b in boxes)
    assert not any(overlap(b, (x - 5, y - 5, 10, 10)) for b in boxes for x, y in anchors)
    assert all(bounds[0] <= x and x + w <= bounds[2] and bounds[1] <= y and y + h <= bounds[3] for x, y, w, h in boxes)
    assert boxes[4][0] + boxes[4][2] <= anchors[4][0]  # no room on the right: left of its point


def test_cost_chart_break_even_labels_are_apart_and_inside_the_chart():
    page = render(_qa())
    chart = _svg_of(page, "cost against query volume")
    width = float(re.search(r"width=([\d.]+)", chart).group(1))
    found = _Elements(chart).found
    boxes = [
        (float(a["x"]), float(a["y"]), float(a["width"]), float(a["height"]))
        for i, (tag, a, _) in enumerate(found)
        if tag == "rect" and found[i - 2][1].get("class") == "break-even-label"
    ]
    assert len(boxes) == 4
    assert all(x >= 0 and x + w <= width for x, _, w, _ in boxes)
    assert not any(
        a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
    )


def test_every_name_in_the_new_charts_is_escaped():
    results = _classify(
        ["<script>alert(1)</script>", "ok", "<img src=x onerror=alert(2)>", "a", "b", "c", "d", "e"],
        power={"detectable_difference": 0.1, "rows": 9, "between": ["<i>x</i>", "y"]},
    )
    results["strategies"][2]["name"] = "<b>lora</b>"
    results["break_even_queries"][0]["fine_tuned"] = "<b>lora</b>"
    page = render(results)
    assert "<script" not in page and "<img" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;lora&lt;/b&gt;" in _svg_of(page, FOREST)
    assert "confusion matrix of &lt;b&gt;lora&lt;/b&gt;" in page and "&lt;i&gt;x&lt;/i&gt;" in page


# The layout check runs in a copy of the page (the report holds no script): after layout, it lists what
# ends right of the body's 1100px column, SVG text cut off by its chart, and SVG texts that overlap
# (boxes shrunk by 1.5 px: neighbouring rows of 11 px text touch), and writes them as JSON into the page.
LAYOUT_CHECK = """(() => {
  const body = document.body, doc = document.documentElement;
  const right = body.getBoundingClientRect().right - parseFloat(getComputedStyle(body).paddingRight) + 1;
  const out = {viewport: innerWidth, scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, wider: [], clipped: [], overlapping: []};
  for (const e of body.querySelectorAll('*')) {
    if (e.closest('svg') && e.tagName.toLowerCase() !== 'svg') continue;
    const b = e.getBoundingClientRect();
    if (b.width && b.right > right && (e.parentElement === body || e.parentElement.getBoundingClientRect().right <= right))
      out.wider.push(`${e.tagName} "${e.textContent.slice(0, 50)}" ends at ${Math.round(b.right)} px, the page at ${Math.round(right)}`);
  }
  const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT), range = document.createRange();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest('svg')) continue;
    range.selectNodeContents(n);
    const b = range.getBoundingClientRect();
    if (b.width && b.right > right) out.wider.push(`text "${n.data.slice(0, 50)}" ends at ${Math.round(b.right)} px, the page at ${Math.round(right)}`);
  }
  for (const svg of body.querySelectorAll('svg')) {
    const s = svg.getBoundingClientRect(), label = svg.getAttribute('aria-label');
    const texts = [...svg.querySelectorAll('text')].map(t => { const b = t.getBoundingClientRect(); return [t.textContent, {l: b.left + 1.5, r: b.right - 1.5, t: b.top + 1.5, b: b.bottom - 1.5}]; });
    for (const [text, b] of texts) if (b.l < s.left || b.r > s.right || b.t < s.top || b.b > s.bottom) out.clipped.push(`${label}: "${text}"`);
    for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
      const [a, b] = [texts[i][1], texts[j][1]];
      if (a.l < b.r && b.l < a.r && a.t < b.b && b.t < a.b) out.overlapping.push(`${label}: "${texts[i][0]}" and "${texts[j][0]}"`);
    }
  }
  const pre = document.createElement('pre');
  pre.id = 'layout';
  pre.textContent = JSON.stringify(out);
  body.appendChild(pre);
})();"""


def _chromium(folder: Path, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={folder / 'profile'}",
        "--window-size=1200,900",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "results",
    [
        _classify(LONG_LABELS, power={"detectable_difference": 0.11, "rows": 120, "between": ["lora", "few_shot"]}),
        _classify([f"intent_{i}_{'x' * (i % 30)}" for i in range(80)]),
        _qa(),
    ],
    ids=["classify-12-long-labels", "classify-80-labels", "qa"],
)
def test_chromium_finds_nothing_wider_than_the_page_and_no_chart_text_cut_or_overlapping(tmp_path, results):
    report = tmp_path / "report.html"
    report.write_text(render(results), encoding="utf-8")
    shot = _chromium(tmp_path, f"--screenshot={tmp_path / 'report.png'}", report.as_uri())
    png = (tmp_path / "report.png").read_bytes() if (tmp_path / "report.png").is_file() else b""
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1200, shot.stderr[
        -2000:
    ]  # a 1200 px wide screenshot

    check = tmp_path / "check.html"
    check.write_text(
        report.read_text(encoding="utf-8").replace("</body>", f"<script>{LAYOUT_CHECK}</script></body>"),
        encoding="utf-8",
    )
    dom = _chromium(tmp_path, "--dump-dom", check.as_uri())
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stderr[-2000:]
    layout = json.loads(html.unescape(found.group(1)))
    assert layout["viewport"] == 1200
    assert layout["scrollWidth"] <= layout["clientWidth"]  # no horizontal scroll bar
    assert layout["wider"] == [] and layout["clipped"] == [] and layout["overlapping"] == []


# Every optional section of results.json missing, partial and empty: the report still renders and says what it has.
# The records are shaped as the run writes them: tuning (runs/tune.py), distillation (runs/distill.py), updates
# (evaluation/freshness.py), power (decide.statistics.power_summary), break-even (decide.costs.break_even).

TUNING = {
    "budget": {"trials": 6, "budget_minutes": 3.0, "dev_fraction": 0.1, "proposer": None, "proposals": 2},
    "trials_run": 2,
    "seconds": 179.6,
    "searched": {"learning_rate": [0.0001, 0.001]},
    "instructions": {},
    "trials": [
        {"trial": 0, "settings": {"learning_rate": 0.0002}, "dev_score": 0.7, "seconds": 88.0},
        {"trial": 1, "settings": {"learning_rate": 0.0005}, "dev_score": 0.8, "seconds": 91.6},
    ],
    "untuned": {"settings": {"learning_rate": 0.0002}, "dev_score": 0.7, "test": {"score": 0.79, "ci": [0.71, 0.86]}},
    "best": {"settings": {"learning_rate": 0.0005}, "dev_score": 0.8, "trial": 1},
    "dev_rows": 20,
}
NO_BEST = {
    k: v for k, v in TUNING.items() if k != "best"
}  # the `tune: {budget_minutes: 3}` run whose report died with KeyError: 'best'
SETFIT_TUNING = {
    "pairs_per_example": 20,
    "pairs": 240,
    "similar_pairs": 60,
    "epochs": 1,
    "steps": 15,
    "batch_size": 16,
    "learning_rate": 2e-5,
    "loss": "CosineSimilarityLoss",
    "train_loss": 0.12,
    "seconds": 30.0,
}  # setfit's own training record, under the same key
DISTILLATION = {
    "lora": {
        "teacher": "few_shot",
        "metric": "accuracy",
        "teacher_score": 0.68,
        "teacher_ci": [0.6, 0.75],
        "student_score": 0.83,
        "student_ci": [0.75, 0.9],
        "labeling": {
            "teacher": "few_shot",
            "rows": 200,
            "seconds": 41.5,
            "cost_usd": 0.0012,
            "tokens": {},
            "cost_basis": "b",
            "unusable": 0,
            "agreement_with_gold": None,
        },
        "unlabeled": "unlabeled.jsonl",
        "teacher_cost_per_1k_queries": 0.2,
        "student_cost_per_1k_queries": 0.01,
        "findings": ["few_shot labeled 200 unlabeled inputs in 41.5 s"],
    }
}


def _side(score: float, stale: float) -> dict:
    return {
        "score": score,
        "score_ci": [score - 0.1, score + 0.1],
        "stale": stale,
        "stale_ci": [max(stale - 0.1, 0), stale + 0.1],
        "answers": [],
    }


UPDATES = {
    "docs": "updates/",
    "test": "test_updates.jsonl",
    "changed": ["PerksPlus.pdf"],
    "added": ["Dental.pdf"],
    "questions": 12,
    "contenders": {
        "rag": {
            "before": _side(0.2, 0.6),
            "after": _side(0.7, 0.1),
            "absorb": {
                "how": "re-index",
                "seconds": 2.0,
                "files": ["PerksPlus.pdf"],
                "note": "re-indexed 1 changed file(s) in 2.0 s; no training",
                "dollars": 0.0001,
            },
        },
        "lora_docs": {
            "before": _side(0.3, 0.5),
            "after": _side(0.3, 0.5),
            "absorb": {
                "how": "retrain",
                "seconds": 60.0,
                "estimate": True,
                "note": "estimated at the fit",
                "dollars": 0.0017,
            },
        },
    },
}


def _on(name: str, **fields):
    """A change to results.json: contender `name` gets `fields`."""
    return lambda results: next(s for s in results["strategies"] if s["name"] == name).update(fields)


def _with(**fields):
    """A change to results.json: these top-level keys set."""
    return lambda results: results.update(fields)


def _everyone(**fields):
    """A change to results.json: every contender gets `fields`."""
    return lambda results: [s.update(fields) for s in results["strategies"]]


def _case(section: str, variant: str, base, change, says: list[str], never: list[str] = ()):
    return pytest.param(base, change, says, never, id=f"{section}-{variant}")


def _plain() -> dict:
    return _classify([])


def _labelled() -> dict:
    return _classify(["card_arrival", "lost_card", "pin_blocked"])


SECTIONS = [
    _case(
        "tuning",
        "full",
        _plain,
        _on("lora", solver={"tuning": TUNING}),
        ["<h2>Tuning", "2 (6, 3 min)", "learning_rate: 0.0005", "0.790"],
    ),
    _case(
        "tuning",
        "no-best-trial",
        _plain,
        _on("lora", solver={"tuning": NO_BEST}),
        ["<h2>Tuning", "2 (6, 3 min)", "no best trial recorded"],
        ["learning_rate: 0.0005"],
    ),
    _case(
        "tuning",
        "no-trials",
        _plain,
        _on("lora", solver={"tuning": NO_BEST | {"trials": [], "trials_run": 0, "untuned": None}}),
        ["<h2>Tuning", "0 (6, 3 min)", "no trial finished within the budget"],
    ),
    _case(
        "tuning",
        "partial",
        _plain,
        _on(
            "lora",
            solver={"tuning": {"best": {"settings": {"k": 4}}, "proposer": {"instructions": ["Name the intent."]}}},
        ),
        ["<h2>Tuning", "k: 4", "<q>Name the intent.</q>", "from ? dev rows"],
    ),
    _case("tuning", "empty", _plain, _on("lora", solver={"tuning": {}}), ["<h2>Side by side"], ["<h2>Tuning"]),
    _case(
        "tuning",
        "setfit-training-record",
        _plain,
        _on("lora", solver={"tuning": SETFIT_TUNING}),
        ["<h2>Side by side"],
        ["<h2>Tuning"],
    ),
    _case(
        "distillation",
        "full",
        _plain,
        _with(distillation=DISTILLATION),
        [
            "<h2>Distillation",
            "0.830 <span class='muted ci'>0.75-0.90</span>",
            "<td>200</td>",
            "few_shot labeled 200 unlabeled inputs",
        ],
    ),
    _case(
        "distillation",
        "partial",
        _plain,
        _with(distillation={"lora": {"teacher": "few_shot", "student_score": 0.83}}),
        ["<h2>Distillation", "<td>few_shot</td><td>0.830</td><td>n/a</td>"],
    ),
    _case("distillation", "empty", _plain, _with(distillation={}), ["<h2>Side by side"], ["<h2>Distillation"]),
    _case(
        "updates",
        "full",
        _qa,
        _with(updates=UPDATES),
        [
            "<h2>After a document update",
            "12 questions about the changed documents (PerksPlus.pdf, Dental.pdf (new))",
            "retrain (estimate)",
            "<td>0.700</td>",
        ],
    ),
    _case(
        "updates",
        "partial",
        _qa,
        _with(updates={"contenders": {"rag": {"after": {"score": 0.9}}}}),
        ["<h2>After a document update", "Questions about the changed documents, asked", "<td>0.900</td>"],
    ),
    _case(
        "updates",
        "empty",
        _qa,
        _with(updates={"questions": 0, "contenders": {}}),
        ["<h2>After a document update", "No contender was asked the update questions."],
    ),
    _case(
        "repeats",
        "partial",
        _plain,
        _on("lora", repeats=[0.8, None, {"metrics": {"accuracy": 0.82}}, "x"]),
        ["each repeat (ticks)", "repeats 0.800, 0.820"],
    ),
    _case("repeats", "empty", _plain, _everyone(repeats=[]), [FOREST], ["each repeat (ticks)", "class=repeat"]),
    _case(
        "qa-measures",
        "headline-only",
        _qa,
        _everyone(metrics={"qa_score": 0.3}, ci={}),
        ["<h2>Answers from the documents", "<td>0.300</td>"],
        ["hallucination_rate"],
    ),
    _case(
        "qa-measures",
        "empty",
        _qa,
        _everyone(metrics={}, ci={}),
        ["No qa measures recorded for any contender", "No scores.", "<td>n/a</td>"],
    ),
    _case(
        "confusion",
        "partial",
        _labelled,
        _on(
            "lora",
            confusion={
                "card_arrival": {"card_arrival": 9, "(other)": 1},
                "lost_card": {},
                "pin_blocked": {"lost_card": 2, "pin_blocked": 8},
            },
        ),
        ["<h2>Confusion matrices", "confusion matrix of lora", "expected pin_blocked, answered lost_card: 2 of 10"],
    ),
    _case(
        "confusion",
        "no-labels",
        _labelled,
        _everyone(confusion={"card_arrival": {}, "lost_card": {}}),
        ["<h2>Confusion matrices", "The confusion matrices recorded no labels."],
        ["confusion matrix of"],
    ),
    _case("confusion", "empty", _labelled, _everyone(confusion={}), ["<h2>Side by side"], ["<h2>Confusion matrices"]),
    _case(
        "power", "rows-only", _plain, _with(power={"rows": 40}), [FOREST], ["cannot be told apart", "class=detectable"]
    ),
    _case(
        "power",
        "difference-only",
        _plain,
        _with(power={"detectable_difference": 0.12}),
        ["with these test rows, differences under 0.120 cannot be told apart (80% power, 5% level)."],
    ),
    _case("power", "empty", _plain, _with(power={}), [FOREST], ["cannot be told apart"]),
    _case(
        "costs",
        "none-priced",
        _plain,
        _everyone(cost_per_1k_queries=None),
        ["No costs: set prices for remote models.", "<td>?</td>"],
        ["cost against query volume"],
    ),
    _case(
        "costs",
        "partial-assumptions",
        _plain,
        _with(cost_assumptions={"device": "cpu"}),
        ["Costs at $?/hour of machine time on cpu"],
    ),
    _case(
        "break-even",
        "partial",
        _plain,
        _with(
            break_even_queries=[
                {"fine_tuned": "lora", "prompted": "zero_shot", "queries": 7143},
                {"fine_tuned": "lora", "queries": "never"},
                {"queries": 10},
            ]
        ),
        ["<li>lora vs zero_shot: 7143</li>", "<li>lora vs ?: never</li>"],
    ),
    _case(
        "break-even", "empty", _plain, _with(break_even_queries=[]), ["cost against query volume"], ["class=break-even"]
    ),
    _case(
        "audit",
        "partial",
        _plain,
        _with(audit={"criteria": {"duplicates": {"score": 90}, "odd": None}}),
        ["<h2>Training data audit", "<td>duplicates</td><td>90</td><td>0</td>"],
    ),
    _case("audit", "empty", _plain, _with(audit={"criteria": {}}), ["<h2>Side by side"], ["<h2>Training data audit"]),
    _case(
        "predictions",
        "one-contender-without",
        _plain,
        _on("lora", predictions=[]),
        ["Not every contender's test-row answers are in results.json"],
    ),
    _case("recommendation", "empty", _plain, _with(recommendation={}), ["No recommendation recorded."]),
    _case(
        "strategies",
        "empty",
        _plain,
        _with(strategies=[]),
        ["This run recorded no contenders: nothing to compare.", "0 test rows"],
        ["<h2>Side by side"],
    ),
]


@pytest.mark.parametrize(("base", "change", "says", "never"), SECTIONS)
def test_every_optional_section_renders_missing_partial_or_empty_and_says_what_it_has(base, change, says, never):
    results = base()
    change(results)
    page = render(results)
    assert page.endswith("</body></html>\n")
    assert [s for s in says if s not in page] == []
    assert [s for s in never if s in page] == []


def test_a_section_left_out_of_results_is_left_out_of_the_report():
    page = render(_qa())
    assert all(
        title not in page
        for title in (
            "<h2>Tuning",
            "<h2>Distillation",
            "<h2>After a document update",
            "<h2>Training data audit",
            "<h2>Confusion matrices",
            "<h2>Learning curve",
        )
    )
    assert "<h2>Answers from the documents" in page and "<h2>Cost against query volume" in page


@pytest.mark.parametrize(
    ("sweep", "says"),
    [
        (
            {
                "metric": "accuracy",
                "sizes": [6, 12],
                "curve": {"lora": [{"n": 6, "mean": 0.5}, {"n": 99, "mean": 0.1}, {"n": 12}]},
            },
            "aria-label='learning curve'",
        ),
        ({"metric": "accuracy", "sizes": [], "curve": {}}, "sweep.json holds no learning-curve points."),
    ],
    ids=["partial", "empty"],
)
def test_the_learning_curve_renders_from_a_partial_or_empty_sweep(sweep, says):
    assert says in render(_classify([]), sweep)


def _full() -> dict:
    """A qa run with every optional section a run can write, on contenders that record every field."""
    results = _qa() | {
        "repeats": 3,
        "pairwise": [],
        "audit": {"criteria": {"duplicates": {"score": 90, "flagged": [3]}}},
        "updates": UPDATES,
        "distillation": {"lora_docs": DISTILLATION["lora"] | {"teacher": "rag"}},
        "constraints": {},
        "data": {},
        "environment": {},
    }
    for s in results["strategies"]:
        s |= {
            "traits": {"kind": s["name"].split("_")[0]},
            "flags": [],
            "repeats": [0.3, 0.31],
            "solver": {"tuning": TUNING},
            "latency_ms_mean": 500,
            "confusion": {"a": {"a": 1, "(other)": 0}},
        }
    return results


OLD_KEYS = [k for k in _full() if k != "task"] + [f"strategies.{k}" for k in _full()["strategies"][0] if k != "name"]


@pytest.mark.parametrize("key", [*OLD_KEYS, "all"])
def test_results_of_an_older_run_without_a_key_newer_runs_write_still_render(key):
    results = _full()
    keys = OLD_KEYS if key == "all" else [key]
    for k in keys:
        if k.startswith("strategies."):
            for s in results.get("strategies") or []:
                s.pop(k.split(".", 1)[1], None)
        else:
            results.pop(k, None)
    page = render(results)
    assert (
        page.startswith("<!doctype html>")
        and page.endswith("</body></html>\n")
        and "adaptlab: northwind-benefits" in page
    )
