package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestBreakglassEndToEnd: an on-call identity with the breakglass role runs
// a held write at once with `/* breakglass: reason */`; it lands, the client
// is told it is recorded, a webhook announces it, a retrospective review
// stays in `reviews list --retro` until an approver other than the
// initiator acknowledges it (the initiator cannot), and `audit unreviewed`
// lists it. `connect --breakglass REASON` gives the role's holder a token
// whose sessions break glass without the comment. The same comment from
// someone without the role is an ordinary write: held, and it never runs.
func TestBreakglassEndToEnd(t *testing.T) {
	t.Parallel()
	db := pgDatabase(t)
	pgExec(t, db, "CREATE TABLE switches (name text PRIMARY KEY, on_ bool)", "INSERT INTO switches VALUES ('primary', false), ('other', false), ('second', false)")
	hooks := newHookReceiver(t)
	g := newGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db, Mode: "reject"})
	cfg, err := os.ReadFile(g.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(cfg), "    audit: [auditor]\n", "    audit: [auditor]\n    oncall: [creator, breakglass]\n", 1)
	text = strings.Replace(text, "      access: [engineers, dba-leads, audit]\n", "      access: [engineers, dba-leads, audit, oncall]\n      breakglass: [oncall]\n", 1)
	text += "webhooks:\n  - url: " + hooks.srv.URL + "/hook\n    format: slack\n"
	if err := os.WriteFile(g.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	olga := g.token("olga", "oncall")
	alice := g.token("alice", "engineers")
	bob := g.token("bob", "dba-leads")
	auditor := g.token("audrey", "audit")
	g.start()

	out, code := startPsql(t, g.pgConnString("pg-app", "olga", olga),
		"/* breakglass: primary is down, failing over */ UPDATE switches SET on_ = true WHERE name = 'primary'").wait(t, 30*time.Second)
	if code != 0 || !strings.Contains(out, "break-glass") {
		t.Fatalf("the break-glass write did not run with its notice (exit %d):\n%s", code, out)
	}
	if n := pgInt(t, db, "SELECT count(*) FROM switches WHERE on_"); n != 1 {
		t.Fatalf("after break-glass %d rows are on, want 1", n)
	}

	retro := listReviews(t, g, bob, "--retro")
	if len(retro) != 1 {
		t.Fatalf("reviews list --retro shows %d reviews, want the one retrospective review", len(retro))
	}
	id := retro[0].ID
	hooks.awaitText(t, "BREAK-GLASS")

	if _, stderr, code := g.cli(olga, "reviews", "approve", id); code == 0 || !strings.Contains(stderr, "cannot decide it") {
		t.Fatalf("the initiator acknowledged her own break-glass review (exit %d): %s", code, stderr)
	}
	if got := listReviews(t, g, bob, "--retro"); len(got) != 1 {
		t.Fatalf("after the initiator's refused acknowledgment --retro shows %d, want 1", len(got))
	}
	g.mustCLI(bob, "reviews", "approve", id, "--comment", "seen, fine")
	if got := listReviews(t, g, bob, "--retro"); len(got) != 0 {
		t.Fatalf("after bob's acknowledgment --retro still shows %d", len(got))
	}
	if unrev := g.mustCLI(auditor, "audit", "unreviewed", "--resource", "pg-app"); !strings.Contains(unrev, "breakglass") {
		t.Errorf("audit unreviewed does not list the break-glass write:\n%s", unrev)
	}

	// `connect --breakglass REASON` mints a token whose sessions break glass
	// without the comment; only for the breakglass role.
	if _, stderr, code := g.cli(alice, "connect", "pg-app", "--breakglass", "me too"); code == 0 || !strings.Contains(stderr, "may not break glass") {
		t.Fatalf("a creator got a break-glass token (exit %d): %s", code, stderr)
	}
	printed := g.mustCLI(olga, "connect", "pg-app", "--breakglass", "replica lag, ticket 9", "--print")
	_, tok, ok := strings.Cut(printed, "export PGPASSWORD=")
	if tok = strings.TrimSpace(tok); !ok || tok == "" {
		t.Fatalf("connect --print printed no password:\n%s", printed)
	}
	out, code = startPsql(t, g.pgConnString("pg-app", "olga", tok), "UPDATE switches SET on_ = true WHERE name = 'second'").wait(t, 30*time.Second)
	if code != 0 || !strings.Contains(out, "break-glass") {
		t.Fatalf("the write on a break-glass token did not run as break-glass (exit %d):\n%s", code, out)
	}
	if got := listReviews(t, g, bob, "--retro"); len(got) != 1 || got[0].ID == id {
		t.Fatalf("the break-glass token's write opened %d retrospective reviews, want a new one", len(got))
	}

	// Without the role the comment is only a comment: held, never run.
	out, code = startPsql(t, g.pgConnString("pg-app", "alice", alice),
		"/* breakglass: me too */ UPDATE switches SET on_ = true WHERE name = 'other'").wait(t, 30*time.Second)
	if code == 0 || !strings.Contains(out, "approval required") {
		t.Fatalf("a break-glass comment without the role was not held (exit %d):\n%s", code, out)
	}
	if n := pgInt(t, db, "SELECT count(*) FROM switches WHERE on_"); n != 2 {
		t.Fatalf("want primary and second on, and other (without the role) off: %d rows on", n)
	}
}
