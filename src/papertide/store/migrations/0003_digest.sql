-- papertide schema v3: e-mail digests - subscribers (double opt-in), editions, and one delivery row per
-- (subscriber, edition) that makes a digest run a resumable job.
CREATE TABLE subscribers (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,            -- stored lower-cased
    status        TEXT NOT NULL DEFAULT 'pending'  -- pending (not confirmed) | confirmed | unsubscribed
                  CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
    frequency     TEXT NOT NULL DEFAULT 'daily' CHECK (frequency IN ('daily', 'weekly')),
    categories    TEXT NOT NULL DEFAULT '',        -- space-joined, sorted; '' = every category
    keywords      TEXT NOT NULL DEFAULT '[]',      -- JSON array of lower-cased phrases, sorted; [] = no filter
    max_papers    INTEGER NOT NULL DEFAULT 10,
    for_you       INTEGER NOT NULL DEFAULT 0,      -- include the member's "for you" papers (once that feed exists)
    user_id       INTEGER REFERENCES users(id) ON DELETE SET NULL,
    link_key      TEXT NOT NULL,                   -- bound into every signed link; a new one voids old links
    created_at    TEXT NOT NULL,
    confirm_sent_at TEXT,                          -- the one confirmation e-mail of the current opt-in
    confirmed_at  TEXT,
    unsubscribed_at TEXT
);
CREATE INDEX subscribers_due ON subscribers(status, frequency);

CREATE TABLE digest_editions (
    id         INTEGER PRIMARY KEY,
    frequency  TEXT NOT NULL,
    day        TEXT NOT NULL,                      -- the edition's key day: the day (daily), the ISO week's Monday (weekly)
    created_at TEXT NOT NULL,
    UNIQUE (frequency, day)
);

-- pending -> sent | failed | skipped (nothing new to send, or no longer subscribed). A run claims pending
-- rows by writing its id and a lease in an IMMEDIATE transaction; a killed run's leases expire.
CREATE TABLE digest_deliveries (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    edition_id    INTEGER NOT NULL REFERENCES digest_editions(id) ON DELETE CASCADE,
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    permanent     INTEGER NOT NULL DEFAULT 0,      -- a failure the server called permanent (5xx): never retried
    reason        TEXT,
    claimed_by    TEXT,
    lease_until   REAL,                            -- unix seconds
    next_attempt  REAL NOT NULL DEFAULT 0,         -- unix seconds: backoff after a temporary failure
    sent_at       TEXT,
    papers        TEXT,                            -- JSON arXiv ids of the message that was sent
    PRIMARY KEY (subscriber_id, edition_id)
) WITHOUT ROWID;
CREATE INDEX digest_deliveries_todo ON digest_deliveries(edition_id, status, next_attempt);

-- What each subscriber already received: a paper is never sent to the same address twice.
CREATE TABLE digest_received (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    paper_id      INTEGER NOT NULL,
    edition_id    INTEGER NOT NULL,
    PRIMARY KEY (subscriber_id, paper_id)
) WITHOUT ROWID;
