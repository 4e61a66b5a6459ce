"""Citations in connections and on author pages: 40 real papers ingested from the listing, then
a Semantic Scholar sync (replayed by a local server) that knows some of them and their
references, then `landscape build`: "cites", "cited by", "both cite N of the same works",
"cited together by N papers" in `related`, `show --json`, the API and the pages.

The S2 answers use the recorded envelopes of the search (tests/fixtures/sync/s2_paper_search_next.json)
and of the batch lookup that gives references, filled with papers of the listing (their real
titles) and, as outside works, the real references of INSPIRE's record in tests/fixtures/sync/inspire_literature.json.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from landscape.store import open_store
from landscape.web.app import create_app

from .conftest import cli_json, run_cli
from .test_embed import write_listing
from .test_sync_replay import FIXTURES, Replay, answer

BUILD = ("build", "--only", "embed", "--only", "connections")


def outside_works() -> list[dict]:
    """INSPIRE's recorded references of record 1375491, as S2 gives references."""
    hits = json.loads((FIXTURES / "inspire_literature.json").read_text())["hits"]["hits"]
    out = []
    for ref in hits[0]["metadata"]["references"]:
        r = ref["reference"]
        ids = {"ArXiv": r["arxiv_eprint"]} if r.get("arxiv_eprint") else None
        out.append({"paperId": None, "externalIds": ids, "title": r["title"]["title"]})
    return out


def s2_papers(papers: dict[str, list[str | dict]]) -> list[dict]:
    """The papers as S2 gives them (title -> references: a title or a work), with an S2 id each
    (a hash of the title, so that two syncs of one paper agree)."""
    return [
        {"paperId": hashlib.sha1(title.encode()).hexdigest(), "title": title, "externalIds": {}, "authors": [], "year": None,
         "references": [ref if isinstance(ref, dict) else {"paperId": None, "externalIds": None, "title": ref}
                        for ref in refs]}
        for title, refs in papers.items()
    ]


def s2_answer(papers: list[dict]) -> str:
    """The recorded S2 search envelope holding these papers (the search gives no references)."""
    page = json.loads((FIXTURES / "s2_paper_search_next.json").read_text())
    page["total"] = len(papers)
    page.pop("next", None)
    page["data"] = [{k: v for k, v in p.items() if k != "references"} for p in papers]
    return json.dumps(page)


def s2_batch(papers: list[dict]):
    """S2's POST /paper/batch: the references of each id asked, as the recorded batch answer has them."""
    by_id = {p["paperId"]: {"paperId": p["paperId"], "references": p["references"]} for p in papers}
    return answer(lambda params: json.dumps([by_id[i] for i in params["_json"]["ids"]]).encode())


def sync_s2(db: Path, papers: dict[str, list[str | dict]], query: str = "listing") -> None:
    replay = Replay()
    listed = s2_papers(papers)
    try:
        replay.add("/graph/v1/paper/search", answer(s2_answer(listed)))
        replay.add("/graph/v1/paper/batch", s2_batch(listed))
        run_cli("sync", "s2", "--query", query, "--endpoint", replay.url + "/graph/v1", db=db)
    finally:
        replay.close()


def copy(src: Path, dst: Path) -> Path:
    with open_store(src) as a, open_store(dst) as b:
        a.connection_for_tests.backup(b.connection_for_tests)
    return dst


def related(db: Path, rid: str, limit: int = 10) -> dict[str, dict]:
    return {c["id"]: c for c in cli_json("related", rid, "--limit", str(limit), db=db)}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """40 real papers, embedded and connected, no citations."""
    tmp = tmp_path_factory.mktemp("cite")
    db = tmp / "base.db"
    run_cli("ingest", write_listing(tmp / "l.txt", 0, 40), db=db)
    run_cli(*BUILD, db=db)
    return db


@pytest.fixture(scope="module")
def plan(base) -> dict:
    """Which papers cite which, chosen from the connections built without citations:
    A cites B (just outside A's ten) and F (not even among A's candidates); C and D (neighbours)
    both cite the three outside works; E1 and E2 both cite G and H (neighbours)."""
    from landscape.config import Config
    from landscape.enrich.connections import corpus_for

    titles = {r["id"]: r["title"] for r in cli_json("list", db=base)}
    ids = sorted(titles)
    with open_store(base) as store:
        stored = {rid: [c["id"] for c in store.get_connections(rid)] for rid in ids}
        corpus = corpus_for(store, Config())
        graph_candidates = {rid: set(corpus.candidates([corpus.pos[rid]])[0].tolist()) for rid in ids}
    a = b = None
    for rid in ids:
        ranked = cli_json("related", rid, "--limit", "11", db=base)
        if ranked[9]["score"] - ranked[10]["score"] < 0.4:
            a, b = rid, ranked[10]["id"]
            break
    far = next(o for o in ids if o != a and corpus.pos[o] not in graph_candidates[a])
    used = {a, b, far}
    c = next(r for r in ids if r not in used and set(stored[r][:3]) - used)
    d = next(o for o in stored[c][:3] if o not in used)
    used |= {c, d}
    g = next(r for r in ids if r not in used and set(stored[r][:3]) - used)
    h = next(o for o in stored[g][:3] if o not in used)
    used |= {g, h}
    e1, e2 = [r for r in ids if r not in used][:2]
    return {"titles": titles, "A": a, "B": b, "F": far, "C": c, "D": d, "G": g, "H": h, "E1": e1, "E2": e2}


@pytest.fixture(scope="module")
def cited(base, plan, tmp_path_factory) -> Path:
    t = plan["titles"]
    db = copy(base, tmp_path_factory.mktemp("cited") / "cited.db")
    sync_s2(db, {
        t[plan["A"]]: [t[plan["B"]], t[plan["F"]]],
        t[plan["C"]]: outside_works()[:3],
        t[plan["D"]]: outside_works()[:3],
        t[plan["E1"]]: [t[plan["G"]], t[plan["H"]]],
        t[plan["E2"]]: [t[plan["G"]], t[plan["H"]]],
    })
    steps = {s["step"]: s for s in cli_json(*BUILD, db=db)}
    assert steps["connections"]["computed"] == 40  # the first citations: every record is rescored
    return db


def test_citing_pairs_are_connected_and_say_so(base, cited, plan):
    a, b, far = plan["A"], plan["B"], plan["F"]
    assert b not in related(base, a) and far not in related(base, a, 39)
    mine = related(cited, a)
    assert "cites" in mine[b]["reasons"]  # it was just outside the ten; the citation brings it in
    assert related(cited, a, 39)[far]["reasons"][1:2] == ["cites"]  # a candidate though the texts are far apart
    assert "cited by" in related(cited, b, 39)[a]["reasons"]
    view = cli_json("show", a, db=cited)
    assert sorted(r["record_id"] for r in view["references"]) == sorted([b, far])
    assert cli_json("show", b, db=cited)["cited_by"] == [a]


def test_coupling_and_cocitation_reasons_count_the_shared_works(cited, plan):
    c, d, g, h = plan["C"], plan["D"], plan["G"], plan["H"]
    assert "both cite 3 of the same works" in related(cited, c)[d]["reasons"]
    assert "both cite 3 of the same works" in related(cited, d)[c]["reasons"]
    assert "cited together by 2 papers" in related(cited, g)[h]["reasons"]
    assert "both cite 2 of the same works" in related(cited, plan["E1"], 39)[plan["E2"]]["reasons"]
    assert not any(r.startswith(("cites", "cited", "both cite")) for r in related(cited, c)[d]["reasons"][:1])


def test_citation_scores_add_the_stated_weights(base, cited, plan):
    from landscape.enrich.citations import WEIGHTS

    a, b = plan["A"], plan["B"]
    before, after = related(base, a, 39), related(cited, a, 39)
    untouched = [o for o in before if o in after and not any(
        r.startswith(("cites", "cited", "both")) for r in after[o]["reasons"])]
    assert len(untouched) > 20
    assert all(abs(after[o]["score"] - before[o]["score"]) < 2e-4 for o in untouched)
    assert after[b]["score"] - before[b]["score"] == pytest.approx(WEIGHTS["cites"], abs=2e-4)


def test_api_and_record_page_show_citation_reasons(cited, plan):
    c, d = plan["C"], plan["D"]
    with TestClient(create_app(str(cited))) as http:
        api = http.get("/api/v1/related", params={"id": c}).json()
        page = http.get(f"/records/{c}").text
    reasons = {r["id"]: r["reasons"] for r in api["results"]}
    assert "both cite 3 of the same works" in reasons[d]
    assert "both cite 3 of the same works" in page


def test_no_citation_between_records_changes_no_connection(base, plan, tmp_path):
    """References only to works outside the landscape, none shared: every record is rescored
    with the citation signals present, and every connection is as it was, byte for byte."""
    db = copy(base, tmp_path / "outside.db")
    sync_s2(db, {plan["titles"][plan["A"]]: outside_works()})
    with open_store(db) as store:
        assert store.citation_counts()["links"] == 4
    steps = {s["step"]: s for s in cli_json(*BUILD, db=db)}
    assert steps["connections"]["computed"] == 40  # rescored with the citation signals present
    with open_store(base) as a, open_store(db) as b:
        assert a.table_dump("connections") == b.table_dump("connections")


def test_a_cited_work_arriving_later_rescores_its_citers(base, plan, tmp_path):
    titles = plan["titles"]
    later = cli_json("list", db=_ingested(tmp_path / "later.db", write_listing(tmp_path / "x.txt", 40, 41)))[0]
    db = copy(base, tmp_path / "grow.db")
    citer = plan["C"]
    sync_s2(db, {titles[citer]: [later["title"], *outside_works()[:2]], titles[plan["D"]]: outside_works()[:2]})
    run_cli(*BUILD, db=db)
    sync_s2(db, {later["title"]: []}, query="later")
    steps = {s["step"]: s for s in cli_json(*BUILD, db=db)}
    assert steps["connections"]["computed"] == 2  # the newcomer and the record citing it
    new_id = next(r["id"] for r in cli_json("list", db=db) if r["title"] == later["title"])
    assert "cites" in related(db, citer, 39)[new_id]["reasons"]
    assert "cited by" in related(db, new_id, 39)[citer]["reasons"]


def _ingested(db: Path, listing: Path) -> Path:
    run_cli("ingest", listing, db=db)
    return db


def test_author_pages_count_citations_within_the_landscape(base, cited, plan):
    name = cli_json("show", plan["G"], db=cited)["authors"][0]
    profile = cli_json("author", name, db=cited)
    cited_by = {p["id"]: len(cli_json("show", p["id"], db=cited)["cited_by"]) for p in profile["papers"]}
    times = sum(cited_by.values())
    assert times >= 2 and profile["citations"]["times_cited"] == times
    assert profile["citations"]["records_cited"] == sum(1 for n in cited_by.values() if n)
    top = profile["citations"]["most_cited"][0]
    assert top["cited_by"] == max(cited_by.values()) == 2 and top["id"] in (plan["G"], plan["H"])
    assert f"cited {times} times within this landscape" in run_cli("author", name, db=cited).output
    assert cli_json("author", name, db=base)["citations"] == {"times_cited": 0, "records_cited": 0, "most_cited": []}
    with TestClient(create_app(str(cited))) as http:
        api = http.get(f"/api/v1/authors/{profile['key']}").json()
        page = http.get(f"/authors/{profile['key']}").text
    assert api["citations"] == profile["citations"]
    assert f"Cited {times} times by records in this landscape" in page
    assert f'href="/records/{top["id"]}"' in page and "cited by 2" in page


def test_a_paper_ingested_from_a_file_after_its_citer_is_matched_by_title(tmp_path):
    """INSPIRE's recorded record cites "Natural SUSY in Plain Sight"; that paper arrives later
    from a BibTeX file (no id in common, only its title): it is the reference, in connections
    and on its author's page."""
    db = tmp_path / "susy.db"
    replay = Replay()
    try:
        replay.add("/api/literature", answer(FIXTURES / "inspire_literature.json"))
        run_cli("sync", "inspire", "--query", "t supersymmetry", "--endpoint", replay.url + "/api/literature", db=db)
    finally:
        replay.close()
    bib = tmp_path / "natural.bib"
    bib.write_text("@article{natural, title = {Natural {SUSY} in Plain Sight}, author = {Alves, Daniele S. M.},"
                   " year = {2014}, abstract = {Natural supersymmetry with light higgsinos hiding from LHC"
                   " searches in compressed spectra.}}\n", encoding="utf-8")
    run_cli("ingest", bib, db=db)
    run_cli(*BUILD, db=db)
    susy = "arxiv:1506.03091"
    natural = next(r["id"] for r in cli_json("list", db=db) if r["id"] != susy)
    assert "cites" in related(db, susy)[natural]["reasons"]
    assert "cited by" in related(db, natural)[susy]["reasons"]
    profile = cli_json("author", "Alves", db=db)
    assert profile["citations"]["times_cited"] == 1 and profile["citations"]["most_cited"][0]["id"] == natural
