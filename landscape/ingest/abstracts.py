"""A page of abstracts: paragraphs starting 'Abstract:', no titles, no authors.

The record's title stays missing; a display title derived from the first sentence is given
and flagged as derived, and the id is a hash of the abstract (there is no title to hash).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from ..models import BadRecord, ParseError, Record, Source
from ..text import tex_to_text
from .ident import abstract_id

_START = re.compile(r"^\s*abstract\s*[:.]\s*", re.I)


def looks_like(head: str) -> bool:
    lines = [line for line in head.splitlines() if line.strip()]
    starts = sum(1 for line in lines if _START.match(line))
    return starts >= 1 and starts * 2 >= len(lines[:-1] or lines)


def parse(path: str, lines: Iterable[tuple[int, str]]) -> Iterator[Record | BadRecord]:
    start, parts = 0, []
    seen = False
    for number, raw in lines:
        line = raw.strip()
        if not line:
            continue
        m = _START.match(line)
        if m:
            if parts:
                yield _build(path, start, parts)
            start, parts, seen = number, [line[m.end():]], True
        elif parts:
            parts.append(line)
        else:
            yield BadRecord(ParseError(path, number, "a paragraph starting 'Abstract:'", repr(line)))
    if parts:
        yield _build(path, start, parts)
    if not seen:
        raise ParseError(path, 1, "a paragraph starting 'Abstract:'", "none in the file")


def _build(path: str, line: int, parts: list[str]) -> Record | BadRecord:
    abstract = tex_to_text(" ".join(p for p in parts if p))
    if not abstract:
        return BadRecord(ParseError(path, line, "the abstract's text after 'Abstract:'", "nothing"))
    return Record(
        id=abstract_id(abstract),
        title=None,
        title_derived=True,
        abstract=abstract,
        sources=[Source(path=path, format="abstracts", line=line)],
    )
