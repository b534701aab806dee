package e2e

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// secretPassword is set by the statements below; it must appear nowhere
// the gateway writes for people or keeps at rest.
const secretPassword = "S3cr3t-xyz"

// TestPasswordStatementsMasked: a CREATE ROLE ... PASSWORD held for review
// in reject mode. The review an approver reads, the webhook, the gateway's
// log and everything the gateway keeps on disk (the recording, the review
// store) carry no password; the approval still matches the exact statement
// when the initiator runs it again (the digest is over the real text), and
// PostgreSQL stores the real password, not the mask.
func TestPasswordStatementsMasked(t *testing.T) {
	t.Parallel()
	db := pgDatabase(t)
	role := uniqueName("cs_pw")
	t.Cleanup(func() { pgAdmin(t, "DROP ROLE IF EXISTS "+role) })
	hooks := newHookReceiver(t)
	g, alice, bob := startGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db, Mode: "reject"},
		"webhooks:\n  - url: "+hooks.srv.URL+"/hook\n    format: json\n  - url: "+hooks.srv.URL+"/slack\n    format: slack\n")

	stmt := "CREATE ROLE " + role + " LOGIN PASSWORD '" + secretPassword + "'"
	out, code := startPsql(t, g.pgConnString("pg-app", "alice", alice), stmt).wait(t, 30*time.Second)
	if code == 0 {
		t.Fatalf("the privilege statement ran without approval:\n%s", out)
	}
	id := pendingReview(t, g, bob, role)
	for _, r := range listReviews(t, g, bob, "--status", "pending") {
		if r.ID == id && !strings.Contains(r.Text, "PASSWORD '********'") {
			t.Errorf("review %s shows %q, want the statement with its password masked", id, r.Text)
		}
	}
	show := g.mustCLI(bob, "reviews", "show", id)
	showJSON := g.mustCLI(bob, "reviews", "show", id, "--json")
	hooks.await(t, "review.created", id)
	g.mustCLI(bob, "reviews", "approve", id)
	hooks.await(t, "review.approved", id)

	if out, code := startPsql(t, g.pgConnString("pg-app", "alice", alice), stmt).wait(t, 30*time.Second); code != 0 {
		t.Fatalf("the approved statement, run again unchanged, failed (exit %d):\n%s", code, out)
	}
	checkSCRAM(t, role, secretPassword)

	hooks.mu.Lock()
	bodies := strings.Join(hooks.raw, "\n")
	hooks.mu.Unlock()
	g.stop()
	places := map[string]string{"reviews show": show, "reviews show --json": showJSON, "webhooks": bodies, "gateway log": g.log()}
	for name, text := range places {
		if strings.Contains(text, secretPassword) {
			t.Errorf("the password is in %s:\n%s", name, text)
		}
	}
	if !strings.Contains(bodies, role) {
		t.Fatalf("no webhook body names %s; the check above proves nothing:\n%s", role, bodies)
	}
	noSecretOnDisk(t, g.dataDir, role)
}

// TestMySQLPasswordStatementsMasked: the same for CREATE USER ...
// IDENTIFIED BY against MariaDB; the user logs in directly with the real
// password afterwards (and not with the mask).
func TestMySQLPasswordStatementsMasked(t *testing.T) {
	t.Parallel()
	schema := mysqlDatabase(t)
	user := uniqueName("cs_pw")
	t.Cleanup(func() { mysqlExec(t, "DROP USER IF EXISTS '"+user+"'@'%'") })
	hooks := newHookReceiver(t)
	g, alice, bob := startGateway(t, resourceSpec{Name: "my-app", Type: "mysql", Mode: "reject"},
		"webhooks:\n  - url: "+hooks.srv.URL+"/hook\n    format: json\n")
	db := mysqlGatewayDB(t, g, "my-app", alice, schema)

	stmt := "CREATE USER '" + user + "'@'%' IDENTIFIED BY '" + secretPassword + "'"
	_, err := db.Exec(stmt)
	if err == nil || !reviewIDPattern.MatchString(err.Error()) {
		t.Fatalf("CREATE USER through the gateway: %v; want a refusal naming a review", err)
	}
	id := reviewIDPattern.FindString(err.Error())
	show := g.mustCLI(bob, "reviews", "show", id, "--json")
	if !strings.Contains(show, "IDENTIFIED BY '********'") {
		t.Errorf("review %s does not show the masked statement:\n%s", id, show)
	}
	hooks.await(t, "review.created", id)
	g.mustCLI(bob, "reviews", "approve", id)
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("the approved statement, run again unchanged, failed: %v", err)
	}
	for _, tc := range []struct {
		password string
		ok       bool
	}{{secretPassword, true}, {"********", false}} {
		direct, err := sql.Open("mysql", user+":"+tc.password+"@tcp(127.0.0.1:3306)/")
		if err != nil {
			t.Fatal(err)
		}
		err = direct.Ping()
		_ = direct.Close()
		if (err == nil) != tc.ok {
			t.Errorf("logging in to MariaDB as %s with %q: %v; want success %v", user, tc.password, err, tc.ok)
		}
	}

	hooks.mu.Lock()
	bodies := strings.Join(hooks.raw, "\n")
	hooks.mu.Unlock()
	_ = db.Close() // the gateway drains open sessions before it stops
	g.stop()
	for name, text := range map[string]string{"reviews show --json": show, "webhooks": bodies, "gateway log": g.log()} {
		if strings.Contains(text, secretPassword) {
			t.Errorf("the password is in %s:\n%s", name, text)
		}
	}
	noSecretOnDisk(t, g.dataDir, user)
}

// noSecretOnDisk reads every file under dir (the store and recording,
// with SQLite's journal) and fails on the password; marker proves the
// statement was stored there at all.
func noSecretOnDisk(t *testing.T, dir, marker string) {
	t.Helper()
	sawMarker := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sawMarker = sawMarker || strings.Contains(string(b), marker)
		if strings.Contains(string(b), secretPassword) {
			t.Errorf("the password is on disk in %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the gateway's data dir: %v", err)
	}
	if !sawMarker {
		t.Fatalf("nothing under %s names %s; the check proves nothing", dir, marker)
	}
}

// checkSCRAM proves PostgreSQL holds password for role: the trust setup
// of the test server lets any password log in, so the stored SCRAM-SHA-256
// verifier is checked instead (RFC 5802: StoredKey = H(HMAC(salted,
// "Client Key"))).
func checkSCRAM(t *testing.T, role, password string) {
	t.Helper()
	c := pgDirect(t, "postgres")
	var verifier string
	if err := c.QueryRow(ctxFor(t, 30*time.Second), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&verifier); err != nil {
		t.Fatalf("role %s has no stored password: %v", role, err)
	}
	// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
	head, keys, ok := strings.Cut(strings.TrimPrefix(verifier, "SCRAM-SHA-256$"), "$")
	iterS, saltB64, ok2 := strings.Cut(head, ":")
	storedB64, _, ok3 := strings.Cut(keys, ":")
	iter, err := strconv.Atoi(iterS)
	salt, err2 := base64.StdEncoding.DecodeString(saltB64)
	stored, err3 := base64.StdEncoding.DecodeString(storedB64)
	if !ok || !ok2 || !ok3 || err != nil || err2 != nil || err3 != nil {
		t.Fatalf("role %s's password is not a SCRAM-SHA-256 verifier: %q", role, verifier)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	sum := sha256.Sum256(mac.Sum(nil))
	if !hmac.Equal(sum[:], stored) {
		t.Fatalf("role %s's stored password is not %q (the mask ran instead of the statement?)", role, password)
	}
}
