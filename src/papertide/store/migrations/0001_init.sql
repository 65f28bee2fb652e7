-- papertide schema v1: papers, their versions and sources, embeddings, and key/value state.
CREATE TABLE papers (
    id               INTEGER PRIMARY KEY,          -- stable document key used by every index
    arxiv_id         TEXT NOT NULL UNIQUE,         -- canonical, without version
    version          INTEGER NOT NULL DEFAULT 1,
    title            TEXT NOT NULL,
    abstract         TEXT NOT NULL DEFAULT '',
    authors          TEXT NOT NULL DEFAULT '[]',   -- JSON array, in order
    categories       TEXT NOT NULL DEFAULT '',     -- space-joined, primary first
    primary_category TEXT,
    submitted        TEXT,                         -- ISO dates
    updated          TEXT,
    listed           TEXT,
    comments         TEXT,
    journal_ref      TEXT,
    doi              TEXT,
    submitter        TEXT,
    license          TEXT,
    code_urls        TEXT NOT NULL DEFAULT '[]',   -- JSON array
    has_code         INTEGER NOT NULL DEFAULT 0,
    source           TEXT NOT NULL,                -- the source of the current metadata (all sources: paper_sources)
    hf_upvotes       INTEGER,
    featured_on      TEXT,
    content_hash     TEXT NOT NULL,                -- of the metadata: re-ingesting the same record changes nothing
    text_hash        TEXT NOT NULL,                -- of the embedded text: stale embeddings are found by it
    seq              INTEGER NOT NULL              -- change sequence: indexes catch up from their watermark
);
CREATE INDEX papers_seq ON papers(seq);
CREATE INDEX papers_listed ON papers(listed);
CREATE INDEX papers_doi ON papers(doi) WHERE doi IS NOT NULL;
CREATE INDEX papers_featured ON papers(featured_on) WHERE featured_on IS NOT NULL;

CREATE TABLE paper_versions (
    paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    version  INTEGER NOT NULL,
    created  TEXT,
    size     TEXT,
    PRIMARY KEY (paper_id, version)
) WITHOUT ROWID;

CREATE TABLE paper_sources (
    paper_id   INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    source     TEXT NOT NULL,
    PRIMARY KEY (paper_id, source)
) WITHOUT ROWID;

CREATE TABLE embeddings (
    paper_id  INTEGER PRIMARY KEY REFERENCES papers(id) ON DELETE CASCADE,
    model     TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    vector    BLOB NOT NULL                        -- float32, little-endian, L2-normalised
);
CREATE INDEX embeddings_seq ON embeddings(seq);

CREATE TABLE state (
    key   TEXT PRIMARY KEY,
    value TEXT
) WITHOUT ROWID;
