"""Ingestion and retrieval speed for knowledge tasks, against the libraries not chosen.

  ingestion   pages/s reading the northwind PDFs (263 pages) with adaptlab.knowledge.documents
              (pypdf), against pdfminer.six on the same files (words extracted, both);
              chunks/s cutting them into 256-token chunks (overlap 32) with the embedded
              model's tokenizer;
  retrieval   per-query latency p50/p95 at --chunks chunks (default 100k) for bm25 (bm25s),
              dense (exact cosine) and hybrid (both, fused by rank), against rank_bm25 on
              --slow-queries queries. The corpus is synthetic: chunks of 120 words drawn with
              Zipf frequencies from the northwind text's own vocabulary. The dense index holds
              random unit vectors (search cost does not depend on what they encode; embedding
              100k chunks would take minutes); queries are embedded for real, by all-MiniLM-L6-v2.
  end to end  queries/s answering examples/northwind-benefits' test questions with the
              embedded model: rag (k=4, hybrid, index built beforehand) against zero_shot on the
              same questions, in one batch each: the price of the longer prompt (skip: --no-e2e).

    python bench/rag.py [--docs ../shared/data/northwind/docs] [--chunks 100000] [--out bench/results/rag-cpu.json]

Needs the bench extra for the baselines (pdfminer.six, rank_bm25); they are skipped when missing.
Last line: one JSON object, which the script also writes to --out.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _results import write_result

from adaptlab.knowledge.documents import chunk_pages, read_documents
from adaptlab.knowledge.retrieval import BM25Index, DenseIndex, HybridIndex

DOCS = Path(__file__).parents[2] / "shared" / "data" / "northwind" / "docs"


def percentiles(seconds: list[float]) -> dict:
    return {"p50_ms": float(np.percentile(seconds, 50) * 1000), "p95_ms": float(np.percentile(seconds, 95) * 1000)}


def timed_queries(index, queries: list[str]) -> dict:
    index.search(queries[:1], 4)  # warm-up
    seconds = []
    for q in queries:
        start = time.perf_counter()
        index.search([q], 4)
        seconds.append(time.perf_counter() - start)
    return percentiles(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", default=str(DOCS))
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--slow-queries", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "rag-cpu.json"))
    parser.add_argument(
        "--no-e2e", action="store_true", help="skip rag against zero_shot end to end (minutes on a CPU)"
    )
    args = parser.parse_args()
    from adaptlab.models.base import load_tokenizer
    from adaptlab.models.embedder import default_embedder

    result: dict = {"bench": "rag", "chunks": args.chunks}
    start = time.perf_counter()
    pages = read_documents(args.docs)
    seconds = time.perf_counter() - start
    words = len(re.findall(r"[A-Za-z]+", "\n".join(p.text for p in pages)))
    result["ingest"] = {"pages": len(pages), "seconds": seconds, "pages_per_s": len(pages) / seconds, "words": words}
    try:
        from pdfminer.high_level import extract_text

        start = time.perf_counter()
        text = "\n".join(extract_text(str(f)) for f in sorted(Path(args.docs).glob("*.pdf")))
        slow = time.perf_counter() - start
        result["ingest"] |= {
            "pdfminer_pages_per_s": len(pages) / slow,
            "pdfminer_words": len(re.findall(r"[A-Za-z]+", text)),
        }
    except ImportError:
        pass
    tokenizer, _ = load_tokenizer("smollm2-135m-instruct")
    start = time.perf_counter()
    chunks = chunk_pages(pages, tokenizer)
    seconds = time.perf_counter() - start
    result["chunking"] = {"chunks": len(chunks), "seconds": seconds, "chunks_per_s": len(chunks) / seconds}

    counts = Counter(w.lower() for p in pages for w in re.findall(r"[A-Za-z]+", p.text))
    vocab, freq = zip(*counts.most_common())
    p = np.array(freq, dtype=np.float64) / sum(freq)
    rng = np.random.default_rng(0)
    drawn = rng.choice(len(vocab), size=(args.chunks, 120), p=p)
    corpus = [" ".join(vocab[i] for i in row) for row in drawn]
    queries = [" ".join(vocab[i] for i in rng.choice(len(vocab), size=8, p=p)) for _ in range(args.queries)]

    start = time.perf_counter()
    bm25 = BM25Index(corpus)
    result["bm25_index_seconds"] = time.perf_counter() - start
    embedder = default_embedder()
    vectors = rng.standard_normal((args.chunks, 384)).astype(np.float32)
    dense = DenseIndex([], embedder, vectors=vectors)
    result["retrieval"] = {
        "bm25": timed_queries(bm25, queries),
        "dense": timed_queries(dense, queries),
        "hybrid": timed_queries(HybridIndex(bm25, dense), queries),
    }
    try:
        from rank_bm25 import BM25Okapi

        slow = BM25Okapi([c.split() for c in corpus])
        seconds = []
        for q in queries[: args.slow_queries]:
            start = time.perf_counter()
            np.argsort(-slow.get_scores(q.split()))[:4]
            seconds.append(time.perf_counter() - start)
        result["retrieval"]["rank_bm25"] = percentiles(seconds)
    except ImportError:
        pass

    if not args.no_e2e:
        result["end_to_end"] = end_to_end()

    ingest = result["ingest"]
    print(
        f"ingestion: {ingest['pages']} pages, pypdf {ingest['pages_per_s']:.0f} pages/s ({ingest['words']} words)"
        + (
            f", pdfminer.six {ingest['pdfminer_pages_per_s']:.0f} pages/s ({ingest['pdfminer_words']} words)"
            if "pdfminer_pages_per_s" in ingest
            else ""
        )
    )
    print(
        f"chunking: {result['chunking']['chunks']} chunks of 256 tokens, "
        f"{result['chunking']['chunks_per_s']:.0f} chunks/s"
    )
    print(f"retrieval at {args.chunks:,} chunks (bm25 index built in {result['bm25_index_seconds']:.1f} s):")
    print(f"  {'retriever':<10} {'p50 ms':>8} {'p95 ms':>8}")
    for name, figures in result["retrieval"].items():
        print(f"  {name:<10} {figures['p50_ms']:>8.1f} {figures['p95_ms']:>8.1f}")
    if "end_to_end" in result:
        e2e = result["end_to_end"]
        print(
            f"end to end on {e2e['questions']} northwind test questions (index: "
            f"{e2e['index_seconds']:.1f} s, {e2e['chunks']} chunks):"
        )
        print(f"  {'strategy':<10} {'queries/s':>9} {'prompt tok':>10} {'answer tok':>10}")
        for name in ("zero_shot", "rag"):
            row = e2e[name]
            print(
                f"  {name:<10} {row['queries_per_s']:>9.3f} {row['prompt_tokens_mean']:>10.0f} "
                f"{row['completion_tokens_mean']:>10.0f}"
            )
        print(f"  rag answers at {e2e['rag_vs_zero_shot']:.2f}x zero_shot's queries/s")
    write_result(args.out, result)


def end_to_end() -> dict:
    """rag (k=4, hybrid) against zero_shot on the example's test questions, on the embedded model, one batch each."""
    from adaptlab.icl.rag import Rag
    from adaptlab.icl.strategies import ZeroShot
    from adaptlab.models import load_base_model
    from adaptlab.runs.experiment import load_experiment
    from adaptlab.runs.prepare import documents_for, prepare

    config, root = load_experiment(Path(__file__).parents[1] / "examples" / "northwind-benefits" / "experiment.yaml")
    prepared = prepare(config, root)  # the task, questions and documents exactly as the example's compare reads them
    train, test, task = prepared.train, prepared.test, prepared.task
    base = load_base_model(config.model)
    documents = documents_for(config, root, base)
    out: dict = {"questions": len(test), "max_new_tokens": task.max_new_tokens}
    for name, strategy in (
        ("zero_shot", ZeroShot(base, "zero_shot")),
        ("rag", Rag(base, "rag", documents, 4, "hybrid")),
    ):
        solver = strategy.fit(task, train)
        start = time.perf_counter()
        predictions = solver.predict(test.inputs)
        seconds = time.perf_counter() - start
        out[name] = {
            "seconds": seconds,
            "queries_per_s": len(test) / seconds,
            "prompt_tokens_mean": float(np.mean([p.prompt_tokens for p in predictions])),
            "completion_tokens_mean": float(np.mean([p.completion_tokens for p in predictions])),
        }
    out |= {
        "index_seconds": documents.seconds["hybrid"],
        "chunks": len(documents.chunks),
        "rag_vs_zero_shot": out["rag"]["queries_per_s"] / out["zero_shot"]["queries_per_s"],
    }
    return out


if __name__ == "__main__":
    main()
