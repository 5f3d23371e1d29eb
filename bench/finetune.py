"""adaptlab's trainer against TRL's SFTTrainer, and adaptlab on long answers.

1. Classification, against TRL. On the banking-cards slice (examples/, 160 training
rows), LoRA on the embedded SmolLM2-135M (r 8, alpha 16, dropout 0.05 on q/k/v/o,
AdamW lr 5e-3, warm-up 10% then cosine, batch 8, no weight decay, grad-norm clip 1.0,
fp32, loss on the answer tokens only, the same chat messages, no gradient
checkpointing: TRL turns it on by default, which costs time; it is turned off here so
the work is the same), --epochs passes (20 steps each):

  tokens_per_s      example tokens (prompt + answer, no padding) per second of
                    training wall time, the same count for both trainers;
  final_loss        after training, the mean answer-token loss over all training rows,
                    computed for both adapters by the same function (dropout off), so
                    the two trainers' different data orders do not add noise; the mean
                    of each trainer's own logged losses over its last epoch is shown too;
  achieved FLOP/s   4 x parameters x tokens / s: a frozen base costs ~2N per token
                    forward and ~2N backward (activation gradients only; LoRA's own
                    weights are negligible). "Useful" FLOP/s counts the example tokens;
                    adaptlab's shared prefix computes fewer, so its useful figure can
                    exceed what the hardware does. Compared with a measured fp32 matmul.
  peak_rss_mb       the process's peak resident memory after adaptlab's run (it runs
                    first, so TRL's memory is not in it).

2. Long answers (`long_*`). The booking-sql slice (examples/booking-sql: SQL INSERT
answers composed from Restaurant-8k), its training rows whose answer is at least 100
tokens (~505 tokens a row, 260 of them the shared instruction), the same LoRA settings
and batch 8, default micro-batch budget, --epochs passes, in a child process of its
own so its peak RSS is not the classification case's (VmHWM: a child's ru_maxrss
includes its parent's peak). It reports training tokens/s, peak RSS after training,
and what one dev scoring of 16 held-out rows (answers under 100 tokens, not trained
on) costs both ways: the mean answer-token log-likelihood (dev_metric loglik, the
default on generate tasks) against generating the answers (dev_metric generate).

  compute_tokens_per_s  for both cases, the tokens the model actually runs per second:
                    the shared instruction once per step plus each row's own tokens.
                    tokens_per_s counts the instruction for every row, so a task with
                    a long instruction and short rows (classification) looks faster.

    python bench/finetune.py [--epochs 1] [--out bench/results/finetune-cpu.json]

Needs TRL (`pip install trl==1.16.0`, in the `bench` extra). Last line: one JSON
object with every figure, which the script also writes itself to --out.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adaptlab.data import Dataset, load_dataset
from adaptlab.engine.prompt import build_messages
from adaptlab.finetune.fit import training_rows
from adaptlab.finetune.loss import mean_loss, shared_prefix
from adaptlab.kinds import strategy
from adaptlab.kinds.lora import LoraConfig
from adaptlab.models import load_base_model
from adaptlab.task import make_task

EXAMPLE = Path(__file__).parents[1] / "examples" / "banking-cards"
SQL = Path(__file__).parents[1] / "examples" / "booking-sql"
LONG_ANSWER, DEV_ROWS = 100, 16  # long case: answers of at least this many tokens; dev rows scored both ways
BATCH, LR, SEED = 8, 5e-3, 0
LORA = {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def matmul_gflops(n: int = 1024, repeats: int = 10) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def compute_tokens(rows, steps: int, epochs: int) -> int:
    """Tokens the model actually runs on one CPU: the shared prompt prefix once per step, each row's own tokens once per
    epoch."""
    shared = len(shared_prefix(rows))
    return steps * shared + epochs * sum(len(r.input_ids) - shared for r in rows)


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the process's own memory map, so unlike ru_maxrss it
    does not carry over the peak of the parent a child was spawned from (vfork then exec: the parent's, after TRL, ~7
    GB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dataset_loss(model, rows, pad_id: int) -> float:
    """Mean answer-token loss over `rows`, dropout off, weighted by answer tokens (the trainer's own loss function)."""
    model.eval()
    return mean_loss(model, rows, pad_id, "cpu")


def run_adaptlab(task, train, epochs: int) -> dict:
    base = load_base_model("smollm2-135m-instruct", device="cpu")
    params = base.parameters
    losses = []
    config = LoraConfig(
        name="lora", **LORA, learning_rate=LR, epochs=epochs, batch_size=BATCH, bf16=False, dev_fraction=0
    )
    solver = strategy(config, base, seed=SEED, on_step=lambda r: losses.append(r.loss)).fit(task, train)
    stats = solver.details["training"]
    rss = peak_rss_mb()
    per_epoch = len(losses) // epochs
    rows = training_rows(base, task, train)
    return {
        "steps": stats["steps"],
        "tokens": stats["tokens"],
        "seconds": stats["seconds"],
        "last_epoch_loss": statistics.mean(losses[-per_epoch:]),
        "final_loss": dataset_loss(base.model, rows, base.tokenizer.pad_token_id),
        "peak_rss_mb": rss,
        "params": params,
        "rows": rows,
        "pad_id": base.tokenizer.pad_token_id,
    }


def run_trl(task, train, epochs: int, steps: int, rows, pad_id: int) -> dict:
    import torch
    from datasets import Dataset as HFDataset
    from peft import LoraConfig as PeftLoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from adaptlab.models.base import resolve_model_folder

    folder = resolve_model_folder("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    examples = [
        {"prompt": build_messages(task, [], e.input), "completion": [{"role": "assistant", "content": e.output}]}
        for e in train
    ]
    peft_config = PeftLoraConfig(
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"],
        target_modules=LORA["target_modules"],
        task_type="CAUSAL_LM",
    )
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(
            output_dir=out,
            per_device_train_batch_size=BATCH,
            gradient_accumulation_steps=1,
            max_steps=steps,
            learning_rate=LR,
            lr_scheduler_type="cosine",
            warmup_steps=0.1,
            weight_decay=0.0,
            max_grad_norm=1.0,
            seed=SEED,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            bf16=False,
            dataloader_num_workers=0,
            packing=False,
            completion_only_loss=True,
            max_length=None,
            disable_tqdm=True,
            gradient_checkpointing=False,
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=HFDataset.from_list(examples),
            processing_class=tokenizer,
            peft_config=peft_config,
        )
        tokens_per_epoch = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    per_epoch = steps // epochs
    return {
        "steps": trainer.state.global_step,
        "tokens": tokens_per_epoch * epochs,
        "seconds": seconds,
        "last_epoch_loss": statistics.mean(losses[-per_epoch:]),
        "final_loss": dataset_loss(trainer.model, rows, pad_id),
    }


def run_long(epochs: int) -> dict:
    """The long-answer case, in this process: LoRA on booking-sql's long-answer rows, then one dev scoring each way."""
    import yaml

    base = load_base_model("smollm2-135m-instruct", device="cpu")
    config = yaml.safe_load((SQL / "experiment.yaml").read_text())
    train, test = load_dataset(SQL / "train.jsonl"), load_dataset(SQL / "test.jsonl")
    task = make_task(
        "booking-sql",
        config["task"]["instruction"],
        train,
        test,
        kind="generate",
        count_tokens=lambda text: len(base.tokenizer.encode(text)),
    )
    rows = training_rows(base, task, train)
    long = Dataset([e for e, r in zip(train, rows) if len(r.answer) >= LONG_ANSWER], train.source)
    dev = Dataset([e for e, r in zip(train, rows) if len(r.answer) < LONG_ANSWER][:DEV_ROWS], train.source)
    long_rows = training_rows(base, task, long)
    cfg = LoraConfig(name="lora", **LORA, learning_rate=LR, epochs=epochs, batch_size=BATCH, bf16=False, dev_fraction=0)
    solver = strategy(cfg, base, seed=SEED).fit(task, long)
    stats = solver.details["training"]
    rss = peak_rss_mb()  # before dev scoring: training's peak
    dev_rows = training_rows(base, task, dev)
    base.model.eval()
    start = time.perf_counter()
    loglik = -mean_loss(base.model, dev_rows, base.tokenizer.pad_token_id, "cpu")
    loglik_s = time.perf_counter() - start
    start = time.perf_counter()
    solver.predict(dev.inputs)
    generate_s = time.perf_counter() - start
    return {
        "long_rows": len(long),
        "long_steps": stats["steps"],
        "long_tokens": stats["tokens"],
        "long_seconds": stats["seconds"],
        "long_tokens_per_s": stats["tokens"] / stats["seconds"],
        "long_peak_rss_mb": rss,
        "long_compute_tokens_per_s": compute_tokens(long_rows, stats["steps"], epochs) / stats["seconds"],
        "long_shared_prefix_tokens": len(shared_prefix(long_rows)),
        "long_row_tokens_mean": statistics.mean(len(r.input_ids) for r in long_rows),
        "long_answer_tokens_mean": statistics.mean(len(r.answer) for r in long_rows),
        "long_answer_tokens_min": min(len(r.answer) for r in long_rows),
        "long_answer_tokens_max": max(len(r.answer) for r in long_rows),
        "long_epoch_losses": stats["epoch_losses"],
        "dev_rows": len(dev),
        "dev_loglik": loglik,
        "dev_loglik_s": loglik_s,
        "dev_generate_s": generate_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "finetune-cpu.json")
    parser.add_argument(
        "--long-only",
        action="store_true",
        help="run the long-answer case alone, in this process, and print its JSON (the parent runs it so)",
    )
    args = parser.parse_args()
    if args.long_only:
        print(json.dumps(run_long(args.epochs)))
        return
    import torch

    config = __import__("yaml").safe_load((EXAMPLE / "experiment.yaml").read_text())
    train, test = load_dataset(EXAMPLE / "train.jsonl"), load_dataset(EXAMPLE / "test.jsonl")
    task = make_task("banking-cards", config["task"]["instruction"], train, test)
    gflops = matmul_gflops()
    ours = run_adaptlab(task, train, args.epochs)
    base_tokens = sum(len(r.input_ids) for r in ours["rows"])
    theirs = run_trl(task, train, args.epochs, ours["steps"], ours["rows"], ours["pad_id"])
    for r in (ours, theirs):
        r["tokens_per_s"] = r["tokens"] / r["seconds"]
        r["useful_gflops"] = 4 * ours["params"] * r["tokens_per_s"] / 1e9
    print(
        f"SmolLM2-135M LoRA r8, batch {BATCH}, {ours['steps']} steps ({args.epochs} epochs of "
        f"{len(train)} rows), fp32, {torch.get_num_threads()} threads"
    )
    print(
        f"{'trainer':<10} {'steps':>5} {'tokens':>7} {'seconds':>8} {'tok/s':>7} {'final loss':>10} "
        f"{'last-epoch loss':>15} {'useful GFLOP/s':>15}"
    )
    for name, r in (("adaptlab", ours), ("TRL", theirs)):
        print(
            f"{name:<10} {r['steps']:>5} {r['tokens']:>7} {r['seconds']:>8.1f} "
            f"{r['tokens_per_s']:>7.0f} {r['final_loss']:>10.4f} {r['last_epoch_loss']:>15.4f} "
            f"{r['useful_gflops']:>15.1f}"
        )
    print(
        f"fp32 matmul on this machine: {gflops:.0f} GFLOP/s; adaptlab peak RSS "
        f"{ours['peak_rss_mb']:.0f} MB; tokens/epoch counted by adaptlab {base_tokens}, by TRL "
        f"{theirs['tokens'] // args.epochs}"
    )
    child = subprocess.run(
        [sys.executable, __file__, "--long-only", "--epochs", str(args.epochs)],
        capture_output=True,
        text=True,
        check=True,
    )
    long = json.loads(child.stdout.strip().splitlines()[-1])
    ratio = long["long_tokens_per_s"] / ours["tokens_per_s"]
    ours_compute = compute_tokens(ours["rows"], ours["steps"], args.epochs) / ours["seconds"]
    compute_ratio = long["long_compute_tokens_per_s"] / ours_compute
    print(
        "long answers (booking-sql, answers "
        f"{long['long_answer_tokens_min']}-{long['long_answer_tokens_max']} tokens, rows "
        f"~{long['long_row_tokens_mean']:.0f} tokens): {long['long_steps']} steps, "
        f"{long['long_tokens_per_s']:.0f} tok/s ({ratio:.2f}x the classification case), peak RSS "
        f"{long['long_peak_rss_mb']:.0f} MB"
    )
    print(
        f"tokens the model ran (shared prefix once per step): classification {ours_compute:.0f}/s, "
        f"long answers {long['long_compute_tokens_per_s']:.0f}/s ({compute_ratio:.2f}x)"
    )
    print(
        f"one dev scoring of {long['dev_rows']} rows: log-likelihood {long['dev_loglik_s']:.1f} s, "
        f"generating {long['dev_generate_s']:.1f} s"
    )
    figures = {
        "tokens_per_s": ours["tokens_per_s"],
        "tokens_per_s_trl": theirs["tokens_per_s"],
        "speedup_vs_trl": ours["tokens_per_s"] / theirs["tokens_per_s"],
        "wall_speedup_vs_trl": theirs["seconds"] / ours["seconds"],
        "final_loss": ours["final_loss"],
        "final_loss_trl": theirs["final_loss"],
        "final_loss_rel_diff": abs(ours["final_loss"] - theirs["final_loss"]) / theirs["final_loss"],
        "peak_rss_mb": ours["peak_rss_mb"],
        "last_epoch_loss": ours["last_epoch_loss"],
        "last_epoch_loss_trl": theirs["last_epoch_loss"],
        "steps": ours["steps"],
        "steps_trl": theirs["steps"],
        "useful_gflops": ours["useful_gflops"],
        "useful_gflops_trl": theirs["useful_gflops"],
        "matmul_gflops_fp32": gflops,
        "flops_formula": "4 * params * example_tokens / s (frozen base: 2N forward + 2N activation backward)",
        "threads": torch.get_num_threads(),
        "compute_tokens_per_s": ours_compute,
        "shared_prefix_tokens": len(shared_prefix(ours["rows"])),
        **long,
        "long_tokens_per_s_vs_classification": ratio,
        "long_compute_tokens_per_s_vs_classification": compute_ratio,
        "long_within_20pct_of_classification": ratio >= 0.8,
        "long_peak_rss_under_3gb": long["long_peak_rss_mb"] <= 3000,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures) + "\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
