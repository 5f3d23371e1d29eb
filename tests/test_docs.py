"""The README and the docs site: short, current, every link and cited results file real, and the site builds with
--strict."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))


def test_readme_is_a_first_hour_not_a_manual():
    assert len(README.splitlines()) <= 350, (
        f"README.md has {len(README.splitlines())} lines: move detail to a docs page"
    )
    for section in (
        "## Set-up: two commands",
        "## The demo",
        "## Your own data in five minutes",
        "## In a notebook: the Python API",
        "## Where to go next",
    ):
        assert section in README


def test_readme_setup_commands_are_the_makefiles():
    """The two set-up commands do what the README says: make demo runs the demo's compare, make test pytest, and
    the install that both run brings the docs extra, so the site test below runs under `make test`."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = lambda name: re.search(rf"^{name}:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)  # noqa: E731
    assert "make demo" in README and "make test" in README and "make docs" in README
    assert "adaptlab compare examples/banking-cards/experiment.yaml" in target("demo")
    assert "-m pytest" in target("test")
    assert "mkdocs build --strict" in target("docs") and "docs/gen_cli_reference.py" in target("docs")
    assert re.search(r"pip install .*-e '\.\[[^\]]*\bdocs\b", makefile), (
        "the Makefile's install must include the docs extra"
    )


def test_torch_comes_from_the_configured_index_unless_torch_index_names_one():
    """CI keeps pip's configured index; TORCH_INDEX (the README names PyTorch's CPU index) installs torch from that
    one."""

    def dry(*args):
        return subprocess.run(
            ["make", "-n", "-B", "install", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout  # noqa: E731

    torch_line = lambda out: next(line for line in out.splitlines() if "torch==" in line)  # noqa: E731
    assert "--index-url" not in torch_line(dry())
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in torch_line(
        dry("TORCH_INDEX=https://download.pytorch.org/whl/cpu")
    )
    assert "TORCH_INDEX=https://download.pytorch.org/whl/cpu" in README


def test_no_issue_numbers_in_user_facing_text():
    for page in [ROOT / "README.md", *DOCS]:
        text = page.read_text(encoding="utf-8")
        found = re.findall(r"\bissues? #?\d+|\(#\d+\)", text, re.I)
        assert not found, f"{page.relative_to(ROOT)} names issues {found}: say what changed, not which ticket"


def test_cited_results_files_exist():
    """A figure cites its results file; a citation of a file that is not there is a figure nobody can check."""
    for page in [ROOT / "README.md", *DOCS]:
        for cited in re.findall(r"bench/results/[\w.-]+\.(?:json|txt)", page.read_text(encoding="utf-8")):
            assert (ROOT / cited).exists(), f"{page.relative_to(ROOT)} cites {cited}, which does not exist"


def test_every_readme_table_names_its_results_file():
    lines = README.splitlines()
    starts = [
        i for i, line in enumerate(lines) if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|"))
    ]
    assert starts, "the README shows the demo's table"
    for i in starts:
        before = "\n".join(lines[max(0, i - 8) : i])
        assert "bench/results/" in before, f"README table at line {i + 1} has no results file in the lines before it"


def test_readme_links_point_at_files():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def test_every_docs_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(nav):
        for item in nav:
            for value in item.values() if isinstance(item, dict) else [item]:
                yield from (pages(value) if isinstance(value, list) else [value])

    assert sorted(pages(config["nav"])) == sorted(p.name for p in DOCS)


def test_generated_references_are_current():
    """docs/cli.md (every command's --help) and docs/settings.md (every experiment key) come from the code."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_cli_reference.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    cli = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for command in (
        "audit",
        "compare",
        "export",
        "finetune",
        "init",
        "recommend",
        "report",
        "serve",
        "sweep",
        "registry promote",
    ):
        assert f"`adaptlab {command}`" in cli


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None,
    reason="mkdocs is not installed: pip install -e '.[docs]' (make test installs it)",
)
def test_site_builds_strict(tmp_path):
    """--strict: a broken link, a missing anchor or a page left out of the nav fails the build."""
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # the README's links into the docs land on a page, and on a heading where they name one
    for page, anchor in re.findall(r"\]\(docs/([\w-]+)\.md(?:#([\w-]+))?\)", README):
        html = site / ("" if page == "index" else page) / "index.html"
        assert html.exists(), f"README links to docs/{page}.md, not in the site"
        if anchor:
            assert f'id="{anchor}"' in html.read_text(encoding="utf-8"), (
                f"README links to docs/{page}.md#{anchor}: no such heading"
            )


def _screenshots():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import gen_screenshots
    finally:
        sys.path.pop(0)
    return gen_screenshots


def test_report_screenshots_are_current_and_shown():
    """docs/img's pictures of the report were taken from the page the report renders today from the demo's results
    (docs/gen_screenshots.py writes report.sha256 beside them), and docs/report.md shows every one."""
    shots = _screenshots()
    results = json.loads(shots.DEMO_RESULTS.read_text(encoding="utf-8"))
    taken = (shots.IMG / "report.sha256").read_text(encoding="utf-8").strip()
    assert taken == shots.page_hash(results), (
        "the report changed since its screenshots were taken: run python docs/gen_screenshots.py"
    )
    page = (ROOT / "docs" / "report.md").read_text(encoding="utf-8")
    for name, _ in shots.SECTIONS:
        png = (shots.IMG / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and f"(img/{name})" in page, name


def test_screenshots_are_taken_by_chromium(tmp_path):
    """The script itself: one PNG per section, as wide as the page's text, none empty (skipped without Chromium, as the
    report test)."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    shots = _screenshots()
    results = json.loads(shots.DEMO_RESULTS.read_text(encoding="utf-8"))
    taken = shots.take(results, tmp_path)
    assert [p.name for p in taken] == [name for name, _ in shots.SECTIONS]
    for png in taken:
        data = png.read_bytes()
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 600 <= width <= shots.WIDTH and height >= 60, (
            png.name,
            width,
            height,
        )
    assert (tmp_path / "report.sha256").read_text().strip() == shots.page_hash(results)


GENERATED_PAGES = {
    "cli.md",
    "settings.md",
    "results.md",
}  # written from the code (gen_cli_reference.py, adaptlab.results)
RESULTS_JSON = re.compile(r"bench/results/[\w.-]+\.json")
FIGURE = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)\.(\d+)")
VERSION_BEFORE = re.compile(
    r"(?:[=<>~]=?|\bv|\b(?:torch|transformers|peft|PEFT|TRL|trl|Python|python|llama-cpp-python|vLLM|vllm|CUDA) )$"
)
# figures a line citing one results file may quote although that file does not hold them: (page, figure) -> why
FIGURES_NOT_IN_THEIR_FILE: dict[tuple[str, str], str] = {}


def _held(data) -> list[float]:
    """Every number in a results file: its numeric leaves, at any depth (booleans are not numbers)."""
    if isinstance(data, dict):
        return [v for value in data.values() for v in _held(value)]
    if isinstance(data, list):
        return [v for value in data for v in _held(value)]
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return [float(data)]
    return []


def _quoted(line: str):
    """The decimal figures of a docs line: (text as written, value, decimals shown, unit after it). Code spans and
    link targets are settings and paths, not figures; integers, percentages, versions (2.13.0, torch 2.13, ==2.13) and
    numbers in scientific notation (1.96e-3) are left out."""
    prose = re.sub(r"`[^`]*`|\]\([^)]*\)", lambda m: " " * len(m.group()), line)
    for m in FIGURE.finditer(prose):
        before, after = prose[: m.start()], prose[m.end() :]
        if re.match(r"\.\d|e[-+]?\d|\s?%", after) or VERSION_BEFORE.search(before):
            continue
        unit = re.match(r"\s?(GB|min\b|minutes)?", after).group(1) or ""
        text = m.group()
        yield text, float(text.replace(",", "")), len(m.group(2)), unit


def _matches(value: float, decimals: int, unit: str, held: list[float]) -> bool:
    """Whether a figure quoted with `decimals` decimals is one of the file's numbers rounded so (either way at a
    half, and regardless of sign: a difference is quoted as +0.015 or -0.080); next to GB it may be one of the file's
    megabytes / 1000, next to min or minutes one of its seconds / 60."""
    half = 0.5 * 10**-decimals * (1 + 1e-9)
    scale = {"GB": 1000, "min": 60, "minutes": 60}.get(unit, 1)
    return any(abs(abs(v) / scale - value) <= half for v in held)


def test_figures_on_a_citing_line_are_in_the_file_it_cites():
    """A docs line that cites one results file (`bench/results/<name>.json`) quotes only figures that file holds.

    Pages: README.md and docs/*.md, not the ones generated from the code (cli.md, settings.md, results.md). Lines: those
    citing exactly one results file (a line citing several could quote any of them). Checked: every decimal figure on
    the line (0.875, 2.52, 1.26x, 84.8, 1,030.5); not checked: integers, percentages, versions, scientific notation,
    code spans (settings, commands) and link targets. A figure is held when it is one of the file's numeric leaves,
    at any depth, rounded to the decimals shown; the two unit conversions the docs make are allowed: GB after a
    figure, the file's MB / 1000 (peak_rss_mb); min or minutes, its seconds / 60 (wall_s). Ratios and differences of
    two of the file's numbers are not accepted: with a hundred numbers in a file, some pair's ratio lies within 0.5%
    of almost any figure (1.27, 1.5 and 2.0 would all pass in generate-cpu.json), so a derived figure goes in the file
    or in FIGURES_NOT_IN_THEIR_FILE with why.
    """
    wrong = []
    for page in [ROOT / "README.md", *DOCS]:
        if page.name in GENERATED_PAGES:
            continue
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            cited = set(RESULTS_JSON.findall(line))
            if len(cited) != 1:
                continue
            name = cited.pop()
            held = _held(json.loads((ROOT / name).read_text(encoding="utf-8")))
            for text, value, decimals, unit in _quoted(line):
                if (page.name, text) not in FIGURES_NOT_IN_THEIR_FILE and not _matches(value, decimals, unit, held):
                    wrong.append(f"{page.relative_to(ROOT)}:{number}: {text}{unit and ' ' + unit} is not in {name}")
    assert not wrong, "figures their cited results file does not hold:\n" + "\n".join(wrong)
