package mysql

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/go-mysql-org/go-mysql/client"
)

// A prepared statement's unqualified names resolve in the schema that was
// current when it was prepared, at every execute, for the protocol's
// prepared statements and SQL-level PREPARE alike. The tests below attack
// a gateway that would decide, show and record an execute in the schema
// current at the execute instead: "DELETE FROM t" approved as a delete in
// staging would empty prod.t.

// twoSchemas makes two databases, each with a table t holding the same
// ids (and different emails), that the test user may change; it returns
// their names (prod first).
func twoSchemas(t *testing.T) (prod, stg string) {
	t.Helper()
	sfx := randHex(3)
	prod, stg = "cs_prod_"+sfx, "cs_stg_"+sfx
	var stmts []string
	for _, db := range []string{prod, stg} {
		stmts = append(stmts, "CREATE DATABASE "+db,
			fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'%%'", db, nativeUser),
			fmt.Sprintf("CREATE TABLE %s.t (id INT PRIMARY KEY, name VARCHAR(20), email VARCHAR(80))", db),
			fmt.Sprintf("INSERT INTO %s.t VALUES (1, 'one', 'one@%s.example'), (2, 'two', 'two@%s.example'), (3, 'three', NULL)", db, db, db))
	}
	if err := adminExec(stmts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec("DROP DATABASE IF EXISTS "+prod, "DROP DATABASE IF EXISTS "+stg) })
	return prod, stg
}

// idsOf lists the ids in db.t, read directly.
func idsOf(t *testing.T, db string) string {
	t.Helper()
	r, err := client.Connect("127.0.0.1:3306", "root", "", db)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Execute("SELECT id FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range res.Values {
		n, _ := res.GetInt(i, 0)
		ids = append(ids, fmt.Sprint(n))
	}
	return strings.Join(ids, ",")
}

// executeBody is a COM_STMT_EXECUTE body of a statement without
// parameters.
func executeBody(id uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, id)
	b = append(b, 0) // flags
	return binary.LittleEndian.AppendUint32(b, 1)
}

// MariaDB itself: what the gateway's binding rests on. A statement
// prepared in prod deletes from prod.t when executed after the current
// schema became staging, through the protocol and through SQL-level
// PREPARE; the executed statement's DATABASE() is prod too.
func TestMariaDBResolvesPreparedNamesAtPrepare(t *testing.T) {
	prod, stg := twoSchemas(t)
	c, err := client.Connect("127.0.0.1:3306", "root", "", prod)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Prepare("DELETE FROM t WHERE id = 1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UseDB(stg); err != nil { // COM_INIT_DB
		t.Fatal(err)
	}
	if _, err := st.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"USE " + prod, "PREPARE s FROM 'DELETE FROM t WHERE id = 2'", "PREPARE d FROM 'SELECT DATABASE()'", "USE " + stg, "EXECUTE s"} {
		if _, err := c.Execute(q); err != nil {
			t.Fatal(q, err)
		}
	}
	r, err := c.Execute("EXECUTE d")
	if err != nil {
		t.Fatal(err)
	}
	if db, _ := r.GetString(0, 0); db != prod {
		t.Fatalf("DATABASE() in a statement prepared in %s, executed in %s: %q", prod, stg, db)
	}
	if got := idsOf(t, prod); got != "3" {
		t.Fatalf("%s.t holds %s: the executes did not run in the schema they were prepared in", prod, got)
	}
	if got := idsOf(t, stg); got != "1,2,3" {
		t.Fatalf("%s.t holds %s", stg, got)
	}
}

// twoSchemaResource is a resource that allows both schemas, prod its
// database, writes reviewed in the mode.
func twoSchemaResource(name, mode, prod, stg string, masking []config.MaskRule) config.Resource {
	res := realResource(name, mode, masking)
	res.Database, res.Schemas = prod, []string{prod, stg}
	return res
}

// prepFlow prepares a statement one way and returns what executes it.
type prepFlow struct {
	name    string
	prepare func(t *testing.T, c packetConn, text string) (execute func() []byte)
}

var prepFlows = []prepFlow{
	{"COM_STMT_EXECUTE", func(t *testing.T, c packetConn, text string) func() []byte {
		id := rawPrepare(t, c, text)
		return func() []byte { return send(t, c, comStmtExecute, executeBody(id)) }
	}},
	{"SQL-level EXECUTE", func(t *testing.T, c packetConn, text string) func() []byte {
		if err := asErr(send(t, c, comQuery, []byte("PREPARE s FROM '"+text+"'"))); err != nil {
			t.Fatal(err)
		}
		return func() []byte { return send(t, c, comQuery, []byte("EXECUTE s")) }
	}},
}

// useDB sends COM_INIT_DB.
func useDB(t *testing.T, c packetConn, db string) {
	t.Helper()
	if err := asErr(send(t, c, comInitDB, []byte(db))); err != nil {
		t.Fatal(err)
	}
}

// Attack on invariant 4: an approval given for an execute shown in
// staging does not run the same statement prepared in prod (same text,
// same name, same parameters, same current schema at the execute); the
// refusal's review shows prod, and once that is approved the statement
// runs where the review said. The recording names prod.
func TestRealPreparedSchemaBindsApproval(t *testing.T) {
	t.Parallel()
	for i, f := range prepFlows {
		t.Run(f.name, func(t *testing.T) {
			prod, stg := twoSchemas(t)
			name := fmt.Sprintf("my-prepschema-%d", i)
			re := newRealEnv(t, twoSchemaResource(name, "reject", prod, stg, nil))
			c := bulkClient(t, re.addr, name, re.issue(t, person("alice", "engineers")))
			ctx, carol := context.Background(), apiActor(person("carol", "dba-leads"))
			text := "DELETE FROM t WHERE id = 1"
			shows := func(id, schema string) {
				t.Helper()
				r, err := re.svc.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if r.State.Schema != schema {
					t.Fatalf("review %s shows schema %q, want %q", id, r.State.Schema, schema)
				}
			}

			// Legitimately: prepared and executed in staging, approved.
			useDB(t, c, stg)
			inStg := f.prepare(t, c, text)
			approved := reviewIDIn(t, asErr(inStg()))
			shows(approved, stg)
			if _, err := re.svc.Approve(ctx, approved, carol, ""); err != nil {
				t.Fatal(err)
			}

			// The attack: the same statement prepared in prod, executed
			// with staging current.
			useDB(t, c, prod)
			inProd := f.prepare(t, c, text)
			useDB(t, c, stg)
			err := asErr(inProd())
			if err == nil {
				t.Fatalf("a statement prepared in %s ran on the approval of one in %s", prod, stg)
			}
			held := reviewIDIn(t, err)
			if held == approved {
				t.Fatalf("refused naming the approved review %s", held)
			}
			shows(held, prod)
			if got := idsOf(t, prod) + " " + idsOf(t, stg); got != "1,2,3 1,2,3" {
				t.Fatalf("the tables changed: %s", got)
			}

			// Approved as shown, it runs where shown.
			if _, err := re.svc.Approve(ctx, held, carol, ""); err != nil {
				t.Fatal(err)
			}
			if err := asErr(inProd()); err != nil {
				t.Fatalf("the approved execute: %v", err)
			}
			if got := idsOf(t, prod) + " " + idsOf(t, stg); got != "2,3 1,2,3" {
				t.Fatalf("after the approved execute the tables hold %s, want prod without 1", got)
			}
			want := text
			if f.name != "COM_STMT_EXECUTE" {
				want = "EXECUTE s"
			}
			if !re.stored(t, want, `"schema":"`+prod+`"`, `"decision":"allow"`) {
				t.Fatalf("the recording does not show the execute as run in %s", prod)
			}
		})
	}
}

// A bulk execute is decided in the prepare-time schema too.
func TestRealBulkPreparedSchema(t *testing.T) {
	t.Parallel()
	prod, stg := twoSchemas(t)
	re := newRealEnv(t, twoSchemaResource("my-prepschema-bulk", "reject", prod, stg, nil))
	c := bulkSession(t, re.addr, "my-prepschema-bulk", re.issue(t, person("alice", "engineers")))
	id := rawPrepare(t, c, "DELETE FROM t WHERE id = ?")
	useDB(t, c, stg)
	p := send(t, c, comStmtBulkExecute, bulkBody(id, bulkSendTypes, []uint16{tLong}, []bv{bInt(1)}, []bv{bInt(2)}))
	held := reviewIDIn(t, asErr(p))
	r, err := re.svc.Get(context.Background(), held)
	if err != nil {
		t.Fatal(err)
	}
	if r.State.Schema != prod {
		t.Fatalf("the bulk's review shows schema %q, want %q where it was prepared", r.State.Schema, prod)
	}
	if _, err := re.svc.Approve(context.Background(), held, apiActor(person("carol", "dba-leads")), ""); err != nil {
		t.Fatal(err)
	}
	if err := asErr(send(t, c, comStmtBulkExecute, bulkBody(id, bulkSendTypes, []uint16{tLong}, []bv{bInt(1)}, []bv{bInt(2)}))); err != nil {
		t.Fatal(err)
	}
	if got := idsOf(t, prod) + " " + idsOf(t, stg); got != "3 1,2,3" {
		t.Fatalf("the tables hold %s", got)
	}
}

// Attack on invariant 5: a computed column of a statement prepared in
// prod, executed with staging current, is traced to prod's column, whose
// rule masks it (traced to staging's, which no rule names, it passed).
func TestRealPreparedSchemaMasking(t *testing.T) {
	t.Parallel()
	prod, stg := twoSchemas(t)
	rules := []config.MaskRule{{Columns: []string{prod + ".t.email"}, Strategy: "redact"}}
	re := newRealEnv(t, twoSchemaResource("my-prepschema-mask", "wait", prod, stg, rules))
	c := bulkClient(t, re.addr, "my-prepschema-mask", re.issue(t, person("alice", "engineers")))
	for _, f := range prepFlows {
		useDB(t, c, prod)
		execute := f.prepare(t, c, "SELECT LOWER(email) AS e FROM t WHERE id = 1")
		useDB(t, c, stg)
		p := execute()
		if err := asErr(p); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		rows := readResultSet(t, c, p)
		if len(rows) != 1 || strings.Contains(string(rows[0]), "example") {
			t.Fatalf("%s: %s's masked email reached the client: %q", f.name, prod, rows)
		}
	}
	if !re.stored(t, "SELECT LOWER(email) AS e FROM t", `"schema":"`+prod+`"`) {
		t.Fatalf("the recording does not show the select as run in %s", prod)
	}
}

// The schema a COM_QUERY text is decided in (textSchema): an EXECUTE on
// its own takes its statement's prepare-time schema; a text mixing it
// with statements of another schema is refused; statements prepared
// earlier in the same text count with the schema current there.
func TestTextSchema(t *testing.T) {
	cls := sqlkind.NewMySQL(sqlkind.MySQLOptions{})
	cases := []struct {
		name, text string
		prepared   map[string]string // name -> schema, before the text
		schema     string            // "" with refused
		refused    bool
	}{
		{"no execute", "DELETE FROM t", map[string]string{"s": "prod"}, "stg", false},
		{"execute alone", "EXECUTE s", map[string]string{"s": "prod"}, "prod", false},
		{"execute in the current schema", "EXECUTE s", map[string]string{"s": "stg"}, "stg", false},
		{"unknown name", "EXECUTE x", map[string]string{"s": "prod"}, "stg", false},
		{"execute with another statement", "EXECUTE s; SELECT 1", map[string]string{"s": "prod"}, "", true},
		{"two executes", "EXECUTE s; EXECUTE s", map[string]string{"s": "prod"}, "", true},
		{"prepared here", "PREPARE s FROM 'DELETE FROM t'; EXECUTE s", map[string]string{"s": "prod"}, "stg", false},
		{"prepared here after a USE", "USE prod; PREPARE s FROM 'DELETE FROM t'; USE stg; EXECUTE s", nil, "", true},
		{"USE before the execute", "USE prod; EXECUTE s", map[string]string{"s": "prod"}, "stg", false},
		{"USE away before the execute", "USE other; EXECUTE s", map[string]string{"s": "stg"}, "", true},
		{"deallocated here", "DEALLOCATE PREPARE s; EXECUTE s", map[string]string{"s": "prod"}, "stg", false},
		{"prepared from a variable", "USE prod; PREPARE s FROM @q; USE stg; EXECUTE s", nil, "", true},
		{"mixed case name", "EXECUTE S", map[string]string{"s": "prod"}, "prod", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{state: guard.State{Schema: "stg"}, preparedIn: tc.prepared}
			if c.preparedIn == nil {
				c.preparedIn = map[string]string{}
			}
			before := fmt.Sprint(c.preparedIn)
			schema, why := c.textSchema(cls.Statements(tc.text))
			if (why != "") != tc.refused || (!tc.refused && schema != tc.schema) {
				t.Fatalf("got %q, refused %q; want %q, refused %v", schema, why, tc.schema, tc.refused)
			}
			if after := fmt.Sprint(c.preparedIn); after != before {
				t.Fatalf("textSchema changed the session's statements: %s -> %s", before, after)
			}
		})
	}
}

// Through the gateway: a multi-statement text whose EXECUTE runs in
// another schema than its neighbours is refused before the guard is
// asked, nothing of it runs; COM_RESET_CONNECTION forgets the statements
// and their schemas (an EXECUTE is then Unknown in the current schema,
// a protocol execute an unknown handler), and COM_CHANGE_USER stays
// refused without changing the binding.
func TestPreparedSchemaSession(t *testing.T) {
	prod, stg := twoSchemas(t)
	ev := newEnv(t, nil)
	ev.res["my-two"] = &config.Resource{Name: "my-two", Type: "mysql", Address: "127.0.0.1:3306",
		Database: prod, Schemas: []string{prod, stg}, Username: nativeUser, Password: userPass}
	c := bulkClient(t, ev.addr, "my-two", enginetest.Token)
	if err := asErr(send(t, c, comSetOption, []byte{0, 0})); err != nil { // multi-statements on
		t.Fatal(err)
	}
	id := rawPrepare(t, c, "DELETE FROM t WHERE id = 3")
	if err := asErr(send(t, c, comQuery, []byte("PREPARE s FROM 'DELETE FROM t WHERE id = 2'"))); err != nil {
		t.Fatal(err)
	}
	useDB(t, c, stg)
	asked := len(ev.g.Texts())
	err := asErr(send(t, c, comQuery, []byte("EXECUTE s; DELETE FROM t WHERE id = 1")))
	if err == nil || !strings.Contains(err.Error(), "prepared in schema") {
		t.Fatalf("a text mixing schemas: %v", err)
	}
	if len(ev.g.Texts()) != asked {
		t.Fatal("the guard was asked about a text refused for mixing schemas")
	}
	if got := idsOf(t, prod) + " " + idsOf(t, stg); got != "1,2,3 1,2,3" {
		t.Fatalf("the tables changed: %s", got)
	}

	if p := send(t, c, comChangeUser, []byte("root\x00")); !isErr(p) {
		t.Fatalf("COM_CHANGE_USER: %q", p)
	}
	if err := asErr(send(t, c, comQuery, []byte("EXECUTE s"))); err != nil {
		t.Fatal(err)
	}
	if op := ev.g.LastOp(); op.State.Schema != prod || op.Class.Kind != sqlkind.Write {
		t.Fatalf("EXECUTE s was decided in %q as %v, want %s and write", op.State.Schema, op.Class.Kind, prod)
	}

	if p := send(t, c, comResetConnection, nil); isErr(p) {
		t.Fatalf("reset: %v", asErr(p))
	}
	if p := send(t, c, comStmtExecute, executeBody(id)); !isErr(p) {
		t.Fatalf("a statement prepared before the reset ran: %q", p)
	}
	if err := asErr(send(t, c, comQuery, []byte("EXECUTE s"))); err == nil {
		t.Fatal("EXECUTE s ran after the reset")
	}
	if op := ev.g.LastOp(); op.Class.Kind != sqlkind.Unknown || op.State.Schema != stg {
		t.Fatalf("EXECUTE s after the reset was decided in %q as %v, want %s and unknown", op.State.Schema, op.Class.Kind, stg)
	}
	if got := idsOf(t, prod) + " " + idsOf(t, stg); got != "1,3 1,2,3" {
		t.Fatalf("the tables hold %s", got)
	}
}

// Attack on invariants 1 and 4: a stored procedure prepares SQL-level
// statements at session level, in its own schema, under names the
// gateway tracks. Once an approved CALL re-prepared s as a DELETE, the
// gateway must not decide "EXECUTE s" as the SELECT it saw prepared
// before: it is Unknown, reviewed, and nothing runs unreviewed.
func TestRealCallReprepares(t *testing.T) {
	t.Parallel()
	re := newRealEnv(t, realResource("my-callprep", "reject", nil))
	table := scratchTable(t, "callprep")
	proc := table + "_p"
	if err := adminExec(fmt.Sprintf("CREATE PROCEDURE %s.%s() BEGIN PREPARE s FROM 'DELETE FROM %s.%s'; END", testDB, proc, testDB, table)); err != nil {
		t.Fatal(err)
	}
	db := re.login(t, person("alice", "engineers"), "my-callprep")
	ctx, carol := context.Background(), apiActor(person("carol", "dba-leads"))
	for _, q := range []string{"PREPARE s FROM 'SELECT 1'", "EXECUTE s"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	call := "CALL " + proc + "()"
	if _, err := re.svc.Approve(ctx, reviewIDIn(t, func() error { _, err := db.Exec(call); return err }()), carol, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(call); err != nil {
		t.Fatalf("the approved CALL: %v", err)
	}
	_, err := db.Exec("EXECUTE s")
	if err == nil || !strings.Contains(err.Error(), "review") {
		t.Fatalf("EXECUTE s of what the procedure prepared ran unreviewed: %v", err)
	}
	if got := namesOf(t, "`"+testDB+"`."+table); got != "1:ada 2:bob" {
		t.Fatalf("the table changed: %q", got)
	}
}
