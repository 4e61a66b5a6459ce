"""Citation signals for connections: direct links, bibliographic coupling and co-citation.

For a pair of records A (the query) and B:

    cites       A cites B, or B cites A (either direction counts once in the score)
    coupling    the works both cite (Kessler's bibliographic coupling): a cosine of their
                reference lists, each cited work weighted by its rarity in the corpus (a work
                everyone cites says little), so a review with 500 references is not coupled to
                everything
    cocitation  the records of the corpus citing both (Small's co-citation): a cosine of their
                lists of citers, so a paper everybody cites is not co-cited with everything

Each adds a stated, modest amount to the connection score (WEIGHTS: a direct citation is worth
half a standard deviation of meaning similarity; a perfect coupling or co-citation the same),
and the reasons name them with their counts. A record citing another, or sharing references or
citers with it, is a candidate even when the texts are far apart: per record, the strongest
CANDIDATES such records, found over its own references and citers (works cited by more than HUB
records, and citers with more than HUB references, are not walked), so the work grows with the
links, never with the number of pairs.

With no citation link in the store there is no Citations object at all, and connections are
exactly those computed without this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..store.interfaces import ConnectionReadStore

WEIGHTS = {"cites": 0.5, "coupling": 0.5, "cocitation": 0.5}
CANDIDATES = 20
HUB = 100
DIRECT = 1e6  # a direct link outranks any count of shared works or citers


@dataclass
class Citations:
    """The corpus's citation links as sparse matrices over its record rows."""

    refs: Any  # n x T binary: the record cites the work (in the corpus or not)
    refs_w: Any  # refs weighted by the work's rarity, rows l2-normalised
    out: Any  # n x n binary: row A cites column B
    into: Any  # n x n binary: row B is cited by column A (out transposed)
    into_w: Any  # into, rows l2-normalised

    @classmethod
    def from_edges(cls, ids: Sequence[str], edges: Sequence[tuple[str, int, str | None]]) -> Citations | None:
        """Built from (citing id, work, cited record id or None); None when no corpus record cites."""
        from scipy.sparse import csr_matrix

        pos = {rid: i for i, rid in enumerate(ids)}
        n = len(ids)
        links = [(pos[a], t, pos.get(b) if b is not None else None) for a, t, b in edges if a in pos]
        if not links:
            return None
        works = {t: j for j, t in enumerate(sorted({t for _, t, _ in links}))}
        rows = np.array([a for a, _, _ in links], dtype=np.int64)
        cols = np.array([works[t] for _, t, _ in links], dtype=np.int64)
        refs = csr_matrix((np.ones(len(links), dtype=np.float32), (rows, cols)), shape=(n, len(works)))
        refs.sum_duplicates()
        refs.data[:] = 1.0
        citers = np.asarray(refs.sum(axis=0)).ravel()
        rarity = np.log((1 + n) / (1 + citers)).astype(np.float32) + 1.0
        direct = [(a, b) for a, _, b in links if b is not None and b != a]
        src = np.array([a for a, _ in direct], dtype=np.int64)
        dst = np.array([b for _, b in direct], dtype=np.int64)
        out = csr_matrix((np.ones(len(direct), dtype=np.float32), (src, dst)), shape=(n, n))
        out.sum_duplicates()
        out.data[:] = 1.0
        into = out.T.tocsr()
        return cls(refs=refs, refs_w=_l2_rows(refs.multiply(rarity[None, :])), out=out, into=into,
                   into_w=_l2_rows(into))

    # --- scoring -------------------------------------------------------------------------

    def pair_signals(self, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
        """Each signal for the pairs (a[i], b[i]) of corpus rows: flat arrays."""
        return {
            "cites": _entries(self.out, a, b),
            "cited_by": _entries(self.out, b, a),
            "coupled": _row_dots(self.refs[a], self.refs[b]),
            "coupling": _row_dots(self.refs_w[a], self.refs_w[b]),
            "cocited": _row_dots(self.into[a], self.into[b]),
            "cocitation": _row_dots(self.into_w[a], self.into_w[b]),
        }

    @staticmethod
    def score(sig: dict[str, np.ndarray]) -> np.ndarray:
        return (WEIGHTS["cites"] * np.maximum(sig["cites"], sig["cited_by"])
                + WEIGHTS["coupling"] * sig["coupling"] + WEIGHTS["cocitation"] * sig["cocitation"])

    @staticmethod
    def reasons(sig: dict[str, np.ndarray], r: int, col: int) -> list[str]:
        """Readable citation reasons for the pair at (r, col) of the signal matrices."""
        out = []
        if sig["cites"][r, col]:
            out.append("cites")
        if sig["cited_by"][r, col]:
            out.append("cited by")
        coupled, cocited = int(round(float(sig["coupled"][r, col]))), int(round(float(sig["cocited"][r, col])))
        if coupled:
            out.append("both cite one of the same works" if coupled == 1 else f"both cite {coupled} of the same works")
        if cocited:
            out.append("cited together by 1 paper" if cocited == 1 else f"cited together by {cocited} papers")
        return out

    # --- candidates ----------------------------------------------------------------------

    def candidates(self, rows: Sequence[int] | np.ndarray, limit: int = CANDIDATES) -> np.ndarray:
        """Per row, up to `limit` records linked to it by citation, strongest first: those it
        cites or that cite it, then by shared references and shared citers (-1 pads)."""
        rows = np.asarray(rows, dtype=np.int64)
        strength = self._linked(rows)
        out = np.full((len(rows), limit), -1, dtype=np.int64)
        for r, q in enumerate(rows):
            start, end = strength.indptr[r], strength.indptr[r + 1]
            cols, vals = strength.indices[start:end], strength.data[start:end]
            keep = cols != q
            cols, vals = cols[keep], vals[keep]
            order = np.lexsort((cols, -vals))[:limit]
            out[r, : len(order)] = cols[order]
        return out

    @cached_property
    def _walked_refs(self) -> Any:
        return _without_hubs(self.refs)

    @cached_property
    def _walked_citers(self) -> Any:
        return _without_hubs(self.into)

    def _linked(self, rows: np.ndarray) -> Any:
        """rows x n: a direct link counts more than any number of shared works or citers."""
        direct = self.out[rows] + self.into[rows]
        direct.data[:] = 1.0
        shared_refs = self.refs[rows] @ self._walked_refs.T
        shared_citers = self.into[rows] @ self._walked_citers.T
        return (direct * DIRECT + shared_refs + shared_citers).tocsr()


def citations_for(store: ConnectionReadStore, ids: Sequence[str]) -> Citations | None:
    """The store's citation links over these record ids (None when it has none)."""
    return Citations.from_edges(ids, store.citation_edges())


def author_citations(counts: dict[str, int], titles: dict[str, str]) -> dict[str, Any]:
    """How often records of this landscape cite an author's records, and the most cited ones."""
    most = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return {"times_cited": sum(counts.values()), "records_cited": len(counts),
            "most_cited": [{"id": r, "title": titles.get(r, r), "cited_by": n} for r, n in most]}


def merge_candidates(cand: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """Graph candidates and citation candidates side by side, each record once (-1 pads)."""
    both = np.concatenate([cand, extra], axis=1)
    top = np.iinfo(np.int64).max
    ranked = np.sort(np.where(both < 0, top, both), axis=1)
    ranked[:, 1:][ranked[:, 1:] == ranked[:, :-1]] = top
    ranked = np.sort(ranked, axis=1)
    return np.where(ranked == top, -1, ranked)


def state_of(store: ConnectionReadStore) -> dict[str, float] | None:
    """What the stored connection state records about citations: the weights, when the store
    has links (a store without any keeps the state it always had)."""
    return dict(WEIGHTS) if store.has_citations() else None


def _without_hubs(matrix: Any) -> Any:
    """The matrix with columns held by more than HUB rows emptied (not walked for candidates)."""
    counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
    m = matrix.copy()
    m.data = np.where(counts[m.indices] > HUB, 0.0, m.data).astype(np.float32)
    m.eliminate_zeros()
    return m


def _entries(matrix: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0:
        return np.zeros(0, dtype=np.float32)
    return np.asarray(matrix[a, b], dtype=np.float32).ravel()


def _row_dots(a: Any, b: Any) -> np.ndarray:
    return np.asarray(a.multiply(b).sum(axis=1), dtype=np.float32).ravel()


def _l2_rows(matrix: Any) -> Any:
    m = matrix.tocsr().astype(np.float32)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return m.multiply(1.0 / norms[:, None]).tocsr()


def describe() -> str:
    """The weights as one line (for bench output and the docs)."""
    return ", ".join(f"{k} {v:g}" for k, v in WEIGHTS.items()) + f"; {CANDIDATES} candidates, hubs > {HUB}"

