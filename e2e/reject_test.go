package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// review is the part of the API's review JSON the tests read.
type review struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Status string `json:"status"`
	Text   string `json:"text"`
	Kind   string `json:"kind"`
}

// listReviews returns `reviews list --json` as the holder of token sees it.
func listReviews(t *testing.T, g *gateway, token string, args ...string) []review {
	t.Helper()
	out := g.mustCLI(token, append([]string{"reviews", "list", "--json"}, args...)...)
	var v struct {
		Reviews []review `json:"reviews"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("reviews list --json printed what is not the expected JSON: %v\n%s", err, out)
	}
	return v.Reviews
}

// pendingReview waits until the gateway lists a pending review whose text
// contains marker, as the approver sees it, and returns its id.
func pendingReview(t *testing.T, g *gateway, token, marker string) string {
	t.Helper()
	var id string
	waitFor(t, 30*time.Second, "a pending review of a statement containing "+marker, func() bool {
		for _, r := range listReviews(t, g, token, "--status", "pending") {
			if strings.Contains(r.Text, marker) {
				id = r.ID
				return true
			}
		}
		return false
	})
	return id
}

// TestSelfApprovalRefusedAndRejectedWriteNeverRuns attacks segregation of
// duties through the CLI (the initiator approves their own review) and
// proves from PostgreSQL's own statement log that a rejected write never
// reached the server.
func TestSelfApprovalRefusedAndRejectedWriteNeverRuns(t *testing.T) {
	t.Parallel()
	db, pglog := pgLoggedDatabase(t, "CREATE TABLE accounts (id int PRIMARY KEY, balance int)", "INSERT INTO accounts VALUES (1, 100)")
	g := newGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db})
	alice := g.token("alice", "engineers")
	carol := g.token("carol", "engineers", "dba-leads") // a creator who is also an approver
	bob := g.token("bob", "dba-leads")
	g.start()

	// A read with a marker proves the log does record this database's
	// statements, so the absence below means something.
	readMarker := uniqueName("read_marker")
	if out, code := startPsql(t, g.pgConnString("pg-app", "alice", alice),
		"SELECT '"+readMarker+"' AS m").wait(t, 30*time.Second); code != 0 {
		t.Fatalf("a read through the gateway failed (exit %d):\n%s", code, out)
	}

	// Self-approval: carol may approve in general, but not her own write.
	selfMarker := uniqueName("self")
	selfRun := startPsql(t, g.pgConnString("pg-app", "carol", carol),
		"UPDATE accounts SET balance = 1 WHERE id = 1 AND '"+selfMarker+"' <> ''")
	selfID := pendingReview(t, g, bob, selfMarker)
	out, stderr, code := g.cli(carol, "reviews", "approve", selfID)
	if code == 0 {
		t.Fatalf("carol approved her own review %s (exit 0): %s", selfID, out)
	}
	if !strings.Contains(stderr, "cannot") {
		t.Errorf("self-approval refused without saying why: %q", stderr)
	}
	if st := reviewStatus(t, g, bob, selfID); st != "pending" {
		t.Fatalf("after a refused self-approval review %s is %q, want pending", selfID, st)
	}
	g.mustCLI(bob, "reviews", "reject", selfID, "--comment", "self-approval attempt")
	if out, code := selfRun.wait(t, 30*time.Second); code == 0 || !strings.Contains(out, selfID) {
		t.Errorf("the initiator of rejected review %s got exit %d and output:\n%s\nwant an error naming the review", selfID, code, out)
	}

	// A write by alice that bob rejects.
	marker := uniqueName("rejected")
	run := startPsql(t, g.pgConnString("pg-app", "alice", alice),
		"UPDATE accounts SET balance = 0 WHERE id = 1 AND '"+marker+"' <> ''")
	id := pendingReview(t, g, bob, marker)
	g.mustCLI(bob, "reviews", "reject", id, "--comment", "no")
	out, code = run.wait(t, 30*time.Second)
	if code == 0 {
		t.Fatalf("a rejected write succeeded:\n%s", out)
	}
	if !strings.Contains(out, id) || !strings.Contains(strings.ToLower(out), "reject") {
		t.Errorf("the client's error does not say that review %s was rejected:\n%s", id, out)
	}
	if st := reviewStatus(t, g, bob, id); st != "rejected" {
		t.Errorf("review %s is %q after rejection, want rejected", id, st)
	}

	if n := pgInt(t, db, "SELECT balance FROM accounts WHERE id = 1"); n != 100 {
		t.Fatalf("the balance is %d after two rejected writes, want 100", n)
	}
	stmts := pglog.statements(t, db)
	sawRead := false
	for _, s := range stmts {
		sawRead = sawRead || strings.Contains(s, readMarker)
		if strings.Contains(s, marker) || strings.Contains(s, selfMarker) {
			t.Errorf("PostgreSQL's log shows a rejected statement reached the server: %s", s)
		}
	}
	if !sawRead {
		t.Fatalf("PostgreSQL's log (%s) has no statement with %s: statement logging is not on for %s, so the check above proves nothing; logged: %q",
			pglog.path, readMarker, db, stmts)
	}
}

// reviewStatus returns a review's status as `reviews show --json` gives it.
func reviewStatus(t *testing.T, g *gateway, token, id string) string {
	t.Helper()
	out := g.mustCLI(token, "reviews", "show", id, "--json")
	var r review
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Status == "" {
		var wrapped struct {
			Review review `json:"review"`
		}
		if err := json.Unmarshal([]byte(out), &wrapped); err != nil || wrapped.Review.Status == "" {
			t.Fatalf("reviews show %s --json has no status:\n%s", id, out)
		}
		r = wrapped.Review
	}
	return r.Status
}
