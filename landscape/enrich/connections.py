"""Connections: for every record, the k most related records, each with reasons a person can read.

The score of B for a query A combines five signals, each standardised by its mean and spread
over record pairs of the corpus (so no single one drowns the others):

    meaning   cosine of the embeddings
    lexical   cosine of TF-IDF vectors of title + abstract
    terms     the words A and B share, weighted by how often the corpus uses that word in its
              keyphrase lines when it appears in a text ("keyphraseness"), times its idf
    concepts  vocabulary phrases found in both texts (rarer phrases weigh more)
    keyphrases  B's own keyphrases (given or predicted) found in A's text, weighted as concepts
    authors   people on both author lists (capped at 3)

The weights were chosen by cross-validation on the papers outside the frozen test set (issue 17:
nDCG@10 against the keyphrase-overlap proxy; the keyphrases signal raised it from 1.056x to about
1.07x the BM25 + MiniLM fusion on held-out development queries). Note that the proxy reads
keyphrase lines too, so that signal's gain on it may overstate what a reader sees.

What the score never reads: A's own given keyphrases and A's area. Concepts and keyphraseness
come from the *text* of A and B, with a vocabulary and statistics learned from the keyphrase
lines of records other than A (a phrase or word count that only A contributes is taken out when
A is the query). So a paper that arrives without keyphrases or an area is ranked exactly as one
that has them (tests/test_connections.py wipes them and checks). Reasons may still name any
concept the two records share, given or predicted.

Candidates come from the build's neighbour graph (enrich/neighbours.py): a record is scored
against its graph neighbours and the neighbours of its nearest few, never against every record,
so the work grows with n times the candidates, not with n squared. Eight hops rather than three
(about 1.5x the candidates) raised nDCG@10 by 0.003 on both development settings (issue 17).

When the store holds citation links, enrich/citations.py adds its own signals on top of the
combined score (cites or cited by, bibliographic coupling, co-citation, each with a stated
weight), its reasons, and the records linked by citation to the candidates; without links the
Corpus has no Citations and nothing here changes.

`landscape build` computes only what is missing: records whose content changed or that are new,
and existing records a newcomer now outranks among their candidates (their lists are
recomputed); those are looked for among the newcomers' own graph neighbourhoods, never by a
scan of every record. The statistics are refitted when the corpus has grown by a quarter since
the last full computation, or on --full, from a bounded sample of record pairs.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Config
from ..engine import Worker
from ..models import LandscapeError, NotBuiltError
from ..store.interfaces import ConnectionReadStore, ConnectionStore
from ..text import STOPWORDS, content_tokens, tokens
from .citations import Citations, citations_for, merge_candidates
from .citations import state_of as citation_state
from .concepts.normalise import phrase_key, text_keys
from .connection_rows import author_rows, binary, concept_rows, phrase_rows
from .connection_text import (
    _csr,
    _drop_contained,
    _l2_rows,
    _row,
    _row_dots,
    _squared,
    csr,
    find_phrases,
    phrase_prefixes,
)
from .neighbours import Graph, record_graph, top_k_rows
from .terms import RecordTerms, save_terms
from .text_related import save_text_stats

if TYPE_CHECKING:
    from .pipeline import BuildContext

VERSION = "2"
WEIGHTS = {"meaning": 1.0, "lexical": 0.5, "terms": 0.5, "concepts": 0.1, "keyphrases": 0.4}
AUTHOR_WEIGHT = 0.3
AUTHOR_CAP = 3
STATE_ARTIFACT = "connections:state"
MARKS = "connections:marks"  # meta: the records marked computed and the k lists were cut to, after the last run
REFIT_GROWTH = 1.25
CHUNK = 128
HOPS = 8  # candidates: graph neighbours plus the neighbours of the nearest HOPS of them
STATS_ROWS = 256
STATS_COLS = 4096


@dataclass
class QuerySide:
    """What one or more queries contribute to each signal (rows line up with the queries)."""

    vectors: np.ndarray
    lexical: Any
    terms: Any
    concepts: Any
    authors: Any | None = None
    rows: np.ndarray | None = None  # the queries' corpus rows (records as queries only)


@dataclass
class Corpus:
    """Every record's signals, built from the store in one pass."""

    ids: list[str]
    vectors: np.ndarray
    vocab: dict[str, int]
    idf: np.ndarray
    lexical: Any  # n x V tf-idf, rows l2-normalised
    present: Any  # n x V binary: the word is in the record's text
    kp_count: np.ndarray  # V: records whose text and given keyphrase line both hold the word
    text_count: np.ndarray  # V: records whose text holds the word
    kp_own: Any  # n x V binary: the word is in this record's text and its given keyphrases
    phrase_keys: dict[str, int]
    phrase_names: list[str]
    phrase_idf: np.ndarray
    matches: Any  # n x P binary: the phrase occurs in the record's text
    own_only: Any  # n x P binary: matches attested by no record's phrases but this one's given ones
    authors: Any  # n x A binary
    author_names: list[str]
    areas: list[str | None]
    concepts: Any = None  # n x C binary: the record's concepts, any source (for reasons)
    concept_list: list[str] = field(default_factory=list)  # each column's concept name
    carried: Any = None  # n x P binary: the record's own keyphrases (any source) in the vocabulary
    pos: dict[str, int] = field(default_factory=dict)
    graph: Graph | None = None
    citations: Citations | None = None  # None: the store has no citation links
    terms_read: Any = None  # the RecordTerms read, for the build to store (enrich/terms.py)
    _keys: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.pos = {rid: i for i, rid in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    # --- building ----------------------------------------------------------------------------

    @classmethod
    def from_store(cls, store: ConnectionReadStore, config: Config, fresh: bool = False,
                   keep_terms: Callable[[RecordTerms], None] | None = None) -> Corpus:
        """The corpus, reading only texts new or changed since the stored terms (enrich/terms.py;
        all of them when `fresh`, or when the corpus has grown past the terms' refresh).
        `keep_terms` is handed the terms as soon as they are read, before the rest of the corpus
        is built: writing them then, not after the ranking, keeps SQLite's copy of the artifact
        (twice its 0.7 GB at a million records, while the row is made) off the build's peak."""
        from .embed import record_embeddings
        from .terms import record_terms

        ids, vectors = record_embeddings(store, config)
        if not ids and store.count_records():
            raise NotBuiltError("the records are not embedded with the store's model yet: run `landscape build`"
                                " (or wait for the build that is running)")
        if not ids:
            raise LandscapeError("the store has no records to connect (run `landscape ingest` first)")
        areas = store.record_areas()  # one scan of an index (titles are read for the answers only)
        pos = {rid: i for i, rid in enumerate(ids)}
        pr = phrase_rows(store, pos)
        keys, names = pr.keys, pr.names
        max_len = max((len(k.split()) for k in keys), default=1)
        rt = record_terms(store, ids, keys, max_len, phrase_prefixes(keys), fresh)
        if keep_terms is not None:
            keep_terms(rt)
        vocab = {t: j for j, t in enumerate(rt.terms)}
        n, idf = len(ids), rt.idf
        lexical = rt.counts.copy()
        lexical.data = ((1 + np.log(lexical.data)) * idf[lexical.indices]).astype(np.float32)
        lexical = _l2_rows(lexical)
        present = rt.counts.copy()
        present.data = np.ones_like(present.data)
        kp_words = pr.given_columns(
            lambda c: (vocab[t] for t in tokens(pr.phrases[c]) if t not in STOPWORDS and t in vocab), len(vocab))
        kp_own = _csr(present.multiply(kp_words))
        p = len(names)
        matches = rt.found
        phrase_df = np.asarray(matches.sum(axis=0)).ravel()
        phrase_idf = np.log((n + 1) / (phrase_df + 1)).astype(np.float32)
        lone = set(np.flatnonzero(pr.attested <= 1).tolist())
        given_keys = pr.given_columns(lambda c: (j for j in [int(pr.phrase_keys[c])] if j in lone), p)
        own_only = _csr(matches.multiply(given_keys))
        authors, author_names = author_rows(store, pos)
        concepts, concept_list = concept_rows(store, pos)
        return cls(
            ids=ids, vectors=vectors, vocab=vocab, idf=idf, lexical=lexical, present=present,
            kp_count=np.asarray((present.multiply(kp_own)).sum(axis=0)).ravel().astype(np.float32),
            text_count=np.asarray(present.sum(axis=0)).ravel().astype(np.float32), kp_own=kp_own,
            phrase_keys=keys, phrase_names=names, phrase_idf=phrase_idf, matches=matches,
            own_only=own_only, authors=authors, author_names=author_names,
            areas=[areas.get(i) for i in ids],
            concepts=concepts, concept_list=concept_list, carried=pr.carried, terms_read=rt,
        )

    # --- the query side ------------------------------------------------------------------------

    def records_as_queries(self, rows: Sequence[int]) -> QuerySide:
        """Corpus records as queries, each with its own keyphrases left out of every statistic."""
        rows = list(rows)
        present = self.present[rows]
        kp_own = self.kp_own[rows]
        keyness = present.multiply(self.kp_count) - kp_own
        keyness = keyness.multiply(1.0 / np.maximum(self.text_count, 1))  # (kp - own) / ((text - 1) + 1); 0: a word only deleted records had
        terms = _squared(keyness.multiply(self.idf))
        concepts = (self.matches[rows] - self.own_only[rows]).multiply(self.phrase_idf**2)
        return QuerySide(
            vectors=self.vectors[rows], lexical=self.lexical[rows], terms=_csr(terms),
            concepts=_csr(concepts), authors=self.authors[rows], rows=np.asarray(rows, dtype=np.int64),
        )

    def texts_as_queries(self, texts: Sequence[str], vectors: np.ndarray) -> QuerySide:
        """Texts from outside the corpus (a pasted abstract)."""
        words = [Counter(content_tokens(t)) for t in texts]
        v = len(self.vocab)
        lexical = _l2_rows(csr([
            {self.vocab[t]: (1 + math.log(c)) * self.idf[self.vocab[t]] for t, c in w.items() if t in self.vocab}
            for w in words
        ], v))
        terms = csr([
            {self.vocab[t]: (self.kp_count[self.vocab[t]] / (self.text_count[self.vocab[t]] + 1)
                             * self.idf[self.vocab[t]]) ** 2 for t in w if t in self.vocab}
            for w in words
        ], v)
        concepts = csr([
            {j: float(self.phrase_idf[j] ** 2)
             for j in find_phrases(text_keys(t), self.phrase_keys, self.phrase_words, self.prefixes)}
            for t in texts
        ], len(self.phrase_names))
        return QuerySide(vectors=np.atleast_2d(vectors), lexical=lexical, terms=terms, concepts=concepts)

    # --- scoring -------------------------------------------------------------------------------

    def signals(self, q: QuerySide, cols: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Raw signal matrices (queries x candidates) for the chosen candidate columns."""
        sel = slice(None) if cols is None else list(cols)
        out = {
            "meaning": q.vectors @ self.vectors[sel].T,
            "lexical": (q.lexical @ self.lexical[sel].T).toarray(),
            "terms": (q.terms @ self.present[sel].T).toarray(),
            "concepts": (q.concepts @ self.matches[sel].T).toarray(),
            "keyphrases": (q.concepts @ self.carried[sel].T).toarray(),
        }
        if q.authors is not None:
            out["authors"] = (q.authors @ self.authors[sel].T).toarray()
        else:
            out["authors"] = np.zeros_like(out["meaning"])
        return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}

    def candidates(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Each row's candidate columns from the neighbour graph (-1 pads)."""
        if self.graph is None:
            raise LandscapeError("connections: the corpus has no neighbour graph (run `landscape build`)")
        cand = self.graph.candidates(rows, HOPS)
        return cand if self.citations is None else merge_candidates(cand, self.citations.candidates(rows))

    def pair_signals(self, q: QuerySide, cand: np.ndarray) -> dict[str, np.ndarray]:
        """Raw signals of each query row against its own candidates (queries x candidate slots;
        0 in the pad slots). Only real candidates are scored: in a small corpus most of a row's
        slots are pads (its neighbours' neighbours overlap), and each pair's signals are
        computed on their own, so leaving the pads out changes no value."""
        shape = cand.shape
        real = (cand >= 0).ravel()
        r = np.repeat(np.arange(shape[0]), shape[1])[real]
        c = cand.ravel()[real]
        out = {
            "meaning": np.einsum("ij,ij->i", q.vectors[r], self.vectors[c]),
            "lexical": _row_dots(q.lexical[r], self.lexical[c]),
            "terms": _row_dots(q.terms[r], self.present[c]),
            "concepts": _row_dots(q.concepts[r], self.matches[c]),
            "keyphrases": _row_dots(q.concepts[r], self.carried[c]),
            "authors": _row_dots(q.authors[r], self.authors[c]) if q.authors is not None else np.zeros(len(r)),
        }
        if self.citations is not None and q.rows is not None:
            out.update(self.citations.pair_signals(q.rows[r], c))
        return {k: _scattered(v, real, shape) for k, v in out.items()}

    def pair_scores(self, q: QuerySide, cand: np.ndarray, stats: dict[str, list[float]]
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        sig = self.pair_signals(q, cand)
        score = self.combine(sig, stats)
        if "cites" in sig:
            score += Citations.score(sig)
        score[cand < 0] = -np.inf
        return score, sig

    def fit_stats(self, sample: int = STATS_ROWS, columns: int = STATS_COLS) -> dict[str, list[float]]:
        """Mean and spread of each signal over record pairs: queries and candidates each spread
        evenly over the ids (every pair of a small corpus; a bounded sample of a large one)."""
        n = len(self)
        rows = sorted(set(np.linspace(0, n - 1, num=min(sample, n)).astype(int).tolist()))
        cols = sorted(set(np.linspace(0, n - 1, num=min(columns, n)).astype(int).tolist()))
        sig = self.signals(self.records_as_queries(rows), cols if len(cols) < n else None)
        at = {c: j for j, c in enumerate(cols)}
        mask = np.ones((len(rows), len(cols)), dtype=bool)
        for r, q in enumerate(rows):
            if q in at:
                mask[r, at[q]] = False
        stats = {}
        for name in WEIGHTS:
            values = sig[name][mask] if mask.any() else np.zeros(1)
            stats[name] = [float(values.mean()), float(values.std()) or 1.0]
        return stats

    def combine(self, sig: dict[str, np.ndarray], stats: dict[str, list[float]]) -> np.ndarray:
        score = np.zeros_like(sig["meaning"])
        for name, weight in WEIGHTS.items():
            mean, spread = stats[name]
            score += weight * (sig[name] - mean) / (spread or 1.0)
        score += AUTHOR_WEIGHT * np.minimum(sig["authors"], AUTHOR_CAP)
        return score

    def scores(self, q: QuerySide, stats: dict[str, list[float]], cols: Sequence[int] | None = None,
               exclude: Sequence[int] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        sig = self.signals(q, cols)
        score = self.combine(sig, stats)
        if exclude is not None:
            for r, c in enumerate(exclude):
                if c is not None and c >= 0:
                    score[r, c] = -np.inf
        return score, sig

    # --- reasons -------------------------------------------------------------------------------

    def reasons(self, q: int | None, c: int, sig: dict[str, np.ndarray], r: int, col: int,
                named: dict[int, set[int]], query_concepts: set[int] | None = None,
                query_area: str | None = None) -> list[str]:
        """Why candidate c relates to query q (row r, column col of the signal matrices); `named`:
        `nameable` of (at least) both records, worked out by the caller for all its pairs at once."""
        out = [f"meaning similarity {float(sig['meaning'][r, col]):.2f}"]
        mine = query_concepts if query_concepts is not None else named[q] if q is not None else set()
        names, idf = self.phrase_names, self.phrase_idf
        ranked = sorted(mine & named[c], key=lambda j: (len(names[j].split()) == 1, -idf[j], names[j]))
        shared = _drop_contained([names[j] for j in ranked], self.key_of, 5)
        if shared:
            out.append("shared concepts: " + ", ".join(shared))
        if q is not None:
            common = set(_row(self.authors, q)) & set(_row(self.authors, c))
            if common:
                authors = sorted(self.author_names[a] for a in common)
                out.append("shared authors: " + ", ".join(authors[:5]) + (" and others" if len(authors) > 5 else ""))
            if "cites" in sig:
                out.extend(Citations.reasons(sig, r, col))
            query_area = self.areas[q]
        if query_area and self.areas[c] and query_area == self.areas[c]:
            out.append(f"same area: {self.areas[c]}")
        if not shared:
            terms = self.shared_terms(q, c)
            if terms:
                out.append("shared terms: " + ", ".join(terms))
        return out

    def concept_names(self, i: int) -> list[str]:
        """Names of record i's concepts, whatever their source."""
        return [] if self.concepts is None else [self.concept_list[j] for j in _row(self.concepts, i)]

    def nameable(self, rows: Sequence[int] | np.ndarray) -> dict[int, set[int]]:
        """The phrases each record's reasons may name (row -> phrase columns): those in its text
        and the phrases of its concepts of any source, less the phrases in over a tenth of the
        corpus (they explain little) and the single words the concepts step did not make concepts
        of it (alone, 'photometric' or 'theory' is a fragment of longer phrases). A concept is
        shared when both records may name it. Worked out for many records at once by sparse
        products: a build asks for a chunk's queries and their connections together."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        to_phrase, single_phrase, multi_ok, single_ok = self._naming
        held = self.matches[rows]
        if self.concepts is not None:
            concepts = self.concepts[rows]
            held = binary(held + concepts @ to_phrase)
            named = binary(held @ multi_ok + binary(held.multiply(concepts @ single_phrase)) @ single_ok)
        else:
            named = binary(held @ multi_ok)
        return {int(i): set(_row(named, a).tolist()) for a, i in enumerate(rows)}

    @cached_property
    def _naming(self) -> tuple[Any, Any, Any, Any]:
        """What `nameable` multiplies by: concepts -> the phrase of their key (C x P), single-word
        concepts -> the phrases whose name has their key (C x P), and the diagonal masks of rare
        phrases of several words and of one word (P x P)."""
        from scipy.sparse import csr_matrix

        p = len(self.phrase_names)
        by_name: dict[str, list[int]] = {}
        for j, name in enumerate(self.phrase_names):
            by_name.setdefault(self.key_of(name), []).append(j)
        pairs, single_pairs = [], []
        for c, name in enumerate(self.concept_list):
            at = self.phrase_keys.get(self.key_of(name))
            if at is not None:
                pairs.append((c, at))
            if " " not in name:
                single_pairs.extend((c, k) for k in by_name.get(self.key_of(name), ()))

        def mapping(cells: list[tuple[int, int]]) -> Any:
            at = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
            return csr_matrix((np.ones(len(at), dtype=np.float32), (at[:, 0], at[:, 1])),
                              shape=(len(self.concept_list), p))

        rare = self.phrase_idf > math.log(10)
        multi = np.fromiter((" " in x for x in self.phrase_names), dtype=bool, count=p)
        def mask(keep: np.ndarray) -> Any:
            at = np.flatnonzero(keep)
            return csr_matrix((np.ones(len(at), dtype=np.float32), (at, at)), shape=(p, p))

        return mapping(pairs), mapping(single_pairs), mask(rare & multi), mask(rare & ~multi)

    def key_of(self, name: str) -> str:
        """phrase_key(name), kept: reasons ask for the same few thousand names millions of times."""
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = phrase_key(name)
        return key

    def shared_terms(self, q: int | None, c: int, top: int = 3) -> list[str]:
        if q is None:
            return []
        common = set(_row(self.present, q)) & set(_row(self.present, c))
        weight = {j: float(self.kp_count[j] / self.text_count[j] * self.idf[j]) for j in common}
        best = sorted(weight, key=lambda j: (-weight[j], j))[:top]
        return [self.terms[j] for j in best if weight[j] > 0]

    @cached_property
    def prefixes(self) -> set[str]:
        return phrase_prefixes(self.phrase_keys)

    @cached_property
    def phrase_words(self) -> int:
        """Words in the longest known phrase (how far a match may reach)."""
        return max((len(k.split()) for k in self.phrase_keys), default=1)

    @cached_property
    def terms(self) -> list[str]:
        """Vocabulary words by column."""
        return sorted(self.vocab, key=self.vocab.__getitem__)


# --- building and reading ------------------------------------------------------------------------


def corpus_for(store: ConnectionReadStore, config: Config, fresh: bool = False,
               keep_terms: Callable[[RecordTerms], None] | None = None) -> Corpus:
    """The store's Corpus, built once per store version and model (see landscape.snapshot);
    `fresh` re-reads every text with a new idf (a full build) instead; `keep_terms` as in
    Corpus.from_store (called when the corpus is built, not when a kept one is reused)."""
    from ..snapshot import SNAPSHOTS
    from .embed import store_embedder

    model = (store.get_meta("embedder") or store_embedder(store, config).name) if store.get_meta("embedder_spec") \
        else config.embedder
    corpus = _with_citations(store, config, True, keep_terms) if fresh else SNAPSHOTS.get(
        store, f"corpus:{model}:{len(WEIGHTS)}", lambda s: _with_citations(s, config, False, keep_terms))
    # a copy per call: the snapshot is shared by threads, the graph says what this build updated
    return replace(corpus, graph=record_graph(store, config, corpus.ids, corpus.vectors))


def _with_citations(store: ConnectionReadStore, config: Config, fresh: bool = False,
                    keep_terms: Callable[[RecordTerms], None] | None = None) -> Corpus:
    corpus = Corpus.from_store(store, config, fresh=fresh, keep_terms=keep_terms)
    corpus.citations = citations_for(store, corpus.ids)
    return corpus


def load_state(store: ConnectionReadStore) -> dict[str, Any] | None:
    """The stored connection state, or None when there is none this version can read (JSON only:
    anything else, a planted pickle included, is never interpreted, and the step recomputes)."""
    data = store.get_artifact(STATE_ARTIFACT)
    if data is None:
        return None
    try:
        state = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def top_connections(corpus: Corpus, rows: Sequence[int], stats: dict[str, list[float]],
                    k: int) -> dict[str, list[tuple[str, float, list[str]]]]:
    """Ranked (other id, score, reasons) for each query row, ties broken by id."""
    out: dict[str, list[tuple[str, float, list[str]]]] = {}
    for part in chunked_connections(corpus, rows, stats, k):
        out.update(part)
    return out


def chunked_connections(corpus: Corpus, rows: Sequence[int], stats: dict[str, list[float]],
                        k: int) -> Iterator[dict[str, list[tuple[str, float, list[str]]]]]:
    """`top_connections` CHUNK query rows at a time, so a build writes each part as it comes
    and never holds every record's list at once."""
    rows = list(rows)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        cand = _id_ordered(corpus.candidates(chunk))
        score, sig = corpus.pair_scores(corpus.records_as_queries(chunk), cand, stats)
        idx, vals = top_k_rows(score, k)
        picked = np.take_along_axis(cand, idx, axis=1)
        named = corpus.nameable(np.concatenate([np.asarray(chunk, dtype=np.int64), picked[picked >= 0]]))
        yield {
            corpus.ids[q]: [
                (corpus.ids[cand[r, col]], round(float(v), 4),
                 corpus.reasons(q, int(cand[r, col]), sig, r, col, named))
                for col, v in zip(idx[r], vals[r])
                if np.isfinite(v)
            ]
            for r, q in enumerate(chunk)
        }


def _scattered(values: Any, real: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Flat values of the real slots laid out in the slots' shape, 0 in the pads."""
    out = np.zeros(real.shape, dtype=np.float32)
    out[real] = np.asarray(values, dtype=np.float32).ravel()
    return out.reshape(shape)


class TopConnections:
    """The engine's connections worker: query rows in, their ranked connections out. On Ray the
    corpus goes to each actor once (without the term counts the build stores, which it never reads)."""

    def __init__(self, corpus: Corpus, stats: dict[str, list[float]], k: int):
        self.corpus = corpus
        self.stats = stats
        self.k = k

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "corpus": replace(self.corpus, terms_read=None)}

    def __call__(self, rows: Sequence[int]) -> dict[str, list[tuple[str, float, list[str]]]]:
        return top_connections(self.corpus, rows, self.stats, self.k)


def _id_ordered(cand: np.ndarray) -> np.ndarray:
    """Each row's candidates in id order, pads last: top_k_rows breaks ties by column, so ties
    break by id as they did when every record was a column."""
    top = np.iinfo(np.int64).max
    ordered = np.sort(np.where(cand < 0, top, cand), axis=1)
    return np.where(ordered == top, -1, ordered)


class ConnectionsStep:
    """Compute the connections that are missing or stale, and only those."""

    name = "connections"

    def __init__(self, config: Config):
        self.config = config

    def run(self, ctx: BuildContext) -> dict[str, int]:
        store, k = ctx.store, self.config.connections_k
        state = load_state(store)
        if state is None and store.get_artifact(STATE_ARTIFACT) is not None:
            ctx.log("connections: the stored state is not in a format this version reads (recomputing)")
        model = store.get_meta("embedder")
        n = store.count_records()
        full = (
            bool(getattr(ctx, "full", False)) or state is None or state.get("version") != VERSION
            or state.get("model") != model or state.get("k") != k or n > state.get("n", 0) * REFIT_GROWTH
            or state.get("weights") != WEIGHTS or state.get("citations") != citation_state(store)
        )
        if not full and not (store.stale_connection_ids() or _short_ids(store, min(k, n - 1))):
            return {"computed": 0, "updated": 0, "unchanged": n}  # nothing to read the corpus for
        saved: list[RecordTerms] = []
        corpus = corpus_for(store, self.config, fresh=full, keep_terms=lambda rt: saved.append(_save_terms(store, rt)))
        if not saved and corpus.terms_read is not None:  # a corpus this process had read before
            _save_terms(store, corpus.terms_read)
        n = len(corpus)
        k_eff = min(k, n - 1)
        if full:
            stats = corpus.fit_stats()
            dirty = set(corpus.ids)
        else:
            stats = state["stats"]
            dirty = store.stale_connection_ids() | _short_ids(store, k_eff)
        affected = set() if full else self._affected(store, corpus, dirty, stats, k_eff)
        todo = sorted((dirty | affected) & set(corpus.pos))
        with store.transaction(), store.rewriting_connections() if full else nullcontext():
            for part in self._ranked(ctx, corpus, [corpus.pos[i] for i in todo], stats, k_eff):
                store.replace_connections_many(part.items())
            store.mark_connections_fresh(todo)
            if full:
                new_state = {"version": VERSION, "model": model, "k": k, "n": n, "stats": stats,
                             "weights": WEIGHTS}
                if citation_state(store):
                    new_state["citations"] = citation_state(store)
                store.put_artifact(STATE_ARTIFACT, json.dumps(new_state, sort_keys=True).encode())
            store.set_meta(MARKS, json.dumps({"marks": store.connection_marks(), "k": k_eff}))
            save_text_stats(store, corpus)
        return {"computed": len(dirty & set(corpus.pos)), "updated": len(affected - dirty),
                "unchanged": n - len(todo), "read": corpus.terms_read.read if corpus.terms_read else n}

    def _ranked(self, ctx: BuildContext, corpus: Corpus, rows: list[int], stats: dict[str, list[float]],
                k: int) -> Iterator[dict[str, list[tuple[str, float, list[str]]]]]:
        """top_connections of `rows`, run by the build's engine in whole CHUNKs of rows, part by
        part as they come (the step writes each part and never holds every record's list)."""
        size = max(CHUNK, ctx.engine.batch_size(len(rows), CHUNK * 16) // CHUNK * CHUNK)
        worker = Worker(TopConnections(corpus, stats, k), label="connections")
        yield from ctx.engine.map_batches(worker, (rows[s : s + size] for s in range(0, len(rows), size)))

    def _affected(self, store: ConnectionReadStore, corpus: Corpus, dirty: set[str], stats: dict[str, list[float]],
                  k: int) -> set[str]:
        """Untouched records whose lists a dirty record now enters, or that point at one.

        A dirty record can only enter the list of a record that has it among its candidates, and
        those are looked for in the dirty records' own graph neighbourhoods (the graph's
        reverse-neighbour approximation): the work grows with the dirty records, not the corpus.
        """
        if not dirty:
            return set()
        dirty_rows = np.zeros(len(corpus), dtype=bool)
        dirty_rows[[corpus.pos[i] for i in dirty if i in corpus.pos]] = True
        affected = store.ids_connected_to(dirty) - dirty
        near = corpus.candidates(np.flatnonzero(dirty_rows))
        around = sorted(set(near[near >= 0].tolist()) - set(np.flatnonzero(dirty_rows).tolist()))
        kth = store.kth_connection_scores(k, [corpus.ids[i] for i in around])
        for start in range(0, len(around), CHUNK):
            chunk = around[start : start + CHUNK]
            cand = _only(corpus.candidates(chunk), dirty_rows)
            if not cand.size:
                continue
            score, _ = corpus.pair_scores(corpus.records_as_queries(chunk), cand, stats)
            best = score.max(axis=1)
            for r, q in enumerate(chunk):
                rid = corpus.ids[q]
                if best[r] > kth.get(rid, -np.inf):
                    affected.add(rid)
        return affected


def _save_terms(store: ConnectionStore, rt: RecordTerms) -> RecordTerms:
    """The terms read from texts, stored in their own transaction: they hold for whatever the
    step does next (each row is checked against its record's content hash when read back)."""
    if rt.read:
        with store.transaction():
            save_terms(store, rt)
    return rt


def _short_ids(store: ConnectionReadStore, k: int) -> set[str]:
    """Records holding fewer than k connections. A list loses rows only when a record in it is
    deleted (its connections and its mark go with it) and is cut shorter only when the corpus was
    smaller than k + 1: unless there are fewer marks or a larger k than after the last run, no
    list can be short and the scan of every connection (8 s at a million records) is skipped."""
    try:
        last = json.loads(store.get_meta(MARKS) or "")
        unchanged = int(last["k"]) >= k and store.connection_marks() >= int(last["marks"])
    except (ValueError, KeyError, TypeError):
        unchanged = False
    return set() if unchanged else store.short_connection_ids(k)


def _only(cand: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Each row's candidates that `keep` marks, packed to the left and padded with -1: only those
    are scored (a few of a row's hundred-odd candidates are new records)."""
    kept = (cand >= 0) & keep[np.maximum(cand, 0)]
    width = int(kept.sum(axis=1).max()) if kept.size else 0
    order = np.argsort(~kept, axis=1, kind="stable")[:, :width]
    return np.take_along_axis(np.where(kept, cand, -1), order, axis=1)


def step(config: Config) -> ConnectionsStep:
    return ConnectionsStep(config)
