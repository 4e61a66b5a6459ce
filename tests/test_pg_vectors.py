"""PostgreSQL only: pgvector answers nearest-neighbour questions, and bulk writes go by COPY.

The HNSW index exists after the embed step and the planner reads it; dense search on PostgreSQL
ranks what SQLite ranks for the same vectors without reading every vector into the process;
pgvector's recall@10 against exact cosine; COPY writes the rows the executemany path writes.
"""

from __future__ import annotations

import numpy as np
import pytest

from landscape import search
from landscape.config import Config
from landscape.enrich.embed import TFIDF_ARTIFACT, store_embedder
from landscape.models import Record, Section, Source
from landscape.snapshot import SNAPSHOTS
from landscape.store import Store, open_store
from landscape.store.keyphrases import KeyphrasesMixin
from landscape.store.records import RecordsMixin
from landscape.store.semantic import SemanticMixin
from tests.conftest import LISTING, new_pg_database, run_cli

pytest.importorskip("psycopg")
from landscape.store.postgres import PgStore  # noqa: E402
from landscape.store.postgres.vectors import index_name, vector_text  # noqa: E402

QUERIES = ["graph neural networks for molecules", "reinforcement learning from human feedback",
           "diffusion models for image generation", "protein structure prediction",
           "speech recognition with transformers", "privacy in federated learning"]


@pytest.fixture(scope="module")
def sqlite_embedded(tmp_path_factory):
    db = tmp_path_factory.mktemp("vec") / "s.db"
    run_cli("ingest", str(LISTING), db=db)
    run_cli("build", "--embedder", "tfidf", "--only", "embed", db=db)
    return db


def _explain(store: PgStore, model: str, dim: int) -> str:
    q = "[" + ",".join(["0.1"] * dim) + "]"
    rows = store.connection_for_tests.execute(
        f"EXPLAIN SELECT record_id FROM embeddings WHERE model = ? AND vector_dims(embedding) = {dim}"
        f" ORDER BY embedding::vector({dim}) <=> ?::vector({dim}) LIMIT 10", (model, q),
    ).fetchall()
    return "\n".join(r[0] for r in rows)


def test_the_embed_step_makes_an_hnsw_index_the_planner_reads(pg_admin):
    url = new_pg_database(pg_admin, "hnsw")
    run_cli("ingest", str(LISTING), db=url)
    run_cli("build", "--embedder", "tfidf", "--only", "embed", db=url)
    with open_store(url) as store:
        assert isinstance(store, PgStore)
        model = store.get_meta("embedder") or ""
        dim = store.embedding_dim(model)
        name = index_name(model, dim)
        definition = store.connection_for_tests.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = ?", (name,)).fetchone()[0]
        assert "USING hnsw" in definition and "vector_cosine_ops" in definition and f"vector({dim})" in definition
        store.connection_for_tests.execute("ANALYZE embeddings")
        assert f"Index Scan using {name}" in _explain(store, model, dim)
        assert store.index_embeddings(model) is False  # kept: made once


def _copy_embeddings(src: Store, dst: PgStore) -> str:
    model = src.get_meta("embedder") or ""
    ids, X = src.embedding_matrix(model)
    hashes = src.record_content_hashes()
    with dst.transaction():
        dst.put_embeddings(model, [(rid, hashes[rid], v) for rid, v in zip(ids, X)])
        for key in ("embedder", "embedder_spec"):
            dst.set_meta(key, src.get_meta(key) or "")
        dst.put_artifact(TFIDF_ARTIFACT, src.get_artifact(TFIDF_ARTIFACT) or b"")
    assert dst.index_embeddings(model)
    return model


def test_dense_search_on_postgresql_ranks_what_sqlite_ranks_without_loading_the_vectors(
        pg_admin, sqlite_embedded, monkeypatch):
    url = new_pg_database(pg_admin, "dense")
    run_cli("ingest", str(LISTING), db=url)
    config = Config(embedder="tfidf")
    with open_store(sqlite_embedded, readonly=True) as lite, open_store(url) as pg:
        assert isinstance(lite, Store) and isinstance(pg, PgStore)
        _copy_embeddings(lite, pg)
        model = lite.get_meta("embedder") or ""
        vectors = store_embedder(lite, config).encode(QUERIES)
        expected = {q: search.dense_hits(lite, q, config, 50) for q in QUERIES}
        nearest = lite.nearest(model, vectors, 50)

        def no_full_read(*args, **kwargs):
            raise AssertionError("dense search read every vector into the process")

        for name in ("embedding_matrix", "embedding_keys", "embedding_state"):
            monkeypatch.setattr(PgStore, name, no_full_read)
        SNAPSHOTS.clear()
        for q, want in zip(QUERIES, nearest):
            got = pg.nearest(model, vectors[QUERIES.index(q)], 50)[0]
            assert [rid for rid, _ in got] == [rid for rid, _ in want], q
            assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
            hits = search.dense_hits(pg, q, config, 50)
            assert [rid for rid, _ in hits] == [rid for rid, _ in expected[q]]
        assert sum(len(hits) for hits in expected.values()) >= 5
        assert search.search(pg, QUERIES[0], limit=10, config=config)


def _plain_records(n: int) -> list[Record]:
    return [Record(id=f"r{i:05d}", title=f"Record {i}", abstract="text", date="2024-01-01") for i in range(n)]


def test_pgvector_recall_at_10_against_exact_cosine(pg_admin):
    n, dim, k = 4000, 96, 10
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(40, dim))
    X = centres[rng.integers(0, 40, n)] + 0.6 * rng.normal(size=(n, dim))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    Q = X[rng.choice(n, 100, replace=False)] + 0.3 * rng.normal(size=(100, dim)).astype(np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    with PgStore(new_pg_database(pg_admin, "recall")) as store:
        ids = [r.id for r in _plain_records(n)]
        with store.transaction():
            store.upsert_records(_plain_records(n))
            store.put_embeddings("random", [(rid, "h", v) for rid, v in zip(ids, X)])
        assert store.index_embeddings("random")
        store.connection_for_tests.execute("ANALYZE embeddings")
        assert "Index Scan" in _explain(store, "random", dim)
        got = store.nearest("random", Q, k)
    truth = np.argsort(-(Q @ X.T), axis=1)[:, :k]
    recall = np.mean([len({ids[j] for j in truth[i]} & {rid for rid, _ in got[i]}) / k for i in range(len(Q))])
    assert recall >= 0.95
    best = got[0][0]
    assert abs(best[1] - float(Q[0] @ X[ids.index(best[0])])) < 1e-5


class _ExecutemanyStore(PgStore):
    """PgStore writing as the shared mixins do (one INSERT per row): the baseline COPY must match."""

    write_new_rows = RecordsMixin.write_new_rows
    set_keyphrases_many = KeyphrasesMixin.set_keyphrases_many
    replace_connections_many = SemanticMixin.replace_connections_many
    mark_connections_fresh = SemanticMixin.mark_connections_fresh
    put_graph_rows = SemanticMixin.put_graph_rows

    def put_embeddings(self, model, rows):
        self.connection_for_tests.executemany(
            "INSERT INTO embeddings (record_id, model, content_hash, vector, embedding) VALUES (?,?,?,?,?::vector)"
            " ON CONFLICT(record_id, model) DO UPDATE SET content_hash = excluded.content_hash,"
            " vector = excluded.vector, embedding = excluded.embedding",
            [(rid, model, h, np.asarray(v, dtype=np.float32).tobytes(), vector_text(v)) for rid, h, v in rows],
        )


def _records() -> list[Record]:
    recs = []
    for i in range(300):
        recs.append(Record(
            id=f"p{i:04d}", title=f"A paper on topic {i % 17} number {i}", authors=[f"Ann {i % 23}", f"Bo {i % 5}"],
            date=f"20{10 + i % 15}-0{1 + i % 9}-01", area=["Vision", "Language"][i % 2],
            abstract=f"We study thing {i}. It is\ttabbed, quoted 'x' and \\ escaped\nover lines.",
            keyphrases=[f"phrase {i % 7}", f"term {i % 11}"], keyphrase_line=f"phrase {i % 7}; term {i % 11}",
            sources=[Source(path="in.txt", format="listing", line=i), Source(path="in.txt", format="listing", line=i)],
            sections=[Section(title="Intro", text=f"Section text {i}")] if i % 3 == 0 else [],
            extra={"n": i} if i % 4 == 0 else {},
        ))
    return recs


def _write_everything(store: PgStore) -> None:
    recs = _records()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(len(recs), 16)).astype(np.float32)
    with store.transaction():
        assert store.upsert_records(recs) == ["new"] * len(recs)
        store.index_pending()
        store.put_embeddings("m", [(r.id, f"h{i}", X[i]) for i, r in enumerate(recs)])
        store.put_embeddings("m", [(r.id, "again", X[i] * 2) for i, r in enumerate(recs[:50])])
        store.put_graph_rows([(r.id, np.arange(i % 5, dtype=np.int64), np.linspace(1, 0, i % 5)) for i, r in enumerate(recs)])
        store.put_graph_rows([(recs[0].id, np.array([7, 8]), np.array([0.5, 0.25]))])
        store.replace_connections_many(
            (r.id, [(recs[(i + j) % len(recs)].id, 1.0 / j, ["meaning", f"phrase {j}"]) for j in range(1, 1 + i % 4)])
            for i, r in enumerate(recs))
        store.replace_connections_many([(recs[1].id, [(recs[9].id, 0.5, [])])])
        store.mark_connections_fresh(r.id for r in recs[::2])
        store.set_keyphrases_many([(r.id, [f"split {i}", "shared"] if i % 5 else []) for i, r in enumerate(recs[:120])],
                                  "predicted")


def test_copy_writes_the_rows_the_executemany_path_writes(pg_admin, monkeypatch):
    monkeypatch.setattr("landscape.store.records.now_iso", lambda: "2026-01-01T00:00:00Z")
    with _ExecutemanyStore(new_pg_database(pg_admin, "many")) as many:
        _write_everything(many)
        expected = _dump(many)
    statements: list[str] = []
    with PgStore(new_pg_database(pg_admin, "copy")) as fast:
        real = type(fast.connection_for_tests).executemany
        monkeypatch.setattr(type(fast.connection_for_tests), "executemany",
                            lambda self, sql, seq: statements.append(sql) or real(self, sql, seq))
        _write_everything(fast)
        got = _dump(fast)
    assert got == expected
    bulk = ("records", "authorship", "keyphrases", "sources", "sections", "search_pending", "embeddings",
            "neighbour_graph", "connections", "connection_state")
    assert not [s for s in statements if any(f"INSERT INTO {t} " in s or f"DELETE FROM {t} " in s for t in bulk)]


def _dump(store: PgStore) -> dict[str, object]:
    tables = ("records", "authors", "authorship", "keyphrases", "sections", "records_search", "embeddings",
              "neighbour_graph", "connections", "connection_state")
    out: dict[str, object] = {t: store.table_dump(t) for t in tables}
    out["sources"] = store.connection_for_tests.execute(  # ids differ: ON CONFLICT spends one per clash
        "SELECT record_id, path, format, line, ingested_at, extra FROM sources ORDER BY 1, 2, 4").fetchall()
    out["vectors"] = store.connection_for_tests.execute(
        "SELECT record_id, embedding::text FROM embeddings ORDER BY 1").fetchall()
    return out


def _recorded_statements(store: PgStore, monkeypatch) -> list[str]:
    """Every statement the store's connection executes from now on, in order."""
    statements: list[str] = []
    real = type(store.connection_for_tests).execute
    monkeypatch.setattr(type(store.connection_for_tests), "execute",
                        lambda self, sql, *a, **k: statements.append(sql) or real(self, sql, *a, **k))
    return statements


def test_a_load_larger_than_the_index_builds_the_search_index_once(pg_admin, monkeypatch):
    """The first 260 records (more than the empty index holds) are indexed with the GIN index
    dropped and built again, after the planner's statistics are brought up to date; 40 more
    into 260 grow it in place. Either way the index is there and keyword search finds records
    of both loads."""
    import landscape.store.postgres.fulltext as fulltext

    monkeypatch.setattr(fulltext, "BULK_INDEX_MIN", 100)
    recs = _records()
    with PgStore(new_pg_database(pg_admin, "gin")) as store:
        statements = _recorded_statements(store, monkeypatch)
        with store.transaction():
            store.upsert_records(recs[:260])
            assert store.index_pending() == 260
        bulk = [s for s in statements if "records_search_doc" in s]
        assert [s for s in statements if s.startswith("ANALYZE records")]
        statements.clear()
        with store.transaction():
            store.upsert_records(recs[260:])
            assert store.index_pending() == 40
        assert [s.split()[0] for s in bulk] == ["DROP", "CREATE"]
        assert not [s for s in statements if "records_search_doc" in s]
        assert store.search_index_ok()
        indexes = store.connection_for_tests.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'records_search' AND indexname = 'records_search_doc'").fetchall()
        assert len(indexes) == 1 and "gin" in indexes[0][0]
        found = {h["id"] for h in store.fts_search("number 7", limit=300)} | {h["id"] for h in store.fts_search("number 287", limit=300)}
        assert {"p0007", "p0287"} <= found


def test_a_growing_load_renews_the_planners_statistics_a_few_times(pg_admin, monkeypatch):
    """Planned on the statistics of an empty table, the lookups a load makes by lists of keys
    scan the whole table per batch. The tables a load grows are analysed each time it has
    doubled what they held when last analysed: 300 records written 30 at a time with a floor of
    20 are analysed at 30, 60, 120 and 240 rows, inside the load's transaction, whose rows
    ANALYZE counts; the keyphrases the split rewrites likewise."""
    import landscape.store.postgres.bulk as bulk

    monkeypatch.setattr(bulk, "REPLAN_MIN", 20)
    recs = _records()
    with PgStore(new_pg_database(pg_admin, "replan")) as store:
        statements = _recorded_statements(store, monkeypatch)
        with store.transaction():
            for start in range(0, 300, 30):
                store.upsert_records(recs[start : start + 30])
            held = store.connection_for_tests.execute(
                "SELECT reltuples FROM pg_class WHERE relname = 'records'").fetchone()[0]
            assert [s for s in statements if s.startswith("ANALYZE")] == [f"ANALYZE {bulk.WRITTEN_TABLES}"] * 4
            assert held == 240
            statements.clear()
            for start in range(0, 300, 100):
                store.set_keyphrases_many([(r.id, ["one phrase", "another"]) for r in recs[start : start + 100]], "given")
        analysed = [s for s in statements if s.startswith("ANALYZE")]
        assert analysed == ["ANALYZE keyphrases"]  # 480 held when last analysed (2 for each of 240 records), 600 rewritten
        assert store.get_record("p0299").keyphrases == ["one phrase", "another"]


def test_orphan_concepts_go_by_an_anti_join_whatever_work_mem_holds(pg_admin):
    """The concepts no record carries any more are deleted by an anti join: PostgreSQL hashes a
    `NOT IN (SELECT ...)` only while the subquery fits in work_mem and otherwise scans it once
    per concept, which took 180 s of adding 1,000 records to 100,000. With work_mem at its
    smallest the plan still has no per-row subplan, and the concept no record carries is gone."""
    from landscape.store.understanding import ORPHAN_CONCEPTS

    with PgStore(new_pg_database(pg_admin, "orphans")) as store:
        conn = store.connection_for_tests
        with store.transaction():
            store.upsert_records(_records()[:3])
            conn.execute("INSERT INTO concepts (id, name, extra) VALUES (1, 'kept', '{}'), (2, 'orphan', '{}')")
            conn.execute("INSERT INTO record_concepts (record_id, concept_id, weight, source) VALUES ('p0001', 1, 1.0, 'text')")
            conn.execute("SET LOCAL work_mem = '64kB'")
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + ORPHAN_CONCEPTS))
            conn.execute(ORPHAN_CONCEPTS)
        assert "Anti Join" in plan and "SubPlan" not in plan
        assert [r[0] for r in conn.execute("SELECT name FROM concepts ORDER BY id")] == ["kept"]
