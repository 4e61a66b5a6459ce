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
