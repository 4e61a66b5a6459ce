"""Every record's keyphrases, authors and concepts as sparse rows, for the connections corpus.

Each comes from one scan of its table, with the record and the phrase, author or concept coded
as integers as the rows stream past; the matrices are then built by numpy from the codes. At a
million records that is 7.7 million keyphrases, 4 million authorships and 13.8 million concept
memberships: built row by row in Python dicts and sets, with names joined in SQL, they took 130 s
of a 1,000-record increment's 220 s (see docs/build-scale.md, session 11).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays import unique_values
from ..store.interfaces import ConnectionReadStore
from ..text import STOPWORDS
from .concepts.normalise import phrase_key
from .embed import hold_value

MAX_PHRASE_WORDS = 6
MEMBERSHIPS = "concept memberships"  # what concept_rows holds for the build's trends step


@dataclass
class PhraseRows:
    """The phrase vocabulary of every record's keyphrases (any source) and who carries what."""

    keys: dict[str, int]  # phrase key -> column
    names: list[str]  # each column's display name: its most used spelling
    attested: np.ndarray  # records carrying each key (every record of the store)
    carried: Any  # n x P binary: the row's own keyphrases (any source) in the vocabulary
    given: Any  # n x D binary: the row's given keyphrases, by distinct phrase
    phrases: list[str]  # the distinct phrases (columns of `given`)
    phrase_keys: np.ndarray  # each distinct phrase's key column (-1: not in the vocabulary)

    def given_columns(self, column: Callable[[int], Iterable[int]], width: int) -> Any:
        """n x width binary: the columns `column(c)` of each row's given phrases (c: the
        phrase's index in `phrases` and `phrase_keys`)."""
        used = np.flatnonzero(np.asarray(self.given.sum(axis=0)).ravel() > 0)
        pairs = [(int(c), j) for c in used for j in column(int(c))]
        rows = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
        cols = np.fromiter((p[1] for p in pairs), dtype=np.int64, count=len(pairs))
        return binary(self.given @ _matrix(rows, cols, (len(self.phrases), width)))


def phrase_rows(store: ConnectionReadStore, pos: Mapping[str, int]) -> PhraseRows:
    """One scan of every keyphrase: the vocabulary (keys sorted), its spellings and carriers."""
    phrase_code: dict[str, int] = {}
    record_code: dict[str, int] = {}
    records, codes, given = array("q"), array("q"), array("b")
    for rid, phrase, is_given in store.record_phrase_rows():
        c = phrase_code.get(phrase)
        if c is None:
            c = phrase_code[phrase] = len(phrase_code)
        r = record_code.get(rid)
        if r is None:
            r = record_code[rid] = len(record_code)
        records.append(r)
        codes.append(c)
        given.append(bool(is_given))
    phrases = list(phrase_code)
    key_text = [phrase_key(p) for p in phrases]
    usable = [bool(k) and len(k.split()) <= MAX_PHRASE_WORDS and k not in STOPWORDS for k in key_text]
    sorted_keys = sorted({k for k, ok in zip(key_text, usable, strict=True) if ok})
    keys = {k: j for j, k in enumerate(sorted_keys)}
    to_key = np.fromiter((keys[k] if ok else -1 for k, ok in zip(key_text, usable, strict=True)),
                         dtype=np.int64, count=len(phrases))
    rec, code, flag = (np.frombuffer(records, dtype=np.int64), np.frombuffer(codes, dtype=np.int64),
                       np.frombuffer(given, dtype=np.int8).astype(bool))
    width, n = len(keys), len(pos)
    row_of = np.fromiter((pos.get(rid, -1) for rid in record_code), dtype=np.int64, count=len(record_code))
    key = to_key[code]
    ok = key >= 0
    pairs = unique_values(rec[ok] * max(width, 1) + key[ok])
    pair_rec, pair_key = pairs // max(width, 1), pairs % max(width, 1)
    attested = np.bincount(pair_key, minlength=width)
    rows = row_of[pair_rec]
    carried = _matrix(rows[rows >= 0], pair_key[rows >= 0], (n, width))
    given_rows = row_of[rec[flag]]
    inside = given_rows >= 0
    given_matrix = _matrix(given_rows[inside], code[flag][inside], (n, len(phrases)))
    return PhraseRows(keys, _spellings(phrases, to_key, np.bincount(code, minlength=len(phrases)), width),
                      attested, carried, given_matrix, phrases, to_key)


def _spellings(phrases: list[str], to_key: np.ndarray, uses: np.ndarray, width: int) -> list[str]:
    """Each key's most used lower-cased spelling (ties: the first in sorted order)."""
    surface: list[Counter[str]] = [Counter() for _ in range(width)]
    for phrase, j, count in zip(phrases, to_key.tolist(), uses.tolist(), strict=True):
        if j >= 0:
            surface[j][phrase.lower()] += count
    return [max(sorted(s), key=s.__getitem__) for s in surface]


def author_rows(store: ConnectionReadStore, pos: Mapping[str, int]) -> tuple[Any, list[str]]:
    """n x A binary (people on each row's author list) and each column's display name."""
    r, a = _coded_pairs(store.record_author_ids(), pos)
    used = unique_values(a)
    names = store.author_names_by_id()
    return _matrix(r, np.searchsorted(used, a), (len(pos), len(used))), [names[int(x)] for x in used]


def concept_rows(store: ConnectionReadStore, pos: Mapping[str, int]) -> tuple[Any, list[str]]:
    """n x C binary (each row's concepts, whatever their source) and each column's name."""
    r, c = _coded_lists(store.record_concept_ids(), pos)
    hold_value(store, MEMBERSHIPS, (list(pos), np.stack([r, c]).astype(np.int32)))
    names = store.concept_names_by_id()
    inside = np.isin(c, np.fromiter(names, dtype=np.int64, count=len(names)))
    used = unique_values(c[inside])
    return (_matrix(r[inside], np.searchsorted(used, c[inside]), (len(pos), len(used))),
            [names[int(x)] for x in used])


def _coded_pairs(pairs: Iterable[tuple[str, int]], pos: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(row, code) arrays of the (record id, integer code) pairs whose record has a row."""
    rows, codes = array("q"), array("q")
    for rid, code in pairs:
        i = pos.get(rid)
        if i is not None:
            rows.append(i)
            codes.append(code)
    return np.frombuffer(rows, dtype=np.int64), np.frombuffer(codes, dtype=np.int64)


def _coded_lists(lists: Iterable[tuple[str, int, str]], pos: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(row, code) arrays from (record id, count, codes joined by commas) rows, for the records
    that have a row: the codes of all records are parsed by numpy in one go."""
    rows, counts, texts = array("q"), array("q"), []
    for rid, count, text in lists:
        rows.append(pos.get(rid, -1))
        counts.append(count)
        texts.append(text)
    codes = np.fromstring(",".join(texts), dtype=np.int64, sep=",") if texts else np.zeros(0, dtype=np.int64)
    if len(codes) != sum(counts):
        raise ValueError(f"expected {sum(counts)} codes joined by commas, parsed {len(codes)}")
    row = np.repeat(np.frombuffer(rows, dtype=np.int64), np.frombuffer(counts, dtype=np.int64))
    inside = row >= 0
    return row[inside], codes[inside]


def _matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> Any:
    """Binary float32 csr with a 1 at each (row, col), repeats counted once, indices sorted."""
    from scipy.sparse import csr_matrix

    m = csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    m.sum_duplicates()
    return binary(m)


def binary(m: Any) -> Any:
    """1 where m is not 0 (float32 csr, indices sorted)."""
    m = m.tocsr()
    m.eliminate_zeros()
    m.data = np.ones_like(m.data, dtype=np.float32)
    m.sort_indices()
    return m
