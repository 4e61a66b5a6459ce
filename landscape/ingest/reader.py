"""Streaming, strict reading of user files: every failure becomes a ParseError with a line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from ..models import ParseError

MAX_LINE_BYTES = 64 * 1024 * 1024
SNIFF_BYTES = 64 * 1024
MAX_WHOLE_FILE = 256 * 1024 * 1024


def check_readable(path: Path) -> None:
    """Raise a ParseError for files no parser should see: missing, directories, binary data."""
    name = str(path)
    if not path.exists():
        raise ParseError(name, 0, "an existing file", "nothing (no such file)")
    if not path.is_file():
        raise ParseError(name, 0, "a regular file", "something else")
    try:
        with path.open("rb") as f:
            head = f.read(8192)
    except OSError as exc:
        raise ParseError(name, 0, "a readable file", exc.strerror or type(exc).__name__) from None
    if b"\0" in head:
        line = head[: head.index(b"\0")].count(b"\n") + 1
        raise ParseError(name, line, "a text document", "binary data (NUL byte)")


def head_text(path: Path, size: int = SNIFF_BYTES) -> str:
    with path.open("rb") as f:
        raw = f.read(size)
    return raw.decode("utf-8", errors="replace").lstrip("\ufeff")


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text without newline), decoded as strict UTF-8, one line at a time."""
    name = str(path)
    with path.open("rb") as f:
        number = 0
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)  # never more than the limit in memory
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise ParseError(name, number, f"a line under {MAX_LINE_BYTES >> 20} MB", "a longer line")
            if b"\0" in raw:
                raise ParseError(name, number, "text", "a NUL byte")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ParseError(
                    name, number, "UTF-8 text", f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
                ) from None
            if number == 1:
                text = text.lstrip("\ufeff")
            yield number, text.rstrip("\r\n")


def join_lines(path: str, lines: Iterable[tuple[int, str]], limit: int = MAX_WHOLE_FILE) -> str:
    """The lines of a file as one string, for formats read whole; enormous files refused."""
    parts, size = [], 0
    for number, text in lines:
        size += len(text) + 1
        if size > limit:
            raise ParseError(path, number, f"a file under {limit >> 20} MB for this format", "more")
        parts.append(text)
    return "\n".join(parts)


def read_text(path: Path, limit: int = 512 * 1024 * 1024) -> str:
    """The whole file, for formats that need it (BibTeX, XML); same checks as iter_lines."""
    size = path.stat().st_size
    if size > limit:
        raise ParseError(str(path), 0, f"a file under {limit >> 20} MB for this format", f"{size >> 20} MB")
    return "\n".join(line for _, line in iter_lines(path))
