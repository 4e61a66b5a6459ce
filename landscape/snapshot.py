"""What the server derives from a store (the search index, the connections corpus, the loaded
embedder), built once per store version and shared by every thread.

A value is keyed by the store's version (`Store.version()`: a random token per store file and
a counter every committed write bumps), so checking it costs one indexed row, whatever the
store's size. A value is built whole under a per-name lock (a second thread asking for the
same version waits for it instead of building its own) and swapped in under another, so a
reader gets either the old value or the new one, never a half-built one. Each worker process
keeps its own values; the version read from the shared file keeps them all in step.

A build that fails with a domain error (the store is half way through `build --full`) is
kept as that failure for its version, so every request in that state answers at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .models import LandscapeError
from .store.interfaces import MetaStore

T = TypeVar("T")
S = TypeVar("S", bound=MetaStore)
Version = tuple[str, int]


class _Failed:
    def __init__(self, error: LandscapeError):
        self.error = error


class Snapshots:
    KEEP = 2  # the newest version and the one before: readers still inside the older read transaction

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], dict[Version, Any]] = {}
        self._swap = threading.Lock()
        self._building: dict[tuple[str, str], threading.Lock] = {}

    def get(self, store: S, name: str, build: Callable[[S], T]) -> T:
        """The value `build(store)` for the state this connection reads, built at most once per version."""
        key = (store.path, name)
        version = store.version()
        hit = self._values.get(key, {}).get(version, _MISSING)
        if hit is not _MISSING:
            return _unwrap(hit)
        with self._lock_for(key):
            hit = self._values.get(key, {}).get(version, _MISSING)
            if hit is not _MISSING:
                return _unwrap(hit)
            try:
                value: Any = build(store)
            except LandscapeError as exc:
                value = _Failed(exc)
            if store.version() == version:  # nothing committed while it was read: one whole state
                self._install(key, version, value)
        return _unwrap(value)

    def clear(self) -> None:
        with self._swap:
            self._values.clear()

    def _install(self, key: tuple[str, str], version: Version, value: Any) -> None:
        """Swap in a new dict holding the newest KEEP versions (a reader holds the old dict or the new)."""
        with self._swap:
            held = {v: x for v, x in self._values.get(key, {}).items() if v[0] == version[0]}
            held[version] = value
            self._values[key] = dict(sorted(held.items(), key=lambda kv: kv[0][1])[-self.KEEP :])

    def _lock_for(self, key: tuple[str, str]) -> threading.Lock:
        with self._swap:
            return self._building.setdefault(key, threading.Lock())


_MISSING = object()


def _unwrap(value: Any) -> Any:
    if isinstance(value, _Failed):
        raise type(value.error)(*value.error.args)  # a fresh exception per reader: tracebacks are per raise
    return value


SNAPSHOTS = Snapshots()
