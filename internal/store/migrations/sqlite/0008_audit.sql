-- The audit log: every console action and sign-in, for the headteacher
-- and the DSL. Append-only: the triggers refuse changes and deletions,
-- and each row carries an HMAC (under a key from the master key) of the
-- previous row's and its own content, so a row changed, removed or
-- inserted out of band breaks the chain; audit_head records the last
-- row, so rows cut from the end are found too. Rows name people by
-- id without a foreign key, so the log outlives them.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        BIGINT NOT NULL,
    person_id BIGINT,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT '',
    client_ip TEXT NOT NULL DEFAULT '',
    outcome   TEXT NOT NULL DEFAULT 'ok',
    mac       TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_person ON audit_log (person_id, at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- The chain's head: the last row's id and MAC (the next row chains from
-- these, not from whatever row is last in the table, so rows cut from the
-- end leave a gap), and a MAC of both.
CREATE TABLE audit_head (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    last_id  BIGINT NOT NULL,
    last_mac TEXT NOT NULL,
    mac      TEXT NOT NULL
);
