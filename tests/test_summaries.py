"""Summaries: a TL;DR per record, per talk section and for each area and concept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from landscape.config import Config
from landscape.enrich.summaries import LlmSummariser, extractive_summary, sentences, trim, word_count
from landscape.store import open_store

from .conftest import cli_json


def test_tldr_says_what_was_done_and_stays_within_thirty_words():
    abstract = (
        "Dark matter subhalos perturb stellar streams. Many methods exist, e.g. Bayesian ones. "
        "We present a neural simulation-based inference method that constrains the subhalo mass function "
        "from the density of the GD-1 stream. Our method recovers the true mass function within 10% on mocks."
    )
    summary = extractive_summary(abstract, "Subhalos from stellar streams")
    assert summary.startswith("We present a neural simulation-based inference method")
    assert word_count(summary) <= 30
    assert all(w.strip(".;,").lower() in abstract.lower() for w in summary.replace("…", "").split())


def test_a_sentence_never_ends_at_an_abbreviation():
    text = ("We compare several samplers, e.g. Hamiltonian Monte Carlo, on the posterior shown in Fig. 3 of "
            "the companion paper. The bound follows Eq. 12 as in Ref. 4, and improves on Smith et al. The end.")
    assert sentences(text) == [
        "We compare several samplers, e.g. Hamiltonian Monte Carlo, on the posterior shown in Fig. 3 of the companion paper.",
        "The bound follows Eq. 12 as in Ref. 4, and improves on Smith et al. The end.",
    ]


def test_long_sentences_are_cut_at_a_clause_and_marked():
    long = "We " + " ".join(f"study thing{i}," for i in range(40)) + " and more."
    cut = trim(long)
    assert word_count(cut) <= 30 and cut.endswith("…")


def test_every_paper_and_talk_section_has_a_summary(built_db: Path):
    with open_store(built_db, readonly=True) as store:
        records = list(store.iter_records())
        views = [store.record_view(r.id) for r in records]
    papers = [v for v in views if v["kind"] == "paper" and v["abstract"]]
    assert all(v["summary"] and word_count(v["summary"]) <= 30 for v in papers)
    talks = [v for v in views if v["kind"] == "talk"]
    assert len(talks) == 2
    for talk in talks:
        assert talk["summary"]
        summarised = [s for s in talk["sections"] if s["summary"]]
        assert len(summarised) >= len(talk["sections"]) * 0.6
        assert all(word_count(s["summary"]) <= 30 for s in summarised)


def test_areas_and_concepts_are_described_from_their_central_papers(built_db: Path):
    with open_store(built_db, readonly=True) as store:
        areas = store.list_areas()
        titles = {r.title for r in store.iter_records()}
    assert {a["name"] for a in areas} >= {"Astrophysics", "Foundational AI"}
    for area in areas:
        assert area["description"] and "Most typical" in area["description"]
        typical = area["description"].split("\u201c", 1)[1].split("\u201d", 1)[0]
        assert typical in titles
    sbi = cli_json("concepts", "simulation-based inference", db=built_db)
    assert sbi["description"] and "records" in sbi["description"]


@pytest.mark.skipif(not (os.environ.get("LANDSCAPE_LLM_MODEL") or Config.load().llm_model_path),
                    reason="no GGUF model configured (set LANDSCAPE_LLM_MODEL or llm_model_path)")
def test_local_llm_writes_a_short_summary():
    path = os.environ.get("LANDSCAPE_LLM_MODEL") or Config.load().llm_model_path
    llm = LlmSummariser(str(path))
    answer = llm.summarise("Naturalness and Fisher Information",
                           "We propose a new measure of fine-tuning based on the Fisher information metric.")
    assert answer and word_count(answer) <= 30


def test_generic_section_titles_are_learned_from_the_corpus_and_configurable():
    from landscape.enrich.summaries import SummarySettings, generic_sections

    titles = [
        ("t1", "Introduction"), ("t1", "Dark matter in stellar streams"), ("t1", "Common Themes"),
        ("t1", "Graph networks"), ("t1", "Common  themes -"), ("t1", "Thank you"),
        ("t2", "Thank You"), ("t2", "Neutrino masses"), ("t2", "Our approach"), ("t2", "introduction"),
    ]
    assert generic_sections(titles, SummarySettings()) == {"introduction", "common themes", "thank you"}
    configured = generic_sections(titles, SummarySettings(generic_sections=["Our Approach"], shared_by=3))
    assert configured == {"our approach", "common themes"}


def test_a_talk_outline_leaves_out_configured_generic_sections(tmp_path):
    from .conftest import SEEDS, run_cli

    db = tmp_path / "landscape.db"
    run_cli("ingest", SEEDS / "003_00411ab6291d3934.txt", SEEDS / "004_983411919a72a1a9.txt", db=db)
    run_cli("build", "--embedder", "tfidf", "--only", "embed", "--only", "summaries", db=db)
    with open_store(db, readonly=True) as store:
        talks = [r.id for r in store.list_records(kind="talk")]
        outlines = {rid: store.record_summaries()[rid] for rid in talks}
    assert all(s and s.startswith("Covers: ") for s in outlines.values())
    first = next(iter(outlines.values())).removeprefix("Covers: ").split("; ")[0].rstrip(".")
    (tmp_path / "landscape.toml").write_text(f'[extra.summaries]\ngeneric_sections = ["{first}"]\n')
    run_cli("build", "--embedder", "tfidf", "--only", "summaries", "--full", db=db)
    with open_store(db, readonly=True) as store:
        again = {rid: store.record_summaries()[rid] for rid in talks}
    assert all(first not in s for s in again.values()), again


def test_a_failing_llm_summariser_says_so_in_the_build_the_about_page_and_stats(tmp_path, monkeypatch):
    """The model loads but fails on every abstract (as llama.cpp does on a context overflow):
    each record keeps an extractive TL;DR, and the build says that it fell back."""
    from starlette.testclient import TestClient

    from landscape.enrich import summaries
    from landscape.web.app import create_app

    from .conftest import run_cli
    from .test_hostile import listing_head

    def failing_model(prompt, **_kwargs):
        raise RuntimeError("llama_decode returned -3")

    def summariser(config):
        llm = LlmSummariser.__new__(LlmSummariser)  # the real class, its model swapped for a failing one
        llm.llm, llm.failures = failing_model, []
        return llm

    monkeypatch.setattr(summaries, "get_summariser", summariser)
    db = tmp_path / "landscape.db"
    run_cli("ingest", listing_head(tmp_path / "head.txt", 12), db=db)
    (tmp_path / "landscape.toml").write_text('summariser = "llm"\nllm_model_path = "model.gguf"\n')
    out = run_cli("build", "--embedder", "tfidf", "--only", "embed", "--only", "summaries", db=db).output
    said = [line for line in out.splitlines() if line.startswith("fallback: ")]
    assert len(said) == 1 and "LLM summariser failed on 12 of 12 records" in said[0], out
    assert "llama_decode returned -3" in said[0] and "extractive" in said[0]
    with open_store(db, readonly=True) as store:
        assert len(store.record_summaries()) == 12 and all(store.record_summaries().values())
    stats = run_cli("stats", db=db).output
    assert "fallback in the latest build: summaries: the LLM summariser failed on 12 of 12" in stats
    with TestClient(create_app(db)) as client:
        about = client.get("/about").text
        assert "The latest build fell back to another method 1 time" in about
        assert "the LLM summariser failed on 12 of 12 records" in about
        assert client.get("/api/v1/stats").json()["fallbacks"] == [said[0].removeprefix("fallback: ")]


def test_area_descriptions_name_the_concepts_the_store_finds_most_distinctive(built_db: Path):
    """One pass over the concept rows gives each area the concepts `top_concepts_for` gives it."""
    from landscape.enrich.summaries import top_concepts_by_group

    with open_store(built_db, readonly=True) as store:
        areas = store.area_members()
        ours = top_concepts_by_group(store.concept_members(("given", "predicted")), areas, 4)
        expected = {a: store.top_concepts_for(ids, 4) for a, ids in areas.items()}
        described = {a["name"]: a["description"] for a in store.list_areas()}
    assert ours == expected and all(ours.values())
    for area, names in ours.items():
        assert "central concepts: " + ", ".join(names) in described[area]


def test_adding_records_recounts_descriptions_and_finds_central_records_again_only_past_a_tenth(
        built_db: Path, tmp_path: Path):
    import sys

    from .conftest import copy_db, run_cli

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from corpus_gen import write_corpus

    db = copy_db(built_db, tmp_path)
    run_cli("ingest", write_corpus(tmp_path / "more.txt", 20), db=db)
    added = {s["step"]: s for s in cli_json("build", db=db)}["summaries"]
    with open_store(db, readonly=True) as store:
        areas = {a["name"]: a["description"] for a in store.list_areas()}
        concepts = {c["name"]: c["description"] for c in store.list_concepts()}
        sizes = store.area_counts(), store.concept_member_counts(concepts)
    assert all(areas[a].startswith(f"{n} record") for a, n in sizes[0].items())
    assert all(concepts[c].startswith(f"{n} record") for c, n in sizes[1].items() if concepts[c])
    # 20 records grow each area by under a tenth: its central record and concepts are kept; a
    # concept's are found again where its size moved by more (most small concepts here)
    assert 0 < added["heads_found"] < added["concepts"]
    full = {s["step"]: s for s in cli_json("build", "--only", "summaries", "--full", db=db)}["summaries"]
    assert full["heads_found"] == full["areas"] + full["concepts"]
