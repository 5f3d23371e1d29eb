"""How fast the engine scores few-shot classification, against the usual ways.

On the banking-cards slice (examples/), 8-shot classification with the embedded
SmolLM2-135M, queries per second for:
  (a) engine: shared-prefix KV cache, queries grouped, every label of a query in one
      batched pass on the query's cache (`label_logprobs`, what `compare` runs);
  (b) naive: for each query and each label, encode the whole prompt plus the label
      from scratch (lm-evaluation-harness's loglikelihood requests without caching);
  (c) generate: `model.generate` one query at a time (greedy, up to 16 tokens), the
      answer parsed to a label (exact, else the label it starts with or contains).
for fixed shots (one seeded sample for every query) and per-query `similar` shots.
(a) and (b) are checked to choose the same label with log-probs within 1e-3 (fp32).
The naive and generate baselines run on the first --slow-queries queries (they are
slow); the engine on --queries. Last line: one JSON object with every figure, which the
script also writes itself to bench/results/icl-cpu.json (--out). The engine's pass also
reports the process's peak RSS while it ran (sampled every 20 ms).

    python bench/icl.py [--queries 32] [--slow-queries 6] [--out bench/results/icl-cpu.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from adaptlab.data import load_dataset
from adaptlab.engine.prompt import encode_answer
from adaptlab.engine.scoring import label_logprobs
from adaptlab.evaluation.resources import PeakRss, current_rss_mb
from adaptlab.kinds import strategy
from adaptlab.models import load_base_model
from adaptlab.task import make_task

EXAMPLE = Path(__file__).parents[1] / "examples" / "banking-cards"
INSTRUCTION = "Route the bank customer's message about their card to the right support team."


def naive_scores(model, prompts, labels):
    import torch

    out = np.zeros((len(prompts), len(labels)))
    with torch.inference_mode():
        for q, prompt in enumerate(prompts):
            for j, label in enumerate(labels):
                logp = torch.log_softmax(model(input_ids=torch.tensor([prompt + label])).logits[0].float(), dim=-1)
                out[q, j] = sum(logp[len(prompt) + i - 1, t].item() for i, t in enumerate(label))
    return out


def generate_choices(base, prompts, task):
    import torch

    out = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([prompt])
            new = base.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=16,
                do_sample=False,
                eos_token_id=base.eot_id,
                pad_token_id=base.eot_id,
            )[0, len(prompt) :]
            out.append(task.parse_label(base.tokenizer.decode(new, skip_special_tokens=True)))
    return out


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=32)
    parser.add_argument("--slow-queries", type=int, default=6)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "icl-cpu.json")
    args = parser.parse_args()
    base = load_base_model(args.model)
    train, test = load_dataset(EXAMPLE / "train.jsonl"), load_dataset(EXAMPLE / "test.jsonl")
    task = make_task("banking-cards", INSTRUCTION, train, test)
    labels = [encode_answer(base.tokenizer, label, base.eot_id) for label in task.labels]
    queries = test.inputs[: args.queries]
    slow = args.slow_queries
    figures: dict = {
        "device": base.device,
        "queries_engine": len(queries),
        "queries_slow": slow,
        "labels": len(labels),
        "shots": 8,
    }
    rows = []
    for shots in ("fixed", "similar"):
        solver = strategy(
            {"name": "few_shot", "k": 8, "selector": "random" if shots == "fixed" else "similar"}, base, seed=0
        ).fit(task, train)
        prompts, counts = solver.prompts(queries)
        before = current_rss_mb()
        with PeakRss(0.02) as rss:
            (engine, _, _), t_engine = timed(lambda: label_logprobs(base.model, prompts, labels, base.device))  # noqa: B023
        naive, t_naive = timed(lambda: naive_scores(base.model, prompts[:slow], labels))  # noqa: B023
        generated, t_generate = timed(lambda: generate_choices(base, prompts[:slow], task))  # noqa: B023
        qps = {"engine": len(prompts) / t_engine, "naive": slow / t_naive, "generate": slow / t_generate}
        same = bool((engine[:slow].argmax(1) == naive.argmax(1)).all())
        diff = float(np.abs(engine[:slow] - naive).max())
        expected = test.outputs[: args.queries]
        figures |= {
            f"qps_engine_{shots}": qps["engine"],
            f"qps_naive_{shots}": qps["naive"],
            f"qps_generate_{shots}": qps["generate"],
            f"engine_rss_before_mb_{shots}": before,
            f"engine_peak_rss_mb_{shots}": rss.peak_mb,
            f"speedup_vs_naive_{shots}": qps["engine"] / qps["naive"],
            f"speedup_vs_generate_{shots}": qps["engine"] / qps["generate"],
            f"same_choices_{shots}": same,
            f"max_abs_logprob_diff_{shots}": diff,
            f"prompt_tokens_mean_{shots}": float(np.mean([len(p) for p in prompts])),
            f"accuracy_engine_{shots}": float(
                np.mean([task.labels[i] == e for i, e in zip(engine.argmax(1), expected)])
            ),
            f"accuracy_generate_{shots}_first_{slow}": float(np.mean([g == e for g, e in zip(generated, expected)])),
            f"unparsed_generate_{shots}": sum(g is None for g in generated),
        }
        rows.append(
            (
                shots,
                qps,
                figures[f"speedup_vs_naive_{shots}"],
                figures[f"speedup_vs_generate_{shots}"],
                same,
                diff,
                figures[f"prompt_tokens_mean_{shots}"],
                rss.peak_mb,
            )
        )
    figures["same_choices"] = figures["same_choices_fixed"] and figures["same_choices_similar"]
    figures["max_abs_logprob_diff"] = max(
        figures["max_abs_logprob_diff_fixed"], figures["max_abs_logprob_diff_similar"]
    )
    print(
        f"{'shots':8} {'prompt tok':>10} {'engine q/s':>11} {'engine peak MB':>14} {'naive q/s':>10} "
        f"{'generate q/s':>13} {'vs naive':>9} {'vs generate':>12} {'same':>5} {'max |dlogp|':>12}"
    )
    for shots, qps, vs_naive, vs_gen, same, diff, tokens, peak in rows:
        print(
            f"{shots:8} {tokens:10.0f} {qps['engine']:11.3f} {peak:14.0f} {qps['naive']:10.3f} "
            f"{qps['generate']:13.3f} {vs_naive:8.1f}x {vs_gen:11.1f}x {str(same):>5} {diff:12.2e}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures) + "\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
