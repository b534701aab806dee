package pgmask

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Output oracles through the real gateway: ssn is filter: deny (ruleSpecs),
// and customer 1's ssn is 219-09-9999. Each statement reads ssn only in
// its select list, yet with the right guess it answers differently from
// the wrong one (an error, a NULL, a number of rows). Before the fix the
// gateway ran every one of them; each must be refused as a filter use.

// oracleGuesses: the statement with %s replaced by the right guess and by
// a wrong one.
var oracleGuesses = []struct {
	sql          string
	right, wrong string
}{
	{"SELECT count(1/(ssn <> '%s')::int) FROM customers", "219-09-9999", "000-00-0000"},
	{"SELECT 1/(ssn = '%s')::int FROM customers WHERE id = 1", "219-09-9999", "000-00-0000"},
	{"SELECT nullif(ssn, '%s') FROM customers WHERE id = 1", "219-09-9999", "000-00-0000"},
	{"SELECT substring(ssn from '^%s') FROM customers WHERE id = 1", "219", "321"},
	{"SELECT jsonb_build_object(ssn, 1) ->> '%s' FROM customers WHERE id = 1", "219-09-9999", "000-00-0000"},
	{"SELECT count(*) FROM customers c, regexp_split_to_table(c.ssn, '^%s') WHERE c.id = 1", "219", "321"},
	{`SELECT v::bytea FROM (SELECT '\x0' || translate(substr(ssn, 1, 1), '%s', 'g') AS v FROM customers WHERE id = 1) s`, "2", "3"},
	{"SELECT ssn FROM customers WHERE id = 1 UNION SELECT '%s'", "219-09-9999", "000-00-0000"},
	{"WITH x AS MATERIALIZED (SELECT 1/(ssn <> '%s')::int AS v, id FROM customers) SELECT count(id) FROM x", "219-09-9999", "000-00-0000"},
}

// oracleReads answer a question about ssn without a guess to compare.
var oracleReads = []string{
	"SELECT count(*) FROM customers, generate_series(1, length(ssn)) WHERE id = 1",
	"SELECT length(ssn), ascii(ssn) FROM customers",
	"SELECT ssn::int FROM customers",
	"SELECT (ssn LIKE '219%')::int, ssn IN ('a', 'b'), greatest(ssn, 'x') FROM customers",
	"SELECT generate_series(1, length(ssn)) FROM customers WHERE id = 1",
}

// refused reports whether err is the gateway's filter: deny refusal.
func refused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501" && strings.Contains(pe.Message, "filter: deny")
}

func answer(out string, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("rows %q", out)
}

func TestOutputOraclesRefused(t *testing.T) {
	g := startGateway(t)
	ctx := context.Background()
	c := g.connect(t, "alice")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		for _, o := range oracleGuesses {
			right := fmt.Sprintf(o.sql, o.right)
			outR, errR := rowsText(ctx, c, right, mode)
			outW, errW := rowsText(ctx, c, fmt.Sprintf(o.sql, o.wrong), mode)
			if !refused(errR) || !refused(errW) {
				t.Errorf("%s (mode %v): not refused; the right guess gave %s, the wrong one %s",
					right, mode, answer(outR, errR), answer(outW, errW))
			}
		}
		for _, sql := range oracleReads {
			if out, err := rowsText(ctx, c, sql, mode); !refused(err) {
				t.Errorf("%s (mode %v): not refused: %s", sql, mode, answer(out, err))
			}
		}
	}
}

// TestPlainReadsOfFilterDenyColumn: reads lineage marks as derived from
// ssn, which cannot fail on its value, still run, masked.
func TestPlainReadsOfFilterDenyColumn(t *testing.T) {
	g := startGateway(t)
	ctx := context.Background()
	c := g.connect(t, "alice")
	for _, sql := range []string{
		"SELECT ssn, ssn AS x, upper(ssn), ssn || '', substr(ssn, 1, 3), ssn::text, ssn::bytea FROM customers",
		"SELECT format('%s', ssn), concat_ws(',', ssn, note), coalesce(ssn, 'none'), md5(ssn) FROM customers",
		"SELECT to_jsonb(c) ->> 'ssn', row_to_json(c)::jsonb, string_agg(ssn, ',') OVER () FROM customers c",
		"WITH x AS (SELECT ssn, id FROM customers) SELECT ssn FROM x WHERE id = 1",
	} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			out, err := rowsText(ctx, c, sql, mode)
			if err != nil || out == "" {
				t.Errorf("%s (mode %v): want rows, got %v", sql, mode, err)
			}
			if l := leak(out); l != "" {
				t.Errorf("%s (mode %v): %q reached the client:\n%s", sql, mode, l, out)
			}
		}
	}
}
