package mysql

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/go-mysql-org/go-mysql/client"
)

// The attacks of this file read views whose definitions call a stored
// function that deletes the rows of a log table: a read of such a view
// through the gateway must not run for a creator (reads only), and the
// log must keep its row. The engine classifies the definitions of the
// views an operation names (viewkind.go).

// fnView makes, in schema db, a stored function that empties testDB's
// table log and a view calling it; it returns the view's name.
func fnView(t *testing.T, db, log string) string {
	t.Helper()
	fn, view := "vfn_"+randHex(3), "vv_"+randHex(3)
	if err := adminExec(
		fmt.Sprintf("CREATE FUNCTION %s.%s() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM %s.%s; RETURN 1; END", db, fn, testDB, log),
		fmt.Sprintf("CREATE VIEW %s.%s AS SELECT %s.%s() AS x", db, view, db, fn)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = adminExec(fmt.Sprintf("DROP VIEW IF EXISTS %s.%s", db, view), fmt.Sprintf("DROP FUNCTION IF EXISTS %s.%s", db, fn))
	})
	return view
}

// otherSchema makes a second schema the test users may use.
func otherSchema(t *testing.T) string {
	t.Helper()
	db := testDB + "_o" + randHex(2)
	if err := adminExec("CREATE DATABASE "+db,
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'%%'", db, nativeUser)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec("DROP DATABASE IF EXISTS " + db) })
	return db
}

// refusedRead runs q through c, which must refuse it as Unknown (the
// creator's guard refuses any kind but read), with the log intact.
func refusedRead(t *testing.T, ev *env, c *client.Conn, log, q string) {
	t.Helper()
	if _, err := c.Execute(q); err == nil {
		t.Errorf("%q ran for a creator", q)
	}
	if n := upstreamCount(t, log); n != 1 {
		t.Fatalf("after %q the view's function deleted: %d rows left", q, n)
	}
	if op := ev.g.LastOp(); op.Class.Kind != sqlkind.Unknown {
		t.Errorf("%q was decided as %s (%s), not unknown", q, op.Class.Kind, op.Class.Reason)
	}
}

// TestReviewViewNested: a view over a view over the function view.
func TestReviewViewNested(t *testing.T) {
	log := reviewTable(t, "view_nested")
	inner := fnView(t, testDB, log)
	mid, outer := "vmid_"+randHex(3), "vout_"+randHex(3)
	if err := adminExec(
		fmt.Sprintf("CREATE VIEW %s.%s AS SELECT x + 1 AS y FROM %s.%s", testDB, mid, testDB, inner),
		fmt.Sprintf("CREATE VIEW %s.%s AS SELECT y FROM %s.%s", testDB, outer, testDB, mid)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = adminExec(fmt.Sprintf("DROP VIEW IF EXISTS %s.%s, %s.%s", testDB, outer, testDB, mid))
	})
	ev := creatorEnv(t)
	c := gatewayClient(t, ev)
	if _, err := c.Execute("USE " + testDB); err != nil {
		t.Fatal(err)
	}
	refusedRead(t, ev, c, log, "SELECT * FROM "+outer)
	why := ev.g.LastOp().Class.Reason
	for _, want := range []string{"reads view " + testDB + "." + outer, "reads view " + testDB + "." + mid, "reads view " + testDB + "." + inner, "calls " + testDB + ".vfn_"} {
		if !strings.Contains(why, want) {
			t.Errorf("the reason %q does not say %q", why, want)
		}
	}
	refusedRead(t, ev, c, log, "SELECT (SELECT COUNT(*) FROM "+mid+") AS n")
	refusedRead(t, ev, c, log, "SELECT 1 UNION SELECT y FROM "+testDB+"."+outer)
}

// TestReviewViewHarmless: views over a table, and calling only built-in
// functions, stay reads and run for a creator.
func TestReviewViewHarmless(t *testing.T) {
	plain, builtin := "vplain_"+randHex(3), "vbuilt_"+randHex(3)
	if err := adminExec(
		fmt.Sprintf("CREATE VIEW %s.%s AS SELECT id, name FROM %s.people", testDB, plain, testDB),
		fmt.Sprintf("CREATE VIEW %s.%s AS SELECT UPPER(name) AS u, CONCAT(name, '!') AS c, LENGTH(name) AS l, "+
			"COALESCE(email, 'none') AS e, NOW() AS at FROM %s.people", testDB, builtin, testDB)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec(fmt.Sprintf("DROP VIEW IF EXISTS %s.%s, %s.%s", testDB, builtin, testDB, plain)) })
	ev := creatorEnv(t)
	c := gatewayClient(t, ev)
	if _, err := c.Execute("USE " + testDB); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SELECT * FROM " + plain + " ORDER BY id", "SELECT u, c, l, e FROM " + testDB + "." + builtin + " ORDER BY u"} {
		res, err := c.Execute(q)
		if err != nil {
			t.Fatalf("%q: %v (%s)", q, err, ev.g.LastOp().Class.Reason)
		}
		if len(res.Values) != 2 {
			t.Fatalf("%q gave %d rows", q, len(res.Values))
		}
		if op := ev.g.LastOp(); op.Class.Kind != sqlkind.Read {
			t.Fatalf("%q was decided as %s: %s", q, op.Class.Kind, op.Class.Reason)
		}
	}
}

// TestReviewViewHiddenDefinition: a resource whose upstream user may read
// the view (SELECT) but not its definition (no SHOW VIEW): the gateway
// cannot tell what reading it runs, and refuses it as unknown.
func TestReviewViewHiddenDefinition(t *testing.T) {
	log := reviewTable(t, "view_hidden")
	view := fnView(t, testDB, log)
	user := "cs_nosv_" + randHex(3)
	if err := adminExec(fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, userPass),
		fmt.Sprintf("GRANT SELECT ON %s.%s TO '%s'@'%%'", testDB, view, user)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user)) })
	direct, err := client.Connect("127.0.0.1:3306", user, userPass, testDB)
	if err != nil {
		t.Fatal(err)
	}
	res, err := direct.Execute(fmt.Sprintf("SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_NAME = '%s'", view))
	direct.Close()
	if err != nil || len(res.Values) != 1 {
		t.Fatalf("the user does not see the view: %v", err)
	}
	if def, _ := res.GetString(0, 0); def != "" {
		t.Fatalf("the user reads the definition without SHOW VIEW: %q", def)
	}
	noShow := &config.Resource{Name: "my-noshow", Type: "mysql", Address: "127.0.0.1:3306", Database: testDB, Username: user, Password: userPass}
	ev := newEnv(t, func(o *Options) {
		o.Guard = creatorGuard{o.Guard.(*enginetest.Guard)}
		base := o.Resource
		o.Resource = func(n string) (*config.Resource, bool) {
			if n == noShow.Name {
				return noShow, true
			}
			return base(n)
		}
	})
	c := gatewayClientAs(t, ev, noShow.Name)
	refusedRead(t, ev, c, log, "SELECT * FROM "+view)
	if why := ev.g.LastOp().Class.Reason; !strings.Contains(why, "SHOW VIEW") {
		t.Errorf("the reason %q does not name SHOW VIEW", why)
	}
}

// TestReviewViewPrepared: the function view read through the protocol's
// prepared statements and SQL-level PREPARE/EXECUTE.
func TestReviewViewPrepared(t *testing.T) {
	log := reviewTable(t, "view_prep")
	view := fnView(t, testDB, log)
	ev := creatorEnv(t)
	c := gatewayClient(t, ev)
	if _, err := c.Execute("USE " + testDB); err != nil {
		t.Fatal(err)
	}
	st, err := c.Prepare("SELECT * FROM " + view + " WHERE x = ?")
	if err != nil {
		t.Fatalf("COM_STMT_PREPARE runs nothing: %v", err)
	}
	if _, err := st.Execute(1); err == nil {
		t.Error("the prepared read of the function view ran")
	}
	if n := upstreamCount(t, log); n != 1 {
		t.Fatalf("the execute ran the view's function: %d rows left", n)
	}
	if op := ev.g.LastOp(); op.Class.Kind != sqlkind.Unknown || op.Text != "SELECT * FROM "+view+" WHERE x = ?" {
		t.Errorf("the execute was decided as %s: %q", op.Class.Kind, op.Text)
	}
	_ = st.Close()
	_, _ = c.Execute("PREPARE s FROM 'SELECT * FROM " + view + "'")
	refusedRead(t, ev, c, log, "EXECUTE s")
}

// TestReviewViewOtherSchema: the function view in another schema, named
// qualified, and unqualified after a USE in the same text.
func TestReviewViewOtherSchema(t *testing.T) {
	log := reviewTable(t, "view_other")
	other := otherSchema(t)
	view := fnView(t, other, log)
	ev := schemasEnv(t, true, other)
	c := gatewayClient(t, ev)
	if _, err := c.Execute("USE " + testDB); err != nil {
		t.Fatal(err)
	}
	refusedRead(t, ev, c, log, "SELECT * FROM "+other+"."+view)
	refusedRead(t, ev, c, log, "SELECT * FROM `"+other+"`.`"+view+"`")
	db := ev.open(t, "my-test", "multiStatements=true")
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("USE " + testDB + "; USE " + other + "; SELECT * FROM " + view); err == nil {
		t.Error("the unqualified read after a USE ran")
	}
	if op := ev.g.LastOp(); op.Class.Kind != sqlkind.Unknown {
		t.Errorf("the unqualified read after a USE was decided as %s", op.Class.Kind)
	}
	if n := upstreamCount(t, log); n != 1 {
		t.Fatalf("the view's function deleted: %d rows left", n)
	}
}

// TestReviewViewRedefined: the kind is decided per operation against the
// catalog of the moment, not kept with a statement: a statement prepared
// while its view was harmless is unknown once the view (redefined
// through the gateway) calls a stored function.
func TestReviewViewRedefined(t *testing.T) {
	log := reviewTable(t, "view_redef")
	fnv := fnView(t, testDB, log)
	view := "vredef_" + randHex(3)
	if err := adminExec(fmt.Sprintf("CREATE VIEW %s.%s AS SELECT 1 AS x", testDB, view)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminExec(fmt.Sprintf("DROP VIEW IF EXISTS %s.%s", testDB, view)) })
	ev := newEnv(t, nil) // allows everything: the test reads the decisions
	c := gatewayClient(t, ev)
	if _, err := c.Execute("USE " + testDB); err != nil {
		t.Fatal(err)
	}
	st, err := c.Prepare("SELECT x FROM " + view)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Execute(); err != nil || ev.g.LastOp().Class.Kind != sqlkind.Read {
		t.Fatalf("the harmless view: %v, %s", err, ev.g.LastOp().Class.Kind)
	}
	if _, err := c.Execute(fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT x FROM %s", view, fnv)); err != nil {
		t.Fatal(err)
	}
	_, _ = st.Execute()
	if op := ev.g.LastOp(); op.Class.Kind != sqlkind.Unknown || !strings.Contains(op.Class.Reason, fnv) {
		t.Fatalf("the redefined view was decided as %s: %s", op.Class.Kind, op.Class.Reason)
	}
}

// schemasEnv is an engine whose resource my-test allows the schemas
// testDB and others; creator gives it the creator's guard.
func schemasEnv(t *testing.T, creator bool, others ...string) *env {
	t.Helper()
	return newEnv(t, func(o *Options) {
		if creator {
			o.Guard = creatorGuard{o.Guard.(*enginetest.Guard)}
		}
		base := o.Resource
		o.Resource = func(n string) (*config.Resource, bool) {
			r, ok := base(n)
			if ok && n == "my-test" {
				cp := *r
				cp.Schemas = append([]string{testDB}, others...)
				return &cp, true
			}
			return r, ok
		}
	})
}

// gatewayClientAs is gatewayClient for another resource.
func gatewayClientAs(t *testing.T, ev *env, res string) *client.Conn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(mustParse(serverTLS.Certificates[0].Certificate[0]))
	c, err := client.Connect(ev.addr, res, enginetest.Token, "", func(c *client.Conn) error {
		c.SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestReviewViewCreatedElsewhere: a function view created outside the
// gateway (directly, or through another gateway replica) after the
// session's catalog was loaded is not taken for a table while the cached
// catalog lasts: a name the catalog does not list has it loaded again.
// The wait only lets the catalog grow older than viewReloadGap.
func TestReviewViewCreatedElsewhere(t *testing.T) {
	log := reviewTable(t, "view_elsewhere")
	ev := creatorEnv(t)
	c := gatewayClient(t, ev)
	if _, err := c.Execute("SELECT id FROM " + testDB + ".people"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(viewReloadGap + 100*time.Millisecond)
	view := fnView(t, testDB, log)
	refusedRead(t, ev, c, log, "SELECT * FROM "+testDB+"."+view)
}
