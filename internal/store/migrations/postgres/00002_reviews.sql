-- +goose Up
-- Reviews, their votes, and grants (grant reviews). Times are BIGINT unix
-- microseconds of the store's clock; booleans are 0/1.
CREATE TABLE reviews (
	id                       TEXT PRIMARY KEY,
	type                     TEXT NOT NULL,
	resource                 TEXT NOT NULL,
	dialect                  TEXT NOT NULL DEFAULT '',
	initiator_key            TEXT NOT NULL,
	initiator_issuer         TEXT NOT NULL,
	initiator_subject        TEXT NOT NULL,
	initiator_email          TEXT NOT NULL DEFAULT '',
	initiator_email_verified INTEGER NOT NULL DEFAULT 0,
	initiator_name           TEXT NOT NULL DEFAULT '',
	initiator_source         TEXT NOT NULL DEFAULT '',
	session_id               TEXT NOT NULL DEFAULT '',
	kind                     TEXT NOT NULL,
	access                   TEXT NOT NULL DEFAULT 'null',
	duration_us              BIGINT NOT NULL DEFAULT 0,
	text                     TEXT NOT NULL DEFAULT '',
	digest                   BYTEA,
	state                    TEXT NOT NULL DEFAULT '{}',
	params                   TEXT NOT NULL DEFAULT 'null',
	objects                  TEXT NOT NULL DEFAULT 'null',
	reason                   TEXT NOT NULL DEFAULT '',
	status                   TEXT NOT NULL,
	approvers                TEXT NOT NULL DEFAULT 'null',
	required                 INTEGER NOT NULL,
	created_at               BIGINT NOT NULL,
	expires_at               BIGINT NOT NULL,
	decided_at               BIGINT NOT NULL DEFAULT 0,
	valid_until              BIGINT NOT NULL DEFAULT 0,
	valid_for_us             BIGINT NOT NULL DEFAULT 0,
	consumed_at              BIGINT NOT NULL DEFAULT 0,
	consumed_by              TEXT NOT NULL DEFAULT '',
	revoked_at               BIGINT NOT NULL DEFAULT 0,
	revoked_by               TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reviews_use ON reviews (resource, initiator_key, status, type);
CREATE INDEX reviews_created ON reviews (created_at);

CREATE TABLE review_votes (
	review_id            TEXT NOT NULL REFERENCES reviews (id),
	voter_key            TEXT NOT NULL,
	voter_issuer         TEXT NOT NULL,
	voter_subject        TEXT NOT NULL,
	voter_email          TEXT NOT NULL DEFAULT '',
	voter_email_verified INTEGER NOT NULL DEFAULT 0,
	voter_name           TEXT NOT NULL DEFAULT '',
	voter_source         TEXT NOT NULL DEFAULT '',
	verified_email       TEXT NOT NULL DEFAULT '',
	approve              INTEGER NOT NULL,
	via                  TEXT NOT NULL DEFAULT '',
	comment              TEXT NOT NULL DEFAULT '',
	at                   BIGINT NOT NULL,
	-- One person counts once: by identity key, and by verified email
	-- across issuers.
	UNIQUE (review_id, voter_key)
);
CREATE UNIQUE INDEX review_votes_email ON review_votes (review_id, verified_email) WHERE verified_email <> '';

-- +goose Down
DROP TABLE review_votes;
DROP TABLE reviews;
