"""Which parser reads a file: decided from its content, with the extension only as a tie-break."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..models import BadRecord, ParseError, Record
from .reader import head_text

Parser = Callable[[str, Iterable[tuple[int, str]]], Iterator[Record | BadRecord]]

# format name -> module under landscape.ingest; each module has parse() and looks_like()
FORMATS: dict[str, str] = {
    "listing": "listing",
    "abstracts": "abstracts",
    "aggregator": "aggregator",
    "talk": "talk",
    "jsonl": "jsonl",
    "csv": "csvfile",
    "bibtex": "bibtex",
    "arxiv-atom": "arxiv_atom",
    "arxiv-snapshot": "arxiv_snapshot",
}
# sniffing order: the most specific shapes first; a talk transcript is the least specific
SNIFF_ORDER = ["arxiv-atom", "arxiv-snapshot", "jsonl", "csv", "bibtex", "listing", "abstracts", "aggregator", "talk"]


def parser_for(fmt: str) -> Parser:
    if fmt not in FORMATS:
        raise ParseError("--format", 0, "one of " + ", ".join(["auto", *FORMATS]), repr(fmt))
    module = importlib.import_module(f"landscape.ingest.{FORMATS[fmt]}")
    return module.parse


def sniff(path: Path) -> str:
    head = head_text(path)
    for fmt in SNIFF_ORDER:
        module = importlib.import_module(f"landscape.ingest.{FORMATS[fmt]}")
        if module.looks_like(head):
            return fmt
    first = next((line.strip() for line in head.splitlines() if line.strip()), "")
    raise ParseError(str(path), 1, "a known document format (" + ", ".join(FORMATS) + ")", repr(first[:40]))
