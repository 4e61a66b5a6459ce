"""OpenAlex: the works API with cursor paging; abstracts rebuilt from abstract_inverted_index.

OpenAlex asks for a contact address (`mailto`, the "polite pool") and at most 10 requests a
second. A work's arXiv id is read from its arXiv location, so the journal version OpenAlex
knows and the preprint arXiv gives are one record.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..ingest.ident import arxiv_id
from ..models import ParseError
from . import Page, Reference, Settings, iso_date, service_record
from .http import HttpClient, Response

ENDPOINT = "https://api.openalex.org/works"


def make(settings: Settings) -> OpenAlexClient:
    return OpenAlexClient(settings.http("openalex", 10, 1.0), settings.endpoint, settings.contact,
                          settings.page_size or 100)


class OpenAlexClient:
    name = "openalex"

    def __init__(self, http: HttpClient, endpoint: str | None = None, mailto: str | None = None, page_size: int = 100):
        self.http, self.endpoint, self.mailto, self.page_size = http, endpoint or ENDPOINT, mailto, page_size

    def pages(self, query: str | None, since: str | None, cursor: dict[str, Any] | None) -> Iterator[Page]:
        token = (cursor or {}).get("cursor", "*")
        while True:
            response = self.http.get(self.endpoint, {
                "search": query, "filter": f"from_publication_date:{since}" if since else None,
                "per-page": self.page_size, "cursor": token, "mailto": self.mailto,
            })
            items, token = parse_page(response)
            more = bool(items) and bool(token)
            yield Page(items, {"cursor": token} if more else None)
            if not more:
                return


def parse_page(response: Response) -> tuple[list, str | None]:
    data = response.json()
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ParseError(response.url, 1, 'an OpenAlex answer {"results": [...]}', "another shape")
    return [parse_work(w) for w in data["results"]], (data.get("meta") or {}).get("next_cursor")


def abstract_text(index: dict[str, list[int]] | None) -> str:
    """The abstract from OpenAlex's inverted index (word -> positions)."""
    if not index:
        return ""
    words: dict[int, str] = {}
    for word, positions in index.items():
        for position in positions or []:
            words[int(position)] = word
    return " ".join(words[i] for i in sorted(words))


def short_id(url: str | None) -> str | None:
    return url.rstrip("/").rsplit("/", 1)[-1] if url else None


def parse_work(work: dict[str, Any]) -> tuple[Any, list[Reference]]:
    openalex = short_id(work.get("id"))
    arxiv = None
    for location in work.get("locations") or []:
        for key in ("landing_page_url", "pdf_url"):
            value = location.get(key) or ""
            if "arxiv.org" in value:
                arxiv = arxiv or arxiv_id(value)
    doi = work.get("doi") or (work.get("ids") or {}).get("doi")
    if doi and "10.48550/arxiv." in doi.lower():
        arxiv = arxiv or arxiv_id(doi.split("arxiv.", 1)[-1].split("arXiv.", 1)[-1])
    source = ((work.get("primary_location") or {}).get("source") or {}).get("display_name")
    rec = service_record(
        "openalex", f"https://openalex.org/{openalex}",
        work.get("title") or work.get("display_name"),
        [((a.get("author") or {}).get("display_name") or "") for a in work.get("authorships") or []],
        iso_date(work.get("publication_date") or work.get("publication_year")),
        abstract_text(work.get("abstract_inverted_index")),
        {"openalex": openalex, "doi": doi, "arxiv": arxiv},
        source,
    )
    refs = [Reference({"openalex": short_id(w)}) for w in work.get("referenced_works") or [] if short_id(w)]
    return rec, refs
