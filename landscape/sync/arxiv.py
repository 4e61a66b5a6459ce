"""arXiv: OAI-PMH ListRecords (metadataPrefix=arXiv) for bulk, the Atom API for queries.

`--query "set:physics:hep-th"` (or no query) harvests by OAI set and date with resumption
tokens; any other query goes to the Atom API's search_query, read by the same parser as
`landscape ingest --format arxiv-atom`. arXiv asks for one request every three seconds.
Since February 2025 arXiv's OAI-PMH base URL is https://arxiv.org/oai (its OAI help page;
export.arxiv.org/oai2 was the old one) and its resumption tokens carry no cursor.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from ..ingest import arxiv_atom
from ..ingest.ident import arxiv_id, doi, record_id
from ..models import BadRecord, ParseError, Record, Source
from . import Page, Settings
from .http import HttpClient, Response, SyncError

OAI = "{http://www.openarchives.org/OAI/2.0/}"
ARXIV_OAI = "{http://arxiv.org/OAI/arXiv/}"
OAI_ENDPOINT = "https://arxiv.org/oai"
ATOM_ENDPOINT = "https://export.arxiv.org/api/query"
_TOTAL = re.compile(r"<opensearch:totalResults[^>]*>\s*(\d+)\s*<")
_API_ERROR = re.compile(r"<id[^>]*>\s*https?://arxiv\.org/api/errors#.*?<summary[^>]*>(.*?)</summary>", re.DOTALL)


def make(settings: Settings) -> ArxivClient:
    return ArxivClient(settings.http("arxiv", 1, 3.0), settings.endpoint, settings.page_size or 100)


class ArxivClient:
    name = "arxiv"

    def __init__(self, http: HttpClient, endpoint: str | None = None, page_size: int = 100):
        self.http, self.endpoint, self.page_size = http, endpoint, page_size

    def pages(self, query: str | None, since: str | None, cursor: dict[str, Any] | None) -> Iterator[Page]:
        if query and not query.startswith("set:"):
            yield from self._atom_pages(query, since, cursor)
        else:
            yield from self._oai_pages(query[4:] if query else None, since, cursor)

    # --- OAI-PMH -------------------------------------------------------------------------

    def _oai_pages(self, oai_set: str | None, since: str | None, cursor: dict[str, Any] | None) -> Iterator[Page]:
        endpoint = self.endpoint or OAI_ENDPOINT
        token = (cursor or {}).get("token")
        while True:
            if token:
                params: dict[str, Any] = {"verb": "ListRecords", "resumptionToken": token}
            else:
                params = {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": oai_set, "from": since}
            response = self.http.get(endpoint, params)
            items, skipped, token = parse_oai(response)
            yield Page(items, {"token": token} if token else None, skipped)
            if not token:
                return

    # --- Atom API ------------------------------------------------------------------------

    def _atom_pages(self, query: str, since: str | None, cursor: dict[str, Any] | None) -> Iterator[Page]:
        endpoint = self.endpoint or ATOM_ENDPOINT
        start = int((cursor or {}).get("start", 0))
        search = query
        if since:
            search = f"({query}) AND submittedDate:[{since.replace('-', '')}0000 TO 999912312359]"
        while True:
            response = self.http.get(endpoint, {
                "search_query": search, "start": start, "max_results": self.page_size,
                "sortBy": "submittedDate", "sortOrder": "ascending",
            })
            items, total = parse_atom(response)
            start += len(items)
            more = bool(items) and start < total
            yield Page(items, {"start": start} if more else None)
            if not more:
                return


def parse_atom(response: Response) -> tuple[list[tuple[Record, list]], int]:
    """Records of an Atom answer (the ingest parser) with their abs page as source. The API
    reports a bad query as a feed whose one entry is the error (documented in its manual),
    which is a refusal, not a paper titled "Error"."""
    text = response.text()
    error = _API_ERROR.search(text)
    if error:
        raise SyncError(f"arxiv: {response.url}: {' '.join(html.unescape(error.group(1)).split())}")
    lines = enumerate(text.split("\n"), start=1)
    items = []
    for item in arxiv_atom.parse(response.url, lines):
        if isinstance(item, BadRecord):
            raise item.error
        item.sources = [_source(item.extra.get("arxiv"), item.id, "arxiv-atom")]
        items.append((item, []))
    match = _TOTAL.search(text)
    return items, int(match.group(1)) if match else len(items)


def parse_oai(response: Response) -> tuple[list[tuple[Record, list]], int, str | None]:
    """(records, deleted records skipped, resumption token) of a ListRecords answer."""
    text = response.text()
    root = arxiv_atom._parse_xml(response.url, text)
    if root.tag != f"{OAI}OAI-PMH":
        raise ParseError(response.url, 1, "an OAI-PMH answer", f"<{root.tag.rsplit('}', 1)[-1][:30]}>")
    error = root.find(f"{OAI}error")
    if error is not None:
        if error.get("code") == "noRecordsMatch":
            return [], 0, None
        raise SyncError(f"arxiv: {response.url}: OAI-PMH error {error.get('code')}: {(error.text or '').strip()}")
    listing = root.find(f"{OAI}ListRecords")
    if listing is None:
        raise ParseError(response.url, 1, "a <ListRecords> element", "none")
    items, skipped = [], 0
    for record in listing.findall(f"{OAI}record"):
        header = record.find(f"{OAI}header")
        if header is not None and header.get("status") == "deleted":
            skipped += 1
            continue
        meta = record.find(f"{OAI}metadata/{ARXIV_OAI}arXiv")
        if meta is None:
            raise ParseError(response.url, 1, "<metadata><arXiv> in every record", "a record without it")
        items.append((_oai_record(response.url, meta), []))
    token_el = listing.find(f"{OAI}resumptionToken")
    token = (token_el.text or "").strip() if token_el is not None else ""
    return items, skipped, token or None


def _text(el: ET.Element, name: str) -> str:
    child = el.find(f"{ARXIV_OAI}{name}")
    return " ".join((child.text or "").split()) if child is not None else ""


def _oai_record(url: str, meta: ET.Element) -> Record:
    ident = arxiv_id(_text(meta, "id"))
    if not ident:
        raise ParseError(url, 1, "an arXiv <id>", _text(meta, "id") or "none")
    title = _text(meta, "title") or None
    authors = []
    for author in meta.iter(f"{ARXIV_OAI}author"):
        name = " ".join(p for p in (_text(author, "forenames"), _text(author, "keyname"), _text(author, "suffix")) if p)
        if name:
            authors.append(name)
    found_doi = doi(_text(meta, "doi").split(" ")[0])
    extra: dict[str, Any] = {"arxiv": ident}
    if found_doi:
        extra["doi"] = found_doi
    categories = _text(meta, "categories").split()
    if categories:
        extra["category"] = categories[0]
    if _text(meta, "journal-ref"):
        extra["venue"] = _text(meta, "journal-ref")
    created = _text(meta, "created")
    return Record(
        id=record_id(title, "", ident, found_doi),
        title=title,
        authors=authors,
        date=created[:10] if re.match(r"\d{4}-\d{2}-\d{2}$", created[:10]) else None,
        abstract=_text(meta, "abstract"),
        sources=[_source(ident, ident, "arxiv-oai")],
        extra=extra,
    )


def _source(ident: str | None, fallback: str, fmt: str) -> Source:
    """A record's source is its page at the service (stable across runs, so a resync adds
    no second source)."""
    return Source(path=f"https://arxiv.org/abs/{ident or fallback}", format=fmt, line=1)
