package postgres

import (
	"context"
	"testing"

	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5"
)

// SQL-level EXECUTE is classified as the statement it runs.
func TestSQLPrepared(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	tbl := "pp_" + randHex(3)
	if _, err := c.Exec(ctx, "CREATE TABLE "+tbl+" (id int)"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		sql  string
		want sqlkind.Kind
		fail bool // the upstream refuses it
	}{
		{"PREPARE r(int) AS SELECT $1 + 1", sqlkind.Read, false},
		{"EXECUTE r(6)", sqlkind.Read, false},
		{"PREPARE w AS DELETE FROM " + tbl, sqlkind.Write, false},
		{"EXECUTE w", sqlkind.Write, false},
		{"EXECUTE nope", sqlkind.Unknown, true},
		{"DEALLOCATE r", sqlkind.Read, false},
		{"EXECUTE r(1)", sqlkind.Unknown, true},
		// defined and run in one text: order decides, so unknown
		{"PREPARE r2 AS SELECT 1; EXECUTE r2", sqlkind.Unknown, false},
		// a name defined twice: the upstream keeps the first
		{"PREPARE w AS SELECT 1", sqlkind.Read, true},
		{"EXECUTE w", sqlkind.Unknown, false},
		{"DEALLOCATE ALL", sqlkind.Read, false},
		{"EXECUTE w", sqlkind.Unknown, true},
		{"PREPARE w AS SELECT 2", sqlkind.Read, false},
		{"EXECUTE w", sqlkind.Read, false},
		{"DISCARD ALL", sqlkind.Privilege, false},
		{"EXECUTE w", sqlkind.Unknown, true},
	}
	for _, s := range steps {
		_, err := c.Exec(ctx, s.sql, pgx.QueryExecModeSimpleProtocol)
		if (err != nil) != s.fail {
			t.Fatalf("%s: %v", s.sql, err)
		}
		if got := ev.g.Op(t, s.sql).Class; got.Kind != s.want {
			t.Fatalf("%s: kind %v (%s), want %v", s.sql, got.Kind, got.Reason, s.want)
		}
	}
}

// EXECUTE of a protocol-level statement, and a protocol-level name
// prepared twice.
func TestProtocolPreparedNames(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	if _, err := c.Prepare(ctx, "ps", "SELECT $1::int + 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "EXECUTE ps(1)", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if got := ev.g.Op(t, "EXECUTE ps(1)").Class; got.Kind != sqlkind.Read {
		t.Fatalf("kind %v (%s), want read", got.Kind, got.Reason)
	}
	// A second Parse of a live name fails upstream; the gateway must not
	// believe the new text.
	pc := c.PgConn()
	if _, err := pc.Prepare(ctx, "ps", "SELECT 2", nil); err == nil {
		t.Fatal("a second Parse of a live name succeeded")
	}
	res := pc.ExecPrepared(ctx, "ps", [][]byte{[]byte("1")}, nil, nil).Read()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := ev.g.Op(t, "SELECT 2").Class; got.Kind != sqlkind.Unknown {
		t.Fatalf("kind %v, want unknown for a conflicting name", got.Kind)
	}
}
