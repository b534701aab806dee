package mysql

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// bulkInsert is a well-formed COM_STMT_BULK_EXECUTE of a two-parameter
// statement: types sent, two rows of (INT, VARCHAR), indicator 0 (a value).
func bulkInsert(id uint32, rows [][2]any) []byte {
	b := []byte{comStmtBulkExecute}
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint16(b, 128) // STMT_BULK_FLAG_SEND_TYPES_TO_SERVER
	b = append(b, 0x03, 0, 0xfd, 0)              // LONG, VAR_STRING
	for _, r := range rows {
		b = append(b, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(r[0].(int)))
		s := r[1].(string)
		b = append(b, 0, byte(len(s)))
		b = append(b, s...)
	}
	return b
}

// MariaDB's array execute is refused with a message saying what to do;
// nothing of it runs, the guard is not asked, and the session goes on.
// Directly, MariaDB refuses it too from a connection that did not agree on
// the bulk capability, which is why the gateway could not pass it on (see
// comStmtBulkExecute).
func TestBulkExecuteRefused(t *testing.T) {
	ev := newEnv(t, nil)
	table := fmt.Sprintf("%s.bulk_%s", testDB, randHex(3))
	if err := adminExec(fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, name VARCHAR(20))", table)); err != nil {
		t.Fatal(err)
	}
	send := func(c *client.Conn) error {
		id := rawPrepare(t, c, "INSERT INTO "+table+" VALUES (?, ?)")
		c.ResetSequence()
		if err := c.WritePacket(withHeader(bulkInsert(id, [][2]any{{1, "a"}, {2, "b"}}))); err != nil {
			t.Fatal(err)
		}
		p, err := c.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if !isErr(p) {
			return nil
		}
		return &gomysql.MyError{Code: binary.LittleEndian.Uint16(p[1:]), Message: string(p[9:])}
	}

	direct, err := client.Connect("127.0.0.1:3306", "root", "", testDB)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	var me *gomysql.MyError
	if err := send(direct); !errors.As(err, &me) || me.Code != 1295 {
		t.Fatalf("MariaDB directly: %v; want ER_UNSUPPORTED_PS (1295)", err)
	}

	c := gatewayClient(t, ev)
	err = send(c)
	if !errors.As(err, &me) || me.Code != erUnknownCom || !strings.Contains(me.Message, "once per row") {
		t.Fatalf("through countersign: %v; want ERR %d saying what to do", err, erUnknownCom)
	}
	r, err := c.Execute("SELECT COUNT(*) FROM " + table)
	if err != nil {
		t.Fatalf("the session did not go on: %v", err)
	}
	if n, _ := r.GetInt(0, 0); n != 0 {
		t.Fatalf("%d rows were inserted", n)
	}
	for _, op := range ev.g.Texts() {
		if strings.HasPrefix(op, "INSERT") {
			t.Fatalf("the guard was asked about %q", op)
		}
	}
}

// rawPrepare prepares text with COM_STMT_PREPARE and returns the statement
// id (go-mysql's Stmt does not expose it).
func rawPrepare(t *testing.T, c *client.Conn, text string) uint32 {
	t.Helper()
	c.ResetSequence()
	if err := c.WritePacket(withHeader(append([]byte{comStmtPrepare}, text...))); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket()
	if err != nil || len(p) < 12 || p[0] != 0 {
		t.Fatalf("prepare %q: %v %q", text, err, p)
	}
	id := binary.LittleEndian.Uint32(p[1:])
	ncols, nparams := int(binary.LittleEndian.Uint16(p[5:])), int(binary.LittleEndian.Uint16(p[7:]))
	for _, n := range []int{nparams, ncols} {
		for i := 0; n > 0 && i <= n; i++ {
			if _, err := c.ReadPacket(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return id
}
