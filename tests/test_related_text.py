"""Related to a pasted text: reading only the text's candidates gives what scoring it against the
whole connections corpus gives (enrich/text_related.py), on both backends."""

from __future__ import annotations

import numpy as np
import pytest

from landscape.config import Config
from landscape.enrich import connections, text_related
from landscape.enrich.connections import corpus_for
from landscape.enrich.related import related_to_text, text_scoring
from landscape.store import open_store

from .conftest import cli_json

TEXTS = [
    "Normalizing flows for sampling lattice gauge theories",
    "Stellar streams and dark matter subhalos in the Milky Way",
    "We train graph neural networks on jets from the Large Hadron Collider to tag top quarks.",
    "gravitational waves",
]


@pytest.fixture(scope="module")
def answers(built_db):
    """For each text: (from the candidates alone, from the whole corpus)."""
    config = Config()
    with open_store(built_db, readonly=True) as store:
        scoring = text_scoring(store)
        assert scoring is not None, "the connections step stores the text vocabulary"
        vocabulary, stats = scoring
        corpus = corpus_for(store, config)
        return [(text_related.related_by_stats(store, vocabulary, text, stats, 15, config),
                 related_to_text(store, corpus, text, stats, 15, config)) for text in TEXTS]


@pytest.mark.parametrize("which", range(len(TEXTS)))
def test_the_candidates_alone_rank_as_the_whole_corpus_does(answers, which):
    alone, whole = answers[which]
    assert len(alone) == len(whole) == 15
    assert [r["id"] for r in alone] == [r["id"] for r in whole]
    assert np.allclose([r["score"] for r in alone], [r["score"] for r in whole], atol=2e-4)
    assert [r["reasons"] for r in alone] == [r["reasons"] for r in whole]
    assert any(len(r["reasons"]) > 1 for r in alone)


def test_related_text_reads_no_corpus(built_db, monkeypatch):
    """The CLI's answer comes from the candidates: the whole corpus is never built."""
    def refuse(*args, **kwargs):
        raise AssertionError("the whole corpus was read")

    monkeypatch.setattr(connections.Corpus, "from_store", refuse)
    pasted = cli_json("related", "--text", TEXTS[0], "--limit", "5", db=built_db)
    assert len(pasted) == 5 and all(r["reasons"][0].startswith("meaning similarity") for r in pasted)
