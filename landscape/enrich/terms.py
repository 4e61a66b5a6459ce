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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..artifacts import Artifact, pack, unpack
from ..batching import batches
from ..store.interfaces import ConnectionReadStore, EmbedStore
from ..text import content_tokens
from .concepts.normalise import text_keys
from .predictors import array_strings, strings_array

ARTIFACT = "connections:terms"
DELTA = "connections:terms:delta"  # the rows read since the base was written (save_terms)
DELTA_SHARE = 0.2
KIND = "connections-terms"
FORMAT = 1
REFRESH_GROWTH = 1.25
BATCH = 5000  # texts tokenised at a time


@dataclass
class Base:
    """The stored base artifact, as far as a delta on top of it needs it: which of the rows are
    the base's own, unchanged (the rest are written to the delta), its phrase keys (the delta's
    keys start with them) and a mark the delta names its base by."""

    same: np.ndarray  # per row: the base's row, as stored
    keys: list[str]
    mark: str


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
    base: Base | None = None  # the stored base these rows extend (None: a refresh, written whole)


def record_terms(store: ConnectionReadStore, ids: list[str], keys: dict[str, int], max_len: int, prefixes: set[str],
                 fresh: bool = False) -> RecordTerms:
    """The records' terms: the stored ones where a record's content is unchanged, the rest read now."""

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
    terms = [] if old is None else list(old.terms)
    base = len(terms)  # columns from here on are words first seen now
    counts_new, found_new, df = _read_terms(store, [ids[i] for i in todo], terms, keys, max_len, prefixes)
    order = sorted(range(base, len(terms)), key=terms.__getitem__)  # new words in alphabetical order
    column = np.arange(len(terms), dtype=np.int64)
    column[order] = np.arange(base, len(terms))
    terms[base:] = [terms[j] for j in order]
    counts_new.indices = column[counts_new.indices].astype(counts_new.indices.dtype)
    counts_new.has_sorted_indices = False
    counts_new.sort_indices()
    n_new = [df[j] for j in order]
    fresh_idf = np.asarray([math.log((1 + len(ids)) / (1 + d)) + 1 for d in n_new], dtype=np.float32)
    if old is None:
        idf, refreshed_n = fresh_idf, len(ids)
    else:
        idf, refreshed_n = np.concatenate([old.idf, fresh_idf]), old.refreshed_n
    counts = _rows(todo, keep, counts_new, None if old is None else old.counts, len(terms))
    found = _rows(todo, keep, found_new, None if old is None else _remap(old.found, old.keys, keys), len(keys))
    under = None
    if old is not None and old.base is not None:
        under = Base((keep >= 0) & old.base.same[np.maximum(keep, 0)], old.base.keys, old.base.mark)
    return RecordTerms(ids, hashes, terms, idf, counts, sorted(keys, key=keys.__getitem__), found,
                       refreshed_n, len(todo), under)


def _read_terms(store: ConnectionReadStore, ids: list[str], terms: list[str], keys: dict[str, int], max_len: int,
                prefixes: set[str]) -> tuple[Any, Any, Counter[int]]:
    """Word counts and phrase matches of the texts of `ids`, BATCH texts at a time so memory holds
    one batch of texts and token counts, not every record's: (counts, found, how many of the texts
    hold each word first seen here). A word not in `terms` is appended to it (its column)."""
    from scipy.sparse import csr_matrix, vstack

    from .connections import csr, find_phrases

    vocab = {t: j for j, t in enumerate(terms)}
    base = len(terms)
    df: Counter[int] = Counter()
    counts, found = [], []
    for batch in batches(ids, BATCH):
        texts = store.record_texts(batch)
        rows, phrases = [], []
        for rid in batch:
            text = texts.get(rid, "")
            words = Counter(content_tokens(text))
            for t in words:
                if t not in vocab:
                    vocab[t] = len(terms)
                    terms.append(t)
            row = {vocab[t]: float(c) for t, c in words.items()}
            df.update(j for j in row if j >= base)
            rows.append(row)
            phrases.append(dict.fromkeys(find_phrases(text_keys(text), keys, max_len, prefixes), 1.0))
        counts.append(csr(rows, len(terms)))
        found.append(csr(phrases, len(keys)))
    width = len(terms)
    for part in counts:
        part.resize(part.shape[0], width)
    empty = [csr_matrix((0, width), dtype=np.float32)], [csr_matrix((0, len(keys)), dtype=np.float32)]
    return (vstack(counts or empty[0], format="csr"), vstack(found or empty[1], format="csr"), df)


def _rows(todo: np.ndarray, keep: np.ndarray, fresh: Any, old: Any, width: int) -> Any:
    """Row i is old[keep[i]] where keep[i] >= 0, else the next row of `fresh` (in `todo` order)."""
    from scipy.sparse import vstack

    fresh = fresh.tocsr()
    fresh.resize(fresh.shape[0], width)
    if old is None or len(todo) == len(keep):
        return fresh
    old = old.tocsr()
    old.resize(old.shape[0], width)
    order = keep.copy()  # one gather from the old rows and the fresh ones stacked under them
    order[todo] = old.shape[0] + np.arange(len(todo))
    return vstack([old, fresh], format="csr")[order]


def _remap(found: Any, old_keys: list[str], keys: dict[str, int]) -> Any:
    """The stored phrase matches in the columns of the current phrase vocabulary (phrases no
    longer in it are dropped)."""
    from scipy.sparse import csr_matrix

    to = np.array([keys.get(k, -1) for k in old_keys], dtype=np.int64)
    if len(to) and (to >= 0).all() and (np.diff(to) > 0).all():  # keys only added: each row's columns keep their order
        m = found.tocsr()
        return csr_matrix((m.data, to[m.indices], m.indptr), shape=(found.shape[0], len(keys)), dtype=np.float32)
    coo = found.tocoo()
    cols = to[coo.col] if len(to) else np.zeros(0, dtype=np.int64)
    ok = cols >= 0
    return csr_matrix((coo.data[ok], (coo.row[ok], cols[ok])), shape=(found.shape[0], len(keys)), dtype=np.float32)


def save_terms(store: EmbedStore, rt: RecordTerms) -> None:
    """Write the rows that differ from the stored base as a delta beside it (an increment adds a
    few thousand rows to a base of a million: rewriting the whole artifact took 15 s), or the
    whole as a new base when there is none, after a refresh, or once the delta holds more than
    DELTA_SHARE of the rows."""
    changed = None if rt.base is None else np.flatnonzero(~rt.base.same)
    if rt.base is None or changed is None or len(changed) > DELTA_SHARE * len(rt.ids):
        store.put_artifact(ARTIFACT, _packed(rt, {"refreshed_n": rt.refreshed_n}))
        store.put_artifact(DELTA, b"")  # none: unreadable bytes read as no delta
        return
    known = set(rt.base.keys)
    keys = rt.base.keys + [k for k in rt.keys if k not in known]
    rows = changed.tolist()
    part = RecordTerms([rt.ids[i] for i in rows], [rt.hashes[i] for i in rows], rt.terms, rt.idf, rt.counts[changed],
                       keys, _remap(rt.found[changed], rt.keys, {k: j for j, k in enumerate(keys)}), rt.refreshed_n, 0)
    store.put_artifact(DELTA, _packed(part, {"refreshed_n": rt.refreshed_n, "base": rt.base.mark}))


def _packed(rt: RecordTerms, meta: dict[str, Any]) -> bytes:
    arrays = {"ids": strings_array(rt.ids), "hashes": strings_array(rt.hashes), "terms": strings_array(rt.terms),
              "keys": strings_array(rt.keys), "idf": rt.idf.astype(np.float32)}
    for name, matrix in (("counts", rt.counts), ("found", rt.found)):
        m = matrix.tocsr()
        arrays[f"{name}_indices"] = m.indices.astype(np.int32, copy=False)
        arrays[f"{name}_indptr"] = m.indptr.astype(np.int64, copy=False)
    data = rt.counts.tocsr().data  # counts capped at the uint16 top, cast as they are written (no wide copy)
    arrays["counts_data"] = np.minimum(data, np.iinfo(np.uint16).max, out=np.empty(len(data), dtype=np.uint16),
                                       casting="unsafe")
    return pack(Artifact(KIND, FORMAT, meta, arrays))


def load_terms(store: EmbedStore) -> RecordTerms | None:
    """The stored terms (the base with its delta's rows in place of its own), or None where none
    are stored in a form this version reads. A delta that is not on top of this base is left
    out: its records are then read again."""
    from scipy.sparse import vstack

    loaded = _unpacked(store.get_artifact(ARTIFACT))
    if loaded is None:
        return None
    base, _ = loaded
    mark = f"{len(base.ids)}:{len(base.terms)}:{len(base.keys)}:{base.refreshed_n}:{float(base.idf.sum()):.6g}"
    on_top = _unpacked(store.get_artifact(DELTA))
    whole = replace(base, base=Base(np.ones(len(base.ids), dtype=bool), base.keys, mark))
    if on_top is None:
        return whole
    delta, meta = on_top
    if (meta.get("base") != mark or delta.refreshed_n != base.refreshed_n
            or delta.terms[: len(base.terms)] != base.terms or delta.keys[: len(base.keys)] != base.keys):
        return whole
    replaced = set(delta.ids)
    kept = np.fromiter((rid not in replaced for rid in base.ids), dtype=bool, count=len(base.ids))
    counts, found = base.counts[kept], base.found[kept]
    counts.resize(counts.shape[0], len(delta.terms))
    found.resize(found.shape[0], len(delta.keys))
    ids = [rid for rid, k in zip(base.ids, kept.tolist(), strict=True) if k]
    hashes = [h for h, k in zip(base.hashes, kept.tolist(), strict=True) if k]
    same = np.concatenate([np.ones(len(ids), dtype=bool), np.zeros(len(delta.ids), dtype=bool)])
    return RecordTerms(ids + delta.ids, hashes + delta.hashes, delta.terms, delta.idf,
                       vstack([counts, delta.counts], format="csr"), delta.keys,
                       vstack([found, delta.found], format="csr"), base.refreshed_n, 0, Base(same, base.keys, mark))


def _unpacked(raw: bytes | None) -> tuple[RecordTerms, dict[str, Any]] | None:
    from scipy.sparse import csr_matrix

    artifact = unpack(raw, KIND, FORMAT) if raw else None
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
        return (RecordTerms(ids, hashes, terms, idf, mats[0], keys, mats[1], int(artifact.meta["refreshed_n"]), 0),
                artifact.meta)
    except (KeyError, ValueError, TypeError):
        return None
