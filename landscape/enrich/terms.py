"""The words and vocabulary phrases of every record, kept between builds for connections.

Tokenising every title and abstract, and looking for every vocabulary phrase in it, is most of
what reading the connections corpus costs, and it depends only on the record's text. So the
per-record word counts and phrase matches are stored (an artifact of CSR arrays, never pickle)
with each record's content hash, and a build reads only the records new or changed since. The
artifact takes about 6 bytes per distinct word of each text (about 0.5 GB at a million
abstracts; SQLite's default limit on one value is 1 GB).

IDF is frozen with them: a word already known keeps its idf; a word first seen in new records
gets the idf of its count among all records at that time. Everything is re-read and the idf
recomputed (a refresh) when the corpus has grown by more than REFRESH_GROWTH since the last
refresh, on `build --full`, or when nothing readable is stored. Until then a vocabulary phrase
that first appears in new records' keyphrases is looked for only in new or changed texts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..artifacts import Artifact, pack, unpack
from ..store.interfaces import ConnectionReadStore, EmbedStore
from ..text import content_tokens
from .concepts.normalise import text_keys
from .predictors import array_strings, strings_array

ARTIFACT = "connections:terms"
KIND = "connections-terms"
FORMAT = 1
REFRESH_GROWTH = 1.25


@dataclass
class RecordTerms:
    """Word counts and phrase matches of the records `ids`, rows in that order."""

    ids: list[str]
    hashes: list[str]
    terms: list[str]  # word of each column of `counts`
    idf: np.ndarray  # frozen idf of each word
    counts: Any  # n x V csr: how often each word is in the record's text
    keys: list[str]  # phrase key of each column of `found`
    found: Any  # n x P csr, binary: the phrase occurs in the record's text
    refreshed_n: int  # records at the last refresh
    read: int  # records tokenised by this call (all of them on a refresh)


def record_terms(store: ConnectionReadStore, ids: list[str], keys: dict[str, int], max_len: int, prefixes: set[str],
                 fresh: bool = False) -> RecordTerms:
    """The records' terms: the stored ones where a record's content is unchanged, the rest read now."""
    from .connections import find_phrases

    hashes_of = store.record_hashes()
    hashes = [hashes_of.get(i, "") for i in ids]
    old = None if fresh else load_terms(store)
    if old is not None and len(ids) > old.refreshed_n * REFRESH_GROWTH:
        old = None
    keep = np.full(len(ids), -1, dtype=np.int64)
    if old is not None:
        have = {rid: (r, h) for r, (rid, h) in enumerate(zip(old.ids, old.hashes, strict=True))}
        for i, (rid, h) in enumerate(zip(ids, hashes, strict=True)):
            stored = have.get(rid)
            if stored is not None and stored[1] == h:
                keep[i] = stored[0]
    todo = np.flatnonzero(keep < 0)
    texts = store.record_texts([ids[i] for i in todo])
    words = [Counter(content_tokens(texts.get(ids[i], ""))) for i in todo]
    found_new = [find_phrases(text_keys(texts.get(ids[i], "")), keys, max_len, prefixes) for i in todo]
    del texts
    if old is None:
        terms = sorted({t for w in words for t in w})
        vocab = {t: j for j, t in enumerate(terms)}
        df = Counter(t for w in words for t in w)
        idf = np.array([math.log((1 + len(ids)) / (1 + df[t])) + 1 for t in terms], dtype=np.float32)
        refreshed_n = len(ids)
    else:
        terms, vocab = list(old.terms), {t: j for j, t in enumerate(old.terms)}
        df = Counter(t for w in words for t in w if t not in vocab)
        for t in sorted(df):
            vocab[t] = len(terms)
            terms.append(t)
        fresh_idf = [math.log((1 + len(ids)) / (1 + df[t])) + 1 for t in terms[len(old.terms):]]
        idf = np.concatenate([old.idf, np.asarray(fresh_idf, dtype=np.float32)])
        refreshed_n = old.refreshed_n
    counts = _rows(todo, keep, [{vocab[t]: float(c) for t, c in w.items()} for w in words],
                   None if old is None else old.counts, len(terms))
    found = _rows(todo, keep, [dict.fromkeys(f, 1.0) for f in found_new],
                  None if old is None else _remap(old.found, old.keys, keys), len(keys))
    return RecordTerms(ids, hashes, terms, idf, counts, sorted(keys, key=keys.__getitem__), found,
                       refreshed_n, len(todo))


def _rows(todo: np.ndarray, keep: np.ndarray, new_rows: list[dict[int, float]], old: Any, width: int) -> Any:
    """Row i is old[keep[i]] where keep[i] >= 0, else the next of new_rows (in `todo` order)."""
    from scipy.sparse import vstack

    from .connections import csr

    fresh = csr(new_rows, width)
    if old is None or len(todo) == len(keep):
        return fresh
    old = old.tocsr()
    old.resize(old.shape[0], width)
    stacked = vstack([old[keep[keep >= 0]], fresh], format="csr")
    order = np.empty(len(keep), dtype=np.int64)
    order[keep >= 0] = np.arange(int((keep >= 0).sum()))
    order[todo] = (keep >= 0).sum() + np.arange(len(todo))
    return stacked[order]


def _remap(found: Any, old_keys: list[str], keys: dict[str, int]) -> Any:
    """The stored phrase matches in the columns of the current phrase vocabulary (phrases no
    longer in it are dropped)."""
    from scipy.sparse import csr_matrix

    to = np.array([keys.get(k, -1) for k in old_keys], dtype=np.int64)
    coo = found.tocoo()
    cols = to[coo.col] if len(to) else np.zeros(0, dtype=np.int64)
    ok = cols >= 0
    return csr_matrix((coo.data[ok], (coo.row[ok], cols[ok])), shape=(found.shape[0], len(keys)), dtype=np.float32)


def save_terms(store: EmbedStore, rt: RecordTerms) -> None:
    arrays = {"ids": strings_array(rt.ids), "hashes": strings_array(rt.hashes), "terms": strings_array(rt.terms),
              "keys": strings_array(rt.keys), "idf": rt.idf.astype(np.float32)}
    for name, matrix in (("counts", rt.counts), ("found", rt.found)):
        m = matrix.tocsr()
        arrays[f"{name}_indices"] = m.indices.astype(np.int32)
        arrays[f"{name}_indptr"] = m.indptr.astype(np.int64)
    arrays["counts_data"] = np.minimum(rt.counts.tocsr().data, np.iinfo(np.uint16).max).astype(np.uint16)
    store.put_artifact(ARTIFACT, pack(Artifact(KIND, FORMAT, {"refreshed_n": rt.refreshed_n}, arrays)))


def load_terms(store: EmbedStore) -> RecordTerms | None:
    """The stored terms, or None where none are stored in a form this version reads."""
    from scipy.sparse import csr_matrix

    artifact = unpack(store.get_artifact(ARTIFACT), KIND, FORMAT)
    if artifact is None:
        return None
    try:
        a = artifact.arrays
        ids, hashes = array_strings(a["ids"]), array_strings(a["hashes"])
        terms, keys = array_strings(a["terms"]), array_strings(a["keys"])
        found_data = np.ones(len(a["found_indices"]), dtype=np.float32)  # binary: only positions are stored
        mats = [csr_matrix((data, a[f"{name}_indices"], a[f"{name}_indptr"]), shape=(len(ids), width), dtype=np.float32)
                for name, data, width in (("counts", a["counts_data"], len(terms)), ("found", found_data, len(keys)))]
        idf = np.asarray(a["idf"], dtype=np.float32)
        if len(hashes) != len(ids) or len(idf) != len(terms):
            return None
        return RecordTerms(ids, hashes, terms, idf, mats[0], keys, mats[1], int(artifact.meta["refreshed_n"]), 0)
    except (KeyError, ValueError, TypeError):
        return None


def given_rows(ids: Sequence[str], given: dict[str, list[str]], column: Any, width: int) -> Any:
    """n x width binary csr: the columns `column(phrase)` (an iterable of ints) of each record's
    given phrases; each distinct phrase is looked up once (phrases recur across records)."""
    from .connections import csr

    memo: dict[str, list[int]] = {}
    rows = []
    for rid in ids:
        row: dict[int, float] = {}
        for phrase in given.get(rid, ()):
            cols = memo.get(phrase)
            if cols is None:
                cols = memo[phrase] = list(column(phrase))
            row.update(dict.fromkeys(cols, 1.0))
        rows.append(row)
    return csr(rows, width)
