"""Streaming in fixed-size lists: what ingest, the stores and the build steps write and query by."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of `size` consecutive items (the last one shorter), never more than one in memory."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
