"""How long the five-criteria audit takes on the full Banking77 training set against its test set.

    python bench/audit.py [../shared/data/banking77]

Runs the audit twice in one process, each time in a fresh $ADAPTLAB_HOME folder for the
first (cold: every input embedded) and the same folder for the second (warm: embeddings
read back from the content-hash cache). Target: the cold run under 2 minutes on a
2-core CPU. Last line: one JSON object with the figures.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[2] / "shared" / "data" / "banking77")
    os.environ["ADAPTLAB_HOME"] = tempfile.mkdtemp(prefix="adaptlab-bench-audit-")
    from adaptlab.audit import audit
    from adaptlab.data import load_dataset
    from adaptlab.models.embedder import default_embedder

    train, test = load_dataset(folder / "train.jsonl"), load_dataset(folder / "test.jsonl")
    start = time.perf_counter()
    embedder = default_embedder()
    load_s = time.perf_counter() - start
    times = {}
    for run in ("cold", "warm"):
        start = time.perf_counter()
        report = audit(train, test, embedder=embedder)
        times[run] = time.perf_counter() - start
    figures = {
        "train_rows": len(train),
        "test_rows": len(test),
        "embedder_load_s": round(load_s, 2),
        "audit_cold_s": round(times["cold"], 2),
        "audit_warm_s": round(times["warm"], 2),
        "cache_speedup": round(times["cold"] / times["warm"], 2),
        "under_2_minutes": times["cold"] + load_s < 120,
        "scores": report.scores(),
        "flagged": {k: len(c.flagged) for k, c in report.criteria.items()},
        "leakage_pairs": len(report.leakage),
    }
    print(f"{'run':6} {'seconds':>8}")
    for run, seconds in times.items():
        print(f"{run:6} {seconds:8.1f}")
    print("scores:", figures["scores"], "flagged:", figures["flagged"], "leakage pairs:", figures["leakage_pairs"])
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
