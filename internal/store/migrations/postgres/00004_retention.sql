-- +goose Up
-- Retention (recording.retention) deletes a chain's old events up to a
-- signed checkpoint and leaves one signed mark per chain saying how far it
-- deleted, so that `audit verify` can tell retention from a deletion.
CREATE TABLE retention_marks (
	writer    TEXT        PRIMARY KEY,
	through   BIGINT      NOT NULL,
	hash      BYTEA       NOT NULL,
	time      TIMESTAMPTZ NOT NULL,
	signature BYTEA       NOT NULL,
	key_id    TEXT        NOT NULL
);

-- +goose Down
DROP TABLE retention_marks;
