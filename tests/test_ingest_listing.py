from landscape.ingest.listing import split_authors
from landscape.ingest.phrases import MAX_WORDS, PhraseSegmenter, _ngrams, _words, attested_in
from landscape.store import is_postgres_url, open_store

from .conftest import LISTING, cli_json, run_cli


def test_listing_gives_exactly_the_papers_by_area(listing_db):
    stats = cli_json("stats", db=listing_db)
    assert stats["papers"] == 460
    assert stats["areas"] == {
        "Astrophysics": 122, "Experimental Physics": 56, "Foundational AI": 162, "Theoretical Physics": 120,
    }


def test_stats_text_lists_areas_by_count_or_in_the_configured_order(listing_db, tmp_path, monkeypatch):
    out = run_cli("stats", db=listing_db).output
    assert out.startswith(
        "460 papers 162 Foundational AI 122 Astrophysics 120 Theoretical Physics 56 Experimental Physics"
    )
    config = tmp_path / "listing.toml"
    config.write_text('area_order = ["Theoretical Physics", "Experimental Physics", "Foundational AI"]\n')
    monkeypatch.setenv("LANDSCAPE_CONFIG", str(config))
    out = run_cli("stats", db=listing_db).output
    assert out.startswith(  # the listing's own line; an area the config leaves out follows by count
        "460 papers 120 Theoretical Physics 56 Experimental Physics 162 Foundational AI 122 Astrophysics"
    )


def test_page_chrome_is_not_a_paper(listing_db):
    titles = {r["title"] for r in cli_json("list", db=listing_db)}
    assert not titles & {"Latest", "All Posts", "Deep Learning + Deep Thinking = Deeper Understanding"}
    assert not any(t.startswith("574 papers") for t in titles)


def test_dates_parsed_and_newest_first(listing_db):
    records = cli_json("list", "--limit", "5", db=listing_db)
    assert records[0]["title"] == "Naturalness and Fisher Information"
    assert records[0]["date"] == "2026-03-02"
    dates = [r["date"] for r in records]
    assert dates == sorted(dates, reverse=True)


def test_et_al_is_a_truncation_not_an_author(listing_db):
    rec = next(r for r in cli_json("list", db=listing_db) if r["title"].startswith("End-to-end Differentiable"))
    assert rec["authors"] == ["Omar Alterkait", "César Jesús-Valls", "Ryo Matsumoto"]
    assert rec["authors_truncated"] is True
    assert not any("et al" in a for r in cli_json("list", db=listing_db) for a in r["authors"])


def test_split_authors():
    assert split_authors("A. B, C D et al.") == (["A. B", "C D"], True)
    assert split_authors("Jesse Thaler") == (["Jesse Thaler"], False)


def test_keyphrase_line_split_into_phrases_and_kept_raw(listing_db):
    rec = cli_json("list", "--limit", "1", db=listing_db)[0]
    assert rec["keyphrase_line"].startswith("fisher information metric naturalness")
    assert "fisher information metric" in rec["keyphrases"]
    assert "information geometry" in rec["keyphrases"]
    assert "quantum field theory" in rec["keyphrases"]
    assert " ".join(rec["keyphrases"]) == rec["keyphrase_line"]


def test_entry_without_keyphrases_is_fine(listing_db):
    missing = [r for r in cli_json("list", db=listing_db) if not r["keyphrase_line"]]
    assert len(missing) == 1
    assert missing[0]["abstract"] and missing[0]["keyphrases"] == []


def test_second_ingest_changes_nothing_and_says_so(listing_db, tmp_path):
    out = run_cli("ingest", LISTING, db=listing_db).output
    assert "0 new, 0 changed, 460 unchanged" in out


def test_filters(listing_db):
    astro = cli_json("list", "--area", "astrophysics", db=listing_db)
    assert len(astro) == 122 and {r["area"] for r in astro} == {"Astrophysics"}
    since = cli_json("list", "--since", "2026-01-01", db=listing_db)
    assert since and all(r["date"] >= "2026-01-01" for r in since)
    by = cli_json("list", "--author", "Jesse Thaler", db=listing_db)
    assert by and all(any("Thaler" in a for a in r["authors"]) for r in by)


def test_store_is_wal_with_fts(listing_db):
    with open_store(listing_db) as store:
        if not is_postgres_url(listing_db):
            assert store.connection_for_tests.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.integrity_ok()
        hits = store.fts_search("stellar streams dark matter")
        # SQLite's BM25 weighs the rarer word first; PostgreSQL's ts_rank has no idf, so a paper
        # saying "dark matter" often can lead there: a stream paper among the first five
        top = hits[:1] if not is_postgres_url(listing_db) else hits[:5]
        assert top and any("stream" in (h["snippet"] + h["title_highlighted"]).lower() for h in top)


def test_every_record_is_searchable_with_its_authors_in_order(listing_db):
    """Ingest indexes records for full-text search after writing them; none is left out."""
    with open_store(listing_db) as store:
        pg = is_postgres_url(listing_db)
        index = "records_search" if pg else "records_fts_docsize"  # PostgreSQL: one tsvector per record
        counts = store.connection_for_tests.execute(
            f"SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM {index}),"
            " (SELECT count(*) FROM search_pending)"
        ).fetchone()
        assert tuple(counts) == (460, 460, 0)
        assert store.search_index_ok()
        rec = next(r for r in cli_json("list", db=listing_db) if len(r["authors"]) > 2)
        indexed = (
            "SELECT authors FROM records_fts_source WHERE id = ?" if pg
            else "SELECT f.authors FROM records_fts f JOIN records r ON r.rowid = f.rowid WHERE r.id = ?"
        )
        authors = store.connection_for_tests.execute(indexed, (rec["id"],)).fetchone()[0]
        assert authors == ", ".join(rec["authors"])


def test_a_split_that_skips_the_text_is_the_split_the_text_gives(listing_db):
    """The segmenter reads a record's own text only when it can change the split. Fitted on
    the listing, the text decides some splits and some lines are split without it; fitted on
    the listing five times over, nothing changes (lines are counted once each). Either way the
    shortcut gives what checking every rare gram against the text gives."""
    with open_store(listing_db) as store:
        rows = list(store.keyphrase_lines_with_phrases())
        texts = store.keyphrase_texts([rid for rid, _, _ in rows])
    lines = [(line, texts[rid]) for rid, line, _ in rows]
    splits = []
    for times in (1, 5):
        segmenter = PhraseSegmenter().fit(lines * times)
        decided = 0
        for line, text in lines:
            words = _words(line)
            own = attested_in(set(_ngrams(words, 2, MAX_WORDS)) - segmenter._common(), text)
            full = list(dict.fromkeys(segmenter._viterbi(words, own)))
            decided += full != list(dict.fromkeys(segmenter._viterbi(words, frozenset())))
            assert segmenter.segment(line, text) == full, line
        assert decided > 0
        assert any(not segmenter.needs_text(line) for line, _ in lines)
        splits.append([segmenter.segment(line, text) for line, text in lines])
    assert splits[0] == splits[1]
