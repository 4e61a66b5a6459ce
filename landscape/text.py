"""Small text helpers shared by ingest, store and enrichment."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_LATEX_CMD = re.compile(r"\\[a-zA-Z]+\*?")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_TOKEN = re.compile(r"[a-z0-9][a-z0-9\-]*[a-z0-9]|[a-z0-9]")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours
    yourself yourselves via using use used based new show shows we our paper work results
    result approach method methods study present propose proposed within without across
    however thus one two three well may many much""".split()
)


def strip_accents(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalise_title(title: str) -> str:
    """Key under which titles differing only in case, punctuation, spacing or LaTeX match."""
    text = strip_accents(title).lower()
    text = _LATEX_CMD.sub(" ", text)
    return _NON_WORD.sub(" ", text).strip()


def title_id(title: str) -> str:
    return "t" + hashlib.sha1(normalise_title(title).encode()).hexdigest()[:12]


def content_hash(*parts: str) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def tokens(text: str) -> list[str]:
    """Lowercase word tokens with LaTeX commands and accents removed."""
    return _TOKEN.findall(_LATEX_CMD.sub(" ", strip_accents(text).lower()))


def content_tokens(text: str) -> list[str]:
    return [t for t in tokens(text) if t not in STOPWORDS and len(t) > 1]


def normalise_author(name: str) -> str:
    """Conservative key for an author name: accents, case, dots and hyphen spacing ignored."""
    text = strip_accents(name).lower().replace(".", " ").replace("-", " ")
    return " ".join(text.split())


def derived_title(abstract: str, words: int = 12) -> str:
    """A display title for records that arrive without one: the abstract's first sentence, cut."""
    first = re.split(r"(?<=[.!?])\s", abstract.strip(), maxsplit=1)[0]
    parts = first.split()
    text = " ".join(parts[:words])
    return text + ("…" if len(parts) > words else "")
