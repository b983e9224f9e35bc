-- The block page's two actions, kept for the console's queues: requests
-- to review a block ("this should not be blocked") and reports of
-- unsuitable sites. The block details come from the page's signed token,
-- so they are what Warden decided, not what the client claims.
--
-- device_id and person_id are set to NULL when the device or person is
-- deleted (the request stays, for the record); group_id is the group id
-- as decided, kept as text because the built-in unknown-client policy
-- has no row in groups and a group may be renamed or removed later.

CREATE TABLE review_requests (
    id             INTEGER PRIMARY KEY,
    -- ref is the block page's reference id; one request per block page.
    ref            TEXT NOT NULL UNIQUE,
    created_at     BIGINT NOT NULL,
    -- blocked_at is when the block page was shown.
    blocked_at     BIGINT NOT NULL,
    host           TEXT NOT NULL,
    url            TEXT NOT NULL DEFAULT '',
    category       TEXT NOT NULL DEFAULT '',
    list           TEXT NOT NULL DEFAULT '',
    rule           TEXT NOT NULL DEFAULT '',
    -- reason is the reason the page showed.
    reason         TEXT NOT NULL DEFAULT '',
    group_id       TEXT NOT NULL DEFAULT '',
    policy_version BIGINT NOT NULL DEFAULT 0,
    client_ip      TEXT NOT NULL DEFAULT '',
    device_id      INTEGER REFERENCES devices (id) ON DELETE SET NULL,
    person_id      INTEGER REFERENCES people (id) ON DELETE SET NULL,
    message        TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'approved', 'declined')),
    decided_by     TEXT NOT NULL DEFAULT '',
    decided_at     BIGINT,
    reply          TEXT NOT NULL DEFAULT '',
    -- exception_id is the allow exception an approval created, if any.
    exception_id   INTEGER REFERENCES exceptions (id) ON DELETE SET NULL
);
CREATE INDEX review_requests_queue ON review_requests (status, created_at);
CREATE INDEX review_requests_created ON review_requests (created_at);
CREATE INDEX review_requests_host ON review_requests (host);

CREATE TABLE site_reports (
    id         INTEGER PRIMARY KEY,
    created_at BIGINT NOT NULL,
    -- url is the address as the reporter wrote it; host is derived from it.
    url        TEXT NOT NULL,
    host       TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL DEFAULT '',
    group_id   TEXT NOT NULL DEFAULT '',
    client_ip  TEXT NOT NULL DEFAULT '',
    device_id  INTEGER REFERENCES devices (id) ON DELETE SET NULL,
    person_id  INTEGER REFERENCES people (id) ON DELETE SET NULL,
    -- ref is the block page the report was made from, if any.
    ref        TEXT NOT NULL DEFAULT '',
    status     TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'actioned', 'dismissed')),
    handled_by TEXT NOT NULL DEFAULT '',
    handled_at BIGINT,
    note       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX site_reports_queue ON site_reports (status, created_at);
CREATE INDEX site_reports_created ON site_reports (created_at);
CREATE INDEX site_reports_host ON site_reports (host);
