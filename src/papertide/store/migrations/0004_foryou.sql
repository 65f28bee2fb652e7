-- papertide schema v4: the "for you" feed - papers a member marked "not interested" (the per-user
-- model's explicit negatives), and each member's blend between "for you" and trending.
CREATE TABLE not_interested (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper_id   INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, paper_id)
);
-- 0 = pure "for you" order, 1 = pure trending order (rank/recommend.py blend_with_trending).
ALTER TABLE users ADD COLUMN foryou_trending REAL NOT NULL DEFAULT 0.2;
