"""CLI commands for the semantic part of Landscape: build, related, search."""

from __future__ import annotations

import click

from ..cli import db_option, emit_json, errors_to_exit, json_option, open_store


@click.command()
@click.option("--config", "config_path", default=None, help="TOML config file.")
@click.option("--embedder", default=None, help="minilm (default), tfidf or sentence-transformers:PATH")
@click.option("--only", multiple=True, help="Run only these steps.")
@click.option("--relayout", is_flag=True, help="Recompute the map layout from scratch.")
@db_option
@json_option
@errors_to_exit
def build(config_path, embedder, only, relayout, db, as_json) -> None:
    """Enrich the store: embeddings, areas, concepts, summaries, connections, topics, map, trends."""
    from ..config import Config
    from ..enrich.pipeline import build as run_build

    with open_store(db) as store:
        config = Config.load(config_path, db_path=store.path)
        if embedder:
            config.embedder = embedder
        log = (lambda _m: None) if as_json else click.echo
        results = run_build(store, config, only=list(only) or None, relayout=relayout, log=log)
    if as_json:
        emit_json([{"step": r.name, "seconds": round(r.seconds, 3), **r.counts} for r in results])
    else:
        total = sum(r.seconds for r in results)
        click.echo(f"built in {total:.1f}s: " + ", ".join(f"{r.name} {r.seconds:.1f}s" for r in results))


def register(main: click.Group) -> None:
    """Attach this module's commands to the `landscape` group."""
    main.add_command(build)
