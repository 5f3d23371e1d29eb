"""How the knowledge defaults were chosen: chunk size, overlap, retriever and k, by retrieval quality.

On examples/northwind-benefits' TRAINING questions only (their `sources` name the cited
page; the test questions are never looked at), for chunk sizes 128/256/512 tokens
(overlap an eighth) and the three retrievers: recall@k (a cited page among the k
passages) for k = 1, 2, 4, 8, and MRR. Also the prompt tokens k passages cost, the
price of each choice in the rag prompt. The citations are approximate (the example's
SOURCE.md: ~a quarter of answers match the next page better), so absolute recall is
a lower bound; the comparison between settings is what this is for.

    python bench/retrieval_defaults.py [--out bench/results/retrieval-defaults.json]

Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _results import write_result

from adaptlab.data import load_dataset
from adaptlab.knowledge.index import build_index
from adaptlab.knowledge.measures import retrieval_scores

EXAMPLE = Path(__file__).parents[1] / "examples" / "northwind-benefits"
SIZES = (128, 256, 512)
KS = (1, 2, 4, 8)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "retrieval-defaults.json"))
    args = parser.parse_args()
    from adaptlab.models.base import load_tokenizer
    from adaptlab.models.embedder import default_embedder

    tokenizer, _ = load_tokenizer("smollm2-135m-instruct")
    embedder = default_embedder()
    train = load_dataset(EXAMPLE / "train.jsonl", abstain="I don't know")
    asked = [e for e in train if e.sources]
    queries, gold = [e.input for e in asked], [list(e.sources) for e in asked]
    rows = []
    print(f"{len(asked)} training questions with a cited page\n")
    print(
        f"{'chunk':>5} {'retriever':>9} {'chunks':>6} "
        + " ".join(f"{'R@' + str(k):>6}" for k in KS)
        + f" {'MRR@8':>6} {'tok@4':>6} {'build s':>7}"
    )
    for size in SIZES:
        for kind in ("bm25", "dense", "hybrid"):
            start = time.perf_counter()
            index = build_index(EXAMPLE / "docs", tokenizer, kind, embedder, size, size // 8)
            built = time.perf_counter() - start
            hits = index.search(queries, max(KS))
            recall = {
                k: float(np.mean([retrieval_scores(g, [c.source for c, _ in h[:k]])[0] for g, h in zip(gold, hits)]))
                for k in KS
            }
            mrr = float(np.mean([retrieval_scores(g, [c.source for c, _ in h])[1] for g, h in zip(gold, hits)]))
            tokens = float(
                np.mean(
                    [
                        sum(len(tokenizer(c.text, add_special_tokens=False)["input_ids"]) for c, _ in h[:4])
                        for h in hits[:50]
                    ]
                )
            )
            rows.append(
                {
                    "chunk_tokens": size,
                    "overlap": size // 8,
                    "retriever": kind,
                    "chunks": len(index.chunks),
                    "recall": recall,
                    "mrr": mrr,
                    "passage_tokens_at_4": tokens,
                    "build_seconds": built,
                }
            )
            print(
                f"{size:>5} {kind:>9} {len(index.chunks):>6} "
                + " ".join(f"{recall[k]:>6.3f}" for k in KS)
                + f" {mrr:>6.3f} {tokens:>6.0f} {built:>7.1f}"
            )
    write_result(args.out, {"bench": "retrieval_defaults", "questions": len(asked), "split": "train", "rows": rows})


if __name__ == "__main__":
    main()
