"""JSON Lines in our record schema, one record per line (what `export --format jsonl` writes)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..models import BadRecord, ParseError, Record
from .schema import record_from_dict


def looks_like(head: str) -> bool:
    first = next((line.strip() for line in head.splitlines() if line.strip()), "")
    return first.startswith("{") and '"' in first


def parse(path: str, lines: Iterable[tuple[int, str]]) -> Iterator[Record | BadRecord]:
    return parse_json_lines(path, lines, lambda data, number: record_from_dict(data, path, number, "jsonl"))


def parse_json_lines(path: str, lines: Iterable[tuple[int, str]],
                     make: Callable[[Any, int], Record]) -> Iterator[Record | BadRecord]:
    """One record per non-blank line: `make(decoded, line_number)`; a line that is not JSON, or
    that `make` refuses with a ParseError, becomes a BadRecord naming the line."""
    for number, line in lines:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield BadRecord(ParseError(path, number, "a JSON object", _json_problem(exc, line)))
            continue
        try:
            yield make(data, number)
        except ParseError as exc:
            yield BadRecord(exc)


def _json_problem(exc: Exception, line: str) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg.lower()} at column {exc.colno}: {line[max(0, exc.pos - 10): exc.pos + 10]!r}"
    return "JSON nested too deeply"
