"""Topics over the real corpus: named, sized, nested under areas, stable, measured."""

from __future__ import annotations

from landscape.store import open_store

from .conftest import cli_json, copy_db, run_cli


def test_topics_name_the_field_regions(built_db):
    topics = cli_json("topics", db=built_db)
    assert 10 <= len(topics) <= 40
    labels = [t["label"] for t in topics]
    assert len(set(labels)) == len(labels)
    for t in topics:
        assert 2 <= len(t["label"].replace(",", " ").split()) <= 4, t["label"]
        assert t["size"] >= 1 and t["top_concepts"] and t["top_papers"]
        assert all(p["title"] for p in t["top_papers"])
    assert sum(t["size"] for t in topics) == 462
    assert [t["size"] for t in topics] == sorted((t["size"] for t in topics), reverse=True)
    assert {t["area"] for t in topics} == {"Theoretical Physics", "Experimental Physics", "Foundational AI", "Astrophysics"}
    assert any("stream" in " ".join(t["top_concepts"]) or "lattice" in t["label"] for t in topics)


def test_topics_text_lists_labels_and_papers(built_db):
    out = run_cli("topics", db=built_db).output
    assert "concepts:" in out and " - " in out


def test_quality_figures(built_db):
    data = cli_json("topics", "--quality", db=built_db)
    q = data["quality"]
    assert q["labelled_papers"] == 460
    assert 0.3 < q["topic_area_nmi"] < 0.9
    assert q["topic_coherence_npmi"] > 0.1
    assert 0 <= q["outlier_fraction"] < 0.15
    assert q["talk_section_links"] > 100
    # 0.90 before issue 17 was carried by fragments of mis-split keyphrase lines ("particle",
    # "graph", "event", "edge", "matter" as shared concepts); with whole phrases it is 0.53
    assert q["talk_link_concept_share"] > 0.5


def test_same_corpus_gives_same_topics(built_db, tmp_path):
    copy = copy_db(built_db, tmp_path, "copy.db")
    run_cli("build", "--only", "topics", "--relayout", db=copy)
    with open_store(built_db, readonly=True) as a, open_store(copy, readonly=True) as b:
        assert a.table_dump("topics") == b.table_dump("topics")
        assert a.table_dump("record_topics") == b.table_dump("record_topics")


def test_outliers_are_flagged_and_still_placed(built_db):
    with open_store(built_db, readonly=True) as store:
        assigned = store.ls_topic_assignments()
        talks = [r["id"] for r in store.ls_rows() if r["kind"] == "talk"]
    assert len(assigned) == 462
    assert any(outlier for _, outlier, _ in assigned.values())
    assert all(assigned[t][1] for t in talks)


def test_leiden_passes_are_capped_and_equal_leidenalg_below_the_cap(built_db):
    """The clustering runs at most `max_iterations` Leiden passes: the partition leidenalg gives
    for that many passes, and the converged one when the corpus converges sooner."""
    import igraph
    import leidenalg
    import numpy as np

    from landscape.config import Config
    from landscape.enrich.embed import record_embeddings
    from landscape.enrich.topics import TopicSettings, edge_pairs, graph_edges, knn_graph, leiden_labels

    with open_store(built_db, readonly=True) as store:
        _, X = record_embeddings(store, Config.load(None, db_path=built_db))
    graph = knn_graph(X, 10)
    a, b, weights = graph_edges(*graph)
    edges, weights = list(zip(a.tolist(), b.tolist())), weights.tolist()
    assert list(edge_pairs(a, b, chunk=7)) == edges

    def leidenalg_labels(passes: int) -> np.ndarray:
        part = leidenalg.find_partition(
            igraph.Graph(n=len(X), edges=edges), leidenalg.RBConfigurationVertexPartition, weights=weights,
            resolution_parameter=2.5, seed=7, n_iterations=passes,
        )
        return np.asarray(part.membership)

    assert np.array_equal(leiden_labels(X, TopicSettings(max_iterations=1), 7, graph), leidenalg_labels(1))
    assert np.array_equal(leiden_labels(X, TopicSettings(max_iterations=1000), 7, graph), leidenalg_labels(-1))


def test_concept_members_count_what_the_name_lists_say(built_db):
    """Topics count each concept once per record from compact (row, code) pairs, read from the
    memberships the build's connections step held or streamed from the store: the same counts as
    a walk over every record's list of concept names."""
    from collections import Counter

    import numpy as np

    from landscape.config import Config
    from landscape.enrich.connection_rows import MEMBERSHIPS, concept_rows
    from landscape.enrich.embed import embeddings_held, held_value, record_embeddings
    from landscape.enrich.topics import concept_members

    with open_store(built_db, readonly=True) as store:
        ids, _ = record_embeddings(store, Config.load(None, db_path=built_db))
        names = store.ls_record_concept_names()
        groups = np.random.default_rng(3).integers(0, 5, len(ids))
        expected = [Counter() for _ in range(5)]
        for i, rid in enumerate(ids):
            expected[groups[i]].update(set(names.get(rid, [])))
        streamed = concept_members(store, ids)
        with embeddings_held(store):
            concept_rows(store, {rid: i for i, rid in enumerate(ids)})
            assert held_value(store, MEMBERSHIPS) is not None
            held = concept_members(store, ids)
    assert sum(map(len, expected)) > 1000
    assert streamed.per_group(groups, 5) == expected
    assert held.per_group(groups, 5) == expected


def test_concept_memberships_are_read_only_when_asked_for(built_db):
    """The names come at once; the memberships' query runs at their first read, so a step whose
    build held them (topics, trends) never moves them out of the store."""

    class Counting:
        def __init__(self, conn):
            self.conn, self.sql = conn, []

        def execute(self, sql, *args):
            self.sql.append(sql)
            return self.conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.conn, name)

    with open_store(built_db, readonly=True) as store:
        counting = Counting(store._conn)
        store._conn = counting
        try:
            names, stream = store.ls_concept_memberships()
            assert names and not [s for s in counting.sql if s.startswith("SELECT record_id, concept_id")]
            rows = list(stream)
            assert [s for s in counting.sql if s.startswith("SELECT record_id, concept_id")]
        finally:
            store._conn = counting.conn
    assert len(rows) > 1000 and {key for _, key in rows} <= set(names)
