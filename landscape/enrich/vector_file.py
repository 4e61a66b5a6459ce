"""The embedding matrix of a large store, kept beside it as one memory-mapped file.

A build's later steps, the neighbour graph and related-by-text each start from every record's
vector. Read from SQLite that is a million blobs scattered over a 16 GB file: 20-30 s whenever
the page cache no longer holds them, which beside a build at that size it does not. The same
matrix as one file is mapped in a fraction of a second, and a step that touches a few thousand
rows (an increment, a query) reads only those pages; the mapped pages are the page cache's, not
the process's heap.

The file is a cache, never the truth: each row carries a 64-bit key of its record id and content
hash, and every read checks the keys against the store's (one indexed scan). Rows whose key is
gone or new are read from the store and the file is written anew under a temporary name and
renamed over the old one, so a reader maps either the old file or the new one, never half of
one; a file that cannot be read (truncated, another format, garbage) is ignored and replaced.
It holds a fixed header, the JSON of its shape, the keys and the float32 rows: no code.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

from ..store.interfaces import VectorStore

MAGIC = b"LSVECS01"
ALIGN = 64
MIN_ROWS = 50_000  # below this the store's own read takes under a second or two: no file
CHUNK = 65_536  # rows copied at a time when the file is written
BY_ID = 20_000  # at most this many rows (or a tenth) are looked up by id; more, and the table is read whole


def embedding_matrix(store: VectorStore, model: str) -> tuple[list[str], np.ndarray]:
    """(ids sorted, float32 matrix) of the stored embeddings under `model`, as
    store.embedding_matrix, mapped from the file beside the store when the store is large."""
    if not model or store.count_records() < MIN_ROWS:  # no more vectors than records: small, no hashes read
        return store.embedding_matrix(model)
    ids, hashes = store.embedding_hashes(model)
    if len(ids) < MIN_ROWS:
        return store.embedding_matrix(model)
    keys = row_keys(ids, hashes)
    path = file_path(store, model)
    old = _mapped(path)
    if old is not None and np.array_equal(old[0], keys):
        return ids, old[1]
    if store.readonly:
        return store.embedding_matrix(model)
    try:
        return ids, _written(store, model, path, ids, keys, old)
    except OSError:  # no room or no right to write beside the store: read it as it is
        return store.embedding_matrix(model)


def file_path(store: VectorStore, model: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in model)
    return store.sidecar(f".{safe}.vectors")


def row_keys(ids: Sequence[str], hashes: Sequence[str]) -> np.ndarray:
    """A 64-bit key per row: what the row's vector was computed from (record id, content hash)."""
    out = np.empty(len(ids), dtype=np.uint64)
    for i, (rid, chash) in enumerate(zip(ids, hashes, strict=True)):
        out[i] = int.from_bytes(hashlib.blake2b(f"{rid}\0{chash}".encode(), digest_size=8).digest(), "little")
    return out


def _layout(rows: int, dim: int) -> tuple[bytes, int, int]:
    """(header, offset of the keys, offset of the vectors)."""
    meta = json.dumps({"rows": rows, "dim": dim, "dtype": "float32"}).encode()
    head = MAGIC + struct.pack("<Q", len(meta)) + meta
    keys_at = -(-len(head) // ALIGN) * ALIGN
    return head, keys_at, keys_at + -(-(rows * 8) // ALIGN) * ALIGN


def _mapped(path: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(keys, vectors) mapped read-only from the file, or None when it is missing or unreadable."""
    try:
        with open(path, "rb") as f:
            start = f.read(len(MAGIC) + 8)
            if len(start) < len(MAGIC) + 8 or start[: len(MAGIC)] != MAGIC:
                return None
            (length,) = struct.unpack("<Q", start[len(MAGIC):])
            meta = json.loads(f.read(min(length, 4096)).decode())
        rows, dim = int(meta["rows"]), int(meta["dim"])
        _, keys_at, vectors_at = _layout(rows, dim)
        if meta.get("dtype") != "float32" or rows <= 0 or dim <= 0 \
                or os.path.getsize(path) != vectors_at + rows * dim * 4:
            return None
        keys = np.memmap(path, dtype=np.uint64, mode="r", offset=keys_at, shape=(rows,))
        vectors = np.memmap(path, dtype=np.float32, mode="r", offset=vectors_at, shape=(rows, dim))
        return np.asarray(keys), vectors
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def _written(store: VectorStore, model: str, path: str, ids: list[str], keys: np.ndarray,
             old: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Write the file for these rows (the old file's rows where their key is unchanged, the rest
    read from the store), rename it into place and map it."""
    dim = store.embedding_dim(model)
    source = old[1] if old is not None and old[1].shape[1] == dim else None
    at = _old_rows(keys, old[0]) if source is not None and old is not None else np.full(len(keys), -1)
    if (at < 0).sum() > max(BY_ID, len(keys) // 10):  # most rows new: one read of the table in its own order
        read_ids, source = store.embedding_matrix(model)
        if read_ids != ids:  # written to since the keys were read
            raise OSError(f"{path}: the embeddings changed while the file was being written")
        at = np.arange(len(ids))
    head, keys_at, vectors_at = _layout(len(keys), dim)
    tmp = f"{path}.tmp"  # one name: a file left by a killed build is overwritten by the next
    try:
        with open(tmp, "wb") as f:
            f.write(head.ljust(keys_at, b"\0"))
            f.write(keys.astype("<u8").tobytes().ljust(vectors_at - keys_at, b"\0"))
            _write_rows(f, store, model, ids, source, at, dim)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    mapped = _mapped(path)
    if mapped is None:
        raise OSError(f"{path}: written but not readable back")
    return mapped[1]


def _write_rows(f: BinaryIO, store: VectorStore, model: str, ids: list[str], source: np.ndarray | None,
                at: np.ndarray, dim: int) -> None:
    """Write row i as source[at[i]] where at[i] >= 0, else the store's vector of ids[i]. Newcomers
    fall between old rows that keep their order, so the rows come as a few long runs of the old
    file, each written from it in one call (copied into a mapped new file row by row, a million
    rows took 8-9 s); rows in any other order are gathered CHUNK rows at a time."""
    kept = at >= 0
    missing = np.flatnonzero(~kept)
    fetched = store.embedding_vectors(model, [ids[i] for i in missing]) if len(missing) else None
    slot = np.full(len(at), -1, dtype=np.int64)
    slot[missing] = np.arange(len(missing))
    n = len(at)
    cut = np.flatnonzero((kept[1:] != kept[:-1]) | (kept[1:] & (at[1:] != at[:-1] + 1))) + 1
    if source is None or len(cut) > n // 64:
        for start in range(0, n, CHUNK):
            part = np.arange(start, min(start + CHUNK, n))
            rows = np.empty((len(part), dim), dtype=np.float32)
            inside = kept[part]
            if inside.any() and source is not None:
                rows[inside] = source[at[part[inside]]]
            if not inside.all() and fetched is not None:
                rows[~inside] = fetched[slot[part[~inside]]]
            f.write(rows.tobytes())
        return
    for first, last in zip(np.r_[0, cut], np.r_[cut, n], strict=True):
        if kept[first]:
            f.write(memoryview(np.ascontiguousarray(source[at[first] : at[first] + last - first], dtype=np.float32)))
        elif fetched is not None:
            f.write(np.ascontiguousarray(fetched[slot[first] : slot[first] + last - first], dtype=np.float32).tobytes())


def _old_rows(keys: np.ndarray, old_keys: np.ndarray) -> np.ndarray:
    """Each key's row in the old file, -1 where it has none."""
    order = np.argsort(old_keys, kind="stable")
    ranked = old_keys[order]
    at = np.clip(np.searchsorted(ranked, keys), 0, max(len(ranked) - 1, 0))
    found = ranked[at] == keys if len(ranked) else np.zeros(len(keys), dtype=bool)
    return np.where(found, order[at], -1)
