-- +goose Up
-- countersign's first schema (SQLite). Times are INTEGER unix nanoseconds,
-- UTC, so that ORDER BY and comparisons are numeric. JSON columns hold
-- TEXT; byte columns (hashes, signatures, event data) are BLOBs given back
-- byte for byte.

CREATE TABLE identities (
	issuer         TEXT    NOT NULL,
	subject        TEXT    NOT NULL,
	email          TEXT    NOT NULL DEFAULT '',
	email_verified INTEGER NOT NULL DEFAULT 0,
	name           TEXT    NOT NULL DEFAULT '',
	groups         TEXT    NOT NULL DEFAULT '[]',
	roles          TEXT    NOT NULL DEFAULT '[]',
	source         TEXT    NOT NULL DEFAULT '',
	auth_time      INTEGER NOT NULL DEFAULT 0,
	last_login     INTEGER NOT NULL,
	PRIMARY KEY (issuer, subject)
);

-- A token row holds the SHA-256 of the secret, never the secret.
CREATE TABLE tokens (
	id         TEXT    PRIMARY KEY,
	hash       BLOB    NOT NULL UNIQUE,
	issuer     TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	identity   TEXT    NOT NULL,
	scopes     TEXT    NOT NULL DEFAULT '[]',
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER
);
CREATE INDEX tokens_owner ON tokens (issuer, subject, created_at);
CREATE INDEX tokens_created ON tokens (created_at);

CREATE TABLE admin_events (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	time   INTEGER NOT NULL,
	actor  TEXT    NOT NULL,
	action TEXT    NOT NULL,
	detail TEXT    NOT NULL DEFAULT ''
);

-- One row per recording chain (one per gateway process), in creation order.
CREATE TABLE writers (
	writer     TEXT    PRIMARY KEY,
	created_at INTEGER NOT NULL
);

-- The recording's events. Every operation of every session appends here, so
-- an insert must touch as little as possible: the table is clustered on its
-- key (WITHOUT ROWID: one b-tree) and has no secondary index (a query by
-- session or time reads a writer's chain in order); the writer is
-- registered in the same transaction, so no foreign key is checked per row.
CREATE TABLE events (
	writer    TEXT    NOT NULL,
	seq       INTEGER NOT NULL,
	time      INTEGER NOT NULL,
	type      TEXT    NOT NULL,
	session   TEXT    NOT NULL DEFAULT '',
	resource  TEXT    NOT NULL DEFAULT '',
	actor     TEXT    NOT NULL DEFAULT '',
	data      BLOB,
	prev_hash BLOB    NOT NULL,
	hash      BLOB    NOT NULL,
	PRIMARY KEY (writer, seq)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
	writer    TEXT    NOT NULL REFERENCES writers (writer),
	seq       INTEGER NOT NULL,
	hash      BLOB    NOT NULL,
	time      INTEGER NOT NULL,
	signature BLOB    NOT NULL,
	key_id    TEXT    NOT NULL,
	final     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (writer, seq)
);

-- +goose Down
-- Forward only: countersign never runs Down. Kept so that goose's parser
-- sees a complete file.
SELECT 'forward only';
