"""Engines: where the build's per-record work runs.

A per-record step (embedding, summaries, ...) hands the engine a `Worker`, a picklable callable
applied to one batch at a time, and an iterator of batches it streams from the store; the engine
answers the results in the order of the batches, and the step writes them back to the store in
batches on the driver. Global steps (fits on samples, topic clustering, the map layout) never go
through an engine.

- `local` (default): this machine. A worker that asks for a GPU (embedding with a torch model)
  runs on this machine's GPU where CUDA is present (`cuda_devices`). With one process (`build
  --workers 1`, or a worker that asks to stay in the process) it calls the worker batch by batch;
  with more (the default: one per CPU) it runs a step's first batch here and, when the processes
  would save more on the step's other batches than forking them costs (`fork_seconds`: forking a
  large build copies its page tables), forks that many for the rest, hands them the batches a few
  at a time and answers the results in batch order. Forked processes inherit the worker's state (a
  connections corpus, a fitted embedder) instead of receiving a copy, and never touch the store;
  the step writes each result on the driver while the processes work on the next.
- `ray`: a pool of Ray actors (`ray_engine.RayEngine`), on a local Ray or a cluster given by
  `--address`; each actor builds its worker's state (a model) once.
"""

from __future__ import annotations

import functools
import gc
import itertools
import multiprocessing
import os
import sys
import time
from collections import Counter, deque
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
    `label` names the work in errors ("embed"). `fork` False keeps it in the driver's process on
    the local engine (a torch model, which already uses every core, or an LLM too big to copy).
    """

    fn: Callable[[Any], Any]
    label: str
    gpu: bool = False
    fork: bool = True


class Engine(Protocol):
    name: str
    where: str  # for the build log and errors: "this process", "the Ray cluster at HOST:PORT"
    batches: Counter[str]  # batches run so far, by worker label (the build log says them)
    gpus: int  # GPUs the engine's workers may ask for (0: none)

    def map_batches(self, worker: Worker, batches: Iterable[Any]) -> Iterator[Any]: ...

    def batch_size(self, total: int, preferred: int) -> int: ...

    def close(self) -> None: ...


class LocalEngine:
    """This machine: in this process, or in `processes` forked ones (see the module docstring)."""

    name = "local"

    def __init__(self, processes: int | None = None):
        self.gpus = cuda_devices()
        self.processes = max(1, int(processes or default_processes()))
        if "fork" not in multiprocessing.get_all_start_methods():
            self.processes = 1
        self.where = "this process" if self.processes == 1 else f"{self.processes} local processes"
        self.batches: Counter[str] = Counter()
        self.notes: list[str] = []  # where it ran fewer processes than asked, and why
        self._planned: int | None = None  # batches of the step that asked batch_size last

    def map_batches(self, worker: Worker, batches: Iterable[Any]) -> Iterator[Any]:
        batches = iter(batches)
        fn = worker.fn
        if worker.gpu and self.gpus and not worker.fork:
            fn = getattr(fn, "to_gpu", lambda: fn)()
        planned, self._planned = self._planned or 4 * self.processes, None
        if self.processes > 1 and worker.fork:
            for batch in itertools.islice(batches, 1):  # the first batch here, timed
                start = time.perf_counter()
                result = fn(batch)
                took = time.perf_counter() - start
                yield result
                self.batches[worker.label] += 1
                second = list(itertools.islice(batches, 1))
                batches = itertools.chain(second, batches)
                if second and self._worth_forking(worker, took, planned):
                    processes = self._affordable(worker)
                    if processes > 1:
                        yield from self._forked(worker, batches, processes)
                        return
        for batch in batches:
            yield fn(batch)
            self.batches[worker.label] += 1

    def _worth_forking(self, worker: Worker, took: float, planned: int) -> bool:
        """Whether the processes would save more time on the step's other batches (as long as
        its first, `planned` in all, as batch_size planned them) than forking them costs: forking
        copies the build's page tables, about FORK_S_PER_GB s per GB of its memory and process
        (measured: two processes forked from a 12 GB build at a million records took 19 s, to rank
        the connections of 7,000 records that one process ranks in 8 s)."""
        _, rss = _memory_mb()
        cost = fork_seconds(self.processes, rss or 0.0)
        saved = took * max(planned - 1, 1) * (1 - 1 / self.processes)
        if saved >= cost:
            return True
        self.notes.append(f"{worker.label} in this process: forking {self.processes} processes would cost"
                          f" {cost:.1f} s and save about {saved:.1f} s")
        return False

    def _forked(self, worker: Worker, batches: Iterator[Any], processes: int) -> Iterator[Any]:
        """At most two batches per process are out at once, so memory holds a few batches
        whatever the corpus size; results come back in batch order. A process that dies (the
        system out of memory) ends the step with one line instead of a wait forever."""
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        global _FORKED
        _FORKED = worker.fn
        gc.freeze()  # the processes' collector then never writes to (and so copies) the shared objects
        pool = ProcessPoolExecutor(processes, multiprocessing.get_context("fork"), initializer=_one_blas_thread)
        try:
            pending: deque[Any] = deque()
            for batch in batches:
                pending.append(pool.submit(_run_forked, batch))
                if len(pending) >= 2 * processes:
                    yield pending.popleft().result()
                    self.batches[worker.label] += 1
            while pending:
                yield pending.popleft().result()
                self.batches[worker.label] += 1
        except BrokenProcessPool:
            raise LandscapeError(f"{worker.label}: a worker process of the local engine died (out of memory?);"
                                 " what was written is kept: rerun, or build with --workers 1") from None
        finally:
            _FORKED = None
            pool.shutdown(wait=True, cancel_futures=True)
            gc.unfreeze()

    def _affordable(self, worker: Worker) -> int:
        """Processes the free memory allows (noted when fewer than asked): a forked process
        shares the build's pages but copies those it writes to (reference counts of the objects
        it reads, its own caches); measured at 100,000 records, two processes ranking
        connections added 43% of the build's RSS."""
        free, rss = _memory_mb()
        if free is None or rss is None:
            return self.processes
        processes = max(1, min(self.processes, int(free // max(rss * CHILD_SHARE, 1.0))))
        if processes < self.processes:
            self.notes.append(f"{worker.label} in {processes} process{'es' if processes > 1 else ''}, not"
                              f" {self.processes}: each could need {CHILD_SHARE:.0%} of the build's memory")
        return processes

    def batch_size(self, total: int, preferred: int) -> int:
        """With processes, at least four batches per process (so none waits on a last long one)."""
        size = preferred if self.processes == 1 else max(1, min(preferred, -(-total // (4 * self.processes))))
        self._planned = max(1, -(-total // size))
        return size

    def close(self) -> None:
        pass


@functools.cache
def cuda_devices() -> int:
    """CUDA devices torch can use on this machine. Without an NVIDIA driver it answers 0 at once:
    a machine with no GPU never pays torch's import (seconds on a small CPU) to learn it."""
    if not any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0")):
        return 0
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def default_processes() -> int:
    """One per CPU; one on macOS, where a process forked after Accelerate (numpy's BLAS there)
    has been used may crash: `--workers N` still asks for more."""
    return 1 if sys.platform == "darwin" else os.cpu_count() or 1


CHILD_SHARE = 0.5  # a forked process's own memory, at most, as a share of the build's RSS
FORK_S_PER_GB = 0.8
FORK_S_BASE = 0.05


def fork_seconds(processes: int, rss_mb: float) -> float:
    """What forking `processes` processes from a build of `rss_mb` costs, in seconds (see
    LocalEngine._worth_forking)."""
    return processes * (FORK_S_BASE + FORK_S_PER_GB * rss_mb / 1024)


def _memory_mb() -> tuple[float | None, float | None]:
    """(MemAvailable, this process's RSS) in MB, or None where /proc does not say."""
    try:
        with open("/proc/meminfo") as f:
            free = next(int(line.split()[1]) / 1024 for line in f if line.startswith("MemAvailable:"))
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        return free, rss
    except (OSError, StopIteration, ValueError, IndexError):
        return None, None


_FORKED: Callable[[Any], Any] | None = None  # the worker forked processes inherit


def _run_forked(batch: Any) -> Any:
    assert _FORKED is not None
    return _FORKED(batch)


def _one_blas_thread() -> None:
    """Each forked process computes on one core: the processes are the parallelism."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def ran(engine: Engine) -> str:
    """What the engine ran, for the build log: "embed 4 batches, summaries 1 batch on ..."."""
    done = ", ".join(f"{label} {n} batch{'es' if n != 1 else ''}" for label, n in engine.batches.items())
    notes = getattr(engine, "notes", [])
    return f"{done or 'nothing'} on {engine.where}" + "".join(f"; {note}" for note in notes)


def get_engine(name: str, address: str | None = None, num_cpus: int | None = None) -> Engine:
    """The engine called `name`; a Ray engine connects now, so a bad address fails before any write.
    `num_cpus`: the local engine's processes, or the CPUs a local Ray may use (default: all)."""
    if name == "local":
        if address:
            raise LandscapeError(f"--address {address}: only the ray engine connects to an address (add --engine ray)")
        return LocalEngine(num_cpus)
    if name == "ray":
        from .ray_engine import RayEngine

        return RayEngine(address=address, num_cpus=num_cpus)
    raise LandscapeError(f"engine: expected one of {', '.join(ENGINES)}, found {name!r}")
