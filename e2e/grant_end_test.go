package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// grantEndCases are the two ways a grant ends while a write runs under
// it, for both engines' grant end tests: on time (a grant short enough to
// run out during the write) or revoked; why is how the client is told.
var grantEndCases = []struct {
	name   string
	grant  string // --for
	revoke bool
	why    string
}{
	{"runs out", "6s", false, "ran out"},
	{"revoked", "1h", true, "was revoked"},
}

// TestGrantEndCancelsRunningStatement: a write runs under a grant, and the
// grant ends while PostgreSQL still executes it (a real pg_sleep(30)): on
// time, or by `countersign grants revoke`. The statement is cancelled
// upstream, the client is told why, nothing of it is committed, the next
// write is held for review again, and the webhooks
// announce the grant's start and end.
func TestGrantEndCancelsRunningStatement(t *testing.T) {
	t.Parallel()
	for _, tc := range grantEndCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := pgDatabase(t)
			pgExec(t, db, "CREATE TABLE audit_marks (note text)")
			hooks := newHookReceiver(t)
			g, alice, bob := startGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db},
				"webhooks:\n  - url: "+hooks.srv.URL+"/hook\n    format: json\n")

			id := grant(t, g, alice, bob, "pg-app", "write", tc.grant, "e2e grant end")

			marker := uniqueName("slow")
			stmt := "INSERT INTO audit_marks SELECT '" + marker + "' FROM pg_sleep(30)"
			run := startPsql(t, g.pgConnString("pg-app", "alice", alice), stmt)
			waitFor(t, 30*time.Second, "the slow write to run on PostgreSQL", func() bool {
				select {
				case <-run.done:
					t.Fatalf("psql ended before the write ran under grant %s:\n%s", id, run.output())
				default:
				}
				return pgInt(t, db, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%"+marker+"%' AND pid <> pg_backend_pid()") == 1
			})
			if tc.revoke {
				g.mustCLI(alice, "grants", "revoke", id)
			}
			got, code := run.wait(t, 60*time.Second)
			if code == 0 {
				t.Fatalf("the write under grant %s completed although the grant ended while it ran:\n%s", id, got)
			}
			for _, want := range []string{"canceling statement", "grant " + id + " " + tc.why} {
				if !strings.Contains(got, want) {
					t.Errorf("psql's output lacks %q:\n%s", want, got)
				}
			}
			if n := pgInt(t, db, "SELECT count(*) FROM audit_marks"); n != 0 {
				t.Fatalf("the cancelled write left %d row(s)", n)
			}

			// A write after the grant's end needs a review again (mode wait:
			// it is held). The same live session's next operation is refused
			// likewise (internal/guard's TestGrantEndInterruptsSessions).
			again := startPsql(t, g.pgConnString("pg-app", "alice", alice), "INSERT INTO audit_marks VALUES ('"+marker+"-after')")
			waitFor(t, 30*time.Second, "the write after the grant's end to wait for approval", func() bool {
				return strings.Contains(again.output(), "waiting for approval of review")
			})

			hooks.await(t, "grant.started", id)
			hooks.await(t, "grant.ended", id) // the sweeper's, or the revocation's
		})
	}
}

// hookReceiver is a webhook receiver in the test process.
type hookReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []struct{ event, review string }
	raw  []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct {
			Event  string `json:"event"`
			Review struct {
				ID string `json:"id"`
			} `json:"review"`
		}
		_ = json.Unmarshal(body, &p)
		h.mu.Lock()
		h.seen = append(h.seen, struct{ event, review string }{p.Event, p.Review.ID})
		h.raw = append(h.raw, string(body))
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// await waits (bounded) until the receiver got the event about the review.
func (h *hookReceiver) await(t *testing.T, event, id string) {
	t.Helper()
	waitFor(t, 60*time.Second, "webhook "+event+" of "+id, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, s := range h.seen {
			if s.event == event && s.review == id {
				return true
			}
		}
		return false
	})
}

// TestReviewsShowEstimate: an approver sees the planner's estimate of the
// rows a held write would change; a write calling a function outside the
// read-only allow-list shows "no estimate", and the estimate ran nothing:
// neither statement reached the table, and the trap function never ran.
func TestReviewsShowEstimate(t *testing.T) {
	t.Parallel()
	db := pgDatabase(t)
	pgExec(t, db,
		"CREATE TABLE stock (id int PRIMARY KEY, qty int)",
		"INSERT INTO stock SELECT g, 0 FROM generate_series(1, 1000) g",
		"ANALYZE stock",
		"CREATE SEQUENCE side",
		`CREATE FUNCTION bump(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM nextval('public.side'); RETURN $1; END $$`)
	g, alice, bob := startGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db, Mode: "reject"})

	cases := []struct {
		name, stmt, want string
	}{
		{"plain update", "UPDATE stock SET qty = qty + 1 WHERE id <= 200 AND 'MARK' <> ''", "about "},
		{"trap function", "UPDATE stock SET qty = bump(1) WHERE 'MARK' <> ''", "no estimate: the statement calls bump"},
	}
	for _, tc := range cases {
		marker := uniqueName("est")
		stmt := strings.ReplaceAll(tc.stmt, "MARK", marker)
		out, code := startPsql(t, g.pgConnString("pg-app", "alice", alice), stmt).wait(t, 30*time.Second)
		if code == 0 {
			t.Fatalf("%s: the write ran without approval:\n%s", tc.name, out)
		}
		id := pendingReview(t, g, bob, marker)
		show := g.mustCLI(bob, "reviews", "show", id)
		if !strings.Contains(show, tc.want) {
			t.Errorf("%s: reviews show %s lacks %q:\n%s", tc.name, id, tc.want, show)
		}
	}
	if n := pgInt(t, db, "SELECT count(*) FROM stock WHERE qty <> 0"); n != 0 {
		t.Fatalf("an estimate changed %d row(s)", n)
	}
	if n := pgInt(t, db, "SELECT CASE WHEN is_called THEN 1 ELSE 0 END FROM side"); n != 0 {
		t.Fatal("the trap function ran while the review was shown")
	}
}

// awaitText waits (bounded) until a delivery's body contains s.
func (h *hookReceiver) awaitText(t *testing.T, s string) {
	t.Helper()
	waitFor(t, 60*time.Second, "a webhook delivery containing "+s, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, b := range h.raw {
			if strings.Contains(b, s) {
				return true
			}
		}
		return false
	})
}
