"""Our own record schema (what `landscape export` writes), read back strictly.

Every value is checked for its type before a Record is built, so a hostile or broken JSONL or
CSV file gives a ParseError naming the line and the field, never a TypeError from deep inside.
"""

from __future__ import annotations

import re
from typing import Any

from ..models import KINDS, ParseError, Record, Section, Source
from ..text import tex_to_text
from .ident import arxiv_id, doi, record_id

_DATE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")
MAX_ID = 200
MAX_INT = 2**31 - 1


class _Fields:
    """Typed access to one decoded object; every failure is a ParseError at its line."""

    def __init__(self, data: dict[str, Any], path: str, line: int):
        self.data, self.path, self.line = data, path, line

    def fail(self, name: str, expected: str, value: Any) -> ParseError:
        return ParseError(self.path, self.line, f"{name} as {expected}", _describe(value))

    def text(self, name: str, value: Any = None, optional: bool = True) -> str | None:
        value = self.data.get(name) if value is None else value
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.fail(name, "a string", value)
        return _clean(self, name, value)

    def flag(self, name: str) -> bool:
        value = self.data.get(name, False)
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise self.fail(name, "true or false", value)

    def strings(self, name: str) -> list[str]:
        value = self.data.get(name) or []
        if not isinstance(value, list):
            raise self.fail(name, "a list of strings", value)
        return [self.text(name, v, optional=False) or "" for v in value]

    def mapping(self, name: str, value: Any = None) -> dict[str, Any]:
        value = self.data.get(name) if value is None else value
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(name, "an object", value)
        return value

    def objects(self, name: str) -> list[dict[str, Any]]:
        value = self.data.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(name, "a list of objects", value)
        return value


def _describe(value: Any) -> str:
    kind = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value))
    if value is None:
        return "null"
    if kind is None:
        return f"{type(value).__name__} {str(value)[:30]}"
    return kind if not isinstance(value, str) else repr(value[:40])


def _clean(fields: _Fields, name: str, value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise fields.fail(name, "text", "a lone surrogate") from None
    if "\0" in value:
        raise fields.fail(name, "text", "a NUL character")
    return value


def record_from_dict(data: Any, path: str, line: int, fmt: str) -> Record:
    """A Record from one decoded object; a record with no sources gets this file as its source."""
    if not isinstance(data, dict):
        raise ParseError(path, line, "a JSON object (one record)", _describe(data))
    f = _Fields(data, path, line)
    title = tex_to_text(f.text("title") or "") or None
    abstract = tex_to_text(f.text("abstract") or "")
    if not title and not abstract.strip():
        raise ParseError(path, line, "a record with a title or an abstract", "neither")
    kind = f.text("kind") or "paper"
    if kind not in KINDS:
        raise f.fail("kind", " or ".join(KINDS), kind)
    date = f.text("date") or None
    if date is not None and not _DATE.match(date):
        raise f.fail("date", "YYYY-MM-DD", date)
    extra = f.mapping("extra")
    area = f.text("area") or None
    area_source = f.text("area_source") or None
    if area_source not in (None, "given", "category"):
        raise f.fail("area_source", "given or category", area_source)
    rid = f.text("id") or record_id(
        title, abstract, arxiv_id(str(extra.get("arxiv") or "")), doi(str(extra.get("doi") or ""))
    )
    if len(rid) > MAX_ID:
        raise f.fail("id", f"at most {MAX_ID} characters", rid)
    sources = [_source(f, s) for s in f.objects("sources")] or [Source(path=path, format=fmt, line=line)]
    return Record(
        id=rid,
        kind=kind,
        title=title,
        title_derived=f.flag("title_derived") or title is None,
        authors=[tex_to_text(a) for a in f.strings("authors")],
        authors_truncated=f.flag("authors_truncated"),
        date=date,
        area=area,
        abstract=abstract,
        keyphrases=f.strings("keyphrases"),
        keyphrase_line=f.text("keyphrase_line"),
        sources=sources,
        sections=[_section(f, s) for s in f.objects("sections")],
        extra=extra,
        area_source="category" if area and area_source == "category" else None,
    )


def _source(f: _Fields, data: dict[str, Any]) -> Source:
    sub = _Fields(data, f.path, f.line)
    number = data.get("line", 0)
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= MAX_INT:
        raise f.fail("sources.line", "a line number", number)
    return Source(
        path=sub.text("path", optional=False) or "",
        format=sub.text("format", optional=False) or "",
        line=number,
        ingested_at=sub.text("ingested_at"),
        extra=sub.mapping("extra"),
    )


def _section(f: _Fields, data: dict[str, Any]) -> Section:
    sub = _Fields(data, f.path, f.line)
    return Section(
        title=sub.text("title", optional=False) or "",
        text=sub.text("text") or "",
        summary=sub.text("summary"),
    )
