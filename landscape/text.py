"""Small text helpers shared by ingest, store and enrichment."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterator

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


# --- TeX in titles, abstracts and names -------------------------------------------------------

_MATH_OPEN = re.compile(
    r"\$\$?|\\\(|\\\[|\\begin\{(?:equation|align|eqnarray|gather|multline|displaymath|math)\*?\}"
)
_ARG = r"\{(?:[^{}$\\]|\\.|\{(?:[^{}$\\]|\\.)*\})*\}"
_TEX_PIECE = re.compile(
    r"\{\\(?:it|em|bf|rm|sl|sc|tt|sf|itshape|bfseries|scshape|upshape)(?![A-Za-z])(?:[^{}$\\]|\\.|\{(?:[^{}$\\]|\\.)*\})*\}"
    r"|\\[`'^\"~=.]\s*(?:\{\\?[A-Za-z]?\}|\\[ij](?![A-Za-z])|[A-Za-z])"
    r"|\\[uvHcdbkrt](?:\s*\{\\?[A-Za-z]\}|\s+[A-Za-z](?![A-Za-z]))"
    rf"|\\[A-Za-z]+\*?(?:\s*{_ARG})*"
    r"|\\[^A-Za-z\s]"
    r"|---?|``|''"
)
_LINK = re.compile(
    r"\\url\s*\{([^{}]*)\}|\\href\s*\{[^{}]*\}\s*(\{(?:[^{}]|\{[^{}]*\})*\})|\b(?:https?|ftp)://[^\s{}]+"
)
_FONT_SWITCH = frozenset("it em bf rm sl sc tt sf itshape bfseries scshape upshape normalfont".split())
_KEEP_ASCII = {"textasciicircum": "^", "textasciitilde": "~", "textbackslash": "\\"}
_TIE = re.compile(r"(?<!\\)~(?=\\[A-Za-z])")  # Ref.~\cite{x}: a tie before a command is a space
_NEEDS_TEX = re.compile(r"\\|--|``|''")


def tex_to_text(text: str, bibtex: bool = False) -> str:
    """TeX outside math as Unicode text: accents (R\\'{e}nyi -> Rényi), escapes (\\%), text
    commands (\\emph{x} -> x), dashes (-- -> –) and quotes (``x'' -> “x”). Math ($...$, $$...$$,
    \\(...\\), \\[...\\], equation environments) is kept exactly as written; so are `%` and `~`,
    which in plain abstracts mean percent and 'about'. With bibtex=True, bare grouping braces
    ({B}ayesian) go and `~` is a space, as BibTeX means them.

    Each TeX piece (a command with its arguments, an escape, a dash or quote) is converted by
    pylatexenc, the field's library, and remembered: pylatexenc on whole abstracts reads about
    0.04 MB/s, far too slow for millions of them, while the pieces repeat (\\'e, \\"o); this
    reads 7 MB/s on the same abstracts (the corpus listing, measured). A tie before a command
    (Ref.~\\cite{x}) is a space; web addresses are kept as written; citations read [cit.].
    """
    if not _NEEDS_TEX.search(text) and not (bibtex and ("{" in text or "~" in text)):
        return text
    out: list[str] = []
    at = 0
    for start, end in _math_spans(text):
        out.append(_prose(text[at:start], bibtex))
        out.append(text[start:end])
        at = end
    out.append(_prose(text[at:], bibtex))
    return "".join(out)


def _math_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each math span: $...$, $$...$$, \\(...\\), \\[...\\] or an equation
    environment. An opener whose closer never comes is text; once a closer is known to be
    missing it is not looked for again, so the scan is linear in the text."""
    missing: set[str] = set()
    pos = 0
    while m := _MATH_OPEN.search(text, pos):
        opener = m.group(0)
        if m.start() and text[m.start() - 1] == "\\":  # \$ is a dollar sign
            pos = m.end()
            continue
        if opener == "$$" and "$$" in missing:
            opener = "$"
        closer = _CLOSERS.get(opener) or "\\end" + opener[6:]
        end = -1 if closer in missing else _find_closer(text, closer, m.start() + len(opener))
        if end < 0:
            missing.add(closer)
            pos = m.start() + len(opener)
            continue
        yield m.start(), end
        pos = end


_CLOSERS = {"$": "$", "$$": "$$", "\\(": "\\)", "\\[": "\\]"}


def _find_closer(text: str, closer: str, pos: int) -> int:
    """The end of the first unescaped closer at or after pos, or -1."""
    while (at := text.find(closer, pos)) >= 0:
        if text[at - 1] != "\\" or closer[0] == "\\":
            return at + len(closer)
        pos = at + 1
    return -1


def _prose(text: str, bibtex: bool) -> str:
    """Prose between math spans; web addresses in it are kept as written (a -- in a URL stays),
    \\url{ADDRESS} gives the address and \\href{ADDRESS}{TEXT} the text."""
    if "://" not in text and "\\url" not in text and "\\href" not in text:
        return _prose_part(text, bibtex)
    out, at = [], 0
    for m in _LINK.finditer(text):
        link = m[1] if m[1] is not None else _prose_part(m[2][1:-1], bibtex) if m[2] is not None else m[0]
        out += [_prose_part(text[at : m.start()], bibtex), link]
        at = m.end()
    out.append(_prose_part(text[at:], bibtex))
    return "".join(out)


def _prose_part(text: str, bibtex: bool) -> str:
    if bibtex:  # escaped braces are kept aside while the grouping braces go
        text = text.replace("\\{", "\ue000").replace("\\}", "\ue001").replace("~", " ")
        text = _TEX_PIECE.sub(lambda m: _piece(m.group(0)), text)
        return text.replace("{", "").replace("}", "").replace("\ue000", "{").replace("\ue001", "}")
    if not _NEEDS_TEX.search(text):
        return text
    return _TEX_PIECE.sub(lambda m: _piece(m.group(0)), _TIE.sub(" ", text))


@functools.lru_cache(maxsize=1 << 16)
def _piece(piece: str) -> str:
    name = re.match(r"\\([A-Za-z]+)", piece)
    if name is not None and name[1].startswith("cite"):
        return "[cit.]"  # pylatexenc's <cit.> reads like markup
    if name is not None and name[1] in _KEEP_ASCII and piece[len(name[0]) :] in ("", "{}"):
        return _KEEP_ASCII[name[1]]
    try:
        text = _latex2text().latex_to_text(piece)
    except Exception:  # pylatexenc on odd input (an unclosed argument): keep the TeX as written
        return piece
    if text or name is None or name[1] in _FONT_SWITCH:
        return text
    args = [a[1:-1] for a in re.findall(_ARG, piece) if a[1:-1].strip()]
    # a command pylatexenc does not know: its text arguments, or its name (\LaTeX -> LaTeX)
    return " ".join(tex_to_text(a) for a in args) if args else name[1]


@functools.cache
def _latex2text():  # noqa: ANN202 - pylatexenc is imported only when TeX is met
    import logging

    from pylatexenc.latex2text import LatexNodes2Text

    # user text is full of half-TeX (a \\frac outside math): the piece is kept, no warning printed
    logging.getLogger("pylatexenc").setLevel(logging.ERROR)
    return LatexNodes2Text(math_mode="verbatim")


def unwrap(text: str) -> str:
    """One line: line breaks and indentation (arXiv wraps titles and abstracts) become single spaces."""
    return " ".join(text.split())
