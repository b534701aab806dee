package mysql

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/go-mysql-org/go-mysql/client"
)

// TestReviewLongDataSurvivesRefusal: onExecute forgot a statement's long
// data on every execute, also one it refused and never forwarded; the server
// keeps it until an execute reaches it. A second execute then carries an
// inline value the guard decides on (say, the one an approver approved),
// while the server runs the statement with the long data instead:
// what ran was not what was reviewed (invariant 4). Fixed in review: the
// long data is kept until an execute is forwarded.
func TestReviewLongDataSurvivesRefusal(t *testing.T) {
	ev := newEnv(t, nil)
	table := fmt.Sprintf("%s.longdata_%s", testDB, randHex(3))
	if err := adminExec(fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, owner VARCHAR(20))", table),
		fmt.Sprintf("INSERT INTO %s VALUES (1, 'nobody')", table)); err != nil {
		t.Fatal(err)
	}
	// The first execute is refused (a review is pending, or wait_timeout
	// passed); the second is allowed (its digest was approved).
	var mu sync.Mutex
	executes := 0
	ev.g.SetRule(func(text string) guard.Verdict {
		mu.Lock()
		defer mu.Unlock()
		if text != "UPDATE "+table+" SET owner = ? WHERE id = 1" {
			return enginetest.Allow()
		}
		executes++
		if executes == 1 {
			return guard.Verdict{Decision: guard.Deny, Code: "approval_required", Message: "approval required: review r-1 created"}
		}
		return enginetest.Allow()
	})
	c := gatewayClient(t, ev)
	id := rawPrepare(t, c, "UPDATE "+table+" SET owner = ? WHERE id = 1")

	long := binary.LittleEndian.AppendUint32(nil, id)
	long = binary.LittleEndian.AppendUint16(long, 0)
	long = append(long, "mallory"...)
	c.ResetSequence()
	if err := c.WritePacket(withHeader(append([]byte{comStmtSendLongData}, long...))); err != nil {
		t.Fatal(err)
	}
	execute := func(inline string) []byte {
		b := binary.LittleEndian.AppendUint32(nil, id)
		b = append(b, 0)                           // flags
		b = binary.LittleEndian.AppendUint32(b, 1) // iterations
		b = append(b, 0, 1, 0xfd, 0)               // null bitmap, types bound, VAR_STRING
		b = append(b, byte(len(inline)))
		b = append(b, inline...)
		return rawCommand(t, c, comStmtExecute, b)
	}
	if p := execute("alice"); !isErr(p) {
		t.Fatalf("the first execute was not refused: %q", p)
	}
	p := execute("alice")
	decided := ev.g.LastOp()
	r, err := client.Connect("127.0.0.1:3306", "root", "", testDB)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Execute("SELECT owner FROM " + table + " WHERE id = 1")
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := res.GetString(0, 0)
	if len(decided.Params) != 1 || string(decided.Params[0].Value) != owner {
		t.Fatalf("the guard decided %+v, the server stored owner = %q (answer %q)", decided.Params, owner, p)
	}
}
