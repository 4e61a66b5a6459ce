"""Each source syncs from answers the services really gave (recorded by public projects or
printed in the services' own documentation; tests/fixtures/sync/README.md says where each
comes from), replayed by the local server: what a user gets from real field shapes, real
empty answers and real refusals."""

from __future__ import annotations

import json

import pytest

from landscape.store import open_store
from landscape.sync import Settings, make_client
from tests.test_sync import S2_BATCH, s2_batch, s2_searches, show, sync_cli
from tests.test_sync_replay import FakeClock, Replay, answer, fixture

S2 = "/graph/v1/paper/search"
SHM_CURSOR = json.loads(fixture("openalex_works_real.json").read_text())["meta"]["next_cursor"]


@pytest.fixture(autouse=True)
def fresh_limiters():
    import landscape.sync

    landscape.sync._LIMITERS.clear()


@pytest.fixture
def replay():
    server = Replay()
    yield server
    server.close()


def records(db) -> dict:
    with open_store(db) as store:
        return {rec.id: rec for rec in store.iter_records()}


def test_openalex_page_rebuilds_the_abstract_and_keeps_every_referenced_work(replay, db):
    replay.add("/works", answer(fixture("openalex_works_empty.json")), match={"cursor": SHM_CURSOR})
    replay.add("/works", answer(fixture("openalex_works_real.json")))
    out = sync_cli(db, "openalex", "--query", "structural health monitoring", "--endpoint",
                   replay.url + "/works").output
    assert "2 pages, 1 new" in out and "30 citation links" in out and "up to date" in out
    assert [r[1]["cursor"] for r in replay.requests] == ["*", SHM_CURSOR]
    rec = records(db)["doi:10.1098/rsta.2006.1928"]
    assert rec.title == "An introduction to structural health monitoring"
    assert rec.authors == ["Charles R. Farrar", "Keith Worden"] and rec.date == "2006-12-12"
    assert rec.abstract.startswith("The process of implementing a damage identification strategy for aerospace,")
    assert rec.abstract.endswith("are discussed in a general manner.") and len(rec.abstract.split()) == 254
    assert rec.extra["openalex"] == "W2027456229"
    assert rec.extra["venue"].startswith("Philosophical Transactions of the Royal Society A")
    with open_store(db) as store:
        assert store.citation_counts() == {"links": 30, "targets": 30, "in_corpus": 0}
        assert store.count_records() == 1  # cited works outside the corpus are never papers


def test_s2_relevance_page_reads_real_ids_and_lists_each_author_once(replay, db):
    replay.add(S2, answer(fixture("s2_paper_search_empty.json")), match={"offset": "5"})
    replay.add(S2, answer(fixture("s2_paper_search_relevance.json")))
    replay.add(S2_BATCH, s2_batch())
    out = sync_cli(db, "s2", "--query", "attention mechanism", "--endpoint", replay.url + S2).output
    assert "2 pages, 5 new" in out
    assert [p["offset"] for p in s2_searches(replay)] == ["0", "5"]  # S2's own `next`
    found = records(db)
    faster = found["arxiv:1506.01497"]
    assert faster.extra["doi"] == "10.1109/tpami.2016.2577031"  # S2 spells DOIs in capitals
    assert faster.extra["s2"] == "424561d8585ff8ebce7d5d07de8dbf7aae5e7270"
    governance = found["doi:10.1111/j.1540-6261.1997.tb04820.x"]
    assert governance.abstract == ""  # elided by the publisher: null in the answer
    assert governance.authors == ["A. Shleifer", "Robert W. Vishny"]  # S2 lists each twice
    assert found["arxiv:1706.03762"].date == "2017-06-12"


def test_s2_references_come_from_the_batch_lookup_with_every_id_s2_knows(replay, db):
    """Turing's 1950 paper and its 14 references as S2 recorded them: eight matched papers with
    their DOIs (S2 spells them in capitals) and seven bibliography lines S2 could not match."""
    replay.add(S2, answer(fixture("s2_paper_search_turing1950.json")))
    replay.add(S2_BATCH, s2_batch("s2_paper_batch_turing1950.json"))
    out = sync_cli(db, "s2", "--query", "computing machinery", "--endpoint", replay.url + S2).output
    assert "1 pages, 1 new" in out and "14 citation links" in out and "up to date" in out
    assert [body for _p, _q, body in replay.posted] == [{"ids": ["2d5673caa9e6af3a7b82a43f19ee920992db07ad"]}]
    rec = records(db)["doi:10.1093/mind/lix.236.433"]
    assert rec.title == "Computing Machinery and Intelligence" and rec.authors == ["A. Turing"]
    refs = show(db, rec.id)["references"]
    assert len(refs) == 14
    by_title = {r["title"]: r for r in refs}
    computable = by_title["On computable numbers, with an application to the Entscheidungsproblem"]
    assert computable["ids"]["doi"] == "10.1112/plms/s2-42.1.230"
    assert computable["ids"]["s2"] == "ab7790485f26ce65f9d83dd700c43e49058bdd2b"
    assert sum(1 for r in refs if not r["ids"]) == 7  # unmatched bibliography lines, kept by title


def test_s2_batch_lookup_keeps_the_rate_limit(replay):
    replay.add(S2, answer(fixture("s2_paper_search_turing1950.json")))
    replay.add(S2_BATCH, s2_batch("s2_paper_batch_turing1950.json"))
    clock = FakeClock()
    client = make_client("s2", Settings(endpoint=replay.url + S2, clock=clock, sleep=clock.sleep))
    [page] = list(client.pages("computing machinery", None, None))
    assert len(page.items[0][1]) == 14
    assert clock.slept == [1.0]  # the batch POST waits its second after the search GET


def test_s2_empty_answer_has_no_data_key_and_is_up_to_date(replay, db):
    replay.add(S2, answer(fixture("s2_paper_search_empty.json")))
    out = sync_cli(db, "s2", "--query", "n0 r3sult s3arch t3rm", "--endpoint", replay.url + S2).output
    assert "1 pages, 0 new" in out and "up to date" in out


@pytest.mark.parametrize("name, status, said", [
    ("s2_error_400.json", 400, "HTTP 400: Unrecognized or unsupported fields: [unknown]"),
    ("s2_error_404.json", 404, "HTTP 404: Paper with id 0 not found"),
    ("s2_error_429.json", 429, "(HTTP 429: Too Many Requests. Please wait and try again or apply for a key"),
])
def test_s2_refusals_are_one_line_in_its_own_words(replay, db, name, status, said, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _s: None)  # the 429 backs off five times
    replay.add(S2, answer(fixture(name), status))
    out = sync_cli(db, "s2", "--query", "x", "--endpoint", replay.url + S2, expect=2).output
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: s2: ") and said in last
    assert records(db) == {}


def test_ads_recorded_answer_with_undated_days_and_months(replay, db):
    replay.add("/v1/search/query", answer(fixture("ads_search_recorded.json")))
    out = sync_cli(db, "ads", "--query", 'first_author:"Sudilovsky"', "--limit", "2", "--endpoint",
                   replay.url + "/v1/search/query", env={"ADS_API_TOKEN": "t"}).output
    assert "2 new" in out and "stopped at --limit" in out
    found = records(db)
    science = found["doi:10.1126/science.174.4005.142"]
    assert science.date == "1971-10-01"  # pubdate 1971-10-00: the month is known, the day is not
    assert science.extra["bibcode"] == "1971Sci...174..142S" and science.extra["venue"] == "Science"
    assert science.title.startswith("Cyclic Adenosine 3',5'-Monophosphate")
    gcn = next(rec for rec in found.values() if rec.extra["bibcode"] == "2012GCN..13229...1S")
    assert gcn.date == "2012-01-01" and gcn.authors == ["Sudilovsky, V.", "Rau, A.", "Greiner, J."]
    with open_store(db) as store:
        assert store.sync_state("ads:first_author:\"Sudilovsky\"")["next"] == {"start": 2}


def test_arxiv_atom_answer_of_the_api_manual(replay, db):
    replay.add("/api/query", answer(fixture("arxiv_atom_manual.xml")))
    out = sync_cli(db, "arxiv", "--query", "all:electron", "--limit", "1", "--endpoint",
                   replay.url + "/api/query").output
    assert "1 new" in out and "stopped at --limit" in out  # 1000 results, one per page
    rec = records(db)["arxiv:hep-ex/0307015"]
    assert rec.title == "Multi-Electron Production at High Transverse Momenta in ep Collisions at HERA"
    assert rec.authors == ["H1 Collaboration"] and rec.date == "2003-07-07"
    assert rec.extra["venue"] == "Eur.Phys.J. C31 (2003) 17-29" and rec.extra["category"] == "hep-ex"
    assert rec.abstract.endswith("0.30 ± 0.04 and 0.23 ± 0.04, respectively.")  # TeX read as text


@pytest.mark.parametrize("status", [200, 400])
def test_arxiv_error_feed_is_a_refusal_not_a_paper(replay, db, status):
    """The manual's error answer: a feed whose single entry is the error."""
    replay.add("/api/query", answer(fixture("arxiv_atom_error.xml"), status))
    out = sync_cli(db, "arxiv", "--query", "id:1234.12345", "--endpoint", replay.url + "/api/query",
                   expect=2).output
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: arxiv: ") and last.endswith("incorrect id format for 1234.12345")
    assert records(db) == {}
