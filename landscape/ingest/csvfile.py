"""CSV in our record schema (what `export --format csv` writes): formula-safe cells undone."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from ..export import CSV_COLUMNS, LIST_SEP, csv_unsafe
from ..models import BadRecord, ParseError, Record
from .schema import record_from_dict

REQUIRED = {"title", "abstract"}
_JSON_COLUMNS = ("sources", "sections", "extra")
_LIST_COLUMNS = ("authors", "keyphrases")
_FLAG_COLUMNS = ("title_derived", "authors_truncated")
MAX_FIELD = 64 * 1024 * 1024


def looks_like(head: str) -> bool:
    first = head.split("\n", 1)[0]
    try:
        columns = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return False
    return REQUIRED <= set(columns) and len(set(columns) & set(CSV_COLUMNS)) >= 3


def parse(path: str, lines: Iterable[tuple[int, str]]) -> Iterator[Record | BadRecord]:
    csv.field_size_limit(MAX_FIELD)
    numbered = iter(lines)
    position = {"line": 0}

    def feed() -> Iterator[str]:
        for number, text in numbered:
            position["line"] = number
            yield text + "\n"

    reader = csv.reader(feed(), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ParseError(path, position["line"] or 1, "a CSV header row", str(exc)) from None
    if header is None or not REQUIRED <= set(header):
        raise ParseError(path, 1, "a CSV header naming title and abstract", repr(",".join(header or [])[:60]))
    while True:
        start = position["line"] + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield BadRecord(ParseError(path, start, "a CSV row", str(exc)))
            return
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield BadRecord(ParseError(path, start, f"{len(header)} cells", f"{len(row)}"))
            continue
        try:
            yield record_from_dict(_decode_row(dict(zip(header, row)), path, start), path, start, "csv")
        except ParseError as exc:
            yield BadRecord(exc)


def _decode_row(row: dict[str, str], path: str, line: int) -> dict[str, Any]:
    cells = {k: csv_unsafe(v) for k, v in row.items()}
    data: dict[str, Any] = {k: (v or None) for k, v in cells.items() if k not in _JSON_COLUMNS}
    data["abstract"] = cells.get("abstract", "")
    for name in _LIST_COLUMNS:
        data[name] = [p.strip() for p in cells.get(name, "").split(LIST_SEP.strip()) if p.strip()]
    for name in _FLAG_COLUMNS:
        value = cells.get(name, "").strip().lower()
        if value not in ("", "0", "1", "true", "false"):
            raise ParseError(path, line, f"{name} as 0 or 1", repr(value[:20]))
        data[name] = value in ("1", "true")
    for name in _JSON_COLUMNS:
        text = cells.get(name, "").strip()
        if not text:
            data[name] = None
            continue
        try:
            data[name] = json.loads(text)
        except (ValueError, RecursionError):
            raise ParseError(path, line, f"{name} as JSON", repr(text[:30])) from None
    return data
