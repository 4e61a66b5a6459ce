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


def iter_lines(path: Path, block: int = 1 << 20) -> Iterator[tuple[int, str]]:
    """(line number, text without newline), decoded as strict UTF-8, one line at a time.

    Reads about a megabyte of whole lines at a time and decodes it at once (a line per
    readline costs more than parsing it); a block holding a NUL byte, bad UTF-8 or a line
    over the limit is gone through line by line for the exact error.
    """
    name = str(path)
    number = 0
    with path.open("rb") as f:
        pending = b""
        while data := f.read(block):
            data = pending + data
            cut = data.rfind(b"\n") + 1
            pending = data[cut:]
            if cut:
                yield from _block_lines(name, number, data[:cut])
                number += data.count(b"\n", 0, cut)
            if len(pending) > MAX_LINE_BYTES:
                raise ParseError(name, number + 1, f"a line under {MAX_LINE_BYTES >> 20} MB", "a longer line")
        if pending:
            yield from _checked_lines(name, number, [pending])


def _block_lines(name: str, number: int, data: bytes) -> Iterator[tuple[int, str]]:
    """The lines of whole lines `data` (ending in a newline) that follow line `number`."""
    if len(data) <= MAX_LINE_BYTES and b"\0" not in data:
        try:
            lines = data.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            pass
        else:
            lines.pop()
            if number == 0:
                lines[0] = lines[0].lstrip("\ufeff")
            for at, line in enumerate(lines, number + 1):
                yield at, line.rstrip("\r")
            return
    raws = data.split(b"\n")
    raws.pop()
    yield from _checked_lines(name, number, [raw + b"\n" for raw in raws])


def _checked_lines(name: str, number: int, raws: list[bytes]) -> Iterator[tuple[int, str]]:
    """Line by line with the exact error: over-long line, NUL byte or bad UTF-8."""
    for raw in raws:
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
