"""A check of the decision itself: recommend from a small test split, then judge the pick on a large one.

On several slices of Banking77 (../shared/data/banking77, CC-BY-4.0: different label
subsets and sizes; 20 training rows per label), every contender (majority,
embed_classifier, zero_shot, few_shot k=4 similar; lora with --lora) is fitted once and
answers 40 test rows per label. The recommendation is made from the first 10 rows per
label (the small split, as a team would have), exactly as `compare` makes it, and then
measured on the other 30 per label (the large split):

  regret    best large-split accuracy minus the large-split accuracy of the pick
  coverage  the share of contenders whose large-split accuracy lies inside the 95%
            interval the small split gave it

Targets (issue 17): worst regret <= 0.05, coverage 90-98%.

    python bench/decide.py [--slices 3] [--lora] [--out bench/results/decide-cpu.json]

Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np

from _results import write_result
from adaptlab import kinds
from adaptlab.data import Dataset, Example
from adaptlab.decide import recommend
from adaptlab.decide.costs import strategy_cost
from adaptlab.evaluation import evaluate
from adaptlab.metrics import task_metrics
from adaptlab.task import make_task

BANKING = Path(__file__).parents[2] / "shared" / "data" / "banking77"
SLICES = [(5, 1), (8, 2), (8, 3), (12, 4), (5, 5)]  # (labels, seed)
TRAIN_PER_LABEL, SMALL_PER_LABEL = 20, 10
INSTRUCTION = "Route the bank customer's message to the intent label that fits it best."


def rows(split: str) -> list[dict]:
    return [json.loads(line) for line in (BANKING / f"{split}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def make_slice(n_labels: int, seed: int, train_rows: list[dict], test_rows: list[dict]):
    rng = random.Random(seed)
    labels = sorted(rng.sample(sorted({r["output"] for r in train_rows}), n_labels))
    pick = lambda pool, label, n: rng.sample([r for r in pool if r["output"] == label], n) if n else [r for r in pool if r["output"] == label]  # noqa: E731
    train = [r for label in labels for r in pick(train_rows, label, TRAIN_PER_LABEL)]
    small, large = [], []
    for label in labels:
        test = pick(test_rows, label, 0)
        rng.shuffle(test)
        small += test[:SMALL_PER_LABEL]
        large += test[SMALL_PER_LABEL:]
    as_data = lambda rs, name: Dataset([Example(r["input"], r["output"], i + 1) for i, r in enumerate(rs)], name)  # noqa: E731
    return labels, as_data(train, "train"), as_data(small + large, "test"), len(small)


def part(e, idx: np.ndarray, task):
    """The evaluation restricted to test rows `idx` (the small split): its metrics, intervals and per-row scores."""
    expected = [e.predictions[i]["expected"] for i in idx]
    predicted = [e.predictions[i]["predicted"] for i in idx]
    metrics, ci = task_metrics(task.kind, expected, predicted, list(task.labels), resamples=1000)
    return replace(e, metrics=metrics, ci=ci, scores=[e.scores[i] for i in idx], predictions=[e.predictions[i] for i in idx])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=3)
    parser.add_argument("--lora", action="store_true", help="add lora (2 epochs) to the contenders (minutes per slice on a CPU)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "decide-cpu.json"))
    args = parser.parse_args()
    from adaptlab.kinds.context import BuildContext, ModelSource
    from adaptlab.models import load_base_model
    from adaptlab.models.embedder import default_embedder

    base, embedder = load_base_model("smollm2-135m-instruct"), default_embedder()
    specs = [{"name": "majority"}, {"name": "embed_classifier"}, {"name": "zero_shot"}, {"name": "few_shot", "k": 4, "selector": "similar"}] + ([{"name": "lora", "epochs": 2}] if args.lora else [])
    train_rows, test_rows = rows("train"), rows("test")
    out = []
    print(f"{'slice':<14} {'pick':<17} {'small acc':>9} {'large acc':>9} {'best large':>17} {'regret':>7} {'covered':>8}")
    for n_labels, seed in SLICES[: args.slices]:
        labels, train, test, n_small = make_slice(n_labels, seed, train_rows, test_rows)
        task = make_task(f"banking{n_labels}-{seed}", INSTRUCTION, train, test)
        models = ModelSource(base)
        evaluations = []
        for spec in specs:
            k = kinds.kind(spec["name"])
            strategy = k.build(k.config.model_validate(spec), BuildContext(models, seed, embedder=embedder))
            evaluations.append(evaluate(strategy, task, train, test, name=spec["name"], traits=k.traits())[0])
        small_idx, large_idx = np.arange(n_small), np.arange(n_small, len(test))
        small = [part(e, small_idx, task) for e in evaluations]
        large = {e.name: float(np.mean([e.scores[i] for i in large_idx])) for e in evaluations}
        costs = {e.name: strategy_cost(e, 0.10) for e in small}
        choice = recommend(small, task.metric, len(task.labels), costs=costs).choice
        picked = large.get(choice, float("nan"))
        best = max(large, key=large.get)
        covered = [s.ci["accuracy"][0] <= large[s.name] <= s.ci["accuracy"][1] for s in small]
        row = {"labels": n_labels, "seed": seed, "train": len(train), "small_test": n_small, "large_test": len(large_idx), "choice": choice,
               "small": {s.name: s.metrics["accuracy"] for s in small}, "small_ci": {s.name: list(s.ci["accuracy"]) for s in small}, "large": large,
               "regret": large[best] - picked if choice in large else None, "covered": sum(covered), "contenders": len(covered)}
        out.append(row)
        regret = "n/a" if row["regret"] is None else f"{row['regret']:.3f}"
        print(f"{n_labels} labels s{seed:<5} {choice:<17} {row['small'].get(choice, float('nan')):>9.3f} {picked:>9.3f} {best + f' {large[best]:.3f}':>17} {regret:>7} {sum(covered)}/{len(covered):>6}")
    regrets = [r["regret"] for r in out if r["regret"] is not None]
    coverage = sum(r["covered"] for r in out) / sum(r["contenders"] for r in out)
    print(f"\nregret: mean {np.mean(regrets):.3f}, worst {max(regrets):.3f} (target <= 0.05); interval coverage {coverage:.1%} (target 90-98%) over {sum(r['contenders'] for r in out)} intervals")
    write_result(args.out, {"bench": "decide", "slices": out, "regret_mean": float(np.mean(regrets)), "regret_worst": float(max(regrets)), "coverage": coverage, "contenders": [s["name"] for s in specs]})


if __name__ == "__main__":
    main()
