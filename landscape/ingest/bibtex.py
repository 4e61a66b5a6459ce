"""BibTeX: entries with nested braces, @string macros, # concatenation and LaTeX accents.

The scanner is iterative (a brace depth counter, never recursion), so a value with 10,000
nested braces is read, not a RecursionError. `write_bibtex` escapes every LaTeX-special
character, so text from a record (a hostile title, `\\href{javascript:...}`) stays inert in a
.bib file and reads back as the same text.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from typing import IO

from ..models import BadRecord, ParseError, Record, Source
from ..text import tex_to_text as _tex_to_text
from ..text import unwrap
from .ident import arxiv_id, doi, record_id
from .reader import join_lines

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_ENTRY = re.compile(r"@\s*([A-Za-z]+)\s*([{(])")
_NAME = re.compile(r"[A-Za-z0-9_:.+\-/']+")
_ESCAPE = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "%": r"\%",
    "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def looks_like(head: str) -> bool:
    for line in head.splitlines():
        text = line.strip()
        if not text or text.startswith("%"):
            continue
        return bool(_ENTRY.match(text))
    return False


class _Scanner:
    """Reads BibTeX syntax from a string, raising ParseError with the line of the problem."""

    def __init__(self, path: str, text: str):
        self.path, self.text, self.pos = path, text, 0
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_right(self.line_starts, self.pos if pos is None else pos)

    def error(self, expected: str, pos: int | None = None) -> ParseError:
        at = self.pos if pos is None else pos
        found = repr(self.text[at : at + 20]) if at < len(self.text) else "end of file"
        return ParseError(self.path, self.line(at), expected, found)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def expect(self, chars: str, what: str) -> str:
        self.skip_space()
        if self.pos >= len(self.text) or self.text[self.pos] not in chars:
            raise self.error(what)
        self.pos += 1
        return self.text[self.pos - 1]

    def name(self, what: str) -> str:
        self.skip_space()
        m = _NAME.match(self.text, self.pos)
        if not m:
            raise self.error(what)
        self.pos = m.end()
        return m.group(0)

    def braced(self) -> str:
        """The text inside {...} (the opening brace already consumed), braces balanced."""
        start, depth, text = self.pos, 1, self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\":
                self.pos += 2
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    self.pos += 1
                    return text[start : self.pos - 1]
            self.pos += 1
        raise self.error("a closing '}'", start - 1)

    def quoted(self) -> str:
        start, depth, text = self.pos, 0, self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\":
                self.pos += 2
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth < 0:
                    raise self.error("a balanced quoted value")
            elif ch == '"' and depth == 0:
                self.pos += 1
                return text[start : self.pos - 1]
            self.pos += 1
        raise self.error('a closing \'"\'', start - 1)

    def value(self, macros: dict[str, str]) -> str:
        """One field value: pieces joined by '#', macros expanded."""
        parts = []
        while True:
            self.skip_space()
            if self.pos >= len(self.text):
                raise self.error("a field value")
            ch = self.text[self.pos]
            if ch == "{":
                self.pos += 1
                parts.append(self.braced())
            elif ch == '"':
                self.pos += 1
                parts.append(self.quoted())
            else:
                start = self.pos
                word = self.name("a field value ({...}, \"...\", a number or a @string name)")
                if word.isdigit():
                    parts.append(word)
                elif word.lower() in macros:
                    parts.append(macros[word.lower()])
                else:
                    raise self.error(f"a defined @string name (not {word!r})", start)
            self.skip_space()
            if self.pos < len(self.text) and self.text[self.pos] == "#":
                self.pos += 1
                continue
            return "".join(parts)


def parse(path: str, lines: Iterable[tuple[int, str]]) -> Iterator[Record | BadRecord]:
    scanner = _Scanner(path, join_lines(path, lines))
    macros = {m: m for m in MONTHS}
    seen = False
    for m in _ENTRY.finditer(scanner.text):
        if m.start() < scanner.pos:
            continue
        seen = True
        scanner.pos = m.end()
        kind, line = m.group(1).lower(), scanner.line(m.start())
        close = "}" if m.group(2) == "{" else ")"
        try:
            if kind == "comment":
                scanner.braced() if close == "}" else scanner.quoted()
                continue
            if kind == "preamble":
                scanner.value(macros)
                scanner.expect(close, f"'{close}' closing @preamble")
                continue
            if kind == "string":
                name = scanner.name("a @string name").lower()
                scanner.expect("=", "'=' after the @string name")
                macros[name] = scanner.value(macros)
                scanner.expect(close, f"'{close}' closing @string")
                continue
            key, fields = _entry_body(scanner, macros, close)
        except ParseError as exc:
            yield BadRecord(exc)
            _skip_to_next_entry(scanner)
            continue
        try:
            yield _record(path, line, kind, key, fields)
        except ParseError as exc:
            yield BadRecord(exc)
    if not seen:
        raise ParseError(path, 1, "a BibTeX entry '@type{key, ...}'", "none in the file")


def _skip_to_next_entry(scanner: _Scanner) -> None:
    nxt = scanner.text.find("\n@", scanner.pos)
    scanner.pos = len(scanner.text) if nxt < 0 else nxt + 1


def _entry_body(scanner: _Scanner, macros: dict[str, str], close: str) -> tuple[str, dict[str, str]]:
    key = scanner.name("a citation key")
    fields: dict[str, str] = {}
    while True:
        sep = scanner.expect("," + close, f"',' or '{close}'")
        if sep == close:
            return key, fields
        scanner.skip_space()
        if scanner.pos < len(scanner.text) and scanner.text[scanner.pos] == close:
            scanner.pos += 1
            return key, fields
        name = scanner.name("a field name").lower()
        scanner.expect("=", f"'=' after field {name!r}")
        fields[name] = scanner.value(macros)


def tex_to_text(value: str) -> str:
    """LaTeX to plain Unicode outside math, on one line, as BibTeX means it (grouping braces go)."""
    return unwrap(_tex_to_text(value, bibtex=True))


def split_names(value: str) -> tuple[list[str], bool]:
    """Authors as 'First Last', and whether the list ended in 'and others' (truncated)."""
    names, depth, start, i = [], 0, 0, 0
    value = " ".join(value.split())
    lowered = value.lower()
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0 and lowered.startswith(" and ", i):
            names.append(value[start:i])
            start = i = i + 5
            continue
        i += 1
    names.append(value[start:])
    people = [_first_last(n) for n in names if n.strip()]
    truncated = bool(people) and people[-1].lower() == "others"
    return [p for p in people if p and p.lower() != "others"], truncated


def _first_last(name: str) -> str:
    """'Last, First' -> 'First Last' (commas inside braces belong to the name)."""
    parts = [tex_to_text(p) for p in _split_top_level(name, ",")]
    if len(parts) == 2:
        return f"{parts[1]} {parts[0]}".strip()
    if len(parts) >= 3:
        return f"{parts[2]} {parts[0]} {parts[1]}".strip()
    return parts[0].strip()


def _split_top_level(value: str, sep: str) -> list[str]:
    parts, depth, start, i = [], 0, 0, 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def _date(fields: dict[str, str]) -> str | None:
    raw = tex_to_text(fields.get("date", ""))
    if re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", raw):
        return raw
    year = tex_to_text(fields.get("year", ""))
    if not re.fullmatch(r"\d{4}", year):
        return None
    month = tex_to_text(fields.get("month", "")).lower()[:3]
    if month.isdigit() and 1 <= int(month) <= 12:
        return f"{year}-{int(month):02d}"
    if month in MONTHS:
        return f"{year}-{MONTHS.index(month) + 1:02d}"
    return year


def _record(path: str, line: int, kind: str, key: str, fields: dict[str, str]) -> Record:
    title = tex_to_text(fields.get("title", "")) or None
    abstract = tex_to_text(fields.get("abstract", ""))
    if not title and not abstract:
        raise ParseError(path, line, f"a title or an abstract in @{kind}{{{key}}}", "neither")
    authors, truncated = split_names(fields.get("author", ""))
    arxiv = arxiv_id(fields.get("eprint")) if "eprint" in fields else None
    arxiv = arxiv or arxiv_id(fields.get("arxiv")) or _arxiv_url(fields.get("url", ""))
    found_doi = doi(fields.get("doi"))
    extra = {"bibtex_key": key, "bibtex_type": kind}
    venue = tex_to_text(fields.get("journal") or fields.get("booktitle") or "")
    extra.update({k: v for k, v in (("venue", venue), ("arxiv", arxiv), ("doi", found_doi)) if v})
    keywords = tex_to_text(fields.get("keywords", ""))
    return Record(
        id=record_id(title, abstract, arxiv, found_doi),
        kind="talk" if kind == "talk" else "paper",
        title=title,
        title_derived=title is None,
        authors=authors,
        authors_truncated=truncated,
        date=_date(fields),
        abstract=abstract,
        keyphrases=[k.strip().lower() for k in re.split(r"[;,]", keywords) if k.strip()],
        sources=[Source(path=path, format="bibtex", line=line, extra={"key": key})],
        extra=extra,
    )


def _arxiv_url(url: str) -> str | None:
    return arxiv_id(url) if "arxiv.org" in url else None


def tex_escape(text: str) -> str:
    """Text made inert in a .bib file: every LaTeX-special character escaped."""
    return "".join(_ESCAPE.get(ch, ch) for ch in " ".join(text.split()))


def _bib_name(name: str) -> str:
    """One author, escaped; a name that BibTeX would split (a comma, ' and ') is braced whole."""
    escaped = tex_escape(name)
    if "," in name or " and " in f" {name.lower()} " or name.lower() == "others":
        return "{" + escaped + "}"
    return escaped


def _cite_key(record_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9:_\-.]", "_", record_id) or "record"


def write_bibtex(records: Iterable[Record], out: IO[str]) -> int:
    """One entry per record (@article for papers, @misc for talks); returns the count."""
    n = 0
    for rec in records:
        fields = [("title", rec.title or "")]
        authors = [_bib_name(a) for a in rec.authors]
        authors += ["others"] if rec.authors_truncated else []
        fields.append(("author", " and ".join(authors)))
        if rec.date:
            fields.append(("year", rec.date[:4]))
            fields.append(("date", rec.date))
        fields += [("abstract", rec.abstract), ("keywords", ", ".join(rec.keyphrases))]
        arxiv = arxiv_id(rec.id[6:]) if rec.id.startswith("arxiv:") else rec.extra.get("arxiv")
        found_doi = rec.id[4:] if rec.id.startswith("doi:") else rec.extra.get("doi")
        if arxiv:
            fields += [("eprint", str(arxiv)), ("archiveprefix", "arXiv")]
        if found_doi:
            fields.append(("doi", str(found_doi)))
        entry = "article" if rec.kind == "paper" else "misc"
        body = ",\n".join(
            f"  {name} = {{{value if name == 'author' else tex_escape(value)}}}"
            for name, value in fields if value
        )
        out.write(f"@{entry}{{{_cite_key(rec.id)},\n{body}\n}}\n\n")
        n += 1
    return n
