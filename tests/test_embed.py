"""Embedders: the real MiniLM model, the torch-free tfidf fallback, incremental embedding."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from landscape.config import Config
from landscape.enrich.embed import TfidfModel, embed_missing, get_embedder
from landscape.store import open_store

from .conftest import LISTING, ROOT, cli_json, run_cli

_HEADER = re.compile(
    r"^(Theoretical Physics|Experimental Physics|Foundational AI|Astrophysics) [A-Z][a-z]{2} \d{1,2}, \d{4}$"
)


def write_listing(path: Path, first: int, last: int | None = None) -> Path:
    """The real listing cut to entries [first, last): page chrome kept, so ingest reads it as usual."""
    lines = LISTING.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if _HEADER.match(line)]
    chrome = lines[: starts[0]]
    end = starts[last] if last is not None and last < len(starts) else len(lines)
    path.write_text("\n".join(chrome + lines[starts[first] : end]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> Path:
    """40 real papers, built with the default embedder (the model loads once per process)."""
    tmp = tmp_path_factory.mktemp("embed")
    db = tmp / "landscape.db"
    run_cli("ingest", write_listing(tmp / "listing40.txt", 0, 40), db=db)
    run_cli("build", "--only", "embed", db=db)
    return db


def test_minilm_vectors_are_normalised_and_mean_something():
    embedder = get_embedder("minilm", Config())
    vectors = embedder.encode([
        "Stellar streams in the Milky Way constrain dark matter substructure.",
        "Tidal debris of disrupted globular clusters traces the Galactic halo.",
        "A quantum error-correcting code for superconducting qubits.",
        "",
    ])
    assert vectors.dtype == np.float32 and vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1


def test_order_of_texts_does_not_change_their_vectors():
    embedder = get_embedder("minilm", Config())
    texts = ["short text", "a much longer text about normalizing flows and simulation-based inference " * 5]
    forward, backward = embedder.encode(texts), embedder.encode(texts[::-1])
    assert np.allclose(forward, backward[::-1], atol=1e-5)


def test_build_records_the_model_and_never_reembeds_unchanged_records(small_db):
    with open_store(small_db) as store:
        assert store.get_meta("embedder") == "all-MiniLM-L6-v2"
        assert store.count_to_embed("all-MiniLM-L6-v2") == 0
    again = cli_json("build", "--only", "embed", db=small_db)
    assert again[0]["embedded"] == 0 and again[0]["unchanged"] == 40


def test_a_model_change_reembeds_everything(tmp_path, small_db):
    db = tmp_path / "copy.db"
    with open_store(small_db) as src, open_store(db) as dst:
        src.connection_for_tests.backup(dst.connection_for_tests)
    steps = cli_json("build", "--only", "embed", "--embedder", "tfidf", db=db)
    assert steps[0]["embedded"] == 40
    with open_store(db) as store:
        assert store.get_meta("embedder").startswith("tfidf-")
        assert store.get_meta("embedder_spec") == "tfidf"


def test_embedding_streams_in_batches(tmp_path):
    db = tmp_path / "l.db"
    run_cli("ingest", write_listing(tmp_path / "l.txt", 0, 40), db=db)
    with open_store(db) as store:
        embedder = get_embedder("tfidf", Config(), store=store)
        written = []
        done = embed_missing(store, embedder, batch=16, on_batch=written.append)
        assert done == 40 and written == [16, 32, 40]
        assert embed_missing(store, embedder, batch=16) == 0


def test_tfidf_model_round_trips_as_plain_arrays():
    texts = ["normalizing flows for inference", "dark matter halos and streams", "flows of dark energy"] * 5
    model = TfidfModel.fit(texts, dim=4)
    again = TfidfModel.from_bytes(model.to_bytes())  # np.load(allow_pickle=False) inside
    assert np.allclose(model.transform(texts), again.transform(texts))


def test_a_missing_model_directory_is_one_clear_error(tmp_path, small_db):
    result = run_cli("build", "--only", "embed", "--embedder", f"sentence-transformers:{tmp_path}/nope",
                     db=small_db, expect=2)
    assert "no such model directory" in result.output


BLOCK_TORCH = """
import sys

class NotInstalled:
    # as if torch and the libraries built on it were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "sentence_transformers", "transformers"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NotInstalled())
from landscape.cli import main
main(sys.argv[1:])
"""


def run_without_torch(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_tfidf_embedder_works_without_torch(tmp_path):
    db = str(tmp_path / "notorch.db")
    run_without_torch("ingest", str(write_listing(tmp_path / "l.txt", 0, 40)), "--db", db)
    run_without_torch("build", "--only", "embed", "--only", "connections", "--embedder", "tfidf", "--db", db)
    first = json.loads(run_without_torch("list", "--limit", "1", "--json", "--db", db))[0]["id"]
    related = json.loads(run_without_torch("related", first, "--json", "--db", db))
    assert len(related) == 10 and all(r["id"] != first for r in related)
    assert related[0]["reasons"][0].startswith("meaning similarity")
    hits = json.loads(run_without_torch("search", "neural network", "--json", "--db", db))
    assert hits
    pasted = json.loads(run_without_torch("related", "--text", "dark matter and galaxies", "--json", "--db", db))
    assert len(pasted) == 10
    with open_store(db) as store:
        assert store.get_meta("embedder").startswith("tfidf-")


def test_minilm_runs_without_torch_and_gives_the_same_vectors(tmp_path):
    db = str(tmp_path / "notorch.db")
    run_without_torch("ingest", str(write_listing(tmp_path / "l.txt", 0, 3)), "--db", db)
    run_without_torch("build", "--only", "embed", "--db", db)
    with open_store(db) as store:
        assert store.get_meta("embedder") == "all-MiniLM-L6-v2"
        ids, stored = store.embedding_matrix("all-MiniLM-L6-v2")
        texts = store.record_texts(ids)
    fresh = get_embedder("minilm", Config()).encode([texts[i] for i in ids])
    assert len(ids) == 3 and np.allclose(stored, fresh, atol=1e-5)


def test_minilm_vectors_equal_sentence_transformers():
    """The numpy/torch BERT runner reproduces sentence-transformers, truncation at 256 included."""
    from sentence_transformers import SentenceTransformer

    from landscape.enrich.embed import minilm_path

    texts = ["Stellar streams constrain dark matter.", "  Padded text with spaces  ",
             "energy flow polynomials for jet substructure " * 60]
    reference = SentenceTransformer(minilm_path(), device="cpu")
    reference.max_seq_length = 256
    expected = reference.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    embedder = get_embedder("minilm", Config())
    small = embedder.encode(texts)  # few texts: the numpy forward pass
    large = embedder.encode(texts * 4)  # more than a handful: torch
    assert np.allclose(small, expected, atol=1e-5)
    assert np.allclose(large[:3], expected, atol=1e-5) and np.allclose(large[9:], expected, atol=1e-5)


# --- the fast embedder (static model fitted on the store, taught by MiniLM) -----------------


def copy_store(src: Path, dst: Path) -> Path:
    with open_store(src) as a, open_store(dst) as b:
        a.connection_for_tests.backup(b.connection_for_tests)
    return dst


@pytest.fixture(scope="module")
def fast_db(small_db, tmp_path_factory) -> Path:
    """The 40-paper store built again with `--embedder fast` (MiniLM's stored vectors teach it)."""
    db = copy_store(small_db, tmp_path_factory.mktemp("fast") / "landscape.db")
    run_cli("build", "--only", "embed", "--embedder", "fast", db=db)
    return db


def test_fast_embedder_gives_unit_float32_vectors_of_one_width_every_time(fast_db):
    with open_store(fast_db) as store:
        embedder = get_embedder("fast", Config(), store=store)
        ids, stored = store.embedding_matrix(embedder.name)
        texts = [store.record_texts(ids)[i] for i in ids]
    vectors = embedder.encode(texts)
    assert store_meta(fast_db, "embedder") == embedder.name and embedder.name.startswith("fast-")
    assert vectors.dtype == np.float32 and vectors.shape == (40, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors, embedder.encode(texts)) and np.allclose(stored, vectors, atol=1e-6)
    assert embedder.encode(["stellar streams"]).shape == (1, 512) and embedder.encode([]).shape == (0, 512)
    minilm = get_embedder("minilm", Config()).encode(texts)
    fast_top = np.argsort(-(vectors @ vectors.T), axis=1)[:, 1]
    minilm_rank = np.argsort(np.argsort(-(minilm @ minilm.T), axis=1), axis=1)
    assert np.median(minilm_rank[np.arange(40), fast_top]) <= 3  # its nearest paper is near in MiniLM too


def test_fast_embedder_fit_is_deterministic_and_uses_stored_minilm_vectors(fast_db, monkeypatch):
    from landscape.enrich import static_embed

    minilm = get_embedder("minilm", Config())
    monkeypatch.setattr(type(minilm), "encode", lambda self, texts: pytest.fail("MiniLM re-embedded"))
    with open_store(fast_db) as store:
        stored = store.get_artifact(static_embed.ARTIFACT)
        assert static_embed.fitted_blob(store, minilm, 42) == stored


def test_fast_embedder_is_cached_and_refitted_only_on_full(tmp_path, fast_db):
    from landscape.enrich import static_embed

    db = copy_store(fast_db, tmp_path / "l.db")
    name, blob = store_meta(db, "embedder"), artifact(db)
    again = cli_json("build", "--only", "embed", "--embedder", "fast", db=db)
    assert again[0]["embedded"] == 0 and (store_meta(db, "embedder"), artifact(db)) == (name, blob)
    run_cli("ingest", write_listing(tmp_path / "more.txt", 40, 45), db=db)
    grown = cli_json("build", "--only", "embed", "--embedder", "fast", db=db)
    assert grown[0]["embedded"] == 5 and (store_meta(db, "embedder"), artifact(db)) == (name, blob)
    full = cli_json("build", "--only", "embed", "--embedder", "fast", "--full", db=db)
    assert full[0]["embedded"] == 45 and store_meta(db, "embedder") != name and artifact(db) != blob
    header = static_embed.artifacts.unpack(artifact(db), static_embed.KIND, static_embed.VERSION)
    assert header is not None and header.meta["records"] == 45 and header.meta["teacher"] == "all-MiniLM-L6-v2"


def test_fast_embedder_model_is_plain_arrays_never_a_pickle(tmp_path, fast_db):
    import io
    import pickle

    from landscape.enrich import static_embed

    with np.load(io.BytesIO(artifact(fast_db)), allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    assert {"terms", "idf", "projection"} <= set(arrays) and not any(a.dtype.hasobject for a in arrays.values())
    db = copy_store(fast_db, tmp_path / "l.db")
    with open_store(db) as store, store.transaction():
        store.put_artifact(static_embed.ARTIFACT, pickle.dumps({"projection": np.eye(3)}))
    run_cli("build", "--only", "embed", "--embedder", "fast", db=db)
    assert artifact(db) == artifact(fast_db)  # the pickle was never loaded: refitted to the same model


def test_build_with_the_fast_embedder_end_to_end_on_the_corpus(tmp_path):
    db = tmp_path / "landscape.db"
    (tmp_path / "landscape.toml").write_text('embedder = "fast"\n[extra.fast_embedder]\nteacher_sample = 48\n')
    run_cli("ingest", LISTING, db=db)
    steps = cli_json("build", db=db)
    assert steps[0]["step"] == "embed" and steps[0]["embedded"] == 460
    with open_store(db) as store:
        name = store.get_meta("embedder")
        assert name.startswith("fast-") and store.get_meta("embedder_spec") == "fast"
        assert store.count_to_embed(name) == 0 and store.embedding_matrix(name)[1].shape == (460, 512)
        first = store.embedding_matrix(name)[0][0]
    related = cli_json("related", first, db=db)
    assert len(related) == 10 and all(r["id"] != first for r in related)
    assert cli_json("search", "dark matter halos", db=db)
    assert len(cli_json("related", "--text", "normalizing flows for simulation-based inference", db=db)) == 10


def store_meta(db: Path, key: str) -> str | None:
    with open_store(db) as store:
        return store.get_meta(key)


def artifact(db: Path) -> bytes | None:
    from landscape.enrich import static_embed

    with open_store(db) as store:
        return store.get_artifact(static_embed.ARTIFACT)


def test_a_plain_build_keeps_the_stores_embedder_and_refits_what_read_the_old_vectors(tmp_path):
    db = tmp_path / "switch.db"
    run_cli("ingest", write_listing(tmp_path / "listing.txt", 0, 60), db=db)
    cli_json("build", "--embedder", "tfidf", db=db)
    again = {s["step"]: s for s in cli_json("build", db=db)}
    assert again["embed"]["embedded"] == 0, "a plain build re-embedded a tfidf store with the default model"
    cli_json("build", "--only", "embed", "--embedder", "minilm", db=db)
    steps = {s["step"]: s for s in cli_json("build", db=db)}
    assert steps["embed"]["embedded"] == 0
    assert steps["areas"]["retrained"] == 1 and "unchanged" not in steps["concepts"]
    with open_store(db) as store:
        assert store.get_meta("embedder_spec") == "minilm"
        assert store.count_to_embed("all-MiniLM-L6-v2") == 0


def test_sqlite_reads_the_matrix_in_table_order_into_the_rows_of_sorted_ids(tmp_path):
    """The SQLite store's read (vectors in the table's order, each into its id's row) answers
    what the shared query in id order answers, also after records were replaced and deleted."""
    from landscape.store import Store
    from landscape.store.semantic import SemanticMixin

    db = tmp_path / "m.db"
    rng = np.random.default_rng(1)
    with Store(db) as store:
        run_cli("ingest", LISTING, "--db", db)
        ids = sorted(store.record_titles())
        with store.transaction():
            store.put_embeddings("m", [(rid, "h", rng.normal(size=8)) for rid in reversed(ids)])
            store.put_embeddings("m", [(rid, "h2", rng.normal(size=8)) for rid in ids[::7]])  # replaced rows move
            gone = ids[1:40:3]
            store.connection_for_tests.execute(f"DELETE FROM records WHERE id IN ({','.join('?' * len(gone))})", gone)
        got_ids, got = store.embedding_matrix("m")
        want_ids, want = SemanticMixin.embedding_matrix(store, "m")
    assert got_ids == want_ids == sorted(got_ids) and len(got_ids) == len(ids) - 13
    assert np.array_equal(got, want)
