"""Screenshots of the report for the docs, taken the way the report test renders it (headless Chromium).

    python docs/gen_screenshots.py [RESULTS_JSON]

renders report.html from the demo's results (docs/img/demo-results.json, a `make demo` run's
results.json; give another results.json to take its sections instead), opens it in Debian's
`chromium` through `chromedriver` at 1200 px wide, and saves one PNG per section below under
docs/img/, beside report.sha256: the sha256 of the page they were taken from. tests/test_docs.py
renders the page again and fails when that hash no longer matches (the report changed; run this
again). Needs `apt-get install chromium chromium-driver` (.ci/run installs them).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

IMG = Path(__file__).resolve().parent / "img"
DEMO_RESULTS = IMG / "demo-results.json"
WIDTH = 1200
# (file under docs/img/, the section's heading); a section runs from its h2 to the next one
SECTIONS = (
    ("report-recommendation.png", "Recommendation"),
    ("report-scores.png", "Scores at a glance"),
    ("report-side-by-side.png", "Side by side"),
    ("report-costs.png", "Cost against query volume"),
)
# Each section (an h2 and what follows it up to the next h2) wrapped in a <section> of its own, to be screenshot alone.
WRAP_SECTIONS = """
for (const h of [...document.querySelectorAll('body > h2')]) {
  const section = document.createElement('section');
  section.dataset.heading = h.textContent;
  section.style.padding = '4px 8px 12px';
  section.style.display = 'flow-root';  // holds its children's full height (a chart's margins included)
  h.before(section);
  let node = h;
  while (node && !(node !== h && node.tagName === 'H2')) { const next = node.nextSibling; section.appendChild(node); node = next; }
}
"""


def page(results: dict) -> str:
    """report.html's text for `results`, as `compare` writes it."""
    from adaptlab.report import render
    from adaptlab.results import CompareResults

    return render(CompareResults.model_validate(results).model_dump(mode="json", exclude_unset=True))


def page_hash(results: dict) -> str:
    return hashlib.sha256(page(results).encode("utf-8")).hexdigest()


def browser():
    """Headless Chromium through selenium, as tests/test_report.py opens it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        raise SystemExit("Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def take(results: dict, out: Path) -> list[Path]:
    """One PNG per SECTIONS entry under `out`, and report.sha256; returns the PNGs' paths."""
    out.mkdir(parents=True, exist_ok=True)
    html = page(results)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.html"
        report.write_text(html, encoding="utf-8")
        driver = browser()
        try:
            driver.set_window_size(WIDTH, 4000)  # tall: every section whole in the viewport, none clipped
            driver.get(report.as_uri())
            driver.execute_script(WRAP_SECTIONS)
            found = {
                s.get_attribute("data-heading"): s
                for s in driver.find_elements("css selector", "section[data-heading]")
            }
            shots = []
            for name, heading in SECTIONS:
                if heading not in found:
                    raise SystemExit(f"the report has no section {heading!r}; its sections: {', '.join(found)}")
                found[heading].screenshot(str(out / name))
                shots.append(out / name)
        finally:
            driver.quit()
    (out / "report.sha256").write_text(hashlib.sha256(html.encode("utf-8")).hexdigest() + "\n", encoding="utf-8")
    return shots


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEMO_RESULTS
    results = json.loads(source.read_text(encoding="utf-8"))
    for shot in take(results, IMG):
        print(f"wrote {shot}")


if __name__ == "__main__":
    main()
