"""`landscape eval --frozen FILE`: trained on the other records, scored on the frozen ones only."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from landscape.enrich import area_model, concepts
from landscape.evaluate_frozen import frozen_file_text, frozen_split, read_frozen
from landscape.ingest import phrases
from landscape.ingest.listing import HEADER
from landscape.store import open_store
from landscape.text import title_id

from .conftest import FIXTURES, LISTING, cli_json, run_cli

FROZEN = FIXTURES / "frozen_test_ids.txt"
MEASURES = [
    "area macro-F1", "area ECE (10 bins)", "conformal coverage (nominal 0.90)", "conformal mean set size",
    "keyphrase token F1 (top 6)", "connections nDCG@10 (keyphrase proxy)",
    "topic-concept agreement (top 5 in topic's top 20)", "topic purity vs concept clusters",
]
GOALS = {
    "area macro-F1": "baseline + 0.04, difference interval above 0", "area ECE (10 bins)": "< 0.05",
    "conformal coverage (nominal 0.90)": "0.90 +/- 0.03", "conformal mean set size": "< 1.5",
    "keyphrase token F1 (top 6)": ">= 0.50", "connections nDCG@10 (keyphrase proxy)": ">= 1.08 x baseline",
}


def listing_without_frozen(path: Path, entries: int) -> Path:
    """The first entries of the real listing that are not in the committed frozen set (tests
    never score the frozen set itself)."""
    frozen = set(read_frozen(FROZEN))
    lines = LISTING.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if HEADER.match(line.strip())]
    kept = []
    for a, b in zip(starts, [*starts[1:], len(lines)], strict=True):
        block = lines[a:b]
        title = next(line for line in block[1:] if line.strip()).strip()
        if title_id(title) not in frozen:
            kept.append("\n".join(block))
    path.write_text("\n\n".join(kept[:entries]) + "\n", encoding="utf-8")
    return path


def test_committed_frozen_set_is_the_title_hash_split_of_the_corpus(listing_db):
    with open_store(listing_db, readonly=True) as store:
        records = list(store.iter_records())
    ids = read_frozen(FROZEN)
    assert ids == [r.id for r in frozen_split(records)]
    per_area = Counter(r.area for r in records)
    chosen = Counter(r.area for r in records if r.id in set(ids))
    assert set(chosen) == set(per_area)
    assert all(chosen[a] >= math.ceil(0.2 * per_area[a]) for a in per_area)


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, Path, set[str]]:
    db = tmp_path / "small.db"
    run_cli("ingest", listing_without_frozen(tmp_path / "listing.txt", 120), db=db)
    with open_store(db, readonly=True) as store:
        records = list(store.iter_records())
    frozen_file = tmp_path / "frozen.txt"
    frozen_file.write_text(frozen_file_text(records, "test"), encoding="utf-8")
    return db, frozen_file, set(read_frozen(frozen_file))


def test_frozen_eval_table_and_frozen_records_never_trained_on(small, monkeypatch):
    db, frozen_file, frozen = small
    with open_store(db, readonly=True) as store:
        frozen_lines = {r.keyphrase_line for r in store.iter_records() if r.id in frozen}
    trained: dict[str, set[str]] = {}

    def spy(cls, name, ids_of):
        fit = cls.fit

        def wrapped(self, *args, **kwargs):
            trained.setdefault(name, set()).update(ids_of(*args, **kwargs))
            return fit(self, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", wrapped)

    spy(area_model.AreaModel, "area model", lambda data: data.ids)
    spy(area_model.TfidfModel, "tfidf baseline", lambda data, labels: data.ids)
    spy(concepts.KeyphrasePredictor, "keyphrase ranker", lambda texts, given, **kw: given)
    lines: list[str] = []
    fit_segmenter = phrases.PhraseSegmenter.fit
    monkeypatch.setattr(phrases.PhraseSegmenter, "fit",
                        lambda self, pairs: fit_segmenter(self, [p for p in pairs if not lines.append(p[0])]))

    report = cli_json("eval", "--frozen", frozen_file, "--embedder", "tfidf", db=db)

    assert report["frozen"] == len(frozen) >= 24 and report["records"] == 120
    assert [r["measure"] for r in report["rows"]] == MEASURES
    for row in report["rows"]:
        lo, hi = row["landscape_ci"]
        assert row["papers"] >= 20 and lo <= hi and 0 <= lo and hi <= (4 if "set size" in row["measure"] else 1)
    with_baseline = {r["measure"]: r["baseline"] for r in report["rows"] if "baseline" in r}
    assert with_baseline == {
        "area macro-F1": "TF-IDF + LR", "area ECE (10 bins)": "TF-IDF + LR",
        "keyphrase token F1 (top 6)": "borrow from TF-IDF neighbours",
        "connections nDCG@10 (keyphrase proxy)": "BM25 + tfidf fusion (RRF)",
        "topic-concept agreement (top 5 in topic's top 20)": "random topics (same sizes)",
        "topic purity vs concept clusters": "random topics (same sizes)",
    }
    rows = {r["measure"]: r for r in report["rows"]}
    assert {m: r["goal"] for m, r in rows.items() if r["met"] is not None} == GOALS
    assert all(isinstance(r["met"], bool) for m, r in rows.items() if m in GOALS)
    assert rows["conformal mean set size"]["met"] == (rows["conformal mean set size"]["landscape"] < 1.5)
    conn = rows["connections nDCG@10 (keyphrase proxy)"]
    assert conn["ratio"] == pytest.approx(conn["landscape"] / conn["baseline_value"], abs=1e-3)
    assert conn["met"] == (conn["ratio"] >= 1.08)
    for name in MEASURES[-2:]:
        assert rows[name]["goal"] == "reported" and rows[name]["met"] is None
        assert rows[name]["landscape"] > rows[name]["baseline_value"], name  # topics beat random ones
    assert report["topics"]["papers"] == rows[MEASURES[-1]]["papers"] and report["topics"]["topics"] >= 2
    assert set(trained) == {"area model", "tfidf baseline", "keyphrase ranker"}
    for name, ids in trained.items():
        assert ids and frozen.isdisjoint(ids), name
    assert len(set(report["areas"]["trained_on"])) == 120 - len(frozen)
    assert frozen.isdisjoint(report["areas"]["trained_on"]) and frozen.isdisjoint(report["keyphrases"]["trained_on"])
    assert lines and frozen_lines.isdisjoint(lines)

    text = run_cli("eval", "--frozen", frozen_file, "--embedder", "tfidf", db=db).output.splitlines()
    assert text[0].startswith(f"frozen set: {len(frozen)} of 120 records")
    assert text[1].split()[-2:] == ["goal", "met"]
    assert all(line.rstrip().endswith((" yes", " NO", " -")) for line in text[3:])
    assert [line.split(" (n=")[0] for line in text[3:]] == MEASURES


def test_bad_frozen_file_or_options_fail_in_one_line(small, tmp_path):
    db, frozen_file, _ = small
    bad = tmp_path / "bad.txt"
    bad.write_text(frozen_file.read_text() + "tdeadbeef0000\tAstrophysics\tNot here\n")
    out = run_cli("eval", "--frozen", bad, "--embedder", "tfidf", db=db, expect=2).output.strip()
    assert out.count("\n") == 0 and "tdeadbeef0000" in out and str(bad) in out
    mixed = run_cli("eval", "--frozen", frozen_file, "--only", "areas", db=db, expect=2).output.strip()
    assert mixed.count("\n") == 0 and "--only" in mixed
