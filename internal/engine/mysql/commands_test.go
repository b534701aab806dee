package mysql

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// rawCommand sends one command and returns the first answer packet.
func rawCommand(t *testing.T, c *client.Conn, cmd byte, body []byte) []byte {
	t.Helper()
	c.ResetSequence()
	if err := c.WritePacket(withHeader(append([]byte{cmd}, body...))); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func resetRecorded(ev *env) int {
	n := 0
	for _, e := range ev.rec.OfType(recording.TypeOperation) {
		if d, ok := e.Data.(map[string]any); ok && d["command"] == "COM_RESET_CONNECTION" {
			n++
		}
	}
	return n
}

// COM_RESET_CONNECTION drops the session's state upstream and in the
// gateway (an EXECUTE of a name prepared before it is Unknown again), and
// is durably recorded before it runs: when the recording fails, it does
// not run.
func TestResetConnection(t *testing.T) {
	ev := newEnv(t, nil)
	c := gatewayClient(t, ev)
	for _, q := range []string{"PREPARE s FROM 'SELECT 1'", "SET @x = 5"} {
		if _, err := c.Execute(q); err != nil {
			t.Fatal(q, err)
		}
	}
	if _, err := c.Execute("EXECUTE s"); err != nil || ev.g.LastOp().Class.Kind != sqlkind.Read {
		t.Fatalf("EXECUTE s before the reset: %v, %v", err, ev.g.LastOp().Class)
	}

	ev.rec.SetFail(true)
	p := rawCommand(t, c, comResetConnection, nil)
	ev.rec.SetFail(false)
	if !isErr(p) || !strings.Contains(string(p), "could not record") {
		t.Fatalf("a reset that could not be recorded: %q", p)
	}
	if r, err := c.Execute("SELECT @x"); err != nil {
		t.Fatal(err)
	} else if v, _ := r.GetInt(0, 0); v != 5 {
		t.Fatalf("the unrecorded reset ran: @x = %d", v)
	}

	if p := rawCommand(t, c, comResetConnection, nil); isErr(p) {
		t.Fatalf("reset: %q", p)
	}
	if n := resetRecorded(ev); n != 1 {
		t.Fatalf("%d resets recorded, want 1", n)
	}
	if r, err := c.Execute("SELECT @x"); err != nil {
		t.Fatal(err)
	} else if v, _ := r.GetString(0, 0); v != "" {
		t.Fatalf("@x survived the reset: %q", v)
	}
	_, err := c.Execute("EXECUTE s")
	if err == nil || ev.g.LastOp().Class.Kind != sqlkind.Unknown {
		t.Fatalf("EXECUTE s after the reset: %v, kind %v; want the upstream's error and Unknown", err, ev.g.LastOp().Class.Kind)
	}

	// A reset inside a transaction rolls it back upstream, and the guard
	// is told so (approvals the transaction consumed are restored).
	for _, q := range []string{"BEGIN", "UPDATE people SET name = 'reset' WHERE id = 2"} {
		if _, err := c.Execute(q); err != nil {
			t.Fatal(q, err)
		}
	}
	if p := rawCommand(t, c, comResetConnection, nil); isErr(p) {
		t.Fatalf("reset: %q", p)
	}
	outcomes := ev.g.Outcomes()
	last := outcomes[len(outcomes)-1]
	if !last.RolledBack || last.CommandTag != "COM_RESET_CONNECTION" {
		t.Fatalf("the guard was told %+v, want the rollback", last)
	}
	if r, err := c.Execute("SELECT name FROM people WHERE id = 2"); err != nil {
		t.Fatal(err)
	} else if name, _ := r.GetString(0, 0); name != "bob" {
		t.Fatalf("the transaction survived the reset: name %q", name)
	}
}

// COM_FIELD_LIST is decided as the SHOW COLUMNS it amounts to.
func TestFieldList(t *testing.T) {
	ev := newEnv(t, nil)
	c := gatewayClient(t, ev)
	fields, err := c.FieldList("people", "")
	if err != nil || len(fields) != 3 || string(fields[1].Name) != "name" {
		t.Fatalf("fields %v, %v", fields, err)
	}
	if op := ev.g.LastOp(); op.Text != "SHOW COLUMNS FROM `people`" || op.Class.Kind != sqlkind.Read {
		t.Fatalf("decided as %q (%v)", op.Text, op.Class.Kind)
	}
	ev.g.SetRule(enginetest.DenyIf("SHOW COLUMNS"))
	if p := rawCommand(t, c, comFieldList, []byte("people\x00")); !isErr(p) || errCode(p) != "1142" {
		t.Fatalf("a refused field list: %q", p)
	}
}

// COM_SET_OPTION turns multi-statements on mid-session; the text is still
// classified whole, so a write after a read is refused with it.
func TestSetOptionMultiStatements(t *testing.T) {
	ev := newEnv(t, nil)
	ev.g.SetRule(enginetest.DenyIf("DELETE"))
	c := gatewayClient(t, ev)
	if p := rawCommand(t, c, comSetOption, []byte{0, 0}); isErr(p) {
		t.Fatalf("COM_SET_OPTION: %q", p)
	}
	_, err := c.Execute("SELECT 1; DELETE FROM people")
	var me *gomysql.MyError
	if !errors.As(err, &me) || me.Code != erTableAccessDenied {
		t.Fatalf("a write after a read: %v; want ERR %d", err, erTableAccessDenied)
	}
	if op := ev.g.LastOp(); op.Class.Kind != sqlkind.Write || op.Class.Statements != 2 {
		t.Fatalf("classified %+v", op.Class)
	}
	if r, err := c.Execute("SELECT COUNT(*) FROM people"); err != nil {
		t.Fatal(err)
	} else if n, _ := r.GetInt(0, 0); n != 2 {
		t.Fatalf("people has %d rows", n)
	}
	// A malformed COM_SET_OPTION ends the session: the stream cannot be
	// trusted any more.
	c.ResetSequence()
	if err := c.WritePacket(withHeader([]byte{comSetOption, 0})); err != nil {
		t.Fatal(err)
	}
	if p, err := c.ReadPacket(); err != nil || !isErr(p) || binary.LittleEndian.Uint16(p[1:]) != erMalformedPacket {
		t.Fatalf("malformed COM_SET_OPTION: %q %v", p, err)
	}
}
