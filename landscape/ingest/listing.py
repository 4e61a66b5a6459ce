"""The landscape listing: '<Area> <Mon D, YYYY>', title, authors, abstract, keyphrase line."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime

from ..models import BadRecord, ParseError, Record, Source
from ..text import tex_to_text, title_id

HEADER = re.compile(
    r"^(?P<area>[A-Z][A-Za-z&,'()\- ]{1,60}?)\s+"
    r"(?P<date>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, \d{4})\s*$"
)
CHROME = {"latest", "all posts", "load more", "show more"}
FIELDS = ("title", "authors", "abstract", "keyphrases")


def looks_like(head: str) -> bool:
    return sum(1 for line in head.splitlines() if HEADER.match(line.strip())) >= 1


_MONTHS = {
    name: number
    for number, names in enumerate(
        [("Jan", "January"), ("Feb", "February"), ("Mar", "March"), ("Apr", "April"), ("May",),
         ("Jun", "June"), ("Jul", "July"), ("Aug", "August"), ("Sep", "September"),
         ("Oct", "October"), ("Nov", "November"), ("Dec", "December")],
        start=1,
    )
    for name in names
}
_PLAIN_DATE = re.compile(r"([A-Z][a-z]+) ([1-9]|[12][0-9]|3[01]), ([0-9]{4})", re.ASCII)


def parse_date(text: str) -> str | None:
    text = text.replace("Sept ", "Sep ").replace(".", "")
    plain = _plain_date(text)
    if plain:
        return plain
    for fmt in ("%b %d, %Y", "%B %d, %Y"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _plain_date(text: str) -> str | None:
    """The common 'Mar 2, 2026' without strptime (which costs more than the rest of an
    entry); anything else is left to strptime."""
    m = _PLAIN_DATE.fullmatch(text)
    month = _MONTHS.get(m[1]) if m else None
    if month is None:
        return None
    try:
        return date(int(m[3]), month, int(m[2])).isoformat()
    except ValueError:
        return None


_ET_AL = re.compile(r",?\s*\bet al\.?$")
_AUTHOR_SEP = re.compile(r",\s*|\s+and\s+")


def split_authors(line: str) -> tuple[list[str], bool]:
    """Authors and whether the list was cut short ('et al.' is a truncation, not a person)."""
    text = line.strip()
    truncated = False
    m = _ET_AL.search(text)
    if m:
        text, truncated = text[: m.start()], True
    names = [n.strip() for n in _AUTHOR_SEP.split(text) if n.strip()]
    return names, truncated


def parse(path: str, lines: Iterable[tuple[int, str]]) -> Iterator[Record | BadRecord]:
    entry: list[tuple[int, str]] = []
    seen_header = False
    for number, raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line[-1].isdigit() and HEADER.match(line):  # a header ends in its year
            if entry:
                yield _build(path, entry)
            entry = [(number, line)]
            seen_header = True
            continue
        if line.lower() in CHROME and (not entry or len(entry) >= 4):
            continue
        if not entry:
            if seen_header:
                yield BadRecord(ParseError(path, number, "a header line '<Area> <Mon D, YYYY>'", repr(line)))
            continue
        entry.append((number, line))
    if entry:
        yield _build(path, entry)
    if not seen_header:
        raise ParseError(path, 1, "a listing entry header '<Area> <Mon D, YYYY>'", "none in the file")


def _build(path: str, entry: list[tuple[int, str]]) -> Record | BadRecord:
    (line_no, header), fields = entry[0], entry[1:]
    m = HEADER.match(header)
    assert m is not None
    date = parse_date(m["date"])
    if date is None:
        return BadRecord(ParseError(path, line_no, "a date like 'Mar 2, 2026'", repr(m["date"])))
    if len(fields) < 3:
        missing = FIELDS[len(fields)]
        found_line = entry[-1][0] + 1
        return BadRecord(ParseError(path, found_line, f"the entry's {missing} line", "the next entry or end of file"))
    if len(fields) > 4:
        number, text = fields[4]
        return BadRecord(ParseError(path, number, "a header line '<Area> <Mon D, YYYY>'", repr(text)))
    title = tex_to_text(fields[0][1])
    authors, truncated = split_authors(tex_to_text(fields[1][1]))
    keyphrase_line = fields[3][1].lower() if len(fields) == 4 else None
    return Record(
        id=title_id(title),
        kind="paper",
        title=title,
        authors=authors,
        authors_truncated=truncated,
        date=date,
        area=m["area"].strip(),
        abstract=tex_to_text(fields[2][1]),
        keyphrase_line=keyphrase_line,
        sources=[Source(path=path, format="listing", line=line_no)],
    )
