"""Semantic Scholar: the Graph API paper search, offset pagination, an optional key.

Without a key the public pool is shared by everyone, so the client keeps to one request a
second (also the documented rate of a keyed client); a key (S2_API_KEY or [sync] s2_key) is
sent as x-api-key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..models import LandscapeError, ParseError
from . import Page, Reference, Settings, iso_date, service_record
from .http import HttpClient, Response

ENDPOINT = "https://api.semanticscholar.org/graph/v1/paper/search"
FIELDS = ("title,abstract,authors,year,publicationDate,externalIds,venue,"
          "references.paperId,references.externalIds,references.title")


def make(settings: Settings) -> S2Client:
    key = settings.api_key or settings.env.get("S2_API_KEY")
    http = settings.http("s2", 1, 1.0, {"x-api-key": key} if key else None)
    return S2Client(http, settings.endpoint, settings.page_size or 100)


class S2Client:
    name = "s2"

    def __init__(self, http: HttpClient, endpoint: str | None = None, page_size: int = 100):
        self.http, self.endpoint, self.page_size = http, endpoint or ENDPOINT, page_size

    def pages(self, query: str | None, since: str | None, cursor: dict[str, Any] | None) -> Iterator[Page]:
        if not query:
            raise LandscapeError("s2: expected a --query (Semantic Scholar searches need words)")
        offset = int((cursor or {}).get("offset", 0))
        while True:
            response = self.http.get(self.endpoint, {
                "query": query, "offset": offset, "limit": self.page_size, "fields": FIELDS,
                "publicationDateOrYear": f"{since}:" if since else None,
            })
            items, next_offset = parse_page(response)
            more = bool(items) and next_offset is not None
            offset = next_offset if next_offset is not None else offset + len(items)
            yield Page(items, {"offset": offset} if more else None)
            if not more:
                return


def parse_page(response: Response) -> tuple[list, int | None]:
    data = response.json()
    if not isinstance(data, dict) or not isinstance(data.get("data", []), list):
        raise ParseError(response.url, 1, 'a Semantic Scholar answer {"data": [...]}', "another shape")
    next_offset = data.get("next")
    return [parse_paper(p) for p in data.get("data") or []], int(next_offset) if next_offset is not None else None


def _ids(paper: dict[str, Any]) -> dict[str, str | None]:
    external = paper.get("externalIds") or {}
    return {"s2": paper.get("paperId"), "arxiv": external.get("ArXiv"), "doi": external.get("DOI")}


def _authors(authors: list[dict[str, Any] | None]) -> list[str]:
    """Names in order, each S2 author once: S2 answers can list the same author (same
    authorId) twice; two different people of one name (no id, or other ids) both stay."""
    seen: set[str] = set()
    names = []
    for author in authors:
        author = author or {}
        key = author.get("authorId")
        if key and key in seen:
            continue
        if key:
            seen.add(key)
        names.append(author.get("name") or "")
    return names


def parse_paper(paper: dict[str, Any]) -> tuple[Any, list[Reference]]:
    pid = paper.get("paperId") or ""
    rec = service_record(
        "s2", f"https://www.semanticscholar.org/paper/{pid}",
        paper.get("title"), _authors(paper.get("authors") or []),
        iso_date(paper.get("publicationDate") or paper.get("year")), paper.get("abstract"),
        _ids(paper), paper.get("venue"),
    )
    refs = []
    for ref in paper.get("references") or []:
        ids = {k: str(v) for k, v in _ids(ref or {}).items() if v}
        if ids or (ref or {}).get("title"):
            refs.append(Reference(ids, (ref or {}).get("title")))
    return rec, refs
