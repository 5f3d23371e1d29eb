"""LoRA training memory on long answers: peak RSS and time of one epoch, per micro-batch budget and padding.

The booking-sql slice (examples/booking-sql: 80 rows, SQL answers of 56-201 tokens, a
260-token instruction every row shares), 72 training rows (the 8 a compare holds out as
its dev split left out), LoRA as `compare` trains it by default (r 8, alpha 16, every
linear layer, AdamW 5e-3, batch 8; bf16 autocast where `compare` decides it
is faster, as it does), one epoch. Each
configuration runs in a fresh child process, so one's allocator state is not the next
one's; RSS is sampled every 50 ms from the start of training (the model loaded, the rows
encoded) to its end:

  max_batch_tokens   the micro-batch budget (padded tokens after the shared prefix)
  pad_to             micro-batch widths rounded up to a multiple of this (1: to the longest
                     row only); with few distinct shapes oneDNN reuses its kernels
  lora_dropout       0.05 (the default before) or 0 (the default now; no dropout: PEFT then keeps no copy of each
                     adapted layer's input for the backward pass)
  attention          explicit: the attention training uses on a CPU (engine.session's
                     _training_attention: explicit scores up to 2M a layer); sdpa: transformers'
                     own, as before (torch's fused kernel)
  peak_rss_mb        the process's peak while training
  before_mb          its RSS just before (weights, tokenizer, the rows)
  seconds            the epoch's wall time; final_loss the epoch's mean loss

    python bench/lora_memory.py [--out bench/results/lora-memory-cpu.json]

Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _results import write_result

EXAMPLE = Path(__file__).parents[1] / "examples" / "booking-sql"
DEFAULT = -1  # the run of configs below with the defaults: the last

CHILD = r"""
import contextlib, json, sys, time
import yaml
from adaptlab.data import split_dev
from adaptlab.data.load import load_dataset
from adaptlab.evaluation.resources import PeakRss, current_rss_mb, release_memory
from adaptlab.finetune.fit import training_rows
from adaptlab.finetune.trainer import Hooks, TrainSettings, train
from adaptlab.kinds.lora import LoraConfig, attach_lora
from adaptlab.models import load_base_model
from adaptlab.models.device import bf16_is_fast
from adaptlab.task import make_task
import adaptlab.finetune.loss as loss

import adaptlab.finetune.trainer as trainer

folder, budget, pad_to, dropout, attention = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
loss.CPU_PAD_TO = pad_to
if attention == "sdpa":
    trainer.native_attention = lambda model, training: contextlib.nullcontext()
experiment = yaml.safe_load(open(f"{folder}/experiment.yaml"))
train_set, test = load_dataset(f"{folder}/train.jsonl"), load_dataset(f"{folder}/test.jsonl")
base = load_base_model("smollm2-135m-instruct")
task = make_task("booking-sql", experiment["task"]["instruction"], train_set, test, count_tokens=lambda s: len(base.tokenizer.encode(s)))
fit_set, _ = split_dev(train_set, 0.1, 0, False)
rows = training_rows(base, task, fit_set)
attach_lora(base, "bench", LoraConfig(name="lora", dropout=dropout), 0)
release_memory()
bf16 = bf16_is_fast(base.device)
before = current_rss_mb()
with PeakRss(0.05) as rss:
    start = time.perf_counter()
    result = train(base.model, rows, TrainSettings(1, 5e-3, 8, 0.1, bf16, 0, max_batch_tokens=budget), base.device, base.tokenizer.pad_token_id, Hooks(None, None, None, None))
    seconds = time.perf_counter() - start
print(json.dumps({"rows": len(rows), "tokens": sum(len(r.input_ids) for r in rows), "before_mb": before, "peak_rss_mb": rss.peak_mb, "seconds": seconds, "final_loss": result.state.epoch_losses[-1], "steps": result.state.step, "bf16": bf16}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "lora-memory-cpu.json"))
    args = parser.parse_args()

    # (max_batch_tokens, pad_to, lora dropout, attention): the settings before, then one change after another to the
    # defaults
    configs = [
        (512, 1, 0.05, "sdpa"),
        (256, 1, 0.05, "sdpa"),
        (256, 64, 0.05, "sdpa"),
        (256, 64, 0.0, "sdpa"),
        (256, 64, 0.0, "explicit"),
    ]
    runs = []
    print(
        f"{'max_batch_tokens':>16} {'pad_to':>6} {'dropout':>7} {'attention':>9} {'before MB':>9} "
        f"{'peak RSS MB':>11} {'seconds':>8} {'loss':>7}"
    )
    for budget, pad_to, dropout, attention in configs:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(EXAMPLE), str(budget), str(pad_to), str(dropout), attention],
            capture_output=True,
            text=True,
            check=True,
        )
        run = {
            "max_batch_tokens": budget,
            "pad_to": pad_to,
            "lora_dropout": dropout,
            "attention": attention,
        } | json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(
            f"{budget:>16} {pad_to:>6} {dropout:>7} {attention:>9} {run['before_mb']:>9.0f} "
            f"{run['peak_rss_mb']:>11.0f} {run['seconds']:>8.1f} {run['final_loss']:>7.4f}"
        )
    old, new = runs[0], runs[DEFAULT]  # the settings before; the defaults
    result = {
        "bench": "lora_memory",
        "slice": "examples/booking-sql",
        "targets": "all-linear",
        "epochs": 1,
        "bf16": new["bf16"],
        "runs": runs,
        "default_peak_rss_mb": new["peak_rss_mb"],
        "default_under_3gb": new["peak_rss_mb"] <= 3000,
        "before_peak_rss_mb": old["peak_rss_mb"],
        "time_vs_before": new["seconds"] / old["seconds"],
        "peak_vs_before": new["peak_rss_mb"] / old["peak_rss_mb"],
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
