"""`landscape build`: run each enrichment step in order; each does only what is missing.

A step is any object with a `name` and `run(ctx) -> dict[str, int]` (counts such as
new / changed / unchanged). Steps read what earlier steps stored instead of recomputing, and
`ctx.cache` lets a step hand in-memory results (the embedding matrix) to the next one.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import Config
from ..engine import Engine, LocalEngine, ran
from ..store import now_iso
from ..store.interfaces import BuildStore

# step name -> module in landscape.enrich exposing step(config) -> Step, in build order
STEPS: list[str] = ["embed", "neighbours", "concepts", "areas", "summaries", "connections", "topics", "map", "trends", "mentions"]


class Step(Protocol):
    name: str

    def run(self, ctx: BuildContext) -> dict[str, int]: ...


@dataclass
class BuildContext:
    store: BuildStore
    config: Config
    relayout: bool = False
    full: bool = False
    cache: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = lambda _msg: None
    fallbacks: list[str] = field(default_factory=list)
    engine: Engine = field(default_factory=LocalEngine)  # where per-record batches run (landscape.engine)

    def fallback(self, message: str) -> None:
        """Say once that a step did something other than asked (the build output and the About
        page show it): a fallback is never silent."""
        if message not in self.fallbacks:
            self.fallbacks.append(message)
            self.log(f"fallback: {message}")


@dataclass
class StepResult:
    name: str
    seconds: float
    counts: dict[str, int]


def load_step(name: str, config: Config) -> Step:
    return importlib.import_module(f"landscape.enrich.{name}").step(config)


def build(
    store: BuildStore,
    config: Config,
    only: list[str] | None = None,
    relayout: bool = False,
    full: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
    engine: Engine | None = None,
) -> list[StepResult]:
    """Run the build steps; returns how long each took and what it did."""
    ctx = BuildContext(store=store, config=config, relayout=relayout, full=full, log=log,
                       engine=engine or LocalEngine())
    started = now_iso()
    results = []
    steps = run_steps(ctx, only)
    while True:
        start = time.perf_counter()
        done = next(steps, None)
        if done is None:
            break
        results.append(StepResult(done[0], time.perf_counter() - start, done[1]))
        log(f"{done[0]}: " + ", ".join(f"{v} {k}" for k, v in done[1].items()))
    if ctx.engine.where != "this process":
        log(f"engine {ctx.engine.name}: {ran(ctx.engine)}")
    record_last_build(store, started, results, ctx.fallbacks)
    return results


def run_steps(ctx: BuildContext, only: Sequence[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Run the build steps (those of `only`) in order, each step's name and counts as it ends.
    Once the first has run (embed, which leaves every record embedded), the later steps share
    one read of the embedding matrix (enrich/embed.py, embeddings_held)."""
    from .embed import embeddings_held

    with ExitStack() as after_embedding:
        for k, name in enumerate(n for n in STEPS if not only or n in only):
            counts = load_step(name, ctx.config).run(ctx)
            release_memory()
            yield name, counts
            if k == 0:
                after_embedding.enter_context(embeddings_held(ctx.store))


_LIBC: Any = None


def release_memory() -> None:
    """Hand back to the system what a finished step freed. The steps run in one process, and the
    C heap keeps freed memory for reuse, so each step started from the high-water mark of those
    before it (at 101,000 records, 166 of the 718 MB held after concepts were such free memory).
    glibc's malloc_trim returns it; elsewhere this only collects garbage."""
    global _LIBC
    gc.collect()
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC(0)


LAST_BUILD = "last_build"


def record_last_build(store: BuildStore, started: str, results: list[StepResult], fallbacks: Sequence[str] = ()) -> None:
    """Keep what the latest build did, step by step, so the site can say how fresh it is."""
    summary = {
        "started_at": started,
        "finished_at": now_iso(),
        "steps": [{"name": r.name, "seconds": round(r.seconds, 2), "counts": r.counts} for r in results],
        "fallbacks": list(fallbacks),
    }
    with store.transaction():
        store.set_meta(LAST_BUILD, json.dumps(summary, sort_keys=True))
