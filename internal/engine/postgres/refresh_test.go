package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The state bound into digests is read again exactly when an operation may
// have changed it, and only then.
func TestStateRefresh(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	simple, ext := pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeDescribeExec
	steps := []struct {
		sql     string
		mode    pgx.QueryExecMode
		path    string // search_path the operation was decided under; "" = don't check
		refresh bool   // a read of the state follows it
	}{
		{"SELECT 1", simple, `"$user", public`, false},
		{"SELECT 1", ext, "", false},
		{"BEGIN", simple, "", false},
		{"SELECT 1", simple, "", false},
		{"COMMIT", simple, "", false},
		{"SET search_path = a, public", simple, "", true},
		{"SELECT 2", simple, "a, public", false},
		{"BEGIN", simple, "", false},
		{"SET LOCAL search_path = b", simple, "", true},
		{"SELECT 3", simple, "b", true}, // the transaction may still revert it
		{"COMMIT", simple, "b", true},
		{"SELECT 4", simple, "a, public", false},
		{"BEGIN", ext, "", false},
		{"SET search_path = c", ext, "", true},
		{"ROLLBACK", ext, "c", true},
		{"SELECT 5", ext, "a, public", false},
		{"SELECT pg_catalog.set_config('search_path', 'd', false)", simple, "", true},
		{"SELECT 6", simple, "d", false},
		{"BEGIN", simple, "", false},
		{"SET search_path = f", simple, "", true},
		{"SELECT 1/0", simple, "f", true},
		{"ROLLBACK", simple, "f", true},
		{"SELECT 8", simple, "d", false},
		{"RESET ALL", simple, "", true},
		{"SELECT 7", simple, `"$user", public`, false},
	}
	for i, s := range steps {
		before := ev.e.refreshes.Load()
		if _, err := c.Exec(ctx, s.sql, s.mode); (err != nil) != (s.sql == "SELECT 1/0") {
			t.Fatalf("step %d %s: %v", i, s.sql, err)
		}
		if got := ev.e.refreshes.Load() - before; got != 0 != s.refresh {
			t.Fatalf("step %d %s: %d refreshes, want refresh=%v", i, s.sql, got, s.refresh)
		}
		if s.path == "" {
			continue
		}
		ops := ev.g.OpsOf(s.sql)
		if got := ops[len(ops)-1].State.SearchPath; got != s.path {
			t.Fatalf("step %d %s: decided under search_path %q, want %q", i, s.sql, got, s.path)
		}
	}
}
