"""The references every comparison runs beside the LLM contenders, measured without an LLM.

generate (`constant`, `nearest`): which retriever `nearest` should default to. On each
slice, nearest answers the test inputs with bm25 (bm25s, word overlap) and with dense
(all-MiniLM-L6-v2 cosine); constant (the most frequent training output) is the floor.
Reported: test chrF, exact match, ms per query (the retrieval; one batch of 8 timed at a
time, as nearest's predict does), the fit seconds (indexing the training inputs) and the
paired 95% interval of dense minus bm25 chrF over the test rows. The default is
DEFAULT_RULE's pick, recorded as `nearest_default` (tests check the config agrees).

  booking-sql   examples/booking-sql: batches of customer messages -> one SQL INSERT (80 train / 30 test)
  r8k-json-100  one message -> its slots as JSON, 100 train / 100 test messages
  r8k-json-1k   the same, 1,000 train / 300 test
  r8k-slots-2k  one message -> "slot: value" lines, 2,000 train / 300 test

The r8k slices are composed from Restaurant-8k (Coope et al. 2020, PolyAI; CC-BY-4.0;
../shared/data/restaurant8k, see its SOURCE.md) as examples/booking-sql/make_slice.py
composes it (its `read_messages`: the `User:` texts of rows with at least one slot, in
file order, train from train.jsonl and test from test.jsonl): the first N of each.

qa (`abstain`, `extract`): on examples/northwind-benefits (193 train / 40 test questions,
10 of them unanswerable; documents chunked as its experiment does), qa_score of abstain
and of extract (hybrid, k 4) answering with 1, 2 or 3 sentences, and with the count
fitted (extract's default), each with the threshold fitted on the training questions.

The ms per query are wall time on a shared 2-core CPU: compare them within one run only.

    python bench/references.py [--out bench/results/references-cpu.json] [--no-qa]

Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
from _results import write_result

from adaptlab.data import Dataset, Example, load_dataset
from adaptlab.kinds.abstain import Abstain
from adaptlab.kinds.constant import Constant
from adaptlab.kinds.extract import Extract
from adaptlab.kinds.nearest import Nearest
from adaptlab.metrics import bootstrap_ci, row_scores, task_metrics
from adaptlab.task import DEFAULT_ABSTAIN, Task

ROOT = Path(__file__).resolve().parents[1]
RESTAURANT = ROOT.parent / "shared" / "data" / "restaurant8k"
NORTHWIND = ROOT / "examples" / "northwind-benefits"
DEFAULT_RULE = (
    "the retriever with the higher chrF on more slices (a tie: the higher mean chrF); speed is not "
    "weighed, a reference answers each test row once"
)
R8K_SLICES = [
    ("r8k-json-100", "json", 100, 100),
    ("r8k-json-1k", "json", 1000, 300),
    ("r8k-slots-2k", "slots", 2000, 300),
]  # (name, rendering, train, test)


def read_messages(split: str) -> list[tuple[str, dict]]:
    """make_slice.py's `read_messages` (imported from its file, so both read Restaurant-8k one way)."""
    spec = importlib.util.spec_from_file_location("make_slice", ROOT / "examples" / "booking-sql" / "make_slice.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.read_messages(RESTAURANT / f"{split}.jsonl")


def render(slots: dict, how: str) -> str:
    """A message's slots as JSON (Restaurant-8k's key order) or as "slot: value" lines."""
    return json.dumps(slots, ensure_ascii=False) if how == "json" else "\n".join(f"{k}: {v}" for k, v in slots.items())


def slices() -> list[tuple[str, Dataset, Dataset]]:
    """(name, train, test) of every generate slice."""
    as_data = lambda pairs, source: Dataset([Example(i, o, n + 1) for n, (i, o) in enumerate(pairs)], source)  # noqa: E731
    out = [
        (
            "booking-sql",
            load_dataset(ROOT / "examples" / "booking-sql" / "train.jsonl"),
            load_dataset(ROOT / "examples" / "booking-sql" / "test.jsonl"),
        )
    ]
    train, test = read_messages("train"), read_messages("test")
    for name, how, n_train, n_test in R8K_SLICES:
        out.append(
            (
                name,
                as_data([(t, render(s, how)) for t, s in train[:n_train]], "train"),
                as_data([(t, render(s, how)) for t, s in test[:n_test]], "test"),
            )
        )
    return out


def measure(strategy, task: Task, train: Dataset, test: Dataset) -> tuple[dict, np.ndarray]:
    """Fit, answer the test inputs, score: (chrF, exact match, ms per query, fit seconds; the per-row chrF)."""
    start = time.perf_counter()
    solver = strategy.fit(task, train)
    fitted = time.perf_counter() - start
    predictions = solver.predict(test.inputs)
    answers = [p.output for p in predictions]
    metrics, _ = task_metrics(task.kind, test.outputs, answers, [])
    scores = {
        "chrf": metrics["chrf"],
        "exact_match": metrics["exact_match"],
        "ms_per_query": 1000 * float(np.mean([p.seconds for p in predictions])),
        "fit_s": fitted,
    }
    return scores, row_scores(task.kind, test.outputs, answers)


def generate_part(embedder) -> list[dict]:
    """constant, nearest bm25 and nearest dense on every slice, printed as a table."""
    print(
        f"{'slice':<14} {'train':>6} {'test':>5}  {'constant':>8}  {'bm25 chrF':>9} {'exact':>6} "
        f"{'ms/q':>6}  {'dense chrF':>10} {'exact':>6} {'ms/q':>6}  dense-bm25 95% CI"
    )
    rows = []
    for name, train, test in slices():
        task = Task(name, "Answer.", "generate")
        row = {
            "slice": name,
            "train": len(train),
            "test": len(test),
            "constant": measure(Constant(), task, train, test)[0],
        }
        (row["bm25"], lexical), (row["dense"], semantic) = (
            measure(Nearest(r, embedder), task, train, test) for r in ("bm25", "dense")
        )
        row["dense_minus_bm25_chrf_ci"] = list(bootstrap_ci(semantic - lexical))  # paired: the same test rows
        rows.append(row)
        b, d, ci = row["bm25"], row["dense"], row["dense_minus_bm25_chrf_ci"]
        print(
            f"{name:<14} {len(train):>6} {len(test):>5}  {row['constant']['chrf']:>8.1f}  "
            f"{b['chrf']:>9.1f} {b['exact_match']:>6.3f} {b['ms_per_query']:>6.2f}  "
            f"{d['chrf']:>10.1f} {d['exact_match']:>6.3f} {d['ms_per_query']:>6.2f}  [{ci[0]:+.1f}, "
            f"{ci[1]:+.1f}]"
        )
    return rows


def qa_part(embedder) -> dict:
    """abstain and extract (1, 2, 3 sentences) on the northwind questions."""
    from adaptlab.knowledge.index import Documents
    from adaptlab.models.base import load_tokenizer

    train, test = (load_dataset(NORTHWIND / f"{s}.jsonl", abstain=DEFAULT_ABSTAIN) for s in ("train", "test"))
    task = Task("northwind-benefits", "Answer from the documents.", "qa")
    tokenizer, _ = load_tokenizer("smollm2-135m-instruct")
    documents = Documents(
        NORTHWIND / "docs", tokenizer, embedder
    )  # 256-token chunks, 32 overlap: the experiment's defaults
    out = {"train": len(train), "test": len(test)}
    contenders = (
        [("abstain", Abstain())]
        + [(f"extract-{n}", Extract(documents, 4, "hybrid", n, embedder)) for n in (1, 2, 3)]
        + [("extract", Extract(documents, 4, "hybrid", None, embedder))]
    )
    print(
        f"\nnorthwind-benefits qa ({len(train)} train / {len(test)} test "
        f"questions)\n{'contender':<10} {'qa_score':>8} {'F1 ans.':>7} {'abstain unans.':>14} "
        f"{'false abst.':>10} {'sentences':>9} {'threshold':>9} {'ms/q':>6}"
    )
    for name, strategy in contenders:
        solver = strategy.fit(task, train)
        predictions = solver.predict(test.inputs)
        metrics, _ = task_metrics(task.kind, test.outputs, [p.output for p in predictions], [], qa=task.scoring)
        threshold, n = getattr(solver, "threshold", None), getattr(solver, "n", None)
        out[name] = {
            "qa_score": metrics["qa_score"],
            "token_f1": metrics.get("token_f1"),
            "abstention_rate": metrics.get("abstention_rate"),
            "false_abstention_rate": metrics.get("false_abstention_rate"),
            "threshold": threshold,
            "sentences": n,
            "train": getattr(solver, "fitted", None),
            "ms_per_query": 1000 * float(np.mean([p.seconds for p in predictions])),
        }
        print(
            f"{name:<10} {metrics['qa_score']:>8.3f} {metrics.get('token_f1', float('nan')):>7.3f} "
            f"{metrics.get('abstention_rate', float('nan')):>14.3f} "
            f"{metrics.get('false_abstention_rate', float('nan')):>10.3f} "
            f"{'-' if n is None else n:>9} "
            f"{threshold if threshold is not None else float('nan'):>9.3f} "
            f"{out[name]['ms_per_query']:>6.1f}"
        )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "references-cpu.json"))
    parser.add_argument("--no-qa", action="store_true", help="skip the northwind qa part (it indexes 6 PDFs)")
    args = parser.parse_args()
    from adaptlab.models.embedder import default_embedder

    embedder = default_embedder()
    rows = generate_part(embedder)
    wins = {r: sum(row[r]["chrf"] > row[o]["chrf"] for row in rows) for r, o in (("bm25", "dense"), ("dense", "bm25"))}
    mean = {r: float(np.mean([row[r]["chrf"] for row in rows])) for r in ("bm25", "dense")}
    default = max(("bm25", "dense"), key=lambda r: (wins[r], mean[r]))  # DEFAULT_RULE
    print(
        f"\nnearest: bm25 scores higher chrF on {wins['bm25']} of {len(rows)} slices, dense on "
        f"{wins['dense']}; mean chrF bm25 {mean['bm25']:.1f}, dense {mean['dense']:.1f}; default: "
        f"{default}"
    )
    result = {
        "bench": "references",
        "generate": rows,
        "nearest_wins": wins,
        "nearest_mean_chrf": mean,
        "nearest_default": default,
        "default_rule": DEFAULT_RULE,
    }
    if not args.no_qa:
        result["qa"] = qa_part(embedder)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
