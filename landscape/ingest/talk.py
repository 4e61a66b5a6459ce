"""A talk's slide transcript: title, byline, then slides; one record of kind 'talk'.

Slides are runs of text separated by two or more blank lines. A slide heading is a short,
title-like line that opens a slide, closes one (followed by a wide gap), or precedes slide
alt text ("A solid orange bar at the bottom of the slide."); consecutive slides with the same
heading are one section. LaTeX whose backslashes were eaten is repaired inside math.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..models import BadRecord, ParseError, Record, Section, Source
from ..text import tex_to_text
from .ident import record_id
from .latex import repair
from .listing import parse_date

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DATE = re.compile(
    r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, \d{4}\b"
)
_ALT_TEXT = re.compile(r"^an? .{3,80}\b(?:of|on|in) the slide\.?$", re.I)
_BULLET = re.compile(r"^(?:[-*\u2022\u25aa>|]|\d+[.)]\s)")
_NOT_HEADING = re.compile(r"[$\[\]|@*\\{}=<>#^_~]")
_PERSON_LINE = re.compile(r"^[A-Z][\w'\-]+(?: [A-Z][\w'.\-]+){1,3}\s*\(.+\)$")
MAX_HEADING_WORDS = 10


@dataclass
class _Line:
    number: int
    text: str
    gap_before: int
    gap_after: int = 0


def looks_like(head: str) -> bool:
    """A short first line (the title) and a body broken into many short blocks."""
    lines = head.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if not first or len(first.split()) > 20 or first[0] in "{[<@%#":
        return False
    blank = sum(1 for ln in lines if not ln.strip())
    return blank >= 4


def parse(path: str, lines: Iterable[tuple[int, str]]) -> Iterator[Record | BadRecord]:
    text_lines = _collect(lines)
    if not text_lines:
        raise ParseError(path, 1, "a talk title", "no text")
    title_line = text_lines[0]
    title = tex_to_text(title_line.text)
    if len(title.split()) > 25:
        raise ParseError(path, title_line.number, "a talk title line", repr(title))
    rest = text_lines[1:]
    byline, rest = _take_byline(rest)
    speakers, extra = _read_byline(byline.text) if byline else ([], {})
    speakers = [tex_to_text(s) for s in speakers]
    date = extra.pop("date", None)
    sections = _sections(title, rest)
    abstract = tex_to_text(sections[0].text) if sections and sections[0].title == title else ""
    yield Record(
        id=record_id(title),
        kind="talk",
        title=title,
        authors=speakers,
        date=date,
        abstract=abstract,
        sections=sections,
        sources=[Source(path=path, format="talk", line=title_line.number)],
        extra=extra,
    )


def _collect(lines: Iterable[tuple[int, str]]) -> list[_Line]:
    """Non-blank lines with the blank gaps around them; LaTeX repaired across line breaks."""
    numbered = list(lines)
    repaired = repair("\n".join(t for _, t in numbered)).split("\n")
    if len(repaired) != len(numbered):  # repair joined lines: number them by position
        numbers = list(range(1, len(repaired) + 1))
    else:
        numbers = [n for n, _ in numbered]
    out: list[_Line] = []
    gap = 0
    for number, raw in zip(numbers, repaired):
        text = " ".join(raw.split())
        if not text:
            gap += 1
            continue
        if out:
            out[-1].gap_after = gap
        out.append(_Line(number, text, gap))
        gap = 0
    if out:
        out[-1].gap_after = gap
    return out


def _take_byline(rest: list[_Line]) -> tuple[_Line | None, list[_Line]]:
    if rest and _is_byline(rest[0].text):
        return rest[0], rest[1:]
    return None, rest


def _is_byline(text: str) -> bool:
    if _EMAIL.search(text) or _DATE.search(text):
        return True
    names = text.split(",")[0].split()
    return 2 <= len(names) <= 4 and all(n[:1].isupper() for n in names) and len(text.split()) <= 12


def _read_byline(text: str) -> tuple[list[str], dict[str, str]]:
    """Speakers, and the affiliation, email and date the byline gives."""
    extra: dict[str, str] = {}
    emails = _EMAIL.findall(text)
    if emails:
        extra["email"] = emails[0]
        text = _EMAIL.sub(" ", text)
    m = _DATE.search(text)
    if m:
        date = parse_date(m.group(0))
        if date:
            extra["date"] = date
        text = text[: m.start()] + " " + text[m.end():]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        return [], extra
    speakers = [s.strip() for s in re.split(r"\s+(?:and|&)\s+", parts[0]) if s.strip()]
    if len(parts) > 1:
        extra["affiliation"] = ", ".join(parts[1:])
    return speakers, extra


def _is_title_like(line: _Line) -> bool:
    text = line.text
    words = text.split()
    if not 1 <= len(words) <= MAX_HEADING_WORDS or len(text) > 90:
        return False
    if not text[0].isalpha() or not text[0].isupper() or _BULLET.match(text):
        return False
    if _NOT_HEADING.search(text) or _ALT_TEXT.match(text) or _PERSON_LINE.match(text):
        return False
    if text.isupper() and len(text) > 3:
        return False
    if text.endswith((".", ",", ";", "!")) or "..." in text or "\u2026" in text or " et al" in text:
        return False
    if text.endswith("?") and len(words) < 3:
        return False
    if text.endswith(":") and line.gap_before < 2:
        return False
    return sum(c.isalpha() for c in text) >= 3


def _heading_strength(lines: list[_Line], i: int) -> int:
    """0: not a heading; 1: a heading by layout; 2: a divider slide's heading (alt text follows)."""
    line = lines[i]
    if not _is_title_like(line) or line.gap_after == 0:
        return 0
    if i + 1 < len(lines) and _ALT_TEXT.match(lines[i + 1].text):
        return 2
    label = lines[i - 1].text if i > 0 else ""
    if line.gap_before <= 1 and label.isupper() and len(label.split()) <= 3:  # text under a box label
        return 0
    return 1 if line.gap_before >= 2 or line.gap_after >= 2 else 0


def _sections(title: str, lines: list[_Line]) -> list[Section]:
    """Sections at slide headings; text before the first heading goes under the talk's title."""
    sections: list[tuple[str, list[str]]] = [(title, [])]
    for i, line in enumerate(lines):
        if _ALT_TEXT.match(line.text):
            continue
        strength = _heading_strength(lines, i)
        if strength:
            heading = line.text.rstrip(":").strip()
            current_title, body = sections[-1]
            if heading.lower() == current_title.lower():
                continue
            if strength == 1 and not body and len(sections) > 1:  # heading then heading: first wins
                body.append(heading)
                continue
            sections.append((heading, []))
            continue
        sections[-1][1].append(line.text)
    out: list[Section] = []
    for heading, body in sections:
        if not body and out:  # an empty section is a line of the one before it
            out[-1].text = "\n".join(filter(None, [out[-1].text, heading]))
        elif body or heading != title:
            out.append(Section(title=heading, text="\n".join(body)))
    return out
