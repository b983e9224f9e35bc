-- Warden's first schema: settings, the change counter, policy groups and
-- their rules, network zones, people, devices, and category lists.
-- Times are BIGINT Unix milliseconds (UTC). Written to carry over to
-- PostgreSQL table for table (INTEGER PRIMARY KEY -> BIGINT identity,
-- BLOB -> BYTEA).

-- School-wide settings that are not bootstrap configuration: the school's
-- name and time zone, the group that unknown clients get.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every change to policy, lists, people or devices adds a revision; the
-- newest id is the policy version that decisions report, and a running
-- server reloads when it moves.
CREATE TABLE revisions (
    id      INTEGER PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    summary TEXT NOT NULL
);

-- Policy groups: who gets which filtering.
CREATE TABLE groups (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    mode            TEXT NOT NULL CHECK (mode IN ('filter', 'approved')),
    safe_search     TEXT NOT NULL CHECK (safe_search IN ('off', 'moderate', 'strict')),
    default_action  TEXT NOT NULL CHECK (default_action IN ('allow', 'block', 'alert')),
    education_first BOOLEAN NOT NULL DEFAULT FALSE,
    position        INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- The action a group takes for each category; a category without a row
-- takes the taxonomy's starting action for pupils (fail safe).
CREATE TABLE group_categories (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    category TEXT NOT NULL,
    action   TEXT NOT NULL CHECK (action IN ('allow', 'block', 'alert')),
    PRIMARY KEY (group_id, category)
);

-- Allow and block exceptions: a domain (covering its subdomains) or a URL
-- prefix. A NULL group applies to every group.
CREATE TABLE exceptions (
    id         INTEGER PRIMARY KEY,
    group_id   TEXT REFERENCES groups (id) ON DELETE CASCADE,
    action     TEXT NOT NULL CHECK (action IN ('allow', 'block')),
    pattern    TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX exceptions_unique ON exceptions (COALESCE(group_id, ''), action, pattern);

-- Network zones: named sets of networks, such as the staff room. A zone
-- may give clients in it a group when nothing else identifies them.
CREATE TABLE zones (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    group_id    TEXT REFERENCES groups (id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE zone_networks (
    zone_id TEXT NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    cidr    TEXT NOT NULL,
    PRIMARY KEY (zone_id, cidr)
);

-- Time and place rules of a group, tried in position order before its
-- category actions. Lists of categories, domains, days and zones are
-- space-separated and validated by the policy package.
CREATE TABLE rules (
    id         INTEGER PRIMARY KEY,
    group_id   TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL DEFAULT 0,
    name       TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('allow', 'block', 'alert')),
    categories TEXT NOT NULL DEFAULT '',
    domains    TEXT NOT NULL DEFAULT '',
    days       TEXT NOT NULL DEFAULT '',
    start_time TEXT NOT NULL DEFAULT '',
    end_time   TEXT NOT NULL DEFAULT '',
    zones      TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Membership rules: which group a person joins, by kind and year group
-- (pupils) or role (staff). The first matching rule by position wins.
CREATE TABLE group_rules (
    id          INTEGER PRIMARY KEY,
    position    INTEGER NOT NULL,
    group_id    TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    person_kind TEXT NOT NULL CHECK (person_kind IN ('pupil', 'staff', 'visitor', 'parent')),
    min_year    INTEGER,
    max_year    INTEGER,
    role        TEXT NOT NULL DEFAULT ''
);

-- People: pupils (with year group), staff (with role), visitors, and
-- parents or carers (linked to pupils in guardians). External keys from
-- the school's MIS let a re-import update the same person.
CREATE TABLE people (
    id                 INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('pupil', 'staff', 'visitor', 'parent')),
    mis_id             TEXT,
    upn                TEXT,
    admission_no       TEXT,
    legal_forename     TEXT NOT NULL DEFAULT '',
    preferred_forename TEXT NOT NULL DEFAULT '',
    surname            TEXT NOT NULL DEFAULT '',
    year_group         INTEGER,
    reg_group          TEXT NOT NULL DEFAULT '',
    role               TEXT NOT NULL DEFAULT '',
    username           TEXT,
    email              TEXT,
    group_id           TEXT REFERENCES groups (id) ON DELETE SET NULL,
    group_manual       BOOLEAN NOT NULL DEFAULT FALSE,
    active             BOOLEAN NOT NULL DEFAULT TRUE,
    source             TEXT NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX people_upn ON people (upn) WHERE upn IS NOT NULL;
CREATE UNIQUE INDEX people_mis_id ON people (kind, mis_id) WHERE mis_id IS NOT NULL;
CREATE UNIQUE INDEX people_admission_no ON people (kind, admission_no) WHERE admission_no IS NOT NULL;
CREATE UNIQUE INDEX people_username ON people (username) WHERE username IS NOT NULL;
CREATE INDEX people_email ON people (email) WHERE email IS NOT NULL;
CREATE INDEX people_group ON people (group_id);

CREATE TABLE guardians (
    parent_id    INTEGER NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    pupil_id     INTEGER NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    relationship TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (parent_id, pupil_id)
);

-- Devices: school-owned or personal, identified by IP, MAC, or a device
-- token (only its SHA-256 is stored).
CREATE TABLE devices (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('school', 'personal')),
    owner_id         INTEGER REFERENCES people (id) ON DELETE SET NULL,
    group_id         TEXT REFERENCES groups (id) ON DELETE SET NULL,
    ip               TEXT,
    mac              TEXT,
    token_hash       TEXT,
    token_created_at BIGINT,
    notes            TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX devices_ip ON devices (ip) WHERE ip IS NOT NULL;
CREATE UNIQUE INDEX devices_mac ON devices (mac) WHERE mac IS NOT NULL;
CREATE UNIQUE INDEX devices_token ON devices (token_hash) WHERE token_hash IS NOT NULL;

-- Category lists. The current entries live in list_versions (the newest
-- version is in force); earlier versions are kept for rollback. Entries
-- of mandatory lists are never shown or exported.
CREATE TABLE lists (
    id              TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    source_category TEXT NOT NULL DEFAULT '',
    categories      TEXT NOT NULL,
    mandatory       BOOLEAN NOT NULL DEFAULT FALSE,
    format          TEXT NOT NULL,
    origin          TEXT NOT NULL DEFAULT '',
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    version         INTEGER NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE list_versions (
    list_id     TEXT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    domains     INTEGER NOT NULL,
    urls        INTEGER NOT NULL,
    hashes      INTEGER NOT NULL,
    malformed   INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    data        BLOB NOT NULL,
    imported_at BIGINT NOT NULL,
    imported_by TEXT NOT NULL,
    PRIMARY KEY (list_id, version)
);
