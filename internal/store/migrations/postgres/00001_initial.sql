-- +goose Up
-- countersign's first schema (PostgreSQL). Times are timestamptz
-- (microseconds, UTC). Event data is BYTEA, not jsonb: the recording's
-- hashes cover the exact bytes, which jsonb would re-encode.

CREATE TABLE identities (
	issuer         TEXT        NOT NULL,
	subject        TEXT        NOT NULL,
	email          TEXT        NOT NULL DEFAULT '',
	email_verified BOOLEAN     NOT NULL DEFAULT false,
	name           TEXT        NOT NULL DEFAULT '',
	groups         JSONB       NOT NULL DEFAULT '[]',
	roles          JSONB       NOT NULL DEFAULT '[]',
	source         TEXT        NOT NULL DEFAULT '',
	auth_time      TIMESTAMPTZ,
	last_login     TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (issuer, subject)
);

-- A token row holds the SHA-256 of the secret, never the secret.
CREATE TABLE tokens (
	id         TEXT        PRIMARY KEY,
	hash       BYTEA       NOT NULL UNIQUE,
	issuer     TEXT        NOT NULL,
	subject    TEXT        NOT NULL,
	identity   JSONB       NOT NULL,
	scopes     JSONB       NOT NULL DEFAULT '[]',
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	revoked_at TIMESTAMPTZ
);
CREATE INDEX tokens_owner ON tokens (issuer, subject, created_at);
CREATE INDEX tokens_created ON tokens (created_at);

CREATE TABLE admin_events (
	id     BIGSERIAL   PRIMARY KEY,
	time   TIMESTAMPTZ NOT NULL,
	actor  TEXT        NOT NULL,
	action TEXT        NOT NULL,
	detail TEXT        NOT NULL DEFAULT ''
);

-- One row per recording chain (one per gateway process), in creation order.
CREATE TABLE writers (
	writer     TEXT        PRIMARY KEY,
	created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE events (
	writer    TEXT        NOT NULL REFERENCES writers (writer),
	seq       BIGINT      NOT NULL,
	time      TIMESTAMPTZ NOT NULL,
	type      TEXT        NOT NULL,
	session   TEXT        NOT NULL DEFAULT '',
	resource  TEXT        NOT NULL DEFAULT '',
	actor     TEXT        NOT NULL DEFAULT '',
	data      BYTEA,
	prev_hash BYTEA       NOT NULL,
	hash      BYTEA       NOT NULL,
	PRIMARY KEY (writer, seq)
);

CREATE TABLE checkpoints (
	writer    TEXT        NOT NULL REFERENCES writers (writer),
	seq       BIGINT      NOT NULL,
	hash      BYTEA       NOT NULL,
	time      TIMESTAMPTZ NOT NULL,
	signature BYTEA       NOT NULL,
	key_id    TEXT        NOT NULL,
	final     BOOLEAN     NOT NULL DEFAULT false,
	PRIMARY KEY (writer, seq)
);

-- +goose Down
-- Forward only: countersign never runs Down.
SELECT 'forward only';
