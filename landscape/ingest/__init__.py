"""Files -> records -> store. One parser per format, a sniffer, one transaction per file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..models import BadRecord, ParseError, Record
from ..store import Store
from . import listing
from .phrases import PhraseSegmenter
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


def ingest_paths(
    store: Store,
    paths: Iterable[str | os.PathLike[str]],
    fmt: str = "auto",
    skip_bad: bool = False,
    on_record: Callable[[str], None] | None = None,
) -> IngestReport:
    """Ingest files into the store, one transaction per file.

    Without skip_bad the first bad record aborts the whole run with its ParseError and
    nothing of that file is written; files before it stay ingested.
    """
    report = IngestReport()
    for path in iter_files(paths):
        if path.is_file() and path.stat().st_size == 0:
            report.files.append(FileReport(str(path), fmt, note="empty file, nothing to ingest"))
            continue
        report.files.append(_ingest_file(store, path, fmt, skip_bad, on_record))
    if report.total("new") or report.total("changed"):
        with store.transaction():
            split_keyphrase_lines(store)
    return report


def _ingest_file(
    store: Store, path: Path, fmt: str, skip_bad: bool, on_record: Callable[[str], None] | None
) -> FileReport:
    with store.transaction():
        used, records = parse_file(path, fmt)
        file_report = FileReport(str(path), used)
        for item in records:
            if isinstance(item, BadRecord):
                if not skip_bad:
                    raise item.error
                file_report.bad.append(str(item.error))
                continue
            status = store.upsert_record(item)
            setattr(file_report, status, getattr(file_report, status) + 1)
            if on_record:
                on_record(status)
    return file_report


def split_keyphrase_lines(store: Store, max_fit: int = 20000) -> int:
    """Re-split every given keyphrase line with a vocabulary mined from the store's corpus.

    Returns how many records' phrases changed. Deterministic for a given corpus, so running it
    again after an ingest that changed nothing changes nothing.
    """
    rows = [tuple(r) for r in store.keyphrase_lines()]
    if not rows:
        return 0
    rows.sort()
    step = max(1, len(rows) // max_fit)
    segmenter = PhraseSegmenter().fit((line, text) for _, line, text in rows[::step])
    current = store.given_keyphrases()
    changed = 0
    for rid, line, text in rows:
        phrases = segmenter.segment(line, text)
        if phrases != current.get(rid):
            store.set_keyphrases(rid, phrases, "given")
            changed += 1
    return changed


__all__ += ["ParseError", "listing"]
