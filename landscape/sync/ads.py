"""NASA ADS: the search API (/v1/search/query), token from ADS_API_TOKEN, with references.

ADS gives each token a daily quota (5000 search requests) and says what is left in the
X-RateLimit-Remaining header of every answer; a sync stops with a clear line when it is
spent, instead of being refused request after request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..models import LandscapeError, ParseError
from . import Page, Reference, Settings, first, iso_date, service_record
from .http import HttpClient, Response, SyncError

ENDPOINT = "https://api.adsabs.harvard.edu/v1/search/query"
FIELDS = "bibcode,title,author,abstract,pubdate,doi,identifier,pub,reference"
_ARXIV_BIBCODE = re.compile(r"^\d{4}arXiv(\d{4})(\d{4,5})[A-Z.]$")


def make(settings: Settings) -> AdsClient:
    token = settings.api_key or settings.env.get("ADS_API_TOKEN")
    if not token:
        raise LandscapeError("ads: expected an API token in ADS_API_TOKEN (https://ui.adsabs.harvard.edu/user/settings/token)")
    http = settings.http("ads", 5, 1.0, {"Authorization": f"Bearer {token}"})
    return AdsClient(http, settings.endpoint, settings.page_size or 100)


class AdsClient:
    name = "ads"

    def __init__(self, http: HttpClient, endpoint: str | None = None, page_size: int = 100):
        self.http, self.endpoint, self.page_size = http, endpoint or ENDPOINT, page_size
        self.remaining: int | None = None
        http.on_response = self._quota

    def _quota(self, response: Response) -> None:
        value = response.headers.get("X-RateLimit-Remaining")
        if value is not None and value.strip().isdigit():
            self.remaining = int(value)

    def pages(self, query: str | None, since: str | None, cursor: dict[str, Any] | None) -> Iterator[Page]:
        if not query:
            raise LandscapeError("ads: expected a --query (an ADS search, e.g. 'abs:\"dark matter\"')")
        start = int((cursor or {}).get("start", 0))
        while True:
            if self.remaining == 0:
                raise SyncError("ads: the daily request quota of this token is spent; run again tomorrow")
            response = self.http.get(self.endpoint, {
                "q": query, "fq": f"entdate:[{since} TO *]" if since else None, "fl": FIELDS,
                "rows": self.page_size, "start": start, "sort": "date asc,bibcode asc",
            })
            items, total = parse_page(response)
            start += len(items)
            more = bool(items) and start < total
            yield Page(items, {"start": start} if more else None)
            if not more:
                return


def parse_page(response: Response) -> tuple[list, int]:
    data = response.json()
    body = data.get("response") if isinstance(data, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("docs"), list):
        raise ParseError(response.url, 1, 'an ADS answer {"response": {"docs": [...]}}', "another shape")
    return [parse_doc(doc) for doc in body["docs"]], int(body.get("numFound") or 0)


def parse_doc(doc: dict[str, Any]) -> tuple[Any, list[Reference]]:
    bibcode = str(doc.get("bibcode") or "")
    identifiers = [str(i) for i in doc.get("identifier") or []]
    arxiv = next((i for i in identifiers if i.lower().startswith("arxiv:")), None)
    arxiv = arxiv or next((bibcode_arxiv(i) for i in identifiers if bibcode_arxiv(i)), None)
    rec = service_record(
        "ads", f"https://ui.adsabs.harvard.edu/abs/{bibcode}",
        first(doc.get("title")), [str(a) for a in doc.get("author") or []],
        iso_date(doc.get("pubdate")), doc.get("abstract"),
        {"bibcode": bibcode, "doi": first(doc.get("doi")), "arxiv": arxiv}, doc.get("pub"),
    )
    refs = [Reference(_ref_ids(str(b))) for b in doc.get("reference") or []]
    return rec, refs


def bibcode_arxiv(bibcode: str) -> str | None:
    """The arXiv id in an arXiv e-print bibcode (2012arXiv1204.4485R -> 1204.4485)."""
    bib = bibcode.replace(".", "", 1) if bibcode[4:9] == "arXiv" else bibcode
    m = _ARXIV_BIBCODE.match(bib)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _ref_ids(bibcode: str) -> dict[str, str]:
    ids = {"bibcode": bibcode}
    arxiv = bibcode_arxiv(bibcode)
    if arxiv:
        ids["arxiv"] = arxiv
    return ids
