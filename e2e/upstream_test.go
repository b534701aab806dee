package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/engine/postgres/pgestimate"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

const (
	pgAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	mysqlDSN   = "root@tcp(127.0.0.1:3306)/"
)

// uniqueName is a fresh lower-case identifier with the prefix.
func uniqueName(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pgDatabase creates a throwaway database on the machine's PostgreSQL and
// drops it when the test ends.
func pgDatabase(t *testing.T) string {
	t.Helper()
	name := uniqueName("cs_e2e")
	pgAdmin(t, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pgAdminURL)
		if err != nil {
			t.Logf("dropping %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping %s: %v", name, err)
		}
	})
	return name
}

// pgAdmin runs statements on the postgres database directly.
func pgAdmin(t *testing.T, stmts ...string) {
	t.Helper()
	pgExec(t, "postgres", stmts...)
}

// pgDirect connects straight to PostgreSQL (not through the gateway).
func pgDirect(t *testing.T, db string) *pgx.Conn {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:5432/%s?sslmode=disable", db))
	if err != nil {
		t.Fatalf("PostgreSQL at 127.0.0.1:5432 is not reachable as user postgres (CI starts it): %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// pgExec runs statements directly on a database.
func pgExec(t *testing.T, db string, stmts ...string) {
	t.Helper()
	c := pgDirect(t, db)
	ctx := ctxFor(t, 2*time.Minute)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("directly on PostgreSQL %s: %s: %v", db, s, err)
		}
	}
	_ = c.Close(ctx)
}

// pgInt runs a query returning one integer directly on a database.
func pgInt(t *testing.T, db, query string) int64 {
	t.Helper()
	c := pgDirect(t, db)
	ctx := ctxFor(t, 30*time.Second)
	var n int64
	if err := c.QueryRow(ctx, query).Scan(&n); err != nil {
		t.Fatalf("directly on PostgreSQL %s: %s: %v", db, query, err)
	}
	_ = c.Close(ctx)
	return n
}

// pgLog reads PostgreSQL's own server log from the point it was opened.
type pgLog struct {
	path   string
	offset int64
}

// openPGLog finds the server's log file: pg_current_logfile() when the
// logging collector runs, else the file a backend's stderr points at (how
// Debian's pg_ctlcluster logs). It must be readable (root or group adm).
func openPGLog(t *testing.T) *pgLog {
	t.Helper()
	c := pgDirect(t, "postgres")
	ctx := ctxFor(t, 30*time.Second)
	var current *string
	var dataDir string
	var pid int
	err := c.QueryRow(ctx, "SELECT pg_current_logfile(), current_setting('data_directory'), pg_backend_pid()").
		Scan(&current, &dataDir, &pid)
	if err != nil {
		t.Fatalf("asking PostgreSQL for its log file: %v", err)
	}
	path := ""
	if current != nil && *current != "" {
		path = *current
		if !strings.HasPrefix(path, "/") {
			path = dataDir + "/" + path
		}
	} else if p, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/2", pid)); err == nil && strings.HasPrefix(p, "/") {
		path = p
	}
	if path == "" {
		t.Fatalf("cannot find PostgreSQL's log file: no logging collector and backend %d's stderr is not a file (run the tests as root or as a member of group adm)", pid)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("PostgreSQL's log file %s: %v", path, err)
	}
	return &pgLog{path: path, offset: st.Size()}
}

// lines returns the log's lines written since it was opened that belong to
// database db (log_line_prefix holds %u@%d), with continuation lines joined.
func (l *pgLog) lines(t *testing.T, db string) []string {
	t.Helper()
	f, err := os.Open(l.path)
	if err != nil {
		t.Fatalf("reading PostgreSQL's log %s: %v", l.path, err)
	}
	defer f.Close()
	if _, err := f.Seek(l.offset, io.SeekStart); err != nil {
		t.Fatalf("reading PostgreSQL's log %s: %v", l.path, err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("reading PostgreSQL's log %s: %v", l.path, err)
	}
	var out []string
	keep := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "\t") {
			if keep {
				out[len(out)-1] += "\n" + line[1:]
			}
			continue
		}
		keep = strings.Contains(line, "@"+db+" ")
		if keep {
			out = append(out, line)
		}
	}
	return out
}

// statements returns the statement texts PostgreSQL logged for db
// (log_statement = 'all'): simple-protocol statements and extended-protocol
// executes.
func (l *pgLog) statements(t *testing.T, db string) []string {
	t.Helper()
	var out []string
	for _, line := range l.lines(t, db) {
		for _, marker := range []string{"LOG:  statement: ", "LOG:  execute "} {
			i := strings.Index(line, marker)
			if i < 0 {
				continue
			}
			s := line[i+len(marker):]
			if marker == "LOG:  execute " {
				j := strings.Index(s, ": ")
				if j < 0 {
					continue
				}
				s = s[j+2:]
			}
			if strings.HasPrefix(s, pgestimate.Marker) {
				// The gateway's row estimate for `reviews show`: EXPLAIN
				// without ANALYZE, which executes nothing (pgestimate).
				continue
			}
			out = append(out, s)
		}
	}
	return out
}

// logStatements turns on statement logging for a database's new sessions.
func logStatements(t *testing.T, db string) {
	t.Helper()
	pgAdmin(t, "ALTER DATABASE "+db+" SET log_statement = 'all'")
}

// pgLoggedDatabase is a throwaway database made with stmts whose later
// statements PostgreSQL logs, and the log to read them from: for tests
// that prove a statement never reached the server.
func pgLoggedDatabase(t *testing.T, stmts ...string) (string, *pgLog) {
	t.Helper()
	db := pgDatabase(t)
	pgExec(t, db, stmts...)
	logStatements(t, db)
	return db, openPGLog(t)
}

// mysqlDatabase creates a throwaway database on the machine's MariaDB and
// drops it when the test ends.
func mysqlDatabase(t *testing.T) string {
	t.Helper()
	name := uniqueName("cs_e2e")
	db, err := sql.Open("mysql", mysqlDSN)
	if err != nil {
		t.Fatalf("opening MariaDB: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := ctxFor(t, 30*time.Second)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("MariaDB at 127.0.0.1:3306 is not usable as root (CI starts it): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Logf("dropping %s: %v", name, err)
		}
	})
	return name
}

// mysqlExec runs statements directly on MariaDB.
func mysqlExec(t *testing.T, stmts ...string) {
	t.Helper()
	db, err := sql.Open("mysql", mysqlDSN)
	if err != nil {
		t.Fatalf("opening MariaDB: %v", err)
	}
	defer db.Close()
	ctx := ctxFor(t, 30*time.Second)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("MariaDB at 127.0.0.1:3306 is not reachable as root (CI starts it): %v", err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("directly on MariaDB: %s: %v", s, err)
		}
	}
}

// mysqlNotes is a throwaway MariaDB database with the table the MySQL
// tests write to, notes (id, body), holding one row per body given (ids
// from 1); mysqlCount reads it back.
func mysqlNotes(t *testing.T, bodies ...string) string {
	t.Helper()
	schema := mysqlDatabase(t)
	stmts := []string{"CREATE TABLE " + schema + ".notes (id int PRIMARY KEY, body varchar(64))"}
	for i, b := range bodies {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO %s.notes VALUES (%d, '%s')", schema, i+1, b))
	}
	mysqlExec(t, stmts...)
	return schema
}

// waitFor polls cond until it holds or d passes, then fails with what it
// waited for.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
