"""The judged comparison of examples/bank-assistant: its ratings (examples/bank-assistant/ratings.jsonl, made by two
instances of an AI model, see its SOURCE.md) imported into a compare run of the example, then the embedded
SmolLM2-135M as the judge on every test row of every pair worth comparing, and what each says.

Baseline in the same run: the judged figures with the headline metric (chrF) as the proxy people correct, before the
judge runs. Then the judge's verdicts as the proxy, its agreement with the ratings, and whether it is trusted.
`judge_counts` says how many verdicts were asked and how many came from the cache (--home reuses one).

    python bench/judged_example.py [--run RUN] [--home HOME] [--out bench/results/judged-bank-assistant-cpu.json]

RUN: a finished `adaptlab compare examples/bank-assistant/experiment.yaml` folder (copied, never changed); without
it the compare runs first (~5 minutes on 2 cores). The judge's cache is a fresh one in a temporary $ADAPTLAB_HOME, so
every verdict is asked. Last line: one JSON object, also written to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from _results import write_result

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bank-assistant"


def _figures(judged) -> dict:
    m = judged.measures
    out = {
        "source": m.source,
        "win_rate": {c.name: round(c.win_rate, 3) for c in m.contenders},
        "win_rate_ci": {c.name: [round(x, 3) for x in c.ci] if c.ci else None for c in m.contenders},
        "p_best": {c.name: c.p_best for c in m.contenders},
        "pairs": {f"{p.a}>{p.b}": round(p.estimate, 3) for p in m.pairs},
        "pairs_ci": {f"{p.a}>{p.b}": [round(x, 3) for x in p.ci] if p.ci else None for p in m.pairs},
    }
    if judged.judge_measures is not None:  # a judge not trusted: its own figures, shown and not used
        own = judged.judge_measures
        out["judge_own"] = {"source": own.source, "win_rate": {c.name: round(c.win_rate, 3) for c in own.contenders}}
    if judged.agreement is not None:
        a = judged.agreement
        out["agreement"] = {
            "common": a.common,
            "raw": a.raw.value,
            "raw_ci": a.raw.ci,
            "kappa": a.kappa.value,
            "kappa_ci": a.kappa.ci,
            "position_consistency": a.position_consistency.value if a.position_consistency else None,
            "longer_wins_judge": a.longer_wins_judge.value if a.longer_wins_judge else None,
            "longer_wins_people": a.longer_wins_people.value if a.longer_wins_people else None,
            "reviewers_kappa": a.reviewers_kappa.value if a.reviewers_kappa else None,
            "reviewers_kappa_ci": a.reviewers_kappa.ci if a.reviewers_kappa else None,
            "trusted": a.trusted,
            "reasons": a.reasons,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--out", default=str(ROOT / "bench/results/judged-bank-assistant-cpu.json"))
    parser.add_argument(
        "--home", type=Path, default=None, help="an ADAPTLAB_HOME whose judge cache to reuse (default: a fresh one)"
    )
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="adaptlab-judged-"))
    os.environ["ADAPTLAB_HOME"] = str(home)
    home = Path(tempfile.mkdtemp(prefix="adaptlab-judged-run-"))  # the run's copy, apart from any reused home
    import adaptlab
    from adaptlab.results import load_results

    run = home / "run"
    if args.run is not None:
        shutil.copytree(args.run, run)
        shutil.rmtree(run / "ratings", ignore_errors=True)  # the ratings come from the example's file, below
        (run / "judge.json").unlink(missing_ok=True)
    else:
        adaptlab.compare(EXAMPLE / "experiment.yaml", out=run, progress=print)
    chrf = adaptlab.review(run, EXAMPLE / "ratings.jsonl")
    started = time.perf_counter()
    judged = adaptlab.judge(run, "smollm2-135m-instruct", progress=print)
    seconds = time.perf_counter() - started
    results = load_results(run / "results.json")
    record = (run / "judge.json").read_text()
    counts = json.loads(record)["counts"]
    before, after = _figures(chrf), _figures(judged)
    own = after.get("judge_own", {}).get("win_rate", {})
    print(f"\n{'contender':12} {'chrF':>6} {'people+chrF':>12} {'after judging':>13} {'judge own':>10}")
    for s in results.strategies:
        if s.name in before["win_rate"]:
            print(
                f"{s.name:12} {s.metrics['chrf']:6.1f} {before['win_rate'][s.name]:12.2f} "
                f"{after['win_rate'][s.name]:13.2f} {own.get(s.name, float('nan')):10.2f}"
            )
    agreement = after.get("agreement") or {}
    print(
        f"judge: kappa {agreement.get('kappa')} {agreement.get('kappa_ci')}, raw {agreement.get('raw')}, "
        f"position consistency {agreement.get('position_consistency')}, trusted {agreement.get('trusted')}"
    )
    write_result(
        args.out,
        {
            "bench": "judged_example",
            "example": "examples/bank-assistant",
            "ratings": chrf.ratings,
            "reviewers": chrf.reviewers,
            "chrf": {s.name: round(s.metrics["chrf"], 2) for s in results.strategies},
            "people_chrf": before,
            "people_judge": after,
            "judge": json.loads(record)["judge"],
            "judge_counts": counts,
            "judge_seconds": round(seconds, 1),
            "choice": results.recommendation.choice,
            "judged_reasons": [r for r in results.recommendation.reasons if r.startswith("judged: ")],
            "threads": os.cpu_count(),
        },
    )


if __name__ == "__main__":
    main()
