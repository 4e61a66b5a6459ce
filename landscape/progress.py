"""Progress for long work: a rich bar on a terminal, nothing when output is piped."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def counter(label: str, enabled: bool = True, total: int | None = None) -> Iterator[Callable[..., None]]:
    if not (enabled and sys.stdout.isatty()):
        yield lambda *_: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda *_: progress.advance(task)
