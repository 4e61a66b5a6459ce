"""Hybrid search: FTS5 BM25 and dense retrieval fused by reciprocal rank.

Keyword search finds the exact words (names, acronyms, rare terms); dense search finds papers
that say the same thing in other words. Reciprocal-rank fusion (RRF, k=60) needs no score
calibration between the two. Any user text is safe: the FTS side quotes every word (so no
operator or SQL reaches the engine) and the dense side reads at most the first 2,000 characters.

Results carry a snippet with the matched words between \\x02 and \\x03 (the FTS5 markers), which
the CLI and the web pages turn into their own highlighting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import Config
from .models import LandscapeError
from .snapshot import SNAPSHOTS
from .store.interfaces import SearchStore

RRF_K = 60
CANDIDATES = 100
DENSE_MIN_SIMILARITY = 0.3  # below this a dense-only hit is noise (gibberish scores about 0.2 on MiniLM)
MAX_QUERY_CHARS = 2_000
FILTERS = ("area", "kind", "since", "until", "author")
HL_OPEN, HL_CLOSE = "\x02", "\x03"


@dataclass(frozen=True)
class DenseIndex:
    """The store's vectors under its model, their neighbour index, and the embedder for queries.

    `embedder` is None while the stored vectors and the store's embedder disagree (`build --full`
    has refitted the model and not re-embedded yet): search then answers with keyword hits."""

    model: str | None
    ids: list[str]
    index: Any
    embedder: Any


def dense_index(store: SearchStore, config: Config) -> DenseIndex:
    """The store's DenseIndex, built once per store version (see landscape.snapshot)."""
    return SNAPSHOTS.get(store, "dense", lambda s: _dense_index(s, config))


def _dense_index(store: SearchStore, config: Config) -> DenseIndex:
    from .enrich.embed import store_embedder
    from .enrich.neighbours import store_index

    model = store.get_meta("embedder")
    if not model:
        return DenseIndex(None, [], None, None)
    ids, vectors = store.embedding_matrix(model)
    if not ids:
        return DenseIndex(model, [], None, None)
    embedder = store_embedder(store, config)
    if embedder.name != model:
        return DenseIndex(model, ids, None, None)
    embedder.encode(["load the model now"])  # once, under the snapshot's lock: threads never load it twice
    return DenseIndex(model, ids, store_index(store, model, ids, vectors), embedder)


def dense_hits(store: SearchStore, query: str, config: Config, n: int) -> list[tuple[str, float]]:
    """(id, cosine) of the records nearest to the query in meaning; empty if nothing is embedded."""
    dense = dense_index(store, config)
    if dense.index is None or dense.embedder is None:
        return []
    idx, sims = dense.index.search(dense.embedder.encode([query[:MAX_QUERY_CHARS]]), min(n, len(dense.ids)))
    return [(dense.ids[i], float(s)) for i, s in zip(idx[0], sims[0]) if i >= 0 and s >= DENSE_MIN_SIMILARITY]


def rrf(*rankings: list[str], k: int = RRF_K) -> dict[str, float]:
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, rid in enumerate(ranking):
            fused[rid] = fused.get(rid, 0.0) + 1.0 / (k + 1 + rank)
    return fused


def highlight(text: str, query: str, words: int = 40) -> str:
    """The first `words` words of text around the first query word, query words marked."""
    terms = {w for w in re.findall(r"\w+", query.lower()) if len(w) > 2}
    parts = text.split()
    start = next((i for i, p in enumerate(parts) if _bare(p) in terms), 0)
    start = max(0, start - 8)
    window = parts[start : start + words]
    marked = [f"{HL_OPEN}{p}{HL_CLOSE}" if _bare(p) in terms else p for p in window]
    return ("… " if start else "") + " ".join(marked) + (" …" if start + words < len(parts) else "")


def _bare(word: str) -> str:
    return re.sub(r"\W+", "", word.lower())


def search(store: SearchStore, query: str, limit: int = 20, config: Config | None = None,
           **filters: Any) -> list[dict[str, Any]]:
    """Records matching the query by words or meaning: [{id, title, score, snippet, area, date, kind}]."""
    config = config or Config()
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise LandscapeError(f"search: expected filters {', '.join(FILTERS)}, found {sorted(unknown)[0]!r}")
    filters = {k: v for k, v in filters.items() if v}
    query = (query or "").replace("\x00", " ")
    if not query.strip():
        return []
    limit = max(1, min(int(limit), 1000))
    lexical = store.fts_search(query[: MAX_QUERY_CHARS * 5], limit=max(CANDIDATES, limit), **filters)
    allowed = store.filtered_ids(**filters)
    dense = [
        (rid, s) for rid, s in dense_hits(store, query, config, max(CANDIDATES, limit) * (4 if allowed else 1))
        if allowed is None or rid in allowed
    ]
    fused = rrf([h["id"] for h in lexical], [rid for rid, _ in dense])
    order = sorted(fused, key=lambda rid: (-fused[rid], rid))[:limit]
    brief = store.record_brief(order)
    snippets = {h["id"]: h["snippet"] for h in lexical if HL_OPEN in (h["snippet"] or "")}
    abstracts = store.abstracts(rid for rid in order if rid not in snippets)
    return [
        {
            "id": rid, "title": brief[rid]["title"], "score": round(fused[rid], 6),
            "snippet": snippets.get(rid) or highlight(abstracts.get(rid, ""), query),
            "area": brief[rid]["area"], "date": brief[rid]["date"], "kind": brief[rid]["kind"],
        }
        for rid in order
        if rid in brief
    ]


def dense_similarities(store: SearchStore, query: str, config: Config | None = None) -> np.ndarray:
    """Cosine of the query to every embedded record, in id order (for benchmarks)."""
    from .enrich.embed import store_embedder

    config = config or Config()
    _, matrix = store.embedding_matrix(store.get_meta("embedder") or "")
    return matrix @ store_embedder(store, config).encode([query])[0]
