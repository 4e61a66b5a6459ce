"""Sorted unique values of integer arrays, by sort and compare.

numpy 2.4's `np.unique` took 19.3 s on 13.8 million int64 values on the reference machine (the
trends step's concept memberships at a million papers) where sorting them takes 0.15 s: these
do the same by one sort. tests/test_arrays.py keeps them equal to `np.unique`.
"""

from __future__ import annotations

import numpy as np


def unique_values(values: np.ndarray) -> np.ndarray:
    """np.unique(values) for a 1-d array."""
    ordered, first = _firsts(values)
    return ordered[first]


def unique_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_counts=True) for a 1-d array."""
    ordered, first = _firsts(values)
    starts = np.flatnonzero(first)
    return ordered[starts], np.diff(np.append(starts, len(ordered))).astype(np.int64)


def _firsts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values sorted, and where each run of equal ones starts."""
    ordered = np.sort(np.asarray(values).ravel())
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered, first


def dense_positions(keys: np.ndarray) -> np.ndarray | None:
    """A table from each non-negative integer key to its position in `keys` (-1 for integers not
    among them), or None where the keys are too sparse for one (beyond 4 slots a key): a store's
    rowids are dense, and a table answers in one indexing what binary search answers in many."""
    top = int(keys.max()) if len(keys) else -1
    if len(keys) and (int(keys.min()) < 0 or top >= 4 * len(keys) + 1024):
        return None
    table = np.full(top + 1, -1, dtype=np.int64)
    table[keys] = np.arange(len(keys), dtype=np.int64)
    return table
