-- Console sign-in: sessions, the one-time set-up link for the first
-- administrator, and the last two-factor time step used (so that a code
-- cannot be replayed).
--
-- A session is known by the SHA-256 of its cookie value; the cookie
-- itself is never stored. second_factor says the session passed TOTP (or
-- the role needs none); until then it reaches only the second step.
CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    person_id     INTEGER NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    second_factor BOOLEAN NOT NULL DEFAULT FALSE,
    client_ip     TEXT NOT NULL DEFAULT '',
    user_agent    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_person ON sessions (person_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- One-time links that let the first administrator create their account.
CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

ALTER TABLE accounts ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
