package main

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestLoadAgainstMariaDB: a short load on the machine's MariaDB, in a
// database of its own, sends queries that return rows; an id beyond the
// table is an error that names it, not a silent zero.
func TestLoadAgainstMariaDB(t *testing.T) {
	db := fmt.Sprintf("cs_myload_%d", rand.Uint32())
	admin := openRoot(t, "")
	mustExec(t, admin, "CREATE DATABASE "+db)
	t.Cleanup(func() { mustExec(t, admin, "DROP DATABASE "+db) })
	mustExec(t, admin, "CREATE TABLE "+db+".sbtest (id INT PRIMARY KEY, k INT, c CHAR(120), pad CHAR(60))")
	mustExec(t, admin, "INSERT INTO "+db+".sbtest SELECT seq, seq, 'c', 'p' FROM "+db+".seq_1_to_100")

	o := options{addr: "127.0.0.1:3306", user: "root", db: db, clients: 2, rows: 100, duration: 200 * time.Millisecond}
	cfg, err := config(o)
	if err != nil {
		t.Fatal(err)
	}
	conns, err := open(openConfig(t, cfg), o.clients)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	lat, _, err := load(conns, o)
	if err != nil || len(lat) == 0 {
		t.Fatalf("load: %d queries, error %v; want some queries and no error", len(lat), err)
	}

	o.rows = 1000 // ids past 100 find no row
	_, _, err = load(conns, o)
	if err == nil || !errors.Is(err, sql.ErrNoRows) || !strings.Contains(err.Error(), "id ") {
		t.Fatalf("a missing row gave %v; want sql.ErrNoRows naming the id", err)
	}
}

func TestConfigRefusesBadCA(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, ca := range map[string]string{"missing file": bad + ".nope", "no PEM": bad} {
		if _, err := config(options{addr: "127.0.0.1:1", ca: ca}); err == nil {
			t.Errorf("%s: config accepted %s", name, ca)
		}
	}
}

func TestFirstErr(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	tests := []struct {
		name string
		errs []error
		want string
	}{
		{"none", []error{nil, nil}, ""},
		{"one", []error{nil, a}, "a"},
		{"several", []error{a, nil, b}, "a (and 1 more connections failed)"},
	}
	for _, tt := range tests {
		got := ""
		if err := firstErr(tt.errs); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func openRoot(t *testing.T, db string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.DBName = "tcp", "127.0.0.1:3306", "root", db
	return openConfig(t, cfg)
}

func openConfig(t *testing.T, cfg *mysql.Config) *sql.DB {
	t.Helper()
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
