package mysql

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/enginetest"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// bulkOracle is a session straight to MariaDB (the gateway's own login,
// which agrees on bulk operations) with a statement INSERT INTO t (a, b)
// VALUES (?, ?) prepared on an empty table of its own.
type bulkOracle struct {
	up    *upstream
	table string
	id    uint32
}

func newBulkOracle(t *testing.T) *bulkOracle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	up, err := dialUpstream(ctx, &config.Resource{Name: "m", Address: "127.0.0.1:3306", Username: nativeUser, Password: userPass}, testDB, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	if !up.bulk {
		t.Fatal("MariaDB did not agree on bulk operations")
	}
	o := &bulkOracle{up: up, table: testDB + ".bulk_oracle"}
	if _, err := up.Execute("CREATE OR REPLACE TABLE " + o.table + " (a LONGBLOB, b INT)"); err != nil {
		t.Fatal(err)
	}
	o.id = rawPrepare(t, up, "INSERT INTO "+o.table+" VALUES (?, ?)")
	return o
}

// run sends body to MariaDB on an emptied table and returns what it
// inserted: "b=HEX(a)" per row, in insertion order, or its error.
func (o *bulkOracle) run(t *testing.T, body []byte) string {
	t.Helper()
	if _, err := o.up.Execute("DELETE FROM " + o.table); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(body, o.id)
	if err := asErr(send(t, o.up, comStmtBulkExecute, body)); err != nil {
		return "error: " + err.Error()
	}
	r, err := o.up.Execute("SELECT IFNULL(GROUP_CONCAT(CONCAT(IFNULL(b, 'N'), '=', IFNULL(HEX(a), 'N')) SEPARATOR ' '), '') FROM " + o.table)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.GetString(0, 0)
	return s
}

// oracleBody is a bulk of (T, LONG) rows, each a value v of type t and
// the LONG b, as the decoder under test would read them.
func oracleBody(t uint16, v []byte, bs ...int32) []byte {
	var rows [][]bv
	for _, b := range bs {
		rows = append(rows, []bv{{v: v}, bInt(b)})
	}
	return bulkBody(0, bulkSendTypes, []uint16{t, tLong}, rows...)
}

// TestRealBulkDecoderAgreesWithMariaDB: whatever bulk execute the decoder
// accepts, MariaDB runs exactly the rows the decoder read (the same
// number, the same b of every row), so the digest an approval binds is
// the rows that run. Each type code is tried with a value as the decoder
// reads it, signed and unsigned. MariaDB 10.11 reads no bytes for INT24,
// YEAR, BIT and GEOMETRY (the value is NULL): the decoder used to read 4,
// 2 or a string there, and a BIT row "01 01" was two rows to it and four
// to MariaDB; those types are refused now, before anything is forwarded.
// A temporal value whose length byte is 0xfc is a 2-byte length to
// MariaDB (shown directly) and was 252 bytes to the decoder; refused now.
func TestRealBulkDecoderAgreesWithMariaDB(t *testing.T) {
	o := newBulkOracle(t)
	str := []byte{2, 'h', 'i'}
	values := map[byte][][]byte{
		0x00: {{3, '1', '.', '5'}}, 0xf6: {{3, '1', '.', '5'}}, 0x01: {{7}}, 0x02: {{7, 0}}, 0x03: {{7, 0, 0, 0}}, 0x04: {{0, 0, 0x80, 0x3f}},
		0x05: {{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}}, 0x06: {nil, {1, 1}}, 0x08: {{7, 0, 0, 0, 0, 0, 0, 0}},
		0x09: {{7, 0, 0, 0}, nil}, 0x0d: {{0xe8, 7}, nil}, 0x10: {{1, 1}, str, nil}, 0xff: {str, nil},
		0x07: {{4, 0xe8, 7, 1, 2}, {5, 0xe8, 7, 1, 2, 3}, {0}, {0xfc, 4, 0, 0xe8, 7, 1, 2}},
		0x0a: {{4, 0xe8, 7, 1, 2}, {0}, {0xfc, 4, 0, 0xe8, 7, 1, 2}},
		0x0b: {{8, 0, 1, 0, 0, 0, 1, 2, 3}, {5, 0, 1, 0, 0, 0}, {12, 0, 1, 0, 0, 0, 1, 2, 3, 1, 0, 0, 0}},
		0x0c: {{11, 0xe8, 7, 1, 2, 3, 4, 5, 1, 0, 0, 0}, {12, 0xe8, 7, 1, 2, 3, 4, 5, 1, 0, 0, 0, 0}, {0xfc, 4, 0, 0xe8, 7, 1, 2}},
		0x0e: {str, {4, 0xe8, 7, 1, 2}},
	}
	for typ := 0; typ <= 0xff; typ++ {
		if typ > 0x14 && typ < 0xf5 {
			continue
		}
		vs, ok := values[byte(typ)]
		if !ok {
			vs = [][]byte{str}
		}
		for _, v := range vs {
			for _, unsigned := range []uint16{0, 0x8000} {
				name := fmt.Sprintf("type %#02x unsigned %v value %x", typ, unsigned != 0, v)
				body := oracleBody(uint16(typ)|unsigned, v, 11, 22)
				b, err := decodeBulk(body, 2, nil)
				if err != nil {
					continue // refused: nothing is forwarded
				}
				want := ""
				for i := 0; i < b.rows; i++ {
					if i > 0 {
						want += " "
					}
					if v := b.params[2*i+1].Value; len(v) == 4 {
						want += fmt.Sprintf("%d=", int32(binary.LittleEndian.Uint32(v)))
					} else {
						want += fmt.Sprintf("%x=", v)
					}
				}
				got := o.run(t, body)
				if !sameBs(got, want) {
					t.Errorf("%s: the decoder read rows %q, MariaDB ran %q", name, want, got)
				}
			}
		}
	}
	// What MariaDB makes of a temporal length 0xfc: a 2-byte length (4),
	// then the next row's LONG.
	if got := o.run(t, oracleBody(0x0c, []byte{0xfc, 4, 0, 0xe8, 7, 1, 2}, 11)); got != "11="+fmt.Sprintf("%X", "2024-01-02 00:00:00") {
		t.Errorf("MariaDB read DATETIME fc 04 00 ... as %q", got)
	}
}

// sameBs says whether MariaDB's rows (b=HEX(a) ...) have the b values of
// want (b= ...), in order.
func sameBs(got, want string) bool {
	g, w := strings.Fields(got), strings.Fields(want)
	if len(g) != len(w) {
		return false
	}
	for i := range g {
		if b, _, _ := strings.Cut(g[i], "="); b+"=" != w[i] {
			return false
		}
	}
	return true
}

// Statement id 0xffffffff is MariaDB's "statement prepared last"; after a
// failed prepare or the close of that statement MariaDB knows none, and
// the gateway must not resolve it to an older statement (a DELETE
// prepared before, run with the rows meant for the failed one). The bulk
// is refused before anything is forwarded and nothing runs.
func TestBulkLastStmtAfterFailedPrepareOrClose(t *testing.T) {
	ev := newEnv(t, nil)
	table := bulkTable(t)
	if err := adminExec("INSERT INTO " + table + " (id, name) VALUES (1, 'keep')"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(c *upstream)
	}{
		{"after a failed prepare", func(c *upstream) {
			if p := send(t, c, comStmtPrepare, []byte("DELETE FROM no_such_table_anywhere WHERE id = ?")); !isErr(p) {
				t.Fatalf("the prepare that should fail answered %q", p)
			}
		}},
		{"after the last statement was closed", func(c *upstream) {
			last := rawPrepare(t, c, "SELECT ? FROM "+table)
			c.ResetSequence()
			if err := c.WritePacket(withHeader(binary.LittleEndian.AppendUint32([]byte{comStmtClose}, last))); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := bulkSession(t, ev.addr, "my-test", enginetest.Token)
			rawPrepare(t, c, "DELETE FROM "+table+" WHERE id = ?")
			tc.setup(c)
			if p := send(t, c, comStmtBulkExecute, bulkBody(lastStmtID, bulkSendTypes, []uint16{tLong}, []bv{bInt(1)})); !isErr(p) {
				t.Fatalf("the bulk by the last id answered %q", p)
			}
			if got := tableRows(t, table); !strings.Contains(got, "1:keep") {
				t.Fatalf("the older DELETE ran: the table holds %q", got)
			}
		})
	}
}

// execBody is a COM_STMT_EXECUTE body: types bound when given, values as
// they are.
func execBody(id uint32, nparams int, types []uint16, values []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, id)
	b = append(b, 0, 1, 0, 0, 0)
	b = append(b, make([]byte, (nparams+7)/8)...)
	if types == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		for _, t := range types {
			b = binary.LittleEndian.AppendUint16(b, t)
		}
	}
	return append(b, values...)
}

// The parameter types a bulk execute sends hold from then on only if
// MariaDB read them. It refuses a statement that cannot be executed in
// bulk (a SELECT, a CALL, DELETE ... RETURNING: ER_UNSUPPORTED_PS) before
// it reads them, and keeps the types it had; the gateway used to take
// the bulk's types anyway, and then read the next execute without types
// as strings where MariaDB read integers: the guard decided on, and the
// recording kept, values other than those that ran. An error MariaDB
// hits while running the rows (a duplicate key) comes after the types:
// those hold, on both sides.
func TestBulkTypesHoldOnlyWhenMariaDBReadThem(t *testing.T) {
	ev := newEnv(t, nil)
	c := bulkSession(t, ev.addr, "my-test", enginetest.Token)
	text := "SELECT HEX(?), HEX(?)"
	id := rawPrepare(t, c, text)
	ints := []uint16{tLong, tLong}
	readRow := func(first []byte) []string {
		rows := readResultSet(t, c, first)
		if len(rows) != 1 {
			t.Fatalf("%d rows", len(rows))
		}
		cur := &cursor{b: rows[0][2:]} // the row's 0x00 and its NULL bitmap
		return []string{string(cur.lenencBytes()), string(cur.lenencBytes())}
	}
	readRow(send(t, c, comStmtExecute, execBody(id, 2, ints, []byte{1, 0, 0, 0, 2, 0, 0, 0})))
	var me *gomysql.MyError
	p := send(t, c, comStmtBulkExecute, bulkBody(id, bulkSendTypes, []uint16{tVarString, tVarString}, []bv{bStr("x"), bStr("y")}))
	if err := asErr(p); !errors.As(err, &me) || me.Code != erUnsupportedPS {
		t.Fatalf("a bulk SELECT answered %q %v; want ER_UNSUPPORTED_PS", p, err)
	}
	// Without types: MariaDB reads two LONGs, as it was last told.
	got := readRow(send(t, c, comStmtExecute, execBody(id, 2, nil, []byte{4, 'a', 'b', 'c', 'd', 2, 'e', 'f'})))
	op := ev.g.LastOp()
	var decided []string
	for _, p := range op.Params {
		if p.Type != tLong || len(p.Value) != 4 {
			t.Fatalf("the guard decided on %+v; MariaDB ran %q", op.Params, got)
		}
		decided = append(decided, fmt.Sprintf("%X", binary.LittleEndian.Uint32(p.Value)))
	}
	if strings.Join(decided, ",") != strings.Join(got, ",") {
		t.Fatalf("the guard decided on %q, MariaDB ran %q", decided, got)
	}

	// A row's error comes after the types were read: they hold.
	table := bulkTable(t)
	ins := rawPrepare(t, c, "INSERT INTO "+table+" (id, name) VALUES (?, ?)")
	if p := send(t, c, comStmtExecute, execBody(ins, 2, ints, []byte{1, 0, 0, 0, 5, 0, 0, 0})); isErr(p) {
		t.Fatal(asErr(p))
	}
	p = send(t, c, comStmtBulkExecute, bulkBody(ins, bulkSendTypes, []uint16{tLong, tVarString}, []bv{bInt(2), bStr("b")}, []bv{bInt(1), bStr("dup")}))
	if !isErr(p) {
		t.Fatalf("a bulk with a duplicate key answered %q", p)
	}
	if p := send(t, c, comStmtBulkExecute, bulkBody(ins, 0, nil, []bv{bInt(3), bStr("c")})); isErr(p) {
		t.Fatalf("a bulk with the types MariaDB holds: %v", asErr(p))
	}
	// (MariaDB undoes the whole failed bulk: it is one statement.)
	if got := tableRows(t, table); got != "1:5:dflt 3:c:dflt" {
		t.Fatalf("the table holds %q", got)
	}
}
