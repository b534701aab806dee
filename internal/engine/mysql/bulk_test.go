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
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// packetConn is what the raw test clients need of a connection: go-mysql's
// client.Conn and the gateway's own upstream both have it.
type packetConn interface {
	ResetSequence()
	WritePacket([]byte) error
	ReadPacket() ([]byte, error)
}

// bv is one value of a bulk row: its indicator and, for indicatorNone,
// its binary encoding.
type bv struct {
	ind byte
	v   []byte
}

func bInt(n int32) bv  { return bv{v: binary.LittleEndian.AppendUint32(nil, uint32(n))} }
func bStr(s string) bv { return bv{v: append(appendLenenc(nil, uint64(len(s))), s...)} }

var (
	bNull    = bv{ind: indicatorNull}
	bDefault = bv{ind: indicatorDefault}
	bIgnore  = bv{ind: indicatorIgnore}
)

// Parameter types of the rows the tests send: LONG and VAR_STRING.
const (
	tLong      = 0x03
	tVarString = 0xfd
)

// bulkBody is a COM_STMT_BULK_EXECUTE body (after the command byte).
func bulkBody(id uint32, flags uint16, types []uint16, rows ...[]bv) []byte {
	b := binary.LittleEndian.AppendUint32(nil, id)
	b = binary.LittleEndian.AppendUint16(b, flags)
	if flags&bulkSendTypes != 0 {
		for _, t := range types {
			b = binary.LittleEndian.AppendUint16(b, t)
		}
	}
	for _, r := range rows {
		for _, v := range r {
			b = append(b, v.ind)
			if v.ind == indicatorNone {
				b = append(b, v.v...)
			}
		}
	}
	return b
}

// bulkInsert is a well-formed bulk of a two-parameter statement: types
// sent, rows of (INT, VARCHAR).
func bulkInsert(id uint32, rows [][2]any) []byte {
	var rs [][]bv
	for _, r := range rows {
		rs = append(rs, []bv{bInt(int32(r[0].(int))), bStr(r[1].(string))})
	}
	return append([]byte{comStmtBulkExecute}, bulkBody(id, bulkSendTypes, []uint16{tLong, tVarString}, rs...)...)
}

// send writes one command and returns the first packet of its answer.
func send(t *testing.T, c packetConn, cmd byte, body []byte) []byte {
	t.Helper()
	c.ResetSequence()
	if err := c.WritePacket(withHeader(append([]byte{cmd}, body...))); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatalf("reading the answer to command 0x%02x: %v", cmd, err)
	}
	return p
}

// asErr reads an ERR packet as an error (nil for anything else).
func asErr(p []byte) error {
	if !isErr(p) {
		return nil
	}
	return serverError(p)
}

// rawPrepare prepares text with COM_STMT_PREPARE and returns the statement
// id (go-mysql's Stmt does not expose it).
func rawPrepare(t *testing.T, c packetConn, text string) uint32 {
	t.Helper()
	p := send(t, c, comStmtPrepare, []byte(text))
	if len(p) < 12 || p[0] != 0 {
		t.Fatalf("prepare %q: %v", text, asErr(p))
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

// bulkClient logs in to the gateway at addr as a MariaDB client that asks
// for bulk operations whenever offered. It is the gateway's own upstream
// login (login.go), which asks MariaDB for them the same way; the packets
// of the commands are the tests' own.
func bulkClient(t *testing.T, addr, resource, token string) *upstream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	up, err := dialUpstream(ctx, &config.Resource{Name: "the gateway", Address: addr, Username: resource, Password: token,
		UpstreamTLS: config.UpstreamTLS{Mode: "require"}}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	return up
}

// bulkSession is a bulkClient session that agreed on bulk operations. The
// gateway offers them once it saw the resource's server agree, so the
// first session after a start may have to be followed by a second.
func bulkSession(t *testing.T, addr, resource, token string) *upstream {
	t.Helper()
	if c := bulkClient(t, addr, resource, token); c.bulk {
		return c
	}
	c := bulkClient(t, addr, resource, token)
	if !c.bulk {
		t.Fatal("the gateway did not offer bulk operations after a login to MariaDB agreed on them")
	}
	return c
}

// MariaDB's array execute from a client that did not agree on bulk
// operations (go-mysql's client cannot) is refused with a message saying
// what to do; nothing of it runs, the guard is not asked, and the session
// goes on. Directly, MariaDB refuses it too.
func TestBulkExecuteRefused(t *testing.T) {
	ev := newEnv(t, nil)
	table := fmt.Sprintf("%s.bulk_%s", testDB, randHex(3))
	if err := adminExec(fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, name VARCHAR(20))", table)); err != nil {
		t.Fatal(err)
	}
	sendBulk := func(c packetConn) error {
		id := rawPrepare(t, c, "INSERT INTO "+table+" VALUES (?, ?)")
		b := bulkInsert(id, [][2]any{{1, "a"}, {2, "b"}})
		return asErr(send(t, c, b[0], b[1:]))
	}

	direct, err := client.Connect("127.0.0.1:3306", "root", "", testDB)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	var me *gomysql.MyError
	if err := sendBulk(direct); !errors.As(err, &me) || me.Code != erUnsupportedPS {
		t.Fatalf("MariaDB directly: %v; want ER_UNSUPPORTED_PS (1295)", err)
	}

	c := gatewayClient(t, ev)
	err = sendBulk(c)
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

// The gateway's login agrees on bulk operations with MariaDB, and not with
// a server that does not offer them (go-mysql's server, as MySQL).
func TestBulkUpstreamLoginAgrees(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tests := []struct {
		name string
		res  *config.Resource
		bulk bool
	}{
		{"MariaDB, native password", &config.Resource{Name: "m", Address: "127.0.0.1:3306", Username: nativeUser, Password: userPass}, true},
		{"MariaDB, ed25519", &config.Resource{Name: "m", Address: "127.0.0.1:3306", Username: edUser, Password: userPass}, true},
		{"go-mysql server, caching_sha2 over TLS", &config.Resource{Name: "s", Address: startSha2Upstream(t, true), Username: "sha2user",
			Password: "sha2pass", UpstreamTLS: config.UpstreamTLS{Mode: "require"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up, err := dialUpstream(ctx, tc.res, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			if up.bulk != tc.bulk {
				t.Fatalf("bulk agreed = %v, want %v", up.bulk, tc.bulk)
			}
			if _, err := up.Execute("SELECT 1"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The greeting offers bulk operations only once every resource's server
// seen so far agreed on them. A client offered them whose resource's
// server does not agree has its bulk refused, and its session goes on;
// after that login, no client is offered them.
func TestBulkOfferFollowsUpstreams(t *testing.T) {
	ev := newEnv(t, nil)
	ev.res["my-sha2"] = &config.Resource{Name: "my-sha2", Type: "mysql", Address: startSha2Upstream(t, true),
		Username: "sha2user", Password: "sha2pass", UpstreamTLS: config.UpstreamTLS{Mode: "require"}}
	if c := bulkClient(t, ev.addr, "my-test", enginetest.Token); c.bulk {
		t.Fatal("the first session was offered bulk before any server agreed")
	}
	if c := bulkClient(t, ev.addr, "my-test", enginetest.Token); !c.bulk {
		t.Fatal("not offered after MariaDB agreed")
	}
	c := bulkClient(t, ev.addr, "my-sha2", enginetest.Token)
	if !c.bulk {
		t.Fatal("not offered before the other server was seen")
	}
	p := send(t, c, comStmtBulkExecute, bulkBody(1, bulkSendTypes, []uint16{tLong}, []bv{bInt(1)}))
	var me *gomysql.MyError
	if err := asErr(p); !errors.As(err, &me) || me.Code != erUnknownCom || !strings.Contains(me.Message, "did not agree") {
		t.Fatalf("bulk to a server that did not agree: %v", err)
	}
	if _, err := c.Execute("SELECT 1"); err != nil {
		t.Fatalf("the session did not go on: %v", err)
	}
	if c := bulkClient(t, ev.addr, "my-test", enginetest.Token); c.bulk {
		t.Fatal("still offered after a server did not agree")
	}
}

// nullRows is n rows of width NULLs.
func nullRows(n, width int) [][]bv {
	row := make([]bv, width)
	for i := range row {
		row[i] = bNull
	}
	rows := make([][]bv, n)
	for i := range rows {
		rows[i] = row
	}
	return rows
}

// bulkTable makes a table for the bulk tests: note has a default.
func bulkTable(t *testing.T) string {
	t.Helper()
	table := fmt.Sprintf("%s.bulk_%s", testDB, randHex(3))
	if err := adminExec(fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, name VARCHAR(20), note VARCHAR(20) DEFAULT 'dflt')", table)); err != nil {
		t.Fatal(err)
	}
	return table
}

// tableRows reads the table as "id:name:note" lines, in id order.
func tableRows(t *testing.T, table string) string {
	t.Helper()
	r, err := client.Connect("127.0.0.1:3306", "root", "", testDB)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Execute("SELECT id, IFNULL(name, 'NULL'), IFNULL(note, 'NULL') FROM " + table + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for i := range res.Values {
		id, _ := res.GetInt(i, 0)
		name, _ := res.GetString(i, 1)
		note, _ := res.GetString(i, 2)
		rows = append(rows, fmt.Sprintf("%d:%s:%s", id, name, note))
	}
	return strings.Join(rows, " ")
}

// A bulk insert runs through the gateway as one operation: the prepared
// text, every row's values (NULL, DEFAULT and IGNORE included) as its
// parameters, the row count in the recording; the server stores exactly
// those rows. MariaDB's "last prepared" statement id works too.
func TestBulkInsert(t *testing.T) {
	ev := newEnv(t, nil)
	table := bulkTable(t)
	c := bulkSession(t, ev.addr, "my-test", enginetest.Token)
	text := "INSERT INTO " + table + " (id, name, note) VALUES (?, ?, ?)"
	id := rawPrepare(t, c, text)
	types := []uint16{tLong, tVarString, tVarString}
	p := send(t, c, comStmtBulkExecute, bulkBody(id, bulkSendTypes, types,
		[]bv{bInt(1), bStr("ada"), bStr("x")},
		[]bv{bInt(2), bNull, bDefault},
		[]bv{bInt(3), bStr("cy"), bIgnore}))
	if len(p) == 0 || p[0] != 0 || affectedRows(p) != 3 {
		t.Fatalf("bulk insert: %q %v", p, asErr(p))
	}
	if got, want := tableRows(t, table), "1:ada:x 2:NULL:dflt 3:cy:dflt"; got != want {
		t.Fatalf("table holds %q, want %q", got, want)
	}
	op := ev.g.Op(t, text)
	if len(op.Params) != 9 || !op.Params[4].Null || string(op.Params[5].Value) != "DEFAULT" || op.Params[5].Format != 0 ||
		string(op.Params[8].Value) != "IGNORE" || string(op.Params[7].Value) != "cy" {
		t.Fatalf("the guard decided on %+v", op.Params)
	}
	var data *recording.OperationData
	for _, e := range ev.rec.OfType(recording.TypeOperation) {
		if d, ok := e.Data.(*recording.OperationData); ok && d.Text == text {
			data = d
		}
	}
	if data == nil || data.Command != "COM_STMT_BULK_EXECUTE" || data.BulkRows != 3 || data.Params != 9 {
		t.Fatalf("recorded %+v", data)
	}

	// The types sent before hold; the statement is named as the last one
	// prepared.
	p = send(t, c, comStmtBulkExecute, bulkBody(lastStmtID, 0, nil, []bv{bInt(4), bStr("dee"), bNull}))
	if len(p) == 0 || p[0] != 0 || affectedRows(p) != 1 {
		t.Fatalf("bulk insert without types, by the last id: %q %v", p, asErr(p))
	}
	if got := tableRows(t, table); !strings.HasSuffix(got, "4:dee:NULL") {
		t.Fatalf("table holds %q", got)
	}
}

// Refusals that keep the session: the guard's, and those MariaDB would
// answer with an error before running anything. Nothing runs, and the
// session goes on.
func TestBulkRefusedSessionGoesOn(t *testing.T) {
	ev := newEnv(t, nil)
	ev.g.SetRule(enginetest.DenyIf("DELETE"))
	table := bulkTable(t)
	c := bulkSession(t, ev.addr, "my-test", enginetest.Token)
	insert := rawPrepare(t, c, "INSERT INTO "+table+" (id, name) VALUES (?, ?)")
	del := rawPrepare(t, c, "DELETE FROM "+table+" WHERE id = ?")
	noParams := rawPrepare(t, c, "INSERT INTO "+table+" (id) VALUES (7)")
	untyped := rawPrepare(t, c, "INSERT INTO "+table+" (id) VALUES (?)")
	longData := rawPrepare(t, c, "INSERT INTO "+table+" (id, name) VALUES (?, ?)")
	row := []bv{bInt(1), bStr("a")}
	tests := []struct {
		name   string
		before func()
		body   []byte
		code   uint16
	}{
		{"denied by the guard", nil, bulkBody(del, bulkSendTypes, []uint16{tLong}, []bv{bInt(1)}), erTableAccessDenied},
		{"SEND_UNIT_RESULTS", nil, bulkBody(insert, bulkSendTypes|bulkUnitResults, []uint16{tLong, tVarString}, row), erUnsupportedPS},
		{"unknown flag", nil, bulkBody(insert, bulkSendTypes|1, []uint16{tLong, tVarString}, row), erUnsupportedPS},
		{"no parameters", nil, bulkBody(noParams, bulkSendTypes, nil), erUnsupportedPS},
		{"types never sent", nil, bulkBody(untyped, 0, nil, []bv{bInt(1)}), erWrongArguments},
		{"too many values", nil, bulkBody(insert, bulkSendTypes, []uint16{tLong, tVarString}, nullRows(maxBulkValues/2+1, 2)...), erWrongArguments},
		{"long data", func() {
			c.ResetSequence()
			long := append(binary.LittleEndian.AppendUint32([]byte{comStmtSendLongData}, longData), 1, 0)
			if err := c.WritePacket(withHeader(append(long, "mallory"...))); err != nil {
				t.Fatal(err)
			}
		}, bulkBody(longData, bulkSendTypes, []uint16{tLong, tVarString}, row), erWrongArguments},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			var me *gomysql.MyError
			if err := asErr(send(t, c, comStmtBulkExecute, tc.body)); !errors.As(err, &me) || me.Code != tc.code {
				t.Fatalf("got %v, want ERR %d", err, tc.code)
			}
			if _, err := c.Execute("SELECT 1"); err != nil {
				t.Fatalf("the session did not go on: %v", err)
			}
		})
	}
	if got := tableRows(t, table); got != "" {
		t.Fatalf("refused bulks ran: %q", got)
	}
	for _, text := range ev.g.Texts() {
		if strings.HasPrefix(text, "INSERT") {
			t.Fatalf("the guard was asked about %q, which could never run", text)
		}
	}
}

// A malformed bulk execute ends its session with a protocol error, before
// anything runs; another session of the same gateway goes on.
func TestBulkMalformedEndsSession(t *testing.T) {
	ev := newEnv(t, nil)
	table := bulkTable(t)
	other := bulkSession(t, ev.addr, "my-test", enginetest.Token)
	text := "INSERT INTO " + table + " (id, name) VALUES (?, ?)"
	types := []uint16{tLong, tVarString}
	row := []bv{bInt(1), bStr("abc")}
	tests := []struct {
		name string
		body func(id uint32) []byte
	}{
		{"header cut short", func(id uint32) []byte { return bulkBody(id, bulkSendTypes, types)[:5] }},
		{"types cut short", func(id uint32) []byte { return bulkBody(id, bulkSendTypes, types)[:9] }},
		{"no rows", func(id uint32) []byte { return bulkBody(id, bulkSendTypes, types) }},
		{"indicator missing", func(id uint32) []byte { b := bulkBody(id, bulkSendTypes, types, row); return b[:len(b)-5] }},
		{"value cut short", func(id uint32) []byte { b := bulkBody(id, bulkSendTypes, types, row); return b[:len(b)-1] }},
		{"unknown indicator", func(id uint32) []byte { return bulkBody(id, bulkSendTypes, types, []bv{{ind: 9}, bNull}) }},
		{"unknown type", func(id uint32) []byte {
			return bulkBody(id, bulkSendTypes, []uint16{0x42, tVarString}, []bv{{v: []byte{1}}, bNull})
		}},
		{"more values than parameters", func(id uint32) []byte {
			return bulkBody(id, bulkSendTypes, types, row, []bv{bInt(2), bStr("b"), bInt(3)})
		}},
		{"unknown statement", func(id uint32) []byte { return bulkBody(id+100, bulkSendTypes, types, row) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := bulkSession(t, ev.addr, "my-test", enginetest.Token)
			id := rawPrepare(t, c, text)
			var me *gomysql.MyError
			if err := asErr(send(t, c, comStmtBulkExecute, tc.body(id))); !errors.As(err, &me) || me.Code != erMalformedPacket {
				t.Fatalf("got %v, want ERR %d", err, erMalformedPacket)
			}
			if _, err := c.ReadPacket(); err == nil {
				t.Fatal("the session went on after a malformed bulk execute")
			}
			if _, err := other.Execute("SELECT 1"); err != nil {
				t.Fatalf("another session ended too: %v", err)
			}
		})
	}
	if got := tableRows(t, table); got != "" {
		t.Fatalf("a malformed bulk ran: %q", got)
	}
}

// readResultSet reads the rest of a result set whose first packet (the
// column count) was first: column definitions, EOF, rows, EOF. It returns
// the row packets.
func readResultSet(t *testing.T, c packetConn, first []byte) [][]byte {
	t.Helper()
	cur := &cursor{b: first}
	n, _ := cur.lenenc()
	if cur.bad || len(cur.b) != 0 || n == 0 {
		t.Fatalf("not a result set: %q %v", first, asErr(first))
	}
	for i := uint64(0); i <= n; i++ { // definitions and their EOF
		if _, err := c.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}
	var rows [][]byte
	for {
		p, err := c.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if isEOF(p) {
			return rows
		}
		if isErr(p) {
			t.Fatalf("result set ended with %v", asErr(p))
		}
		rows = append(rows, p)
	}
}

// A bulk insert with RETURNING answers with a result set (binary rows):
// it goes through the masker like any result, so a masked column never
// reaches the client, while the rows are stored as sent. (The MySQL
// parser does not know MariaDB's RETURNING: the statement is unknown and
// held for review.)
func TestRealBulkReturningMasked(t *testing.T) {
	t.Parallel()
	res := realResource("my-bulk-mask", "wait", []config.MaskRule{{Columns: []string{"*.email"}, Strategy: "redact"}})
	re := newRealEnv(t, res)
	table := scratchTable(t, "bret")
	c := bulkSession(t, re.addr, "my-bulk-mask", re.issue(t, person("alice", "engineers")))
	id := rawPrepare(t, c, "INSERT INTO "+table+" (id, name, email) VALUES (?, ?, ?) RETURNING id, email")
	c.ResetSequence()
	b := bulkBody(id, bulkSendTypes, []uint16{tLong, tVarString, tVarString},
		[]bv{bInt(10), bStr("x"), bStr("xena@example.com")},
		[]bv{bInt(11), bStr("y"), bStr("yuri@example.com")})
	if err := c.WritePacket(withHeader(append([]byte{comStmtBulkExecute}, b...))); err != nil {
		t.Fatal(err)
	}
	approveOnly(t, re, "my-bulk-mask")
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	rows := readResultSet(t, c, p)
	if len(rows) != 2 {
		t.Fatalf("%d rows returned, want 2", len(rows))
	}
	for _, r := range rows {
		if strings.Contains(string(r), "@example.com") || !strings.Contains(string(r), "****") {
			t.Fatalf("a masked column reached the client: %q", r)
		}
	}
	if got := emailOf(t, table, 11); got != "yuri@example.com" {
		t.Fatalf("stored email %q", got)
	}
	if _, err := c.Execute("SELECT 1"); err != nil {
		t.Fatalf("the session did not go on: %v", err)
	}
}

// approveOnly waits for the resource's one pending review and has carol
// (an approver) approve it; it returns the review.
func approveOnly(t *testing.T, re *realEnv, resource string) review.Review {
	t.Helper()
	r := pendingOnly(t, re, resource)
	if _, err := re.svc.Approve(context.Background(), r.ID, apiActor(person("carol", "dba-leads")), ""); err != nil {
		t.Fatal(err)
	}
	return r
}

// pendingOnly waits for the resource's one pending review.
func pendingOnly(t *testing.T, re *realEnv, resource string) review.Review {
	t.Helper()
	var r review.Review
	waitFor(t, func() bool {
		rs := re.pending(t, resource)
		if len(rs) == 1 {
			r = rs[0]
		}
		return len(rs) == 1
	})
	return r
}

func emailOf(t *testing.T, table string, id int) string {
	t.Helper()
	r, err := client.Connect("127.0.0.1:3306", "root", "", testDB)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Execute(fmt.Sprintf("SELECT email FROM %s WHERE id = %d", table, id))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := res.GetString(0, 0)
	return s
}

// namesOf reads the table's rows as "id:name" in id order.
func namesOf(t *testing.T, table string) string {
	t.Helper()
	r, err := client.Connect("127.0.0.1:3306", "root", "", testDB)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Execute("SELECT id, IFNULL(name, 'NULL') FROM " + table + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for i := range res.Values {
		id, _ := res.GetInt(i, 0)
		name, _ := res.GetString(i, 1)
		rows = append(rows, fmt.Sprintf("%d:%s", id, name))
	}
	return strings.Join(rows, " ")
}

// A bulk write under a policy that holds writes waits for a review that
// shows the prepared statement and every row's values; once another
// person approves it, exactly those rows run.
func TestRealBulkHeldRunsReviewedRows(t *testing.T) {
	t.Parallel()
	re := newRealEnv(t, realResource("my-bulk-wait", "wait", nil))
	table := scratchTable(t, "bhold")
	c := bulkSession(t, re.addr, "my-bulk-wait", re.issue(t, person("alice", "engineers")))
	text := "INSERT INTO " + table + " (id, name) VALUES (?, ?)"
	id := rawPrepare(t, c, text)
	c.ResetSequence()
	b := bulkBody(id, bulkSendTypes, []uint16{tLong, tVarString}, []bv{bInt(30), bStr("x")}, []bv{bInt(31), bNull}, []bv{bInt(32), bDefault})
	if err := c.WritePacket(withHeader(append([]byte{comStmtBulkExecute}, b...))); err != nil {
		t.Fatal(err)
	}
	r := pendingOnly(t, re, "my-bulk-wait")
	if got := namesOf(t, "`"+testDB+"`."+table); got != "1:ada 2:bob" {
		t.Fatalf("the held bulk ran before its approval: %q", got)
	}
	if _, err := re.svc.Approve(context.Background(), r.ID, apiActor(person("carol", "dba-leads")), ""); err != nil {
		t.Fatal(err)
	}
	if r.Text != text || len(r.Params) != 6 {
		t.Fatalf("the review shows %q with %d parameters", r.Text, len(r.Params))
	}
	shown := []struct {
		i      int
		format int16
		null   bool
		value  []byte
	}{
		{0, 1, false, bInt(30).v}, {1, 1, false, []byte("x")},
		{2, 1, false, bInt(31).v}, {3, 1, true, nil},
		{4, 1, false, bInt(32).v}, {5, 0, false, []byte("DEFAULT")},
	}
	for _, w := range shown {
		if p := r.Params[w.i]; p.Format != w.format || p.Null != w.null || string(p.Value) != string(w.value) {
			t.Fatalf("parameter %d shows as %+v", w.i+1, p)
		}
	}
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if len(p) == 0 || p[0] != 0 || affectedRows(p) != 3 {
		t.Fatalf("the approved bulk: %q %v", p, asErr(p))
	}
	if got, want := namesOf(t, "`"+testDB+"`."+table), "1:ada 2:bob 30:x 31:NULL 32:NULL"; got != want {
		t.Fatalf("table holds %q, want %q", got, want)
	}
}

// Attack on invariant 4: an approval of one bulk does not run another set
// of rows: a changed value, an indicator changed (NULL to DEFAULT), a row
// dropped or added each need their own review, and nothing of them runs.
// The approved bulk then runs once.
func TestRealBulkApprovalBindsRows(t *testing.T) {
	t.Parallel()
	re := newRealEnv(t, realResource("my-bulk-reject", "reject", nil))
	table := scratchTable(t, "bbind")
	c := bulkSession(t, re.addr, "my-bulk-reject", re.issue(t, person("alice", "engineers")))
	id := rawPrepare(t, c, "INSERT INTO "+table+" (id, name) VALUES (?, ?)")
	bulk := func(rows ...[]bv) []byte {
		return send(t, c, comStmtBulkExecute, bulkBody(id, bulkSendTypes, []uint16{tLong, tVarString}, rows...))
	}
	approved := [][]bv{{bInt(20), bStr("a")}, {bInt(21), bNull}}
	reviewed := reviewIDIn(t, asErr(bulk(approved...)))
	if _, err := re.svc.Approve(context.Background(), reviewed, apiActor(person("carol", "dba-leads")), ""); err != nil {
		t.Fatal(err)
	}
	attacks := []struct {
		name string
		rows [][]bv
	}{
		{"a value changed", [][]bv{{bInt(20), bStr("b")}, {bInt(21), bNull}}},
		{"NULL made DEFAULT", [][]bv{{bInt(20), bStr("a")}, {bInt(21), bDefault}}},
		{"NULL made IGNORE", [][]bv{{bInt(20), bStr("a")}, {bInt(21), bIgnore}}},
		{"a row dropped", [][]bv{{bInt(20), bStr("a")}}},
		{"a row added", [][]bv{{bInt(20), bStr("a")}, {bInt(21), bNull}, {bInt(22), bStr("c")}}},
		{"rows swapped", [][]bv{{bInt(21), bNull}, {bInt(20), bStr("a")}}},
	}
	for _, a := range attacks {
		err := asErr(bulk(a.rows...))
		if err == nil {
			t.Fatalf("%s: it ran on the approval of another bulk", a.name)
		}
		if got := reviewIDIn(t, err); got == reviewed {
			t.Fatalf("%s: refused naming the approved review %s", a.name, got)
		}
	}
	if got := namesOf(t, "`"+testDB+"`."+table); got != "1:ada 2:bob" {
		t.Fatalf("the table changed: %q", got)
	}
	if p := bulk(approved...); len(p) == 0 || p[0] != 0 || affectedRows(p) != 2 {
		t.Fatalf("the approved bulk: %q %v", p, asErr(p))
	}
	if err := asErr(bulk(approved...)); err == nil {
		t.Fatal("the approval ran twice")
	}
	if got := namesOf(t, "`"+testDB+"`."+table); got != "1:ada 2:bob 20:a 21:NULL" {
		t.Fatalf("table holds %q", got)
	}
	if !re.stored(t, "INSERT INTO "+table, `"command":"COM_STMT_BULK_EXECUTE"`, `"bulk_rows":2`, `"decision":"allow"`) {
		t.Fatal("the bulk that ran is not in the recording with its row count")
	}
}
