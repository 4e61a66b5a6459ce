"""The one data model every stage shares: files -> Record -> store -> enrichment -> pages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

KINDS = ("paper", "talk")


@dataclass
class Source:
    """Where a record was read from: a user can always trace a record back to a file line."""

    path: str
    format: str
    line: int
    ingested_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Section:
    """One slide-section of a talk."""

    title: str
    text: str
    summary: str | None = None


@dataclass
class Record:
    id: str
    kind: str = "paper"
    title: str | None = None
    title_derived: bool = False
    authors: list[str] = field(default_factory=list)
    authors_truncated: bool = False
    date: str | None = None
    area: str | None = None
    abstract: str = ""
    keyphrases: list[str] = field(default_factory=list)
    keyphrase_line: str | None = None
    sources: list[Source] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # None: the area (if any) was given by the source; "category": mapped from arXiv
    # categories by `[area_categories]`, which is never a human label for training or eval
    area_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        data = dict(data)
        data["sources"] = [Source(**s) for s in data.get("sources") or []]
        data["sections"] = [Section(**s) for s in data.get("sections") or []]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def text(self) -> str:
        """The text enrichment reads: title, abstract and, for talks, every section."""
        parts = [self.title or "", self.abstract]
        parts += [f"{s.title}. {s.text}" for s in self.sections]
        return "\n".join(p for p in parts if p)


class AreaInput(NamedTuple):
    """What the area step decides from before it reads any text: a record's kind, its given area
    (None when predicted or missing), the hash of its text and its authors' names (sorted)."""

    id: str
    kind: str
    area: str | None
    area_source: str | None
    content_hash: str
    authors: tuple[str, ...]


@dataclass
class ParseError(Exception):
    """The one documented failure of every parser: PATH:LINE: expected X, found Y."""

    path: str
    line: int
    expected: str
    found: str

    def __str__(self) -> str:
        found = self.found if len(self.found) <= 60 else self.found[:57] + "..."
        return f"{self.path}:{self.line}: expected {self.expected}, found {found}"


@dataclass
class BadRecord:
    """A record a parser could not read, reported instead of silently skipped."""

    error: ParseError


class LandscapeError(Exception):
    """A user-facing failure, printed as one line by the CLI and the API's error envelope."""


class NotBuiltError(LandscapeError):
    """What was asked for needs a build step that has not run (or is running) on this store."""
