package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
	gomy "github.com/go-sql-driver/mysql"
)

// decideHook is the real guard with an optional hook run after each Decide,
// before the engine acts on the verdict: what happens to a grant between a
// decision and the operation's start.
type decideHook struct {
	guard.Guard
	after atomic.Pointer[func(*guard.Session, *guard.Operation, guard.Verdict)]
}

func (h *decideHook) Decide(ctx context.Context, s *guard.Session, op *guard.Operation) guard.Verdict {
	v := h.Guard.Decide(ctx, s, op)
	if f := h.after.Load(); f != nil {
		(*f)(s, op, v)
	}
	return v
}

// grantFor makes an approved write grant of who on the resource.
func (re *realEnv) grantFor(t *testing.T, who identity.Identity, resource string, d time.Duration) review.Review {
	t.Helper()
	ctx := context.Background()
	g, err := re.svc.Create(ctx, review.Request{Type: review.TypeGrant, Resource: resource, Initiator: who,
		Access: []string{"write"}, Duration: d, Reason: "grant end test"})
	if err != nil {
		t.Fatal(err)
	}
	if g, err = re.svc.Approve(ctx, g.ID, apiActor(person("carol", "dba-leads")), ""); err != nil {
		t.Fatal(err)
	}
	return g
}

// Invariant 7 on MySQL: a write runs under a grant, and the grant ends
// while MariaDB still executes it (a real SLEEP(30)): on time, or revoked.
// The statement is killed upstream, the client's ERR 1317 names the grant,
// nothing of it lands, and the session's next write needs a review again.
func TestRealGrantEndKillsRunningWrite(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		duration time.Duration
		revoke   bool
		prepared bool // COM_STMT_EXECUTE instead of COM_QUERY
		why      string
	}{
		{"runs out", 5 * time.Second, false, false, "ran out"},
		{"revoked", time.Hour, true, false, "was revoked"},
		{"revoked, prepared", time.Hour, true, true, "was revoked"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("my-grant-end-%d", i)
			re := newRealEnv(t, realResource(name, "reject", nil))
			table := scratchTable(t, "gend")
			alice := person("alice", "engineers")
			g := re.grantFor(t, alice, name, tc.duration)
			ctx := context.Background()
			conn, err := re.login(t, alice, name).Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()

			slow := "INSERT INTO " + table + " (id, name) SELECT 3, SLEEP(30)"
			var args []any
			if tc.prepared {
				slow = "INSERT INTO " + table + " (id, name) SELECT ?, SLEEP(30)"
				args = []any{3}
			}
			done := make(chan error, 1)
			go func() { _, err := conn.ExecContext(ctx, slow, args...); done <- err }()
			if tc.revoke {
				waitFor(t, func() bool {
					select {
					case err := <-done:
						t.Fatalf("the slow write ended before it was seen running: %v", err)
					default:
					}
					return runningUpstream(t, table)
				})
				if _, err := re.svc.RevokeGrant(ctx, g.ID, apiActor(alice)); err != nil {
					t.Fatal(err)
				}
			}
			err = <-done
			var me *gomy.MySQLError
			if !errors.As(err, &me) || me.Number != erQueryInterrupted || me.SQLState != [5]byte{'7', '0', '1', '0', '0'} {
				t.Fatalf("the write under grant %s ended with %v; want ERROR 1317 (70100)", g.ID, err)
			}
			if want := "grant " + g.ID + " " + tc.why; !strings.Contains(me.Message, want) {
				t.Errorf("the client's error %q does not say %q", me.Message, want)
			}
			if n := countRows(t, table, "id = 3"); n != 0 {
				t.Fatalf("the killed write left %d row(s)", n)
			}

			// The same session's next write is decided anew: no grant, so
			// it is refused with a review id (mode reject) and runs nothing.
			_, err = conn.ExecContext(ctx, "UPDATE "+table+" SET name = 'after' WHERE id = 1")
			if reviewIDIn(t, err) == "" {
				t.Fatalf("the write after the grant's end: %v", err)
			}
			if got := nameOf(t, table, 1); got != "ada" {
				t.Fatalf("the write after the grant's end ran: name = %q", got)
			}
		})
	}
}

// An operation allowed under a grant that ends after the decision but
// before the operation reaches the upstream is withdrawn (grant_ended):
// there was nothing running to kill, so it must not start.
func TestRealGrantEndWithdrawsDecidedWrite(t *testing.T) {
	t.Parallel()
	re := newRealEnv(t, realResource("my-grant-gap", "reject", nil))
	table := scratchTable(t, "ggap")
	alice := person("alice", "engineers")
	g := re.grantFor(t, alice, "my-grant-gap", time.Hour)
	update := "UPDATE " + table + " SET name = 'late' WHERE id = 1"
	hook := func(s *guard.Session, op *guard.Operation, v guard.Verdict) {
		if op.Text != update || v.GrantID != g.ID {
			return
		}
		// The grant is revoked right after the guard allowed the write;
		// the hook returns once the guard told the session.
		before := s.GrantEnds()
		if _, err := re.svc.RevokeGrant(context.Background(), g.ID, apiActor(alice)); err != nil {
			t.Error(err)
			return
		}
		waitFor(t, func() bool { return s.GrantEnds() != before })
	}
	re.hook.after.Store(&hook)
	db := re.login(t, alice, "my-grant-gap")
	_, err := db.Exec(update)
	if err == nil || !strings.Contains(err.Error(), "grant that allowed this operation ended before it ran") {
		t.Fatalf("a write whose grant ended before it ran: %v", err)
	}
	if got := nameOf(t, table, 1); got != "ada" {
		t.Fatalf("the withdrawn write ran: name = %q", got)
	}
	// A refusal's event is not waited for before the client's answer.
	waitFor(t, func() bool { return re.stored(t, update, `"code":"grant_ended"`) })
}

// runningUpstream reports whether MariaDB executes a statement on table
// for a connection other than the asking one.
func runningUpstream(t *testing.T, table string) bool {
	t.Helper()
	// In its SLEEP: a COM_STMT_PREPARE of the text shows in the process
	// list too, before the gateway has decided its execution.
	return rootCount(t, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE ? AND STATE = 'User sleep'",
		"%"+table+"%SLEEP(30)%") > 0
}

func countRows(t *testing.T, table, where string) int {
	t.Helper()
	return rootCount(t, "SELECT COUNT(*) FROM "+testDB+"."+table+" WHERE "+where)
}

// rootCount runs a counting query directly on MariaDB, as root.
func rootCount(t *testing.T, query string, args ...any) int {
	t.Helper()
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
