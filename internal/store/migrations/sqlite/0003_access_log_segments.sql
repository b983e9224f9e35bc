-- The access log as segments: each row holds one batch of events (up to
-- 65,535), encoded column by column with dictionaries for the strings
-- (internal/accesslog/segment.go), instead of one row per event, which
-- cost the DNS server a fifth of its throughput.
--
-- The small summary columns come before data so that reading them does
-- not read the data blob's overflow pages; readers use them to skip
-- segments: first_at and last_at (Unix milliseconds, the earliest and
-- latest event time) for time ranges and retention; events and blocked
-- (how many of them have the action "block"); groups and categories (the
-- sorted distinct values, newline-joined); people and devices (the sorted
-- distinct ids, as uvarint differences; NULL when none); host_grams (a
-- Bloom filter of the hosts' bigrams and trigrams, for host searches).
-- format is the data's encoding. AUTOINCREMENT keeps a pruned segment's
-- id from being reused, since entry ids are built from it.
CREATE TABLE access_log_segments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    first_at   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    events     INTEGER NOT NULL,
    blocked    INTEGER NOT NULL,
    format     INTEGER NOT NULL,
    groups     TEXT,
    categories TEXT,
    people     BLOB,
    devices    BLOB,
    host_grams BLOB,
    data       BLOB NOT NULL
);
-- Retention (last_at < cutoff) and time ranges.
CREATE INDEX access_log_segments_last_at ON access_log_segments (last_at);

-- Warden is not released yet, so no access log needs carrying over: the
-- row-per-event table simply goes.
DROP TABLE access_log;
