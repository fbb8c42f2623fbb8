-- laserd schema, version 1. Times are ISO 8601 UTC strings ending in Z.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    username        TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    full_name       TEXT    NOT NULL DEFAULT '',
    password_hash   TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('admin', 'user', 'guest')),
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
    email_verified  INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    last_login_at   TEXT
);
CREATE UNIQUE INDEX users_username_nocase ON users (username COLLATE NOCASE);
CREATE UNIQUE INDEX users_email_nocase ON users (email COLLATE NOCASE);

-- One row per login (a refresh-token family). Its signing key signs that login's access and
-- refresh tokens, so revoking the row kills every token of the login at once.
CREATE TABLE logins (
    id              TEXT    PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    signing_key     BLOB    NOT NULL,
    refresh_hash    TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    last_used_at    TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    revoked_at      TEXT,
    revoke_reason   TEXT,
    client_ip       TEXT    NOT NULL DEFAULT '',
    user_agent      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX logins_user ON logins (user_id);

CREATE TABLE api_keys (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    prefix          TEXT    NOT NULL,
    key_hash        TEXT    NOT NULL UNIQUE,
    role            TEXT    NOT NULL CHECK (role IN ('admin', 'user', 'guest')),
    created_at      TEXT    NOT NULL,
    expires_at      TEXT,
    last_used_at    TEXT,
    revoked_at      TEXT
);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- Single-use tokens for password reset and email verification; only hashes are kept.
CREATE TABLE user_tokens (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose         TEXT    NOT NULL CHECK (purpose IN ('password_reset', 'verify_email')),
    token_hash      TEXT    NOT NULL UNIQUE,
    email           TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    used_at         TEXT
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose);

CREATE TABLE projects (
    id              INTEGER PRIMARY KEY,
    owner_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    laser_json      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX projects_owner ON projects (owner_id);

CREATE TABLE files (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('gcode', 'image', 'svg')),
    size            INTEGER NOT NULL,
    sha256          TEXT    NOT NULL,
    stored_name     TEXT    NOT NULL UNIQUE,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'processing', 'ready', 'failed')),
    progress        REAL    NOT NULL DEFAULT 0,
    error           TEXT,
    stats_json      TEXT,
    laser_json      TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    processed_at    TEXT
);
CREATE INDEX files_project ON files (project_id);
CREATE INDEX files_status ON files (status);

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    file_id         INTEGER REFERENCES files (id) ON DELETE SET NULL,
    user_id         INTEGER REFERENCES users (id) ON DELETE SET NULL,
    file_name       TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'waiting_start', 'running', 'paused',
                        'completed', 'failed', 'cancelled', 'interrupted')),
    lines_total     INTEGER NOT NULL DEFAULT 0,
    lines_sent      INTEGER NOT NULL DEFAULT 0,
    lines_acked     INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    elapsed_s       REAL    NOT NULL DEFAULT 0,
    error           TEXT,
    pause_reason    TEXT,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX jobs_state ON jobs (state);
CREATE INDEX jobs_user ON jobs (user_id);

-- Audit and event log: who did what, readable by admins.
CREATE TABLE audit (
    id              INTEGER PRIMARY KEY,
    at              TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    actor_id        INTEGER,
    actor           TEXT    NOT NULL DEFAULT '',
    target          TEXT    NOT NULL DEFAULT '',
    client_ip       TEXT    NOT NULL DEFAULT '',
    request_id      TEXT    NOT NULL DEFAULT '',
    details_json    TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_event ON audit (event);

-- Every mail message laserd sends (or would send) is recorded here.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    created_at      TEXT    NOT NULL,
    to_addr         TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    kind            TEXT    NOT NULL DEFAULT '',
    sent_at         TEXT,
    transport       TEXT    NOT NULL DEFAULT 'log',
    error           TEXT
);
