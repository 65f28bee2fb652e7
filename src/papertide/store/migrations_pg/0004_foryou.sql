-- papertide schema v4 (PostgreSQL): "not interested" marks and the for-you / trending blend per member.
CREATE TABLE not_interested (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper_id   BIGINT NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, paper_id)
);
ALTER TABLE users ADD COLUMN foryou_trending DOUBLE PRECISION NOT NULL DEFAULT 0.2;
