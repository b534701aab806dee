-- +goose Up
-- Retention (recording.retention) deletes a chain's old events up to a
-- signed checkpoint and leaves one signed mark per chain saying how far it
-- deleted, so that `audit verify` can tell retention from a deletion.
CREATE TABLE retention_marks (
	writer    TEXT    PRIMARY KEY,
	through   INTEGER NOT NULL,
	hash      BLOB    NOT NULL,
	time      INTEGER NOT NULL,
	signature BLOB    NOT NULL,
	key_id    TEXT    NOT NULL
);

-- +goose Down
DROP TABLE retention_marks;
