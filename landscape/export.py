"""Writing the store back out: JSONL and CSV in the record schema that ingest reads."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from .models import Record
from .store.interfaces import PageStore

CSV_COLUMNS = [
    "id", "kind", "title", "title_derived", "authors", "authors_truncated", "date", "area",
    "abstract", "keyphrases", "keyphrase_line", "sources", "sections", "extra", "area_source",
]
LIST_SEP = "; "
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    """Neutralise spreadsheet formula injection: a cell never starts with = + - @ (prefix ')."""
    return "'" + value if value.startswith(_FORMULA_START) or value.startswith("'") else value


def csv_unsafe(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def record_to_csv_row(rec: Record) -> dict[str, str]:
    data = rec.to_dict()
    row = {
        "id": rec.id, "kind": rec.kind, "title": rec.title or "",
        "title_derived": "1" if rec.title_derived else "0",
        "authors": LIST_SEP.join(a.replace(";", ",") for a in rec.authors),
        "authors_truncated": "1" if rec.authors_truncated else "0",
        "date": rec.date or "", "area": rec.area or "", "abstract": rec.abstract,
        "keyphrases": LIST_SEP.join(rec.keyphrases), "keyphrase_line": rec.keyphrase_line or "",
        "sources": json.dumps(data["sources"], ensure_ascii=False),
        "sections": json.dumps(data["sections"], ensure_ascii=False),
        "extra": json.dumps(rec.extra, ensure_ascii=False, sort_keys=True),
        "area_source": rec.area_source or "",
    }
    return {k: csv_safe(v) for k, v in row.items()}


def write_jsonl(records: Iterable[Record], out: IO[str]) -> int:
    n = 0
    for rec in records:
        out.write(json.dumps(rec.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    return n


def write_csv(records: Iterable[Record], out: IO[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for rec in records:
        writer.writerow(record_to_csv_row(rec))
        n += 1
    return n


def writers() -> dict[str, Callable[[Iterable[Record], IO[str]], int]]:
    table: dict[str, Callable[[Iterable[Record], IO[str]], int]] = {"jsonl": write_jsonl, "csv": write_csv}
    try:
        from .ingest.bibtex import write_bibtex
    except ImportError:
        pass
    else:
        table["bibtex"] = write_bibtex
    return table


def export_records(store: PageStore, fmt: str, out_path: str | os.PathLike[str]) -> int:
    """Write every record atomically: a temp file beside the target, then rename."""
    writer = writers()[fmt]
    target = Path(out_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            n = writer(store.iter_records(), f)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n
