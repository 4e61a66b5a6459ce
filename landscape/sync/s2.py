"""Semantic Scholar: the Graph API relevance search for papers, their references by batch.

Each page costs two requests. GET /paper/search gives the papers; its documentation does not
promise nested data (the bulk search says outright that citations and references are not
available there), so the references come the documented way: one POST /paper/batch with the
page's paper ids and `references.*` fields (at most 500 ids and 10 MB an answer; a page over
the size cap is asked again in halves). The relevance search gives at most 1,000 results:
the client asks no further, and says so in one line instead of failing.

Without a key the public pool is shared by everyone, so the client keeps to one request a
second (also the documented rate of a keyed client); a key (S2_API_KEY or [sync] s2_key) is
sent as x-api-key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..models import LandscapeError, ParseError
from . import Page, Reference, Settings, iso_date, service_record
from .http import HttpClient, Response, SyncError

BASE = "https://api.semanticscholar.org/graph/v1"
FIELDS = "title,abstract,authors,year,publicationDate,externalIds,venue"
REFERENCE_FIELDS = "references.paperId,references.externalIds,references.title"
MAX_RESULTS = 1000
BATCH_IDS = 500
PAST_THE_END = "Requested data for this limit and/or offset is not available"
TOO_LARGE = "exceed maximum size"


def make(settings: Settings) -> S2Client:
    key = settings.api_key or settings.env.get("S2_API_KEY")
    http = settings.http("s2", 1, 1.0, {"x-api-key": key} if key else None)
    return S2Client(http, settings.endpoint, settings.page_size or 100)


def endpoints(endpoint: str | None) -> tuple[str, str]:
    """(search URL, batch URL) from the Graph API base, or from a search URL as given before."""
    base = (endpoint or BASE).rstrip("/")
    if base.endswith("/paper/search"):
        base = base[: -len("/paper/search")]
    return base + "/paper/search", base + "/paper/batch"


class S2Client:
    name = "s2"

    def __init__(self, http: HttpClient, endpoint: str | None = None, page_size: int = 100):
        self.http, self.page_size = http, min(page_size, 100)
        self.search_url, self.batch_url = endpoints(endpoint)

    def pages(self, query: str | None, since: str | None, cursor: dict[str, Any] | None) -> Iterator[Page]:
        if not query:
            raise LandscapeError("s2: expected a --query (Semantic Scholar searches need words)")
        offset = int((cursor or {}).get("offset", 0))
        total: Any = None
        while True:
            if offset >= MAX_RESULTS:
                yield Page([], None, note=capped(offset, total))
                return
            try:
                response = self.http.get(self.search_url, {
                    "query": query, "offset": offset, "limit": min(self.page_size, MAX_RESULTS - offset),
                    "fields": FIELDS, "publicationDateOrYear": f"{since}:" if since else None,
                })
            except SyncError as exc:
                if offset and exc.status == 400 and PAST_THE_END in exc.said:
                    yield Page([], None, note=f"Semantic Scholar has no results past {offset:,} for this query")
                    return
                raise
            papers, next_offset, total = parse_page(response)
            references = self.references([p.get("paperId") for p in papers]) if papers else {}
            items = [parse_paper(p, references.get(p.get("paperId") or "")) for p in papers]
            more = bool(items) and next_offset is not None
            offset = next_offset if next_offset is not None else offset + len(items)
            if more and offset >= MAX_RESULTS:
                yield Page(items, None, note=capped(offset, total))
                return
            yield Page(items, {"offset": offset} if more else None)
            if not more:
                return

    def references(self, paper_ids: list[str | None]) -> dict[str, list[Reference]]:
        """Each paper's references, by paper id, from POST /paper/batch."""
        ids = [pid for pid in dict.fromkeys(paper_ids) if pid]
        found: dict[str, list[Reference]] = {}
        for start in range(0, len(ids), BATCH_IDS):
            found.update(self._batch(ids[start:start + BATCH_IDS]))
        return found

    def _batch(self, ids: list[str]) -> dict[str, list[Reference]]:
        try:
            response = self.http.post_json(self.batch_url, {"fields": REFERENCE_FIELDS}, {"ids": ids})
        except SyncError as exc:
            if exc.status == 400 and TOO_LARGE in exc.said and len(ids) > 1:
                half = len(ids) // 2
                return {**self._batch(ids[:half]), **self._batch(ids[half:])}
            raise
        return parse_batch(response, ids)


def capped(offset: int, total: Any) -> str:
    about = f" of about {int(total):,}" if str(total or "").isdigit() else ""
    return (f"Semantic Scholar's relevance search gives at most {MAX_RESULTS:,} results; stopped at"
            f" {offset:,}{about} (narrow the query, or use --since, to reach the others)")


def parse_page(response: Response) -> tuple[list[dict[str, Any]], int | None, Any]:
    """(papers, the offset of the next page or None, the service's approximate total)."""
    data = response.json()
    if not isinstance(data, dict) or not isinstance(data.get("data", []), list):
        raise ParseError(response.url, 1, 'a Semantic Scholar answer {"data": [...]}', "another shape")
    next_offset = data.get("next")
    papers = [p for p in data.get("data") or [] if isinstance(p, dict)]
    return papers, int(next_offset) if next_offset is not None else None, data.get("total")


def parse_batch(response: Response, ids: list[str]) -> dict[str, list[Reference]]:
    """References by paper id from a batch answer: a list in the order of the ids asked, with
    null where S2 knows no such paper."""
    data = response.json()
    if not isinstance(data, list) or len(data) != len(ids):
        found = f"a list of {len(data)}" if isinstance(data, list) else "another shape"
        raise ParseError(response.url, 1, f"a Semantic Scholar batch answer: a list of {len(ids)} papers", found)
    out: dict[str, list[Reference]] = {}
    for pid, paper in zip(ids, data):
        if isinstance(paper, dict):
            out[pid] = references_of(paper)
    return out


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


def references_of(paper: dict[str, Any]) -> list[Reference]:
    """The references S2 lists for a paper: each with whatever ids it has, or its title alone
    (S2 keeps unmatched bibliography entries with a null paperId)."""
    refs = []
    for ref in paper.get("references") or []:
        ids = {k: str(v) for k, v in _ids(ref or {}).items() if v}
        if ids or (ref or {}).get("title"):
            refs.append(Reference(ids, (ref or {}).get("title")))
    return refs


def parse_paper(paper: dict[str, Any], references: list[Reference] | None = None) -> tuple[Any, list[Reference]]:
    pid = paper.get("paperId") or ""
    rec = service_record(
        "s2", f"https://www.semanticscholar.org/paper/{pid}",
        paper.get("title"), _authors(paper.get("authors") or []),
        iso_date(paper.get("publicationDate") or paper.get("year")), paper.get("abstract"),
        _ids(paper), paper.get("venue"),
    )
    return rec, references if references is not None else references_of(paper)
