"""The embedding matrix kept beside a large store as one memory-mapped file (enrich/vector_file.py):
always the store's own vectors, rewritten from the rows that changed, never trusted blindly."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from landscape.config import Config
from landscape.enrich import vector_file
from landscape.enrich.embed import record_embeddings
from landscape.enrich.pipeline import build
from landscape.store import open_store

from .conftest import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from corpus_gen import write_corpus  # noqa: E402

CONFIG = Config(embedder="tfidf")


@pytest.fixture
def large(monkeypatch, tmp_path, db):
    """A store of 300 embedded records that counts as large (every size does here), its side
    files under the test's folder (a PostgreSQL store keeps them in the user's cache)."""
    monkeypatch.setattr(vector_file, "MIN_ROWS", 1)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run_cli("ingest", write_corpus(tmp_path / "base.txt", 300), db=db)
    with open_store(db) as store:
        build(store, CONFIG, only=["embed"])
    return db


def _model(store) -> str:
    return store.get_meta("embedder")


def _same_as_the_store(store) -> np.ndarray:
    ids, matrix = vector_file.embedding_matrix(store, _model(store))
    want_ids, want = store.embedding_matrix(_model(store))
    assert ids == want_ids
    assert np.array_equal(np.asarray(matrix), want)
    return matrix


@pytest.mark.parametrize("by_id", [0, 20_000])
def test_the_file_is_written_once_and_then_mapped(large, by_id, monkeypatch):
    """Written from one read of the table, or from rows looked up by id."""
    monkeypatch.setattr(vector_file, "BY_ID", by_id)
    with open_store(large) as store:
        first = _same_as_the_store(store)
        path = vector_file.file_path(store, _model(store))
        assert os.path.exists(path)
        stamp = os.stat(path).st_mtime_ns, os.stat(path).st_ino
        again = _same_as_the_store(store)
        assert (os.stat(path).st_mtime_ns, os.stat(path).st_ino) == stamp
    assert isinstance(again, np.memmap) and not again.flags.writeable
    assert first.shape[0] == 300


def test_new_and_changed_records_are_read_from_the_store_and_the_rest_copied(large, tmp_path, monkeypatch):
    with open_store(large) as store:
        _same_as_the_store(store)
    run_cli("ingest", write_corpus(tmp_path / "more.txt", 320), db=large)  # the 300 again and 20 new
    with open_store(large) as store:
        changed = sorted(store.record_ids())[7]
        with store.transaction():
            store.connection_for_tests.execute(
                "UPDATE records SET abstract = 'A different text entirely.', content_hash = 'changed' WHERE id = ?",
                (changed,))
        build(store, CONFIG, only=["embed"])
        asked: list[str] = []
        read = store.embedding_vectors
        monkeypatch.setattr(store, "embedding_vectors", lambda model, ids: asked.extend(ids) or read(model, ids))
        matrix = _same_as_the_store(store)
        assert len(matrix) == 320
        assert len(asked) == 21 and changed in asked


def test_an_unreadable_file_is_replaced_and_a_read_only_store_never_writes(large):
    with open_store(large) as store:
        path = vector_file.file_path(store, _model(store))
    Path(path).write_bytes(b"LSVECS01 not what it says")
    with open_store(large, readonly=True) as store:
        _same_as_the_store(store)
    assert Path(path).read_bytes() == b"LSVECS01 not what it says"
    with open_store(large) as store:
        matrix = _same_as_the_store(store)
    assert isinstance(matrix, np.memmap)


def test_the_build_reads_the_mapped_matrix(large):
    with open_store(large) as store:
        build(store, CONFIG, only=["embed"])
        ids, X = record_embeddings(store, CONFIG)
        assert isinstance(X, np.memmap)
        assert os.path.exists(vector_file.file_path(store, _model(store)))


@pytest.mark.parametrize("shuffled", [False, True])
def test_rows_are_written_by_runs_or_by_chunks_to_the_same_matrix(shuffled):
    """Old rows in their order (runs of the old file) or scrambled (gathered by chunks), with
    newcomers and changed rows read from the store between them."""
    import io

    rng = np.random.default_rng(4)
    source = rng.normal(size=(5000, 8)).astype(np.float32)
    at = rng.permutation(5000) if shuffled else np.arange(5000)
    at = np.insert(at, rng.integers(0, 5000, 40), -1)  # newcomers between the old rows
    at[[0, 3, 900, len(at) - 1]] = -1  # changed rows, the first and last among them
    ids = [f"r{i}" for i in range(len(at))]
    stored = {rid: np.full(8, i, dtype=np.float32) for i, rid in enumerate(ids)}

    class Store:
        def embedding_vectors(self, model, wanted):
            return np.stack([stored[w] for w in wanted])

    out = io.BytesIO()
    vector_file._write_rows(out, Store(), "m", ids, source, at, 8)
    got = np.frombuffer(out.getvalue(), dtype=np.float32).reshape(len(at), 8)
    want = np.where((at >= 0)[:, None], source[np.maximum(at, 0)], np.arange(len(at), dtype=np.float32)[:, None])
    assert np.array_equal(got, want)
