"""An interrupted sync (SIGKILL, Ctrl-C, a lost network) resumes with nothing lost and nothing
duplicated: a real `landscape sync` process against the local replay server, killed."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.store import Store, open_store
from landscape.sync import Settings, make_client
from landscape.sync.http import SyncError
from landscape.sync.run import sync_source
from tests.test_sync_replay import FakeClock, Replay, answer, fixture

ROOT = Path(__file__).resolve().parent.parent
CLI = "import sys; from landscape.cli import main; sys.argv[0] = 'landscape'; main()"
TOKEN = {"resumptionToken": "6960524|1001"}


@pytest.fixture
def replay():
    server = Replay()
    yield server
    server.close()


def start_sync(db: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", CLI, "sync", *args, "--db", str(db)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a user's Ctrl-C: the child must not inherit an ignored SIGINT from this test process
        # (something earlier in a full run, e.g. the browser tests' driver, leaves it ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def contents(db: Path) -> tuple:
    """What a sync wrote, without timestamps: records, their sources, keys and citations."""
    with open_store(db) as store:
        assert store.integrity_ok()
        q = store.connection_for_tests.execute
        return (
            q("SELECT id, title, abstract, extra FROM records ORDER BY id").fetchall(),
            q("SELECT record_id, path, format FROM sources ORDER BY 1, 2").fetchall(),
            q("SELECT key, record_id FROM record_keys ORDER BY 1").fetchall(),
            q("SELECT c.citing_id, t.ids, t.record_id FROM citations c JOIN citation_targets t"
              " ON t.id = c.target_id ORDER BY 1, 2").fetchall(),
        )


def test_sigkill_between_pages_resumes_at_the_page_not_committed(replay, db):
    gate = threading.Event()
    replay.add("/oai2", answer(fixture("arxiv_oai_page2.xml"), gate=gate), match=TOKEN)
    replay.add("/oai2", answer(fixture("arxiv_oai_page1.xml")))
    proc = start_sync(db, "arxiv", "--endpoint", replay.url + "/oai2")
    try:
        wait_for(lambda: len(replay.requests) == 2)  # page 1 loaded, page 2 asked for (held)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        gate.set()
    with open_store(db) as store:
        assert [r.id for r in store.iter_records()] == ["arxiv:0801.3931"]
        assert store.sync_state("arxiv")["next"] == {"token": "6960524|1001"}
    result = CliRunner().invoke(main, ["sync", "arxiv", "--endpoint", replay.url + "/oai2", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "resuming where the last run stopped" in result.output
    assert replay.requests[2][1] == {"verb": "ListRecords", **TOKEN}  # page 1 is not fetched again
    records, sources, _, _ = contents(db)
    assert [r[0] for r in records] == ["arxiv:0801.3931", "arxiv:1406.0848"]
    assert len(sources) == 2
    with open_store(db) as store:
        assert store.search_index_ok() and store.sync_state("arxiv")["next"] is None


def test_ctrl_c_stops_in_one_line_and_keeps_what_was_committed(replay, db):
    gate = threading.Event()
    replay.add("/oai2", answer(fixture("arxiv_oai_page2.xml"), gate=gate), match=TOKEN)
    replay.add("/oai2", answer(fixture("arxiv_oai_page1.xml")))
    proc = start_sync(db, "arxiv", "--endpoint", replay.url + "/oai2")
    try:
        wait_for(lambda: len(replay.requests) == 2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        gate.set()
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == (
        "interrupted: the pages committed are kept; run `landscape sync` again to resume")
    with open_store(db) as store:
        assert store.count_records() == 1 and store.sync_state("arxiv")["next"] == {"token": "6960524|1001"}


def test_lost_network_fails_in_one_line_then_resumes(replay, db):
    replay.add("/oai2", answer(b"", 503), match=TOKEN)
    replay.add("/oai2", answer(fixture("arxiv_oai_page1.xml")))
    clock = FakeClock()
    client = make_client("arxiv", Settings(endpoint=replay.url + "/oai2", clock=clock, sleep=clock.sleep))
    with open_store(db) as store:
        try:
            sync_source(store, client)
            raise AssertionError("expected the sync to fail")
        except SyncError as exc:
            assert "no answer after 6 tries (HTTP 503)" in str(exc)
        assert store.count_records() == 1
    replay.routes[0]["answers"] = [answer(fixture("arxiv_oai_page2.xml"))]  # the network is back
    with open_store(db) as store:
        report = sync_source(store, client)
        assert report.resumed and (report.new, report.pages) == (1, 1)
        assert store.count_records() == 2


def inspire_pages(pages: int, per_page: int):
    """INSPIRE answers for a long harvest: the recorded hit, renumbered, each citing the one
    before it (so citations cross page boundaries)."""
    hit = json.loads(fixture("inspire_literature.json").read_text())["hits"]["hits"][0]

    def page(params: dict[str, str]) -> bytes:
        number = int(params.get("page", "1"))
        hits = []
        for i in range(per_page):
            n = (number - 1) * per_page + i
            h = copy.deepcopy(hit)
            meta = h["metadata"]
            meta["control_number"] = 2_000_000 + n
            meta["arxiv_eprints"] = [{"categories": ["hep-ph"], "value": f"2001.{n:05d}"}]
            meta["dois"] = [{"value": f"10.5555/sync.{n}"}]
            meta["titles"] = [{"title": f"Supersymmetry after Run {n}"}]
            meta["references"] = meta["references"][:2] + (
                [{"reference": {"arxiv_eprint": f"2001.{n - 1:05d}"}}] if n else [])
            hits.append(h)
        links = {"next": "more"} if number < pages else {}
        return json.dumps({"hits": {"hits": hits, "total": pages * per_page}, "links": links}).encode()

    return page


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(replay, tmp_path):
    pages, per_page = 16, 40
    replay.add("/api/literature", answer(inspire_pages(pages, per_page)))
    url = replay.url + "/api/literature"
    whole, killed = tmp_path / "whole.db", tmp_path / "killed.db"
    assert start_sync(whole, "inspire", "--query", "t susy", "--endpoint", url).wait(120) == 0
    kills = 0
    for delay in (0.7, 1.1, 1.6):
        proc = start_sync(killed, "inspire", "--query", "t susy", "--endpoint", url)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(60)
    assert kills >= 1
    final = start_sync(killed, "inspire", "--query", "t susy", "--endpoint", url)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert contents(killed) == contents(whole)
    records, sources, _, citations = contents(killed)
    assert len(records) == len(sources) == pages * per_page
    assert len(citations) == pages * per_page * 3 - 1


def test_interrupt_while_a_page_is_written_rolls_back_the_page_and_its_cursor(replay, tmp_path, monkeypatch):
    """Ctrl-C after a page's records are written but before its transaction commits: the page
    and its cursor go together, so the resumed run fetches it again."""
    pages, per_page = 5, 10
    replay.add("/api/literature", answer(inspire_pages(pages, per_page)))
    clock = FakeClock()
    settings = Settings(endpoint=replay.url + "/api/literature", clock=clock, sleep=clock.sleep)
    whole, cut = tmp_path / "whole.db", tmp_path / "cut.db"
    with open_store(whole) as store:
        sync_source(store, make_client("inspire", settings), query="t susy")
    calls = {"n": 0}
    original = Store.add_citations

    def interrupted(self, citing_id, references):
        calls["n"] += 1
        if calls["n"] == per_page * 2 + 5:  # in the middle of the third page
            raise KeyboardInterrupt
        return original(self, citing_id, references)

    monkeypatch.setattr(Store, "add_citations", interrupted)
    with open_store(cut) as store:
        try:
            sync_source(store, make_client("inspire", settings), query="t susy")
            raise AssertionError("expected the interrupt")
        except KeyboardInterrupt:
            pass
        assert store.count_records() == 2 * per_page
        assert store.sync_state("inspire:t susy")["next"] == {"page": 3}
    monkeypatch.setattr(Store, "add_citations", original)
    with open_store(cut) as store:
        assert sync_source(store, make_client("inspire", settings), query="t susy").resumed
    assert contents(cut) == contents(whole)
