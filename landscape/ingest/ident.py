"""Stable record ids: arXiv id or DOI when a source gives one, else a hash of the title.

A record without a title (an abstracts page) is identified by its abstract instead, so the
same abstract read twice is the same record.
"""

from __future__ import annotations

import hashlib
import re

from ..text import normalise_title, title_id

_ARXIV_NEW = re.compile(r"(?<![\w.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\w.])")
_ARXIV_OLD = re.compile(r"(?<![\w.])([a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?(?![\w.])")
_DOI = re.compile(r"(10\.\d{4,9}/\S+)")


def arxiv_id(text: str | None) -> str | None:
    """The bare arXiv identifier (no version) in an id, URL or eprint field, if any."""
    if not text:
        return None
    text = text.strip()
    m = _ARXIV_NEW.search(text) or _ARXIV_OLD.search(text)
    return m.group(1) if m else None


def doi(text: str | None) -> str | None:
    """A DOI in a field or URL, lowercased (DOIs are case-insensitive), trailing punctuation cut."""
    if not text:
        return None
    m = _DOI.search(text.strip())
    return m.group(1).rstrip(".,;)]}").lower() if m else None


def abstract_id(abstract: str) -> str:
    return "a" + hashlib.sha1(normalise_title(abstract).encode()).hexdigest()[:12]


def record_id(
    title: str | None, abstract: str = "", arxiv: str | None = None, doi_value: str | None = None
) -> str:
    """arxiv:ID, else doi:DOI, else the title hash, else the abstract hash."""
    if arxiv:
        return f"arxiv:{arxiv}"
    if doi_value:
        return f"doi:{doi_value}"
    if title and normalise_title(title):
        return title_id(title)
    return abstract_id(abstract)
