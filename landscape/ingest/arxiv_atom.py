"""arXiv API responses (Atom XML), parsed with defusedxml.

Entity declarations, external entities and DTDs are refused (a billion-laughs file is a
ParseError, never an expansion). The arXiv id (version dropped) or DOI becomes the record id.
The API reports a bad query as a feed whose one entry is the error (id
http://arxiv.org/api/errors#..., title "Error"): such a saved answer is refused whole, never
stored as a paper titled "Error".
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ..models import BadRecord, ParseError, Record, Source
from ..text import tex_to_text
from .ident import arxiv_id, doi, record_id
from .reader import join_lines

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
MAX_BYTES = 128 * 1024 * 1024
_ENTRY_TAG = re.compile(r"<(?:[\w.-]+:)?entry[\s>/]")
_API_ERROR_ID = re.compile(r"^https?://(?:export\.)?arxiv\.org/api/errors\b")


def looks_like(head: str) -> bool:
    start = head.lstrip()[:2000]
    return start.startswith("<") and ("http://www.w3.org/2005/Atom" in head or "<feed" in start)


def parse(path: str, lines: Iterable[tuple[int, str]]) -> Iterator[Record | BadRecord]:
    text = join_lines(path, lines, MAX_BYTES)
    root = _parse_xml(path, text)
    if _local(root.tag) != "feed":
        raise ParseError(path, 1, "an Atom <feed> element", f"<{_local(root.tag)[:30]}>")
    entry_lines = [text.count("\n", 0, m.start()) + 1 for m in _ENTRY_TAG.finditer(text)]
    for index, entry in enumerate(e for e in root if _local(e.tag) == "entry"):
        line = entry_lines[index] if index < len(entry_lines) else 1
        if _API_ERROR_ID.search(_child_text(entry, "id")):
            raise ParseError(path, line, "an arXiv API answer with papers (this one reports an API error)",
                             repr(_child_text(entry, "summary") or _child_text(entry, "id")))
        try:
            yield _record(path, line, entry)
        except ParseError as exc:
            yield BadRecord(exc)


def _parse_xml(path: str, text: str) -> ET.Element:
    try:
        return fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ParseError(path, 1, "XML without DTDs or entity declarations", type(exc).__name__) from None
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else 1
        raise ParseError(path, line, "well-formed XML", str(exc).split(":")[0]) from None
    except (ValueError, RecursionError) as exc:
        raise ParseError(path, 1, "well-formed XML", type(exc).__name__) from None


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_text(entry: ET.Element, name: str) -> str:
    for child in entry:
        if _local(child.tag) == name:
            return " ".join("".join(child.itertext()).split())
    return ""


def _record(path: str, line: int, entry: ET.Element) -> Record:
    title = tex_to_text(_child_text(entry, "title")) or None
    abstract = tex_to_text(_child_text(entry, "summary"))
    if not title and not abstract:
        raise ParseError(path, line, "an <entry> with a <title> or <summary>", "neither")
    entry_id = _child_text(entry, "id")
    arxiv = arxiv_id(entry_id) if "arxiv" in entry_id.lower() or not entry_id.startswith("http") else None
    found_doi = doi(_child_text(entry, "doi"))
    for link in entry:
        if _local(link.tag) == "link" and link.get("title") == "doi":
            found_doi = found_doi or doi(link.get("href"))
    authors = [
        tex_to_text(" ".join("".join(name.itertext()).split()))
        for author in entry if _local(author.tag) == "author"
        for name in author if _local(name.tag) == "name"
    ]
    published = _child_text(entry, "published")
    date = published[:10] if re.match(r"\d{4}-\d{2}-\d{2}", published) else None
    extra = {k: v for k, v in (("arxiv", arxiv), ("doi", found_doi)) if v}
    category = next((c.get("term") for c in entry if _local(c.tag) == "primary_category"), None)
    if category:
        extra["category"] = category
    journal = _child_text(entry, "journal_ref")
    if journal:
        extra["venue"] = journal
    return Record(
        id=record_id(title, abstract, arxiv, found_doi),
        title=title,
        title_derived=title is None,
        authors=[a for a in authors if a],
        date=date,
        abstract=abstract,
        sources=[Source(path=path, format="arxiv-atom", line=line, extra={"entry_id": entry_id})],
        extra=extra,
    )
