"""Services -> records -> the ingest loader: keep a landscape current.

One small client per service (arxiv, inspire, ads, openalex, s2) over one shared HTTP layer
(http.py). A client turns each answer page into records (ids kept in extra) and the
references they cite; run.py hands each page to the loader in one transaction together with
the source's cursor, so an interrupted sync resumes at the first page not committed.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..models import LandscapeError, Record
from .http import Clock, HttpClient, RateLimiter, Sleep

SERVICES = ("arxiv", "inspire", "ads", "openalex", "s2")


@dataclass
class Reference:
    """A work a record cites: whatever ids the service gave for it, and its title if known."""

    ids: dict[str, str]
    title: str | None = None

    def __post_init__(self) -> None:
        """arXiv ids without version, DOIs lowercased: the forms record ids use."""
        from ..ingest.ident import arxiv_id, doi

        for name, norm in (("arxiv", arxiv_id), ("doi", doi)):
            if self.ids.get(name):
                value = norm(self.ids[name])
                if value:
                    self.ids[name] = value
                else:
                    del self.ids[name]


@dataclass
class Page:
    """One answer of a service, as records (each with its references) and the cursor that
    fetches the page after it (None: nothing more). `note` is one line the user should read,
    such as why a search stopped before the service's total."""

    items: list[tuple[Record, list[Reference]]]
    next: dict[str, Any] | None
    skipped: int = 0
    note: str | None = None


class Client(Protocol):
    name: str

    def pages(self, query: str | None, since: str | None, cursor: dict[str, Any] | None) -> Iterator[Page]:
        """Pages from `cursor` (None: the first page) for this query and date."""
        ...


@dataclass
class Settings:
    """What a client needs beyond the query: where, who is asking, keys, and the clock."""

    endpoint: str | None = None
    contact: str | None = None
    api_key: str | None = None
    page_size: int | None = None
    clock: Clock | None = None
    sleep: Sleep | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def http(self, service: str, requests: int, per: float, headers: dict[str, str] | None = None) -> HttpClient:
        import time

        sleep = self.sleep or time.sleep
        if self.clock is None and self.sleep is None:  # one limiter per service in a process
            limiter = _LIMITERS.setdefault(service, RateLimiter(requests, per))
        else:
            limiter = RateLimiter(requests, per, clock=self.clock or time.monotonic, sleep=sleep)
        return HttpClient(service, limiter, contact=self.contact, headers=headers or {}, sleep=sleep)


_LIMITERS: dict[str, RateLimiter] = {}


def make_client(service: str, settings: Settings) -> Client:
    if service not in SERVICES:
        raise LandscapeError(f"sync: expected a source among {', '.join(SERVICES)}, found {service!r}")
    import importlib

    module = importlib.import_module(f"landscape.sync.{service}")
    return module.make(settings)


def check_date(value: str | None, what: str = "--since") -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise LandscapeError(f"{what}: expected a date YYYY-MM-DD, found {value!r}") from None


def first(values: Any) -> Any:
    """The first element of a list (services answer lists where one value is usual)."""
    if isinstance(values, list):
        return values[0] if values else None
    return values


def service_record(
    fmt: str, url: str, title: str | None, authors: list[str], date: str | None, abstract: str | None,
    ids: dict[str, str | None], venue: str | None = None,
) -> Record:
    """A Record from one service's fields: the id by the ingest rules (arXiv id, else DOI, else
    title), every id kept in extra, the service's page for the record as its source."""
    from ..ingest.ident import arxiv_id, doi, record_id
    from ..models import Source

    title = " ".join((title or "").split()) or None
    abstract = " ".join((abstract or "").split())
    clean = {k: str(v).strip() for k, v in ids.items() if v not in (None, "")}
    if "arxiv" in clean:
        found = arxiv_id(clean["arxiv"])
        clean.pop("arxiv")
        if found:
            clean["arxiv"] = found
    if "doi" in clean:
        found = doi(clean["doi"])
        clean.pop("doi")
        if found:
            clean["doi"] = found
    extra: dict[str, Any] = dict(sorted(clean.items()))
    if venue:
        extra["venue"] = " ".join(venue.split())
    return Record(
        id=record_id(title, abstract, clean.get("arxiv"), clean.get("doi")),
        title=title,
        title_derived=title is None,
        authors=[" ".join(a.split()) for a in authors if a and a.strip()],
        date=date if date and len(date) == 10 else None,
        abstract=abstract,
        sources=[Source(path=url, format=fmt, line=1)],
        extra=extra,
    )


def iso_date(value: Any) -> str | None:
    """YYYY-MM-DD from a service's date (a full date, a month with day 00, or a year)."""
    if value is None:
        return None
    text = str(value).strip()
    parts = text[:10].split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 and parts[1] not in ("", "00") else 1
        day = int(parts[2]) if len(parts) > 2 and parts[2] not in ("", "00") else 1
        return dt.date(year, month, day).isoformat()
    except (ValueError, IndexError):
        return None
