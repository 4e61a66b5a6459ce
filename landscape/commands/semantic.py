"""CLI commands for the semantic part of Landscape: build, related, search."""

from __future__ import annotations

import click

from ..cli import db_option, emit_json, errors_to_exit, json_option, open_store
from ..models import LandscapeError


@click.command()
@click.option("--config", "config_path", default=None, help="TOML config file.")
@click.option("--embedder", default=None,
              help="minilm (default for a new store; a built one keeps its own), fast (large corpora), tfidf"
                   " or sentence-transformers:PATH")
@click.option("--only", multiple=True, help="Run only these steps (repeat or separate with commas).")
@click.option("--relayout", is_flag=True, help="Recompute the map layout from scratch.")
@click.option("--full", is_flag=True, help="Recompute everything (refit fitted models), not only what is missing.")
@click.option("--engine", "engine_name", default=None, envvar="LANDSCAPE_ENGINE",
              help="local (default) or ray: where per-record work runs (or config engine, LANDSCAPE_ENGINE).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes the local engine runs per-record work in (default: config workers, else one per CPU).")
@click.option("--address", default=None, envvar="LANDSCAPE_RAY_ADDRESS",
              help="Ray cluster HOST:PORT or ray://HOST:PORT (default: a local Ray; or LANDSCAPE_RAY_ADDRESS).")
@db_option
@json_option
@errors_to_exit
def build(config_path, embedder, only, relayout, full, engine_name, workers, address, db, as_json) -> None:
    """Enrich the store: embeddings, areas, concepts, summaries, connections, topics, map, trends."""
    from ..config import Config
    from ..engine import get_engine
    from ..enrich.pipeline import STEPS
    from ..enrich.pipeline import build as run_build

    only = [name.strip() for part in only for name in part.split(",") if name.strip()]
    unknown = [name for name in only if name not in STEPS]
    if unknown:
        raise click.UsageError(f"--only: unknown step {unknown[0]!r}; expected one of {', '.join(STEPS)}")
    with open_store(db) as store:
        config = Config.load(config_path, db_path=store.path)
        kept = store.get_meta("embedder_spec")
        if embedder:
            config.embedder = embedder
        elif kept and "embedder" not in config.given:
            config.embedder = kept  # a plain build never switches a built store to the default model
        name = engine_name or config.engine
        if workers and name != "local":
            raise click.UsageError("--workers: only the local engine runs processes (Ray uses the cluster's CPUs)")
        engine = get_engine(name, address, (workers or config.workers or None) if name == "local" else None)
        log = (lambda _m: None) if as_json else click.echo
        try:
            results = run_build(store, config, only=only or None, relayout=relayout, full=full, log=log,
                                engine=engine)
        finally:
            engine.close()
    if as_json:
        emit_json([{"step": r.name, "seconds": round(r.seconds, 3), **r.counts} for r in results])
    else:
        total = sum(r.seconds for r in results)
        click.echo(f"built in {total:.1f}s: " + ", ".join(f"{r.name} {r.seconds:.1f}s" for r in results))


def _load_config(config_path, store):
    from ..config import Config

    return Config.load(config_path, db_path=store.path)


def shown(snippet: str) -> str:
    """Snippet highlight markers as the terminal shows them."""
    return snippet.replace("\x02", "[").replace("\x03", "]")


@click.command()
@click.argument("record_id", required=False)
@click.option("--text", default=None, help="A pasted abstract: find the records closest to it.")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=10)
@click.option("--config", "config_path", default=None, help="TOML config file.")
@db_option
@json_option
@errors_to_exit
def related(record_id, text, limit, config_path, db, as_json) -> None:
    """The records most related to RECORD_ID (or to --text), with the reasons why."""
    from ..enrich.related import related as find_related

    if (record_id is None) == (text is None):
        raise LandscapeError("related: expected a record id or --text, found " + ("both" if record_id else "neither"))
    with open_store(db) as store:
        results = find_related(store, record_id=record_id, text=text, limit=limit,
                               config=_load_config(config_path, store))
    if as_json:
        emit_json(results)
        return
    if not results:
        click.echo("no related records")
    for r in results:
        click.echo(f"{r['score']:7.2f}  {r['id']}  {r['title']}")
        for reason in r["reasons"]:
            click.echo(f"         - {reason}")


@click.command()
@click.argument("query")
@click.option("--area")
@click.option("--kind", type=click.Choice(["paper", "talk"]))
@click.option("--since", help="YYYY-MM-DD")
@click.option("--until", help="YYYY-MM-DD")
@click.option("--author")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=20)
@click.option("--config", "config_path", default=None, help="TOML config file.")
@db_option
@json_option
@errors_to_exit
def search(query, area, kind, since, until, author, limit, config_path, db, as_json) -> None:
    """Search by keywords and meaning together (BM25 and embeddings, fused)."""
    from ..search import search as run_search

    with open_store(db, readonly=True) as store:
        results = run_search(store, query, limit=limit, config=_load_config(config_path, store), area=area,
                             kind=kind, since=since, until=until, author=author)
    if as_json:
        emit_json([{**r, "snippet": shown(r["snippet"])} for r in results])
        return
    if not results:
        click.echo("no results")
        return
    for r in results:
        click.echo(f"{r['id']}  {r['date'] or '----------'}  {(r['area'] or r['kind']):<20}  {r['title']}")
        click.echo(f"    {shown(r['snippet'])}")


def register(main: click.Group) -> None:
    """Attach this module's commands to the `landscape` group."""
    main.add_command(build)
    main.add_command(related)
    main.add_command(search)
