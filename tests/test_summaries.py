"""Summaries: a TL;DR per record, per talk section and for each area and concept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from landscape.config import Config
from landscape.enrich.summaries import LlmSummariser, extractive_summary, trim, word_count
from landscape.store import Store

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


def test_long_sentences_are_cut_at_a_clause_and_marked():
    long = "We " + " ".join(f"study thing{i}," for i in range(40)) + " and more."
    cut = trim(long)
    assert word_count(cut) <= 30 and cut.endswith("…")


def test_every_paper_and_talk_section_has_a_summary(built_db: Path):
    with Store(built_db, readonly=True) as store:
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
    with Store(built_db, readonly=True) as store:
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
