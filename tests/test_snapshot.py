"""The store version that writes maintain, and the server's values built once per version."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

import landscape.store as store_module
from landscape.config import Config
from landscape.search import search
from landscape.snapshot import Snapshots
from landscape.store import open_store

from .conftest import run_cli
from .test_hostile import listing_head


@pytest.fixture(scope="module")
def small_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("snap") / "landscape.db"
    tmp = db.parent
    run_cli("ingest", listing_head(tmp / "head.txt", 30), db=db)
    run_cli("build", "--embedder", "tfidf", db=db)
    return db


def test_a_committed_write_bumps_the_version_and_a_read_does_not(small_db):
    with open_store(small_db) as store:
        token, n = store.version()
        with store.page_snapshot():
            store.stats()
        with store.transaction():
            store.get_meta("embedder")  # a transaction that writes nothing
        assert store.version() == (token, n)
        with store.transaction():
            store.set_meta("probe", "1")
        assert store.version() == (token, n + 1)
        with pytest.raises(RuntimeError), store.transaction():
            store.set_meta("probe", "2")
            raise RuntimeError("rolled back")
        assert store.version() == (token, n + 1) and store.get_meta("probe") == "1"
    with open_store(small_db.with_name("other.db")) as other:
        assert other.version()[0] != token  # a new store file never reuses a version


def test_every_write_of_ingest_and_build_happens_in_a_versioned_transaction(tmp_path, monkeypatch):
    """The version is bumped by `transaction()`: a write outside one would change the store
    without the server's caches noticing."""
    outside: list[str] = []
    real_connect = store_module.connect

    def traced(path, readonly=False):
        conn = real_connect(path, readonly=readonly)

        def trace(sql: str) -> None:
            verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
            fts_setting = "records_fts(records_fts, rank)" in sql  # a stored FTS5 option, no content
            if verb in {"INSERT", "UPDATE", "DELETE", "REPLACE"} and not conn.in_transaction and not fts_setting:
                outside.append(sql[:120])

        conn.set_trace_callback(trace)
        return conn

    monkeypatch.setattr(store_module, "connect", traced)
    db = tmp_path / "landscape.db"
    run_cli("ingest", listing_head(tmp_path / "head.txt", 25), db=db)
    run_cli("build", "--embedder", "tfidf", db=db)
    run_cli("build", "--embedder", "tfidf", "--full", db=db)
    assert not outside, outside[:5]


def test_search_reads_no_embedding_row_once_its_index_is_built(small_db):
    """Today's cache key hashed every embedding row on every search."""
    statements: list[str] = []
    with open_store(small_db, readonly=True) as store:
        search(store, "dark matter", config=Config())
        store.connection_for_tests.set_trace_callback(statements.append)
        for q in ("dark matter", "galaxy clusters", "neural networks"):
            assert search(store, q, config=Config())
    reads = [s for s in statements if "embeddings" in s.lower()]
    assert statements and not reads, reads[:3]


def test_a_value_is_built_once_per_version_and_readers_never_see_half_of_it(small_db):
    snapshots = Snapshots()
    builds: list[tuple[str, int]] = []
    seen: list[object] = []

    def build(store):
        builds.append(store.version())
        value: dict[str, int] = {}
        for i in range(50):
            value[str(i)] = i
            time.sleep(0.001)
        return value

    def reader():
        with open_store(small_db, readonly=True) as store:
            for _ in range(20):
                with store.page_snapshot():
                    seen.append(len(snapshots.get(store, "probe", build)))

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for t in threads:
        t.start()
    with open_store(small_db) as writer, writer.transaction():
        writer.set_meta("probe", str(time.time()))
    for t in threads:
        t.join()
    assert seen and set(seen) == {50}
    assert len(builds) == len(set(builds)) <= 2, builds  # once per version, not once per call


def test_a_store_from_before_the_version_opens_read_only(tmp_path, small_db):
    old = tmp_path / "old.db"
    src = sqlite3.connect(small_db)
    src.backup(dst := sqlite3.connect(old))
    src.close()
    dst.execute("DROP TABLE store_version")
    dst.commit()
    dst.close()
    with open_store(old, readonly=True) as store:
        assert store.version() == ("unversioned", 0)
        assert search(store, "dark matter", config=Config())
