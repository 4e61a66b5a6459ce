"""The 2-D map: every record placed, new records placed without moving anyone, explicit relayout."""

from __future__ import annotations

import math
import shutil

from landscape.store import Store

from .conftest import SEEDS, cli_json, run_cli


def test_every_record_is_on_the_map(built_db):
    with Store(built_db, readonly=True) as store:
        coords = store.ls_map_coords()
        assert store.ls_get_artifact("map.model")
    assert len(coords) == 462
    assert len(set(coords.values())) == 462
    xs = [x for x, _ in coords.values()]
    assert max(xs) - min(xs) > 5


def test_show_gives_topic_and_map_point(built_db):
    paper = cli_json("list", "--limit", "1", db=built_db)[0]
    view = cli_json("show", paper["id"], db=built_db)
    assert view["topic"]["label"] and isinstance(view["map"]["x"], float)


def test_added_records_are_placed_and_others_stay(built_db, tmp_path):
    db = tmp_path / "grow.db"
    shutil.copy(built_db, db)
    with Store(db, readonly=True) as store:
        before = store.ls_map_coords()
        topics_before = store.table_dump("topics")
    run_cli("ingest", SEEDS / "001_36b3cb48603f891c.txt", db=db)
    run_cli("build", db=db)
    with Store(db, readonly=True) as store:
        after = store.ls_map_coords()
        assigned = store.ls_topic_assignments()
        new = set(after) - set(before)
        assert len(new) == 5 and all(n in assigned for n in new)
        assert {k: after[k] for k in before} == before
        assert [t[:2] for t in store.table_dump("topics")] == [t[:2] for t in topics_before]
        ids, X = store.embedding_matrix(store.get_meta("embedder"))
    # each newcomer lands among the papers nearest to it in meaning
    row = {rid: i for i, rid in enumerate(ids)}
    span = max(x for x, _ in before.values()) - min(x for x, _ in before.values())
    for rid in new:
        sims = X[[row[o] for o in before]] @ X[row[rid]]
        nearest = [o for _, o in sorted(zip(sims, before), reverse=True)[:5]]
        cx = sum(before[o][0] for o in nearest) / 5
        cy = sum(before[o][1] for o in nearest) / 5
        assert math.dist(after[rid], (cx, cy)) < span / 4

    run_cli("build", "--only", "map", "--relayout", db=db)
    with Store(db, readonly=True) as store:
        relaid = store.ls_map_coords()
    assert set(relaid) == set(after) and relaid != after
