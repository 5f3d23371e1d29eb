"""Retrieval: each retriever finds the chunk that holds the answer; hybrid fuses the two rankings by rank."""

import pytest
from conftest import HashEmbedder

from adaptlab.knowledge.retrieval import RRF_K, make_retriever

CHUNKS = [
    "The PerksPlus program reimburses up to 1000 dollars a year for gym memberships.",
    "Employees accrue 20 days of paid time off each year, rising to 25 after five years.",
    "The Northwind Standard plan has a deductible of 2000 dollars for a family.",
    "Dental cleanings are covered twice a year under Northwind Health Plus.",
    "Travel expenses must be submitted within 30 days with receipts attached.",
]


@pytest.mark.parametrize("kind", ["bm25", "dense", "hybrid"])
def test_each_retriever_ranks_the_answering_chunk_first(kind):
    index = make_retriever(kind, CHUNKS, HashEmbedder())
    found = index.search(
        [
            "how much does PerksPlus pay for the gym",
            "paid time off days per year",
            "family deductible of the standard plan",
        ],
        k=3,
    )
    assert [hits[0][0] for hits in found] == [0, 1, 2]
    assert all(len(hits) <= 3 and [s for _, s in hits] == sorted((s for _, s in hits), reverse=True) for hits in found)


def test_bm25_returns_nothing_for_words_no_chunk_has():
    assert make_retriever("bm25", CHUNKS).search(["zebra xylophone"], k=3) == [[]]


def test_hybrid_scores_are_reciprocal_rank_fusion_of_both_rankings():
    embedder = HashEmbedder()
    hybrid = make_retriever("hybrid", CHUNKS, embedder)
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
        make_retriever("keyword", CHUNKS)


def test_the_index_is_rebuilt_only_for_changed_files(tiny_base, tmp_path, monkeypatch):
    import adaptlab.knowledge.index as index_module
    from adaptlab.knowledge.index import build_index

    monkeypatch.setenv("ADAPTLAB_HOME", str(tmp_path / "home"))
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(CHUNKS):
        (docs / f"doc{i}.txt").write_text(text)
    read = []
    real = index_module.read_file
    monkeypatch.setattr(index_module, "read_file", lambda f, name: read.append(name) or real(f, name))
    first = build_index(docs, tiny_base.tokenizer, "hybrid", HashEmbedder(), size=64, overlap=8)
    assert sorted(first.rebuilt) == sorted(read) == [f"doc{i}.txt" for i in range(5)]
    assert first.search(["how much does PerksPlus pay for the gym"], k=1)[0][0][0].source == "doc0.txt"
    read.clear()
    again = build_index(docs, tiny_base.tokenizer, "hybrid", HashEmbedder(), size=64, overlap=8)
    assert again.rebuilt == [] and read == [] and [c.text for c in again.chunks] == [c.text for c in first.chunks]
    (docs / "doc2.txt").write_text("The Northwind Standard plan now has a deductible of 2500 dollars.")
    changed = build_index(docs, tiny_base.tokenizer, "hybrid", HashEmbedder(), size=64, overlap=8)
    assert (
        changed.rebuilt == ["doc2.txt"]
        and read == ["doc2.txt"]
        and changed.files["doc2.txt"] != first.files["doc2.txt"]
    )
    assert "2500" in changed.search(["standard plan deductible"], k=1)[0][0][0].text
    other = build_index(docs, tiny_base.tokenizer, "bm25", size=32, overlap=8)  # other chunk settings: chunked again
    assert len(other.rebuilt) == 5
