"""Engines: where the build's per-record work runs.

A per-record step (embedding, summaries, ...) hands the engine a `Worker`, a picklable callable
applied to one batch at a time, and an iterator of batches it streams from the store; the engine
answers the results in the order of the batches, and the step writes them back to the store in
batches on the driver. Global steps (fits on samples, topic clustering, the map layout) never go
through an engine.

- `local` (default): calls the worker in this process, batch by batch, exactly as before.
- `ray`: a pool of Ray actors (`ray_engine.RayEngine`), on a local Ray or a cluster given by
  `--address`; each actor builds its worker's state (a model) once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ..models import LandscapeError

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Worker:
    """What an engine runs on each batch.

    `fn` is called with one batch and answers its result; on Ray it is shipped once to each actor
    (so it must pickle cheaply: a model is loaded lazily, inside the actor, on its first batch).
    `gpu` asks for a GPU per actor where the cluster has one; the actor then calls `fn.to_gpu()`.
    `label` names the work in errors ("embed").
    """

    fn: Callable[[Any], Any]
    label: str
    gpu: bool = False


class Engine(Protocol):
    name: str
    where: str  # for the build log and errors: "this process", "the Ray cluster at HOST:PORT"
    batches: Counter[str]  # batches run so far, by worker label (the build log says them)
    gpus: int  # GPUs the engine's workers may ask for (0: none)

    def map_batches(self, worker: Worker, batches: Iterable[Any]) -> Iterator[Any]: ...

    def batch_size(self, total: int, preferred: int) -> int: ...

    def close(self) -> None: ...


class LocalEngine:
    """In this process, one batch after another: the build as it always ran."""

    name = "local"
    where = "this process"
    gpus = 0

    def __init__(self) -> None:
        self.batches: Counter[str] = Counter()

    def map_batches(self, worker: Worker, batches: Iterable[Any]) -> Iterator[Any]:
        fn = worker.fn
        for batch in batches:
            yield fn(batch)
            self.batches[worker.label] += 1

    def batch_size(self, total: int, preferred: int) -> int:
        return preferred

    def close(self) -> None:
        pass


def ran(engine: Engine) -> str:
    """What the engine ran, for the build log: "embed 4 batches, summaries 1 batch on ..."."""
    done = ", ".join(f"{label} {n} batch{'es' if n != 1 else ''}" for label, n in engine.batches.items())
    return f"{done or 'nothing'} on {engine.where}"


def get_engine(name: str, address: str | None = None, num_cpus: int | None = None) -> Engine:
    """The engine called `name`; a Ray engine connects now, so a bad address fails before any write."""
    if name == "local":
        if address:
            raise LandscapeError(f"--address {address}: only the ray engine connects to an address (add --engine ray)")
        return LocalEngine()
    if name == "ray":
        from .ray_engine import RayEngine

        return RayEngine(address=address, num_cpus=num_cpus)
    raise LandscapeError(f"engine: expected one of {', '.join(ENGINES)}, found {name!r}")
