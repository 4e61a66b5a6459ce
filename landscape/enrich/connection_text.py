"""Sparse-matrix and phrase helpers the connection signals are built from (no store, no state)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .concepts.normalise import phrase_key


def find_phrases(words: list[str], known: dict[str, int], max_len: int,
                 prefixes: set[str] | None = None) -> set[int]:
    """Indices of the known phrase keys that occur as consecutive words.

    `prefixes` (from `phrase_prefixes(known)`) lets a start stop growing as soon as no known
    phrase begins with the words so far: most words begin none.
    """
    if prefixes is None:
        prefixes = phrase_prefixes(known)
    found: set[int] = set()
    if max_len < 1:
        return found
    n = len(words)
    for start, phrase in enumerate(words):
        if phrase not in prefixes:
            continue
        j = known.get(phrase)
        if j is not None:
            found.add(j)
        for end in range(start + 1, min(start + max_len, n)):
            phrase = f"{phrase} {words[end]}"
            if phrase not in prefixes:
                break
            j = known.get(phrase)
            if j is not None:
                found.add(j)
    return found


def phrase_prefixes(known: dict[str, int]) -> set[str]:
    """Every leading run of words of every known phrase key ("a b c" gives a, a b, a b c)."""
    out = set()
    for key in known:
        words = key.split()
        for n in range(1, len(words) + 1):
            out.add(" ".join(words[:n]))
    return out


def csr(rows: list[dict[int, float]], width: int) -> Any:
    from scipy.sparse import csr_matrix

    indptr, indices, data = [0], [], []
    for row in rows:
        for j in sorted(row):
            indices.append(j)
            data.append(row[j])
        indptr.append(len(indices))
    return csr_matrix((np.array(data, dtype=np.float32), np.array(indices, dtype=np.int64), indptr),
                      shape=(len(rows), width))


def _row_dots(a: Any, b: Any) -> np.ndarray:
    """Row-wise dot products of two sparse matrices of the same shape."""
    return np.asarray(a.multiply(b).sum(axis=1)).ravel()


def _row(matrix: Any, i: int) -> np.ndarray:
    """Column indices of row i of a CSR matrix (without building a one-row matrix)."""
    return matrix.indices[matrix.indptr[i] : matrix.indptr[i + 1]]


def _csr(matrix: Any) -> Any:
    from scipy.sparse import csr_matrix

    out = csr_matrix(matrix, dtype=np.float32)
    out.eliminate_zeros()
    return out


def _squared(matrix: Any) -> Any:
    m = _csr(matrix)
    m.data = m.data**2
    return m


def _l2_rows(matrix: Any) -> Any:
    m = _csr(matrix)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return _csr(m.multiply(1.0 / norms[:, None]))


def _drop_contained(names: list[str], key: Any = phrase_key, limit: int | None = None) -> list[str]:
    """'neural network' is not worth naming beside 'graph neural network' (the first `limit`
    names kept, `key` giving each name's phrase key). A name's padded key occurs once in all of
    them joined (its own) unless another name's key contains it, or another name has the same key."""
    padded = [f" {key(name)} " for name in names]
    joined = "\n".join(padded)
    keep: list[str] = []
    for name, k in zip(names, padded):
        if limit is not None and len(keep) >= limit:
            break
        if joined.count(k) == 1:
            keep.append(name)
    return keep
