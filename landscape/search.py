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
    """The store's model and the embedder for queries; the neighbour index is the store's own
    (`SearchStore.nearest`: pgvector on PostgreSQL, one kept by this process on SQLite).

    `embedder` is None while nothing is embedded, or while the stored vectors and the store's
    embedder disagree (`build --full` has refitted the model and not re-embedded yet): search
    then answers with keyword hits."""

    model: str | None
    embedder: Any

    def nearest(self, store: SearchStore, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """(id, cosine) of the k records nearest each query vector, best first."""
        if self.model is None or self.embedder is None:
            return [[] for _ in range(len(np.atleast_2d(vectors)))]
        return store.nearest(self.model, vectors, k)


def dense_index(store: SearchStore, config: Config) -> DenseIndex:
    """The store's DenseIndex, made once per store version (see landscape.snapshot)."""
    return SNAPSHOTS.get(store, "dense", lambda s: _dense_index(s, config))


def _dense_index(store: SearchStore, config: Config) -> DenseIndex:
    from .enrich.embed import store_embedder

    model = store.get_meta("embedder")
    if not model or not store.embedding_dim(model):
        return DenseIndex(model or None, None)
    embedder = store_embedder(store, config)
    if embedder.name != model:
        return DenseIndex(model, None)
    embedder.encode(["load the model now"])  # once, under the snapshot's lock: threads never load it twice
    return DenseIndex(model, embedder)


def dense_hits(store: SearchStore, query: str, config: Config, n: int) -> list[tuple[str, float]]:
    """(id, cosine) of the records nearest to the query in meaning; empty if nothing is embedded."""
    dense = dense_index(store, config)
    if dense.embedder is None:
        return []
    hits = dense.nearest(store, dense.embedder.encode([query[:MAX_QUERY_CHARS]]), n)[0]
    return [(rid, s) for rid, s in hits if s >= DENSE_MIN_SIMILARITY]


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
    hits = [_is_term(p, terms) for p in parts]
    start = next((i for i, hit in enumerate(hits) if hit), 0)
    start = max(0, start - 8)
    marked = [f"{HL_OPEN}{p}{HL_CLOSE}" if hit else p
              for p, hit in zip(parts[start : start + words], hits[start : start + words])]
    return ("… " if start else "") + " ".join(marked) + (" …" if start + words < len(parts) else "")


_NON_WORD = re.compile(r"\W+")


def _is_term(word: str, terms: set[str]) -> bool:
    low = word.lower()
    return any(t in low for t in terms) and _NON_WORD.sub("", low) in terms  # the cheap test first


def search(store: SearchStore, query: str, limit: int = 20, config: Config | None = None, snippets: int | None = None,
           **filters: Any) -> list[dict[str, Any]]:
    """Records matching the query by words or meaning: [{id, title, score, snippet, area, date, kind,
    keyword_scope}]; keyword_scope is "newest" where the words were so common that BM25 ranked
    only the newest matches (see Store.fts_search), "all" for other keyword hits, None otherwise.

    Only the first `snippets` results (all when None) get a snippet: a page that shows 20 of 200
    results makes 20."""
    config = config or Config()
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise LandscapeError(f"search: expected filters {', '.join(FILTERS)}, found {sorted(unknown)[0]!r}")
    filters = {k: v for k, v in filters.items() if v}
    query = (query or "").replace("\x00", " ")
    if not query.strip():
        return []
    limit = max(1, min(int(limit), 1000))
    lexical = store.fts_search(query[: MAX_QUERY_CHARS * 5], limit=max(CANDIDATES, limit), snippets=False, **filters)
    dense = dense_hits(store, query, config, max(CANDIDATES, limit) * (4 if filters else 1))
    if filters:  # only the candidates are checked, so a filter costs the same at any store size
        allowed = store.ids_passing((rid for rid, _ in dense), **filters)
        dense = [(rid, s) for rid, s in dense if rid in allowed]
    fused = rrf([h["id"] for h in lexical], [rid for rid, _ in dense])
    order = sorted(fused, key=lambda rid: (-fused[rid], rid))[:limit]
    brief = store.record_brief(order)
    wanted = order if snippets is None else order[: max(0, snippets)]
    matched = store.fts_snippets(query[: MAX_QUERY_CHARS * 5], {h["id"] for h in lexical} & set(wanted))
    marked = {rid: snip for rid, (snip, _) in matched.items() if HL_OPEN in (snip or "")}
    abstracts = store.abstracts(rid for rid in wanted if rid not in marked)
    shown = {rid: marked.get(rid) or highlight(abstracts.get(rid, ""), query) for rid in wanted}
    scopes = {h["id"]: h.get("scope") for h in lexical}
    return [
        {
            "id": rid, "title": brief[rid]["title"], "score": round(fused[rid], 6), "snippet": shown.get(rid, ""),
            "area": brief[rid]["area"], "date": brief[rid]["date"], "kind": brief[rid]["kind"],
            "keyword_scope": scopes.get(rid),
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
