"""The map's points as one compact binary file, and the lookups the browser makes on demand.

A million points as JSON would be tens of megabytes and seconds of parsing; as typed arrays
they are 7 bytes a point, read by the browser without parsing (`map.js` views the buffer).
Layout, little-endian, every array starting on a 4-byte boundary:

    0   "LMAP"                     magic
    4   uint32 format (FORMAT)
    8   uint32 n                   points in this file
    12  uint32 meta_len            bytes of the JSON metadata that follows the header
    16  float32 min_x, max_x, min_y, max_y   the bounds the coordinates are quantised over
    32  meta (UTF-8 JSON, padded with spaces): version, total, sampled, areas, topics, labels
        uint16 x[n], uint16 y[n]   round((v - min) / (max - min) * 65535)
        uint8 area[n]              index into meta.areas, NO_AREA for none
        uint8 kind[n]              0 paper, 1 talk
        uint16 topic[n]            index into meta.topics, NO_TOPIC for none
        uint32 row[n]              only when meta.sampled: each point's row in the full file
        uint8 density[256 * 256]   all points binned over the bounds (row = y bin), blurred,
                                   log-scaled to 0-255: the map's density layer, of every point
                                   even in a sample

Row i of the full file is the i-th placed record by `records.rowid`; titles and ids are not
in the file but fetched by row when a point is hovered (`rows`), so the file stays small.
Everything is built once per store version (`SNAPSHOTS`) and served with that version as
its ETag; `?v=VERSION` makes a response immutable.
"""

from __future__ import annotations

import gzip
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..enrich.map import label_levels
from ..snapshot import SNAPSHOTS
from ..store.interfaces import PageStore

MAGIC = b"LMAP"
FORMAT = 1
HEADER = struct.Struct("<4sIII4f")
NO_AREA = 255
NO_TOPIC = 65535
QMAX = 65535
BINS = 256


@dataclass
class MapPoints:
    """Every placed record's coordinates and groups, in row order, and the encoded file."""

    version: str
    rowids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    area: np.ndarray
    kind: np.ndarray
    topic: np.ndarray
    areas: list[str]
    topics: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    body: bytes = b""
    gzipped: bytes = field(default=b"", repr=False)

    @property
    def n(self) -> int:
        return len(self.rowids)

    def bounds(self) -> tuple[float, float, float, float]:
        if not self.n:
            return 0.0, 1.0, 0.0, 1.0
        return float(self.x.min()), float(self.x.max()), float(self.y.min()), float(self.y.max())


def version_of(store: PageStore) -> str:
    token, n = store.version()
    return f"{token}-{n}"


def read_points(store: PageStore) -> MapPoints:
    """The columns of every placed record, read in batches into arrays (no per-point dicts)."""
    parts: list[tuple[np.ndarray, ...]] = []
    area_index: dict[str, int] = {}
    topics = store.page_topics()
    topic_index = {t["id"]: i for i, t in enumerate(topics)}
    for rows in store.page_map_columns():
        b_rowid, b_x, b_y, b_kind, b_area, b_topic = zip(*rows)
        parts.append((
            np.fromiter(b_rowid, dtype=np.int64, count=len(rows)),
            np.fromiter(b_x, dtype=np.float64, count=len(rows)),
            np.fromiter(b_y, dtype=np.float64, count=len(rows)),
            np.fromiter((0 if k == "paper" else 1 for k in b_kind), dtype=np.uint8, count=len(rows)),
            np.fromiter((NO_AREA if a is None else min(area_index.setdefault(a, len(area_index)), NO_AREA - 1)
                         for a in b_area), dtype=np.uint8, count=len(rows)),
            np.fromiter((topic_index.get(t, NO_TOPIC) for t in b_topic), dtype=np.uint16, count=len(rows)),
        ))
    cols = [np.concatenate(c) for c in zip(*parts)] if parts else [
        np.zeros(0, dtype=d) for d in (np.int64, np.float64, np.float64, np.uint8, np.uint8, np.uint16)]
    rowid, x, y, kind, area, topic = cols
    areas = sorted(area_index, key=area_index.__getitem__)[: NO_AREA - 1]
    points = MapPoints(version_of(store), rowid, x, y, area, kind, topic, areas,
                       [{"id": t["id"], "label": t["label"]} for t in topics], [])
    points.labels = label_levels(x, y, topic, [t["label"] for t in topics])
    points.body = encode(points)
    points.gzipped = gzip.compress(points.body, compresslevel=6, mtime=0)
    return points


def cached_points(store: PageStore) -> MapPoints:
    return SNAPSHOTS.get(store, "map:points", read_points)


def _quantise(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = hi - lo
    if span <= 0:
        return np.zeros(len(v), dtype=np.uint16)
    return np.clip(np.rint((v - lo) / span * QMAX), 0, QMAX).astype("<u2")


def _pad(b: bytes, fill: bytes = b"\0") -> bytes:
    return b + fill * (-len(b) % 4)


def encode(points: MapPoints, rows: np.ndarray | None = None) -> bytes:
    """The binary file of all points, or of the given rows (a sample, which then carries its rows)."""
    sel = slice(None) if rows is None else rows
    lo_x, hi_x, lo_y, hi_y = points.bounds()
    n = points.n if rows is None else len(rows)
    meta = {
        "version": points.version, "total": points.n, "sampled": rows is not None,
        "areas": points.areas, "topics": points.topics, "labels": points.labels,
    }
    meta_bytes = _pad(json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), b" ")
    parts = [HEADER.pack(MAGIC, FORMAT, n, len(meta_bytes), lo_x, hi_x, lo_y, hi_y), meta_bytes,
             _pad(_quantise(points.x[sel], lo_x, hi_x).tobytes()),
             _pad(_quantise(points.y[sel], lo_y, hi_y).tobytes()),
             _pad(points.area[sel].tobytes()), _pad(points.kind[sel].tobytes()),
             _pad(points.topic[sel].astype("<u2").tobytes())]
    if rows is not None:
        parts.append(np.asarray(rows, dtype="<u4").tobytes())
    parts.append(density(_quantise(points.x, lo_x, hi_x), _quantise(points.y, lo_y, hi_y)).tobytes())
    return b"".join(parts)


def density(qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
    """Points per bin of a BINS x BINS grid, box-blurred twice (about a Gaussian), log-scaled to uint8."""
    from scipy.ndimage import uniform_filter

    shift = 16 - int(np.log2(BINS))
    counts = np.bincount((qy.astype(np.int64) >> shift) * BINS + (qx.astype(np.int64) >> shift),
                         minlength=BINS * BINS).reshape(BINS, BINS).astype(np.float64)
    smooth = uniform_filter(uniform_filter(counts, size=5, mode="nearest"), size=5, mode="nearest")
    top = np.log1p(smooth.max()) or 1.0
    return np.rint(255 * np.log1p(np.maximum(smooth, 0)) / top).astype(np.uint8)


def sample_rows(n: int, size: int) -> np.ndarray:
    """`size` rows spread evenly over all n (rows follow insertion order, not position)."""
    return np.unique(np.linspace(0, n - 1, num=min(size, n)).astype(np.int64)) if n else np.zeros(0, np.int64)


def row_records(store: PageStore, points: MapPoints, rows: list[int]) -> list[dict[str, Any]]:
    """Id, title and kind of each row (rows outside the map are left out)."""
    valid = [r for r in rows if 0 <= r < points.n]
    found = store.page_map_rows([int(points.rowids[r]) for r in valid])
    out = []
    for r in valid:
        rec = found.get(int(points.rowids[r]))
        if rec is not None:
            out.append({"row": r, "id": rec[0], "title": rec[1], "kind": rec[2]})
    return out


def title_matches(store: PageStore, points: MapPoints, text: str, limit: int) -> tuple[list[int], int]:
    """Rows whose title contains `text` (at most `limit`), and how many there are in all."""
    rowids, total = store.page_map_title_matches(text, limit)
    if not points.n or not rowids:
        return [], total
    wanted = np.asarray(rowids, dtype=np.int64)
    rows = np.minimum(np.searchsorted(points.rowids, wanted), points.n - 1)
    return [int(r) for r in rows[points.rowids[rows] == wanted]], total
