"""`landscape build`: run each enrichment step in order; each does only what is missing.

A step is any object with a `name` and `run(ctx) -> dict[str, int]` (counts such as
new / changed / unchanged). Steps read what earlier steps stored instead of recomputing, and
`ctx.cache` lets a step hand in-memory results (the embedding matrix) to the next one.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Sequence
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
    for name in STEPS:
        if only and name not in only:
            continue
        step = load_step(name, config)
        start = time.perf_counter()
        counts = step.run(ctx)
        results.append(StepResult(name, time.perf_counter() - start, counts))
        log(f"{name}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if ctx.engine.name != "local":
        log(f"engine {ctx.engine.name}: {ran(ctx.engine)}")
    record_last_build(store, started, results, ctx.fallbacks)
    return results


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
