package mysql

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/review"
)

// Invariant 7 against a transaction: writes made under a grant inside a
// transaction must not commit after the grant ended. COMMIT is transaction
// control (a read), so the attack is BEGIN, write under the grant, wait
// for the grant to end (revoked, or run out), COMMIT. The COMMIT and every
// other statement but ROLLBACK are refused, nothing reaches MariaDB, and
// after the ROLLBACK the session goes on with the grant gone.
func TestRealGrantEndRefusesCommitOfItsWrites(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		begin    string // how the transaction opens
		duration time.Duration
		revoke   bool
		why      string
	}{
		{"revoked", "BEGIN", time.Hour, true, "was revoked"},
		{"runs out", "START TRANSACTION", 5 * time.Second, false, "ran out"},
		// No BEGIN: with autocommit off the first write opens it.
		{"autocommit off, revoked", "SET autocommit = 0", time.Hour, true, "was revoked"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("my-grant-tx-%d", i)
			re := newRealEnv(t, realResource(name, "reject", nil))
			table := scratchTable(t, "gtx")
			alice := person("alice", "engineers")
			g := re.grantFor(t, alice, name, tc.duration)
			ctx := context.Background()
			conn, err := re.login(t, alice, name).Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			mustExec := func(q string) {
				t.Helper()
				if _, err := conn.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			mustExec(tc.begin)
			mustExec("INSERT INTO " + table + " (id, name) VALUES (10, 'late')")
			mustExec("UPDATE " + table + " SET name = 'late' WHERE id = 1")
			if tc.revoke {
				if _, err := re.svc.RevokeGrant(ctx, g.ID, apiActor(alice)); err != nil {
					t.Fatal(err)
				}
			} else {
				waitFor(t, func() bool { return grantStatus(t, re, g.ID) != review.StatusApproved })
			}

			// COMMIT, its spellings, a read and a partial rollback are all
			// refused: only a full ROLLBACK ends the transaction.
			for _, q := range []string{"COMMIT", "commit work", "SELECT 1", "INSERT INTO " + table + " (id) VALUES (11); COMMIT",
				"SAVEPOINT s", "ROLLBACK TO SAVEPOINT s", "ROLLBACK /* x */; COMMIT"} {
				_, err := conn.ExecContext(ctx, q)
				if err == nil {
					t.Fatalf("%q ran in a transaction holding writes of grant %s after it ended", q, g.ID)
				}
				for _, want := range []string{"grant " + g.ID + " " + tc.why, "ROLLBACK"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%q was refused with %q; want it to say %q", q, err, want)
					}
				}
			}
			waitFor(t, func() bool { return re.stored(t, `"COMMIT"`, `"code":"grant_ended_in_transaction"`) })

			mustExec("ROLLBACK")
			if n := countRows(t, table, "id IN (10, 11)"); n != 0 {
				t.Fatalf("%d row(s) written under the ended grant were committed", n)
			}
			if got := nameOf(t, table, 1); got != "ada" {
				t.Fatalf("the update under the ended grant was committed: name = %q", got)
			}
			// The session goes on: reads and transactions work, and a
			// write needs a review again (mode reject: refused with its id).
			mustExec("BEGIN")
			mustExec("SELECT 1")
			mustExec("COMMIT")
			_, err = conn.ExecContext(ctx, "UPDATE "+table+" SET name = 'after' WHERE id = 1")
			if reviewIDIn(t, err) == "" {
				t.Fatalf("the write after the grant's end: %v", err)
			}
		})
	}
}

// A session whose transaction wrote nothing under the grant is not held
// by its end: writes it committed under the grant before stay, and a later
// read-only transaction commits.
func TestRealGrantEndLeavesOtherTransactions(t *testing.T) {
	t.Parallel()
	re := newRealEnv(t, realResource("my-grant-tx-other", "reject", nil))
	table := scratchTable(t, "gtxo")
	alice := person("alice", "engineers")
	g := re.grantFor(t, alice, "my-grant-tx-other", time.Hour)
	ctx := context.Background()
	conn, err := re.login(t, alice, "my-grant-tx-other").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	steps := []struct {
		sql   string
		after func() // run after the statement succeeded
	}{
		{"INSERT INTO " + table + " (id, name) VALUES (20, 'autocommit')", nil},
		{"BEGIN", nil},
		{"INSERT INTO " + table + " (id, name) VALUES (21, 'committed')", nil},
		{"COMMIT", nil},
		{"BEGIN", nil},
		{"SELECT name FROM " + table + " WHERE id = 1", func() {
			if _, err := re.svc.RevokeGrant(ctx, g.ID, apiActor(alice)); err != nil {
				t.Fatal(err)
			}
		}},
		{"SELECT 1", nil},
		{"COMMIT", nil},
	}
	for _, st := range steps {
		if _, err := conn.ExecContext(ctx, st.sql); err != nil {
			t.Fatalf("%s: %v", st.sql, err)
		}
		if st.after != nil {
			st.after()
		}
	}
	if n := countRows(t, table, "id IN (20, 21)"); n != 2 {
		t.Fatalf("%d of the 2 rows committed under the grant before its end are there", n)
	}
}

func grantStatus(t *testing.T, re *realEnv, id string) review.Status {
	t.Helper()
	r, err := re.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}
