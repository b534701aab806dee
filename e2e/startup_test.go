package e2e

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestPostgresStartupRefusals connects through the real gateway with the
// real token system and psql, and is refused at startup for each reason a
// person can hit, with the SQLSTATE and a message that says what to do; no
// session is opened on PostgreSQL for any of them.
func TestPostgresStartupRefusals(t *testing.T) {
	t.Parallel()
	db := pgDatabase(t)
	g := newGateway(t, resourceSpec{Name: "pg-app", Type: "postgres", Database: db})
	alice := g.token("alice", "engineers")
	outsider := g.token("mallory", "contractors")
	g.start()

	tests := []struct {
		name   string
		conn   string
		env    []string // for psql
		pgxOpt string   // the same for pgx, as connection string words
		code   string
		msg    string
	}{
		{"bad token", g.pgConnString("pg-app", "alice", "cs_not_a_token"), nil, "", "28P01", "countersign login"},
		{"identity outside policy.access", g.pgConnString("pg-app", "mallory", outsider), nil, "", "42501", "pg-app"},
		{"options -c", g.pgConnString("pg-app", "alice", alice), []string{"PGOPTIONS=-c search_path=evil"}, " options='-c search_path=evil'", "0A000", "options"},
		{"client_encoding LATIN1", g.pgConnString("pg-app", "alice", alice), []string{"PGCLIENTENCODING=LATIN1"}, " client_encoding=LATIN1", "0A000", "client_encoding"},
		{"unknown resource", g.pgConnString("pg-nope", "alice", alice), nil, "", "3D000", "pg-nope"},
	}
	ctx := ctxFor(t, time.Minute)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// psql prints no SQLSTATE for a failed connection: the message.
			cmd := exec.Command("psql", "-X", "-c", "SELECT 1", tt.conn)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.msg) {
				t.Fatalf("psql: %v\n%s\nwant a refusal mentioning %q", err, out, tt.msg)
			}
			_, err = pgx.Connect(ctx, tt.conn+tt.pgxOpt)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != tt.code || !strings.Contains(pe.Message, tt.msg) {
				t.Fatalf("pgx: %v; want %s mentioning %q", err, tt.code, tt.msg)
			}
		})
	}
	if n := pgInt(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = '"+db+"'"); n != 0 {
		t.Fatalf("%d sessions reached PostgreSQL", n)
	}
}
