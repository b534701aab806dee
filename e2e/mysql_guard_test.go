package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gomy "github.com/go-sql-driver/mysql"
)

// mysqlGatewayDB opens go-sql-driver/mysql on a resource through the
// gateway, verifying its certificate, with multi-statements on (the most
// a client can ask for).
func mysqlGatewayDB(t *testing.T, g *gateway, resource, token, schema string) *sql.DB {
	t.Helper()
	ca, err := os.ReadFile(g.caPath)
	if err != nil {
		t.Fatalf("reading the gateway CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("the gateway CA %s holds no certificate", g.caPath)
	}
	name := uniqueName("cs_tls")
	host, _, _ := net.SplitHostPort(g.mysql)
	if err := gomy.RegisterTLSConfig(name, &tls.Config{RootCAs: pool, ServerName: host}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gomy.DeregisterTLSConfig(name) })
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/%s?tls=%s&allowCleartextPasswords=true&multiStatements=true",
		resource, token, g.mysql, schema, name))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestMysqlHiddenWritesRefused sends writes hidden in MySQL's and
// MariaDB's executable comments (which MariaDB runs and TiDB's parser would
// read as comments) through the binary to the real MariaDB, on a resource
// whose writes and unknowns need review in mode: reject. Each is refused
// with a review id, and MariaDB's table is unchanged afterwards.
func TestMysqlHiddenWritesRefused(t *testing.T) {
	t.Parallel()
	schema := mysqlNotes(t, "untouched")
	g := newGateway(t, resourceSpec{Name: "my-app", Type: "mysql", Mode: "reject"})
	alice := g.token("alice", "engineers")
	g.start()
	db := mysqlGatewayDB(t, g, "my-app", alice, schema)

	for _, q := range []string{
		"/*M!100100 DELETE FROM notes */",
		"/*!50000 DELETE FROM notes */",
		"/*!99999 UPDATE notes SET body = 'x' */",
		"/*M! DELETE FROM notes */",
		"SELECT 1 /*!50000 ; DELETE FROM notes */",
		"SELECT 1; /*M!100000 DELETE FROM notes */",
		"SELECT body FROM notes /*M!100000 FOR UPDATE */",
		"SELECT /*!50000 GET_LOCK('cs_e2e', 0), */ 1",
		"SELECT body FROM notes /*!50000 INTO OUTFILE '/tmp/cs_e2e_out' */",
		"SELECT 1 /*!50000 , LOAD_FILE('/etc/passwd') */",
		"DELETE/**/FROM notes",
		"/*!40101 SET NAMES utf8mb4 */; DELETE FROM notes",
	} {
		t.Run(q, func(t *testing.T) {
			_, err := db.Exec(q)
			if err == nil || !strings.Contains(err.Error(), "1142") || !reviewIDPattern.MatchString(err.Error()) {
				t.Fatalf("%s: %v; want ERROR 1142 naming a review", q, err)
			}
			if n := mysqlCount(t, schema, "id = 1 AND body = 'untouched'"); n != 1 {
				t.Fatalf("%s changed MariaDB's table", q)
			}
		})
	}
	// A read in an executable comment is a read and runs (its columns are
	// masked whole: the masker traces no lineage through such text).
	var body string
	if err := db.QueryRow("/*!40101 SELECT body FROM notes WHERE id = 1 */").Scan(&body); err != nil {
		t.Fatalf("a read in an executable comment: %v", err)
	}
}

// TestMysqlLoadDataLocalNeedsWriteGrant: LOAD DATA LOCAL INFILE from the
// real mariadb client sends the file's rows after the statement is
// decided, so no review of the statement can cover them: it is refused
// (no review is created) with a message that asks for a write grant, and
// once the person holds one the file's rows land.
func TestMysqlLoadDataLocalNeedsWriteGrant(t *testing.T) {
	t.Parallel()
	schema := mysqlNotes(t)
	g, alice, bob := startGateway(t, resourceSpec{Name: "my-app", Type: "mysql", Mode: "reject"})
	csv := filepath.Join(t.TempDir(), "notes.csv")
	if err := os.WriteFile(csv, []byte("7,seven\n8,eight\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func() (string, error) {
		out, err := exec.Command("mariadb", mariadbArgs(g, alice, "--local-infile=1", "-e",
			"LOAD DATA LOCAL INFILE '"+csv+"' INTO TABLE notes FIELDS TERMINATED BY ','", schema)...).CombinedOutput()
		return string(out), err
	}
	out, err := load()
	if err == nil || !strings.Contains(out, "ERROR 1142") || !strings.Contains(out, "LOAD DATA LOCAL INFILE needs a write grant") ||
		!strings.Contains(out, "countersign grants request my-app --access write") || reviewIDPattern.MatchString(out) {
		t.Fatalf("LOAD DATA LOCAL without a grant: %v\n%s", err, out)
	}
	if n := mysqlCount(t, schema, "1"); n != 0 {
		t.Fatalf("the refused load wrote %d rows", n)
	}
	grantWrite(t, g, alice, bob, "my-app")
	if out, err := load(); err != nil {
		t.Fatalf("LOAD DATA LOCAL with a write grant: %v\n%s", err, out)
	}
	if n := mysqlCount(t, schema, "body IN ('seven', 'eight')"); n != 2 {
		t.Fatalf("the load under a grant wrote %d of 2 rows", n)
	}
}
