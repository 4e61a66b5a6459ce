"""A base install, without the [ml] extra (no torch, no hnswlib, no leidenalg, no umap), in a
fresh virtual environment: ingest the shared corpus, build everything with the tfidf embedder,
serve. Every import the base path needs is declared, and every fallback it takes is said.

Slow (7.5 minutes measured on the 2-core machine shared with other jobs, load 12; most of it the build; pip takes its
wheels from the local cache in about 20 s), so marked slow; `make test` runs it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT, SHARED
from .test_concurrency import free_port


def run(*args: object, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=1800, **kwargs)
    assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("base-install")
    tree = tmp / "tree"
    tree.mkdir()
    for name in ("landscape", "pyproject.toml", "README.md"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tree / name)
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", str(tree))
    return venv


@pytest.mark.slow
def test_a_base_install_ingests_builds_and_serves_the_corpus(base_venv, tmp_path):
    python, landscape = base_venv / "bin" / "python", base_venv / "bin" / "landscape"
    missing = run(python, "-c", "import importlib.util as u; print([m for m in ('torch', 'sentence_transformers',"
                  " 'hnswlib', 'leidenalg', 'igraph', 'umap') if u.find_spec(m)])").stdout.strip()
    assert missing == "[]", f"the base install pulled in {missing}"
    db = tmp_path / "base.db"
    run(landscape, "ingest", SHARED / "corpus", "--db", db)
    out = run(landscape, "build", "--embedder", "tfidf", "--full", "--db", db).stdout
    steps = {line.split(":")[0] for line in out.splitlines() if ":" in line}
    assert {"embed", "concepts", "areas", "summaries", "connections", "topics", "map", "trends"} <= steps, out
    fallbacks = [line for line in out.splitlines() if line.startswith("fallback: ")]
    assert fallbacks == ["fallback: topics: Louvain (networkx) instead of Leiden, which needs igraph and leidenalg:"
                         " pip install 'landscape[ml]'"], out
    assert "fallback in the latest build: topics: Louvain" in run(landscape, "stats", "--db", db).stdout
    port = free_port()
    server = subprocess.Popen([landscape, "serve", "--port", str(port), "--db", db], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                home = httpx.get(base + "/", timeout=60)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.1)
        assert home.status_code == 200 and "460 papers" in home.text
        hits = httpx.get(base + "/api/v1/search", params={"q": "dark matter halos"}, timeout=60)
        assert hits.status_code == 200 and hits.json()["method"] == "hybrid" and hits.json()["results"]
        related = httpx.get(base + "/api/v1/related", params={"text": "dark matter halos"}, timeout=60)
        assert related.status_code == 200 and related.json()["results"]
        about = httpx.get(base + "/about", timeout=60).text
        assert "Louvain (networkx) instead of Leiden" in about
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_store_past_the_exact_limit_without_hnswlib_says_what_to_install(monkeypatch):
    import numpy as np

    from landscape.enrich.neighbours import build_index
    from landscape.models import LandscapeError

    monkeypatch.setitem(sys.modules, "hnswlib", None)  # as on a base install: `import hnswlib` fails
    vectors = np.eye(8, dtype=np.float32)
    with pytest.raises(LandscapeError) as err:
        build_index(vectors, exact_limit=4)
    assert str(err.value) == "hnswlib is needed for stores over 20,000 records: pip install 'landscape[ml]'"
    assert build_index(vectors, exact_limit=100).kind == "exact"
