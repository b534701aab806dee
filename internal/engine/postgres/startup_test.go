package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/countersign/countersign/internal/engine/enginetest"
)

func pgErr(t *testing.T, err error) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("want a PostgreSQL error, got %v", err)
	}
	return pe
}

func TestStartupRefusals(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	bad := strings.Replace(ev.url("pg-test", "require"), enginetest.Token, "wrong", 1)
	tests := []struct {
		name, url, code, msg string
	}{
		{"plaintext refused before asking", ev.url("pg-test", "disable"), "28000", "sslmode=require"},
		{"bad token", bad, "28P01", "countersign connect pg-test"},
		{"unknown resource", ev.url("nope", "require"), "3D000", `"nope"`},
		{"options", ev.url("pg-test", "require") + "&options=-csearch_path%3Devil", "0A000", `"options"`},
		{"search_path param", ev.url("pg-test", "require") + "&search_path=evil", "0A000", "search_path"},
		{"replication", ev.url("pg-test", "require") + "&replication=database", "0A000", "replication"},
		{"latin1", ev.url("pg-test", "require") + "&client_encoding=LATIN1", "0A000", "UTF8"},
		{"upstream down", ev.url("pg-down", "require"), "08006", "could not connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := pgconn.Connect(ctx, tt.url)
			if err == nil {
				c.Close(ctx)
				t.Fatal("connected; want a refusal")
			}
			pe := pgErr(t, err)
			if pe.Code != tt.code || !strings.Contains(pe.Message, tt.msg) {
				t.Fatalf("got %s %q; want %s containing %q", pe.Code, pe.Message, tt.code, tt.msg)
			}
			if strings.Contains(pe.Message, "not-used-with-trust") {
				t.Fatal("an upstream credential reached the client")
			}
		})
	}
}

func TestPlaintextLoopbackAllowed(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, func(o *Options) { o.AllowPlaintextLoopback = true })
	ctx := context.Background()
	c, err := pgx.Connect(ctx, ev.url("pg-test", "disable"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT 41+1").Scan(&n); err != nil || n != 42 {
		t.Fatalf("got %d, %v", n, err)
	}
	if len(ev.rec.OfType("session.open")) != 1 {
		t.Fatal("session.open not recorded")
	}
}

func TestUpstreamPasswords(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	for _, role := range []string{scramRole, md5Role} {
		t.Run(role, func(t *testing.T) {
			ctx := context.Background()
			c, err := pgx.Connect(ctx, ev.url("pg-"+role, "require"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			var user, method string
			if err := c.QueryRow(ctx, "SELECT current_user, coalesce((SELECT 'ok'), '')").Scan(&user, &method); err != nil {
				t.Fatal(err)
			}
			if user != role {
				t.Fatalf("upstream user %q, want %q", user, role)
			}
			for _, k := range []string{"session_authorization", "application_name", "server_version"} {
				if strings.Contains(c.PgConn().ParameterStatus(k), scram.passwords[role]) {
					t.Fatalf("parameter %s carries the upstream password", k)
				}
			}
		})
	}
}
