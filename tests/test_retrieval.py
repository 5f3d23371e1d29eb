"""Retrieval: each retriever finds the chunk that holds the answer; hybrid fuses the two rankings by rank."""

import pytest

from adaptlab.knowledge.retrieval import RRF_K, build_index

from conftest import HashEmbedder

CHUNKS = [
    "The PerksPlus program reimburses up to 1000 dollars a year for gym memberships.",
    "Employees accrue 20 days of paid time off each year, rising to 25 after five years.",
    "The Northwind Standard plan has a deductible of 2000 dollars for a family.",
    "Dental cleanings are covered twice a year under Northwind Health Plus.",
    "Travel expenses must be submitted within 30 days with receipts attached.",
]


@pytest.mark.parametrize("kind", ["bm25", "dense", "hybrid"])
def test_each_retriever_ranks_the_answering_chunk_first(kind):
    index = build_index(kind, CHUNKS, HashEmbedder())
    found = index.search(["how much does PerksPlus pay for the gym", "paid time off days per year", "family deductible of the standard plan"], k=3)
    assert [hits[0][0] for hits in found] == [0, 1, 2]
    assert all(len(hits) <= 3 and [s for _, s in hits] == sorted((s for _, s in hits), reverse=True) for hits in found)


def test_bm25_returns_nothing_for_words_no_chunk_has():
    assert build_index("bm25", CHUNKS).search(["zebra xylophone"], k=3) == [[]]


def test_hybrid_scores_are_reciprocal_rank_fusion_of_both_rankings():
    embedder = HashEmbedder()
    hybrid = build_index("hybrid", CHUNKS, embedder)
    query = ["dental cleanings twice a year"]
    lexical, semantic = hybrid.bm25.search(query, 50)[0], hybrid.dense.search(query, 50)[0]
    expected = {}
    for ranking in (lexical, semantic):
        for rank, (i, _) in enumerate(ranking, 1):
            expected[i] = expected.get(i, 0) + 1 / (RRF_K + rank)
    (fused,) = hybrid.search(query, k=5)
    assert fused == sorted(expected.items(), key=lambda item: -item[1])[:5] and fused[0][0] == 3


def test_an_unknown_retriever_is_refused():
    with pytest.raises(ValueError, match="bm25, dense, hybrid"):
        build_index("keyword", CHUNKS)
