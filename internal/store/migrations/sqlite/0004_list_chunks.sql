-- A list's entries are stored in chunks of at most 64 KiB instead of one
-- blob per version. SQLite reads a blob that spills over many pages into
-- one buffer of its whole size, and its allocator keeps such a buffer
-- mapped after use: a 10 MB list cost 16 MB of resident memory for the
-- life of the process. size keeps the whole length, so a reader can
-- allocate once.

CREATE TABLE list_version_chunks (
    list_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (list_id, version, seq),
    FOREIGN KEY (list_id, version) REFERENCES list_versions (list_id, version) ON DELETE CASCADE
);

ALTER TABLE list_versions ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
UPDATE list_versions SET size = length(data);

WITH RECURSIVE parts (list_id, version, seq, off, size) AS (
    SELECT list_id, version, 0, 1, size FROM list_versions
    UNION ALL
    SELECT list_id, version, seq + 1, off + 65536, size FROM parts WHERE off + 65536 <= size
)
INSERT INTO list_version_chunks (list_id, version, seq, data)
SELECT p.list_id, p.version, p.seq, substr(v.data, p.off, 65536)
FROM parts p JOIN list_versions v ON v.list_id = p.list_id AND v.version = p.version;

ALTER TABLE list_versions DROP COLUMN data;
