"""What citation reasons do to connection quality, on a corpus built from recorded answers.

Every recorded service answer under tests/fixtures/sync (read from the directory, subfolders
included: whatever answers are recorded there) is replayed by the tests' local HTTP server and
synced into a fresh store with the real clients (one page each; error pages and empty answers
are skipped), then built (embed + connections). In the same run, connections are scored with
and without the citation signal:

- held-out citation links: the in-corpus links are split into FOLDS folds; each fold in turn is
  hidden (the citation signal sees only the other links) and, for each hidden link A -> B, we
  ask where B ranks among A's connections (reciprocal rank, hit within the top 10), with the
  signal and without it. A direct link is hidden, so only coupling and co-citation can help;
- the keyphrase proxy of bench/quality.py (nDCG@10 against shared keyphrase tokens), for the
  records that have a keyphrase line.

Each figure has a bootstrap 95% interval (percentile, resampling links or query papers) and so
has the difference. The recorded corpus is small; the output says how small, and a figure over
a handful of links is an illustration, not a measurement.

    .venv/bin/python bench/quality.py --citations [--fixtures DIR]
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from landscape.config import Config
from landscape.enrich.citations import Citations, describe
from landscape.enrich.connections import corpus_for, load_state, top_connections
from landscape.enrich.pipeline import build
from landscape.store import Store
from landscape.sync import Settings, make_client
from landscape.sync.run import sync_source

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "sync"
FOLDS = 2
REPS = 2000
NO_RECORDS = (b'<?xml version="1.0" encoding="UTF-8"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
              b'<responseDate>2026-01-01T00:00:00Z</responseDate><request verb="ListRecords"/>'
              b'<error code="noRecordsMatch">no records</error></OAI-PMH>')


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def service_of(path: Path) -> tuple[str, str | None] | None:
    """(service, query) for a recorded answer that holds records, else None."""
    body = path.read_bytes()
    if path.suffix == ".xml":
        return ("arxiv", None) if b"<record>" in body else None
    if path.suffix != ".json":
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if (data.get("hits") or {}).get("hits"):
        return "inspire", "recorded"
    if data.get("results") and "meta" in data:
        return "openalex", "recorded"
    if ((data.get("response") or {}).get("docs")):
        return "ads", "recorded"
    if data.get("data"):
        return "s2", "recorded"
    return None


def s2_batch_answer(fixtures: Path) -> dict:
    """S2's POST /paper/batch from the recorded batch answers under `fixtures`: each id asked,
    with its recorded references, or none when no recorded answer holds it."""
    from tests.test_sync_replay import answer

    known = {}
    for path in fixtures.rglob("s2_paper_batch*.json"):
        for paper in json.loads(path.read_bytes()):
            if isinstance(paper, dict) and paper.get("paperId"):
                known[paper["paperId"]] = paper
    return answer(lambda params: json.dumps(
        [known.get(i, {"paperId": i, "references": []}) for i in params["_json"]["ids"]]).encode())


def recorded_store(db: Path, fixtures: Path) -> list[str]:
    """Sync every recorded answer under `fixtures` into db; returns the files used."""
    from tests.test_sync_replay import Replay, answer

    used = []
    replay = Replay()
    try:
        with Store(db) as store:
            for path in sorted(p for p in fixtures.rglob("*") if p.is_file()):
                found = service_of(path)
                if found is None:
                    continue
                service, query = found
                route = f"/{len(used)}"
                for token in re.findall(rb"<resumptionToken[^>]*>([^<]+)<", path.read_bytes()):
                    replay.add(route, answer(NO_RECORDS), match={"resumptionToken": token.decode()})
                if service == "s2":
                    replay.add(route + "/paper/search", answer(path))
                    replay.add(route + "/paper/batch", s2_batch_answer(fixtures))
                else:
                    replay.add(route, answer(path))
                clock = _Clock()
                client = make_client(service, Settings(endpoint=replay.url + route, clock=clock, sleep=clock.sleep,
                                                       env={"ADS_API_TOKEN": "recorded"}))
                first = next(iter(client.pages(query, None, None)))
                sync_source(store, client, query=query, limit=len(first.items) or None,
                            key=f"recorded:{path.relative_to(fixtures)}")
                used.append(str(path.relative_to(fixtures)))
    finally:
        replay.close()
    return used


def bootstrap(values: np.ndarray, seed: int = 0) -> tuple[float, float]:
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = [float(values[rng.integers(0, len(values), len(values))].mean()) for _ in range(REPS)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def with_ci(values: Sequence[float]) -> str:
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return "n/a"
    lo, hi = bootstrap(v)
    return f"{v.mean():.3f} [{lo:.3f}, {hi:.3f}]"


def rankings(corpus: Any, rows: list[int], stats: dict[str, list[float]]) -> dict[str, list[str]]:
    k = len(corpus) - 1
    return {rid: [o for o, _, _ in conns] for rid, conns in top_connections(corpus, rows, stats, k).items()}


def held_out(corpus: Any, edges: list[tuple[str, int, str | None]], stats: dict[str, list[float]]
             ) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
    """(reciprocal rank, hit@10) of each hidden link without and with the citation signal."""
    links = sorted({(a, b) for a, _, b in edges if b is not None and a != b and a in corpus.pos and b in corpus.pos})
    rng = np.random.default_rng(7)
    fold = rng.permutation(len(links)) % FOLDS
    without, with_signal = [], []
    plain = replace(corpus, citations=None)
    for f in range(FOLDS):
        hidden = {links[i] for i in range(len(links)) if fold[i] == f}
        if not hidden:
            continue
        kept = [e for e in edges if (e[0], e[2]) not in hidden]
        seen = replace(corpus, citations=Citations.from_edges(corpus.ids, kept))
        rows = sorted({corpus.pos[a] for a, _ in hidden})
        ranked = {"without": rankings(plain, rows, stats), "with": rankings(seen, rows, stats)}
        for a, b in sorted(hidden):
            for name, out in (("without", without), ("with", with_signal)):
                order = ranked[name][a]
                r = order.index(b) + 1 if b in order else None
                out.append((1.0 / r if r else 0.0, 1.0 if r and r <= 10 else 0.0))
    return without, with_signal, len(links)


def keyphrase_proxy(store: Store, corpus: Any, stats: dict[str, list[float]],
                    relevance: Callable[[list[str]], np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-query nDCG@10 without and with the citation signal (queries: records with a keyphrase line)."""
    ids = corpus.ids
    lines = [store.get_record(rid).keyphrase_line or "" for rid in ids]
    rel = relevance(lines)
    queries = [i for i in range(len(ids)) if lines[i] and rel[i].max() > 0]
    disc = 1 / np.log2(np.arange(2, 12))
    out = []
    for c in (replace(corpus, citations=None), corpus):
        ranked = rankings(c, queries, stats)
        scores = []
        for i in queries:
            top = [corpus.pos[o] for o in ranked[ids[i]][:10]]
            ideal = np.sort(rel[i])[::-1][:10]
            scores.append(float((rel[i][top] * disc[: len(top)]).sum() / (ideal * disc).sum()))
        out.append(scores)
    return out[0], out[1]


def citation_tables(fixtures: Path, config: Config, relevance: Callable[[list[str]], np.ndarray],
                    table: Callable[..., None]) -> None:
    with tempfile.TemporaryDirectory(prefix="landscape-citations-") as tmp:
        db = Path(tmp) / "recorded.db"
        used = recorded_store(db, fixtures)
        with Store(db) as store:
            build(store, config, only=["embed", "connections"])
            counts = store.citation_counts()
            corpus = corpus_for(store, config)
            state = load_state(store)
            stats = state["stats"] if state else corpus.fit_stats()
            edges = store.citation_edges()
            without, with_signal, n_links = held_out(corpus, edges, stats)
            kp_without, kp_with = keyphrase_proxy(store, corpus, stats, relevance)
        print(f"\nrecorded corpus: {len(used)} answers under {fixtures} -> {len(corpus)} records,"
              f" {counts['links']} citation links ({n_links} between records of the corpus),"
              f" {counts['targets'] - counts['in_corpus']} cited works outside it")
        print(f"citation signal: {describe()}")
        if n_links < 30 or len(corpus) < 100:
            print(f"NOTE: {len(corpus)} records and {n_links} in-corpus links are far too few to measure"
                  " anything; the figures below show the method runs, not that citations help.")
        w, c = np.array(without), np.array(with_signal)
        rows = []
        for j, metric in enumerate(("reciprocal rank", "hit@10")):
            if len(w):
                diff = c[:, j] - w[:, j]
                rows.append((metric, with_ci(w[:, j]), with_ci(c[:, j]), with_ci(diff)))
            else:
                rows.append((metric, "n/a", "n/a", "n/a"))
        table(f"held-out citation links ({len(w)} hidden over {FOLDS} folds; the cited record's place"
              " among the citing record's connections)", rows, ("metric", "without citations", "with citations",
                                                                 "difference"))
        d = np.array(kp_with) - np.array(kp_without)
        table(f"keyphrase proxy nDCG@10 ({len(kp_with)} query records with a keyphrase line)",
              [("nDCG@10", with_ci(kp_without), with_ci(kp_with), with_ci(d))],
              ("metric", "without citations", "with citations", "difference"))
