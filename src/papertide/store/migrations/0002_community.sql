-- papertide schema v2: the community side of the site - accounts, votes, libraries, submissions,
-- curation by admins, and the counters that rate limits use.
ALTER TABLE papers ADD COLUMN votes INTEGER NOT NULL DEFAULT 0;      -- upvotes by our users (count of votes rows)
ALTER TABLE papers ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;     -- hidden by an admin
ALTER TABLE papers ADD COLUMN merged_into TEXT;                      -- arxiv_id this duplicate was merged into
-- A paper's day on the full feed, covering what the trending score reads (a month of arXiv is ~25k rows).
CREATE INDEX papers_day ON papers(coalesce(listed, submitted), hidden, votes, hf_upvotes, featured_on);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,           -- stored lower-cased
    name           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,                  -- argon2id
    is_admin       INTEGER NOT NULL DEFAULT 0,
    api_token_hash TEXT UNIQUE,                    -- sha256 of the user's API token; the token itself is never stored
    created_at     TEXT NOT NULL
);

CREATE TABLE votes (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper_id   INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, paper_id)
) WITHOUT ROWID;
CREATE INDEX votes_paper ON votes(paper_id);

CREATE TABLE collections (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE collection_items (
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    paper_id      INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    added_at      TEXT NOT NULL,
    PRIMARY KEY (collection_id, paper_id)
) WITHOUT ROWID;
CREATE INDEX collection_items_paper ON collection_items(paper_id);

-- A paper submitted to the daily page by a member; the first submission of a paper features it that day.
CREATE TABLE submissions (
    paper_id   INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day        TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (paper_id, user_id)
) WITHOUT ROWID;
CREATE INDEX submissions_user ON submissions(user_id);

-- Fixed-window counters for rate limits, shared by every web worker that uses this database.
CREATE TABLE rate_limits (
    key     TEXT NOT NULL,
    window  INTEGER NOT NULL,                      -- start of the window, unix seconds
    hits    INTEGER NOT NULL,
    PRIMARY KEY (key, window)
) WITHOUT ROWID;
