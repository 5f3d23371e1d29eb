"""`adaptlab judge RUN` (a judge on a finished run's answers) and `adaptlab judge check PAIRS` (vet a judge on pairs
people rated)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from adaptlab.cli import app, err


class _RunUnlessNamed(TyperGroup):
    """`adaptlab judge RUN ...` is `adaptlab judge run RUN ...`: a first word that is not a sub-command's name (check)
    is the run folder. (A run folder named `check` is `./check`.)"""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


judge_app = typer.Typer(
    cls=_RunUnlessNamed,
    no_args_is_help=True,
    help="Ask a judge model which contender answered each test row better: `adaptlab judge RUN` on a finished "
    "run, `adaptlab judge check PAIRS --judge MODEL` on pairs people rated (to vet the judge first).",
)
app.add_typer(judge_app, name="judge")

JUDGE_HELP = (
    "The judge model: the embedded default's name, a local model folder, a .gguf or a Hub id (local cache); or an "
    "OpenAI-compatible endpoint's URL (http://127.0.0.1:8000/v1, e.g. `adaptlab serve`), its model named by "
    "--judge-name or else the first its /models lists."
)


@judge_app.command("run")
def run(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="A compare run folder (with results.json)."),
    judge: str | None = typer.Option(None, "--judge", help=JUDGE_HELP + " Default: the run's own `judge:`."),
    judge_name: str | None = typer.Option(None, "--judge-name", help="With an endpoint URL: its model's name."),
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, max=256, help="With an endpoint URL: requests in flight at once (default 4)."
    ),
    rows: int | None = typer.Option(
        None, "--rows", min=1, help="Judge at most this many test rows (a seeded choice); default: judge.rows, or all."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print judge.json's counts and identity as JSON on stdout."),
) -> None:
    """Judge a finished compare run's answers (pairs of contenders, both orders) without re-running them.

    Writes RUN/judge.json (every verdict, the judge's identity, the counts); results.json gains `judged` (the verdicts
    calibrated by people's ratings from `adaptlab review`, the judge's agreement with them) and report.html its
    section. Replies are cached under $ADAPTLAB_HOME: a second run asks nothing new, and a new
    contender asks only its own pairs.
    """
    from adaptlab.cli.events import RichEvents
    from adaptlab.runs.judging import judge_run, run_judge_config

    config = judge_config(judge, judge_name, concurrency, run_judge_config(run_dir) if run_dir.is_dir() else None)
    if config is not None and rows is not None:
        config = config.model_copy(update={"rows": rows})
    outcome = judge_run(run_dir, config, RichEvents(err))
    judged = outcome.judged
    trust = (
        judged.agreement.reasons[0] if judged is not None and judged.agreement and judged.agreement.reasons else None
    )
    if as_json:
        record = outcome.record
        summary = {
            "judge": record.judge,
            "counts": record.counts.model_dump(),
            "judge_json": str(outcome.path),
            "results": str(run_dir / "results.json"),
            "trusted": judged.agreement.trusted if judged is not None and judged.agreement else None,
        }
        print(json.dumps(summary, indent=1))
    else:
        from adaptlab.cli.judged import print_judged
        from adaptlab.results import load_results
        from adaptlab.runs.quality import JUDGED_MARK

        print(outcome.summary())
        print(f"judge.json: {outcome.path}\nresults.json (judged): {run_dir / 'results.json'}")
        if trust:
            print(trust)
        rec = load_results(run_dir / "results.json").recommendation
        print_judged(judged, [r for r in rec.reasons + rec.warnings if r.startswith(JUDGED_MARK)])


@judge_app.command("check")
def check(
    pairs: Path = typer.Argument(
        ...,
        help="A JSONL or CSV file of rated pairs: input, answer_a, answer_b, preference (a, b, tie or both_bad), "
        "optional reference and reviewer.",
    ),
    judge: str = typer.Option(..., "--judge", help=JUDGE_HELP),
    judge_name: str | None = typer.Option(None, "--judge-name", help="With an endpoint URL: its model's name."),
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, max=256, help="With an endpoint URL: requests in flight at once (default 4)."
    ),
    kind: str = typer.Option(
        "generate",
        "--kind",
        help="The task kind whose default rubric the judge gets (one whose answers are text, not labels).",
    ),
    rubric: Path | None = typer.Option(None, "--rubric", help="A text file holding the rubric instead."),
    json_file: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Vet a judge before trusting it: ask it about every pair people rated (both orders) and say how far it agrees
    with them."""
    from adaptlab.cli.events import RichEvents
    from adaptlab.files import write_json
    from adaptlab.judges.check import check_judge, read_rated_pairs
    from adaptlab.judges.judge import Judge
    from adaptlab.judges.rubrics import rubric_for

    rated = read_rated_pairs(pairs)
    config = judge_config(judge, judge_name, concurrency, None)
    assert config is not None  # --judge is required
    text = rubric.read_text(encoding="utf-8").strip() if rubric else None
    config = config.model_copy(update={"rubric": text or None})
    events = RichEvents(err)
    judging = Judge(config, rubric_for(config, kind))
    try:
        with events.bars():
            bar = events.bar("judging pairs (both orders)", 2 * len({(p.input, p.answer_a, p.answer_b) for p in rated}))
            outcome = check_judge(judging, rated, bar.advance)
    finally:
        judging.close()
    figures = outcome.figures
    if json_file is not None:
        write_json(json_file, figures)
    _print_figures(figures)


def _print_figures(figures: dict) -> None:
    def shown(value) -> str:
        return "n/a" if value is None else f"{value:.0%}" if isinstance(value, float) else str(value)

    lines = [
        f"{figures['ratings']} ratings on {figures['rows']} pairs",
        f"raw agreement with people: {shown(figures['raw_agreement'])} (both_bad read as a tie)",
        f"position consistency: {shown(figures['position_consistency'])} of verdicts survive swapping the order",
        f"judge ties: {figures['judge_ties']}; replies without a verdict: {figures['unparsed_replies']}",
        f"the longer answer wins: {shown(figures['longer_wins_by_judge'])} by the judge, "
        f"{shown(figures['longer_wins_by_people'])} by people",
    ]
    found = figures.get("agreement") or {}
    kappa = found.get("kappa") or {}
    if kappa.get("value") is not None:
        ci = kappa.get("ci")
        lines.append(
            f"Cohen's kappa with people: {kappa['value']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
        )
    lines += found.get("reasons", [])
    sys.stdout.write("\n".join(lines) + "\n")


def judge_config(judge: str | None, name: str | None, concurrency: int | None, recorded):
    """The JudgeConfig the options make: --judge as a model or an endpoint URL over the `recorded` one's other
    settings; None when neither is given."""
    from adaptlab.config import JudgeConfig, RemoteModelConfig
    from adaptlab.errors import ConfigError

    if judge is None:
        if name is not None or concurrency is not None:
            raise ConfigError("--judge-name and --concurrency go with --judge URL; add --judge")
        return recorded
    model: str | RemoteModelConfig = judge
    if judge.startswith(("http://", "https://")):
        model = RemoteModelConfig(
            base_url=judge, name=name or endpoint_model(judge), max_concurrency=concurrency or 4, max_retries=4
        )
    elif name is not None or concurrency is not None:
        raise ConfigError(f"--judge-name and --concurrency are for an endpoint URL, not a local model ({judge})")
    base = recorded.model_dump(exclude={"model"}) if recorded is not None else {}
    return JudgeConfig.model_validate(base | {"model": model})


def endpoint_model(base_url: str) -> str:
    """The first model an OpenAI-compatible endpoint lists (GET {base_url}/models)."""
    import httpx

    from adaptlab.errors import ConfigError

    url = base_url.rstrip("/") + "/models"
    try:
        listed = httpx.get(url, timeout=30).json()["data"]
        return str(listed[0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ConfigError(
            f"--judge {base_url}: cannot read its model list at {url} ({type(exc).__name__}); name the model "
            "with --judge-name"
        ) from None
