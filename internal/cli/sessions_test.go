package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/api"
	"github.com/jackc/pgx/v5"
)

const pgDirect = "postgres://postgres@127.0.0.1:5432/%s?sslmode=disable"

// engineConfig is surfacesConfig with the PostgreSQL engine serving
// pg-prod, whose upstream is the database db.
func engineConfig(db string) string {
	cfg := strings.Replace(surfacesConfig, "  api: 127.0.0.1:0\n", "  api: 127.0.0.1:0\n  postgres: 127.0.0.2:0\n", 1)
	return strings.Replace(cfg, "    database: postgres\n", "    database: "+db+"\n", 1)
}

// scratchDB creates a database with a table t (id int) and drops it when
// the test ends.
func scratchDB(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "cs_surfaces_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, fmt.Sprintf(pgDirect, "postgres"))
	if err != nil {
		t.Fatalf("PostgreSQL at 127.0.0.1:5432: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := pgx.Connect(ctx, fmt.Sprintf(pgDirect, "postgres"))
		if err == nil {
			_, _ = a.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			a.Close(ctx)
		}
	})
	c, err := pgx.Connect(ctx, fmt.Sprintf(pgDirect, name))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}
	return name
}

var reviewID = regexp.MustCompile(`r-[0-9a-f]{10}`)

// TestOperationReviewSessionsAndChanges: a write through the PostgreSQL
// engine is refused with a review id; the approver sees what it is, the
// initiator cannot approve it, an approver does; it runs; the session's
// timeline and the audit questions show all of it.
func TestOperationReviewSessionsAndChanges(t *testing.T) {
	t.Parallel()
	db := scratchDB(t)
	c := newCast(t, engineConfig(db))
	ctx := context.Background()
	ca := c.g.caFile(t)
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://alice:%s@%s/pg-prod?sslmode=verify-ca&sslrootcert=%s",
		c.tokens["alice"], c.g.srv.PostgresAddr(), ca))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const stmt = "INSERT INTO t VALUES (7)"
	_, err = conn.Exec(ctx, stmt)
	id := reviewID.FindString(fmt.Sprint(err))
	if id == "" {
		t.Fatalf("the write was not held for review: %v", err)
	}

	show := c.bob.must("reviews", "show", id)
	for _, want := range []string{stmt, "kind:            write", "t", "search_path:", "in transaction:  false", "estimate:        about 1 row(s)", "alice@example.com"} {
		if !strings.Contains(show, want) {
			t.Errorf("reviews show lacks %q:\n%s", want, show)
		}
	}
	c.alice.fails("cannot decide it", "reviews", "approve", id)
	if list := c.bob.must("reviews", "list", "--to-approve"); !strings.Contains(list, id) {
		t.Fatalf("to-approve lacks %s:\n%s", id, list)
	}
	c.bob.must("reviews", "approve", id, "--comment", "looks right")
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("the approved write failed: %v", err)
	}
	if _, err := conn.Exec(ctx, stmt); err == nil {
		t.Fatal("one approval ran twice")
	}
	direct, err := pgx.Connect(ctx, fmt.Sprintf(pgDirect, db))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	var n int
	if err := direct.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows in t: %d (%v), want 1", n, err)
	}

	checkSessions(t, c, id)
	checkChanges(t, c, id)
}

func checkSessions(t *testing.T, c *cast, id string) {
	t.Helper()
	var list api.SessionList
	// A refusal's event is committed without the client waiting for it
	// (nothing took effect), so the last one may land a moment later.
	for i := 0; ; i++ {
		if err := json.Unmarshal([]byte(c.audit.must("sessions", "list", "--resource", "pg-prod", "--user", "alice", "--since", "1h", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Sessions) == 1 && list.Sessions[0].Operations == 3 && list.Sessions[0].Refused == 2 {
			break
		}
		if i == 100 {
			t.Fatalf("sessions list: %+v", list.Sessions)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sid := list.Sessions[0].ID
	// Each filter on its own excludes the session when it does not match.
	for _, f := range [][]string{{"--resource", "pg-two"}, {"--user", "bob"}, {"--since", "2999-01-01T00:00:00Z"}} {
		if out := c.audit.must(append([]string{"sessions", "list"}, f...)...); strings.Contains(out, sid) {
			t.Errorf("sessions list %v shows %s:\n%s", f, sid, out)
		}
	}
	if own := c.alice.must("sessions", "list"); !strings.Contains(own, sid) {
		t.Fatalf("alice does not see her own session:\n%s", own)
	}
	if others := c.carol.must("sessions", "list"); strings.Contains(others, sid) {
		t.Fatalf("carol sees alice's session:\n%s", others)
	}
	c.carol.fails("no session", "sessions", "show", sid)
	tl := c.alice.must("sessions", "show", sid)
	for _, want := range []string{"deny (approval_required)", "allow (reviewed)", id, "INSERT INTO t VALUES (7)"} {
		if !strings.Contains(tl, want) {
			t.Errorf("sessions show lacks %q:\n%s", want, tl)
		}
	}
	var d api.SessionDetail
	if err := json.Unmarshal([]byte(c.audit.must("sessions", "show", sid, "--json")), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Timeline) != 3 || d.Timeline[1].Outcome == nil || d.Timeline[1].Outcome.Rows != 1 || d.Timeline[1].ReviewID != id {
		t.Fatalf("timeline: %+v", d.Timeline)
	}
}

func checkChanges(t *testing.T, c *cast, id string) {
	t.Helper()
	var ch api.ChangeList
	if err := json.Unmarshal([]byte(c.audit.must("audit", "changes", "--resource", "pg-prod", "--object", "t", "--since", "24h", "--json")), &ch); err != nil {
		t.Fatal(err)
	}
	if len(ch.Changes) != 1 {
		t.Fatalf("changes: %+v", ch.Changes)
	}
	got := ch.Changes[0]
	if got.Under != "review" || got.ReviewID != id || len(got.Approvers) != 1 || got.Approvers[0].Who != "bob" ||
		got.ApprovedAt == nil || got.Digest == "" || got.Outcome == nil || got.Outcome.Rows != 1 {
		t.Fatalf("change: %+v", got)
	}
	if out := c.audit.must("audit", "changes", "--resource", "pg-prod", "--object", "public.other"); !strings.Contains(out, "nothing found") {
		t.Fatalf("changes of another object:\n%s", out)
	}
	if out := c.audit.must("audit", "unreviewed"); !strings.Contains(out, "nothing found") {
		t.Fatalf("unreviewed:\n%s", out)
	}
	c.alice.fails("needs the auditor or admin role", "audit", "changes", "--resource", "pg-prod")
	c.audit.fails("--resource R", "audit", "changes")
}

// TestResultCaptureIsMasked: a resource that keeps result rows
// (record.results) keeps the first N of each result with the operation,
// masked for the trail even where the reader's role sees the value
// (the rule names only approvers), and `sessions show` prints them.
func TestResultCaptureIsMasked(t *testing.T) {
	t.Parallel()
	db := scratchDB(t)
	ctx := context.Background()
	direct, err := pgx.Connect(ctx, fmt.Sprintf(pgDirect, db))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	if _, err := direct.Exec(ctx, `CREATE TABLE people (id int, email text);
		INSERT INTO people VALUES (1, 'ann@corp.example'), (2, NULL), (3, 'cy@corp.example')`); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(engineConfig(db), "        allow: [write, unmask]\n",
		"        allow: [write, unmask]\n      masking:\n        - columns: [\"*.email\"]\n          strategy: redact\n          roles: [approver]\n"+
			"    record:\n      results: 2\n", 1)
	c := newCast(t, cfg)
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://alice:%s@%s/pg-prod?sslmode=verify-ca&sslrootcert=%s",
		c.tokens["alice"], c.g.srv.PostgresAddr(), c.g.caFile(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var seen []string
	rows, err := conn.Query(ctx, "SELECT id, email FROM people ORDER BY id", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		var email *string
		if err := rows.Scan(&id, &email); err != nil {
			t.Fatal(err)
		}
		if email != nil {
			seen = append(seen, *email)
		}
	}
	if rows.Err() != nil || len(seen) != 2 || seen[0] != "ann@corp.example" {
		t.Fatalf("alice (a creator, whom the rule does not name) should see the emails: %v %v", seen, rows.Err())
	}
	// The extended protocol: the rows of an Execute come without a
	// RowDescription (it answered the Describe before).
	var email string
	if err := conn.QueryRow(ctx, "SELECT email FROM people WHERE id = $1", 3).Scan(&email); err != nil || email != "cy@corp.example" {
		t.Fatalf("extended query: %q %v", email, err)
	}
	conn.Close(ctx)

	// Outcomes are recorded as operations end, not waited for: once the
	// session's close is in the trail, everything before it is.
	var list api.SessionList
	for list.Sessions == nil || list.Sessions[0].ClosedAt == nil {
		list = api.SessionList{}
		if err := json.Unmarshal([]byte(c.audit.must("sessions", "list", "--resource", "pg-prod", "--json")), &list); err != nil || len(list.Sessions) != 1 {
			t.Fatalf("sessions: %+v %v", list, err)
		}
	}
	sid := list.Sessions[0].ID
	var d api.SessionDetail
	if err := json.Unmarshal([]byte(c.audit.must("sessions", "show", sid, "--json")), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Timeline) != 2 || d.Timeline[0].Outcome == nil || len(d.Timeline[0].Outcome.Results) != 1 ||
		d.Timeline[1].Outcome == nil || len(d.Timeline[1].Outcome.Results) != 1 {
		t.Fatalf("timeline: %+v", d.Timeline)
	}
	if x := d.Timeline[1].Outcome.Results[0]; len(x.Rows) != 1 || *x.Rows[0][0] != "****" || x.Truncated {
		t.Fatalf("kept result of the extended query: %+v", x)
	}
	r := d.Timeline[0].Outcome.Results[0]
	if strings.Join(r.Columns, ",") != "id,email" || len(r.Rows) != 2 || !r.Truncated ||
		*r.Rows[0][0] != "1" || *r.Rows[0][1] != "****" || r.Rows[1][1] != nil {
		t.Fatalf("kept result: %+v", r)
	}
	show := c.audit.must("sessions", "show", sid)
	for _, want := range []string{"results of", "id  email", "1   ****", "2   NULL", "(more rows; the first 2 were kept)"} {
		if !strings.Contains(show, want) {
			t.Errorf("sessions show lacks %q:\n%s", want, show)
		}
	}
	if export := c.op.must("audit", "export", "--config", c.g.config); strings.Contains(export, "corp.example") {
		t.Fatal("the trail holds an unmasked email")
	}
}
