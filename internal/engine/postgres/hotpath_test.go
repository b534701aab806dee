package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// TestQueryTextOwnsItsBytes: onQuery keeps a Query's text without copying
// it, which is right only while pgproto3 decodes the text into a string of
// its own rather than one over its read buffer (reused by the next
// Receive). A pgproto3 that changes this fails here.
func TestQueryTextOwnsItsBytes(t *testing.T) {
	buf := []byte("SELECT 1\x00")
	var q pgproto3.Query
	if err := q.Decode(buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXX")
	if q.String != "SELECT 1" {
		t.Fatalf("the decoded text changed with the read buffer: %q", q.String)
	}
}
