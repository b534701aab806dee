package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
)

// A connection reuses the decoded column definitions of its previous
// result set when the upstream sends the same bytes again (readColumns),
// and the lineage of a statement it ran before, or ran with other integer
// literals (lineagecache.go). The attack: statements whose column
// definitions are byte for byte the same but whose values must be masked
// differently (a computed column over name, then over ssn, under the same
// alias), and statements that differ only in an integer literal that
// picks a column (ELT), one after the other on one connection. Masking
// must follow each statement, never what it shares with the one before.
func TestConnectionCachesDoNotCarryMasking(t *testing.T) {
	t.Parallel()
	_, db, tb := maskEnv(t)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	steps := []struct {
		query string
		want  any // nil: NULL
	}{
		{"SELECT upper(name) AS x FROM %s", "ADA"},
		{"SELECT upper(ssn) AS x FROM %s", "****"},
		{"SELECT upper(name) AS x FROM %s", "ADA"},
		{"SELECT upper(ssn) AS x FROM %s", "****"},
		{"SELECT upper(ssn) AS x FROM %s WHERE id = 1", "****"},
		{"SELECT upper(name) AS x FROM %s WHERE id = 1", "ADA"},
		{"SELECT ssn AS name FROM %s", "****"},
		{"SELECT name FROM %s", "ada"},
		{"SELECT pin AS x FROM %s", nil},
		{"SELECT id AS x FROM %s", "1"},
		{"SELECT ELT(1, name, ssn) AS x FROM %s WHERE id = 1", "****"},
		{"SELECT ELT(2, name, ssn) AS x FROM %s WHERE id = 1", "****"},
		{"SELECT ELT(1, name, 'n') AS x FROM %s WHERE id = 1", "ada"},
		{"SELECT ELT(1, name, ssn) AS x FROM %s WHERE id = 2 OR id = 1", "****"},
		{"SELECT upper(name) AS x FROM %s WHERE id = 1 LIMIT 1", "ADA"},
		{"SELECT upper(ssn) AS x FROM %s WHERE id = 1 LIMIT 1", "****"},
		{"SELECT upper(name) AS x FROM %s WHERE id = 1 LIMIT 2", "ADA"},
		{"SELECT IF(1, name, ssn) AS x FROM %s WHERE id = 1", "****"},
		{"SELECT IF(0, name, ssn) AS x FROM %s WHERE id = 1", "****"},
		{"SELECT x FROM (SELECT ssn AS x FROM %s WHERE id = 1) d", "****"},
		{"SELECT x FROM (SELECT ssn AS x FROM %s WHERE id = 2 OR id = 1) d", "****"},
		{"SELECT contact FROM %s_v WHERE id = 1", "****"},
		{"SELECT contact FROM %s_v WHERE id = 2 OR id = 1", "****"},
		{"SELECT name FROM %s_v WHERE id = 1", "ada"},
	}
	for i, s := range steps {
		var got sql.NullString
		q := fmt.Sprintf(s.query, tb)
		if err := conn.QueryRowContext(context.Background(), q).Scan(&got); err != nil {
			t.Fatalf("step %d (%s): %v", i, q, err)
		}
		switch {
		case s.want == nil && got.Valid:
			t.Errorf("step %d (%s) = %q, want NULL", i, q, got.String)
		case s.want != nil && (!got.Valid || got.String != s.want):
			t.Errorf("step %d (%s) = %v, want %q", i, q, got, s.want)
		}
	}
}
