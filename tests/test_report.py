"""report.html: self-contained, escaped, and rendered by headless Chromium without console errors."""

import json
import shutil
from pathlib import Path

import pytest

from adaptlab.report import render, write_report


def _browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def test_compare_writes_a_report_chromium_renders_with_its_charts(card_experiment):
    from adaptlab.runs.compare import run_compare
    from adaptlab.runs.sweep import run_sweep

    test_file = card_experiment.parent / "test.jsonl"
    test_file.write_text(test_file.read_text() + json.dumps({"input": "<img src=x onerror=alert(1)> my card <script>console.error(1)</script>", "output": "card_arrival"}) + "\n")
    results, run = run_compare(card_experiment, card_experiment.parent / "run")
    assert (run / "report.html").is_file()
    run_sweep(card_experiment, sizes=(6,), seeds=1, out=run)  # sweep.json beside results.json adds the learning curve
    page = write_report(run).read_text()
    assert "<script" not in page and "<img" not in page and "&lt;img src=x" in page  # data is escaped
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page  # no external assets
    browser = _browser()
    try:
        browser.get(Path(run / "report.html").as_uri())
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        charts = browser.find_elements("css selector", "svg.chart")
        assert [c.get_attribute("aria-label") for c in charts] == ["cost against query volume", "learning curve"]
        assert all(len(c.find_elements("css selector", "polyline")) >= 3 for c in charts)
        text = browser.find_element("tag name", "body").text
        assert "Recommendation" in text and "Confusion matrices" in text and "Where the strategies disagree" in text
        assert results["recommendation"]["choice"] in text
    finally:
        browser.quit()


def test_report_renders_old_results_and_remote_strategies_without_costs():
    results = {
        "task": {"name": "t", "kind": "classify", "metric": "accuracy", "labels": ["a", "b"]}, "base_model": "m", "seed": 0,
        "recommendation": {"choice": "few_shot", "reasons": ["because <b>"], "warnings": []},
        "strategies": [{"name": "few_shot", "metrics": {"accuracy": 0.5}, "ci95": {"accuracy": [0.1, 0.9]}, "fit_seconds": 0, "latency_ms_p95": 1, "prompt_tokens_mean": 3, "cost_per_1k_queries": None, "predictions": [{"input": "x", "expected": "a", "predicted": "b", "line": 1}]}],
    }
    page = render(results)
    assert "because &lt;b&gt;" in page and "No costs" in page and "0.100-0.900" in page
