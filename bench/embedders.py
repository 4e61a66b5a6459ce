"""Embedders side by side on ../shared/corpus: speed and connection quality, all in one run.

For each candidate: abstracts per second (wall, with the load average beside it, since this
machine is shared) and per CPU second of this process (user + system, every thread), and the
nDCG@10 of the connections `landscape build` stores with it (bench/quality.py's keyphrase
proxy), as a ratio to MiniLM's measured in the same run; the dense vectors' own nDCG@10 too.

Rows:
- minilm: the default (all-MiniLM-L6-v2), the baseline.
- fast: `--embedder fast` as the product builds it here (its teacher sample is the whole
  460-record corpus, so every record it is scored on was in its fitting sample).
- fast, out-of-sample: the same model taught 5 times, each time by MiniLM's vectors of 4/5 of
  the records, each fifth embedded by the model whose teacher never saw it: what records outside
  the teacher sample get in a large store (pessimistic: 368 teacher texts here, 2,000 there).
- tfidf: the TF-IDF + SVD embedder.
- no meaning signal: zero vectors, so connections rank on their lexical signals alone (how much
  of the connection score any embedder can move).
- with --int8: MiniLM with torch dynamic int8 quantisation of its linear layers (about a CPU
  minute more).

MiniLM's and int8's speeds are those of the build's own embed step (the 460 abstracts); the
static embedders encode the corpus --repeat times over in batches of 2,048, as the build does.

    .venv/bin/python bench/embedders.py [--corpus PATH] [--repeat 10] [--int8] [--speed-only]

A run takes about 1.5 CPU minutes (MiniLM's 460 abstracts are most of it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import DEFAULT_CORPUS, ndcg_at_10, rank_rows, relevance, stored_rankings, table  # noqa: E402

from landscape.config import Config  # noqa: E402
from landscape.enrich import embed, static_embed  # noqa: E402
from landscape.enrich.pipeline import build  # noqa: E402
from landscape.ingest import ingest_paths  # noqa: E402
from landscape.store import Store  # noqa: E402

STEPS = ["embed", "connections"]


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


class Lookup:
    """Precomputed vectors served as an embedder, so a build stores connections from them."""

    def __init__(self, name: str, by_text: dict[str, np.ndarray]):
        self.name, self.by_text = name, by_text

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.vstack([self.by_text[t] for t in texts]).astype(np.float32)


class Timed:
    """An embedder whose encode calls are timed (wall and CPU seconds, texts, load at the first)."""

    def __init__(self, embedder: Any):
        self.embedder, self.name = embedder, embedder.name
        self.wall = self.cpu = 0.0
        self.texts, self.load = 0, ""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.load = self.load or load()
        wall, cpu = time.perf_counter(), cpu_seconds()
        out = self.embedder.encode(texts)
        self.wall += time.perf_counter() - wall
        self.cpu += cpu_seconds() - cpu
        self.texts += len(texts)
        return out

    def speed(self) -> tuple[float, float, str]:
        return self.texts / max(self.wall, 1e-9), self.texts / max(self.cpu, 1e-9), self.load


def speed(encode: Callable[[list[str]], object], texts: list[str], batch: int = 2_048) -> tuple[float, float, str]:
    """(abstracts per wall second, per CPU second, load average when it started)."""
    before = load()
    wall, cpu = time.perf_counter(), cpu_seconds()
    for start in range(0, len(texts), batch):
        encode(texts[start : start + batch])
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return len(texts) / wall, len(texts) / max(cpu, 1e-9), before


def connections_ndcg(base: Path, tmp: Path, spec: str, embedder: object | None) -> tuple[float, float, str]:
    """Build embed + connections on a copy of the ingested store; (connections, dense) nDCG@10."""
    db = tmp / f"{spec.replace(':', '_')}.db"
    shutil.copy(base, db)
    real = embed.get_embedder
    if embedder is not None:
        embed.get_embedder = lambda s, *a, **k: embedder if s == spec else real(s, *a, **k)  # type: ignore
    try:
        config = Config(embedder=spec)
        with Store(db) as store:
            build(store, config, only=STEPS)
            name = store.get_meta("embedder")
            ids, vectors = store.embedding_matrix(name)
            lines = [store.get_record(rid).keyphrase_line or "" for rid in ids]
            rel = relevance(lines)
            queries = [i for i in range(len(ids)) if lines[i] and rel[i].max() > 0]
            conn = ndcg_at_10(stored_rankings(store, ids), rel, queries)
            dense = ndcg_at_10(rank_rows(vectors @ vectors.T), rel, queries)
    finally:
        embed.get_embedder = real
    return conn, dense, name


def cross_fitted(store: Store, teacher: str, folds: int = 5) -> dict[str, np.ndarray]:
    """Text -> vector from a fast model whose teacher never saw that text (teacher vectors as
    stored). The vocabulary and SVD are fitted on every record, as the product does for up to
    50,000 records: only the teacher sample is a sample."""
    ids, y = store.embedding_matrix(teacher)
    texts = store.record_texts(ids)
    every = [texts[i] for i in ids]
    out: dict[str, np.ndarray] = {}
    fold = np.arange(len(ids)) % folds
    for f in range(folds):
        train, test = np.where(fold != f)[0], np.where(fold == f)[0]
        model = static_embed.fit(every, [every[i] for i in train], y[train])
        for i, v in zip(test, model.encode([texts[ids[i]] for i in test]), strict=True):
            out[texts[ids[i]]] = v
    return out


def int8_minilm() -> object:
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(embed.minilm_path(), device="cpu")
    model.max_seq_length = embed.MAX_SEQ_LENGTH
    model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)

    class Int8:
        name = "minilm-int8"

        def encode(self, texts: Sequence[str]) -> np.ndarray:
            with torch.inference_mode():
                return model.encode(list(texts), batch_size=32, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)

    return Int8()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=10, help="copies of the corpus the fast embedders encode")
    parser.add_argument("--int8", action="store_true", help="add MiniLM with int8 dynamic quantisation")
    parser.add_argument("--speed-only", action="store_true",
                        help="only the fast embedder's speed (taught on 32 records): to remeasure when the load is low")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="landscape-embedders-"))
    base = tmp / "ingested.db"
    with Store(base) as store:
        ingest_paths(store, [str(args.corpus)])
        texts = list(store.record_texts().values())
    print(f"corpus: {args.corpus}, {len(texts)} records, mean {np.mean([len(t) for t in texts]):.0f} characters;"
          f" {os.cpu_count()} CPUs, load average at start {load()}")

    if args.speed_only:
        config = Config(extra={"fast_embedder": {"teacher_sample": 32}})
        with Store(base) as store:
            fast = embed.get_embedder("fast", config, store=store)
        for _ in range(3):
            wall, per_cpu, before = speed(fast.encode, texts * args.repeat)
            print(f"fast: {wall:,.0f} abstracts/s wall, {per_cpu:,.0f} per CPU second, load average {before}")
        return

    rows: list[tuple[str, ...]] = []
    minilm = embed.get_embedder("minilm", Config())
    minilm.encode(texts[:16])  # load the weights and import torch outside the timing
    timed = Timed(minilm)
    conn0, dense0, _ = connections_ndcg(base, tmp, "minilm", timed)
    minilm_speed = timed.speed()

    def row(label: str, spd: tuple[float, float, str] | None, conn: float, dense: float) -> None:
        wall, per_cpu, before = spd or (float("nan"), float("nan"), "-")
        rows.append((label, f"{wall:,.0f}", f"{per_cpu:,.0f}", before, f"{dense:.4f}", f"{conn:.4f}",
                     f"{conn / conn0:.3f}"))

    row("minilm (default)", minilm_speed, conn0, dense0)
    db = tmp / "minilm.db"
    fit_wall, fit_cpu = time.perf_counter(), cpu_seconds()
    conn, dense, name = connections_ndcg(db, tmp, "fast", None)  # teacher vectors already stored
    fit_wall, fit_cpu = time.perf_counter() - fit_wall, cpu_seconds() - fit_cpu
    with Store(tmp / "fast.db") as store:
        fast = embed.get_embedder("fast", Config(), store=store)
    row(f"fast ({name}, fitted on this corpus)", speed(fast.encode, texts * args.repeat), conn, dense)
    with Store(db) as store:
        held_out = cross_fitted(store, "all-MiniLM-L6-v2")
    conn, dense, _ = connections_ndcg(base, tmp, "fast-out-of-sample", Lookup("fast-oos", held_out))
    row("fast, out-of-sample (5-fold)", None, conn, dense)
    with Store(base) as store:
        tfidf = embed.get_embedder("tfidf", Config(), store=store)
    conn, dense, _ = connections_ndcg(base, tmp, "tfidf", None)
    row("tfidf (TF-IDF + SVD 256)", speed(tfidf.encode, texts * args.repeat), conn, dense)
    zeros = {t: np.zeros(8, dtype=np.float32) for t in texts}
    conn, dense, _ = connections_ndcg(base, tmp, "none", Lookup("none", zeros))
    row("no meaning signal (zero vectors)", None, conn, dense)
    if args.int8:
        int8 = int8_minilm()
        int8.encode(texts[:8])
        timed = Timed(int8)
        conn, dense, _ = connections_ndcg(base, tmp, "minilm-int8", timed)
        row("minilm int8 (torch dynamic quantisation)", timed.speed(), conn, dense)

    table(f"embedders on {len(texts)} records; connections nDCG@10 as a ratio to minilm's in this run",
          rows, ("embedder", "abstracts/s wall", "per CPU s", "load avg", "dense nDCG@10",
                 "connections nDCG@10", "/ minilm"))
    print(f"\nfast: fitted (vocabulary, SVD, ridge on {len(texts)} teacher vectors already stored) and"
          f" embedded in {fit_wall:.1f}s wall, {fit_cpu:.1f} CPU s, with connections")
    print("goal: fast >= 5,000 abstracts/s and connections within 5% of minilm (ratio >= 0.95)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
