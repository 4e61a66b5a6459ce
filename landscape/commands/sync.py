"""CLI command `landscape sync`: refresh the store from arXiv, INSPIRE, ADS, OpenAlex, S2."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..cli import db_option, emit_json, errors_to_exit, json_option, open_store
from ..models import LandscapeError

SOURCE_KEYS = ("name", "query", "since", "endpoint", "limit")
SYNC_KEYS = ("contact", "endpoints", "s2_key", "ads_token", "page_size")


@click.command()
@click.argument("source", required=False)
@click.option("--query", help="What to fetch (arxiv: a search_query, or set:NAME for OAI-PMH by set).")
@click.option("--since", help="Only records from this date on (YYYY-MM-DD).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after N records (resumable).")
@click.option("--endpoint", help="Another base URL for the service (a mirror, or a test server).")
@click.option("--config", "config_path", default=None, help="TOML config file ([[sources]], [sync]).")
@db_option
@json_option
@errors_to_exit
def sync(source, query, since, limit, endpoint, config_path, db, as_json) -> None:
    """Fetch new records from a service (or every [[sources]] entry of the config), each page
    committed with its cursor, so an interrupted sync resumes where it stopped."""
    from ..config import Config
    from ..sync import check_date
    from ..sync.run import sync_source

    since = check_date(since)
    with open_store(db) as store:
        config = Config.load(config_path, db_path=store.path)
        jobs = planned_jobs(config, source, query, since, limit, endpoint)
        reports = []
        log = (lambda _m: None) if as_json else (lambda m: click.echo(m, err=True))
        try:
            for job in jobs:
                client = _client(job["name"], job.get("endpoint"), config.sync)
                reports.append(sync_source(
                    store, client, query=job.get("query"), since=job.get("since"), limit=job.get("limit"),
                    since_floor=job.get("since_floor"), log=log,
                ))
        except KeyboardInterrupt:
            click.echo("interrupted: the pages committed are kept; run `landscape sync` again to resume", err=True)
            sys.exit(130)
    if as_json:
        emit_json([vars(r) for r in reports])
        return
    for report in reports:
        click.echo(report.summary())
        for note in report.notes:
            click.echo(f"{report.source}: {note}")


def planned_jobs(config, source, query, since, limit, endpoint) -> list[dict[str, Any]]:
    """The sources to refresh: the one named on the command line, else every configured one."""
    from ..sync import SERVICES, check_date

    _check_keys("[sync]", config.sync, SYNC_KEYS)
    if source:
        return [{"name": source, "query": query, "since": since, "limit": limit, "endpoint": endpoint}]
    if query or endpoint:
        raise LandscapeError("sync: --query and --endpoint need a SOURCE (one of " + ", ".join(SERVICES) + ")")
    if not config.sources:
        raise LandscapeError(
            "sync: expected a SOURCE or [[sources]] entries in the config (name, query, since), found neither"
        )
    jobs = []
    for number, entry in enumerate(config.sources, start=1):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise LandscapeError(f"[[sources]] entry {number}: expected a table with a name, found {entry!r}")
        _check_keys(f"[[sources]] entry {number}", entry, SOURCE_KEYS)
        job = dict(entry)
        job["since"] = since  # given on the command line: from that date, whatever ran before
        job["since_floor"] = check_date(entry.get("since"), f"[[sources]] entry {number}: since")
        job["limit"] = limit or entry.get("limit")
        jobs.append(job)
    return jobs


def _check_keys(where: str, table: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise LandscapeError(f"{where}: expected keys among {', '.join(known)}, found {unknown[0]!r}")


def _client(name: str, endpoint: str | None, settings: dict[str, Any]):
    from ..sync import Settings, make_client

    endpoints = settings.get("endpoints") or {}
    key = settings.get("s2_key") if name == "s2" else settings.get("ads_token") if name == "ads" else None
    contact = settings.get("contact")
    if not contact:
        click.echo("note: no [sync] contact in the config; services ask for one (User-Agent, OpenAlex mailto)",
                   err=True)
    return make_client(name, Settings(
        endpoint=endpoint or endpoints.get(name), contact=contact, api_key=key,
        page_size=settings.get("page_size"),
    ))


def register(main: click.Group) -> None:
    main.add_command(sync)
