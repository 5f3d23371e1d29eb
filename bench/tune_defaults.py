"""The defaults, re-measured with the tuner: what `tune:` chooses for few_shot and lora, per data set and seed.

docs/defaults.md chose few_shot k=4/similar and LoRA 5e-3 from one grid, one seed, on two
Banking77 slices. This runs the tuner (adaptlab.runs.tune: Optuna TPE, the defaults as
trial 0) with the same budget for both kinds on the development slices the demo never
sees (bench/data: banking-topup, banking-transfers: 160 train, 80 dev rows) and on a
Restaurant-8k slice (a generate task: 120 train, 40 dev rows of ../shared/data/restaurant8k,
CC-BY-4.0, PolyAI), once per seed, and reports the spread: how much tuning gains over the
defaults on dev, and whether the settings it picks agree across seeds and data sets.

    python bench/tune_defaults.py [--seeds 0 1] [--trials 6] [--data banking-topup ...]

Last line: one JSON object, also written to bench/results/tune-defaults-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _results import write_result

from adaptlab.data import Dataset, load_dataset
from adaptlab.engine.prompt import encode_text
from adaptlab.kinds import kind
from adaptlab.kinds.context import BuildContext, ModelSource
from adaptlab.models import load_base_model
from adaptlab.runs.tune import tune
from adaptlab.task import make_task

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).parents[2] / "shared" / "data"
INSTRUCTIONS = {
    "banking-topup": "Route the bank customer's message about topping up their account to the right team.",
    "banking-transfers": "Route the bank customer's message about a money transfer to the right team.",
    "restaurant8k": "Extract the booking details the user gives as a JSON object with the keys date, time, people, "
    "first_name, last_name (only those present; {} when none).",
}


def data(name: str) -> tuple[Dataset, Dataset]:
    if name == "restaurant8k":
        rows = load_dataset(SHARED / "restaurant8k" / "train.jsonl")
        return Dataset(rows.examples[:120], "restaurant8k[:120]"), Dataset(
            rows.examples[120:160], "restaurant8k[120:160]"
        )
    return load_dataset(DATA / name / "train.jsonl"), load_dataset(DATA / name / "dev.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--data", nargs="+", default=list(INSTRUCTIONS))
    parser.add_argument("--kinds", nargs="+", default=["few_shot", "lora"])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "tune-defaults-cpu.json"))
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows of an interrupted run (OUT's .partial.json) and measure only the rest",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="start no new tuning after this many minutes; the rest are listed as skipped",
    )
    args = parser.parse_args()
    partial = Path(args.out).with_suffix(".partial.json")  # an hour-long run keeps what it measured if stopped
    base = load_base_model("smollm2-135m-instruct")
    models = ModelSource(base)
    defaults = {
        "few_shot": {"name": "few_shot"},
        "lora": {"name": "lora", "epochs": 3, "bf16": False, "dev_fraction": 0},
    }
    rows, start, skipped = (
        (json.loads(partial.read_text())["rows"] if args.resume and partial.exists() else []),
        time.perf_counter(),
        [],
    )
    print(f"{'data':18} {'seed':>4} {'kind':9} {'untuned dev':>11} {'tuned dev':>9} {'seconds':>8}  chosen")
    for name in args.data:
        train, dev = data(name)
        task = make_task(
            name, INSTRUCTIONS[name], train, dev, count_tokens=lambda text: len(encode_text(base.tokenizer, text)) + 1
        )  # the answer budget compare gives
        for seed in args.seeds:
            for k in args.kinds:
                if any((r["data"], r["seed"], r["kind"]) == (name, seed, k) for r in rows):
                    continue  # measured before the run was resumed
                if args.minutes is not None and time.perf_counter() - start > args.minutes * 60:
                    skipped.append({"data": name, "seed": seed, "kind": k})
                    continue
                spec = kind(k)
                config = spec.config.model_validate(defaults[k] | {"tune": {"trials": args.trials}})
                tuned = tune(
                    config,
                    spec,
                    task,
                    train,
                    dev,
                    lambda c, seed=seed, spec=spec, dev=dev: spec.build(c, BuildContext(models, seed, dev=dev)),
                    seed,
                )
                r = tuned.record
                rows.append(
                    {
                        "data": name,
                        "seed": seed,
                        "kind": k,
                        "untuned_dev": r["untuned"]["dev_score"] if r["untuned"] else None,
                        "tuned_dev": r["best"]["dev_score"],
                        "chosen": r["best"]["settings"],
                        "seconds": r["seconds"],
                        "trials": r["trials"],
                        "metric": task.metric,
                    }
                )
                row = rows[-1]
                print(
                    f"{name:18} {seed:>4} {k:9} {row['untuned_dev']:>11.3f} {row['tuned_dev']:>9.3f} "
                    f"{row['seconds']:>8.0f}  {row['chosen']}",
                    flush=True,
                )
                partial.write_text(json.dumps({"bench": "tune_defaults", "complete": False, "rows": rows}) + "\n")
    spread = {}
    for name in args.data:
        for k in args.kinds:
            mine = [r for r in rows if r["data"] == name and r["kind"] == k]
            gains = [r["tuned_dev"] - r["untuned_dev"] for r in mine if r["untuned_dev"] is not None]
            if not gains:
                continue
            spread[f"{name}/{k}"] = {
                "gain_min": min(gains),
                "gain_max": max(gains),
                "chosen": [r["chosen"] for r in mine],
            }
    for key, s in spread.items():
        print(
            f"{key:30} gain over the defaults on dev: {s['gain_min']:+.3f} to {s['gain_max']:+.3f}; "
            f"chosen: {s['chosen']}"
        )
    for gap in skipped:
        print(f"not measured (over --minutes): {gap}")
    partial.unlink(missing_ok=True)
    write_result(
        args.out,
        {
            "bench": "tune_defaults",
            "trials": args.trials,
            "seeds": args.seeds,
            "seconds": time.perf_counter() - start,
            "seconds_note": "this invocation's wall time; resumed rows keep their own seconds",
            "rows": rows,
            "spread": spread,
            "skipped": skipped,
        },
    )


if __name__ == "__main__":
    main()
