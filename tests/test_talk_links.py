"""Talks anchored to the papers they discuss, checked on the real talks and corpus."""

from __future__ import annotations

from .conftest import cli_json, run_cli


def talk(db, title_word: str) -> dict:
    talks = cli_json("list", "--kind", "talk", db=db)
    rid = next(t["id"] for t in talks if title_word in (t["title"] or ""))
    return cli_json("show", rid, db=db)


def section(view: dict, title: str) -> dict:
    return next(s for s in view["sections"] if s["title"] == title)


def test_every_section_has_five_explained_links(built_db):
    view = talk(built_db, "computer scientist")
    assert len(view["sections"]) >= 10
    for s in view["sections"]:
        assert set(s) >= {"title", "summary", "related"}
        assert len(s["related"]) == 5
        assert all(set(r) == {"id", "title", "score", "reasons"} and r["reasons"] for r in s["related"])
        scores = [r["score"] for r in s["related"]]
        assert scores == sorted(scores, reverse=True)


def test_stellar_streams_section_leads_to_stream_papers(built_db):
    s = section(talk(built_db, "computer scientist"), "Constraining dark matter with stellar streams")
    top = s["related"][:3]
    assert all("stream" in r["title"].lower() or "stellar" in r["title"].lower() for r in top), top
    assert any("stellar streams" in r["reasons"][0] for r in top)


def test_anomaly_detection_sections_lead_to_anomaly_papers(built_db):
    view = talk(built_db, "Foundation Models")
    for title in ("Anomaly Detection", "Machine learning for anomaly detection in particle physics"):
        top = section(view, title)["related"][:3]
        assert all("anomaly detection" in r["reasons"][0] for r in top), top
        assert sum("anomal" in r["title"].lower() for r in top) >= 2, top


def test_simulation_based_inference_section(built_db):
    s = section(talk(built_db, "computer scientist"), "Neural simulation-based inference")
    assert any("simulation-based inference" in r["reasons"][0] for r in s["related"][:3])


def test_text_form_of_show_lists_each_sections_papers(built_db):
    view = talk(built_db, "computer scientist")
    text = run_cli("show", view["id"], db=built_db).output
    block = text.split("## Constraining dark matter with stellar streams\n", 1)[1].split("\n## ", 1)[0]
    links = [line for line in block.splitlines() if line.startswith("  -> ")]
    top = section(view, "Constraining dark matter with stellar streams")["related"]
    assert len(links) == 5 and top[0]["id"] in links[0] and top[0]["title"] in links[0]
    assert "stellar streams" in links[0]


def test_adding_papers_matches_only_their_texts_and_links_as_a_full_build(tmp_path, built_db):
    import sys
    from pathlib import Path

    from .conftest import copy_db, open_store

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from corpus_gen import write_corpus

    db = copy_db(built_db, tmp_path)
    run_cli("ingest", write_corpus(tmp_path / "more.txt", 20), db=db)
    steps = {s["step"]: s for s in cli_json("build", db=db)}
    papers = len(cli_json("list", "--kind", "paper", "--limit", "10000", db=db))
    assert steps["mentions"]["papers_matched"] == 20 < papers

    def links() -> list:
        with open_store(db) as store:
            return sorted(store.ls_all_section_links())

    incremental = links()
    full = {s["step"]: s for s in cli_json("build", "--only", "mentions", "--full", db=db)}
    assert full["mentions"]["papers_matched"] == papers
    assert links() == incremental and len(incremental) >= 50
