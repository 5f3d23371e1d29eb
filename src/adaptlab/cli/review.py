"""`adaptlab review RUN`: the review page where people rate two contenders' answers, blind; `--import FILE` reads
ratings made elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from adaptlab.cli import app, err


@app.command()
def review(
    run: str = typer.Argument(
        ...,
        metavar="RUN",
        help="A compare run folder (with results.json), or a run's id from `adaptlab registry list`.",
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; anything but loopback needs ADAPTLAB_API_KEY."
    ),
    port: int = typer.Option(8765, "--port", min=1, max=65535),
    reviewer: str | None = typer.Option(
        None,
        "--reviewer",
        help="Serving: the printed URL opens the page as this reviewer. --import: the reviewer of lines that name "
        "none (default anonymous).",
    ),
    import_file: Path | None = typer.Option(
        None,
        "--import",
        metavar="FILE",
        help="Read ratings made elsewhere instead of serving: JSONL or CSV (by suffix) with row, a, b, preference "
        "(a, b, tie or both_bad) and optional reviewer, score_a, score_b (1-5), comment. A bad line is an error "
        "with its number, and then nothing is imported.",
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Seeds which rows and pairs come next and the left/right order (default: the run's seed)."
    ),
    allow_host: list[str] = typer.Option(
        [],
        "--allow-host",
        help="Without an API key only Host headers naming loopback are served (DNS rebinding); add a host name "
        "here to accept it too. Repeatable.",
    ),
) -> None:
    """Serve the review page for RUN: one test row at a time, two contenders' answers side by side (names hidden, sides
    drawn per row), rated with keys 1/2 (or arrows), t (tie), x (both bad); r shows the reference.

    Every click is saved at once to RUN/ratings/<reviewer>.jsonl (fsynced), so nothing is lost if the page or
    the server stops; several reviewers may rate at once, each under their own name. The API key, if any, comes
    from ADAPTLAB_API_KEY; the page asks for it.
    """
    run_dir = run_folder(run)
    if import_file is not None:
        _import(run_dir, import_file, reviewer)
        return
    _serve(run_dir, host, port, reviewer, seed, tuple(allow_host))


def run_folder(run: str) -> Path:
    """RUN as a folder: itself when it holds results.json, else the folder the registry recorded for that run id."""
    from adaptlab.errors import ConfigError

    folder = Path(run)
    if not (folder / "results.json").is_file() and not folder.is_dir():
        from adaptlab.home import adaptlab_home
        from adaptlab.registry import default_registry

        registry = default_registry()
        try:
            folder = registry.run_folder(run) or adaptlab_home() / "runs" / run
        finally:
            registry.close()
    if not (folder / "results.json").is_file():
        raise ConfigError(
            f"{run}: no results.json there (looked in {folder}); pass a folder `adaptlab compare` wrote, or a run id "
            "from `adaptlab registry list`"
        )
    return folder


def _import(run_dir: Path, file: Path, reviewer: str | None) -> None:
    from collections import Counter

    from adaptlab.errors import ConfigError
    from adaptlab.reviews.ratings import check_reviewer, import_ratings, load_ratings

    if reviewer is not None:
        try:
            check_reviewer(reviewer)
        except ValueError as exc:
            raise ConfigError(f"--reviewer: {exc}") from None
    imported = import_ratings(run_dir, file, reviewer)
    counts = Counter((r.reviewer, *sorted((r.a, r.b))) for r in imported)
    print(f"imported {len(imported)} rating(s) from {file} into {run_dir / 'ratings'}")
    for (name, a, b), n in sorted(counts.items()):
        print(f"  {name}: {a} vs {b}: {n}")
    print(f"the run now holds {len(load_ratings(run_dir))} rating(s) (the latest per reviewer, row and pair)")
    _conclude(run_dir)


def _conclude(run_dir: Path) -> None:
    """results.json's judged figures and report.html brought up to date with the ratings, and printed."""
    from adaptlab.cli.judged import print_judged
    from adaptlab.results import load_results
    from adaptlab.runs.quality import JUDGED_MARK, conclude_judged

    judged = conclude_judged(run_dir)
    if judged is not None:
        rec = load_results(run_dir / "results.json").recommendation
        print_judged(judged, [r for r in rec.reasons + rec.warnings if r.startswith(JUDGED_MARK)])
        print(f"results.json and report.html in {run_dir} now hold them")


def _serve(run_dir: Path, host: str, port: int, reviewer: str | None, seed: int | None, hosts: tuple[str, ...]):
    import uvicorn

    from adaptlab.cli.serve import is_loopback
    from adaptlab.errors import ConfigError
    from adaptlab.reviews.app import create_review_app
    from adaptlab.reviews.ratings import check_reviewer

    key = os.environ.get("ADAPTLAB_API_KEY") or None
    if not is_loopback(host) and not key:
        raise ConfigError(
            f"binding {host} exposes the server beyond this machine; set ADAPTLAB_API_KEY first (or bind 127.0.0.1)"
        )
    if reviewer is not None:
        try:
            check_reviewer(reviewer)
        except ValueError as exc:
            raise ConfigError(f"--reviewer: {exc}") from None
    api = create_review_app(run_dir, seed=seed, api_key=key, allowed_hosts=hosts)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?reviewer={reviewer}" if reviewer else "")
    err.print(f"review page for {run_dir} on {url}" + (" (API key required: the page asks for it)" if key else ""))
    err.print(f"ratings are saved to {run_dir / 'ratings'}/<reviewer>.jsonl; Ctrl-C stops")
    try:
        uvicorn.run(api, host=host, port=port, log_level="warning")
    finally:  # the ratings are saved click by click; the judged figures are brought up to date once, on the way out
        _conclude(run_dir)
