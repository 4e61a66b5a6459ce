"""The `fast` embedder: a static word model fitted on the store's own texts, for large corpora.

MiniLM embeds about 7 abstracts per CPU second here, so a million papers take days. This model
embeds thousands per CPU second because encoding is one tokenisation (the regex tokenizer the
lexical signals use) and one sparse-dense product: a text's vector is its TF-IDF vector times a
fixed projection, then L2-normalised. The projection has two blocks, made once per store:

    taught    384 columns fitted by ridge regression so that the projection of a text's TF-IDF
              vector regresses MiniLM's vector of that text, on an evenly spaced sample of the
              store's records (model2vec's tokenlearn idea, solved in closed form in the dual:
              W = X^T (X X^T + lambda I)^-1 Y, so the cost is the sample squared, never n)
    lexical   128 columns of a truncated SVD of the TF-IDF matrix of a larger sample

each block scaled to a common mean norm and weighted 0.7 / 0.3 (bench/embedders.py measured the
choices). MiniLM vectors already stored for the sample are reused, so a store that switches from
minilm to fast pays nothing for the teacher. Measured alternatives and why they lost (figures in
bench/embedders.py and the README): model2vec's `distill` of MiniLM ranks worse and its WordPiece
tokenizer alone runs under 1,000 abstracts per CPU second; int8 MiniLM (torch dynamic
quantisation) runs no faster than MiniLM through `bert.BertEncoder`, about 7 per CPU second.

The fitted model is kept in the store as an artifact (npz + JSON, read with allow_pickle=False)
and named by a hash of its bytes, so a refit (`landscape build --full`) re-embeds everything and
an unchanged store never refits.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import artifacts
from ..models import LandscapeError
from ..store.interfaces import EmbedStore
from ..text import content_tokens, tokens

ARTIFACT = "embedder:fast"
KIND = "static-embedder"
VERSION = 1
TEACHER_DIM = 384
LEXICAL_DIM = 128
TEACHER_SHARE = 0.7
RIDGE = 0.3
MAX_TERMS = 30_000


@dataclass
class FastSettings:
    """`[extra.fast_embedder]` in the config: how many records the model is fitted on.

    The teacher (MiniLM) embeds `teacher_sample` records once, about 7 per CPU second here
    (fewer when their MiniLM vectors are already stored), and the ridge solve is that number
    squared; more records teach more words.
    """

    teacher_sample: int = 2_000
    vocab_sample: int = 50_000


class StaticModel:
    """TF-IDF over a fixed vocabulary, then one projection to `dim` columns."""

    def __init__(self, terms: list[str], idf: np.ndarray, projection: np.ndarray):
        self.terms = terms
        self.vocab = {t: i for i, t in enumerate(terms)}
        self.idf = np.asarray(idf, dtype=np.float32)
        self.projection = np.asarray(projection, dtype=np.float32)

    @property
    def dim(self) -> int:
        return TEACHER_DIM + LEXICAL_DIM

    def features(self, texts: Sequence[str]) -> Any:
        """Rows of sublinear tf x idf, L2-normalised, as a CSR matrix (duplicates summed by scipy).

        The vocabulary holds content tokens only, so looking up every token drops the stopwords
        and single characters without a separate filter (a third of the encoding time).
        """
        from scipy.sparse import csr_matrix

        lookup = self.vocab.get
        cols: list[int] = []
        counts = np.zeros(len(texts) + 1, dtype=np.int64)
        for i, text in enumerate(texts):
            ids = [j for j in map(lookup, tokens(text)) if j is not None]
            cols.extend(ids)
            counts[i + 1] = len(ids)
        indptr = np.cumsum(counts)
        data = np.ones(len(cols), dtype=np.float32)
        m = csr_matrix((data, np.asarray(cols, dtype=np.int64), indptr), shape=(len(texts), len(self.terms)))
        m.sum_duplicates()
        m.data = (1.0 + np.log(m.data)) * self.idf[m.indices]
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return csr_matrix(m.multiply(1.0 / norms[:, None]), dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self.features(texts) @ self.projection, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def to_bytes(self, meta: dict[str, Any]) -> bytes:
        """Plain arrays only: terms as one UTF-8 byte string, the projection in float16."""
        terms = "\n".join(self.terms).encode()
        return artifacts.pack(artifacts.Artifact(KIND, VERSION, meta, {
            "terms": np.frombuffer(terms, dtype=np.uint8), "idf": self.idf,
            "projection": self.projection.astype(np.float16),
        }))

    @classmethod
    def from_bytes(cls, blob: bytes | None) -> StaticModel | None:
        art = artifacts.unpack(blob, KIND, VERSION)
        if art is None:
            return None
        text = art.arrays["terms"].tobytes().decode()
        return cls(text.split("\n") if text else [], art.arrays["idf"], art.arrays["projection"])


def fit(vocab_texts: Sequence[str], teacher_texts: Sequence[str], teacher: np.ndarray,
        seed: int = 42) -> StaticModel:
    """Vocabulary and idf from `vocab_texts`; the taught block regresses `teacher` (rows match
    `teacher_texts`), the lexical block is a truncated SVD of the vocabulary sample."""
    df: Counter[str] = Counter()
    for text in vocab_texts:
        df.update(set(content_tokens(text)))
    keep = 2 if len(vocab_texts) >= 20 else 1
    frequent = sorted((t for t, c in df.items() if c >= keep), key=lambda t: (-df[t], t))[:MAX_TERMS]
    terms = sorted(frequent)
    n = len(vocab_texts)
    idf = np.array([math.log((1 + n) / (1 + df[t])) + 1 for t in terms], dtype=np.float32)
    model = StaticModel(terms, idf, np.zeros((len(terms), TEACHER_DIM + LEXICAL_DIM), dtype=np.float32))
    if not terms:
        return model
    taught = _taught_block(model.features(teacher_texts), np.asarray(teacher, dtype=np.float32))
    lexical = _lexical_block(model.features(vocab_texts), seed)
    model.projection = np.hstack([math.sqrt(TEACHER_SHARE) * taught, math.sqrt(1 - TEACHER_SHARE) * lexical])
    return model


def _taught_block(x: Any, y: np.ndarray) -> np.ndarray:
    """Ridge regression from TF-IDF rows to the teacher's vectors, in the dual (sample x sample)."""
    gram = (x @ x.T).toarray().astype(np.float64)
    alpha = np.linalg.solve(gram + RIDGE * np.eye(len(gram)), y.astype(np.float64))
    w = np.asarray(x.T @ alpha, dtype=np.float32)
    return w / _mean_norm(x @ w)


def _lexical_block(x: Any, seed: int) -> np.ndarray:
    """The SVD's leading directions, zero-padded to LEXICAL_DIM so the width never depends on n."""
    out = np.zeros((x.shape[1], LEXICAL_DIM), dtype=np.float32)
    k = min(LEXICAL_DIM, x.shape[0] - 1, x.shape[1] - 1)
    if k < 1:
        return out
    from sklearn.decomposition import TruncatedSVD

    svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=7, random_state=seed).fit(x)
    out[:, :k] = svd.components_.T
    return out / _mean_norm(x @ out)


def _mean_norm(m: Any) -> float:
    return float(np.mean(np.linalg.norm(np.asarray(m), axis=1))) or 1.0


class FastEmbedder:
    """The StaticModel kept in the store; `name` changes whenever the fitted model does."""

    batch = 2_048  # records per embed batch: the per-call overhead is a fifth of the time at 256

    def __init__(self, model: StaticModel, blob: bytes):
        self.model = model
        self.name = "fast-" + hashlib.sha1(blob).hexdigest()[:10]

    @property
    def dim(self) -> int:
        return self.model.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(list(texts))

    @classmethod
    def from_store(cls, store: EmbedStore, teacher: Any, refit: bool = False, seed: int = 42,
                   log: Any = None, settings: FastSettings | None = None) -> FastEmbedder:
        """The stored model, fitted first when there is none (or on refit).

        `teacher` is a callable answering the teacher embedder (MiniLM), called only to fit.
        """
        blob = None if refit else store.get_artifact(ARTIFACT)
        model = StaticModel.from_bytes(blob)
        if model is None:
            if store.readonly:
                raise LandscapeError("the fast embedder is not fitted yet: run `landscape build --embedder fast`")
            blob = fitted_blob(store, teacher(), seed, log, settings or FastSettings())
            with store.transaction():
                store.put_artifact(ARTIFACT, blob)
            model = StaticModel.from_bytes(blob)
            assert model is not None
        return cls(model, blob or b"")


def fitted_blob(store: EmbedStore, teacher: Any, seed: int, log: Any = None,
                settings: FastSettings | None = None) -> bytes:
    """Fit on evenly spaced samples of the store's records; answer the packed artifact."""
    settings = settings or FastSettings()
    ids = evenly_spaced(all_ids(store), max(1, settings.vocab_sample))
    texts = store.record_texts(ids)
    vocab_texts = [texts[i] for i in ids]
    taught_ids = evenly_spaced(ids, max(1, settings.teacher_sample))
    vectors = stored_teacher_vectors(store, teacher.name, taught_ids)
    missing = [i for i in taught_ids if i not in vectors]
    if log and missing:
        log(f"embed: fitting the fast embedder to {teacher.name} on {len(taught_ids)} records"
            f" ({len(missing)} to embed with it)")
    if missing:
        vectors.update(zip(missing, teacher.encode([texts[i] for i in missing]), strict=True))
    y = np.vstack([vectors[i] for i in taught_ids]) if taught_ids else np.zeros((0, TEACHER_DIM), np.float32)
    if y.shape[1] != TEACHER_DIM:
        raise LandscapeError(f"the fast embedder's teacher {teacher.name} gives {y.shape[1]} dimensions,"
                             f" expected {TEACHER_DIM}")
    model = fit(vocab_texts, [texts[i] for i in taught_ids], y, seed=seed)
    meta = {"teacher": teacher.name, "records": len(ids), "taught_on": len(taught_ids), "seed": seed}
    return model.to_bytes(meta)


def all_ids(store: EmbedStore) -> list[str]:
    """Every record id, sorted (ids only, never the texts)."""
    return store.record_ids()


def evenly_spaced(ids: Sequence[str], limit: int) -> list[str]:
    if len(ids) <= limit:
        return list(ids)
    picks = np.linspace(0, len(ids) - 1, num=limit).round().astype(int)
    return [ids[i] for i in sorted(set(picks.tolist()))]


def stored_teacher_vectors(store: EmbedStore, model: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Teacher vectors already stored for `ids` and still current (content unchanged)."""
    if store.count_to_embed(model) >= store.count_records():
        return {}
    stale = {rid for rows in store.records_to_embed(model, batch=10_000) for rid, _ in rows}
    stored_ids, matrix = store.embedding_matrix(model)
    wanted = set(ids) - stale
    return {rid: matrix[k] for k, rid in enumerate(stored_ids) if rid in wanted}
