"""The 2-D map: every record placed, new records placed without moving anyone, explicit relayout."""

from __future__ import annotations

import json
import math

import numpy as np

from landscape.artifacts import unpack
from landscape.enrich.map import knn, label_levels
from landscape.store import open_store

from .conftest import SEEDS, cli_json, copy_db, run_cli


def test_every_record_is_on_the_map(built_db):
    with open_store(built_db, readonly=True) as store:
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
    db = copy_db(built_db, tmp_path, "grow.db")
    with open_store(db, readonly=True) as store:
        before = store.ls_map_coords()
        topics_before = store.table_dump("topics")
    run_cli("ingest", SEEDS / "001_36b3cb48603f891c.txt", db=db)
    run_cli("build", db=db)
    with open_store(db, readonly=True) as store:
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
    with open_store(db, readonly=True) as store:
        relaid = store.ls_map_coords()
    assert set(relaid) == set(after) and relaid != after


def test_the_neighbour_graph_works_past_one_block_of_rows():
    """knn used to crash above 4,096 rows (the block-size name reused inside its loop)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    idx, dist = knn(X, X, 5, exclude_self=True)
    assert idx.shape == (5000, 5) and not np.any(idx == np.arange(5000)[:, None])
    sims = X[:50] @ X.T
    np.fill_diagonal(sims[:, :50], -np.inf)
    assert np.array_equal(idx[:50, 0], sims.argmax(axis=1))
    assert np.all(np.diff(dist, axis=1) >= -1e-6)


def test_a_map_fitted_on_a_sample_places_everyone_else(built_db, tmp_path):
    db = copy_db(built_db, tmp_path)
    (tmp_path / "landscape.toml").write_text("[extra.map]\nfit_sample = 150\n", encoding="utf-8")
    steps = cli_json("build", "--only", "map", "--config", tmp_path / "landscape.toml", db=db)
    assert steps[0]["placed"] == 462 and steps[0]["fitted"] == 150
    with open_store(db, readonly=True) as store:
        coords = store.ls_map_coords()
        model = unpack(store.ls_get_artifact("map.model"), "map", 2)
        ids, X = store.embedding_matrix(store.get_meta("embedder"))
    assert model is not None and model.arrays["coords"].shape == (150, 2)
    assert len(coords) == 462 and len(set(coords.values())) > 400
    fitted = set(json.loads(model.arrays["ids"].tobytes()))
    row = {rid: i for i, rid in enumerate(ids)}
    fit_rows = [row[r] for r in sorted(fitted)]
    span = max(x for x, _ in coords.values()) - min(x for x, _ in coords.values())
    misses = 0
    for rid in set(coords) - fitted:
        sims = X[fit_rows] @ X[row[rid]]
        nearest = [sorted(fitted)[k] for k in np.argsort(-sims)[:3]]
        centre = np.mean([coords[o] for o in nearest], axis=0)
        misses += math.dist(coords[rid], centre) > span / 4
    assert misses < 0.05 * (462 - 150)


def test_a_failed_spectral_initialisation_says_so(built_db, tmp_path, monkeypatch):
    import scipy.sparse.linalg

    def no_convergence(*args, **kwargs):
        raise scipy.sparse.linalg.ArpackNoConvergence("ARPACK error -1: No convergence", [], [])

    monkeypatch.setattr(scipy.sparse.linalg, "eigsh", no_convergence)
    db = copy_db(built_db, tmp_path)
    output = run_cli("build", "--only", "map", "--relayout", db=db).output
    assert "fallback: map: spectral initialisation failed (ArpackNoConvergence" in output
    with open_store(db, readonly=True) as store:
        last = json.loads(store.get_meta("last_build"))
        assert len(store.ls_map_coords()) == 462
    assert any("spectral initialisation failed" in f for f in last["fallbacks"])


def test_map_labels_come_in_levels_coarse_regions_over_topics():
    """Topics have one level; the map derives coarser regions by grouping topic centres, so a
    zoomed-out map names a few regions, each made of neighbouring topics and named by them."""
    rng = np.random.default_rng(3)
    groups = np.array([[-40.0, -40.0], [-40.0, 40.0], [40.0, -40.0], [40.0, 40.0]])
    names = ["dark matter", "string theory", "protein folding", "graph networks"]
    centres = np.repeat(groups, 10, axis=0) + rng.normal(scale=6, size=(40, 2))
    topic = np.repeat(np.arange(40), 50).astype(np.uint16)
    xy = centres[topic] + rng.normal(scale=0.5, size=(len(topic), 2))
    labels = [f"{names[t // 10]}, part {t}" for t in range(40)]
    out = label_levels(xy[:, 0], xy[:, 1], topic, labels)
    levels = sorted({lab["level"] for lab in out})
    assert levels == [0, 1]
    finest = [lab for lab in out if lab["level"] == 1]
    assert sorted(lab["topic"] for lab in finest) == list(range(40))
    for lab in finest:
        assert math.dist((lab["x"], lab["y"]), xy[topic == lab["topic"]].mean(axis=0)) < 1e-3
    regions = [lab for lab in out if lab["level"] == 0]
    assert 2 <= len(regions) < 40 and sum(r["size"] for r in regions) == len(topic)
    for r in regions:
        nearest = int(np.argmin(np.linalg.norm(groups - [r["x"], r["y"]], axis=1)))
        assert r["label"].startswith(names[nearest]), r


def test_the_rest_placed_a_chunk_at_a_time_lands_where_it_lands_at_once(built_db, tmp_path, monkeypatch):
    import landscape.enrich.map as map_step

    (tmp_path / "landscape.toml").write_text("[extra.map]\nfit_sample = 150\n", encoding="utf-8")
    coords = []
    for chunk in (100_000, 50):
        monkeypatch.setattr(map_step, "PLACE_CHUNK", chunk)
        db = copy_db(built_db, tmp_path, f"chunk{chunk}.db")
        run_cli("build", "--only", "map", "--relayout", "--config", tmp_path / "landscape.toml", db=db)
        with open_store(db, readonly=True) as store:
            coords.append(store.ls_map_coords())
    assert len(coords[0]) == 462 and coords[0] == coords[1]
