-- Sage coordinator store, version 1. Felts are stored as 0x-hex text, amounts as decimal text,
-- times as Unix milliseconds.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    client            TEXT NOT NULL,
    client_job_id     TEXT NOT NULL,
    spec              TEXT NOT NULL,
    spec_type         TEXT NOT NULL,
    spec_size         INTEGER NOT NULL,
    state             TEXT NOT NULL,
    payment           TEXT,
    deadline          INTEGER,
    escrow_spec_hash  TEXT,
    worker            TEXT,
    fence             INTEGER NOT NULL DEFAULT 0,
    lease_until_ms    INTEGER,
    attempts          INTEGER NOT NULL DEFAULT 0,
    assigned_on_chain INTEGER NOT NULL DEFAULT 0,
    proof_hash        TEXT,
    output_commitment TEXT,
    version           INTEGER NOT NULL DEFAULT 0,
    seq               INTEGER NOT NULL DEFAULT 0,
    api_key           INTEGER,
    idempotency_key   TEXT,
    created_ms        INTEGER NOT NULL,
    updated_ms        INTEGER NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state, created_ms);
CREATE UNIQUE INDEX jobs_by_idempotency ON jobs (api_key, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE transitions (
    job_id  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    state   TEXT NOT NULL,
    at_ms   INTEGER NOT NULL,
    tx      TEXT,
    detail  TEXT,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    rate_per_min INTEGER NOT NULL,
    quota       INTEGER,
    used        INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);

CREATE TABLE workers (
    address      TEXT PRIMARY KEY,
    public_key   TEXT NOT NULL,
    tier         TEXT NOT NULL,
    capacity     INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    completed    INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    prove_ms_sum INTEGER NOT NULL DEFAULT 0,
    work_sum     TEXT NOT NULL DEFAULT '0'
);

-- Every chain transaction, written before it is sent (idempotency key), reconciled on restart.
CREATE TABLE outbox (
    key        TEXT PRIMARY KEY,
    job_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    status     TEXT NOT NULL,
    tx         TEXT,
    error      TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX outbox_by_status ON outbox (status, created_ms);

CREATE TABLE cursors (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE blobs (
    sha256     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
