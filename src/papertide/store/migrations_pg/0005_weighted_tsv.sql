-- papertide schema v5 (PostgreSQL): the full-text vector weights its lexemes by field, title 'A' and
-- abstract 'B', so the lexical ranker (index/pg.py) can take the papers holding a word in their title
-- first ('word:A', a tsquery weight restriction) when it cannot score every paper that holds the word.
-- A generated column's expression cannot be altered: the column is dropped (its GIN index papers_tsv with
-- it) and added again, in one ALTER TABLE so the table is rewritten once and every row is written with
-- STORAGE MAIN (0001_init.sql: the vector in the row). The migration runs in one transaction with its
-- schema_migrations record (PostgresStore._migrate), so a failure leaves schema v4 as it was; the rewrite
-- holds an ACCESS EXCLUSIVE lock on papers meanwhile (29 s at 74,728 papers, busy machine). lexical_terms
-- (0001) reads tsv by name at REFRESH and its document frequencies are unchanged: nothing to redo there.
DROP INDEX IF EXISTS papers_tsv;
ALTER TABLE papers
    DROP COLUMN IF EXISTS tsv,
    ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, title), 'A')
        || setweight(to_tsvector('english'::regconfig, abstract), 'B')) STORED,
    ALTER COLUMN tsv SET STORAGE MAIN;
CREATE INDEX papers_tsv ON papers USING gin(tsv);
ANALYZE papers;  -- statistics of the new column, for the planner
