"""CLI commands for the web part of Landscape: `landscape serve`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..cli import db_option, errors_to_exit
from ..models import LandscapeError

# uvicorn's default of 5 s closed connections under load: a busy server read the next request
# on a kept-alive connection more than 5 s after its last response, and the client, which had
# already sent it, saw the connection reset (bench/load.py, 64 connections on 2 cores).
KEEP_ALIVE_S = 75
# uvicorn's supervisor kills a worker that does not answer its ping within 5 s, and a worker
# cannot answer while a C call holds the GIL: hnswlib loads a million records' graph index
# (2.3 GB) in one such call, 6 s from the page cache and 14 s from disk, so the supervisor killed
# workers as they warmed up and their open connections were dropped (bench/load.py, 2 workers).
WORKER_HEALTHCHECK_S = 120


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--get", "get_path", default=None, metavar="PATH",
              help="Answer one request for PATH in-process, print the body and exit (no port opened).")
@click.option("--workers", type=click.IntRange(1, 256), default=None, metavar="N",
              help="Server processes sharing the read-only store  [default: the number of CPUs]")
@click.option("--threads", type=click.IntRange(1, 256), default=None, metavar="N",
              help="Threads per worker building pages at once  [default: 2]")
@db_option
@errors_to_exit
def serve(host: str, port: int, get_path: str | None, workers: int | None, threads: int | None,
          db: str | None) -> None:
    """Serve the landscape as a read-only web site with a JSON API under /api/v1.

    With N workers, N processes (uvicorn's own multi-process mode) accept on one socket; each
    opens its own read-only connections to the store (SQLite in WAL mode lets them all read
    while a build writes) and keeps its own search index and counts per store version. Each
    builds at most --threads pages at once (more workers, not threads, use more cores)."""
    from ..store import default_db_path, is_postgres_url
    from ..web.app import THREADS_ENV, create_app

    if threads:
        os.environ[THREADS_ENV] = str(threads)  # read by each worker's app as it starts

    app = create_app(db or default_db_path())
    if get_path is not None:
        from starlette.testclient import TestClient

        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get(get_path)
        click.echo(response.text)
        raise SystemExit(0 if response.status_code < 400 else 1)
    import socket
    import threading

    import uvicorn

    from ..web.app import warm_up

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, or asyncio leaves Nagle on for the accepted connections (+40 ms a page)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise LandscapeError(f"{host}:{port}: expected a free address to listen on, found {exc.strerror}") from None
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    click.echo(f"Landscape at http://{shown}:{sock.getsockname()[1]}/ (read-only; Ctrl-C to stop)")
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        threading.Thread(target=warm_up, args=(db or default_db_path(),), daemon=True, name="warm-up").start()
        uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_keep_alive=KEEP_ALIVE_S)).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    from ..web.app import DB_ENV

    target = db or default_db_path()  # read by each worker's app factory; a PostgreSQL URL stays as it is
    os.environ[DB_ENV] = target if is_postgres_url(target) else str(Path(target).resolve())
    config = uvicorn.Config("landscape.web.app:worker_app", factory=True, workers=workers,
                            log_level="warning", timeout_keep_alive=KEEP_ALIVE_S,
                            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S)
    Multiprocess(config, sockets=[sock]).run()


def register(main: click.Group) -> None:
    """Attach this module's commands to the `landscape` group."""
    main.add_command(serve)
