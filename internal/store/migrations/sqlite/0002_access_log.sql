-- The access log: every DNS query and web request the filters decided.
-- Rows name devices and people by id without foreign keys, so that the
-- log outlives a device or person being removed. Times are Unix
-- milliseconds. Indexes for the console's viewer come with it; this one
-- serves time ranges and retention.
CREATE TABLE access_log (
    id             INTEGER PRIMARY KEY,
    at             BIGINT NOT NULL,
    source         TEXT NOT NULL,
    client_ip      TEXT NOT NULL,
    device_id      BIGINT,
    person_id      BIGINT,
    group_id       TEXT NOT NULL,
    host           TEXT NOT NULL,
    url            TEXT NOT NULL DEFAULT '',
    qtype          TEXT NOT NULL DEFAULT '',
    action         TEXT NOT NULL,
    alert          BOOLEAN NOT NULL DEFAULT FALSE,
    category       TEXT NOT NULL DEFAULT '',
    list_id        TEXT NOT NULL DEFAULT '',
    rule           TEXT NOT NULL DEFAULT '',
    policy_version BIGINT NOT NULL,
    latency_us     BIGINT NOT NULL,
    upstream       TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX access_log_at ON access_log (at);
