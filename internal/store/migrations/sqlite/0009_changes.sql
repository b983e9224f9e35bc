-- Change control (the DfE filtering standards: changes are risk assessed,
-- logged and approved by leadership). Every filtering change made in the
-- console is a row here: who proposed it, why, its risk assessment, the
-- change itself (payload, JSON) and as people read it (summary, diff),
-- whether it loosens protection for pupils, and what became of it. A
-- loosening change waits for a leadership role other than its author; a
-- tightening one is applied at once and logged the same way.
-- revision_id is the revision that applied it; reverts_id the change it
-- undoes; review_request_id the block-page request it answers.
CREATE TABLE changes (
    id                 INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('add-exception', 'remove-exception', 'set-category', 'set-safe-search', 'set-mode', 'add-rule', 'remove-rule',
                                              'set-default-action', 'set-education-first', 'put-zone', 'delete-zone')),
    group_id           TEXT,
    payload            TEXT NOT NULL,
    summary            TEXT NOT NULL,
    diff               TEXT NOT NULL,
    loosens            BOOLEAN NOT NULL,
    for_pupils         BOOLEAN NOT NULL,
    reason             TEXT NOT NULL,
    risk               TEXT NOT NULL,
    risk_level         TEXT NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
    status             TEXT NOT NULL CHECK (status IN ('proposed', 'applied', 'rejected', 'failed')),
    proposed_by        TEXT NOT NULL,
    proposed_by_person BIGINT,
    proposed_at        BIGINT NOT NULL,
    decided_by         TEXT NOT NULL DEFAULT '',
    decided_by_person  BIGINT,
    decided_at         BIGINT,
    decision_note      TEXT NOT NULL DEFAULT '',
    revision_id        BIGINT,
    reverts_id         BIGINT REFERENCES changes (id),
    review_request_id  BIGINT REFERENCES review_requests (id) ON DELETE SET NULL
);
CREATE INDEX changes_status ON changes (status, proposed_at);
