package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/api"
)

func issuedFor(token string) api.Issued {
	return api.Issued{Token: token, ExpiresAt: time.Now().Add(time.Hour), Identity: api.IdentityJSON{Display: "dave"}}
}

func testTarget(t *testing.T, info api.Info, server string) (*target, *Env) {
	t.Helper()
	dir := t.TempDir()
	env := &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Stdin: strings.NewReader(""),
		ConfigDir: func() (string, error) { return dir, nil }}
	tg := &target{issued: api.Issued{Token: "cst_secret", Resource: "pg-prod", Type: "postgres", User: "alice", ExpiresAt: time.Now().Add(time.Hour)}}
	if err := tg.locate(env, &client{server: server}, info); err != nil {
		t.Fatal(err)
	}
	return tg, env
}

func TestConnectTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		info   api.Info
		server string
		want   string
	}{
		{"named host, own CA", api.Info{Postgres: "0.0.0.0:15432", CAPEM: "PEM"}, "https://gw.example:8443",
			"host=gw.example port=15432 dbname=pg-prod user=alice sslmode=verify-full sslrootcert=" + "CA"},
		{"loopback", api.Info{Postgres: "127.0.0.1:40000", CAPEM: "PEM"}, "https://127.0.0.1:8443",
			"host=127.0.0.1 port=40000 dbname=pg-prod user=alice sslmode=verify-full sslrootcert=CA"},
		{"public certificate", api.Info{Postgres: "[::]:5432"}, "https://gw.example",
			"host=gw.example port=5432 dbname=pg-prod user=alice sslmode=verify-full sslrootcert=system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg, env := testTarget(t, tt.info, tt.server)
			want := strings.Replace(tt.want, "sslrootcert=CA", "sslrootcert="+tg.caFile, 1)
			if got := tg.ConnInfo(); got != want {
				t.Fatalf("conninfo\n got %s\nwant %s", got, want)
			}
			if tg.caFile != "" {
				if b, err := os.ReadFile(tg.caFile); err != nil || string(b) != "PEM" {
					t.Fatalf("CA not saved: %v", err)
				}
			}
			tg.print(env)
			out := env.Stdout.(*bytes.Buffer).String()
			if out != want+"\nexport PGPASSWORD=cst_secret\n" {
				t.Fatalf("print:\n%s", out)
			}
		})
	}
}

func TestConnectRunsClient(t *testing.T) {
	t.Parallel()
	tg, env := testTarget(t, api.Info{Postgres: "127.0.0.1:15432", CAPEM: "PEM"}, "https://127.0.0.1:8443")
	script := `echo "$PGHOST $PGPORT $PGDATABASE $PGUSER $PGSSLMODE $PGPASSWORD"; echo "$PGSSLROOTCERT"; exit 3`
	err := tg.run(context.Background(), env, []string{"sh", "-c", script})
	lines := strings.Split(env.Stdout.(*bytes.Buffer).String(), "\n")
	if lines[0] != "127.0.0.1 15432 pg-prod alice verify-full cst_secret" || lines[1] != tg.caFile {
		t.Fatalf("client environment:\n%v", lines)
	}
	if err == nil {
		t.Fatal("the client's exit code was lost")
	}
	if err := tg.run(context.Background(), env, []string{filepath.Join(t.TempDir(), "no-such-client")}); err == nil || !strings.Contains(err.Error(), "run ") {
		t.Fatalf("missing client: %v", err)
	}
}

func TestQuoteConn(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"a": "a", "": "''", "a b": "'a b'", `it's`: `'it\'s'`, `a\b`: `'a\\b'`} {
		if got := quoteConn(in); got != want {
			t.Errorf("quoteConn(%q) = %s, want %s", in, got, want)
		}
	}
}
