"""CLI commands for the landscape part of Landscape: topics, trends, author, bridges."""

from __future__ import annotations

import click

from ..cli import db_option, emit_json, errors_to_exit, json_option, open_store


@click.command()
@click.option("--quality", is_flag=True, help="Also print topic-area NMI, coherence, outliers, talk links.")
@click.option("--papers", "n_papers", type=click.IntRange(0, 20), default=3, help="Top papers shown per topic.")
@db_option
@json_option
@errors_to_exit
def topics(quality: bool, n_papers: int, db: str | None, as_json: bool) -> None:
    """The field's regions: id, label, size, top concepts and top papers of each topic."""
    from ..enrich.quality import landscape_quality
    from ..enrich.topics import topics_listing

    with open_store(db, readonly=True) as store:
        listing = topics_listing(store, top_papers=max(n_papers, 5) if as_json else n_papers)
        figures = landscape_quality(store) if quality else None
    if as_json:
        emit_json({"topics": listing, "quality": figures} if quality else listing)
        return
    if not listing:
        click.echo("no topics yet (run `landscape build`)")
    for t in listing:
        area = f" [{t['area']}]" if t["area"] else ""
        click.echo(f"{t['id']:>3}  {t['label']}{area}  ({t['size']} records, {t['outliers']} outliers)")
        if t["top_concepts"]:
            click.echo(f"     concepts: {'; '.join(t['top_concepts'])}")
        for p in t["top_papers"]:
            click.echo(f"     - {p['title']} ({p['id']})")
    if figures:
        click.echo("")
        for key, value in figures.items():
            click.echo(f"{key}: {value}")


@click.command()
@click.option("--limit", type=click.IntRange(1, 100), default=10, help="Entries per list.")
@db_option
@json_option
@errors_to_exit
def trends(limit: int, db: str | None, as_json: bool) -> None:
    """Emerging and fading concepts and topics over the last two years of the corpus."""
    from ..enrich.trends import stored_trends

    with open_store(db, readonly=True) as store:
        data = stored_trends(store)
    if as_json:
        emit_json(data)
        return
    window = data["window"]
    if window is None:
        click.echo("no dated records")
        return
    click.echo(
        f"last two years: {window['recent_start']} .. {window['end']} ({window['papers_recent']} papers)"
        f" against {window['prior_start']} .. {window['recent_start']} ({window['papers_prior']} papers)"
    )
    click.echo("years: " + ", ".join(f"{y} {n}" for y, n in data["papers"]["years"].items()))
    for key, title in (("emerging", "emerging concepts"), ("fading", "fading concepts"),
                       ("emerging_topics", "emerging topics"), ("fading_topics", "fading topics")):
        click.echo(f"\n{title} (growth = log2 of share now / share before):")
        if not data[key]:
            click.echo("  none with enough support")
        for item in data[key][:limit]:
            click.echo(f"  {item['growth']:+.2f}  {item['name']}  ({item['prior']} -> {item['recent']})")


@click.command()
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, help="Papers and co-authors shown.")
@db_option
@json_option
@errors_to_exit
def author(name: str, limit: int, db: str | None, as_json: bool) -> None:
    """One author: papers, areas, top concepts, co-authors, first and latest year."""
    from ..enrich.authors import author_profile

    with open_store(db, readonly=True) as store:
        profile = author_profile(store, name)
    if as_json:
        emit_json(profile)
        return
    click.echo(profile["name"] + (f"  (also: {', '.join(profile['variants'])})" if profile["variants"] else ""))
    click.echo(f"{profile['papers_count']} records, {profile['first_year']} .. {profile['latest_year']}")
    click.echo("areas: " + ", ".join(f"{a} {n}" for a, n in profile["areas"].items()))
    click.echo("concepts: " + "; ".join(c["name"] for c in profile["top_concepts"][:10]))
    click.echo("co-authors: " + ", ".join(f"{c['name']} ({c['papers']})" for c in profile["coauthors"][:limit]))
    if profile["truncated_papers"]:
        click.echo(f"note: {profile['coauthors_note']}")
    cited = profile["citations"]
    if cited["times_cited"]:
        click.echo(f"cited {cited['times_cited']} times within this landscape; most cited: "
                   + "; ".join(f"{c['title']} ({c['cited_by']})" for c in cited["most_cited"]))
    for p in profile["papers"][:limit]:
        click.echo(f"  {p['date'] or '----------'}  {p['title']} ({p['id']})")


@click.command()
@click.option("--by", type=click.Choice(["topic", "area", "both"]), default="both", help="Regions to join.")
@click.option("--limit", type=click.IntRange(1, 500), default=15)
@db_option
@json_option
@errors_to_exit
def bridges(by: str, limit: int, db: str | None, as_json: bool) -> None:
    """Papers that join two regions (topics or areas), with the two regions each one joins."""
    from ..enrich.bridges import find_bridges

    with open_store(db, readonly=True) as store:
        found = find_bridges(store, by=by, limit=limit)
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no bridges (run `landscape build` first)")
    for b in found:
        click.echo(f"{b['score']:.2f}  {b['title']} ({b['id']})")
        click.echo(f"      joins {b['level']}s: {b['joins'][0]}  <->  {b['joins'][1]}")
        if b["reasons"]:
            click.echo(f"      {'; '.join(b['reasons'])}")


def register(main: click.Group) -> None:
    """Attach this module's commands to the `landscape` group."""
    for command in (topics, trends, author, bridges):
        main.add_command(command)
