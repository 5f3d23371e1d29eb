"""Sweep the defaults that matter, on development slices the demo never sees.

LoRA: learning rate x epochs; few-shot: k x selector; majority and embed_classifier
for context. Each configuration is fitted on a slice's train.jsonl (160 rows) and
scored on its dev.jsonl (80 rows) with the same evaluate() that `compare` uses.
Prints a table per slice; the last line is one JSON object with every figure.

    python bench/sweep_defaults.py                       # the embedded model, both slices
    python bench/sweep_defaults.py --model PATH --quick  # a smoke run: one slice, two configs each

fp32 everywhere (TF32 off on GPUs), so figures measured on a GPU match what a CPU computes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from adaptlab.data import load_dataset
from adaptlab.evaluation import evaluate
from adaptlab.kinds import strategy
from adaptlab.models import load_base_model
from adaptlab.task import make_task

DATA = Path(__file__).parent / "data"
SLICES = {
    "banking-topup": "Route the bank customer's message about topping up their account to the right team.",
    "banking-transfers": "Route the bank customer's message about a money transfer to the right team.",
}
LEARNING_RATES = [2e-4, 5e-4, 1e-3, 2e-3, 5e-3]
EPOCHS = [2, 3]
SHOTS = [2, 4, 8, 16]
SELECTORS = ["random", "similar"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-lora", action="store_true")
    args = parser.parse_args()
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    base = load_base_model(args.model)
    slices = list(SLICES)[:1] if args.quick else list(SLICES)
    lrs, epochs, shots = (LEARNING_RATES[2:4], EPOCHS[:1], SHOTS[:2]) if args.quick else (LEARNING_RATES, EPOCHS, SHOTS)
    rows: list[dict] = []
    start = time.perf_counter()
    for name in slices:
        train = load_dataset(DATA / name / "train.jsonl")
        dev = load_dataset(DATA / name / "dev.jsonl")
        task = make_task(name.replace("banking-", "bank-"), SLICES[name], train, dev)
        runs = [
            ("majority", {}, strategy({"name": "majority"})),
            ("embed_classifier", {}, strategy({"name": "embed_classifier"})),
        ]
        runs += [
            ("few_shot", {"k": k, "selector": sel}, strategy({"name": "few_shot", "k": k, "selector": sel}, base))
            for k in shots
            for sel in SELECTORS
        ]
        if not args.skip_lora:
            runs += [
                (
                    "lora",
                    {"learning_rate": lr, "epochs": ep},
                    strategy(
                        {"name": "lora", "learning_rate": lr, "epochs": ep, "bf16": False, "dev_fraction": 0}, base
                    ),
                )
                for lr in lrs
                for ep in epochs
            ]
        for kind, settings, fitter in runs:
            evaluation, _ = evaluate(fitter, task, train, dev)
            lo, hi = evaluation.ci["accuracy"]
            rows.append(
                {
                    "slice": name,
                    "strategy": kind,
                    **settings,
                    "accuracy": evaluation.metrics["accuracy"],
                    "ci_low": lo,
                    "ci_high": hi,
                    "macro_f1": evaluation.metrics["macro_f1"],
                    "fit_s": evaluation.fit_seconds,
                    "ms_per_query": evaluation.latency_ms_mean,
                }
            )
            r = rows[-1]
            print(
                f"{name:18} {kind:16} {json.dumps(settings):40} acc {r['accuracy']:.3f} "
                f"[{lo:.2f}-{hi:.2f}]  fit {r['fit_s']:6.1f}s  {r['ms_per_query']:7.1f} ms/q",
                flush=True,
            )
    summary = summarise(rows)
    print(
        json.dumps(
            {
                "device": base.device,
                "model": args.model,
                "seconds": time.perf_counter() - start,
                "rows": rows,
                **summary,
            }
        )
    )


def summarise(rows: list[dict]) -> dict:
    """Mean accuracy over slices for each configuration, and the best of each family."""
    means: dict[str, dict] = {}
    for r in rows:
        key = json.dumps({k: r[k] for k in ("strategy", "k", "selector", "learning_rate", "epochs") if k in r})
        means.setdefault(key, []).append(r["accuracy"])
    table = {k: sum(v) / len(v) for k, v in means.items()}
    best = {}
    for family in ("few_shot", "lora"):
        candidates = {k: v for k, v in table.items() if json.loads(k)["strategy"] == family}
        if candidates:
            top = max(candidates, key=candidates.get)
            best[f"best_{family}"] = {**json.loads(top), "mean_accuracy": candidates[top]}
    return {"mean_accuracy": table, **best}


if __name__ == "__main__":
    main()
