"""`landscape build --engine ray`: the same store as the local engine, and faults in one line.

One local Ray (2 CPUs, no dashboard) is shared by the module; the engine joins it instead of
starting its own. The corpus is 100 records generated from ../shared/corpus (bench/corpus_gen.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from landscape.engine import Worker
from landscape.models import LandscapeError
from landscape.store import Store

from .conftest import ROOT, run_cli

ray = pytest.importorskip("ray")
sys.path.insert(0, str(ROOT / "bench"))
from corpus_gen import write_corpus  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A store holding the 100 records, ingested once (copies start out identical, timestamps too)."""
    folder = tmp_path_factory.mktemp("engine")
    db = folder / "ingested.db"
    run_cli("ingest", write_corpus(folder / "c100.txt", 100, seed=3), db=db)
    return db


def ingested(path: Path, corpus: Path) -> Path:
    shutil.copy(corpus, path)
    return path


def exported(db: Path, tmp: Path) -> list[dict]:
    out = tmp / f"{db.stem}.jsonl"
    run_cli("export", "--format", "jsonl", out, db=db)
    return [json.loads(line) for line in out.read_text().splitlines()]


def details(db: Path) -> list[dict]:
    """What `landscape show --json` answers for every record: area, summary, concepts, links."""
    from landscape.views import record_detail

    with Store(db, readonly=True) as store:
        return [record_detail(store, rid) for rid in sorted(store.record_titles())]


def embeddings(db: Path) -> tuple[list[str], np.ndarray]:
    with Store(db, readonly=True) as store:
        return store.embedding_matrix(store.get_meta("embedder") or "")


def test_ray_build_gives_the_local_build(local_ray, corpus: Path, tmp_path: Path):
    local = ingested(tmp_path / "local.db", corpus)
    remote = ingested(tmp_path / "ray.db", corpus)
    run_cli("build", "--embedder", "tfidf", db=local)
    out = run_cli("build", "--embedder", "tfidf", "--engine", "ray", db=remote).output
    assert "embed: 100 records with tfidf-" in out and "on the local Ray (2 CPUs)" in out
    engine_line = next(line for line in out.splitlines() if line.startswith("engine ray: "))
    for step in ("embed", "summaries", "connections"):
        assert f"{step} " in engine_line, engine_line
    assert exported(remote, tmp_path) == exported(local, tmp_path)
    (ids_l, m_l), (ids_r, m_r) = embeddings(local), embeddings(remote)
    assert ids_l == ids_r and len(ids_l) == 100
    np.testing.assert_allclose(m_r, m_l, atol=1e-6)
    assert details(remote) == details(local)


def test_minilm_embeddings_on_ray_actors(local_ray, corpus: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_ENGINE", "ray")
    local = ingested(tmp_path / "local.db", corpus)
    remote = ingested(tmp_path / "ray.db", corpus)
    run_cli("build", "--only", "embed", "--engine", "local", db=local)
    out = run_cli("build", "--only", "embed", db=remote).output
    assert "with all-MiniLM-L6-v2 on the local Ray" in out
    (ids_l, m_l), (ids_r, m_r) = embeddings(local), embeddings(remote)
    assert ids_l == ids_r and m_r.shape == (100, 384)
    np.testing.assert_allclose(m_r, m_l, atol=2e-5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_is_one_line_and_writes_nothing(local_ray, corpus: Path, tmp_path: Path):
    db = ingested(tmp_path / "x.db", corpus)
    before = exported(db, tmp_path)
    address = f"127.0.0.1:{free_port()}"
    result = run_cli("build", "--engine", "ray", "--address", address, db=db, expect=2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "no Ray cluster answers" in lines[0], result.output
    with Store(db, readonly=True) as store:
        assert store.get_meta("embedder") is None and store.page_last_build() is None
    assert exported(db, tmp_path) == before


def test_ray_not_installed_says_how_to_install(corpus: Path, tmp_path: Path, monkeypatch):
    db = ingested(tmp_path / "x.db", corpus)
    monkeypatch.setitem(sys.modules, "ray", None)
    result = run_cli("build", "--engine", "ray", db=db, expect=2)
    assert result.output.strip() == "error: the ray engine needs Ray: pip install 'landscape[ray]'"


def test_a_worker_that_dies_midway_is_one_line_and_a_rerun_resumes(local_ray, corpus: Path, tmp_path: Path):
    """A Ray worker (or its node) going away mid-embed: whole batches are kept, a rerun finishes."""
    from landscape.engine.ray_engine import RayEngine
    from landscape.enrich.embed import TfidfEmbedder, embed_missing

    db = ingested(tmp_path / "x.db", corpus)
    with Store(db) as store:
        real = TfidfEmbedder.from_store(store)
        texts = store.record_texts()
        third_batch = texts[sorted(texts)[40]]

        class DiesOnTheThirdBatch:
            name = real.name

            def encode(self, batch):
                if third_batch in batch:
                    time.sleep(1)  # lets this process's reply for its earlier batch reach the driver
                    os._exit(1)
                return real.encode(batch)

        with pytest.raises(LandscapeError, match=r"the local Ray \(2 CPUs\) went away during embed: .*rerun"):
            embed_missing(store, DiesOnTheThirdBatch(), batch=20, engine=RayEngine())
        left = store.count_to_embed(real.name)
        assert left >= 60 and left % 20 == 0  # whole batches, none from the third on
        assert embed_missing(store, real, batch=20, engine=RayEngine()) == left
        ids, matrix = store.embedding_matrix(real.name)
    np.testing.assert_allclose(matrix, real.encode([texts[i] for i in ids]), atol=1e-6)


def test_engine_keeps_batch_order_across_actors(local_ray):
    from landscape.engine.ray_engine import RayEngine

    engine = RayEngine()
    results = list(engine.map_batches(Worker(lambda b: [x * x for x in b], label="square"),
                                      ([i, i + 1] for i in range(0, 40, 2))))
    assert [x for r in results for x in r] == [i * i for i in range(40)]


def gpu_path_against_cpu_encoder() -> float:
    """Largest difference between the GPU embedding path run on the CPU in float32 and the CPU
    encoder, over texts of very different lengths."""
    from landscape.enrich.bert import BertEncoder
    from landscape.enrich.embed import minilm_path

    encoder = BertEncoder(minilm_path(), batch_size=8, backend="torch")
    texts = [("word " * n + f"text {n}").strip() for n in (3, 150, 7, 40, 1, 90, 12, 300, 5, 60, 2, 25)]
    expected = encoder.encode(texts)
    got = encoder.encode_pipelined(texts, device="cpu", half=False, chunk=5, batch_texts=3, workers=2)
    encoder.close_token_pool()
    return float(np.abs(got - expected).max())


def test_gpu_path_batches_by_length_in_tokeniser_processes_and_keeps_order(local_ray):
    """The GPU embedding path (chunks tokenised in spawned CPU processes, batches by token
    length), on the CPU in float32, in a Ray worker as an embedding actor runs it: the CPU
    encoder's vectors, each in its text's place."""
    assert ray.get(ray.remote(gpu_path_against_cpu_encoder).options(num_cpus=1).remote()) < 2e-5
