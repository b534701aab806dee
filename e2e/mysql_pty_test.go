package e2e

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMysqlClientsInteractive drives the mariadb and mysql command-line
// clients under a pseudo-terminal, started exactly as docs/mysql.md tells
// people to: a read runs; a write on a resource in mode: reject is refused
// with ERROR 1142 naming its review, runs unchanged once another person
// approved that review; a /* reason: */ comment reaches the review only
// because the client was started with --comments.
func TestMysqlClientsInteractive(t *testing.T) {
	t.Parallel()
	schema := mysqlNotes(t, "hello from the terminal")
	g, alice, bob := startGateway(t, resourceSpec{Name: "my-app", Type: "mysql", Mode: "reject"})
	wait := 30 * time.Second

	for i, client := range []string{"mariadb", "mysql"} {
		id := 10 + i
		t.Run(client, func(t *testing.T) {
			if _, err := exec.LookPath(client); err != nil {
				t.Fatalf("the %s client is needed (apt-get install mariadb-client): %v", client, err)
			}
			term, prompt := mysqlTerminal(t, g, client, alice, schema)

			term.send("SELECT body FROM notes WHERE id = 1;\r")
			term.expect(`hello from the terminal`, wait)
			term.expect(prompt, wait)

			insert := "INSERT INTO notes VALUES (" + strconv.Itoa(id) + ", 'two');"
			term.send(insert + "\r")
			review := term.expect(`ERROR 1142 \(42000\)[^\n]*?(r-[0-9a-f]+)`, wait)[1]
			term.expect(prompt, wait)
			if n := mysqlCount(t, schema, "id = "+strconv.Itoa(id)); n != 0 {
				t.Fatalf("the refused write reached MariaDB (%d rows)", n)
			}
			g.mustCLI(bob, "reviews", "approve", review, "--comment", "e2e")
			term.send(insert + "\r")
			term.expect(`Query OK, 1 row affected`, wait)
			term.expect(prompt, wait)
			if n := mysqlCount(t, schema, "id = "+strconv.Itoa(id)+" AND body = 'two'"); n != 1 {
				t.Fatalf("after approval of %s MariaDB holds %d rows with id %d, want 1", review, n, id)
			}

			// --comments keeps the reason for the approver.
			term.send("/* reason: ticket " + strconv.Itoa(id) + " */ UPDATE notes SET body = 'fixed' WHERE id = " + strconv.Itoa(id) + ";\r")
			review = term.expect(`ERROR 1142 \(42000\)[^\n]*?(r-[0-9a-f]+)`, wait)[1]
			term.expect(prompt, wait)
			if got := reviewReason(t, g, bob, review); got != "ticket "+strconv.Itoa(id) {
				t.Fatalf("review %s has reason %q, want %q", review, got, "ticket "+strconv.Itoa(id))
			}
			term.send("exit\r")
			select {
			case <-term.done:
			case <-time.After(wait):
				t.Fatalf("%s did not exit", client)
			}
		})
	}

	// Without --comments the client strips the comment before sending:
	// the review has no reason. This is why docs/mysql.md says to start
	// the clients with --comments.
	out, err := exec.Command("mariadb", mariadbArgs(g, alice, "-e", "/* reason: lost */ DELETE FROM notes WHERE id = 1", schema)...).CombinedOutput()
	if err == nil {
		t.Fatalf("the delete was not refused:\n%s", out)
	}
	id := reviewIDPattern.FindString(string(out))
	if id == "" {
		t.Fatalf("the refusal names no review:\n%s", out)
	}
	if got := reviewReason(t, g, bob, id); got != "" {
		t.Fatalf("without --comments the reason %q arrived; the client no longer strips comments and docs/mysql.md is wrong", got)
	}
}

// mariadbArgs are the command-line client's arguments for resource my-app
// through the gateway, with verified TLS, then extra.
func mariadbArgs(g *gateway, token string, extra ...string) []string {
	host, port, _ := net.SplitHostPort(g.mysql)
	return append([]string{"--no-defaults", "-h", host, "-P", port, "-u", "my-app", "--password=" + token,
		"--ssl", "--ssl-ca=" + g.caPath, "--ssl-verify-server-cert"}, extra...)
}

// mysqlTerminal starts client (mariadb or mysql) on resource my-app under
// a pseudo-terminal, as docs/mysql.md says to, and waits for its prompt.
func mysqlTerminal(t *testing.T, g *gateway, client, token, schema string) (*terminal, string) {
	t.Helper()
	cmd := exec.Command(client, mariadbArgs(g, token, "--comments", schema)...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "TERM=dumb", "MYSQL_HISTFILE="+filepath.Join(home, "history"))
	term := startTerminal(t, cmd)
	prompt := `\[` + schema + `\]> `
	term.expect(prompt, 30*time.Second)
	return term, prompt
}

// reviewReason is the reason of one review as an approver sees it.
func reviewReason(t *testing.T, g *gateway, token, id string) string {
	t.Helper()
	out := g.mustCLI(token, "reviews", "list", "--json")
	var v struct {
		Reviews []struct {
			ID     string `json:"id"`
			Reason string `json:"reason"`
		} `json:"reviews"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("reviews list --json: %v\n%s", err, out)
	}
	for _, r := range v.Reviews {
		if r.ID == id {
			return r.Reason
		}
	}
	t.Fatalf("review %s is not listed:\n%s", id, out)
	return ""
}

// mysqlCount counts the rows of schema.notes matching where, directly on
// MariaDB.
func mysqlCount(t *testing.T, schema, where string) int {
	t.Helper()
	out, err := exec.Command("mariadb", "--no-defaults", "-uroot", "-h127.0.0.1", "-P3306", "-N", "-B", "-e",
		"SELECT COUNT(*) FROM "+schema+".notes WHERE "+where).CombinedOutput()
	if err != nil {
		t.Fatalf("counting directly on MariaDB: %v\n%s", err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("counting directly on MariaDB printed %q", out)
	}
	return n
}

// TestMariadbInteractiveWait: in mode: wait a write from the interactive
// client waits silently (MySQL has no message for it); the wait shows in
// `reviews list`, nothing reaches MariaDB until another person approves,
// and then the client's statement completes.
func TestMariadbInteractiveWait(t *testing.T) {
	t.Parallel()
	schema := mysqlNotes(t)
	g, alice, bob := startGateway(t, resourceSpec{Name: "my-app", Type: "mysql", Mode: "wait"})
	wait := 30 * time.Second
	term, prompt := mysqlTerminal(t, g, "mariadb", alice, schema)

	term.send("/* reason: e2e wait */ INSERT INTO notes VALUES (1, 'waited');\r")
	review := pendingReview(t, g, bob, "'waited'")
	if n := mysqlCount(t, schema, "id = 1"); n != 0 {
		t.Fatalf("the held write reached MariaDB before review %s was approved", review)
	}
	if got := reviewReason(t, g, bob, review); got != "e2e wait" {
		t.Fatalf("review %s has reason %q", review, got)
	}
	g.mustCLI(bob, "reviews", "approve", review)
	term.expect(`Query OK, 1 row affected`, wait)
	term.expect(prompt, wait)
	if n := mysqlCount(t, schema, "id = 1 AND body = 'waited'"); n != 1 {
		t.Fatalf("after approval of %s MariaDB holds %d rows, want 1", review, n)
	}
}
