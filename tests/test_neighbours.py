"""The neighbour index: exact below the limit, HNSW above it, and HNSW finds what exact finds."""

import numpy as np

from landscape.enrich.neighbours import ExactIndex, HnswIndex, build_index


def clustered(n: int, dim: int = 64, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_small_sets_search_exactly_and_large_ones_through_hnsw():
    vectors = clustered(3000)
    assert isinstance(build_index(vectors), ExactIndex)
    assert isinstance(build_index(vectors, exact_limit=1000), HnswIndex)


def test_hnsw_recall_at_10_against_exact_search():
    vectors = clustered(6000)
    queries = clustered(200, seed=1)
    truth, _ = ExactIndex(vectors).search(queries, 10)
    found, scores = build_index(vectors, exact_limit=1000).search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth.tolist(), found.tolist())])
    assert recall >= 0.95
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first, scores are cosines


def test_a_saved_hnsw_index_answers_the_same(tmp_path):
    vectors = clustered(2000)
    index = build_index(vectors, exact_limit=1000)
    index.save(str(tmp_path / "i.hnsw"))
    again = HnswIndex.load(str(tmp_path / "i.hnsw"), vectors.shape[1])
    assert np.array_equal(index.search(vectors[:20], 5)[0], again.search(vectors[:20], 5)[0])


def test_top_k_of_wide_rows_is_the_full_sort_s_top_k():
    """Rows wider than WIDE_ROWS take the block-maxima path: the same columns, in the same
    order, as sorting each whole row (widths on and off a block boundary, k from 1 up)."""
    from landscape.enrich.neighbours import WIDE_ROWS, top_k_rows

    rng = np.random.default_rng(3)
    for cols in (WIDE_ROWS, WIDE_ROWS + 37, 20_000):
        scores = rng.standard_normal((300, cols)).astype(np.float32)
        scores[0, :] = -np.inf
        scores[0, cols - 1] = 1.0  # the best score alone in the last, partial block
        for k in (1, 10, 30):
            idx, vals = top_k_rows(scores, k)
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            assert np.array_equal(idx[1:], order[1:])
            assert np.array_equal(vals[1:], np.take_along_axis(scores, order, axis=1)[1:])
            assert idx[0, 0] == cols - 1


# --- the stored neighbour graph ------------------------------------------------------------

def test_rowid_labels_map_to_rows_the_same_densely_or_by_search():
    from landscape.enrich.neighbours import _positions

    rng = np.random.default_rng(3)
    dense = rng.permutation(np.arange(1, 5001))[:4000]  # a store's rowids, some deleted
    sparse = dense * 1_000_003  # too far apart for a table: found by binary search
    labels = np.concatenate([dense, [-1, 0, 5001, 99_999], rng.integers(-5, 6000, 500)])
    by_table = _positions(dense)(labels)
    assert (by_table[:4000] == np.arange(4000)).all() and (by_table[4000:4004] == -1).all()
    by_search = _positions(sparse)(np.where(labels >= 0, labels * 1_000_003, labels))
    assert (by_table == by_search).all()


import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from landscape.config import Config  # noqa: E402
from landscape.enrich.embed import record_embeddings  # noqa: E402
from landscape.enrich.neighbours import GRAPH_STATE, record_graph  # noqa: E402
from landscape.enrich.pipeline import build  # noqa: E402
from landscape.store import Store, open_store  # noqa: E402

from .conftest import run_cli  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from corpus_gen import write_corpus  # noqa: E402


def exact_lists(X: np.ndarray, k: int) -> list[set[int]]:
    scores = X @ X.T
    np.fill_diagonal(scores, -np.inf)
    return [set(np.argsort(-row, kind="stable")[:k].tolist()) for row in scores]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Path:
    """1,200 generated records embedded with tfidf (far more records than its 256 dimensions, as
    in real use: an SVD fitted on barely more records than dimensions makes every newcomer a hub)."""
    tmp = tmp_path_factory.mktemp("graph")
    db = tmp / "base.db"
    run_cli("ingest", write_corpus(tmp / "base.txt", 1200), db=db)
    with open_store(db) as store:
        build(store, Config(embedder="tfidf"), only=["embed"])
    return db


def graph_store(tmp_path: Path, embedded: Path, config: Config) -> Path:
    db = tmp_path / "g.db"
    with open_store(embedded) as src, open_store(db) as dst:
        src.connection_for_tests.backup(dst.connection_for_tests)
    with open_store(db) as store:
        build(store, config, only=["embed", "neighbours"])
    return db


@pytest.mark.parametrize("exact_limit", [20_000, 500])
def test_the_stored_graph_holds_each_records_nearest_records(tmp_path, embedded, exact_limit):
    """Exact below the limit; through the HNSW index above it (recall against exact search)."""
    config = Config(embedder="tfidf", extra={"neighbours": {"k": 12, "exact_limit": exact_limit}})
    db = graph_store(tmp_path, embedded, config)
    with open_store(db) as store:
        assert store.graph_count() == 1200
        ids, X = record_embeddings(store, config)
        graph = record_graph(store, config, ids, X)
    n = len(ids)
    assert graph.idx.shape == (n, 12) and (graph.idx >= 0).all()
    assert not (graph.idx == np.arange(n)[:, None]).any()
    assert np.all(np.diff(graph.sims, axis=1) <= 1e-6)
    truth = exact_lists(X, 12)
    recall = np.mean([len(truth[i] & set(graph.idx[i].tolist())) / 12 for i in range(n)])
    assert recall == 1.0 if exact_limit > n else recall >= 0.95
    pairs = np.einsum("ij,ij->i", X[np.repeat(np.arange(n), 12)], X[graph.idx.ravel()]).reshape(n, 12)
    assert np.allclose(graph.sims, pairs, atol=1e-4)


@pytest.mark.parametrize("exact_limit", [20_000, 500])
def test_adding_records_queries_only_them_and_updates_the_lists_they_enter(tmp_path, embedded, exact_limit):
    config = Config(embedder="tfidf", extra={"neighbours": {"k": 12, "exact_limit": exact_limit}})
    db = graph_store(tmp_path, embedded, config)
    run_cli("ingest", write_corpus(tmp_path / "more.txt", 1240), db=db)  # the first 1,200 again, 40 new
    with open_store(db) as store:
        before = {rid: set(o) for rid, o, _ in _lists(store)}
        state = store.get_meta(GRAPH_STATE)
        ids, X = record_embeddings(store, config)  # the tfidf model is kept: old vectors stay
        graph = record_graph(store, config, ids, X)
        assert store.get_meta(GRAPH_STATE) != state
        after = {rid: set(o) for rid, o, _ in _lists(store)}
        rowid = dict(store.connection_for_tests.execute("SELECT id, rowid FROM records").fetchall())
    new = set(ids) - set(before)
    assert graph.queried == new and len(new) == 40
    changed = {rid for rid in before if before[rid] != after[rid]}
    assert changed and changed == graph.entered
    assert all(after[r] & {rowid[q] for q in new} for r in changed)
    truth = exact_lists(X, 12)
    agree = np.mean([len(truth[i] & set(graph.idx[i].tolist())) / 12 for i in range(len(ids))])
    assert agree >= (0.99 if exact_limit > len(ids) else 0.95)


def test_a_changed_record_is_requeried_with_the_lists_that_named_it(tmp_path, embedded):
    config = Config(embedder="tfidf", extra={"neighbours": {"k": 12}})
    db = graph_store(tmp_path, embedded, config)
    with open_store(db) as store:
        ids, X = record_embeddings(store, config)
        victim = ids[5]
        victim_rowid = store.connection_for_tests.execute("SELECT rowid FROM records WHERE id = ?", (victim,)).fetchone()[0]
        naming = {rid for rid, o, _ in _lists(store) if victim_rowid in o}
        with store.transaction():
            store.connection_for_tests.execute("UPDATE records SET abstract = 'A new text about nothing else.',"
                               " content_hash = 'changed' WHERE id = ?", (victim,))
        ids, X = record_embeddings(store, config)
        graph = record_graph(store, config, ids, X)
    assert naming and victim in graph.queried and naming <= graph.queried
    assert len(graph.queried) < 100


def _lists(store: Store):
    for rid, others, sims in store.graph_rows():
        yield rid, np.frombuffer(others, dtype=np.int64).tolist(), np.frombuffer(sims, dtype=np.float32)
