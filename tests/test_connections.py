"""Connections: top-k related records with readable reasons, built incrementally and stably."""

from __future__ import annotations

from pathlib import Path

import pytest

from landscape.enrich.related import related
from landscape.store import open_store

from .conftest import cli_json, run_cli
from .test_embed import write_listing

BUILD = ("build", "--only", "embed", "--only", "connections")


def built_store(tmp: Path, first: int, last: int, name: str = "landscape.db") -> Path:
    db = tmp / name
    run_cli("ingest", write_listing(tmp / f"{name}.txt", first, last), db=db)
    run_cli(*BUILD, db=db)
    return db


@pytest.fixture(scope="module")
def built40(tmp_path_factory) -> Path:
    """40 real papers with MiniLM embeddings and connections."""
    return built_store(tmp_path_factory.mktemp("conn"), 0, 40)


def ids_of(db: Path) -> list[str]:
    return sorted(r["id"] for r in cli_json("list", db=db))


def test_every_record_gets_ten_explained_connections(built40):
    for rid in ids_of(built40):
        conns = cli_json("related", rid, db=built40)
        assert len(conns) == 10
        assert rid not in {c["id"] for c in conns}
        assert [c["score"] for c in conns] == sorted((c["score"] for c in conns), reverse=True)
        for c in conns:
            assert set(c) == {"id", "title", "score", "reasons"} and c["title"]
            assert c["reasons"][0].startswith("meaning similarity 0.")


def test_reasons_name_real_shared_authors_and_areas(built40):
    records = {r["id"]: r for r in cli_json("list", db=built40)}
    named_authors = 0
    for rid, rec in records.items():
        for c in cli_json("related", rid, db=built40):
            other = records[c["id"]]
            for reason in c["reasons"]:
                if reason.startswith("shared authors: "):
                    names = reason.removeprefix("shared authors: ").removesuffix(" and others").split(", ")
                    assert set(names) <= set(rec["authors"]) & set(other["authors"])
                    named_authors += 1
                if reason.startswith("same area: "):
                    assert rec["area"] == other["area"] == reason.removeprefix("same area: ")
            assert ("same area: " + str(rec["area"]) in c["reasons"]) == (rec["area"] == other["area"])
    assert named_authors > 0


def test_shared_concepts_occur_in_both_texts(built40):
    records = {r["id"]: r for r in cli_json("list", db=built40)}
    seen = 0
    for rid in list(records)[:10]:
        for c in cli_json("related", rid, db=built40):
            for reason in c["reasons"]:
                if reason.startswith("shared concepts: "):
                    for concept in reason.removeprefix("shared concepts: ").split(", "):
                        head = concept.split()[0][:5]
                        for rec in (records[rid], records[c["id"]]):
                            assert head in (rec["title"] + " " + rec["abstract"]).lower(), (concept, rec["id"])
                        seen += 1
    assert seen > 0


def test_limit_and_text_mode(built40):
    rid = ids_of(built40)[0]
    assert len(cli_json("related", rid, "--limit", "3", db=built40)) == 3
    assert len(cli_json("related", rid, "--limit", "25", db=built40)) == 25
    pasted = cli_json("related", "--text", "Stellar streams and dark matter subhalos in the Milky Way",
                      "--limit", "5", db=built40)
    assert len(pasted) == 5 and all(r["reasons"] for r in pasted)
    out = run_cli("related", rid, "--limit", "2", db=built40).output
    assert "meaning similarity" in out


def test_related_errors_are_one_line(built40):
    assert "no record with id" in run_cli("related", "nope", db=built40, expect=2).output
    assert "expected a record id or --text" in run_cli("related", db=built40, expect=2).output
    assert "expected some text" in run_cli("related", "--text", "   ", db=built40, expect=2).output


def test_library_function_matches_the_cli(built40):
    rid = ids_of(built40)[3]
    with open_store(built40) as store:
        assert related(store, record_id=rid, limit=10) == cli_json("related", rid, db=built40)


def test_same_input_gives_same_connections(tmp_path, built40):
    again = built_store(tmp_path, 0, 40)
    with open_store(built40) as a, open_store(again) as b:
        assert a.table_dump("connections") == b.table_dump("connections")


def test_adding_records_embeds_and_connects_only_what_is_needed(tmp_path, built40):
    db = tmp_path / "grown.db"
    with open_store(built40) as src, open_store(db) as dst:
        src.connection_for_tests.backup(dst.connection_for_tests)
        before = {rid: dst.get_connections(rid) for rid in ids_of(db)}
    run_cli("ingest", write_listing(tmp_path / "more.txt", 40, 50), db=db)
    steps = {s["step"]: s for s in cli_json(*BUILD, db=db)}
    assert steps["embed"]["embedded"] == 10 and steps["embed"]["unchanged"] == 40
    assert steps["connections"]["computed"] == 10
    with open_store(db) as store:
        after = {rid: store.get_connections(rid) for rid in ids_of(db)}
        new = set(after) - set(before)
        assert len(new) == 10 and all(len(after[r]) == 10 for r in after)
        linking = {r for r in before if {c["id"] for c in after[r]} & new}
        assert linking, "some old record should now link to a newcomer"
        changed = {r for r in before if before[r] != after[r]}
        assert linking <= changed and len(changed) == steps["connections"]["updated"]
    nothing = {s["step"]: s for s in cli_json(*BUILD, db=db)}
    assert nothing["embed"]["embedded"] == 0 and nothing["connections"]["computed"] == 0
    assert nothing["connections"]["updated"] == 0


def test_rankings_ignore_the_query_papers_own_keyphrases_and_area(tmp_path, built40):
    """A paper that loses its keyphrases and area is connected exactly as before.

    Scored live against the store's fitted normalising constants: the paper's own keyphrases
    are left out of every per-word and per-phrase statistic when it is the query.
    """
    from landscape.config import Config
    from landscape.enrich.connections import corpus_for, load_state, top_connections

    with open_store(built40) as store:
        victims = sorted({rid for rid, _, given in store.record_phrase_rows() if given})[:3]
        original = {rid: store.get_connections(rid) for rid in victims}
    for n, rid in enumerate(victims):
        db = tmp_path / f"wiped{n}.db"
        with open_store(built40) as src, open_store(db) as store:
            src.connection_for_tests.backup(store.connection_for_tests)
            with store.transaction():
                store.set_keyphrases(rid, [], "given")
                store.connection_for_tests.execute("UPDATE records SET area = NULL, area_source = NULL WHERE id = ?", (rid,))
            assert cli_json("show", rid, db=db)["keyphrases"] == []
            corpus = corpus_for(store, Config())
            live = top_connections(corpus, [corpus.pos[rid]], load_state(store)["stats"], 10)[rid]
        assert [(oid, score) for oid, score, _ in live] == [(c["id"], c["score"]) for c in original[rid]]


def test_pair_signals_score_only_real_candidates_and_equal_the_all_columns_signals(built40):
    """A build scores each record against its candidates only: each pair's signals are those of
    the all-columns computation, and the pad slots (fewer candidates than slots) stay 0."""
    import numpy as np

    from landscape.config import Config
    from landscape.enrich.connection_text import _drop_contained
    from landscape.enrich.connections import corpus_for

    with open_store(built40, readonly=True) as store:
        corpus = corpus_for(store, Config())
    rows = list(range(len(corpus)))
    cand = corpus.candidates(rows)
    real = cand >= 0
    assert real.any() and not real.all()
    q = corpus.records_as_queries(rows)
    pair, dense = corpus.pair_signals(q, cand), corpus.signals(q)
    for name in ("meaning", "lexical", "terms", "concepts", "keyphrases", "authors"):
        expected = np.take_along_axis(dense[name], np.maximum(cand, 0), axis=1)
        assert np.allclose(pair[name][real], expected[real], atol=1e-5), name
        assert (pair[name][~real] == 0).all(), name
    names = ["graph neural network", "neural network", "network", "dark matter", "matter", "dark matter halo"]
    assert _drop_contained(names, limit=2) == _drop_contained(names)[:2] == ["graph neural network", "dark matter halo"]


def test_drop_contained_matches_the_pairwise_rule():
    """One search of all keys joined gives what comparing every pair of names gives."""
    import random

    from landscape.enrich.connection_text import _drop_contained

    def pairwise(names: list[str]) -> list[str]:
        keys = {name: f" {name} " for name in names}
        return [n for n in names if not any(n != o and keys[n] in keys[o] for o in names)]

    rnd = random.Random(7)
    words = ["a", "dark", "matter", "halo", "neural", "network", "graph", "a a"]
    for _ in range(500):
        names = list(dict.fromkeys(" ".join(rnd.choices(words, k=rnd.randint(1, 4))) for _ in range(rnd.randint(1, 8))))
        assert _drop_contained(names, key=str) == pairwise(names), names


def test_nameable_concepts_follow_the_per_record_rule(built40):
    """The sparse products name, for each record, the rare phrases of its text and concepts
    (single words only where a single-word concept of its names them), as a record-by-record
    walk over the same corpus does."""
    import math

    from landscape.config import Config
    from landscape.enrich.concepts.normalise import phrase_key
    from landscape.enrich.connection_text import _row
    from landscape.enrich.connections import corpus_for

    with open_store(built40, readonly=True) as store:
        corpus = corpus_for(store, Config())
    named = corpus.nameable(range(len(corpus)))
    some = 0
    for i in range(len(corpus)):
        held = {int(j) for j in _row(corpus.matches, i)}
        held |= {corpus.phrase_keys[phrase_key(n)] for n in corpus.concept_names(i) if phrase_key(n) in corpus.phrase_keys}
        single = {phrase_key(n) for n in corpus.concept_names(i) if " " not in n}
        expected = {j for j in held if corpus.phrase_idf[j] > math.log(10)
                    and (" " in corpus.phrase_names[j] or phrase_key(corpus.phrase_names[j]) in single)}
        assert named[i] == expected, corpus.ids[i]
        some += bool(expected)
    assert some > len(corpus) // 2


def test_a_full_rewrite_keeps_the_index_and_a_failed_one_changes_nothing(tmp_path, built40):
    """--full rewrites every connection with the index by other record dropped for the load: it
    is there again afterwards, the same lists come out, and a rewrite that fails half-way leaves
    the old connections and the index as they were."""
    db = tmp_path / "again.db"
    with open_store(built40) as src, open_store(db) as dst:
        src.connection_for_tests.backup(dst.connection_for_tests)
        before = dst.table_dump("connections")

    def indexes(store) -> set[str]:
        rows = store.connection_for_tests.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'connections'")
        return {r[0] for r in rows}

    steps = {s["step"]: s for s in cli_json("build", "--only", "connections", "--full", db=db)}
    assert steps["connections"]["computed"] == 40
    with open_store(db) as store:
        assert "connections_other" in indexes(store)
        assert store.table_dump("connections") == before
        with pytest.raises(RuntimeError), store.transaction(), store.rewriting_connections():
            store.replace_connections_many([(ids_of(db)[0], [])])
            raise RuntimeError("killed half-way")
        assert "connections_other" in indexes(store)
        assert store.table_dump("connections") == before


def test_lists_that_lost_a_deleted_record_are_filled_again(tmp_path, built40):
    """Deleting records (outside Landscape, with SQL) takes their connections with them; the next
    build finds the lists left short and fills them, and a build after that scans nothing."""
    db = tmp_path / "deleted.db"
    with open_store(built40) as src, open_store(db) as dst:
        src.connection_for_tests.backup(dst.connection_for_tests)
        ids = ids_of(db)
        gone = ids[:2]
        with dst.transaction():
            dst.connection_for_tests.execute("DELETE FROM records WHERE id IN (?, ?)", gone)
        lost = {rid for rid in ids[2:] if len(dst.get_connections(rid)) < 10}
    assert lost
    steps = {s["step"]: s for s in cli_json(*BUILD, db=db)}
    assert steps["connections"]["computed"] == len(lost)
    with open_store(db) as store:
        assert all(len(store.get_connections(rid)) == 10 for rid in ids[2:])
        assert not {c["id"] for rid in ids[2:] for c in store.get_connections(rid)} & set(gone)
    assert {s["step"]: s for s in cli_json(*BUILD, db=db)}["connections"]["computed"] == 0


def test_lists_of_a_small_corpus_grow_with_it(tmp_path):
    """Eight records hold seven connections each; with one more (too few to refit), every list
    holds eight."""
    db = built_store(tmp_path, 0, 8)
    with open_store(db) as store:
        assert all(len(store.get_connections(rid)) == 7 for rid in ids_of(db))
    run_cli("ingest", write_listing(tmp_path / "more.txt", 8, 9), db=db)
    steps = {s["step"]: s for s in cli_json(*BUILD, db=db)}
    assert steps["connections"]["computed"] == 9 and steps["connections"]["unchanged"] == 0
    with open_store(db) as store:
        assert all(len(store.get_connections(rid)) == 8 for rid in ids_of(db))


def test_the_score_a_newcomer_must_beat_is_each_full_lists_kth(built40):
    """What an increment compares a newcomer's score with: the k-th of each list holding k."""
    with open_store(built40) as store:
        ids = ids_of(built40)
        lists = {rid: [c["score"] for c in store.get_connections(rid)] for rid in ids}
        assert all(s == sorted(s, reverse=True) for s in lists.values())
        for k in (1, 5, 10, 11):
            want = {rid: s[k - 1] for rid, s in lists.items() if len(s) >= k}
            assert store.kth_connection_scores(k, ids[::2]) == {rid: want[rid] for rid in ids[::2] if rid in want}
            assert store.kth_connection_scores(k) == want
        assert store.kth_connection_scores(10)
