"""A paper aggregator's listing page: chrome, a topic header, then title / source / abstract.

The source line ("arXiv.org Artificial Intelligence") and the page's topic header
("fundamental science") are kept in the record's and the source's `extra`; navigation chrome
("Goto", "Collaborating Authors") is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from ..models import BadRecord, ParseError, Record, Source
from ..text import tex_to_text
from .ident import record_id

CHROME = {"goto", "collaborating authors", "load more", "show more", "next", "previous", "home", "menu"}
SOURCE = re.compile(
    r"^(?:arxiv\.org|biorxiv|medrxiv|chemrxiv|ssrn|openreview|semantic scholar|papers with code"
    r"|nature|science|springer|elsevier|ieee|acm|aps|iop|pnas)\b[^.!?]{0,80}$",
    re.I,
)
TOPIC = re.compile(r"^[\u00b7\u2022>#]\s*(?P<topic>\S.{0,80})$")


def looks_like(head: str) -> bool:
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    sources = sum(1 for line in lines if SOURCE.match(line))
    chrome = sum(1 for line in lines[:10] if line.lower() in CHROME)
    return sources >= 2 or (sources >= 1 and chrome >= 1)


def parse(path: str, lines: Iterable[tuple[int, str]]) -> Iterator[Record | BadRecord]:
    topic: str | None = None
    entry: list[tuple[int, str]] = []
    seen = False
    for number, raw in lines:
        line = raw.strip()
        if not line or (not entry and line.lower() in CHROME):
            continue
        m = TOPIC.match(line)
        if m and not entry:
            topic = m["topic"].strip()
            continue
        entry.append((number, line))
        if len(entry) == 2 and not SOURCE.match(line):
            if not seen and topic is None:  # a bare topic header line before the first entry
                topic, entry = entry[0][1], entry[1:]
                continue
            yield BadRecord(ParseError(path, number, "a source line like 'arXiv.org Machine Learning'", repr(line)))
            entry = []
        elif len(entry) == 3:
            seen = True
            yield _build(path, entry, topic)
            entry = []
    if entry:
        number = entry[-1][0]
        missing = "source line" if len(entry) == 1 else "abstract"
        yield BadRecord(ParseError(path, number, f"the entry's {missing}", "end of file"))
    elif not seen:
        raise ParseError(path, 1, "title / source / abstract entries", "none in the file")


def _build(path: str, entry: list[tuple[int, str]], topic: str | None) -> Record:
    (line, title), (_, source), (_, abstract) = entry
    title, abstract = tex_to_text(title), tex_to_text(abstract)
    extra = {"source": source} | ({"topic": topic} if topic else {})
    return Record(
        id=record_id(title, abstract),
        title=title,
        abstract=abstract,
        sources=[Source(path=path, format="aggregator", line=line, extra=dict(extra))],
        extra=extra,
    )
