"""`landscape serve` keeps answering, with whole pages, while `landscape ingest` and
`landscape build` (incremental, then --full) write to the same store in other processes.

Each page is read in one snapshot, and each build step replaces its output in one transaction,
so a reader sees the state before or after a step, never between: record counts only grow,
and topics, concepts, the map and a record's connections never vanish once built.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from landscape.enrich.embed import TFIDF_ARTIFACT, TfidfModel
from landscape.store import open_store
from landscape.web.app import create_app

from .conftest import FIXTURES, LISTING, run_cli
from .test_hostile import listing_head

LANDSCAPE = str(Path(sys.executable).parent / "landscape")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(db: Path) -> Iterator[str]:
    """`landscape serve` on a free port of 127.0.0.1 until the block ends; yields its base URL."""
    with serving_process(db) as (base, _):
        yield base


@contextlib.contextmanager
def serving_process(db: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`landscape serve OPTIONS` on a free port; yields its base URL and the process."""
    port = free_port()
    log = db.with_suffix(".serve.log")
    with log.open("w") as out:
        proc = subprocess.Popen([LANDSCAPE, "serve", "--port", str(port), *options, "--db", str(db)],
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/api/v1/stats", timeout=60).status_code == 200:
                    break
            except httpx.TransportError:
                if proc.poll() is not None:
                    pytest.fail(f"server exited: {log.read_text()}")
                threading.Event().wait(0.1)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    db = tmp_path / "landscape.db"
    run_cli("ingest", listing_head(tmp_path / "head.txt", 40), db=db)
    run_cli("build", "--embedder", "tfidf", db=db)
    with serving(db) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield db, client


class Reader(threading.Thread):
    """Fetches pages in a loop and records anything that is not a whole, consistent page."""

    def __init__(self, client: httpx.Client, record_id: str):
        super().__init__(daemon=True)
        self.client, self.record_id = client, record_id
        self.stop = threading.Event()
        self.writing = threading.Event()
        self.problems: list[str] = []
        self.rounds = self.rounds_while_writing = 0
        self.last_total = 0
        self.built: set[str] = set()

    def check(self, name: str, nonempty: bool) -> None:
        if nonempty:
            self.built.add(name)
        elif name in self.built:
            self.problems.append(f"{name} vanished after it was built")

    def round(self) -> None:
        get = self.client.get
        for url in ("/", "/posts", "/topics", "/concepts", "/map", "/search?q=dark+matter", f"/records/{self.record_id}",
                    "/trends", "/authors"):
            r = get(url)
            if r.status_code != 200 or "</html>" not in r.text:
                self.problems.append(f"{url}: {r.status_code}")
        stats = get("/api/v1/stats").json()
        total = stats["papers"] + stats["talks"]
        if total < self.last_total:
            self.problems.append(f"record count went down: {self.last_total} -> {total}")
        self.last_total = total
        m = get("/api/v1/map").json()
        if not m["count"] == len(m["ids"]) == len(set(m["ids"])):
            self.problems.append("map arrays disagree")
        self.check("map", m["count"] > 0)
        self.check("topics", bool(get("/api/v1/topics").json()["topics"]))
        self.check("concepts", bool(get("/api/v1/concepts").json()["concepts"]))
        related = get("/api/v1/related", params={"id": self.record_id})
        self.check("connections", related.status_code == 200 and bool(related.json()["results"]))

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.round()
            except Exception as exc:  # noqa: BLE001 - any failure to read a page is the finding
                self.problems.append(f"{type(exc).__name__}: {exc}")
            self.rounds += 1
            self.rounds_while_writing += self.writing.is_set()


def test_pages_stay_whole_while_ingest_and_build_write_the_same_store(server, tmp_path):
    db, client = server
    record_id = client.get("/api/v1/posts", params={"limit": 1}).json()["records"][0]["id"]
    more = tmp_path / "more.txt"
    head = len(listing_head(tmp_path / "again.txt", 40).read_text())
    more.write_text(LISTING.read_text()[head : len(listing_head(tmp_path / "again.txt", 120).read_text())])
    reader = Reader(client, record_id)
    reader.round()
    assert not reader.problems and {"map", "topics", "concepts", "connections"} <= reader.built
    reader.start()
    reader.writing.set()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    for args in (["ingest", more, FIXTURES / "hostile.jsonl"], ["build", "--embedder", "tfidf"],
                 ["build", "--embedder", "tfidf", "--full"]):
        done = subprocess.run([LANDSCAPE, *map(str, args), "--db", str(db)], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
    reader.writing.clear()
    reader.stop.set()
    reader.join(timeout=120)
    assert reader.rounds_while_writing >= 3
    assert not reader.problems, (reader.problems[:10], db.with_suffix(".serve.log").read_text()[-3000:])
    assert client.get("/api/v1/stats").json()["papers"] == 120 + 40  # listing head and hostile papers


def test_search_answers_while_a_full_rebuild_has_refitted_the_embedder_but_not_re_embedded(tmp_path):
    """The state `build --full` leaves between storing a refitted tfidf model and re-embedding:
    the query vector and the stored vectors differ in size. Search gave a 500 there."""
    db = tmp_path / "landscape.db"
    run_cli("ingest", listing_head(tmp_path / "head.txt", 30), db=db)
    run_cli("build", "--embedder", "tfidf", db=db)
    with open_store(db) as store, store.transaction():
        store.put_artifact(TFIDF_ARTIFACT, TfidfModel.fit(["dark matter halos", "dark energy"] * 3, dim=8,
                                                          min_df=1).to_bytes())
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        for url in ("/search?q=dark+matter", "/api/v1/search?q=dark+matter"):
            r = client.get(url)
            assert r.status_code == 200, url
        assert client.get("/api/v1/search", params={"q": "dark matter"}).json()["results"]
        r = client.get("/api/v1/related", params={"text": "dark matter halos"})
        assert r.status_code == 503 and "landscape build" in r.text, r.text[:200]


def test_a_kept_alive_connection_still_answers_after_a_pause(server):
    """Under load a busy server may read a kept-alive connection's next request seconds after
    its last response; with uvicorn's 5 s default it had closed it by then (a reset for the client)."""
    _, client = server
    host, port = client.base_url.host, client.base_url.port
    request = f"GET /api/v1/stats HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    with socket.create_connection((host, port), timeout=30) as conn:
        for pause in (0, 6):
            threading.Event().wait(pause)
            conn.sendall(request)
            head = read_response(conn)
            assert head.startswith(b"HTTP/1.1 200"), (pause, head[:80])


def read_response(conn: socket.socket) -> bytes:
    """One whole HTTP/1.1 response (headers, then Content-Length bytes); b'' if the server closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


class Hammer(threading.Thread):
    """Asks for searches and related-by-text in a loop; keeps every answer that is not whole."""

    QUERIES = ("dark matter", "neural network training", "black hole", "gravitational waves", "quantum field")

    def __init__(self, base: str, n: int):
        super().__init__(daemon=True)
        self.base, self.n = base, n
        self.stop = threading.Event()
        self.problems: list[str] = []
        self.answers = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=120) as client:
            i = self.n
            while not self.stop.is_set():
                q = self.QUERIES[i % len(self.QUERIES)]
                for url, params, allowed in (
                    ("/api/v1/search", {"q": q}, {200}),
                    ("/api/v1/related", {"text": q + " in the early universe"}, {200, 503}),
                    ("/search", {"q": q}, {200}),
                ):
                    try:
                        r = client.get(url, params=params)
                    except httpx.HTTPError as exc:
                        self.problems.append(f"{url}: {type(exc).__name__}")
                        continue
                    self.answers += 1
                    if r.status_code not in allowed:
                        self.problems.append(f"{url}?q={q}: {r.status_code} {r.text[:120]}")
                i += 1


def test_search_and_related_answer_while_builds_re_embed_the_store(server):
    """Builds that re-embed every record (switching to MiniLM, then back to a refitted tfidf) run
    in another process while eight threads ask for searches and related-by-text. The server's
    caches were module dicts keyed by a hash of the embedding rows and cleared by whichever
    thread saw a new state first: the hash ignored the model, so a MiniLM corpus answered a
    tfidf query (a 500 on a dimension mismatch), and a clear between another thread's fill and
    read was a KeyError."""
    db, client = server
    hammers = [Hammer(str(client.base_url), n) for n in range(8)]
    for h in hammers:
        h.start()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    for embedder in ("minilm", "tfidf"):
        done = subprocess.run([LANDSCAPE, "build", "--embedder", embedder, "--full", "--only", "embed",
                               "--only", "connections", "--db", str(db)], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
    for h in hammers:
        h.stop.set()
    for h in hammers:
        h.join(timeout=300)
    log = db.with_suffix(".serve.log").read_text()
    problems = [p for h in hammers for p in h.problems]
    assert sum(h.answers for h in hammers) > 50
    assert not problems and "Traceback" not in log, (problems[:10], log[-3000:])
    assert client.get("/api/v1/search", params={"q": "dark matter"}).json()["results"]
    assert client.get("/api/v1/related", params={"text": "dark matter halos"}).status_code == 200


def worker_pids(pid: int) -> list[int]:
    """The server processes uvicorn started for `pid` (its multiprocessing children, less the
    resource tracker)."""
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    out = []
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            out.append(child)
    return sorted(out)


def test_serve_with_two_workers_answers_from_both_and_replaces_one_that_dies(tmp_path):
    db = tmp_path / "landscape.db"
    run_cli("ingest", listing_head(tmp_path / "head.txt", 40), db=db)
    run_cli("build", "--embedder", "tfidf", db=db)
    with serving_process(db, "--workers", "2") as (base, proc), httpx.Client(base_url=base, timeout=60) as client:
        workers = worker_pids(proc.pid)
        assert len(workers) == 2
        rid = client.get("/api/v1/posts").json()["records"][0]["id"]
        paths = [f"/records/{rid}", "/api/v1/search?q=dark+matter", f"/api/v1/related?id={rid}", "/posts"]
        with httpx.Client(base_url=base, timeout=60) as other:
            codes = [c.get(p).status_code for _ in range(5) for p in paths for c in (client, other)]
        assert set(codes) == {200}
        os.kill(workers[0], 9)
        for _ in range(600):  # uvicorn's supervisor starts a new worker (slowly on a loaded machine)
            if len(worker_pids(proc.pid)) == 2 and worker_pids(proc.pid) != workers:
                break
            threading.Event().wait(0.1)
        assert len(worker_pids(proc.pid)) == 2 and workers[0] not in worker_pids(proc.pid)
        assert {client.get(p).status_code for p in paths} == {200}
