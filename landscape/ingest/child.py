"""Parsing a big file in a child process, so that parsing and the store's writes use two cores.

Threads take turns on Python's interpreter lock: SQLite lets go of it only while it writes one
row, so a parsing thread and a writing thread mostly wait for each other. A child process has
its own lock. It sends records back in batches as plain tuples, which pickle several times
faster than the dataclasses; the pipe holds about one batch, so memory stays bounded. It is a
plain subprocess, not multiprocessing, so no caller needs an `if __name__ == '__main__'` guard.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..models import BadRecord, LandscapeError, ParseError, Record, Section, Source

RECORD, BAD, FAILED, DONE, CRASHED = range(5)


def parse_in_child(path: Path, fmt: str) -> Iterator[Record | BadRecord]:
    """What parse_file(path, fmt)[1] yields, in the same order, with the same errors, parsed by
    a child process (`python -m landscape.ingest.child PATH FORMAT`). fmt is a format name.
    The child's failures come back through the pipe, so its stderr is not shown."""
    child = subprocess.Popen(
        [sys.executable, "-m", __name__, str(path), fmt],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert child.stdout is not None
    try:
        while True:
            try:
                items = pickle.load(child.stdout)
            except EOFError:
                raise LandscapeError(
                    f"{path}: the parsing process stopped (exit code {child.wait()})"
                ) from None
            for tag, value in items:
                if tag == RECORD:
                    yield _record(value)
                elif tag == BAD:
                    yield BadRecord(ParseError(*value))
                elif tag == FAILED:
                    raise ParseError(*value)
                elif tag == DONE:
                    return
                else:
                    raise LandscapeError(f"{path}: parsing failed in the child process:\n{value}")
    finally:
        child.stdout.close()
        if child.poll() is None:
            child.kill()
        child.wait()


def main(path: str, fmt: str, size: int = 500) -> None:
    """The child: parse, and write batches of tagged items to stdout, the last one ending in
    DONE, FAILED (the documented parse error) or CRASHED (anything else, with its traceback)."""
    from . import parse_file

    out = sys.stdout.buffer
    items: list[tuple[int, Any]] = []
    try:
        for item in parse_file(Path(path), fmt)[1]:
            if isinstance(item, BadRecord):
                items.append((BAD, _error_args(item.error)))
            else:
                items.append((RECORD, _plain(item)))
            if len(items) >= size:
                pickle.dump(items, out, protocol=pickle.HIGHEST_PROTOCOL)
                items = []
        items.append((DONE, None))
    except ParseError as exc:
        items.append((FAILED, _error_args(exc)))
    except Exception:
        items.append((CRASHED, traceback.format_exc(limit=5)))
    pickle.dump(items, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def _error_args(exc: ParseError) -> tuple[str, int, str, str]:
    return (exc.path, exc.line, exc.expected, exc.found)


def _plain(rec: Record) -> tuple[Any, ...]:
    return (
        rec.id, rec.kind, rec.title, rec.title_derived, rec.authors, rec.authors_truncated, rec.date,
        rec.area, rec.abstract, rec.keyphrases, rec.keyphrase_line,
        [(s.path, s.format, s.line, s.ingested_at, s.extra) for s in rec.sources],
        [(s.title, s.text, s.summary) for s in rec.sections], rec.extra, rec.area_source,
    )


def _record(t: tuple[Any, ...]) -> Record:
    return Record(
        t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10],
        [Source(*s) for s in t[11]], [Section(*s) for s in t[12]], t[13], t[14],
    )


if __name__ == "__main__":
    try:
        main(*sys.argv[1:3])
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(1)  # the ingest stopped reading (a bad record, Ctrl-C): it reports, not us
