"""Records related to a pasted text, reading only the text's candidates, at any store size.

`related --text` and the site's "related to this text" scored the text against the connections
corpus, which holds every record's word, phrase, author and concept rows: at a million records
the first query of a process read all of them (73 s, 5.9 GB; docs/serving-scale.md), and every
server worker held its own copy. Yet a text is only ever scored against its candidates: its
nearest records by meaning and their neighbourhoods in the graph, some two thousand records. So
this reads just those records' rows (their texts tokenised again, their keyphrases and concepts)
and, of the whole corpus, only what the text's own side needs: the word vocabulary with its idf
and keyphraseness counts, and the phrase vocabulary with its idf. The connections step stores
those (ARTIFACT) each time it reads the corpus.

The answer is the corpus's own (tests/test_related_text.py compares the two on both backends),
with one difference by design: a phrase that entered the vocabulary after the records' terms
were stored is looked for only in new texts by the build until its next refresh
(enrich/terms.py), and here in every candidate's text. Where the store holds citation links
(they add candidates of their own), has no stored vocabulary (built by an older version) or no
fitted score statistics, `related` reads the whole corpus as before.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts import Artifact, pack, unpack
from ..config import Config
from ..store.interfaces import ConnectionReadStore, ConnectionStore
from ..text import content_tokens
from .concepts.normalise import phrase_key, text_keys
from .connection_text import _l2_rows, csr, find_phrases, phrase_prefixes
from .neighbours import graph_settings
from .predictors import array_strings, strings_array

if TYPE_CHECKING:
    from .connections import Corpus

ARTIFACT = "connections:text"
KIND = "connections-text"
FORMAT = 1


@dataclass
class TextStats:
    """What a pasted text's side of the score reads from the whole corpus."""

    terms: list[str]  # the word of each column
    idf: np.ndarray
    kp_count: np.ndarray
    text_count: np.ndarray
    keys: list[str]  # the phrase key of each column
    names: list[str]
    phrase_idf: np.ndarray

    @cached_property
    def vocab(self) -> dict[str, int]:
        return {t: j for j, t in enumerate(self.terms)}

    @cached_property
    def phrase_keys(self) -> dict[str, int]:
        return {k: j for j, k in enumerate(self.keys)}

    @cached_property
    def prefixes(self) -> set[str]:
        return phrase_prefixes(self.phrase_keys)

    @cached_property
    def phrase_words(self) -> int:
        return max((len(k.split()) for k in self.keys), default=1)

    @cached_property
    def by_name(self) -> dict[str, list[int]]:
        """The phrase columns under the key of their display name (Corpus._naming's lookup)."""
        out: dict[str, list[int]] = {}
        for j, name in enumerate(self.names):
            out.setdefault(phrase_key(name), []).append(j)
        return out

    @cached_property
    def masks(self) -> tuple[Any, Any]:
        """Corpus._naming's diagonal masks: rare phrases of several words, and of one."""
        from scipy.sparse import csr_matrix

        p = len(self.names)
        rare = self.phrase_idf > math.log(10)
        multi = np.fromiter((" " in x for x in self.names), dtype=bool, count=p)

        def mask(keep: np.ndarray) -> Any:
            at = np.flatnonzero(keep)
            return csr_matrix((np.ones(len(at), dtype=np.float32), (at, at)), shape=(p, p))

        return mask(rare & multi), mask(rare & ~multi)


def save_text_stats(store: ConnectionStore, corpus: Corpus) -> None:
    arrays = {"terms": strings_array(corpus.terms), "idf": np.asarray(corpus.idf, dtype=np.float32),
              "kp_count": np.asarray(corpus.kp_count, dtype=np.float32),
              "text_count": np.asarray(corpus.text_count, dtype=np.float32),
              "keys": strings_array(sorted(corpus.phrase_keys, key=corpus.phrase_keys.__getitem__)),
              "names": strings_array(corpus.phrase_names), "phrase_idf": np.asarray(corpus.phrase_idf, dtype=np.float32)}
    store.put_artifact(ARTIFACT, pack(Artifact(KIND, FORMAT, {}, arrays)))


def load_text_stats(store: ConnectionReadStore) -> TextStats | None:
    """The stored vocabulary, or None where none is stored in a form this version reads."""
    artifact = unpack(store.get_artifact(ARTIFACT), KIND, FORMAT)
    if artifact is None:
        return None
    try:
        a = artifact.arrays
        stats = TextStats(array_strings(a["terms"]), a["idf"], a["kp_count"], a["text_count"],
                          array_strings(a["keys"]), array_strings(a["names"]), a["phrase_idf"])
    except (KeyError, ValueError):
        return None
    v, p = len(stats.terms), len(stats.keys)
    if not (len(stats.idf) == len(stats.kp_count) == len(stats.text_count) == v and len(stats.names) == p
            and len(stats.phrase_idf) == p):
        return None
    return stats


def candidate_ids(store: ConnectionReadStore, near: list[str], k: int, hops: int) -> set[str]:
    """The text's nearest records and, for the `hops` nearest of them, their graph neighbours and
    the neighbours of their `hops` nearest neighbours (Graph.candidates from the stored lists)."""
    def lists(ids: list[str]) -> dict[str, list[int]]:
        return {rid: np.frombuffer(others, dtype=np.int64)[:k].tolist() for rid, others, _ in store.graph_rows(ids)}

    seeds = near[:hops]
    first = lists(seeds)
    named = store.record_ids_by_label(r for row in first.values() for r in row[:hops])
    second = lists(sorted({named[r] for row in first.values() for r in row[:hops] if r in named}))
    rowids = {r for row in first.values() for r in row} | {r for row in second.values() for r in row}
    return set(near) | set(store.record_ids_by_label(rowids).values())


def text_corpus(store: ConnectionReadStore, stats: TextStats, model: str, ids: set[str]) -> Corpus:
    """A Corpus of the records `ids` that hold a vector under `model` (rows in id order), with the
    whole corpus's vocabularies and statistics: the candidates' rows as the corpus holds them
    (their concepts are given to the answers alone, by `with_concepts`)."""
    from scipy.sparse import csr_matrix

    from .connection_rows import binary
    from .connections import Corpus

    found = store.embedding_rows(model, ids)
    rows = sorted(found)
    n, v, p = len(rows), len(stats.terms), len(stats.keys)
    texts = store.record_texts(rows)
    counts = csr([{stats.vocab[t]: float(c) for t, c in Counter(content_tokens(texts.get(r, ""))).items()
                   if t in stats.vocab} for r in rows], v)
    lexical = counts.copy()
    lexical.data = ((1 + np.log(lexical.data)) * stats.idf[lexical.indices]).astype(np.float32)
    present = counts.copy()
    present.data = np.ones_like(present.data)
    matches = csr([dict.fromkeys(find_phrases(text_keys(texts.get(r, "")), stats.phrase_keys, stats.phrase_words,
                                              stats.prefixes), 1.0) for r in rows], p)
    at = {r: i for i, r in enumerate(rows)}
    carried: list[dict[int, float]] = [{} for _ in rows]
    for rid, phrase, _ in store.record_phrase_rows(rows):
        j = stats.phrase_keys.get(phrase_key(phrase))
        if j is not None:
            carried[at[rid]][j] = 1.0
    empty = csr_matrix((n, 0), dtype=np.float32)
    corpus = Corpus(
        ids=rows, vectors=np.stack([found[r] for r in rows]) if rows else np.zeros((0, 0), dtype=np.float32),
        vocab=stats.vocab, idf=stats.idf, lexical=_l2_rows(lexical), present=present, kp_count=stats.kp_count,
        text_count=stats.text_count, kp_own=csr_matrix((n, v), dtype=np.float32), phrase_keys=stats.phrase_keys,
        phrase_names=stats.names, phrase_idf=stats.phrase_idf, matches=binary(matches),
        own_only=csr_matrix((n, p), dtype=np.float32), authors=empty, author_names=[], areas=[None] * n,
        carried=binary(csr(carried, p)),
    )
    corpus.__dict__.update(prefixes=stats.prefixes, phrase_words=stats.phrase_words)
    return corpus


def with_concepts(store: ConnectionReadStore, stats: TextStats, corpus: Corpus, rows: list[int]) -> None:
    """Give the corpus rows `rows` their concepts (any source), what their reasons may name: only
    the answers need them, not every candidate."""
    from .connection_rows import binary

    names = store.record_concept_names([corpus.ids[r] for r in rows])
    concept_list = sorted({c for cs in names.values() for c in cs})
    column = {c: j for j, c in enumerate(concept_list)}
    wanted = set(rows)
    corpus.concepts = binary(csr([dict.fromkeys((column[c] for c in names.get(rid, [])), 1.0) if i in wanted else {}
                                  for i, rid in enumerate(corpus.ids)], len(concept_list)))
    corpus.concept_list = concept_list
    corpus.__dict__["_naming"] = _naming(stats, concept_list, corpus)


def _naming(stats: TextStats, concept_list: list[str], corpus: Corpus) -> tuple[Any, Any, Any, Any]:
    """Corpus._naming for these concepts, from the stored vocabulary's lookups (not a pass over
    every phrase per query)."""
    from scipy.sparse import csr_matrix

    pairs: list[tuple[int, int]] = []
    single_pairs: list[tuple[int, int]] = []
    for c, name in enumerate(concept_list):
        key = corpus.key_of(name)
        if key in stats.phrase_keys:
            pairs.append((c, stats.phrase_keys[key]))
        if " " not in name:
            single_pairs.extend((c, j) for j in stats.by_name.get(key, ()))

    def mapping(cells: list[tuple[int, int]]) -> Any:
        at = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
        return csr_matrix((np.ones(len(at), dtype=np.float32), (at[:, 0], at[:, 1])),
                          shape=(len(concept_list), len(stats.keys)))

    multi, single = stats.masks
    return mapping(pairs), mapping(single_pairs), multi, single


def related_by_stats(store: ConnectionReadStore, stats: TextStats, text: str, score_stats: dict[str, list[float]],
                     limit: int, config: Config, embedder: Any = None) -> list[dict[str, Any]]:
    """related.related_to_text, reading only the text's candidates (see the module's note)."""
    from .connections import HOPS
    from .related import TEXT_CANDIDATES, text_answers, text_vector

    model = store.get_meta("embedder") or ""
    vector = text_vector(store, config, text, store.embedding_dim(model), embedder)
    n = store.count_records()
    near = [rid for rid, _ in store.nearest(model, vector, min(max(limit, TEXT_CANDIDATES), n))[0]]
    corpus = text_corpus(store, stats, model, candidate_ids(store, near, graph_settings(config).k, HOPS))
    if not len(corpus):
        return []
    cand = np.arange(len(corpus), dtype=np.int64)[None, :]
    return text_answers(store, corpus, text, vector, cand, score_stats, min(limit, n),
                        prepare=lambda rows: with_concepts(store, stats, corpus, rows))
