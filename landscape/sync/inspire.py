"""INSPIRE-HEP: the REST literature search (/api/literature?q=...), paginated, with references.

INSPIRE allows 15 requests in any 5 seconds. `--since` adds `and du >= DATE` (date updated)
to the query, so a refresh asks only for what changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..models import ParseError
from . import Page, Reference, Settings, first, iso_date, service_record
from .http import HttpClient, Response

ENDPOINT = "https://inspirehep.net/api/literature"
FIELDS = ",".join((
    "control_number", "titles", "authors.full_name", "abstracts", "arxiv_eprints", "dois",
    "earliest_date", "preprint_date", "publication_info", "references.reference",
    "references.record", "external_system_identifiers",
))


def make(settings: Settings) -> InspireClient:
    return InspireClient(settings.http("inspire", 15, 5.0), settings.endpoint, settings.page_size or 25)


class InspireClient:
    name = "inspire"

    def __init__(self, http: HttpClient, endpoint: str | None = None, page_size: int = 25):
        self.http, self.endpoint, self.page_size = http, endpoint or ENDPOINT, page_size

    def pages(self, query: str | None, since: str | None, cursor: dict[str, Any] | None) -> Iterator[Page]:
        q = query or "*"
        if since:
            q = f"({q}) and du >= {since}"
        page = int((cursor or {}).get("page", 1))
        while True:
            response = self.http.get(self.endpoint, {
                "q": q, "size": self.page_size, "page": page, "sort": "mostrecent", "fields": FIELDS,
            })
            items, more = parse_page(response)
            page += 1
            yield Page(items, {"page": page} if more else None)
            if not more:
                return


def parse_page(response: Response) -> tuple[list, bool]:
    data = response.json()
    hits = data.get("hits") if isinstance(data, dict) else None
    if not isinstance(hits, dict) or not isinstance(hits.get("hits"), list):
        raise ParseError(response.url, 1, 'an INSPIRE search answer {"hits": {"hits": [...]}}', "another shape")
    items = [parse_hit(response.url, hit) for hit in hits["hits"]]
    more = bool(items) and bool((data.get("links") or {}).get("next"))
    return items, more


def parse_hit(url: str, hit: dict[str, Any]) -> tuple[Any, list[Reference]]:
    meta = hit.get("metadata")
    if not isinstance(meta, dict):
        raise ParseError(url, 1, "a hit with metadata", type(meta).__name__)
    recid = str(meta.get("control_number") or hit.get("id") or "")
    abstracts = meta.get("abstracts") or []
    abstract = next((a.get("value") for a in abstracts if a.get("source") == "arXiv"), None)
    abstract = abstract or (first(abstracts) or {}).get("value")
    publication = first(meta.get("publication_info")) or {}
    venue = " ".join(str(publication[k]) for k in ("journal_title", "journal_volume", "year") if publication.get(k))
    bibcode = next((e.get("value") for e in meta.get("external_system_identifiers") or []
                    if e.get("schema") == "ADS"), None)
    rec = service_record(
        "inspire", f"https://inspirehep.net/literature/{recid}",
        (first(meta.get("titles")) or {}).get("title"),
        [a.get("full_name", "") for a in meta.get("authors") or []],
        iso_date(meta.get("earliest_date") or meta.get("preprint_date")),
        abstract,
        {"inspire": recid, "arxiv": (first(meta.get("arxiv_eprints")) or {}).get("value"),
         "doi": (first(meta.get("dois")) or {}).get("value"), "bibcode": bibcode},
        venue or None,
    )
    return rec, [ref for ref in map(_reference, meta.get("references") or []) if ref]


def _reference(entry: dict[str, Any]) -> Reference | None:
    ref = entry.get("reference") or {}
    ids = {
        "arxiv": ref.get("arxiv_eprint"),
        "doi": first(ref.get("dois")),
        "inspire": ((entry.get("record") or {}).get("$ref") or "").rstrip("/").rsplit("/", 1)[-1] or None,
    }
    ids = {k: str(v) for k, v in ids.items() if v}
    title = (ref.get("title") or {}).get("title")
    return Reference(ids, title) if ids or title else None
