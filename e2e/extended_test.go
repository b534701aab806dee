package e2e

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var reviewIDPattern = regexp.MustCompile(`r-[0-9a-f]+`)

// TestExtendedProtocolApprovalBindsParameters: in mode reject, a prepared
// write gets a review id; once approved, the same statement with the same
// parameters runs exactly once, and other parameters need their own review.
func TestExtendedProtocolApprovalBindsParameters(t *testing.T) {
	t.Parallel()
	db := pgDatabase(t)
	pgExec(t, db, "CREATE TABLE payments (id int PRIMARY KEY, amount int)")
	g, alice, bob := startGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db, Mode: "reject"})

	ctx := ctxFor(t, 2*time.Minute)
	conn, err := pgx.Connect(ctx, g.pgConnString("pg-app", "alice", alice))
	if err != nil {
		t.Fatalf("pgx through the gateway: %v", err)
	}
	defer conn.Close(context.Background())
	const insert = "INSERT INTO payments (id, amount) VALUES ($1, $2)"
	// Every mode of pgx that uses the extended protocol with a named or
	// unnamed prepared statement and bound parameters.
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			base := int32(100)
			if mode == pgx.QueryExecModeDescribeExec {
				base = 200
			}
			exec := func(id, amount int32) error {
				_, err := conn.Exec(ctx, insert, mode, id, amount)
				return err
			}
			first := heldReview(t, exec(base+1, 10))
			if n := pgInt(t, db, "SELECT count(*) FROM payments"); n != int64(base/100-1) {
				t.Fatalf("a held write ran before approval: %d rows", n)
			}
			g.mustCLI(bob, "reviews", "approve", first)

			// Other parameters: a new review, not the approved one.
			for _, p := range [][2]int32{{base + 2, 10}, {base + 1, 11}} {
				other := heldReview(t, exec(p[0], p[1]))
				if other == first {
					t.Fatalf("parameters %v reuse approved review %s", p, first)
				}
			}
			// The approved parameters run once.
			if err := exec(base+1, 10); err != nil {
				t.Fatalf("the approved statement (review %s) with its own parameters failed: %v", first, err)
			}
			again := heldReview(t, exec(base+1, 10))
			if again == first {
				t.Fatalf("approved review %s was used twice", first)
			}
			var got int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM payments WHERE id BETWEEN $1 AND $2", base, base+99).Scan(&got); err != nil {
				t.Fatalf("reading back through the gateway: %v", err)
			}
			if direct := pgInt(t, db, "SELECT count(*) FROM payments WHERE amount = 10"); got != 1 || direct != int64(base/100) {
				t.Fatalf("after one approved write: %d rows through the gateway in range, %d with amount 10 directly", got, direct)
			}
		})
	}
}

// heldReview checks that err is the gateway's refusal naming a review and
// returns the review's id.
func heldReview(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatalf("a write that needs review ran without one")
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("want a PostgreSQL error naming a review, got %v", err)
	}
	id := reviewIDPattern.FindString(pgErr.Message + " " + pgErr.Detail + " " + pgErr.Hint)
	if id == "" {
		t.Fatalf("the refusal does not name a review: %s (%s)", pgErr.Message, pgErr.Code)
	}
	return id
}
