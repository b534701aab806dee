package postgres

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/guard"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// maskFirst masks column 0, which must be text: it refuses a row it was
// not told the shape of, as a real masking filter must.
type maskFirst struct{ desc *pgproto3.RowDescription }

func (f *maskFirst) RowDescription(m *pgproto3.RowDescription) error {
	if len(m.Fields) == 0 || m.Fields[0].DataTypeOID != 25 {
		return errors.New("column 0 is not text")
	}
	f.desc = m
	return nil
}

func (f *maskFirst) DataRow(m *pgproto3.DataRow) error {
	if f.desc == nil {
		return errors.New("a row arrived without its RowDescription")
	}
	if m.Values[0] != nil {
		m.Values[0] = []byte("***") // text's binary format is its bytes too
	}
	return nil
}

func (f *maskFirst) CopyData(m *pgproto3.CopyData) error {
	var out []byte
	for _, line := range bytes.SplitAfter(m.Data, []byte("\n")) {
		if i := bytes.IndexByte(line, '\t'); i >= 0 {
			line = append([]byte("***"), line[i:]...)
		}
		out = append(out, line...)
	}
	m.Data = out
	return nil
}

// The filter sees the RowDescription of the rows it filters, wherever it
// came from: the Execute itself, a Describe of the portal, or a Describe of
// the statement long before (pgx's statement cache).
func TestFilterSeesRowDescription(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, func(o *Options) {
		o.Filter = func(*guard.Session, *guard.Operation, guard.Verdict) ResultFilter { return &maskFirst{} }
	})
	c := ev.connect(t)
	ctx := context.Background()
	tbl := "f_" + randHex(3)
	for _, q := range []string{"CREATE TABLE " + tbl + " (v text, id int)", "INSERT INTO " + tbl + " VALUES ('secret', 1), ('hidden', 2)"} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	q := "SELECT v, id FROM " + tbl + " WHERE id = $1"
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheStatement, // the second run: Bind/Execute only
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeSimpleProtocol}
	for _, mode := range modes {
		var v string
		var id int32
		if err := c.QueryRow(ctx, q, mode, 1).Scan(&v, &id); err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if v != "***" || id != 1 {
			t.Fatalf("%v: got %q %d, want column 0 masked", mode, v, id)
		}
	}
	var sb strings.Builder
	if _, err := c.PgConn().CopyTo(ctx, &sb, "COPY "+tbl+" TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	if got := sb.String(); got != "***\t1\n***\t2\n" {
		t.Fatalf("COPY TO gave %q", got)
	}
}
