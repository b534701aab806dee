package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/pki"
)

// lockedBuffer is a log sink the engine writes from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startTLSCluster starts a private PostgreSQL that accepts only TLS
// connections (hostssl), with a server certificate for localhost and
// 127.0.0.1 issued by a fresh CA. It returns the port and the CA file.
func startTLSCluster(t *testing.T) (port int, caFile string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "cs-tls-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	bundle, err := pki.LoadOrCreate(filepath.Join(dir, "pki"), []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL insists that its key is private to the server's user.
	for name, mode := range map[string]os.FileMode{pki.ServerFile: 0o644, pki.ServerKeyFile: 0o600} {
		b, err := os.ReadFile(filepath.Join(dir, "pki", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, mode); err != nil {
			t.Fatal(err)
		}
		exec.Command("chown", "postgres", filepath.Join(dir, name)).Run()
	}
	data := filepath.Join(dir, "data")
	asPG := func(args ...string) ([]byte, error) {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...).CombinedOutput()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := asPG(pgBin+"/initdb", "-A", "trust", "-U", "postgres", "-D", data); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	hba := "hostssl all all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 reject\nlocal all all trust\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	exec.Command("chown", "postgres", filepath.Join(data, "pg_hba.conf")).Run()
	port = freePort()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=%s -c ssl_key_file=%s",
		port, dir, filepath.Join(dir, pki.ServerFile), filepath.Join(dir, pki.ServerKeyFile))
	if out, err := asPG(pgBin+"/pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Fatalf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	t.Cleanup(func() { asPG(pgBin+"/pg_ctl", "-D", data, "-m", "immediate", "stop") })
	return port, bundle.CAPath
}

// TestUpstreamTLS: the gateway reaches a TLS-only upstream with sslmode
// verify-full and the resource's CA file; a wrong CA, a wrong host name or
// no TLS at all is refused with 08006, and the gateway log says why. A
// cancel of a running statement reaches the upstream over TLS too.
func TestUpstreamTLS(t *testing.T) {
	t.Parallel()
	port, ca := startTLSCluster(t)
	otherCA, err := pki.LoadOrCreate(t.TempDir(), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ev := newEnv(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	tests := []struct {
		name string
		tls  config.UpstreamTLS
		log  string // "" connects; else the cause the gateway logs
	}{
		{"verify-full", config.UpstreamTLS{Mode: "verify-full", CAFile: ca}, ""},
		{"verify-full by host name", config.UpstreamTLS{Mode: "verify-full", CAFile: ca, ServerName: "localhost"}, ""},
		{"wrong CA", config.UpstreamTLS{Mode: "verify-full", CAFile: otherCA.CAPath}, "certificate signed by unknown authority"},
		{"system roots only", config.UpstreamTLS{Mode: "verify-full"}, "certificate signed by unknown authority"},
		{"wrong host name", config.UpstreamTLS{Mode: "verify-full", CAFile: ca, ServerName: "db.example.com"}, "not db.example.com"},
		{"require does not verify", config.UpstreamTLS{Mode: "require", CAFile: otherCA.CAPath}, ""},
		{"no TLS", config.UpstreamTLS{Mode: "disable"}, "no encryption"},
	}
	for i, tt := range tests {
		name := fmt.Sprintf("pg-tls-%d", i)
		ev.res[name] = &config.Resource{Name: name, Type: "postgres", Address: addr, Database: "postgres", Username: "postgres", UpstreamTLS: tt.tls}
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			before := len(logs.String())
			c, err := pgx.Connect(ctx, ev.url(fmt.Sprintf("pg-tls-%d", i), "require"))
			if tt.log != "" {
				if err == nil {
					c.Close(ctx)
					t.Fatal("connected; want a refusal")
				}
				pe := pgErr(t, err)
				if pe.Code != "08006" || !strings.Contains(pe.Message, "gateway log") {
					t.Fatalf("got %s %q; want 08006 pointing at the gateway log", pe.Code, pe.Message)
				}
				// Logged before the client is told; the client sees no cause
				// (it could name the upstream's user).
				if got := logs.String()[before:]; !strings.Contains(got, tt.log) {
					t.Fatalf("the gateway log does not say %q:\n%s", tt.log, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			var ssl bool
			if err := c.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
				t.Fatalf("upstream connection encrypted: %v, %v", ssl, err)
			}
		})
	}
	t.Run("cancel over TLS", func(t *testing.T) {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, ev.url("pg-tls-0", "require"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := c.Exec(ctx, "SELECT pg_sleep(30), 'tls_cancel'", pgx.QueryExecModeSimpleProtocol)
			done <- err
		}()
		direct, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=require", port))
		if err != nil {
			t.Fatal(err)
		}
		defer direct.Close(ctx)
		waitFor(t, func() bool {
			var n int
			direct.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%tls_cancel%' AND pid <> pg_backend_pid()").Scan(&n)
			return n > 0
		})
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := c.PgConn().CancelRequest(cctx); err != nil {
			t.Fatal(err)
		}
		var pe *pgconn.PgError
		if err := <-done; !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("after the cancel: %v; want 57014", err)
		}
	})
	if strings.Contains(logs.String(), "upstream cancel failed") {
		t.Fatalf("the cancel did not reach the TLS upstream:\n%s", logs.String())
	}
}
