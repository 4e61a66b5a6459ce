"""The Ray engine: per-record batches run on a pool of Ray actors, results come back in order.

Why actors fed by the driver rather than a Ray Data dataset: the batches are read from the store
on the driver (workers never open the store), and a dataset would first hold every batch of the
run in the object store; here at most `in_flight` batches per actor are out at once, so memory is
bounded whatever the corpus size, and each actor keeps its model loaded across batches.

One actor per CPU of the cluster (one CPU each), or one per GPU for work that asks for a GPU.
Faults are one line (the CLI exits 2): an address nothing answers on, a cluster that cannot be
joined, a cluster or worker that goes away mid-build. The step's writes are per batch, each in a
transaction, so what was written is whole and a rerun resumes from there.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from typing import Any

from ..models import LandscapeError
from . import Worker

RAY_MISSING = "the ray engine needs Ray: pip install 'landscape[ray]'"
CONNECT_TIMEOUT_S = 5.0
DEFAULT_PORTS = {"ray": 10001, "": 6379}  # ray:// client server, GCS


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def host_port(address: str) -> tuple[str, int] | None:
    """(host, port) to probe for `address` ("host:port", "ray://host:port"); None for "auto"."""
    scheme, _, rest = address.rpartition("://")
    if rest in ("auto", "local") and not scheme:
        return None
    host, _, port = rest.rpartition(":")
    if not host:
        host, port = rest, ""
    try:
        return host.strip("[]"), int(port) if port else DEFAULT_PORTS.get(scheme, 6379)
    except ValueError:
        raise LandscapeError(f"--address {address}: expected HOST:PORT or ray://HOST:PORT") from None


def check_reachable(address: str) -> None:
    """Fail in seconds, not minutes: ray.init retries an address nobody answers on for long."""
    target = host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise LandscapeError(f"--address {address}: no Ray cluster answers there ({first_line(exc)})") from None


class BatchActor:
    """Holds one worker; a model it loads stays loaded for every batch this actor runs."""

    def __init__(self, fn: Any, gpu: bool):
        to_gpu = getattr(fn, "to_gpu", None)
        self.fn = to_gpu() if gpu and to_gpu is not None else fn

    def run(self, batch: Any) -> Any:
        return self.fn(batch)


class RayEngine:
    name = "ray"
    in_flight = 2  # batches queued per actor, so an actor never waits for the driver

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise LandscapeError(RAY_MISSING) from None
        self.address = address
        self.where = f"the Ray cluster at {address}" if address else "the local Ray"
        self._owns = False
        self.batches: Counter[str] = Counter()
        if address:
            check_reachable(address)
        if not ray.is_initialized():
            self._start(address, num_cpus)
        self.cpus = int(ray.cluster_resources().get("CPU", 0))
        self.gpus = int(ray.cluster_resources().get("GPU", 0))
        self.where += f" ({self.cpus} CPUs{f', {self.gpus} GPUs' if self.gpus else ''})"

    def _start(self, address: str | None, num_cpus: int | None) -> None:
        import ray

        try:
            ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise LandscapeError(f"{'--address ' + address if address else 'ray'}: could not start or join"
                                 f" a Ray cluster ({first_line(exc)})") from None
        self._owns = True

    def batch_size(self, total: int, preferred: int, smallest: int = 16) -> int:
        """`preferred`, or smaller so that `total` records keep every actor busy."""
        share = -(-total // max(1, self.cpus * self.in_flight))
        return max(1, min(preferred, max(smallest, share)))

    def workers(self, gpu: bool) -> tuple[int, dict[str, float]]:
        """How many actors to start and what each asks for."""
        import ray

        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if gpu and gpus:
            return gpus, {"num_cpus": 1, "num_gpus": 1}
        return max(1, int(resources.get("CPU", 1))), {"num_cpus": 1}

    def map_batches(self, worker: Worker, batches: Iterable[Any]) -> Iterator[Any]:
        import ray

        actors: list[Any] = []
        try:
            n, options = self.workers(worker.gpu)
            actor_class = ray.remote(BatchActor).options(max_restarts=0, **options)
            fn_ref = ray.put(worker.fn)
            actors = [actor_class.remote(fn_ref, worker.gpu) for _ in range(n)]
            pending: deque[Any] = deque()
            for i, batch in enumerate(batches):
                pending.append(actors[i % n].run.remote(batch))
                if len(pending) >= n * self.in_flight:
                    yield self._result(pending.popleft())
                    self.batches[worker.label] += 1
            while pending:
                yield self._result(pending.popleft())
                self.batches[worker.label] += 1
        except ray.exceptions.RayTaskError:
            raise
        except ray.exceptions.RayError as exc:
            raise LandscapeError(f"{self.where} went away during {worker.label}: {first_line(exc)}"
                                 " (what was written is kept; rerun the build to resume)") from None
        finally:
            for actor in actors:
                try:
                    ray.kill(actor)
                except Exception:  # noqa: BLE001, S110 - a cluster that is gone has no actor to kill
                    pass

    def _result(self, ref: Any) -> Any:
        """The batch's result; an error the worker raised is raised here as itself."""
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceof_cause()
            if isinstance(exc.cause, LandscapeError):
                raise LandscapeError(str(exc.cause)) from None
            raise cause from None

    def close(self) -> None:
        if self._owns:
            import ray

            ray.shutdown()
            self._owns = False
