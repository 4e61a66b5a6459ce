"""The full-text index reads its text from the records (FTS5 external content): whatever
changes a record, the index must hold exactly the words the record now has."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from landscape.store import open_store
from landscape.store.schema import MIGRATIONS

from .conftest import FIXTURES, LISTING, SEEDS, cli_json, run_cli


def hits(db: Path, query: str) -> list[str]:
    return [h["title"] for h in cli_json("search", query, "--limit", "5", db=db)]


def test_records_merged_in_the_same_run_are_indexed_once_with_their_new_text(tmp_path):
    """The JSONL fixture changes a listing paper: both arrive in one command, so the paper is
    merged before it was ever indexed."""
    db = tmp_path / "one-run.db"
    run_cli("ingest", LISTING, FIXTURES / "records.jsonl", SEEDS, db=db)
    with open_store(db) as store:
        assert store.pending_index_count() == 0
        assert store.search_index_ok()
    assert "A Record From JSONL Only" in hits(db, "A Record From JSONL Only")


def test_a_record_changed_by_a_later_ingest_is_found_by_its_new_words(tmp_path):
    """A second source fills in the abstract and authors the first one lacked."""
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text(json.dumps({"title": "Neutrino Mass Hierarchies", "kind": "paper"}) + "\n")
    second.write_text(json.dumps({
        "title": "neutrino mass hierarchies", "kind": "paper", "authors": ["Ada Okonkwo"],
        "abstract": "Oscillation data favour the normal ordering.",
    }) + "\n")
    db = tmp_path / "two-runs.db"
    run_cli("ingest", LISTING, first, db=db)
    assert "1 changed" in run_cli("ingest", second, db=db).output
    assert hits(db, "oscillation data favour the normal ordering")[0] == "Neutrino Mass Hierarchies"
    assert hits(db, "Okonkwo")[0] == "Neutrino Mass Hierarchies"
    with open_store(db) as store:
        assert store.search_index_ok()


def test_predicted_keyphrases_are_searchable_and_replace_the_old_ones(tmp_path):
    db = tmp_path / "predicted.db"
    run_cli("ingest", SEEDS, db=db)
    with open_store(db) as store:
        rid = store.connection_for_tests.execute(
            "SELECT id FROM records WHERE keyphrase_line IS NULL ORDER BY id LIMIT 1"
        ).fetchone()[0]
        with store.transaction():
            store.set_keyphrases_many([(rid, ["zebrafish holography"])], "predicted")
        with store.transaction():
            store.set_keyphrases_many([(rid, ["okapi lensing"])], "predicted")
        assert store.search_index_ok()
        assert [h["id"] for h in store.fts_search("okapi")] == [rid]
        assert store.fts_search("zebrafish") == []


def test_the_index_check_sees_a_record_changed_behind_its_back(tmp_path):
    db = tmp_path / "tampered.db"
    run_cli("ingest", SEEDS, db=db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE records SET abstract = 'nothing like before' WHERE rowid = 1")
    with open_store(db) as store:
        assert not store.search_index_ok()
        assert not store.integrity_ok()


def test_a_store_from_before_the_external_index_is_migrated_and_searchable(tmp_path):
    """A store whose search index kept its own copy of the text (schema 5) is rebuilt to read
    the records when it is opened."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for number, (_, sql) in enumerate(MIGRATIONS[:5], start=1):
        conn.executescript(sql)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute(
        "INSERT INTO records (id, kind, title, display_title, norm_title, abstract, content_hash,"
        " created_at, updated_at) VALUES ('p1', 'paper', 'Quasar Lensing', 'Quasar Lensing',"
        " 'quasar lensing', 'Strong lensing of distant quasars.', 'h', 't', 't')"
    )
    conn.execute(
        "INSERT INTO records_fts (rowid, id, title, abstract, keyphrases, authors)"
        " VALUES (1, 'p1', 'Quasar Lensing', 'Strong lensing of distant quasars.', '', '')"
    )
    conn.close()
    with open_store(db) as store:
        assert store.connection_for_tests.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert store.search_index_ok()
        assert [h["id"] for h in store.fts_search("distant quasars")] == ["p1"]
