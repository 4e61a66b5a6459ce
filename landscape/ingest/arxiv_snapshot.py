"""arXiv's bulk metadata file (the Kaggle "arxiv-metadata-oai-snapshot.json"): one JSON object
per line with id, submitter, authors, title, comments, journal-ref, doi, report-no, categories,
license, abstract, versions, update_date and authors_parsed.

Read a line at a time, so a multi-gigabyte file streams in constant memory. The id is the
arXiv id (old style hep-th/9603067 too); authors come from authors_parsed ([last, first,
suffix]); the date is the first version's; titles and abstracts are unwrapped (arXiv wraps
them with newlines and indentation) and their TeX outside math becomes Unicode text.
Categories are kept in `extra` as a list, primary first; the area mapping
(`[area_categories]` in the config) reads them when the records are loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date
from email.utils import parsedate_to_datetime
from typing import Any

from ..models import BadRecord, ParseError, Record, Source
from ..text import tex_to_text, unwrap
from .ident import arxiv_id, doi, record_id
from .jsonl import parse_json_lines
from .listing import split_authors
from .schema import _clean, _describe, _Fields

FORMAT = "arxiv-snapshot"
_SNAPSHOT_KEYS = ('"authors_parsed"', '"versions"', '"categories"')
_NEW_ID = re.compile(r"(\d{2})(\d{2})\.\d{4,5}")
_OLD_ID = re.compile(r"[a-z\-]+(?:\.[A-Za-z\-]+)?/(\d{2})(\d{2})\d{3}")
_AFFILIATION = re.compile(r"\([^()]*\)")
_GMT = re.compile(r"[A-Z][a-z]{2}, (\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) \d\d:\d\d:\d\d GMT")
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}


def looks_like(head: str) -> bool:
    first = next((line.strip() for line in head.splitlines() if line.strip()), "")
    return first.startswith("{") and sum(key in first for key in _SNAPSHOT_KEYS) >= 2


def parse(path: str, lines: Iterable[tuple[int, str]]) -> Iterator[Record | BadRecord]:
    return parse_json_lines(path, lines, lambda data, number: record_from_snapshot(data, path, number))


def record_from_snapshot(data: Any, path: str, line: int) -> Record:
    """A Record from one decoded snapshot line; every field checked for its type first."""
    if not isinstance(data, dict):
        raise ParseError(path, line, "a JSON object (one arXiv record)", _describe(data))
    f = _Fields(data, path, line)
    raw_id = f.text("id", optional=False) or ""
    arxiv = arxiv_id(raw_id)
    if arxiv is None:
        raise f.fail("id", "an arXiv identifier (2101.11408 or hep-th/9603067)", raw_id)
    title = unwrap(tex_to_text(f.text("title") or "")) or None
    abstract = unwrap(tex_to_text(f.text("abstract") or ""))
    if not title and not abstract:
        raise ParseError(path, line, "a record with a title or an abstract", "neither")
    found_doi = doi(f.text("doi"))
    extra: dict[str, Any] = {"arxiv": arxiv}
    if found_doi:
        extra["doi"] = found_doi
    categories = (f.text("categories") or "").split()
    if categories:
        extra["categories"] = categories
        extra["category"] = categories[0]
    for key, name in (("journal-ref", "venue"), ("report-no", "report_no"), ("license", "license")):
        value = f.text(key)
        if value and (value := unwrap(value)):
            extra[name] = value
    return Record(
        id=record_id(title, abstract, arxiv, found_doi),
        title=title,
        title_derived=title is None,
        authors=_authors(f),
        date=_first_version_date(f, arxiv),
        abstract=abstract,
        sources=[Source(path=path, format=FORMAT, line=line)],
        extra=extra,
    )


def _authors(f: _Fields) -> list[str]:
    """'First Last Suffix' from authors_parsed; the authors string when that is missing."""
    parsed = f.data.get("authors_parsed")
    if parsed is None or parsed == []:
        names, _ = split_authors(_AFFILIATION.sub(" ", unwrap(tex_to_text(f.text("authors") or ""))))
        return names
    if not isinstance(parsed, list):
        raise f.fail("authors_parsed", "a list of [last, first, suffix] lists", parsed)
    names = []
    for parts in parsed:
        if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts[:3]):
            raise f.fail("authors_parsed", "a list of [last, first, suffix] lists", parsed)
        last, first, suffix = (parts + ["", ""])[:3]
        name = f"{first} {last} {suffix}" if suffix else f"{first} {last}" if first else last
        if "\\" in name:
            name = tex_to_text(name)
        if "  " in name or "\n" in name or name != name.strip():
            name = unwrap(name)
        if name:
            names.append(_clean(f, "authors_parsed", name))
    return names


def _first_version_date(f: _Fields, arxiv: str) -> str | None:
    """versions[0].created (RFC 2822) as YYYY-MM-DD; without versions, the year and month the
    id was issued (its YYMM), which is when the first version appeared."""
    versions = f.data.get("versions")
    if not versions:
        return _id_month(arxiv)
    if not isinstance(versions, list) or not isinstance(versions[0], dict):
        raise f.fail("versions", "a list of objects", versions)
    created = versions[0].get("created")
    if not isinstance(created, str):
        raise f.fail("versions[0].created", "a date like 'Mon, 2 Apr 2007 19:18:42 GMT'", created)
    m = _GMT.fullmatch(created)
    if m and m[2] in _MONTHS:
        try:
            return date(int(m[3]), _MONTHS[m[2]], int(m[1])).isoformat()
        except ValueError:
            pass
    try:
        when = parsedate_to_datetime(created)
        return (when.astimezone(UTC) if when.tzinfo else when).date().isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        raise f.fail("versions[0].created", "a date like 'Mon, 2 Apr 2007 19:18:42 GMT'", created) from None


def _id_month(arxiv: str) -> str | None:
    m = _NEW_ID.fullmatch(arxiv) or _OLD_ID.fullmatch(arxiv)
    if m is None or not 1 <= int(m[2]) <= 12:
        return None
    year = int(m[1])
    return f"{year + (1900 if year >= 91 else 2000)}-{m[2]}"
