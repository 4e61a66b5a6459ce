"""Related records on request: to a stored record, or to a text a reader pastes.

For a record with stored connections this reads them; otherwise, and for a pasted text, the
candidates are scored as the connections step scores them (enrich/connections.py), from the
whole corpus or, where the store keeps what a text's side needs, from the text's candidates
alone (enrich/text_related.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import Config
from ..models import LandscapeError, NotBuiltError
from ..store.interfaces import ConnectionReadStore
from .concepts.normalise import text_keys
from .connection_text import find_phrases
from .connections import HOPS, WEIGHTS, Corpus, _id_ordered, corpus_for, load_state, top_connections
from .neighbours import ExactIndex, top_k_rows
from .text_related import TextStats, load_text_stats, related_by_stats


def related(store: ConnectionReadStore, record_id: str | None = None, text: str | None = None, limit: int = 10,
            config: Config | None = None) -> list[dict[str, Any]]:
    """The records most related to a stored record or to a pasted text: [{id, title, score, reasons}].

    For a record with stored connections (and `limit` within them) this reads them; otherwise it
    scores against the corpus on the spot, exactly as the build would.
    """
    config = config or Config()
    if (record_id is None) == (text is None):
        raise LandscapeError("related: give a record id or --text, not both")
    limit = max(1, int(limit))
    if record_id is not None:
        if store.record_brief([record_id]) == {}:
            raise LandscapeError(f"no record with id {record_id!r}")
        stored = store.get_connections(record_id, limit)
        state = load_state(store)
        fresh = record_id not in store.stale_connection_ids() if stored else False
        if stored and fresh and (len(stored) >= limit or state and state.get("k", 0) >= limit):
            return stored
    if text is not None:
        scoring = text_scoring(store)
        if scoring is not None:
            return related_by_stats(store, scoring[0], str(text), scoring[1], limit, config)
    corpus = corpus_for(store, config)
    state = load_state(store)
    stats = state["stats"] if state and state.get("weights") == WEIGHTS else corpus.fit_stats()
    if record_id is not None:
        if record_id not in corpus.pos:
            raise LandscapeError(f"{record_id}: not embedded yet (run `landscape build`)")
        q = corpus.pos[record_id]
        rows = top_connections(corpus, [q], stats, min(limit, len(corpus) - 1))[record_id]
        brief = store.record_brief([oid for oid, _, _ in rows])
        return [{"id": oid, "title": brief[oid]["title"], "score": s, "reasons": r} for oid, s, r in rows]
    return related_to_text(store, corpus, str(text), stats, limit, config)


def text_scoring(store: ConnectionReadStore) -> tuple[TextStats, dict[str, list[float]]] | None:
    """What a pasted text is scored with without the whole corpus (enrich/text_related.py): the
    vocabulary and the score statistics the last connections step stored; None where the whole
    corpus must be read (citation links add candidates; nothing stored by this version)."""
    state = load_state(store)
    if not state or state.get("weights") != WEIGHTS or store.has_citations():
        return None
    vocabulary = load_text_stats(store)
    return None if vocabulary is None else (vocabulary, state["stats"])


def related_to_text(store: ConnectionReadStore, corpus: Corpus, text: str, stats: dict[str, list[float]], limit: int,
                    config: Config, embedder: Any = None, nearest: Any = None) -> list[dict[str, Any]]:
    """Records related to a pasted text. A server passes the `embedder` it holds and `nearest`
    (vector, m -> corpus rows) from its search index, so a query costs the same at any size;
    without them the store's embedder is loaded and every vector is scored."""
    vector = text_vector(store, config, text, corpus.vectors.shape[1], embedder)
    m = min(max(limit, TEXT_CANDIDATES), len(corpus))
    near = nearest(vector, m) if nearest else ExactIndex(corpus.vectors).search(vector, m, chunk=1)[0][0]
    cand = _id_ordered(_text_candidates(corpus, np.asarray(near, dtype=np.int64)))
    return text_answers(store, corpus, text, vector, cand, stats, min(limit, len(corpus)))


def text_vector(store: ConnectionReadStore, config: Config, text: str, dim: int, embedder: Any = None) -> np.ndarray:
    """The pasted text's vector (1 x dim), by the `embedder` a caller holds or the store's."""
    from .embed import store_embedder

    if not text.strip():
        raise LandscapeError("related --text: expected some text, found nothing")
    vector = np.atleast_2d((embedder or store_embedder(store, config)).encode([text[:20_000]]))
    if vector.shape[1] != dim:  # a refit stored, records not re-embedded yet
        raise NotBuiltError("the records are not embedded with the store's model yet: run `landscape build`"
                            " (or wait for the build that is running)")
    return vector


def text_answers(store: ConnectionReadStore, corpus: Corpus, text: str, vector: np.ndarray, cand: np.ndarray,
                 stats: dict[str, list[float]], k: int,
                 prepare: Callable[[list[int]], None] | None = None) -> list[dict[str, Any]]:
    """The k best of the candidate rows `cand` (1 x m, in id order) for the pasted text, with
    reasons; `prepare` is handed the answers' rows before their reasons are worked out."""
    q = corpus.texts_as_queries([text[:20_000]], vector)
    score, sig = corpus.pair_scores(q, cand, stats)
    idx, vals = top_k_rows(score, k)
    mine = find_phrases(text_keys(text), corpus.phrase_keys, corpus.phrase_words, corpus.prefixes)
    found = [(int(cand[0, col]), float(v), col) for col, v in zip(idx[0], vals[0]) if np.isfinite(v)]
    if prepare is not None:
        prepare([c for c, _, _ in found])
    named = corpus.nameable([c for c, _, _ in found])
    brief = store.record_brief([corpus.ids[c] for c, _, _ in found])
    return [{"id": corpus.ids[c], "title": brief[corpus.ids[c]]["title"], "score": round(v, 4),
             "reasons": corpus.reasons(None, c, sig, 0, col, named, query_concepts=mine)} for c, v, col in found]


TEXT_CANDIDATES = 100


def _text_candidates(corpus: Corpus, near: np.ndarray) -> np.ndarray:
    """A pasted text's candidates: its nearest records by meaning and their graph neighbours."""
    near = near[near >= 0]
    around = corpus.candidates(near[:HOPS])
    rows = list(dict.fromkeys([*near.tolist(), *around[around >= 0].tolist()]))
    return np.asarray([rows], dtype=np.int64)
