-- papertide schema v5: nothing to do on SQLite. The number is taken by PostgreSQL's title/abstract weighted
-- full-text vector (migrations_pg/0005_weighted_tsv.sql); both backends share one schema version, and
-- SQLite's lexical index (tantivy, index/) is built outside the database.
SELECT 1;
