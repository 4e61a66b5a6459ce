"""The connections' stored terms: an increment writes only a delta beside the base, and the
base with its delta reads back every record's words as tokenising them again gives."""

from __future__ import annotations

import sys
from pathlib import Path

from landscape.enrich.terms import ARTIFACT, DELTA, load_terms, record_terms
from landscape.store import Store

from .conftest import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from corpus_gen import write_corpus  # noqa: E402


def words_of(rt) -> dict[str, dict[str, float]]:
    counts = rt.counts.tocsr()
    return {rid: {rt.terms[j]: float(v) for j, v in zip(counts[r].indices, counts[r].data, strict=True)}
            for r, rid in enumerate(rt.ids)}


def test_an_increment_writes_a_delta_and_the_base_with_it_reads_every_record(tmp_path):
    db = tmp_path / "t.db"
    write_corpus(tmp_path / "a.txt", 400)
    run_cli("ingest", tmp_path / "a.txt", "--db", db)
    run_cli("build", "--embedder", "tfidf", "--db", db)
    with Store(db, readonly=True) as store:
        base = store.get_artifact(ARTIFACT)
        assert base and not store.get_artifact(DELTA)
    for start in (400, 430):  # two increments: the second delta carries the first one's rows too
        write_corpus(tmp_path / f"more{start}.txt", start + 30, start=start)
        run_cli("ingest", tmp_path / f"more{start}.txt", "--db", db)
        run_cli("build", "--embedder", "tfidf", "--db", db)
    with Store(db, readonly=True) as store:
        assert store.get_artifact(ARTIFACT) == base  # the base is not rewritten
        stored = load_terms(store)
        ids = sorted(store.record_titles())
        again = record_terms(store, ids, dict.fromkeys(stored.keys, 0), 6, set(), fresh=True)
    assert stored is not None and len(stored.ids) == len(ids) == 460
    assert int((~stored.base.same).sum()) == 60  # the two increments' records, from the delta
    assert words_of(stored) == words_of(again)


def test_phrase_columns_are_moved_to_a_grown_or_shrunk_vocabulary_the_same_way():
    """Keys only added (each row's columns keep their order: relabelled in place) or some gone
    (rebuilt, dropping them): both give, per row, the phrases the row held, by name."""
    import numpy as np
    from scipy.sparse import random as sparse_random

    from landscape.enrich.terms import _remap

    old_keys = [f"k{i:03d}" for i in range(50)]
    found = sparse_random(30, 50, density=0.2, format="csr", dtype=np.float32, random_state=5)
    found.data[:] = 1.0
    for new_keys in (sorted(old_keys + ["a", "k0105", "zz"]), sorted(set(old_keys) - {"k007", "k030"} | {"b"})):
        keys = {k: j for j, k in enumerate(new_keys)}
        moved = _remap(found, old_keys, keys)
        assert moved.shape == (30, len(new_keys)) and moved.has_sorted_indices
        for r in range(30):
            want = {old_keys[j] for j in found[r].indices} & set(keys)
            assert {new_keys[j] for j in moved[r].indices} == want


def test_kept_and_fresh_rows_are_laid_out_in_the_records_order():
    import numpy as np
    from scipy.sparse import csr_matrix

    from landscape.enrich.terms import _rows

    old = csr_matrix(np.arange(1, 25, dtype=np.float32).reshape(6, 4))
    fresh = csr_matrix(-np.arange(1, 9, dtype=np.float32).reshape(2, 4))
    keep = np.array([5, -1, 0, 2, -1, 3])
    want = np.zeros((6, 5), dtype=np.float32)
    want[[0, 2, 3, 5], :4] = old.toarray()[[5, 0, 2, 3]]
    want[[1, 4], :4] = fresh.toarray()
    got = _rows(np.flatnonzero(keep < 0), keep, fresh, old, 5).toarray()
    assert np.array_equal(got, want)
