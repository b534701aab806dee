package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/recording"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// reviewUpstream connects to the review database directly, bypassing the
// gateway: the test's setup and its witness of what ran.
func reviewUpstream(t *testing.T, db string, setup ...string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	up, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+db+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close(context.Background()) })
	for _, q := range setup {
		if _, err := up.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return up
}

// A Parse that declares a parameter with a user domain type would have the
// domain's CHECK (here a plpgsql function that writes) run at Bind, with
// the bound value, before the gateway decides anything; a Sync right after
// the Bind would commit it. The gateway refuses such a Parse, so nothing
// runs, with or without an Execute; built-in parameter types are
// unaffected.
func TestReviewParamTypeOfADomainRefused(t *testing.T) {
	t.Parallel()
	ev, db := reviewEnv(t, &enginetest.Guard{})
	ctx := context.Background()
	up := reviewUpstream(t, db, `CREATE TABLE log (x text)`,
		`CREATE FUNCTION logging_check(v text) RETURNS bool VOLATILE LANGUAGE plpgsql
		   AS $$BEGIN INSERT INTO log VALUES (v); RETURN true; END$$`,
		`CREATE DOMAIN checked AS text CHECK (logging_check(VALUE))`)
	var oid uint32
	if err := up.QueryRow(ctx, "SELECT 'checked'::regtype::oid").Scan(&oid); err != nil {
		t.Fatal(err)
	}
	fe, done := rawSessionTo(t, ev.url("pg-review", "require"))
	defer done()
	parse := &pgproto3.Parse{Name: "s", Query: "SELECT $1", ParameterOIDs: []uint32{oid}}
	bind := &pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("x")}}
	for name, msgs := range map[string][]pgproto3.FrontendMessage{
		"parse, bind, execute":    {parse, bind, &pgproto3.Execute{}, &pgproto3.Sync{}},
		"parse, bind, no execute": {parse, bind, &pgproto3.Sync{}},
		"unnamed, text 0 then the domain": {&pgproto3.Parse{Query: "SELECT $1, $2", ParameterOIDs: []uint32{25, oid}},
			&pgproto3.Bind{Parameters: [][]byte{[]byte("a"), []byte("b")}}, &pgproto3.Execute{}, &pgproto3.Sync{}},
	} {
		send(t, fe, msgs...)
		got := until[*pgproto3.ReadyForQuery](t, fe)
		e := errorIn(got)
		if e == nil || e.Code != codeFeatureNotSupported || !strings.Contains(e.Message, "not a PostgreSQL built-in type") {
			t.Errorf("%s: %+v, want refused (0A000)", name, e)
		}
		if rfq, ok := got[len(got)-1].(*pgproto3.ReadyForQuery); !ok || rfq.TxStatus != 'I' {
			t.Fatalf("%s: the session is out of step: %#v", name, got)
		}
		var n int
		if err := up.QueryRow(ctx, "SELECT count(*) FROM log").Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s ran the domain's CHECK upstream: %d rows logged (%v)", name, n, err)
		}
	}
	// The refusal is recorded, as unknown.
	refused := 0
	for _, ev := range ev.rec.OfType(recording.TypeOperation) {
		if d, ok := ev.Data.(*recording.OperationData); ok && d.Kind == "unknown" && d.Code == verdictUnsupported {
			refused++
		}
	}
	if refused != 3 {
		t.Errorf("%d refusals recorded, want 3", refused)
	}
	// Built-in parameter types run as before.
	send(t, fe, &pgproto3.Parse{Name: "b", Query: "SELECT $1::int + 1, $2::text", ParameterOIDs: []uint32{23, 25}},
		&pgproto3.Bind{PreparedStatement: "b", Parameters: [][]byte{[]byte("41"), []byte("y")}},
		&pgproto3.Execute{}, &pgproto3.Sync{})
	got := until[*pgproto3.ReadyForQuery](t, fe)
	if e := errorIn(got); e != nil {
		t.Fatalf("built-in parameter types refused: %s", e.Message)
	}
	rows := 0
	for _, m := range got {
		if dr, ok := m.(*pgproto3.DataRow); ok && string(dr.Values[0]) == "42" && string(dr.Values[1]) == "y" {
			rows++
		}
	}
	if rows != 1 {
		t.Errorf("built-in parameter types: %d rows, want 1: %#v", rows, got)
	}
}
