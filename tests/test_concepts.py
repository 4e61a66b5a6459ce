"""Concepts: the vocabulary as entities, records carrying them by source, `landscape concepts`."""

from __future__ import annotations

from pathlib import Path

import pytest

from landscape.enrich.concepts import Vocabulary, mine_acronyms, phrase_key
from landscape.store import open_store

from .conftest import cli_json, copy_db, run_cli


@pytest.fixture(scope="module")
def concepts_db(listing_db: Path, tmp_path_factory) -> Path:
    path = copy_db(listing_db, tmp_path_factory.mktemp("concepts"))
    run_cli("build", "--only", "concepts", db=path)
    return path


def test_variants_share_one_key():
    assert phrase_key("Simulation-Based Inference") == phrase_key("simulation based inference")
    assert phrase_key("equivariant neural networks") == phrase_key("Equivariant Neural Network")
    assert phrase_key("regularisation") == phrase_key("regularization")
    assert phrase_key("galaxies") == phrase_key("galaxy")
    assert phrase_key("physics") == "physics" and phrase_key("colour") == phrase_key("color")


def test_acronyms_are_learned_from_how_abstracts_spell_them_out():
    found = mine_acronyms([
        "We use simulation-based inference (SBI) to fit.",
        "Graph neural networks (GNNs) are used; physics-informed neural networks (PINNs) too.",
        "Markov chain Monte Carlo (MCMC) is slow.",
    ])
    assert found["sbi"].most_common(1)[0][0] == "simulation-based inference"
    assert found["gnn"].most_common(1)[0][0] == "graph neural networks"
    assert found["pinn"].most_common(1)[0][0] == "physics-informed neural networks"
    assert found["mcmc"].most_common(1)[0][0] == "markov chain monte carlo"


def test_an_acronym_in_text_finds_the_concept_it_stands_for():
    vocab = Vocabulary.build({"a": ["large language models"], "b": ["graph neural networks"]}, [])
    vocab.acronyms.update({"llm": phrase_key("large language models"), "gnn": phrase_key("graph neural networks")})
    found = vocab.find("We fine-tune LLMs and a GNN on jets.")
    assert set(found) == {phrase_key("large language models"), phrase_key("graph neural networks")}


def test_concepts_lists_merged_entities_with_counts_aliases_and_records(concepts_db: Path):
    concepts = cli_json("concepts", db=concepts_db)
    by_name = {c["name"]: c for c in concepts}
    sbi = by_name["simulation-based inference"]
    assert "sbi" in sbi["aliases"] and sbi["count"] >= 20
    assert sbi["top_records"] and all("title" in r for r in sbi["top_records"])
    names = set(by_name)
    assert "of" not in names and "simulation based inference" not in names
    assert [c["count"] for c in concepts] == sorted((c["count"] for c in concepts), reverse=True)
    one = cli_json("concepts", "SBI", db=concepts_db)
    assert one["name"] == "simulation-based inference" and len(one["records"]) == sbi["count"]
    assert "simulation-based inference" in run_cli("concepts", "--limit", "40", db=concepts_db).output


def test_text_concepts_never_come_from_the_records_own_keyphrases(concepts_db: Path):
    with open_store(concepts_db, readonly=True) as store:
        text = store.record_concepts("text")
        given = store.record_concepts("given")
        df_given = store.concept_document_frequency("given")
        records = {r.id: r for r in store.iter_records()}
    assert len(text) > 0.75 * len(records)  # whole phrases, not fragments nor passing words: 367 of 460 (issue 17)
    for rid, concepts in text.items():
        for name in concepts:
            others = df_given.get(name, 0) - (1 if name in given.get(rid, {}) else 0)
            assert others >= 1, (rid, name)
    rid = next(iter(text))
    assert records[rid].text


def test_records_without_keyphrases_get_five_to_eight_predicted(concepts_db: Path):
    with open_store(concepts_db, readonly=True) as store:
        missing = [r.id for r in store.iter_records() if not r.keyphrases]
    assert missing
    view = cli_json("show", missing[0], db=concepts_db)
    assert view["keyphrases_source"] == "predicted"
    assert 5 <= len(view["keyphrases"]) <= 8
    assert all(p == p.lower() for p in view["keyphrases"])


def test_stored_models_predict_like_scikit_learn_without_importing_it():
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from landscape.enrich.concepts import lowered_clean_text
    from landscape.enrich.predictors import LiteBoostedTrees, LiteLogistic, LiteTfidf

    from .conftest import LISTING

    blocks = [b for b in LISTING.read_text(encoding="utf-8").split("\n\n") if len(b) > 200][:240]
    labels = [k % 3 for k in range(len(blocks))]
    for options in ({"stop_words": "english", "ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True},
                    {"preprocessor": lowered_clean_text, "ngram_range": (1, 2), "min_df": 2}):
        vec = TfidfVectorizer(**options)
        X = vec.fit_transform(blocks[:200])
        lite = LiteTfidf(vec)
        assert np.allclose(vec.transform(blocks[200:]).toarray(), lite.transform(blocks[200:]).toarray())
        model = LogisticRegression(C=10, max_iter=300).fit(X, labels[:200])
        assert np.allclose(model.predict_proba(vec.transform(blocks[200:])),
                           LiteLogistic(model).predict_proba(lite.transform(blocks[200:])))
    rng = np.random.default_rng(0)
    F = rng.normal(size=(2000, 6))
    y = (F[:, 0] + 0.5 * F[:, 1] + rng.normal(size=2000) > 0).astype(int)
    trees = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=0).fit(F, y)
    G = rng.normal(size=(300, 6))
    assert np.allclose(trees.predict_proba(G), LiteBoostedTrees(trees).predict_proba(G))
    # the keyphrase ranker: soft labels as weighted rows, a feature missing when no embedding is stored
    share = rng.uniform(size=2000)
    soft = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=0).fit(
        np.vstack([F, F]), np.r_[np.ones(2000), np.zeros(2000)], sample_weight=np.r_[share, 1 - share])
    G[::3, 4] = np.nan
    assert np.allclose(soft.predict_proba(G), LiteBoostedTrees(soft).predict_proba(G))


def test_one_key_rule_for_the_whole_package():
    from landscape.enrich import connections
    from landscape.enrich.concepts import singular, text_keys

    assert singular("matches") == "match" and singular("sizes") == "size" and singular("physics") == "physics"
    pairs = [("pattern matches", "pattern match"), ("approaches", "approach"), ("sizes", "size"),
             ("analyses", "analyse"), ("optimisations", "optimization"), ("galaxies", "galaxy")]
    for plural, one in pairs:
        assert phrase_key(plural) == phrase_key(one), plural
        # connections matches concept names in text under the very same rule
        assert connections.phrase_key(plural) == phrase_key(plural) == connections.phrase_key(one), plural
    assert text_keys("Template matches of $x^2$ galaxies.") == phrase_key("template match of galaxy").split()


LIFE_SCIENCE = [
    "We genotyped cohorts with single-nucleotide polymorphism (SNP) arrays and ran genome-wide association studies.",
    "Quantitative polymerase chain reaction (qPCR) and polymerase chain reaction (PCR) assays confirm the variants.",
    "Our GWAS finds loci near immune genes; SNP heritability is modest. MRI confirms the lesions.",
    "A second MRI scan in an independent cohort shows three lesions.",
    "Clustered regularly interspaced short palindromic repeats (CRISPR) screens knock out each candidate gene.",
]


def test_acronyms_come_from_the_corpus_of_any_field():
    given = {"a": ["magnetic resonance imaging", "heritability"], "b": ["magnetic resonance imaging"], "c": ["polymerase chain reaction"]}
    vocab = Vocabulary.build(given, LIFE_SCIENCE)
    assert vocab.acronyms == {
        "snp": phrase_key("single-nucleotide polymorphism"),
        "pcr": phrase_key("polymerase chain reaction"),
        "crispr": phrase_key("clustered regularly interspaced short palindromic repeats"),
    }  # MRI and GWAS are used but never spelled out: nothing is guessed for them
    assert set(vocab.find("The PCR of a GWAS")) == {phrase_key("polymerase chain reaction")}


def test_this_fields_acronyms_are_still_found_in_its_corpus(listing_db: Path):
    with open_store(listing_db, readonly=True) as store:
        records = list(store.iter_records())
    vocab = Vocabulary.build({r.id: r.keyphrases for r in records if r.keyphrases}, [r.text for r in records])
    spelled_out = {  # every acronym of the old built-in list that the corpus spells out
        "sbi": "simulation-based inference", "llm": "large language models", "cnn": "convolutional neural networks",
        "nlp": "natural language processing", "gan": "generative adversarial networks",
        "eft": "effective field theory", "cmb": "cosmic microwave background", "lhc": "large hadron collider",
        "qcd": "quantum chromodynamics", "rl": "reinforcement learning", "ml": "machine learning",
    }
    for acr, expansion in spelled_out.items():
        assert vocab.acronyms.get(acr) == phrase_key(expansion), acr


class _RunsCode:
    """A pickle that touches a file when loaded: what a hostile store could hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def _model_blob(path: Path, embedder: str = "minilm") -> tuple[str, bytes | None]:
    from landscape.config import Config
    from landscape.enrich.concepts.build import ConceptsStep, labels_signature

    with open_store(path, readonly=True) as store:
        labels = labels_signature(store, ConceptsStep.version, Config(embedder=embedder))
        return labels, store.concept_model_blob(labels)


def test_the_concept_model_is_stored_as_arrays_and_a_planted_pickle_never_runs(concepts_db: Path, tmp_path: Path):
    import pickle

    from landscape.artifacts import unpack
    from landscape.config import Config
    from landscape.enrich.concepts.model import FORMAT, KIND, pack_model, unpack_model

    path = copy_db(concepts_db, tmp_path)
    labels, blob = _model_blob(path)
    artifact = unpack(blob, KIND, FORMAT)
    assert artifact is not None and {"keys", "fit_ids", "tree_value", "matrix_data"} <= set(artifact.arrays)
    model = unpack_model(blob, Config())
    assert model is not None and model.predictor is not None and pack_model(model) == blob

    marker = tmp_path / "ran"
    with open_store(path) as store, store.transaction():
        store.put_concept_model(labels, pickle.dumps(_RunsCode(marker)), store.record_content_hashes())
    new = tmp_path / "new.jsonl"
    new.write_text('{"id": "new1", "title": "Simulation-based inference of galaxy cluster masses with normalizing '
                   'flows", "abstract": "We use simulation-based inference (SBI) with normalizing flows to infer '
                   'galaxy cluster masses from weak lensing maps, and compare with Markov chain Monte Carlo."}\n')
    run_cli("ingest", new, db=path)
    out = run_cli("build", "--only", "concepts", db=path).output
    assert not marker.exists()
    assert out.count("fallback: concepts: stored concepts model is not in a format this version reads") == 1, out
    assert 5 <= len(cli_json("show", "new1", db=path)["keyphrases"]) <= 8
    assert unpack(_model_blob(path)[1], KIND, FORMAT) is not None  # refitted and stored as arrays again
    # the next record is read with the model loaded from those arrays, not refitted
    new.write_text('{"id": "new2", "title": "Graph neural networks for jet tagging at the Large Hadron Collider", '
                   '"abstract": "We train graph neural networks on particle clouds to tag boosted jets."}\n')
    run_cli("ingest", new, db=path)
    out = run_cli("build", "--only", "concepts", db=path).output
    assert "fallback" not in out and "1 predicted, 1 records" in out, out
    assert 5 <= len(cli_json("show", "new2", db=path)["keyphrases"]) <= 8


def test_the_ranker_fits_on_a_bounded_sample_and_records_stream_in_batches(listing_db: Path, tmp_path: Path, monkeypatch):
    from landscape.artifacts import unpack
    from landscape.enrich.concepts import build as concepts_step
    from landscape.enrich.concepts.model import FORMAT, KIND

    monkeypatch.setattr(concepts_step, "FIT_SAMPLE", 60)
    monkeypatch.setattr(concepts_step, "GENERIC_SAMPLE", 150)
    monkeypatch.setattr(concepts_step, "BATCH", 40)
    path = copy_db(listing_db, tmp_path)
    run_cli("build", "--only", "concepts", "--embedder", "tfidf", db=path)
    artifact = unpack(_model_blob(path, "tfidf")[1], KIND, FORMAT)
    assert artifact is not None and len(artifact.arrays["fit_ids"]) == 60
    with open_store(path, readonly=True) as store:
        records = list(store.iter_records())
        text = store.record_concepts("text")
        predicted = store.record_concepts("predicted")
    assert len(text) > 0.75 * len(records)  # as in the full build: whole given phrases match fewer texts
    assert {r.id for r in records if not r.keyphrases} <= set(predicted)


def test_a_few_new_labelled_records_are_read_with_the_stored_model(concepts_db: Path, tmp_path: Path, monkeypatch):
    """Three new papers with keyphrase lines change the labels by under 1%: the stored model
    reads just them (the build says why), instead of a refit that rereads every record."""
    from landscape.enrich.concepts import build as concepts_step

    from .test_phrases import _unseen_listing

    path = copy_db(concepts_db, tmp_path)
    run_cli("ingest", _unseen_listing(tmp_path / "more.txt"), db=path)
    grown = copy_db(path, tmp_path, "grown.db")
    out = run_cli("build", "--only", "concepts", db=path).output
    assert "concepts: labels changed by 0.7% since the model was fitted (refit above 10.0%):" \
           " the stored model reads the new records" in out, out
    assert "3 records, 460 unchanged" in out, out
    with open_store(concepts_db, readonly=True) as before, open_store(path, readonly=True) as store:
        new = {r.id for r in store.iter_records()} - {r.id for r in before.iter_records()}
        given = store.record_concepts("given")
    assert len(new) == 3 and all(given.get(rid) for rid in new)
    monkeypatch.setattr(concepts_step, "LABEL_DRIFT", 0.005)
    out = run_cli("build", "--only", "concepts", db=grown).output
    assert "(refit above 0.5%): refitting" in out and "463 records" in out, out


def test_build_only_takes_steps_by_comma_and_refuses_an_unknown_one(concepts_db: Path, tmp_path: Path):
    path = copy_db(concepts_db, tmp_path)
    steps = [s["step"] for s in cli_json("build", "--only", "embed,concepts", db=path)]
    assert steps == ["embed", "concepts"]
    out = run_cli("build", "--only", "concept", db=path, expect=2)
    assert "unknown step 'concept'" in out.output and "concepts" in out.output
