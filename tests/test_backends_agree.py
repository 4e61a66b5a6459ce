"""The same input gives the same landscape on SQLite and on PostgreSQL: ids, areas, keyphrases,
concepts, summaries, topics and connections (scores within floating-point tolerance)."""

from __future__ import annotations

import json

import pytest

from landscape.store import open_store

from .conftest import BACKENDS, LISTING, new_pg_database, run_cli

pytestmark = pytest.mark.skipif("postgresql" not in BACKENDS, reason="LANDSCAPE_TEST_BACKENDS leaves PostgreSQL out")

QUERIES = {
    "records": "SELECT id, kind, display_title, norm_title, date, area, area_source, area_set, keyphrase_line,"
               " keyphrases_source, summary, content_hash FROM records ORDER BY id",
    "keyphrases": "SELECT record_id, position, phrase, source FROM keyphrases ORDER BY record_id, position",
    "authors": "SELECT a.record_id, a.position, u.name FROM authorship a JOIN authors u ON u.id = a.author_id"
               " ORDER BY a.record_id, a.position",
    "concepts": "SELECT rc.record_id, c.name, rc.source, rc.weight FROM record_concepts rc"
                " JOIN concepts c ON c.id = rc.concept_id ORDER BY rc.record_id, c.name, rc.source",
    "topics": "SELECT rt.record_id, t.label, rt.is_outlier FROM record_topics rt JOIN topics t ON t.id = rt.topic_id"
              " ORDER BY rt.record_id",
    "connections": "SELECT record_id, rank, other_id, score, reasons FROM connections ORDER BY record_id, rank",
    "probabilities": "SELECT id, area_probabilities FROM records ORDER BY id",
}


def landscape_of(db) -> dict[str, list[tuple]]:
    with open_store(db, readonly=True) as store:
        conn = store.connection_for_tests
        return {name: [tuple(r) for r in conn.execute(sql)] for name, sql in QUERIES.items()}


def close(a: list[tuple], b: list[tuple], numeric: int) -> bool:
    """Equal row for row, the `numeric` column within 1e-6."""
    return len(a) == len(b) and all(
        x[:numeric] == y[:numeric] and abs(x[numeric] - y[numeric]) < 1e-6 and x[numeric + 1:] == y[numeric + 1:]
        for x, y in zip(a, b)
    )


def test_sqlite_and_postgresql_build_the_same_landscape(pg_admin, tmp_path):
    stores = [tmp_path / "landscape.db", new_pg_database(pg_admin, "agree")]
    for db in stores:
        run_cli("ingest", LISTING, db=db)
        run_cli("build", "--embedder", "tfidf", db=db)
    lite, pg = (landscape_of(db) for db in stores)
    for name in ("records", "keyphrases", "authors", "topics"):
        assert lite[name] == pg[name], name
    assert len(lite["records"]) == 460 and all(r[5] for r in lite["records"])
    assert close(lite["concepts"], pg["concepts"], 3)
    assert close(lite["connections"], pg["connections"], 3)
    assert len(lite["connections"]) > 460 * 5
    for (rid, a), (rid2, b) in zip(lite["probabilities"], pg["probabilities"]):
        assert rid == rid2
        pa, pb = json.loads(a or "{}"), json.loads(b or "{}")
        assert pa.keys() == pb.keys() and all(abs(pa[k] - pb[k]) < 1e-6 for k in pa)
