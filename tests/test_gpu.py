"""On a machine with CUDA: the GPU embedding path gives the CPU's vectors, and a local build
embeds on the GPU. Skipped without CUDA (this project's CI has none; run on a GPU machine)."""

import numpy as np
import pytest

from landscape.engine import cuda_devices

from .conftest import LISTING, run_cli

pytestmark = pytest.mark.skipif(not cuda_devices(), reason="no CUDA device here")


def test_fp16_on_the_gpu_gives_the_cpu_vectors_in_the_texts_order():
    from landscape.enrich.embed import MINILM, SentenceTransformerEmbedder, minilm_path

    texts = [("word " * n + f"text {n} about lattice gauge theory").strip() for n in (3, 150, 7, 40, 1, 90, 12, 300)]
    texts += [f"Paper {i}: normalising flows for {i % 7} dark matter halos" for i in range(3000)]
    cpu = SentenceTransformerEmbedder(minilm_path(), MINILM).bert.encode(texts)
    gpu = SentenceTransformerEmbedder(minilm_path(), MINILM).to_gpu()
    assert gpu.device == "cuda"
    got = gpu.encode(texts)
    gpu.bert.close_token_pool()
    cosine = np.sum(got * cpu, axis=1)
    assert got.shape == cpu.shape and cosine.min() > 0.999


def test_a_local_build_embeds_on_the_gpu_and_stores_the_cpu_vectors(tmp_path):
    from landscape.enrich.embed import MINILM, SentenceTransformerEmbedder, minilm_path
    from landscape.store import open_store

    db = tmp_path / "gpu.db"
    run_cli("ingest", str(LISTING), "--db", str(db))
    result = run_cli("build", "--db", str(db), "--embedder", "minilm")
    assert "on this machine's GPU (fp16)" in result.output
    with open_store(db) as store:
        ids, matrix = store.embedding_matrix(MINILM)
        texts = store.record_texts(ids)
    cpu = SentenceTransformerEmbedder(minilm_path(), MINILM).bert.encode([texts[i] for i in ids])
    assert np.sum(matrix * cpu, axis=1).min() > 0.999
