package mysql

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"
)

// TestExecuteZeroWidthTypesRefused: MariaDB reads no bytes for a non-NULL
// parameter of type NULL, INT24, YEAR, BIT, JSON or GEOMETRY in
// COM_STMT_EXECUTE (the value is NULL to it), while a binary-protocol
// reader takes 4, 2 or length-prefixed bytes. An execute binding one of
// them could make the guard decide (id=42, owner='99') while the server
// runs (NULL, ...) over the same bytes: what runs would not be what was
// decided (invariant 4). Such an execute is refused before the guard and
// never forwarded; the session goes on.
func TestExecuteZeroWidthTypesRefused(t *testing.T) {
	ev := newEnv(t, nil)
	table := fmt.Sprintf("%s.zw_%s", testDB, randHex(3))
	if err := adminExec(fmt.Sprintf("CREATE TABLE %s (id INT NULL, owner VARCHAR(20))", table)); err != nil {
		t.Fatal(err)
	}
	c := gatewayClient(t, ev)
	id := rawPrepare(t, c, "INSERT INTO "+table+" (id, owner) VALUES (?, ?)")
	for _, typ := range []byte{0x06, 0x09, 0x0d, 0x10, 0xf5, 0xff} {
		t.Run(fmt.Sprintf("type %#x", typ), func(t *testing.T) {
			b := binary.LittleEndian.AppendUint32(nil, id)
			b = append(b, 0)                           // flags
			b = binary.LittleEndian.AppendUint32(b, 1) // iterations
			b = append(b, 0, 1, typ, 0, tVarString, 0) // no NULLs; types follow
			b = binary.LittleEndian.AppendUint32(b, 42)
			b = append(b, "\x0299"...)
			before := len(ev.g.Ops())
			if p := send(t, c, comStmtExecute, b); !isErr(p) {
				t.Fatal("the execute was not refused")
			}
			if n := len(ev.g.Ops()); n != before {
				t.Fatalf("the guard decided it (%d operations, %d before)", n, before)
			}
		})
	}
	if err := c.Ping(); err != nil {
		t.Fatalf("the session did not go on: %v", err)
	}
	r, err := client.Connect("127.0.0.1:3306", "root", "", testDB)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Execute("SELECT count(*) FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.GetInt(0, 0); n != 0 {
		t.Fatalf("%d rows were inserted", n)
	}
}
