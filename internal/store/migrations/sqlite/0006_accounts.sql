-- Sign-in credentials. An account belongs to a person in the directory:
-- staff with a console role, or anyone (pupils too) with credentials for
-- the web proxy only (role ''). Deleting the person deletes the account.
--
-- password_hash is an argon2id PHC string; password_set_at starts the
-- yearly change the school's policy asks for. failed_logins counts
-- consecutive failures and locked_until (Unix ms, 0 = not locked) holds a
-- temporary lockout. totp_secret is sealed with the master key (the
-- console enrols it); totp_enabled_at is NULL until enrolment completes.
CREATE TABLE accounts (
    person_id       INTEGER PRIMARY KEY REFERENCES people (id) ON DELETE CASCADE,
    role            TEXT NOT NULL DEFAULT ''
                    CHECK (role IN ('', 'dsl', 'deputy-dsl', 'headteacher', 'leadership', 'it', 'staff', 'governor')),
    password_hash   TEXT NOT NULL,
    password_set_at BIGINT NOT NULL,
    must_change     BOOLEAN NOT NULL DEFAULT FALSE,
    totp_secret     BLOB,
    totp_enabled_at BIGINT,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until    BIGINT NOT NULL DEFAULT 0,
    last_login_at   BIGINT,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX accounts_role ON accounts (role) WHERE role <> '';
