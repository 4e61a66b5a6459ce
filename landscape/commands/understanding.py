"""CLI commands for the understanding part of Landscape: concepts, areas, eval."""

from __future__ import annotations

from typing import Any

import click

from ..cli import db_option, emit_json, errors_to_exit, json_option, open_store
from ..models import LandscapeError


@click.command()
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show only the N most common.")
@db_option
@json_option
@errors_to_exit
def concepts(name: str | None, limit: int | None, db: str | None, as_json: bool) -> None:
    """The concept vocabulary (name, count, aliases, top records), or one concept by NAME."""
    with open_store(db, readonly=True) as store:
        if name:
            concept = store.get_concept(name)
            if concept is None:
                raise LandscapeError(f"no concept named {name!r} (see `landscape concepts`)")
            data: Any = concept
        else:
            data = store.list_concepts(limit=limit)
    if as_json:
        emit_json(data)
        return
    if name:
        _print_concept(concept)
        return
    if not data:
        click.echo("no concepts yet (run `landscape build`)")
    for c in data:  # type: ignore[union-attr]
        aliases = f"  (also: {', '.join(c['aliases'][:4])})" if c["aliases"] else ""
        click.echo(f"{c['count']:5d}  {c['name']}{aliases}")


def _print_concept(concept: dict) -> None:
    click.echo(f"{concept['name']} · {concept['count']} records")
    if concept["aliases"]:
        click.echo("also: " + ", ".join(concept["aliases"]))
    if concept.get("description"):
        click.echo(concept["description"])
    for r in concept["records"][:20]:
        click.echo(f"  {r['id']}  {r['date'] or '----------'}  {r['title']}  [{', '.join(r['sources'])}]")


@click.command(name="eval")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--only", "parts", multiple=True, type=click.Choice(["areas", "keyphrases", "quality"]),
              help="Evaluate only these parts (default: all).")
@click.option("--baselines", default=",".join(("tfidf", "minilm", "borrow", "yake", "keybert")), show_default=True,
              help="Comma-separated baselines to run beside Landscape.")
@click.option("--sample", type=click.IntRange(min=10), default=None,
              help="Evaluate on a fixed random subset of N labelled records (quick checks).")
@click.option("--frozen", default=None, type=click.Path(dir_okay=False),
              help="Score only the papers listed in FILE, trained on the others (see tests/fixtures/frozen_test_ids.txt).")
@click.option("--embedder", default=None, help="minilm (default), tfidf or sentence-transformers:PATH")
@click.option("--config", "config_path", default=None, help="TOML config file.")
@db_option
@json_option
@errors_to_exit
def eval_(folds: int, parts: tuple[str, ...], baselines: str, sample: int | None, frozen: str | None,
          embedder: str | None, config_path: str | None, db: str | None, as_json: bool) -> None:
    """Cross-validated quality of areas and keyphrases, beside baselines run in the same call;
    with --frozen, the figures on a held-out set with bootstrap intervals."""
    from ..config import Config
    from ..evaluate import evaluate, format_report
    from ..evaluate_frozen import evaluate_frozen, format_frozen

    with open_store(db, readonly=bool(frozen)) as store:
        config = Config.load(config_path, db_path=store.path)
        if embedder:
            config.embedder = embedder
        if frozen:
            if parts or sample:
                raise LandscapeError("--frozen scores every part on the whole frozen set: drop --only and --sample")
            report = evaluate_frozen(store, config, frozen)
            emit_json(report) if as_json else click.echo(format_frozen(report))
            return
        report = evaluate(
            store, config, folds=folds, baselines=[b.strip() for b in baselines.split(",") if b.strip()],
            parts=parts or ("areas", "keyphrases", "quality"), sample=sample,
        )
    if as_json:
        emit_json(report)
    else:
        click.echo(format_report(report))


def register(main: click.Group) -> None:
    """Attach this module's commands to the `landscape` group."""
    main.add_command(concepts)
    main.add_command(eval_)
