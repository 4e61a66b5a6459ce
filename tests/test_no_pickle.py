"""No code in the store: fitted models are kept as data, and a planted pickle never runs.

A store is a file people pass around. Here every artifact of a built store is replaced by a
pickle that would create a file when unpickled; ingest, build, search, related and the web app
then run on it, and the file must never appear. The area and map models this version cannot
read are refitted, and the build says so in one line.
"""

from __future__ import annotations

import pathlib
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from landscape.artifacts import Artifact, pack, unpack
from landscape.store import open_store
from landscape.web.app import create_app

from .conftest import SEEDS, SHARED, cli_json, copy_db, run_cli


class Planted:
    """Unpickling this touches `marker`: proof that something ran code read from the store."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.fixture(scope="module")
def tfidf_db(tmp_path_factory) -> Path:
    """The 460-paper corpus and two talks, built with every step (tfidf embedder, so it is quick)."""
    path = tmp_path_factory.mktemp("nopickle") / "landscape.db"
    run_cli("ingest", SHARED / "corpus", SEEDS / "003_00411ab6291d3934.txt", SEEDS / "004_983411919a72a1a9.txt",
            db=path)
    run_cli("build", "--embedder", "tfidf", db=path)
    return path


def _copy(db: Path, tmp_path: Path) -> Path:
    out = copy_db(db, tmp_path)
    return out


def _artifacts(db: Path) -> dict[str, bytes]:
    with sqlite3.connect(db) as conn:
        return {name: bytes(value) for name, value in conn.execute("SELECT name, value FROM artifacts")}


def _overwrite(db: Path, values: dict[str, bytes]) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany("UPDATE artifacts SET value = ? WHERE name = ?", [(v, n) for n, v in values.items()])


def test_planted_pickles_never_run(tfidf_db: Path, tmp_path: Path):
    db = _copy(tfidf_db, tmp_path)
    marker = tmp_path / "code-ran"
    payload = pickle.dumps(Planted(marker))
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Planted(probe)))
    assert probe.exists(), "the planted payload must run code when unpickled, or this test proves nothing"

    names = set(_artifacts(db))
    assert {"map.model", "mentions.vectors", "connections:state", "topics.model"} <= names
    assert any(n.startswith("area_model:") for n in names) and any(n.startswith("concepts.model") for n in names)
    _overwrite(db, dict.fromkeys(names, payload))

    run_cli("ingest", SEEDS / "000_a36c6340249dc15d.txt", db=db)
    built = run_cli("build", "--embedder", "tfidf", db=db).output
    # the planted tfidf model is refitted, so the area and concept models (keyed by the embedder)
    # are fitted anew without reading the planted ones
    assert any(line.startswith("areas: ") and line.endswith(" 1 retrained") for line in built.splitlines()), built
    assert "map: stored map model is not in a format this version reads (refitting)" in built
    assert any(line.startswith("concepts: ") and line.endswith(" records") for line in built.splitlines()), built
    assert "connections: the stored state is not in a format this version reads (recomputing)" in built
    assert "topics: the stored topic model is not in a format this version reads (reclustering)" in built
    hits = cli_json("search", "dark matter", db=db)
    assert hits
    related = cli_json("related", hits[0]["id"], db=db)
    assert related
    with TestClient(create_app(db)) as client:
        for path in ("/", f"/records/{hits[0]['id']}", "/map", "/api/v1/map", "/api/v1/search?q=neural+network",
                     f"/api/v1/related?id={hits[0]['id']}", "/api/v1/related?text=galaxy+surveys", "/about", "/topics", "/areas"):
            assert client.get(path).status_code == 200, path
    assert not marker.exists(), "code planted in the store ran"

    refitted = _artifacts(db)
    area_names = [n for n in refitted if n.startswith("area_model:")]
    assert len(area_names) == 1 and unpack(refitted[area_names[0]], "areas", 2) is not None
    assert unpack(refitted["map.model"], "map", 2) is not None
    with open_store(db, readonly=True) as store:
        assert len(store.ls_map_coords()) == store.count_records()


def test_a_model_of_an_older_format_version_is_refitted_with_one_line(tfidf_db: Path, tmp_path: Path):
    db = _copy(tfidf_db, tmp_path)
    stored = _artifacts(db)
    area_name = next(n for n in stored if n.startswith("area_model:"))
    _overwrite(db, {area_name: pack(Artifact("areas", 1, {"labels": ["a", "b"]}, {"prior": np.ones(2)})),
                    "map.model": pack(Artifact("map", 1, {}, {"coords": np.zeros((3, 2))}))})

    run_cli("ingest", SEEDS / "000_a36c6340249dc15d.txt", db=db)
    output = run_cli("build", "--embedder", "tfidf", "--only", "embed", "--only", "areas", "--only", "map",
                     db=db).output
    lines = output.splitlines()
    assert lines.count("areas: stored areas model has format version 1, this version reads 2 (refitting)") == 1
    assert lines.count("map: stored map model has format version 1, this version reads 2 (refitting)") == 1
    assert "areas: 5 predicted" in output and "1 retrained" in output and "map: 465 placed" in output

    # the refitted models are read back: the next build reuses them and says nothing about them
    run_cli("ingest", SEEDS / "001_36b3cb48603f891c.txt", db=db)
    again = cli_json("build", "--embedder", "tfidf", "--only", "embed", "--only", "areas", "--only", "map", db=db)
    steps = {s["step"]: s for s in again}
    assert steps["areas"]["retrained"] == 0 and steps["areas"]["predicted"] == 5
    assert steps["map"]["placed"] == 5 and "relayout" not in steps["map"]


def test_stored_predictors_predict_like_scikit_learn():
    """The predictors the areas and concepts steps store, after a trip through the store format,
    give scikit-learn's probabilities. LiteBoostedTrees reads scikit-learn's private tree arrays,
    so this is also the check that pins the scikit-learn versions pyproject allows."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from landscape.enrich.predictors import LiteBoostedTrees, LiteLogistic, LiteTfidf

    from .conftest import LISTING

    def trip(kind: str, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        artifact = unpack(pack(Artifact(kind, 1, {}, state)), kind, 1)
        assert artifact is not None
        return artifact.arrays

    blocks = [b for b in LISTING.read_text(encoding="utf-8").split("\n\n") if len(b) > 200][:240]
    areas = ["Theory", "Experiment", "Machine learning"]
    labels = [areas[k % 3] for k in range(len(blocks))]
    vec = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    X = vec.fit_transform(blocks[:200])
    model = LogisticRegression(C=10, max_iter=300).fit(X, labels[:200])
    lite_vec = LiteTfidf.from_state(trip("tfidf", LiteTfidf(vec).state()))
    lite_model = LiteLogistic.from_state(trip("logistic", LiteLogistic(model).state()))
    assert np.allclose(vec.transform(blocks[200:]).toarray(), lite_vec.transform(blocks[200:]).toarray())
    assert np.allclose(model.predict_proba(vec.transform(blocks[200:])),
                       lite_model.predict_proba(lite_vec.transform(blocks[200:])))
    assert list(lite_model.classes_) == list(model.classes_)

    rng = np.random.default_rng(0)
    F = rng.normal(size=(2000, 6))
    share = 1 / (1 + np.exp(-(F[:, 0] + 0.5 * F[:, 1] + rng.normal(size=2000))))
    trees = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=0).fit(
        np.vstack([F, F]), np.r_[np.ones(2000), np.zeros(2000)], sample_weight=np.r_[share, 1 - share])
    G = rng.normal(size=(300, 6))
    G[::3, 4] = np.nan
    state = LiteBoostedTrees(trees).state()
    lite_trees = LiteBoostedTrees.from_state(trip("trees", state))
    assert np.allclose(trees.predict_proba(G), lite_trees.predict_proba(G))

    looping = dict(state, left=np.where(state["is_leaf"], state["left"], 0))
    with pytest.raises(ValueError, match="out of order"):
        LiteBoostedTrees.from_state(looping)
    with pytest.raises(ValueError, match="preprocessor"):
        LiteTfidf.from_state(LiteTfidf(vec).state(), preprocessor=str.lower)
