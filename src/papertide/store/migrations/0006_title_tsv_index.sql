-- papertide schema v6: nothing to do on SQLite. The number is taken by PostgreSQL's index of the titles'
-- full-text vectors (migrations_pg/0006_title_tsv_index.sql); both backends share one schema version.
SELECT 1;
