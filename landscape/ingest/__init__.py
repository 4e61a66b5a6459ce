"""Files -> records -> store. One parser per format, a sniffer, one transaction per file."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from ..arrays import unique_values
from ..artifacts import pack, unpack
from ..batching import batches
from ..models import BadRecord, LandscapeError, ParseError, Record
from ..store import open_store
from ..store.interfaces import IngestStore
from . import listing
from .phrases import SEGMENTER_FORMAT, SEGMENTER_KIND, PhraseSegmenter
from .reader import check_readable, iter_lines
from .sniff import FORMATS, Parser, parser_for, sniff

__all__ = ["FORMATS", "IngestReport", "ingest_paths", "iter_files", "parse_file", "sniff"]


@dataclass
class FileReport:
    path: str
    format: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    bad: list[str] = field(default_factory=list)
    note: str | None = None


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)

    def total(self, name: str) -> int:
        if name == "bad":
            return sum(len(f.bad) for f in self.files)
        return sum(getattr(f, name) for f in self.files)

    def summary(self) -> str:
        text = f"{self.total('new')} new, {self.total('changed')} changed, {self.total('unchanged')} unchanged"
        bad = self.total("bad")
        return text + (f", {bad} bad" if bad else "")


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Files named, and every file under directories named, in a stable order."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not any(p.startswith(".") for p in child.relative_to(path).parts):
                    yield child
        else:
            yield path


def parse_file(path: Path, fmt: str = "auto") -> tuple[str, Iterator[Record | BadRecord]]:
    """The format used and a stream of records; raises ParseError for unreadable files."""
    check_readable(path)
    if fmt == "auto":
        fmt = sniff(path)
    parser: Parser = parser_for(fmt)
    return fmt, parser(str(path), iter_lines(path))


SPLIT_PENDING = "keyphrase_split_pending"


def ingest_paths(
    store: IngestStore,
    paths: Iterable[str | os.PathLike[str]],
    fmt: str = "auto",
    skip_bad: bool = False,
    on_record: Callable[[str], None] | None = None,
    area_categories: dict[str, str] | None = None,
) -> IngestReport:
    """Ingest files into the store, one transaction per file.

    Without skip_bad the first bad record aborts the whole run with its ParseError and
    nothing of that file is written; files before it stay ingested. With skip_bad the good
    records land and every bad record (or unreadable file) is listed in the report.
    area_categories (glob pattern -> area, the config's `[area_categories]`) gives a record
    without an area the area of the first pattern its primary arXiv category matches.
    """
    if fmt != "auto":
        parser_for(fmt)  # an unknown --format fails before anything is read
    to_area = CategoryAreas(area_categories) if area_categories else None
    report = IngestReport()
    with store.bulk_write():
        for path in iter_files(paths):
            if _is_empty(path):
                report.files.append(FileReport(str(path), fmt, note="empty file, nothing to ingest"))
                continue
            try:
                report.files.append(_ingest_file(store, path, fmt, skip_bad, on_record, to_area))
            except ParseError as exc:
                if not skip_bad:
                    raise
                report.files.append(FileReport(str(path), fmt, bad=[str(exc)], note="skipped: nothing read"))
        if report.total("new") or report.total("changed") or store.get_meta(SPLIT_PENDING) or (
            store.pending_index_count()
        ):
            finish_ingest(store)
    return report


def finish_ingest(store: IngestStore) -> None:
    """What follows the files, in one transaction: index the records they added for
    full-text search and re-split every keyphrase line. The two run side by side: SQLite
    indexes on a second thread (without the GIL) while the split reads a snapshot of the
    committed records; a third thread checkpoints the files' pages on its own connection."""
    with store.transaction(), open_store(store.path) as beside:
        indexer = Worker(store.index_pending)
        copier = Worker(beside.checkpoint)  # the files' pages, while this transaction works
        try:
            with open_store(store.path, readonly=True) as snapshot:
                split_keyphrase_lines(store, snapshot=snapshot, busy=indexer)
        finally:
            indexer.wait()
            copier.wait()
        store.set_meta(SPLIT_PENDING, "")


class Worker(threading.Thread):
    """A function run on its own thread; wait() joins it and raises what it raised."""

    def __init__(self, fn: Callable[[], object]):
        super().__init__(name="landscape-worker", daemon=True)
        self.fn = fn
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.fn()
        except BaseException as exc:
            self.error = exc

    def wait(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


def _is_empty(path: Path) -> bool:
    """No bytes, or only whitespace (checked for small files only)."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if size == 0:
        return True
    if size > 4096 or not path.is_file():
        return False
    try:
        return not path.read_bytes().strip()
    except OSError:
        return False


CHILD_PARSE_BYTES = 16 << 20


def _ingest_file(
    store: IngestStore, path: Path, fmt: str, skip_bad: bool, on_record: Callable[[str], None] | None,
    to_area: CategoryAreas | None = None, batch_size: int = 500,
) -> FileReport:
    with store.transaction():
        used, records = parse_file(path, fmt)
        if path.stat().st_size >= CHILD_PARSE_BYTES:
            from .child import parse_in_child  # not at the top: the child runs this module as __main__

            records = parse_in_child(path, used)
        file_report = FileReport(str(path), used)
        batch: list[Record] = []
        for item in records:
            if isinstance(item, BadRecord):
                if not skip_bad:
                    raise item.error
                file_report.bad.append(str(item.error))
                continue
            if to_area is not None:
                to_area.apply(item)
            batch.append(item)
            if len(batch) >= batch_size:
                _write_batch(store, batch, file_report, on_record)
                batch = []
        _write_batch(store, batch, file_report, on_record)
        if file_report.new or file_report.changed:
            store.set_meta(SPLIT_PENDING, "1")  # committed with the file: a kill before the split reruns it
    return file_report


class CategoryAreas:
    """Areas from arXiv categories: the first pattern (in config order) that the record's
    primary category matches names its area, recorded as area_source "category"."""

    def __init__(self, patterns: dict[str, str]):
        if not isinstance(patterns, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in patterns.items()
        ):
            raise LandscapeError('config: expected [area_categories] as "pattern" = "area name" lines')
        self.patterns = list(patterns.items())
        self.known: dict[str, str | None] = {}

    def area(self, category: str) -> str | None:
        if category not in self.known:
            self.known[category] = next(
                (area.strip() for pattern, area in self.patterns if fnmatch.fnmatchcase(category, pattern)), None
            )
        return self.known[category]

    def apply(self, rec: Record) -> None:
        if rec.area:
            return
        categories = rec.extra.get("categories") or [rec.extra.get("category")]
        primary = categories[0] if isinstance(categories, list) and categories else None
        area = self.area(primary) if isinstance(primary, str) else None
        if area:
            rec.area, rec.area_source = area, "category"


def _write_batch(
    store: IngestStore, batch: list[Record], report: FileReport, on_record: Callable[[str], None] | None
) -> None:
    for status in store.upsert_records(batch):
        setattr(report, status, getattr(report, status) + 1)
        if on_record:
            on_record(status)


SEGMENTER_ARTIFACT = "keyphrases.segmenter"
RESPLIT_SHARE = 0.1  # refit once the lines new or changed since the fit exceed this share of those it saw


def split_keyphrase_lines(
    store: IngestStore, snapshot: IngestStore | None = None, busy: Worker | None = None,
    max_fit: int = 3000, batch: int = 2000, max_waiting: int = 50_000,
) -> int:
    """Split the given keyphrase lines not yet split with a vocabulary mined from the corpus.

    Returns how many records' phrases were written. The segmenter is fitted on an evenly spaced
    sample of at most max_fit lines (phrases recur, so a sample finds them) and stored with a
    fingerprint of every line it split. An ingest whose new or changed lines are at most
    RESPLIT_SHARE of the lines the stored segmenter was fitted with splits only those lines with
    it: the cost grows with the new lines, not the corpus. Past that share (or with nothing
    stored) the segmenter is refitted and every line re-split, deterministically for a given
    corpus. Lines are read from snapshot (default: the store) and written to the store; while
    busy still runs on the store's connection, up to max_waiting changed records are held back.
    """
    source = snapshot or store
    total = source.count_keyphrase_lines()
    if not total:
        return 0
    stored = _stored_segmenter(source)
    prints, unsplit = _line_prints(source, stored[1] if stored else None, batch)
    if stored is not None and len(unsplit) <= RESPLIT_SHARE * stored[2]:
        segmenter, fit_lines = stored[0], stored[2]
        rows: Iterable[tuple[str, str, list[str] | None]] = ((rid, line, None) for rid, line in unsplit)
    else:
        segmenter = PhraseSegmenter().fit(source.keyphrase_line_sample(max(1, total // max_fit)))
        fit_lines, rows = total, source.keyphrase_lines_with_phrases()
    changed = 0
    pending: list[tuple[str, list[str]]] = []
    for chunk in batches(rows, batch):
        splits = segmenter.segment_many([line for _, line, _ in chunk], partial(_texts_of, source, chunk))
        for (rid, _, current), phrases in zip(chunk, splits, strict=True):
            if phrases != current:
                pending.append((rid, phrases))
        if len(pending) >= batch and (busy is None or not busy.is_alive() or len(pending) >= max_waiting):
            if busy is not None:
                busy.wait()
            store.set_keyphrases_many(pending, "given", reindex=False)
            changed += len(pending)
            pending = []
    if busy is not None:
        busy.wait()
    store.set_keyphrases_many(pending, "given", reindex=False)
    artifact = segmenter.artifact({"fit_lines": fit_lines})
    artifact.arrays["split"] = prints
    store.put_artifact(SEGMENTER_ARTIFACT, pack(artifact))
    return changed + len(pending)


def _texts_of(store: IngestStore, chunk: list[tuple[str, str, list[str] | None]], indices: list[int]) -> list[str]:
    """The title and abstract of the chunk's records at these indices."""
    texts = store.keyphrase_texts([chunk[i][0] for i in indices])
    return [texts.get(chunk[i][0], "") for i in indices]


def _stored_segmenter(store: IngestStore) -> tuple[PhraseSegmenter, np.ndarray, int] | None:
    """(segmenter, sorted fingerprints of the lines it split, lines it was fitted with), if stored
    in a form this version reads (anything else is refitted)."""
    artifact = unpack(store.get_artifact(SEGMENTER_ARTIFACT), SEGMENTER_KIND, SEGMENTER_FORMAT)
    segmenter = PhraseSegmenter.from_artifact(artifact) if artifact is not None else None
    if artifact is None or segmenter is None or "split" not in artifact.arrays:
        return None
    return segmenter, np.asarray(artifact.arrays["split"], dtype=np.uint64), int(artifact.meta.get("fit_lines", 0))


def _line_prints(store: IngestStore, done: np.ndarray | None, batch: int) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Sorted fingerprints of every (id, keyphrase line), and the lines whose fingerprint is not
    among `done` (the ones the stored segmenter has not split)."""
    prints: list[np.ndarray] = []
    unsplit: list[tuple[str, str]] = []
    if done is not None:  # sorted once and searched by bisection: np.isin sorted all of it per batch,
        done = np.unique(done)  # which made +1,000 into a million records a 250 s ingest
    for chunk in batches(store.keyphrase_lines(), batch):
        fp = np.fromiter((_fingerprint(rid, line) for rid, line in chunk), dtype=np.uint64, count=len(chunk))
        prints.append(fp)
        if done is not None:
            at = np.minimum(np.searchsorted(done, fp), max(len(done) - 1, 0))
            new = done[at] != fp if len(done) else np.ones(len(fp), dtype=bool)
            unsplit.extend(row for row, is_new in zip(chunk, new.tolist(), strict=True) if is_new)
    return unique_values(np.concatenate(prints)) if prints else np.zeros(0, dtype=np.uint64), unsplit


def _fingerprint(rid: str, line: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{rid}\0{line}".encode(), digest_size=8).digest(), "little")


__all__ += ["ParseError", "listing"]
