"""SetFit against the embedding classifier on the banking-cards demo: is tuning the embedder worth it?

Both are baselines without an LLM: `embed_classifier` fits a logistic head on the vectors of
all-MiniLM-L6-v2 as shipped; `setfit` first tunes a copy of that embedder on label pairs
(`--pairs` per training row, half same-label, half different-label; CosineSimilarityLoss, one
epoch by default), then fits the same head on the tuned vectors. Each is fitted on the
example's train.jsonl (160 rows, all of them: no dev split) and measured on test.jsonl (80 rows)
through adaptlab.evaluation.evaluate, as `compare` measures it: accuracy with its 95% BCa interval,
macro-F1, fit seconds (the embedder loaded beforehand, so neither pays for it; the training
vectors embedded from scratch, no cache) and ms per query (batches of 8, as served).

    python bench/setfit.py [experiment.yaml] [--pairs 20] [--epochs 1] [--out bench/results/setfit-cpu.json]

Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _results import write_result

EXAMPLE = Path(__file__).parents[1] / "examples" / "banking-cards" / "experiment.yaml"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", nargs="?", default=str(EXAMPLE))
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "setfit-cpu.json"))
    args = parser.parse_args()
    os.environ["ADAPTLAB_HOME"] = tempfile.mkdtemp(
        prefix="bench-setfit-"
    )  # no cached training vectors: embed_classifier embeds them in its fit

    import torch

    from adaptlab.data import load_dataset
    from adaptlab.evaluation.evaluate import evaluate
    from adaptlab.kinds import kind, strategy
    from adaptlab.models.embedder import default_embedder
    from adaptlab.runs.experiment import load_experiment
    from adaptlab.task import make_task

    config, root = load_experiment(args.experiment)
    train, test = load_dataset(root / config.data.train), load_dataset(root / config.data.test)
    task = make_task(config.task.name, config.task.instruction, train, test)
    clock = time.perf_counter()
    embedder = default_embedder()
    load_s = time.perf_counter() - clock
    entries = {
        "embed_classifier": {"name": "embed_classifier"},
        "setfit": {"name": "setfit", "pairs": args.pairs, "epochs": args.epochs},
    }
    rows = []
    for name, entry in entries.items():
        measured, _ = evaluate(
            strategy(entry, embedder=embedder, seed=args.seed),
            task,
            train,
            test,
            name=name,
            traits=kind(entry["name"]).traits(),
        )
        rows.append(
            {
                "strategy": name,
                "config": entry,
                "accuracy": measured.metrics["accuracy"],
                "accuracy_ci": list(measured.ci["accuracy"]),
                "macro_f1": measured.metrics["macro_f1"],
                "fit_s": measured.fit_seconds,
                "ms_per_query_mean": measured.latency_ms_mean,
                "ms_per_query_p95": measured.latency_ms_p95,
                "labels_predicted": measured.labels_predicted,
                "peak_rss_mb": measured.peak_rss_mb,
                "tuning": measured.solver.get("tuning"),
            }
        )

    print(
        f"{task.name}: {len(train)} training rows, {len(test)} test rows, {len(task.labels)} labels; "
        f"{torch.get_num_threads()} threads; embedder loaded in {load_s:.1f} s (not counted)"
    )
    print(f"{'strategy':<17} {'accuracy':>8} {'95% CI':>15} {'macro-F1':>8} {'fit s':>7} {'ms/query':>8} {'p95 ms':>7}")
    for r in rows:
        ci = f"[{r['accuracy_ci'][0]:.3f}, {r['accuracy_ci'][1]:.3f}]"
        print(
            f"{r['strategy']:<17} {r['accuracy']:>8.3f} {ci:>15} {r['macro_f1']:>8.3f} "
            f"{r['fit_s']:>7.1f} {r['ms_per_query_mean']:>8.1f} {r['ms_per_query_p95']:>7.1f}"
        )
    tuning = rows[-1]["tuning"]
    print(
        f"setfit tuning: {tuning['pairs']} pairs ({tuning['pairs_per_example']} per row), "
        f"{tuning['steps']} steps of {tuning['batch_size']}, {tuning['epochs']} epoch(s), "
        f"{tuning['loss']} {tuning['train_loss']}, {tuning['seconds']:.1f} s"
    )
    result = {
        "bench": "setfit",
        "experiment": os.path.relpath(Path(args.experiment).resolve(), Path(__file__).parents[1].resolve()),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "train_rows": len(train),
        "test_rows": len(test),
        "embedder_load_s": load_s,
        "seed": args.seed,
        "strategies": rows,
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
