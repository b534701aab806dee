package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/jackc/pgx/v5"
)

var (
	testDB    string
	serverTLS = enginetest.SelfSigned()
	scram     struct {
		port      int
		passwords map[string]string
		super     string // the password of the cluster's superuser, postgres
		superURL  string // as postgres, for the tests' own setup
	}
)

const (
	scramRole = "cs_scram"
	md5Role   = "cs_md5"
	pgBin     = "/usr/lib/postgresql/15/bin"
)

// TestMain makes a throwaway database on the machine's PostgreSQL and
// starts a private cluster that demands SCRAM and MD5 passwords, since the
// machine's PostgreSQL trusts loopback and cannot prove the upstream login.
// The private cluster also allows prepared transactions (the machine's
// has max_prepared_transactions = 0), for the tests of PREPARE TRANSACTION.
func TestMain(m *testing.M) {
	testDB = "cs_engine_" + randHex(4)
	if err := adminExec("CREATE DATABASE " + testDB); err != nil {
		fmt.Fprintln(os.Stderr, "the machine's PostgreSQL at 127.0.0.1:5432 is needed:", err)
		os.Exit(1)
	}
	stop, err := startScramCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting a private SCRAM cluster:", err)
		adminExec("DROP DATABASE " + testDB + " WITH (FORCE)")
		os.Exit(1)
	}
	code := m.Run()
	stop()
	adminExec("DROP DATABASE " + testDB + " WITH (FORCE)")
	os.Exit(code)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func adminExec(sql string) error {
	return execOn("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", sql)
}

func execOn(url, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

func startScramCluster() (func(), error) {
	dir, err := os.MkdirTemp("", "cs-scram-")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o777)
	data := filepath.Join(dir, "data")
	super := randHex(8)
	pwfile := filepath.Join(dir, "pw")
	os.WriteFile(pwfile, []byte(super+"\n"), 0o644)
	asPG := func(args ...string) ([]byte, error) {
		cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		return cmd.CombinedOutput()
	}
	cleanup := func() { os.RemoveAll(dir) }
	if out, err := asPG(pgBin+"/initdb", "-A", "scram-sha-256", "-U", "postgres", "--pwfile", pwfile, "-D", data); err != nil {
		cleanup()
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	hba := fmt.Sprintf("host all %s 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 scram-sha-256\nlocal all all scram-sha-256\n", md5Role)
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		cleanup()
		return nil, err
	}
	exec.Command("chown", "postgres", filepath.Join(data, "pg_hba.conf")).Run()
	port := freePort()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_prepared_transactions=8", port, dir)
	if out, err := asPG(pgBin+"/pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start"); err != nil {
		cleanup()
		return nil, fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	stop := func() {
		asPG(pgBin+"/pg_ctl", "-D", data, "-m", "immediate", "stop")
		cleanup()
	}
	scram.port = port
	scram.passwords = map[string]string{scramRole: randHex(8), md5Role: randHex(8)}
	url := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", super, port)
	scram.super, scram.superURL = super, url
	for _, sql := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", scramRole, scram.passwords[scramRole]),
		fmt.Sprintf("SET password_encryption='md5'; CREATE ROLE %s LOGIN PASSWORD '%s'", md5Role, scram.passwords[md5Role]),
	} {
		if err := execOn(url, sql); err != nil {
			stop()
			return nil, err
		}
	}
	return stop, nil
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
