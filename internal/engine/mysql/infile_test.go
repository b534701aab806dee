package mysql

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/enginetest"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	gomy "github.com/go-sql-driver/mysql"
)

func TestLoadDataLocal(t *testing.T) {
	ev := newEnv(t, nil)
	path := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(path, []byte("101,carol,c@example.com\n102,dan,\\N\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gomy.RegisterLocalFile(path)
	defer gomy.DeregisterLocalFile(path)
	db := ev.open(t, "my-test", "")
	stmt := "LOAD DATA LOCAL INFILE '" + path + "' INTO TABLE people FIELDS TERMINATED BY ','"

	ev.g.SetRule(enginetest.DenyIf("LOAD DATA"))
	if _, err := db.Exec(stmt); err == nil || !strings.Contains(err.Error(), "1142") {
		t.Fatalf("denied LOAD DATA: %v", err)
	}
	ev.g.SetRule(nil)
	res, err := db.Exec(stmt)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("rows = %d", n)
	}
	var cnt int
	if err := db.QueryRow("SELECT COUNT(*) FROM people WHERE id > 100").Scan(&cnt); err != nil || cnt != 2 {
		t.Fatalf("count %d %v", cnt, err)
	}
	if _, err := db.Exec("DELETE FROM people WHERE id > 100"); err != nil {
		t.Fatal(err)
	}
}

// TestRealLoadDataLocalNeedsWriteGrant: the rows of a LOAD DATA LOCAL are
// the client's file, sent after the decision, so no review of the
// statement can cover them: with the real guard it is refused at once with
// ERROR 1142 saying a write grant is needed (in wait mode too, where a
// review would hold it), no review is created for an approver to approve
// blind, and nothing is loaded. Under a write grant the file's rows land.
func TestRealLoadDataLocalNeedsWriteGrant(t *testing.T) {
	for _, mode := range []string{"wait", "reject"} {
		t.Run(mode, func(t *testing.T) {
			name := "my-load-" + mode
			re := newRealEnv(t, realResource(name, mode, nil))
			alice := person("alice", "engineers")
			table := scratchTable(t, "load_"+mode)
			path := filepath.Join(t.TempDir(), "rows.csv")
			if err := os.WriteFile(path, []byte("101,carol,c@example.com\n102,dan,\\N\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			gomy.RegisterLocalFile(path)
			defer gomy.DeregisterLocalFile(path)
			db := re.login(t, alice, name)
			stmt := "LOAD DATA LOCAL INFILE '" + path + "' INTO TABLE " + table + " FIELDS TERMINATED BY ','"
			count := func() int {
				t.Helper()
				var n int
				if err := db.QueryRow("SELECT COUNT(*) FROM " + table + " WHERE id > 100").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}

			_, err := db.Exec(stmt)
			var me *gomy.MySQLError
			if !errors.As(err, &me) || me.Number != 1142 || !strings.Contains(me.Message, "LOAD DATA LOCAL INFILE needs a write grant") ||
				!strings.Contains(me.Message, "countersign grants request "+name+" --access write") {
				t.Fatalf("LOAD DATA LOCAL without a grant: %v; want ERROR 1142 asking for a write grant", err)
			}
			if rs := re.pending(t, name); len(rs) != 0 {
				t.Fatalf("the refused LOAD DATA LOCAL created review %s", rs[0].ID)
			}
			if n := count(); n != 0 {
				t.Fatalf("the refused LOAD DATA LOCAL loaded %d rows", n)
			}

			re.grantFor(t, alice, name, time.Hour)
			res, err := db.Exec(stmt)
			if err != nil {
				t.Fatalf("LOAD DATA LOCAL under a write grant: %v", err)
			}
			if n, _ := res.RowsAffected(); n != 2 {
				t.Fatalf("LOAD DATA LOCAL under a write grant affected %d rows, want 2", n)
			}
			if n := count(); n != 2 {
				t.Fatalf("LOAD DATA LOCAL under a write grant loaded %d rows, want 2", n)
			}
		})
	}
}

// evilUpstream is a server that answers "SELECT 'evil'" with a LOCAL
// INFILE request for path, as a compromised upstream could, and keeps
// what it was sent back. Everything else gets a one-row result.
type evilUpstream struct {
	path string
	got  chan []byte
}

func (u *evilUpstream) start(t *testing.T) string {
	t.Helper()
	srv := server.NewServer("8.0.36", 45, gomysql.AUTH_NATIVE_PASSWORD, nil, nil)
	creds := server.NewInMemoryProvider()
	creds.AddUser("evil", "evilpass")
	return serveUpstream(t, func(nc net.Conn) { u.serve(srv, nc, creds) })
}

func (u *evilUpstream) serve(srv *server.Server, nc net.Conn, creds server.CredentialProvider) {
	c, err := srv.NewCustomizedConn(nc, creds, sha2Handler{})
	if err != nil {
		return
	}
	for {
		c.ResetSequence()
		p, err := c.ReadPacket()
		if err != nil || len(p) == 0 || p[0] == comQuit {
			return
		}
		if p[0] != comQuery || !strings.Contains(string(p), "evil") || strings.Contains(string(p), "@@") {
			// The login's sql_mode and CONNECTION_ID() check, and anything else.
			rs, _ := gomysql.BuildSimpleTextResultset([]string{"mode", "id"}, [][]interface{}{{"STRICT_TRANS_TABLES", uint64(9)}})
			if c.WriteValue(gomysql.NewResult(rs)) != nil {
				return
			}
			continue
		}
		if c.WritePacket(withHeader(append([]byte{0xfb}, u.path...))) != nil {
			return
		}
		var sent []byte
		for {
			q, err := c.ReadPacket()
			if err != nil {
				return
			}
			if len(q) == 0 {
				break
			}
			sent = append(sent, q...)
		}
		u.got <- sent
		if c.WritePacket(withHeader(okPacket(statusAutocommit))) != nil {
			return
		}
	}
}

// An upstream that asks for a client file the client never named (no LOAD
// DATA LOCAL statement, or one of another file) gets an empty file: the
// request never reaches the client, whose file is not read.
func TestLocalInfileRequestRefusedWithoutLoadData(t *testing.T) {
	ev := newEnv(t, nil)
	path := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(path, []byte("the client's secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gomy.RegisterLocalFile(path)
	defer gomy.DeregisterLocalFile(path)
	up := &evilUpstream{path: path, got: make(chan []byte, 1)}
	ev.res["my-evil"] = &config.Resource{Name: "my-evil", Type: "mysql", Address: up.start(t), Username: "evil", Password: "evilpass"}
	db := ev.open(t, "my-evil", "")
	if _, err := db.Exec("SELECT 'evil'"); err != nil {
		t.Fatalf("the statement: %v", err)
	}
	if sent := <-up.got; len(sent) != 0 {
		t.Fatalf("the upstream received %q from the client's file", sent)
	}
	// A LOAD DATA LOCAL of another file does not open the secret either.
	other := filepath.Join(t.TempDir(), "harmless.csv")
	if _, err := db.Exec("LOAD DATA LOCAL INFILE '" + other + "' INTO TABLE evil"); err != nil {
		t.Fatalf("the statement: %v", err)
	}
	if sent := <-up.got; len(sent) != 0 {
		t.Fatalf("the upstream received %q from the client's file", sent)
	}
}
