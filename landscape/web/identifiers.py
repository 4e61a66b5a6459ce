"""A record's identifiers as each community writes and links them, and its BibTeX entry.

Links open the services' own pages; nothing is loaded from them into the page, so the
Content-Security-Policy stays as it is.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

from ..models import Record


def identifier_links(record_id: str, extra: dict[str, Any]) -> list[dict[str, Any]]:
    """[{label, text, links: [{name, href}]}] for every id the record has, in a fixed order."""
    out: list[dict[str, Any]] = []
    arxiv = extra.get("arxiv") or (record_id[len("arxiv:"):] if record_id.startswith("arxiv:") else None)
    if arxiv:
        category = extra.get("category") or next(iter(extra.get("categories") or []), None)
        out.append(_entry("arXiv", f"arXiv:{arxiv}" + (f" [{category}]" if category else ""),
                          [("abs", f"https://arxiv.org/abs/{_path(arxiv)}"),
                           ("PDF", f"https://arxiv.org/pdf/{_path(arxiv)}")]))
    if extra.get("doi"):
        out.append(_entry("DOI", str(extra["doi"]), [("doi.org", f"https://doi.org/{_path(extra['doi'])}")]))
    if extra.get("inspire"):
        out.append(_entry("INSPIRE", str(extra["inspire"]),
                          [("INSPIRE", f"https://inspirehep.net/literature/{_path(extra['inspire'])}")]))
    if extra.get("bibcode"):
        out.append(_entry("ADS", str(extra["bibcode"]),
                          [("ADS", f"https://ui.adsabs.harvard.edu/abs/{_path(extra['bibcode'])}/abstract")]))
    if extra.get("openalex"):
        work = str(extra["openalex"]).rstrip("/").rsplit("/", 1)[-1]
        out.append(_entry("OpenAlex", work, [("OpenAlex", f"https://openalex.org/{_path(work)}")]))
    if extra.get("s2"):
        out.append(_entry("Semantic Scholar", str(extra["s2"]),
                          [("Semantic Scholar", f"https://www.semanticscholar.org/paper/{_path(extra['s2'])}")]))
    return out


def bibtex_entry(record: Record) -> str:
    from ..ingest.bibtex import write_bibtex

    buf = io.StringIO()
    write_bibtex([record], buf)
    return buf.getvalue().strip()


def _entry(label: str, text: str, links: list[tuple[str, str]]) -> dict[str, Any]:
    return {"label": label, "text": text, "links": [{"name": n, "href": h} for n, h in links]}


def _path(value: Any) -> str:
    return quote(str(value).strip(), safe="/:.-_()")
