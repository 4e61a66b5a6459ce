"""The local engine: per-record batches in forked processes give what one process gives."""

import os
import shutil
import signal

import pytest

from landscape.engine import LocalEngine, Worker, get_engine
from landscape.models import LandscapeError

from .conftest import LISTING, SEEDS, run_cli


def doubled(batch):
    return [x * 2 for x in batch]


def pid_of(batch):
    return os.getpid()


def dies_on_three(batch):
    if batch == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return batch


@pytest.fixture
def free_forks(monkeypatch):
    """Tests that fork for batches taking microseconds (a build forks only when a batch takes
    longer than forking would: tested on its own below)."""
    monkeypatch.setattr("landscape.engine.fork_seconds", lambda processes, rss: 0.0)


def test_processes_answer_every_batch_in_order(free_forks):
    engine = LocalEngine(2)
    batches = [list(range(i, i + 3)) for i in range(0, 60, 3)]
    assert list(engine.map_batches(Worker(doubled, "double"), iter(batches))) == [doubled(b) for b in batches]
    assert engine.batches["double"] == 20 and engine.where == "2 local processes"


def test_work_runs_in_other_processes_unless_it_asks_to_stay(free_forks):
    engine = LocalEngine(2)
    first, *rest = engine.map_batches(Worker(pid_of, "pid"), range(8))  # the first batch, timed, runs here
    assert first == os.getpid() and os.getpid() not in rest
    assert set(engine.map_batches(Worker(pid_of, "pid", fork=False), range(8))) == {os.getpid()}
    assert list(engine.map_batches(Worker(pid_of, "pid"), range(1))) == [os.getpid()]  # one batch: no fork
    assert set(LocalEngine(1).map_batches(Worker(pid_of, "pid"), range(8))) == {os.getpid()}


def test_a_process_that_dies_is_one_line_not_a_hang(free_forks):
    with pytest.raises(LandscapeError, match="dies: a worker process of the local engine died"):
        list(LocalEngine(2).map_batches(Worker(dies_on_three, "dies"), range(8)))


def test_batches_are_smaller_with_processes_so_none_waits_on_a_long_last_one():
    assert LocalEngine(1).batch_size(10_000, 2048) == 2048
    assert LocalEngine(2).batch_size(10_000, 2048) == 1250
    assert LocalEngine(2).batch_size(100_000, 2048) == 2048
    assert get_engine("local", None, 3).processes == 3


def test_one_process_per_cpu_by_default_but_one_on_macos(monkeypatch):
    import sys

    assert LocalEngine().processes == (os.cpu_count() or 1)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert LocalEngine().processes == 1 and LocalEngine(2).processes == 2


def test_a_build_in_two_processes_stores_what_one_process_stores(tmp_path, free_forks):
    """Every step of a real build (460 papers and a talk: several batches per step) with one
    process and with two: every record's page data (area, summary, concepts, connections with
    their reasons) and every vector the same."""
    import numpy as np

    from landscape.store import Store
    from landscape.views import record_detail

    ingested = tmp_path / "ingested.db"
    run_cli("ingest", LISTING, SEEDS / "003_00411ab6291d3934.txt", "--db", ingested)
    stored = []
    for workers in ("1", "2"):
        db = tmp_path / f"w{workers}.db"
        shutil.copy(ingested, db)
        out = run_cli("build", "--embedder", "fast", "--workers", workers, "--db", db).output
        assert ("on 2 local processes" in out) == (workers == "2")
        with Store(db, readonly=True) as store:
            ids, vectors = store.embedding_matrix(store.get_meta("embedder") or "")
            pages = [{**record_detail(store, rid), "connections": store.get_connections(rid)}
                     for rid in sorted(store.record_titles())]
            stored.append((pages, ids, vectors))
    (one, ids_1, vectors_1), (two, ids_2, vectors_2) = stored
    assert len(one) == 461 and all(d["summary"] for d in one) and all(d["connections"] for d in one)
    assert one == two
    assert ids_1 == ids_2 and np.array_equal(vectors_1, vectors_2)


def test_workers_is_for_the_local_engine_only(tmp_path):
    result = run_cli("build", "--engine", "ray", "--workers", "2", "--db", tmp_path / "x.db", expect=2)
    assert "--workers: only the local engine" in result.output


def test_too_little_free_memory_runs_fewer_processes_and_says_so(monkeypatch, free_forks):
    import landscape.engine as engine_module
    from landscape.engine import ran

    monkeypatch.setattr(engine_module, "_memory_mb", lambda: (3_000.0, 10_000.0))  # 3 GB free, 10 GB build
    engine = LocalEngine(2)
    assert set(engine.map_batches(Worker(pid_of, "connections"), range(6))) == {os.getpid()}
    assert "connections in 1 process, not 2" in ran(engine)


def test_batches_quicker_than_a_fork_stay_in_this_process_and_the_log_says_why(monkeypatch):
    from landscape.engine import fork_seconds, ran

    assert fork_seconds(2, 12 * 1024) == pytest.approx(2 * (0.05 + 0.8 * 12))  # a 12 GB build: 19 s
    engine = LocalEngine(2)
    assert set(engine.map_batches(Worker(pid_of, "connections"), range(6))) == {os.getpid()}
    assert "connections in this process: forking 2 processes would cost" in ran(engine)
    monkeypatch.setattr("landscape.engine.fork_seconds", lambda processes, rss: 0.0)
    assert len(set(LocalEngine(2).map_batches(Worker(pid_of, "connections"), range(6)))) > 1


def slow_pid(batch):
    import time

    time.sleep(0.05)
    return os.getpid()


def test_whether_to_fork_weighs_the_batches_the_step_planned(monkeypatch):
    """Forking (here said to cost 1 s) pays for 60 batches of 50 ms, not for 3."""
    monkeypatch.setattr("landscape.engine.fork_seconds", lambda processes, rss: 1.0)
    engine = LocalEngine(2)
    assert engine.batch_size(3, 1) == 1  # three batches of one planned
    assert set(engine.map_batches(Worker(slow_pid, "few"), range(3))) == {os.getpid()}
    size = engine.batch_size(60, 1)
    assert size == 1
    assert len(set(engine.map_batches(Worker(slow_pid, "many"), range(60)))) > 1


class OnDevice:
    """A worker that says where it runs: `to_gpu` answers its GPU twin, as EncodeBatch does."""

    def __init__(self, where="cpu"):
        self.where = where

    def __call__(self, batch):
        return self.where

    def to_gpu(self):
        return OnDevice("gpu")


def test_a_machine_with_cuda_runs_the_workers_that_ask_for_a_gpu_on_it(monkeypatch):
    engine = LocalEngine(1)
    engine.gpus = 1
    assert set(engine.map_batches(Worker(OnDevice(), "embed", gpu=True, fork=False), range(3))) == {"gpu"}
    assert set(engine.map_batches(Worker(OnDevice(), "summaries"), range(3))) == {"cpu"}
    engine.gpus = 0
    assert set(engine.map_batches(Worker(OnDevice(), "embed", gpu=True, fork=False), range(3))) == {"cpu"}


def test_without_an_nvidia_driver_there_is_no_gpu_and_torch_is_not_asked(monkeypatch):
    import builtins

    from landscape import engine

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        assert name != "torch", "torch imported to learn there is no GPU"
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(os.path, "exists", lambda path: False)
    monkeypatch.setattr(builtins, "__import__", no_torch)
    engine.cuda_devices.cache_clear()
    try:
        assert engine.cuda_devices() == 0 and LocalEngine(1).gpus == 0
    finally:
        engine.cuda_devices.cache_clear()
