package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestCopyNeedsWriteGrant drives COPY through the gateway with real
// clients under a policy that reviews writes: psql's \copy out is a read
// and runs; \copy in is refused without a write grant (its rows arrive
// after the decision, so no review could show them to an approver) and no
// review is created; under a write grant \copy in and pgx's CopyFrom load
// their rows, and each session goes on in step afterwards.
func TestCopyNeedsWriteGrant(t *testing.T) {
	t.Parallel()
	db := pgDatabase(t)
	pgExec(t, db, "CREATE TABLE items (id int PRIMARY KEY, note text)", "INSERT INTO items VALUES (1, 'one'), (2, 'two')")
	g, alice, bob := startGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db})
	conn := g.pgConnString("pg-app", "alice", alice)
	dir := t.TempDir()
	wait := time.Minute

	out := filepath.Join(dir, "out.tsv")
	if o, code := startPsql(t, conn, `\copy items TO '`+out+`'`).wait(t, wait); code != 0 {
		t.Fatalf("\\copy to: exit %d: %s", code, o)
	}
	if b, _ := os.ReadFile(out); string(b) != "1\tone\n2\ttwo\n" {
		t.Fatalf("\\copy to wrote %q", b)
	}

	in := filepath.Join(dir, "in.tsv")
	if err := os.WriteFile(in, []byte("3\tthree\n4\tfour\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, code := startPsql(t, conn, `\copy items FROM '`+in+`'`, "SELECT 'still in step'").wait(t, wait)
	if code == 0 || !strings.Contains(o, "needs a write grant") || !strings.Contains(o, "countersign grants request pg-app") {
		t.Fatalf("\\copy from without a grant: exit %d: %s", code, o)
	}
	if n := pgInt(t, db, "SELECT count(*) FROM items"); n != 2 {
		t.Fatalf("a refused COPY stored rows: %d", n)
	}
	if rs := listReviews(t, g, bob, "--status", "pending"); len(rs) != 0 {
		t.Fatalf("a refused COPY created reviews an approver would approve blind: %+v", rs)
	}

	grantWrite(t, g, alice, bob, "pg-app")
	if o, code := startPsql(t, conn, `\copy items FROM '`+in+`'`, "SELECT count(*) FROM items").wait(t, wait); code != 0 || !strings.Contains(o, "COPY 2") || !strings.Contains(o, " 4\n") {
		t.Fatalf("\\copy from under a write grant: exit %d: %s", code, o)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := pgx.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows := make([][]any, 10000)
	for i := range rows {
		rows[i] = []any{int32(100 + i), fmt.Sprintf("row %d", i)}
	}
	n, err := c.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id", "note"}, pgx.CopyFromRows(rows))
	if err != nil || n != int64(len(rows)) {
		t.Fatalf("pgx CopyFrom under a write grant: %d rows, %v", n, err)
	}
	// The session is in step in both protocols after the COPY.
	var count int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM items WHERE id >= $1", 100).Scan(&count); err != nil || count != int64(len(rows)) {
		t.Fatalf("extended query after CopyFrom: %d, %v", count, err)
	}
	if err := c.QueryRow(ctx, "SELECT count(*) FROM items", pgx.QueryExecModeSimpleProtocol).Scan(&count); err != nil || count != int64(len(rows))+4 {
		t.Fatalf("simple query after CopyFrom: %d, %v", count, err)
	}
	if n := pgInt(t, db, "SELECT count(*) FROM items"); n != int64(len(rows))+4 {
		t.Fatalf("PostgreSQL holds %d rows, want %d", n, len(rows)+4)
	}
}
