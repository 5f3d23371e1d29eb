"""LoRA dropout 0.05 against none, on every example that trains LoRA: quality, training seconds and peak memory.

PEFT's LoRA dropout copies each adapted layer's input before its adapter (one copy per
layer, kept for the backward pass), so with every linear layer adapted it costs time and
memory (bench/results/lora-memory-cpu.json: 21% of an epoch's time, 0.35 GB on
booking-sql). Whether it buys quality on this project's data is what this measures: each
example's own lora contender (its settings as the example has them) trained with dropout
0.05 and 0, with the same seeds (so the same initial adapters and data order), `repeats`
times each, inside one `compare` per example (no references, no other contenders).

Reported per example: each side's headline score (mean over repeats, with the interval
over repeats and rows), every repeat's score, training seconds (mean per fit), the
peak RSS, and the paired difference (0 - 0.05) over the test rows with its 95% interval
and test, from the compare's own `pairwise`.

    python bench/lora_dropout.py [--repeats 2] [--examples booking-sql,banking-cards,bank-assistant] [--out
    bench/results/lora-dropout-cpu.json]

Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml
from _results import write_result

from adaptlab.runs.compare import run_compare

EXAMPLES = Path(__file__).parents[1] / "examples"
DROPOUTS = {"lora_d005": 0.05, "lora_d0": 0.0}


def experiment(example: str, repeats: int) -> dict:
    """The example's experiment with two lora contenders (its own lora settings, dropout 0.05 and 0) and nothing
    else."""
    folder = EXAMPLES / example
    config = yaml.safe_load((folder / "experiment.yaml").read_text())
    lora = next(s for s in config["strategies"] if s["name"] == "lora")
    config["data"] = {key: str(folder / path) for key, path in config["data"].items()}
    config["strategies"] = [lora | {"id": name, "dropout": dropout} for name, dropout in DROPOUTS.items()]
    return config | {"repeats": repeats, "baselines": False}


def measure(example: str, repeats: int) -> dict:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results, _ = run_compare(experiment(example, repeats), Path(tmp) / "run")
    metric = results["task"]["metric"]
    sides = {}
    for s in results["strategies"]:
        sides[s["name"]] = {
            metric: s["metrics"][metric],
            "ci": s["ci"][metric],
            "repeats": s.get("repeats") or [s["metrics"][metric]],
            "fit_s_per_repeat": s["fit_seconds"],  # the mean over repeats
            "peak_rss_mb": s["peak_rss_mb"],
        }
    pair = next(p for p in results["pairwise"] if {p["a"], p["b"]} == set(DROPOUTS))
    sign = 1 if pair["a"] == "lora_d0" else -1  # reported as dropout 0 minus dropout 0.05
    ci = sorted(sign * c for c in pair["ci95"])
    return {
        "example": example,
        "metric": metric,
        "rows": len(results["strategies"][0]["predictions"]),
        "wall_s": time.perf_counter() - start,
        "sides": sides,
        "difference": sign * pair["difference"],
        "difference_ci": ci,
        "test": pair["test"],
        "p_value": pair["p_value"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--examples", default="booking-sql,banking-cards,bank-assistant")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "lora-dropout-cpu.json"))
    args = parser.parse_args()

    rows = []
    for example in args.examples.split(","):
        rows.append(measure(example, args.repeats))
        r = rows[-1]
        print(f"\n{example} ({r['metric']}, {r['rows']} test rows, {args.repeats} repeats, {r['wall_s']:.0f} s)")
        print(f"{'dropout':<8} {r['metric']:>8} {'95% CI':>17} {'each repeat':>20} {'fit s':>7} {'peak RSS MB':>11}")
        for name, side in r["sides"].items():
            ci, each = f"[{side['ci'][0]:.3f}, {side['ci'][1]:.3f}]", " ".join(f"{x:.3f}" for x in side["repeats"])
            print(
                f"{DROPOUTS[name]:<8} {side[r['metric']]:>8.3f} {ci:>17} {each:>20} "
                f"{side['fit_s_per_repeat']:>7.1f} {side['peak_rss_mb']:>11.0f}"
            )
        print(
            f"0 - 0.05: {r['difference']:+.3f} (95% paired CI {r['difference_ci'][0]:+.3f} to "
            f"{r['difference_ci'][1]:+.3f}; {r['test']} p={r['p_value']:.3f})"
        )
    result = {
        "bench": "lora_dropout",
        "repeats": args.repeats,
        "dropouts": DROPOUTS,
        "examples": rows,
        "worst_difference": min(r["difference"] for r in rows),
        "worst_difference_ci_low": min(r["difference_ci"][0] for r in rows),
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
