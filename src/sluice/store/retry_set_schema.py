"""The retry set's and consumer states' tables on each backend: the one part of their SQL that is
written twice (types, collations, `WITHOUT ROWID`).

Apart from retry_set.py so that the SQL both backends share reads on its own; sqlite.py creates
the SQLite tables with the rest of its schema, postgres_schema.py the PostgreSQL ones in a
migration.
"""

RETRY_SET_TABLE_SQLITE = """
CREATE TABLE IF NOT EXISTS retry_set (
    destination TEXT NOT NULL,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    message_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    type TEXT NOT NULL,
    event TEXT,
    received_at INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    user_hash INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_failure INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    request BLOB NOT NULL,
    response BLOB NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (destination, seq, action)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS retry_set_due ON retry_set (destination, state, next_attempt);
CREATE INDEX IF NOT EXISTS retry_set_by_user ON retry_set (destination, user_hash, seq);
CREATE INDEX IF NOT EXISTS retry_set_by_message ON retry_set (message_id);
CREATE TABLE IF NOT EXISTS consumer_states (
    consumer TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    since INTEGER NOT NULL
) WITHOUT ROWID;
DROP TABLE IF EXISTS retrying;
"""

RETRY_SET_TABLE_POSTGRES = """
CREATE TABLE IF NOT EXISTS retry_set (
    destination text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    action text COLLATE "C" NOT NULL,
    message_id text COLLATE "C" NOT NULL,
    source_id text NOT NULL,
    type text NOT NULL,
    event text,
    received_at bigint NOT NULL,
    window_start bigint NOT NULL,
    user_hash bigint NOT NULL,
    state text COLLATE "C" NOT NULL,
    attempts integer NOT NULL,
    first_failure bigint NOT NULL,
    next_attempt bigint NOT NULL,
    updated_at bigint NOT NULL,
    last_error text NOT NULL,
    request bytea NOT NULL,
    response bytea NOT NULL,
    payload bytea NOT NULL,
    PRIMARY KEY (destination, seq, action)
);
CREATE INDEX IF NOT EXISTS retry_set_due ON retry_set (destination, state, next_attempt);
CREATE INDEX IF NOT EXISTS retry_set_by_user ON retry_set (destination, user_hash, seq);
CREATE INDEX IF NOT EXISTS retry_set_by_message ON retry_set (message_id);
CREATE TABLE IF NOT EXISTS consumer_states (
    consumer text COLLATE "C" PRIMARY KEY,
    state text NOT NULL,
    detail text NOT NULL,
    since bigint NOT NULL
);
DROP TABLE IF EXISTS retrying;
"""
