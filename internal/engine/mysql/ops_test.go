package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/go-mysql-org/go-mysql/client"
	gomy "github.com/go-sql-driver/mysql"
)

func TestPreparedParamsReachGuard(t *testing.T) {
	ev := newEnv(t, nil)
	db := ev.open(t, "my-test", "")
	var name string
	if err := db.QueryRow("SELECT name FROM people WHERE id = ? AND name <> ?", 1, "zed").Scan(&name); err != nil {
		t.Fatal(err)
	}
	op := ev.g.LastOp()
	if name != "ada" || op.Text != "SELECT name FROM people WHERE id = ? AND name <> ?" || len(op.Params) != 2 {
		t.Fatalf("name %q op %+v", name, op)
	}
	if string(op.Params[1].Value) != "zed" || op.Class.Kind != sqlkind.Read {
		t.Fatalf("params %+v class %+v", op.Params, op.Class)
	}
	// Binary rows with NULLs come back intact.
	var email sql.NullString
	if err := db.QueryRow("SELECT email FROM people WHERE id = ?", 2).Scan(&email); err != nil || email.Valid {
		t.Fatalf("email %+v %v", email, err)
	}
}

func TestMultiStatementsClassifiedWhole(t *testing.T) {
	ev := newEnv(t, nil)
	ev.g.SetRule(func(string) guard.Verdict { return enginetest.Allow() })
	db := ev.open(t, "my-test", "multiStatements=true")
	if _, err := db.Exec("CREATE TEMPORARY TABLE tmp_x (a INT); INSERT INTO tmp_x VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	op := ev.g.LastOp()
	if op.Class.Kind != sqlkind.Schema || op.Class.Statements != 2 {
		t.Fatalf("class %+v", op.Class)
	}
}

func TestDeniedInsideTransactionKeepsIt(t *testing.T) {
	ev := newEnv(t, nil)
	ev.g.SetRule(enginetest.DenyIf("DROP"))
	db := ev.open(t, "my-test", "")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"BEGIN", "UPDATE people SET name = 'ada2' WHERE id = 1"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "DROP TABLE people"); err == nil {
		t.Fatal("DROP was not refused")
	}
	if !ev.g.LastOp().State.InTransaction {
		t.Fatal("the refused operation was not seen inside the transaction")
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := conn.QueryRowContext(ctx, "SELECT name FROM people WHERE id = 1").Scan(&name); err != nil || name != "ada" {
		t.Fatalf("name %q %v: the transaction did not roll back", name, err)
	}
}

func TestHoldThenAllow(t *testing.T) {
	ev := newEnv(t, nil)
	release := make(chan guard.Verdict, 1)
	ev.g.SetRule(enginetest.HoldIf("name = 'held'", release))
	db := ev.open(t, "my-test", "")
	release <- enginetest.Allow()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM people WHERE name = 'held'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	release <- guard.Verdict{Code: "approval_rejected", Message: "review r-test was rejected", ReviewID: "r-test"}
	err := db.QueryRow("SELECT COUNT(*) FROM people WHERE name = 'held'").Scan(&n)
	if err == nil || !strings.Contains(err.Error(), "r-test") {
		t.Fatalf("err = %v", err)
	}
}

func TestRecordingFailureRefusesWrite(t *testing.T) {
	ev := newEnv(t, nil)
	db := ev.open(t, "my-test", "")
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	ev.rec.SetFail(true)
	_, err := db.Exec("UPDATE people SET name = 'x' WHERE id = 2")
	ev.rec.SetFail(false)
	if err == nil || !strings.Contains(err.Error(), "could not record") {
		t.Fatalf("err = %v", err)
	}
	var name string
	if err := db.QueryRow("SELECT name FROM people WHERE id = 2").Scan(&name); err != nil || name != "bob" {
		t.Fatalf("name %q %v", name, err)
	}
}

func TestLoginRefusals(t *testing.T) {
	ev := newEnv(t, nil)
	tests := []struct {
		name, dsn, want string
	}{
		{"plaintext", fmt.Sprintf("my-test:%s@tcp(%s)/?allowCleartextPasswords=true", enginetest.Token, ev.addr), "3159"},
		{"bad token", fmt.Sprintf("my-test:nope@tcp(%s)/?tls=cs&allowCleartextPasswords=true", ev.addr), "countersign connect my-test"},
		{"unknown resource", fmt.Sprintf("nope:%s@tcp(%s)/?tls=cs&allowCleartextPasswords=true", enginetest.Token, ev.addr), "not a MySQL resource"},
		{"postgres resource", fmt.Sprintf("pg-x:%s@tcp(%s)/?tls=cs&allowCleartextPasswords=true", enginetest.Token, ev.addr), "not a MySQL resource"},
		{"upstream password wrong", ev.dsn("my-badpw", ""), "could not log in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := sql.Open("mysql", tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.Ping()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPlaintextLoopbackAllowed(t *testing.T) {
	ev := newEnv(t, func(o *Options) { o.AllowPlaintextLoopback = true })
	db, err := sql.Open("mysql", fmt.Sprintf("my-test:%s@tcp(%s)/?allowCleartextPasswords=true", enginetest.Token, ev.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
}

func TestUseTracksSchema(t *testing.T) {
	ev := newEnv(t, nil)
	db := ev.open(t, "my-test", "")
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("USE information_schema"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if s := ev.g.LastOp().State.Schema; s != "information_schema" {
		t.Fatalf("schema = %q", s)
	}
}

// gatewayClient logs in with go-mysql's client, to send raw commands.
func gatewayClient(t *testing.T, ev *env) *client.Conn {
	t.Helper()
	return gatewayClientAs(t, ev, "my-test")
}

func TestRefusedCommands(t *testing.T) {
	ev := newEnv(t, nil)
	c := gatewayClient(t, ev)
	for _, cmd := range []byte{comChangeUser, comBinlogDump, comBinlogDumpGTID, comStmtFetch, 0x09, 0xfa} {
		c.ResetSequence()
		if err := c.WritePacket(withHeader([]byte{cmd, 0, 0, 0, 0})); err != nil {
			t.Fatal(err)
		}
		p, err := c.ReadPacket()
		if err != nil || !isErr(p) {
			t.Fatalf("command %#x: %v %q", cmd, err, p)
		}
	}
	if _, err := c.Execute("SELECT 1"); err != nil {
		t.Fatalf("session did not survive refusals: %v", err)
	}
}

func TestOversizedPacketEndsSession(t *testing.T) {
	ev := newEnv(t, func(o *Options) { o.Limits.MaxMessageBytes = 1 << 10 })
	db := ev.open(t, "my-test", "")
	_, err := db.Exec("SELECT '" + strings.Repeat("x", 4<<10) + "'")
	if err == nil {
		t.Fatal("oversized query passed")
	}
	var me *gomy.MySQLError
	if errors.As(err, &me) && me.Number != erNetPacketTooLarge {
		t.Fatalf("err = %v", err)
	}
	if err := db.Ping(); err != nil {
		t.Fatalf("a new session does not work: %v", err)
	}
}

func TestSessionRecorded(t *testing.T) {
	ev := newEnv(t, nil)
	db := ev.open(t, "my-test", "")
	if _, err := db.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(ev.rec.OfType(recording.TypeSessionClose)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(ev.rec.OfType(recording.TypeOperation)) == 0 || len(ev.rec.OfType(recording.TypeSessionClose)) == 0 {
		t.Fatal("operation or session.close not recorded")
	}
}
