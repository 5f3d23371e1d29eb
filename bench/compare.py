"""Wall time of a whole `compare`, end to end, as a user runs it (default: examples/booking-sql).

booking-sql has the shape of a small text-to-SQL task: 80 training and 30 test rows,
SQL answers of 56-200 tokens, zero_shot, few_shot (k=4, ~1,150-token prompts) and lora on
the embedded SmolLM2-135M. Reports the total wall time (loading, audit, every fit and
every prediction) and, per strategy, fit and predict seconds, answer tokens, answers cut
at the token limit, the precision used and the headline score with its interval.

    python bench/compare.py [experiment.yaml] [--out bench/results/compare-booking-sql-cpu.json] [--keep RUN_FOLDER]

Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _results import write_result

from adaptlab.runs.compare import run_compare
from adaptlab.tasks import task_kind

EXAMPLE = Path(__file__).parents[1] / "examples" / "booking-sql" / "experiment.yaml"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", nargs="?", default=str(EXAMPLE))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "compare-booking-sql-cpu.json"))
    parser.add_argument("--keep", help="keep the run folder (results.json, report.html) here; by default it is removed")
    args = parser.parse_args()

    import torch

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results, _ = run_compare(args.experiment, Path(args.keep) if args.keep else Path(tmp) / "run")
    wall = time.perf_counter() - start
    metric = results["task"]["metric"]
    rows = []
    for s in results["strategies"]:
        n = len(s["predictions"])
        rows.append(
            {
                "strategy": s["name"],
                metric: s["metrics"][metric],
                f"{metric}_ci": s["ci"][metric],
                "fit_s": s["fit_seconds"],
                "predict_s": s["latency_ms_mean"] * n / 1000,
                "prompt_tokens_mean": s["prompt_tokens_mean"],
                "answer_tokens_mean": s["completion_tokens_mean"],
                "answers_cut": s.get("answers_cut"),
                "answers_looped": s.get("answers_looped"),
                "rows": n,
                "precision": s["solver"].get("precision"),
                "peak_rss_mb": s["peak_rss_mb"],
                "metrics": s["metrics"],
                "documents_training_s": (s["solver"].get("documents_training") or {}).get("seconds"),
                "reference": not s["traits"].get("llm", True),
                "flags": s.get("flags", []),
            }
            | ({"tuning": _tuning(s["solver"]["tuning"])} if s["solver"].get("tuning") else {})
        )
    print(
        f"{results['task']['name']}: max_new_tokens {results['task'].get('max_new_tokens')} "
        f"({results['task'].get('max_new_tokens_from')}), {torch.get_num_threads()} threads"
    )
    print(
        f"{'strategy':<12} {metric:>6} {'95% CI':>15} {'fit s':>7} {'predict s':>9} "
        f"{'prompt tok':>10} {'answer tok':>10} {'cut':>4} {'loop':>4} {'precision':>9} "
        f"{'peak RSS MB':>11}"
    )
    for r in rows:
        ci = f"[{r[metric + '_ci'][0]:.3f}, {r[metric + '_ci'][1]:.3f}]"
        print(
            f"{r['strategy']:<12} {r[metric]:>6.3f} {ci:>15} {r['fit_s']:>7.1f} "
            f"{r['predict_s']:>9.1f} {r['prompt_tokens_mean']:>10.0f} "
            f"{r['answer_tokens_mean']:>10.0f} {r['answers_cut'] or 0:>4} "
            f"{r['answers_looped'] or 0:>4} {str(r['precision']):>9} {r['peak_rss_mb']:>11.0f}"
        )
    if task_kind(results["task"]["kind"]).abstains:
        keys = (
            "token_f1",
            "abstention_rate",
            "hallucination_rate",
            "false_abstention_rate",
            "unsupported_figures",
            "recall_at_k",
        )
        print(f"\n{'strategy':<12} " + " ".join(f"{k[:12]:>12}" for k in keys))
        for r in rows:
            print(
                f"{r['strategy']:<12} "
                + " ".join(f"{r['metrics'][k]:>12.3f}" if k in r["metrics"] else f"{'-':>12}" for k in keys)
            )
        print(f"index: {results['data'].get('chunks')} passages, built in {results['data'].get('index_seconds')} s")
    updates = {}
    if results.get(
        "updates"
    ):  # data.updates: every contender again on the update questions, before and after the change
        print(
            f"\nafter the document update ({', '.join(results['updates']['changed'])}), "
            f"{results['updates']['questions']} questions:"
        )
        print(
            f"{'strategy':<12} {'score before':>12} {'score after':>11} {'stale before':>12} "
            f"{'stale after':>11} {'absorbed by':>11} {'seconds':>8}"
        )
        for name, u in results["updates"]["contenders"].items():
            updates[name] = {
                "score_before": u["before"]["score"],
                "score_after": u["after"]["score"],
                "score_after_ci": u["after"]["score_ci"],
                "stale_before": u["before"]["stale"],
                "stale_after": u["after"]["stale"],
                "stale_after_ci": u["after"]["stale_ci"],
                "absorb": u["absorb"]["how"],
                "absorb_s": u["absorb"]["seconds"],
                "absorb_usd": u["absorb"]["dollars"],
            }
            print(
                f"{name:<12} {u['before']['score']:>12.3f} {u['after']['score']:>11.3f} "
                f"{u['before']['stale']:>12.0%} {u['after']['stale']:>11.0%} "
                f"{u['absorb']['how']:>11} {u['absorb']['seconds']:>8.1f}"
            )
    for r in rows:
        if r.get("tuning"):
            t = r["tuning"]
            untuned_test = t["untuned_test"]["score"] if isinstance(t["untuned_test"], dict) else r[metric]
            print(
                f"tuned {r['strategy']}: {t['trials_run']} trials in {t['seconds']:.0f} s on "
                f"{t['dev_rows']} dev rows; dev {t['untuned_dev']:.3f} -> {t['best_dev']:.3f}; test "
                f"{untuned_test:.3f} -> {r[metric]:.3f}; chosen {t['best_settings']}"
            )
    for r in rows:
        if r["flags"]:
            print(f"degenerate: {r['strategy']} {'; '.join(r['flags'])}")
    print(f"whole compare: {wall:.0f} s ({wall / 60:.1f} min); recommendation: {results['recommendation']['choice']}")
    for reason in results["recommendation"]["reasons"]:
        print(f"  - {reason}")
    result = {
        "bench": "compare",
        "experiment": os.path.relpath(Path(args.experiment).resolve(), Path(__file__).parents[1].resolve()),
        "wall_s": wall,
        "threads": torch.get_num_threads(),
        "max_new_tokens": results["task"].get("max_new_tokens"),
        "max_new_tokens_from": results["task"].get("max_new_tokens_from"),
        "stop": results["task"].get("stop"),
        "ends": results["task"].get("ends"),
        "stops_from": results["task"].get("stops_from"),
        "strategies": rows,
        "data": {k: v for k, v in results["data"].items() if k in ("chunks", "index_seconds", "chunk_tokens")},
        "recommendation": results["recommendation"]["choice"],
        "reasons": results["recommendation"]["reasons"],
        "warnings": results["recommendation"]["warnings"],
    } | ({"updates": updates} if updates else {})
    write_result(args.out, result)


def _tuning(t: dict) -> dict:
    """What a tuned contender's search did: budget used, dev scores untuned and best, the untuned settings' test score,
    every trial."""
    untuned = t.get("untuned") or {}
    return {
        "trials_run": t["trials_run"],
        "seconds": t["seconds"],
        "dev_rows": t["dev_rows"],
        "untuned_dev": untuned.get("dev_score"),
        "best_dev": t["best"]["dev_score"],
        "best_settings": t["best"]["settings"],
        "untuned_test": untuned.get("test"),
        "trials": [{k: r[k] for k in ("settings", "dev_score", "seconds")} for r in t["trials"]],
    }


if __name__ == "__main__":
    main()
