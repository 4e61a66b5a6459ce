"""Areas: every record gets an area with calibrated probabilities and a conformal set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from landscape.store import open_store

from .conftest import SEEDS, cli_json, copy_db, run_cli

ODD_RECORDS = [
    {"title": "Entropy", "abstract": "", "authors": ["A. Nobody"]},
    {"title": "Réseaux de neurones pour la physique des particules",
     "abstract": "Nous étudions des réseaux de neurones profonds pour reconstruire des jets au LHC.",
     "authors": ["Jeanne Dupont"]},
    {"title": "Stellar streams as probes of dark matter substructure",
     "abstract": "We use simulation-based inference on Gaia stellar streams to constrain subhalos of the Milky Way.",
     "authors": []},
]


@pytest.fixture(scope="module")
def odd_db(built_db: Path, tmp_path_factory) -> Path:
    """The built listing plus unlabelled records with an empty abstract, one word, French."""
    root = tmp_path_factory.mktemp("odd")
    path = copy_db(built_db, root)
    records = root / "odd.jsonl"
    records.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ODD_RECORDS) + "\n", encoding="utf-8")
    run_cli("ingest", records, db=path)
    steps = cli_json("build", "--only", "embed", "--only", "concepts", "--only", "areas", "--only", "summaries", db=path)
    ODD_STEPS[str(path)] = steps
    return path


ODD_STEPS: dict[str, list] = {}  # the build's report for each odd_db (a file or a database URL)


def _by_title(db: Path) -> dict[str, dict]:
    with open_store(db, readonly=True) as store:
        return {r.title: store.record_view(r.id) for r in store.iter_records()}


def test_given_areas_stay_and_carry_held_out_probabilities(built_db: Path):
    listing = [r for r in cli_json("list", db=built_db) if r["kind"] == "paper"]
    view = cli_json("show", listing[0]["id"], db=built_db)
    assert view["area_source"] == "given" and view["area"] == listing[0]["area"]
    probs = view["area_probabilities"]
    assert set(probs) == {"Theoretical Physics", "Experimental Physics", "Foundational AI", "Astrophysics"}
    assert abs(sum(probs.values()) - 1) < 0.01
    assert view["area_set"] and set(view["area_set"]) <= set(probs)


def test_talks_get_a_predicted_area_from_their_sections(built_db: Path):
    talks = cli_json("list", "--kind", "talk", db=built_db)
    assert len(talks) == 2
    for talk in talks:
        view = cli_json("show", talk["id"], db=built_db)
        assert view["area_source"] == "predicted"
        assert view["area"] == max(view["area_probabilities"], key=view["area_probabilities"].get)
        assert view["area"] in view["area_set"]


def test_odd_records_get_honest_low_confidence_areas(odd_db: Path):
    views = _by_title(odd_db)
    streams = views["Stellar streams as probes of dark matter substructure"]
    assert streams["area"] == "Astrophysics" and streams["area_source"] == "predicted"
    for title in ("Entropy", "Réseaux de neurones pour la physique des particules"):
        view = views[title]
        assert view["area_source"] == "predicted"
        assert max(view["area_probabilities"].values()) < max(streams["area_probabilities"].values())
    assert len(views["Entropy"]["area_set"]) >= 2


def test_no_labels_falls_back_to_zero_shot_from_configured_descriptions(tmp_path: Path):
    db = tmp_path / "landscape.db"
    (tmp_path / "landscape.toml").write_text(
        '[area_descriptions]\n'
        '"Machine Learning" = "neural networks, deep learning, optimization, language models"\n'
        '"Cosmology" = "galaxies, dark matter, cosmic microwave background, surveys"\n',
        encoding="utf-8",
    )
    run_cli("ingest", SEEDS / "000_a36c6340249dc15d.txt", SEEDS / "001_36b3cb48603f891c.txt", db=db)
    run_cli("build", "--only", "embed", "--only", "areas", db=db)
    records = cli_json("list", db=db)
    assert records
    for rec in records:
        view = cli_json("show", rec["id"], db=db)
        assert view["area"] in {"Machine Learning", "Cosmology"} and view["area_source"] == "predicted"
        assert set(view["area_probabilities"]) == {"Machine Learning", "Cosmology"}


def test_a_store_without_labels_or_descriptions_builds_without_areas(tmp_path: Path):
    db = tmp_path / "landscape.db"
    run_cli("ingest", SEEDS / "000_a36c6340249dc15d.txt", db=db)
    run_cli("build", "--only", "embed", "--only", "areas", db=db)
    view = cli_json("show", cli_json("list", db=db)[0]["id"], db=db)
    assert view["area"] is None and view["area_probabilities"] is None


def test_adding_records_reads_only_them_with_the_stored_models(odd_db: Path):
    steps = {s["step"]: s for s in ODD_STEPS[str(odd_db)]}
    with open_store(odd_db, readonly=True) as store:
        before = store.count_records() - len(ODD_RECORDS)
    assert steps["concepts"]["records"] == len(ODD_RECORDS) and steps["concepts"]["unchanged"] == before
    assert steps["areas"]["retrained"] == 0 and steps["areas"]["predicted"] == len(ODD_RECORDS)
    assert steps["summaries"]["summarised"] == len(ODD_RECORDS)
    streams = _by_title(odd_db)["Stellar streams as probes of dark matter substructure"]
    assert streams["keyphrases_source"] == "predicted" and 5 <= len(streams["keyphrases"]) <= 8
    assert "stellar streams" in streams["keyphrases"]


def test_eval_reports_areas_keyphrases_and_landscape_quality_beside_baselines(built_db: Path):
    args = ("eval", "--sample", "150", "--folds", "3", "--baselines", "tfidf,borrow")
    report = cli_json(*args, db=built_db)
    areas = {m["key"]: m for m in report["areas"]["methods"]}
    assert set(areas) == {"landscape", "tfidf"} and report["areas"]["papers"] == 150
    assert areas["landscape"]["macro_f1"] > 0.5 and 0 <= areas["landscape"]["ece"] < 0.2
    conformal = report["areas"]["conformal"]
    assert conformal["nominal"] == 0.9 and 0.75 <= conformal["coverage"] <= 1 and conformal["mean_set_size"] >= 1
    phrases = {m["key"]: m for m in report["keyphrases"]["methods"]}
    assert set(phrases) == {"landscape", "borrow"} and phrases["landscape"]["f1"] > 0.2
    quality = report["landscape"]
    assert quality["topics"] >= 2 and quality["talk_section_links"] > 0
    assert {"topic_area_nmi", "topic_coherence_npmi", "outlier_fraction", "talk_link_concept_share"} <= set(quality)
    assert set(report["goals"]) >= {"area macro-F1 >= 0.85", "ECE < 0.05", "keyphrase token F1 >= 0.50"}
    text = run_cli("eval", "--sample", "60", "--folds", "2", "--baselines", "tfidf", "--only", "areas",
                   db=built_db).output
    assert "macro-F1" in text and "TF-IDF + LR" in text and "conformal sets: coverage" in text


def test_nearest_labelled_papers_vote_as_scikit_learn_weighted_knn_and_are_stored(built_db: Path):
    """The neighbours base model is weighted k-NN (cosine weights) plus a prior pseudo-vote."""
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    from landscape.config import Config
    from landscape.enrich import area_model, areas

    config = Config()
    with open_store(built_db, readonly=True) as store:
        records = [r for r in store.iter_records() if r.area]
        data = areas.area_data(store, config, records)
        signature = areas.labels_signature(areas.human_labelled(store.area_inputs()), config, store.get_meta("embedder"))
        stored = areas.stored_model(store.area_model_blob(signature), config)
    assert stored is not None and "neighbours" in stored.bases
    labels = sorted(set(data.labels))
    train, test = data.take(range(0, len(records), 2)), data.take(range(1, len(records), 2))
    ours = area_model.NeighbourModel(k=7, prior_weight=0.0).fit(train, labels).proba(test)
    unit = train.embeddings / np.linalg.norm(train.embeddings, axis=1, keepdims=True)
    knn = KNeighborsClassifier(7, metric="cosine", weights=lambda d: np.maximum(1 - d, 0), algorithm="brute")
    knn.fit(unit.astype(np.float16).astype(np.float32), train.labels)
    theirs = knn.predict_proba(test.embeddings)
    assert list(knn.classes_) == labels and np.abs(ours - theirs).max() < 2e-3
    smoothed = area_model.NeighbourModel(k=7).fit(train, labels).proba(test)
    assert np.allclose(smoothed.sum(axis=1), 1) and (smoothed > 0).all()


def test_past_the_fit_bound_the_model_fits_a_stratified_sample_and_predicts_the_other_labelled(
        built_db: Path, tmp_path: Path, monkeypatch):
    """[extra.areas] fit_sample bounds the records the model is fitted on; the labelled records
    outside the sample keep their area and get the fitted model's (held-out) probabilities."""
    from landscape.config import Config
    from landscape.enrich import area_model, areas

    db = copy_db(built_db, tmp_path)
    config = tmp_path / "bounded.toml"
    config.write_text("[extra.areas]\nfit_sample = 120\nbatch = 50\n", encoding="utf-8")
    monkeypatch.setenv("LANDSCAPE_CONFIG", str(config))
    steps = {s["step"]: s for s in cli_json("build", "--only", "areas", "--full", db=db)}
    with open_store(db, readonly=True) as store:
        records = list(store.iter_records())
        labelled = [r for r in records if r.area]
        stored = areas.stored_model(store.area_model_blob(
            areas.labels_signature(areas.human_labelled(store.area_inputs()), Config(), store.get_meta("embedder"))),
            Config())
        views = [store.record_view(r.id) for r in labelled]
    assert steps["areas"]["retrained"] == 1 and steps["areas"]["labelled"] == len(labelled) > 120
    assert stored is not None
    fitted = len(stored.fitted["neighbours"].y)
    per_area = {a: sum(r.area == a for r in labelled) for a in stored.labels}
    assert 120 - len(per_area) <= fitted <= 120 + len(per_area) * area_model.MIN_SAMPLED
    assert all(v["area_source"] == "given" and v["area_probabilities"] and v["area_set"] for v in views)
    assert all(abs(sum(v["area_probabilities"].values()) - 1) < 0.01 for v in views)
    assert area_model.fit_sample([r.area for r in labelled], 10_000, 7) == list(range(len(labelled)))
    picked = area_model.fit_sample([r.area for r in labelled], 120, 7)
    assert picked == area_model.fit_sample([r.area for r in labelled], 120, 7) == sorted(set(picked))
    assert {labelled[k].area for k in picked} == set(per_area)


def test_the_areas_inputs_carry_each_records_authors_and_given_area(listing_db):
    with open_store(listing_db, readonly=True) as store:
        inputs = store.area_inputs()
        records = {r.id: r for r in store.get_records([i.id for i in inputs])}
    assert [i.id for i in inputs] == sorted(records) and len(inputs) > 400
    assert all(i.authors == tuple(sorted(records[i.id].authors)) for i in inputs)
    assert sum(bool(i.authors) for i in inputs) > 400
    assert all(i.area == records[i.id].area and i.area_source == "given" for i in inputs if i.area)
