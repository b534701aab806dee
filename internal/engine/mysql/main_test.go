package mysql

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	_ "github.com/go-sql-driver/mysql"
)

// The machine's MariaDB (127.0.0.1:3306, root without a password) is the
// upstream. TestMain makes a throwaway database and two users with
// passwords, one per login method, and drops them at the end.
var (
	testDB     string
	nativeUser string
	edUser     string
	userPass   = randHex(8)
)

const adminDSN = "root@tcp(127.0.0.1:3306)/?multiStatements=true"

func TestMain(m *testing.M) {
	suffix := randHex(4)
	testDB, nativeUser, edUser = "cs_my_"+suffix, "cs_nat_"+suffix, "cs_ed_"+suffix
	setup := []string{
		"CREATE DATABASE " + testDB,
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", nativeUser, userPass),
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'%%'", testDB, nativeUser),
		fmt.Sprintf("CREATE TABLE %s.people (id INT PRIMARY KEY, name VARCHAR(50), email VARCHAR(80))", testDB),
		fmt.Sprintf("INSERT INTO %s.people VALUES (1, 'ada', 'ada@example.com'), (2, 'bob', NULL)", testDB),
	}
	if err := adminExec(setup...); err != nil {
		fmt.Fprintln(os.Stderr, "the machine's MariaDB at 127.0.0.1:3306 (root, no password) is needed:", err)
		os.Exit(1)
	}
	// ed25519 needs its plugin; INSTALL SONAME fails harmlessly when it is
	// already there.
	_ = adminExec("INSTALL SONAME 'auth_ed25519'")
	if err := adminExec(
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED VIA ed25519 USING PASSWORD('%s')", edUser, userPass),
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'%%'", testDB, edUser),
	); err != nil {
		fmt.Fprintln(os.Stderr, "creating an ed25519 user:", err)
		cleanup()
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func cleanup() {
	_ = adminExec("DROP DATABASE IF EXISTS "+testDB,
		fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", nativeUser),
		fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", edUser))
}

func adminExec(stmts ...string) error {
	db, err := sql.Open("mysql", adminDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
