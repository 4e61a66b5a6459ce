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
