"""Numbered migrations keyed on PRAGMA user_version; each runs in one transaction."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "records",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE records (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('paper', 'talk')),
            title TEXT,
            title_derived INTEGER NOT NULL DEFAULT 0,
            display_title TEXT NOT NULL,
            norm_title TEXT NOT NULL,
            authors_truncated INTEGER NOT NULL DEFAULT 0,
            date TEXT,
            area TEXT,
            area_source TEXT,
            area_probabilities TEXT,
            area_set TEXT,
            abstract TEXT NOT NULL DEFAULT '',
            keyphrase_line TEXT,
            keyphrases_source TEXT,
            summary TEXT,
            extra TEXT NOT NULL DEFAULT '{}',
            content_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX records_norm_title ON records(norm_title);
        CREATE INDEX records_date ON records(date);
        CREATE INDEX records_area ON records(area);
        CREATE TABLE authors (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            key TEXT NOT NULL UNIQUE
        );
        CREATE TABLE authorship (
            record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            author_id INTEGER NOT NULL REFERENCES authors(id),
            PRIMARY KEY (record_id, position)
        );
        CREATE INDEX authorship_author ON authorship(author_id);
        CREATE TABLE keyphrases (
            record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            phrase TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('given', 'predicted')),
            PRIMARY KEY (record_id, position)
        );
        CREATE INDEX keyphrases_phrase ON keyphrases(phrase);
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            format TEXT NOT NULL,
            line INTEGER NOT NULL,
            ingested_at TEXT,
            extra TEXT NOT NULL DEFAULT '{}',
            UNIQUE (record_id, path, line)
        );
        CREATE TABLE sections (
            record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            summary TEXT,
            PRIMARY KEY (record_id, position)
        );
        CREATE VIRTUAL TABLE records_fts USING fts5(
            id UNINDEXED, title, abstract, keyphrases, authors,
            tokenize = 'porter unicode61 remove_diacritics 2'
        );
        """,
    ),
    (
        "enrichment",
        """
        CREATE TABLE build_steps (
            step TEXT PRIMARY KEY,
            signature TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            info TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE embeddings (
            record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (record_id, model)
        );
        CREATE TABLE connections (
            record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            other_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
            score REAL NOT NULL,
            reasons TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (record_id, rank)
        );
        CREATE INDEX connections_other ON connections(other_id);
        CREATE TABLE concepts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT,
            extra TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE concept_aliases (
            alias TEXT PRIMARY KEY,
            concept_id INTEGER NOT NULL REFERENCES concepts(id) ON DELETE CASCADE
        );
        CREATE TABLE record_concepts (
            record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
            concept_id INTEGER NOT NULL REFERENCES concepts(id) ON DELETE CASCADE,
            weight REAL NOT NULL DEFAULT 1.0,
            source TEXT NOT NULL CHECK (source IN ('given', 'predicted', 'text')),
            PRIMARY KEY (record_id, concept_id, source)
        );
        CREATE INDEX record_concepts_concept ON record_concepts(concept_id);
        CREATE TABLE areas (
            name TEXT PRIMARY KEY,
            description TEXT,
            extra TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE topics (
            id INTEGER PRIMARY KEY,
            label TEXT NOT NULL,
            area TEXT,
            size INTEGER NOT NULL,
            description TEXT,
            extra TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE record_topics (
            record_id TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
            topic_id INTEGER NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
            is_outlier INTEGER NOT NULL DEFAULT 0,
            score REAL
        );
        CREATE TABLE map_coords (
            record_id TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
            x REAL NOT NULL,
            y REAL NOT NULL
        );
        CREATE TABLE section_links (
            record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
            section INTEGER NOT NULL,
            rank INTEGER NOT NULL,
            other_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
            score REAL NOT NULL,
            reasons TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (record_id, section, rank)
        );
        CREATE TABLE artifacts (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL,
            updated_at TEXT NOT NULL
        );
        """,
    ),
    (
        "connection_state",
        """
        CREATE TABLE connection_state (
            record_id TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
            content_hash TEXT NOT NULL
        );
        """,
    ),
    (
        "fts_rowid",
        """
        CREATE TABLE fts_copy AS SELECT r.rowid AS rid, f.id, f.title, f.abstract, f.keyphrases, f.authors
            FROM records_fts f JOIN records r ON r.id = f.id;
        DELETE FROM records_fts;
        INSERT INTO records_fts (rowid, id, title, abstract, keyphrases, authors)
            SELECT rid, id, title, abstract, keyphrases, authors FROM fts_copy;
        DROP TABLE fts_copy;
        """,
    ),
    (
        "search_pending",
        """
        CREATE TABLE search_pending (record_rowid INTEGER PRIMARY KEY);
        """,
    ),
    (
        "fts_external_content",
        # the search index keeps no copy of the text: it reads titles, abstracts, keyphrases
        # and authors from this view when it needs them (snippets, highlights, deletes)
        """
        CREATE VIEW records_fts_source AS SELECT
            r.rowid AS record_rowid,
            r.id AS id,
            r.display_title AS title,
            r.abstract || coalesce((
                SELECT group_concat(char(10) || s.title || char(10) || s.text, '') FROM (
                    SELECT title, text FROM sections WHERE record_id = r.id ORDER BY position) s), '')
                AS abstract,
            coalesce(nullif(r.keyphrase_line, ''), (
                SELECT group_concat(phrase, '; ') FROM (
                    SELECT phrase FROM keyphrases WHERE record_id = r.id ORDER BY position)), '')
                AS keyphrases,
            coalesce((
                SELECT group_concat(name, ', ') FROM (
                    SELECT au.name FROM authorship a JOIN authors au ON au.id = a.author_id
                    WHERE a.record_id = r.id ORDER BY a.position)), '')
                AS authors
        FROM records r;
        DROP TABLE records_fts;
        CREATE VIRTUAL TABLE records_fts USING fts5(
            id UNINDEXED, title, abstract, keyphrases, authors,
            content = 'records_fts_source', content_rowid = 'record_rowid',
            tokenize = 'porter unicode61 remove_diacritics 2'
        );
        INSERT INTO records_fts (records_fts) VALUES ('rebuild');
        DELETE FROM search_pending;
        """,
    ),
    (
        "sync_citations",
        # sync cursors (advanced in each page's transaction), every id a service gives a
        # record, and citation links: citing record -> target (a cited work, matched to a
        # record by arXiv id, DOI or normalised title when one is in the corpus)
        """
        CREATE TABLE sync_cursors (
            source TEXT PRIMARY KEY,
            cursor TEXT NOT NULL DEFAULT '{}',
            pages INTEGER NOT NULL DEFAULT 0,
            records INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE record_keys (
            key TEXT PRIMARY KEY,
            record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE
        );
        CREATE INDEX record_keys_record ON record_keys(record_id);
        CREATE TABLE citation_targets (
            id INTEGER PRIMARY KEY,
            record_id TEXT REFERENCES records(id) ON DELETE SET NULL,
            title TEXT,
            ids TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX citation_targets_record ON citation_targets(record_id);
        CREATE TABLE citation_target_keys (
            key TEXT PRIMARY KEY,
            target_id INTEGER NOT NULL REFERENCES citation_targets(id) ON DELETE CASCADE
        );
        CREATE INDEX citation_target_keys_target ON citation_target_keys(target_id);
        CREATE TABLE citations (
            citing_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
            target_id INTEGER NOT NULL REFERENCES citation_targets(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            PRIMARY KEY (citing_id, target_id)
        );
        CREATE INDEX citations_target ON citations(target_id);
        """,
    ),
    (
        "store version",
        """
        CREATE TABLE store_version (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            token TEXT NOT NULL,
            n INTEGER NOT NULL
        );
        INSERT INTO store_version (id, token, n) VALUES (1, lower(hex(randomblob(8))), 1);
        """,
    ),
    (
        "neighbour_graph",
        # one approximate neighbour graph per build: each record's k nearest records (their
        # records.rowid as int64, best first) and cosine similarities (float32), with the content
        # hash it was computed from; connections, topics, bridges and mentions read it
        """
        CREATE TABLE neighbour_graph (
            record_id TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
            content_hash TEXT NOT NULL,
            others BLOB NOT NULL,
            sims BLOB NOT NULL
        );
        """,
    ),
    (
        "browse_keyset",
        # browse pages are read by keyset (a cursor, never OFFSET): an area page in date order
        # and the title order each walk an index from the cursor instead of sorting the store
        """
        CREATE INDEX IF NOT EXISTS records_area_nocase_date ON records(area COLLATE NOCASE, date);
        CREATE INDEX IF NOT EXISTS records_title_nocase ON records(display_title COLLATE NOCASE, id);
        """,
    ),
    (
        "content_hash_index",
        # what changed since a step last ran is a join of every record's id and content hash:
        # read from this index it is an index-only scan instead of one of the whole records table
        # (abstracts included; 101,000 records: count_to_embed 4.1 -> 0.3 s with a cold cache)
        """
        CREATE INDEX IF NOT EXISTS records_id_hash ON records(id, content_hash);
        """,
    ),
    (
        "records_brief_index",
        # the build's other questions about every record (the areas' inputs, the papers' dates for
        # trends) read columns stored after the abstract, so a scan of the table follows each long
        # row's overflow pages; this index answers them alone (101,000 records, warm cache: area
        # inputs 0.5 -> 0.12 s, paper dates 0.35 -> 0.08 s). PostgreSQL keeps long text out of
        # line (TOAST), so its table scans stay narrow and it has no such index.
        """
        CREATE INDEX IF NOT EXISTS records_brief ON records(id, kind, area, area_source, content_hash, date);
        """,
    ),
    (
        "increment_indexes",
        # what a build that adds a few records asks about every record, answered from an index
        # alone instead of a table row per record (at a million records the rows of record
        # concepts, embeddings and the graph are not in the page cache beside a 10 GB build):
        # members per concept (the concepts of 1,000 new papers cover 12.6 of 13.8 million
        # memberships: 29 -> 1.7 s), content hashes of embeddings and graph lists, topic sizes.
        """
        CREATE INDEX IF NOT EXISTS record_concepts_concept_record ON record_concepts(concept_id, record_id);
        DROP INDEX IF EXISTS record_concepts_concept;
        CREATE INDEX IF NOT EXISTS embeddings_model_hash ON embeddings(record_id, model, content_hash);
        CREATE INDEX IF NOT EXISTS neighbour_graph_hash ON neighbour_graph(record_id, content_hash);
        CREATE INDEX IF NOT EXISTS record_topics_topic ON record_topics(topic_id);
        """,
    ),
    (
        "record_marks",
        # what a step last read of each record (concepts, summaries), one row per record: kept as
        # one JSON object, a build that adds 1,000 records to a million read and rewrote all of it
        # (14.7 s of the concepts step); now it reads the rows and writes the changed ones
        """
        CREATE TABLE IF NOT EXISTS record_marks (
            name TEXT NOT NULL,
            record_id TEXT NOT NULL,
            mark TEXT NOT NULL,
            PRIMARY KEY (name, record_id)
        ) WITHOUT ROWID;
        """,
    ),
]
