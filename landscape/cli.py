"""The `landscape` command: parse options, call one library function, report errors in one line."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .models import LandscapeError, ParseError, Record
from .store import AnyStore, default_db_path
from .store import open_store as open_backend


def db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db", "db", default=None, envvar="LANDSCAPE_DB", show_default="./landscape.db",
        help="Store: a SQLite file or postgresql://user@host:port/dbname (or set LANDSCAPE_DB).",
    )(f)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def _database_lost(exc: BaseException) -> str | None:
    """One line for a PostgreSQL server that went away or refused mid-command (what was
    committed is kept: every write is a transaction), else None."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(exc, psycopg.OperationalError):
        return None
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    return f"the PostgreSQL server stopped answering ({reason}); what was committed is kept: run the command again"


def errors_to_exit(f: Callable[..., Any]) -> Callable[..., Any]:
    """Domain errors become one line on stderr and exit status 2 (the one error shape)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except (ParseError, LandscapeError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except Exception as exc:
            lost = _database_lost(exc)
            if lost is None:
                raise
            click.echo(f"error: {lost}", err=True)
            sys.exit(2)

    return wrapper


def open_store(db: str | None, readonly: bool = False) -> AnyStore:
    return open_backend(db or default_db_path(), readonly=readonly)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@click.group()
@click.version_option(__version__)
def main() -> None:
    """Landscape: a navigable map of a research field from the documents you have."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", default="auto", help="auto (sniff content) or a format name.")
@click.option("--skip-bad", is_flag=True, help="Ingest the good records and list the bad ones.")
@click.option("--config", "config_path", default=None, help="TOML config file ([area_categories]).")
@db_option
@json_option
@errors_to_exit
def ingest(
    paths: tuple[str, ...], fmt: str, skip_bad: bool, config_path: str | None, db: str | None, as_json: bool
) -> None:
    """Read files (or directories) into the store."""
    from .config import Config
    from .ingest import ingest_paths
    from .progress import counter

    with open_store(db) as store, counter("ingesting", enabled=not as_json) as tick:
        areas = Config.load(config_path, db_path=store.path).area_categories
        report = ingest_paths(store, paths, fmt=fmt, skip_bad=skip_bad, on_record=tick, area_categories=areas)
    if as_json:
        emit_json({"summary": report.summary(), "files": [vars(f) for f in report.files]})
        return
    for f in report.files:
        if f.note:
            click.echo(f"{f.path}: {f.note}")
        else:
            click.echo(f"{f.path} ({f.format}): {f.new} new, {f.changed} changed, {f.unchanged} unchanged")
        for bad in f.bad:
            click.echo(f"  skipped {bad}")
    click.echo(report.summary())


@main.command()
@db_option
@json_option
@errors_to_exit
def stats(db: str | None, as_json: bool) -> None:
    """Counts of papers and talks, per area and per year."""
    from .config import Config
    from .views import stats_line

    with open_store(db, readonly=True) as store:
        data = store.stats()
        config = Config.load(None, db_path=store.path)
        fallbacks = (store.page_last_build() or {}).get("fallbacks", [])
    if as_json:
        emit_json({**data, "fallbacks": fallbacks})
        return
    click.echo(stats_line(data, config.area_order))
    click.echo(f"{data['talks']} talks")
    for year, n in data["years"].items():
        click.echo(f"{year}: {n}")
    for message in fallbacks:
        click.echo(f"fallback in the latest build: {message}")


def record_line(rec: Record) -> str:
    return f"{rec.id}  {rec.date or '----------'}  {(rec.area or rec.kind):<20}  {rec.title or '(untitled)'}"


@main.command(name="list")
@click.option("--area")
@click.option("--kind", type=click.Choice(["paper", "talk"]))
@click.option("--since", help="YYYY-MM-DD")
@click.option("--author")
@click.option("--limit", type=click.IntRange(min=1), default=None)
@db_option
@json_option
@errors_to_exit
def list_(area, kind, since, author, limit, db, as_json) -> None:
    """Records, newest first."""
    with open_store(db, readonly=True) as store:
        records = store.list_records(area=area, kind=kind, since=since, author=author, limit=limit)
    if as_json:
        emit_json([r.to_dict() for r in records])
        return
    if not records:
        click.echo("no records match")
    for rec in records:
        click.echo(record_line(rec))


@main.command()
@click.argument("record_id")
@db_option
@json_option
@errors_to_exit
def show(record_id: str, db: str | None, as_json: bool) -> None:
    """One record with everything known about it."""
    from .views import record_detail

    with open_store(db, readonly=True) as store:
        view = record_detail(store, record_id)
    if as_json:
        emit_json(view)
        return
    click.echo(view.get("display_title") or view["title"])
    click.echo(f"{view['kind']} · {view['area'] or 'no area'} · {view['date'] or 'undated'} · {view['id']}")
    authors = ", ".join(view["authors"]) + (" et al." if view["authors_truncated"] else "")
    if authors:
        click.echo(authors)
    if view.get("summary"):
        click.echo(f"\nTL;DR: {view['summary']}")
    if view["abstract"]:
        click.echo("\n" + view["abstract"])
    if view["keyphrases"]:
        click.echo("\nconcepts: " + "; ".join(view["keyphrases"]))
    for section in view.get("sections") or []:
        click.echo(f"\n## {section['title']}")
        if section.get("summary"):
            click.echo(section["summary"])
        for link in section.get("related") or []:
            click.echo(f"  -> {link['title']} [{link['id']}] {link['score']:.2f}: " + "; ".join(link["reasons"]))
    for s in view["sources"]:
        click.echo(f"source: {s['path']}:{s['line']} ({s['format']})")


@main.command()
@click.option("--format", "fmt", required=True, help="jsonl, csv, bibtex or site")
@click.argument("out")
@db_option
@errors_to_exit
def export(fmt: str, out: str, db: str | None) -> None:
    """Write every record to OUT."""
    from .export import export_records, writers

    available = [*writers(), "site"]
    if fmt not in available:
        raise LandscapeError(f"--format: expected one of {', '.join(available)}, found {fmt!r}")
    with open_store(db, readonly=True) as store:
        if fmt == "site":
            from .web.static_site import export_site

            click.echo(f"{export_site(store, out)} record pages written to the static site {out}")
            return
        n = export_records(store, fmt, out)
    click.echo(f"{n} records written to {out}")


def _register_command_modules() -> None:
    import importlib

    from .commands import MODULES

    for name in MODULES:
        importlib.import_module(f"landscape.commands.{name}").register(main)


if __name__ == "__main__":
    # Run as `python -m landscape.cli`: the command modules import `landscape.cli`, so register
    # them on that module, not on this copy executing as __main__.
    from landscape.cli import main as _main

    _main()
else:
    _register_command_modules()
