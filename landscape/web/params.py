"""Reading request parameters: anything a user types gives a result or a 400, never a crash."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..models import KINDS, LandscapeError
from ..store.pages import browse_cursor_ok
from ..text import normalise_author

MAX_PAGE_SIZE = 100
MAX_PAGE = 100_000
MAX_QUERY = 10_000
MAX_PARAM = 500
_YEAR = re.compile(r"^\d{4}$")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


class WebError(LandscapeError):
    status = 500


class BadRequest(WebError):
    status = 400


class NotFound(WebError):
    status = 404


class Unavailable(WebError):
    """A feature whose build step has not run, or whose optional module is not installed."""

    status = 503


@dataclass
class Paging:
    """A page of a list: its number (0 when reached by a cursor, so not known) and size, and for
    browse pages the cursor it follows (`after`) or precedes (`before`)."""

    page: int
    size: int
    after: list[Any] | None = None
    before: list[Any] | None = None

    @property
    def offset(self) -> int:
        return (max(self.page, 1) - 1) * self.size

    def info(self, total: int) -> dict[str, Any]:
        pages = max(1, -(-total // self.size))
        return {"page": self.page or None, "size": self.size, "total": total, "pages": pages}


def encode_cursor(key: list[Any] | None) -> str | None:
    """A browse cursor as it travels in a URL (base64url of the row's sort key)."""
    if key is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, ensure_ascii=False, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> Any:
    """The key a cursor holds, or None when it is not one."""
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        return None


def cursor_param(params: Mapping[str, str], name: str, sort: str) -> list[Any] | None:
    raw = text_param(params, name)
    if raw is None:
        return None
    key = decode_cursor(raw)
    if not browse_cursor_ok(sort, key):
        raise BadRequest(f"{name}: expected a cursor from a link of this list (sort={sort}), found {raw[:40]!r}")
    return key


def browse_paging(params: Mapping[str, str], sort: str) -> Paging:
    """Paging of the browse list: by cursor (`after`, `before`), or by an old `page=N` link."""
    base = paging(params)
    after, before = cursor_param(params, "after", sort), cursor_param(params, "before", sort)
    if after is not None and before is not None:
        raise BadRequest("expected after= or before=, found both")
    if after is None and before is None:
        return base
    return Paging(page=0, size=base.size, after=after, before=before)


def text_param(params: Mapping[str, str], name: str, limit: int = MAX_PARAM) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if len(value) > limit:
        raise BadRequest(f"{name}: expected at most {limit} characters, found {len(value)}")
    if "\x00" in value:
        raise BadRequest(f"{name}: expected text, found a NUL character")
    value = value.strip()
    return value or None


def int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise BadRequest(f"{name}: expected a whole number from {low} to {high}, found {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name}: expected a whole number from {low} to {high}, found {value}")
    return value


def paging(params: Mapping[str, str], default_size: int = 20) -> Paging:
    return Paging(
        page=int_param(params, "page", 1, 1, MAX_PAGE),
        size=int_param(params, "limit", default_size, 1, MAX_PAGE_SIZE),
    )


def choice_param(params: Mapping[str, str], name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    value = text_param(params, name)
    if value is None:
        return default
    if value not in choices:
        raise BadRequest(f"{name}: expected one of {', '.join(choices)}, found {value[:40]!r}")
    return value


def browse_filters(params: Mapping[str, str]) -> dict[str, Any]:
    """The facet filters of the All posts page and the records API; they combine (AND)."""
    filters: dict[str, Any] = {
        "area": text_param(params, "area"),
        "concept": text_param(params, "concept"),
        "kind": choice_param(params, "kind", KINDS, None),
    }
    author = text_param(params, "author")
    if author is not None:
        filters["author"] = normalise_author(author)
    year = text_param(params, "year")
    if year is not None and not _YEAR.match(year):
        raise BadRequest(f"year: expected four digits, found {year[:40]!r}")
    filters["year"] = year
    topic = params.get("topic")
    if topic not in (None, ""):
        filters["topic"] = int_param(params, "topic", 0, 0, 10**9)
    return {k: v for k, v in filters.items() if v is not None}


def search_filters(params: Mapping[str, str]) -> dict[str, Any]:
    """The search page's filters as the user gave them (area, kind, author, year, since, until)."""
    filters: dict[str, Any] = {
        "area": text_param(params, "area"),
        "kind": choice_param(params, "kind", KINDS, None),
        "author": text_param(params, "author"),
    }
    for name in ("since", "until"):
        value = text_param(params, name)
        if value is not None and not _DATE.match(value):
            raise BadRequest(f"{name}: expected YYYY-MM-DD, found {value[:40]!r}")
        filters[name] = value
    year = text_param(params, "year")
    if year is not None and not _YEAR.match(year):
        raise BadRequest(f"year: expected four digits, found {year[:40]!r}")
    filters["year"] = year
    return {k: v for k, v in filters.items() if v is not None}


def backend_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """What the search backends take: a year becomes a since/until range."""
    out = {k: v for k, v in filters.items() if k != "year"}
    if filters.get("year"):
        out["since"], out["until"] = f"{filters['year']}-01-01", f"{filters['year']}-12-31"
    return out
