"""Stable ids, idempotent ingest, and one record per paper whatever the number of sources."""

from __future__ import annotations

from landscape.store import open_store

from .conftest import FIXTURES, LISTING, SEEDS, cli_json, copy_db, run_cli


def test_same_seeds_twice_changes_nothing(db):
    run_cli("ingest", SEEDS, db=db)
    out = run_cli("ingest", SEEDS, db=db).output
    assert out.splitlines()[-1] == "0 new, 0 changed, 10 unchanged"


def test_paper_from_listing_and_jsonl_is_one_record_with_both_sources(listing_db, tmp_path):
    db = copy_db(listing_db, tmp_path, "merged.db")
    out = run_cli("ingest", FIXTURES / "records.jsonl", db=db).output
    # the shouted, punctuated title matches "Naturalness and Fisher Information"
    assert "2 new, 1 changed, 0 unchanged" in out
    rec = next(r for r in cli_json("list", db=db) if r["title"] == "Naturalness and Fisher Information")
    assert [s["format"] for s in rec["sources"]] == ["listing", "jsonl"]
    assert rec["sources"][1]["line"] == 1
    assert rec["date"] == "2026-03-02" and rec["area"] == "Theoretical Physics"
    assert rec["extra"]["arxiv"] == "2503.00001"
    assert cli_json("stats", db=db)["papers"] == 462


def test_jsonl_sources_are_kept_and_missing_ones_become_the_file(db):
    run_cli("ingest", FIXTURES / "records.jsonl", db=db)
    records = {r["title"]: r for r in cli_json("list", db=db)}
    named = records["A Record That Names Its Sources"]["sources"]
    assert named == [{"path": "upstream/listing.txt", "format": "listing", "line": 7,
                      "ingested_at": "2025-01-01T00:00:00Z", "extra": {}}]
    plain = records["A Record From JSONL Only"]["sources"]
    assert [(s["path"], s["format"], s["line"]) for s in plain] == [(str(FIXTURES / "records.jsonl"), "jsonl", 2)]


def test_titles_differing_in_case_punctuation_and_latex_are_one_record(db, tmp_path):
    jsonl = tmp_path / "variants.jsonl"
    jsonl.write_text(
        '{"title": "The $\\\\mathrm{SU}(3)$ Lattice: a Study", "abstract": "one"}\n'
        '{"title": "the SU(3)  lattice -- a study.", "abstract": "two"}\n'
    )
    out = run_cli("ingest", jsonl, db=db).output
    assert out.splitlines()[-1] == "1 new, 1 changed, 0 unchanged"
    (rec,) = cli_json("list", db=db)
    assert [s["line"] for s in rec["sources"]] == [1, 2]
    assert rec["abstract"] == "one"


def test_aggregator_paper_merges_into_existing_record(db, tmp_path):
    page = tmp_path / "page.txt"
    page.write_text(
        "Goto\n\nCollaborating Authors\n\n\u00a0machine learning\n\n"
        "NATURALNESS and Fisher information\n\narXiv.org High Energy Physics\n\n"
        "We show naturalness is a Fisher information metric.\n"
    )
    run_cli("ingest", LISTING, db=db)
    out = run_cli("ingest", page, db=db).output
    assert "(aggregator): 0 new, 1 changed" in out
    rec = next(r for r in cli_json("list", db=db) if r["title"] == "Naturalness and Fisher Information")
    assert [s["format"] for s in rec["sources"]] == ["listing", "aggregator"]
    assert rec["sources"][1]["extra"] == {"source": "arXiv.org High Energy Physics", "topic": "machine learning"}


def test_changed_record_is_updated_in_place_keeping_enrichment(db, tmp_path):
    """A new source for a paper must not delete what enrichment stored for it."""
    run_cli("ingest", SEEDS / "001_36b3cb48603f891c.txt", db=db)
    with open_store(db) as store:
        rid, created, digest = store.connection_for_tests.execute(
            "SELECT id, created_at, content_hash FROM records ORDER BY id LIMIT 1"
        ).fetchone()
        other = store.connection_for_tests.execute("SELECT id FROM records WHERE id != ? LIMIT 1", (rid,)).fetchone()[0]
        title = store.get_record(rid).title
        with store.transaction():
            store.connection_for_tests.execute(
                "INSERT INTO embeddings (record_id, model, content_hash, vector) VALUES (?, 'm', ?, ?)",
                (rid, digest, b"\x00"),
            )
            store.connection_for_tests.execute(
                "INSERT INTO connections (record_id, rank, other_id, score) VALUES (?, 0, ?, 0.5)", (rid, other)
            )
            store.connection_for_tests.execute("UPDATE records SET summary = 'kept' WHERE id = ?", (rid,))
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text(f'{{"title": "{title}", "abstract": "x", "authors": ["New Author"], "date": "2024-05-01"}}\n')
    assert "0 new, 1 changed" in run_cli("ingest", jsonl, db=db).output
    with open_store(db) as store:
        assert store.connection_for_tests.execute("SELECT count(*) FROM embeddings WHERE record_id = ?", (rid,)).fetchone()[0] == 1
        assert store.connection_for_tests.execute("SELECT count(*) FROM connections WHERE record_id = ?", (rid,)).fetchone()[0] == 1
        row = store.connection_for_tests.execute(
            "SELECT created_at, content_hash, summary, date FROM records WHERE id = ?", (rid,)
        ).fetchone()
        assert tuple(row) == (created, digest, "kept", "2024-05-01")  # same text: same content hash
        assert store.get_record(rid).authors == ["New Author"]
        assert store.fts_search("New Author")[0]["id"] == rid


def test_authors_are_the_same_whatever_the_author_cache_holds(db, tmp_path, monkeypatch):
    """Ingest finds and adds the authors of a batch of new records at once, with a cache of
    names it empties past records.AUTHOR_CACHE entries. Emptied all the time, it must give the
    author rows and ids that looking each name up in turn gives (_author_id, what ingest did
    before); a name spelt two ways (accents, case) is one author, the first spelling kept."""
    from landscape.ingest import ingest_paths
    from landscape.store import records

    twice = tmp_path / "twice.jsonl"
    twice.write_text(
        '{"id": "a1", "title": "One", "authors": ["Jörg Müller", "Ann Lee"], "abstract": "x"}\n'
        '{"id": "a2", "title": "Two", "authors": ["Jorg MULLER", "Bo Chen", "Ann Lee"], "abstract": "y"}\n',
        encoding="utf-8",
    )

    def authors(path) -> tuple[list, list]:
        with open_store(path) as store:
            ingest_paths(store, [LISTING, twice])
            conn = store.connection_for_tests
            return (
                [tuple(r) for r in conn.execute("SELECT id, name, key FROM authors ORDER BY id")],
                [tuple(r) for r in conn.execute("SELECT record_id, position, author_id FROM authorship ORDER BY 1, 2")],
            )

    with monkeypatch.context() as one_by_one:
        one_by_one.setattr(records.RecordsMixin, "_add_authors", lambda self, names: None)
        kept = authors(tmp_path / "kept.db")
    monkeypatch.setattr(records, "AUTHOR_CACHE", 3)
    assert authors(db) == kept
    names = [name for _, name, _ in kept[0]]
    assert len(names) == len({key for _, _, key in kept[0]}) > 500
    assert "Jörg Müller" in names and "Jorg MULLER" not in names
