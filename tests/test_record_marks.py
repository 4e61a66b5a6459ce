"""What a step last read of each record (record_marks): read whole, written by the rows that changed."""

from __future__ import annotations

import json


def marks(store, name: str) -> dict[str, str]:
    return dict(store.connection_for_tests.execute("SELECT record_id, mark FROM record_marks WHERE name = ?", (name,)))


def test_marks_are_kept_per_labels_and_replaced_when_the_labels_change(store):
    with store.transaction():
        store.put_concept_model_records("L1", {"a": "h1", "b": "h2", "c": "h3"})
    assert store.concept_model_records("L1") == {"a": "h1", "b": "h2", "c": "h3"}
    assert store.concept_model_records("L2") == {}
    with store.transaction():
        store.put_concept_model_records("L1", {"a": "h1", "b": "h2b", "d": "h4"})  # c gone, b changed, d new
    assert store.concept_model_records("L1") == marks(store, "concepts.records") == {"a": "h1", "b": "h2b", "d": "h4"}
    known = store.concept_model_records("L1")
    with store.transaction():  # the marks the caller read are not read again
        store.put_concept_model_records("L1", {"a": "h1", "d": "h4b"}, known=known)
    assert store.concept_model_records("L1") == marks(store, "concepts.records") == {"a": "h1", "d": "h4b"}
    with store.transaction():
        store.put_concept_model_records("L1", {"a": "h1", "b": "h2b", "d": "h4"})
    with store.transaction():
        store.put_concept_model_records("L2", {"e": "h5"})
    assert store.concept_model_records("L1") == {}
    assert store.concept_model_records("L2") == marks(store, "concepts.records") == {"e": "h5"}
    assert store.summary_fingerprints("s") == {}  # each step's marks are its own


def test_marks_kept_as_json_by_an_older_store_are_read_and_moved_to_rows(store):
    with store.transaction():
        store.put_artifact("summaries.records", json.dumps({"setting": "s1", "records": {"a": "x", "b": "y"}}).encode())
    assert store.summary_fingerprints("s1") == {"a": "x", "b": "y"}
    assert store.summary_fingerprints("s2") == {}
    with store.transaction():
        store.put_summary_fingerprints("s1", {"a": "x", "b": "z"})
    assert store.summary_fingerprints("s1") == marks(store, "summaries.records") == {"a": "x", "b": "z"}
    assert json.loads(store.get_artifact("summaries.records")) == {"setting": "s1"}


def test_damaged_marks_read_as_none(store):
    with store.transaction():
        store.put_artifact("concepts.records", b"\x80\x04not json")
    assert store.concept_model_records("L1") == {}
    with store.transaction():
        store.put_concept_model_records("L1", {"a": "h1"})
    assert store.concept_model_records("L1") == {"a": "h1"}

