package mysql

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/go-mysql-org/go-mysql/client"
)

// TestReviewExecuteTypesSurviveRefusal: onExecute kept the parameter
// types an execute sent even when it refused the execute, which the server
// never got. The next execute without types was then decided on its bytes
// read with those types, while the server read them with the types it
// had: what ran was not what was decided (invariant 4). Here the refused
// execute sends LONGLONG; the next one's 8 bytes are the VARCHAR
// "mallory" to the server and were an integer to the gateway. Fixed: the
// types hold only once an execute carrying them is forwarded (bulk
// executes alike).
func TestReviewExecuteTypesSurviveRefusal(t *testing.T) {
	ev := newEnv(t, nil)
	table := fmt.Sprintf("%s.types_%s", testDB, randHex(3))
	if err := adminExec(fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, owner VARCHAR(20))", table),
		fmt.Sprintf("INSERT INTO %s VALUES (1, 'nobody')", table)); err != nil {
		t.Fatal(err)
	}
	text := "UPDATE " + table + " SET owner = ? WHERE id = 1"
	var mu sync.Mutex
	executes := 0
	ev.g.SetRule(func(got string) guard.Verdict {
		mu.Lock()
		defer mu.Unlock()
		if got != text {
			return enginetest.Allow()
		}
		executes++
		if executes == 2 {
			return guard.Verdict{Decision: guard.Deny, Code: "approval_required", Message: "approval required: review r-1 created"}
		}
		return enginetest.Allow()
	})
	c := gatewayClient(t, ev)
	id := rawPrepare(t, c, text)
	execute := func(types []byte, value []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, id)
		b = append(b, 0)                           // flags
		b = binary.LittleEndian.AppendUint32(b, 1) // iterations
		b = append(b, 0)                           // null bitmap
		if types == nil {
			b = append(b, 0)
		} else {
			b = append(append(b, 1), types...)
		}
		return send(t, c, comStmtExecute, append(b, value...))
	}
	if p := execute([]byte{tVarString, 0}, []byte("\x02ok")); isErr(p) {
		t.Fatalf("the first execute: %v", asErr(p))
	}
	if p := execute([]byte{0x08, 0}, []byte("12345678")); !isErr(p) {
		t.Fatal("the second execute was not refused")
	}
	execute(nil, []byte("\x07mallory"))
	decided := ev.g.LastOp()
	if len(decided.Params) != 1 || decided.Params[0].Type != tVarString || string(decided.Params[0].Value) != "mallory" {
		t.Fatalf("the guard decided %+v; the server runs the VARCHAR 'mallory'", decided.Params)
	}
	r, err := client.Connect("127.0.0.1:3306", "root", "", testDB)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Execute("SELECT owner FROM " + table + " WHERE id = 1")
	if err != nil {
		t.Fatal(err)
	}
	if owner, _ := res.GetString(0, 0); owner != "mallory" {
		t.Fatalf("the server stored %q", owner)
	}
}

// MariaDB reads statement id 0xffffffff as the statement prepared last on
// the connection (Connector/J pipelines a prepare with its execute so).
// The gateway decides the statement it stands for and forwards that
// statement's own id, so the server cannot run another; after a failed
// prepare there is none, as on the server.
func TestExecuteLastPreparedStatement(t *testing.T) {
	ev := newEnv(t, nil)
	c := gatewayClient(t, ev)
	rawPrepare(t, c, "SELECT name FROM people WHERE id = 2")
	exec := binary.LittleEndian.AppendUint32(nil, lastStmtID)
	exec = binary.LittleEndian.AppendUint32(append(exec, 0), 1)
	p := send(t, c, comStmtExecute, exec)
	if rows := readResultSet(t, c, p); len(rows) != 1 || !strings.Contains(string(rows[0]), "bob") {
		t.Fatalf("rows %q", rows)
	}
	if op := ev.g.LastOp(); op.Text != "SELECT name FROM people WHERE id = 2" {
		t.Fatalf("the guard decided %q", op.Text)
	}
	if p := send(t, c, comStmtPrepare, []byte("SELEKT nonsense")); !isErr(p) {
		t.Fatalf("a bad prepare: %q", p)
	}
	if p := send(t, c, comStmtExecute, exec); !isErr(p) || uint16(p[1])|uint16(p[2])<<8 != erUnknownStmt {
		t.Fatalf("the last id after a failed prepare: %q", p)
	}
}
