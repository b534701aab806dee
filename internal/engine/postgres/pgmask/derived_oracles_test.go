package pgmask

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/mask"
)

// Derived-value oracles under the shape-keeping and deterministic
// strategies. The operations filter: deny lets through (oracle.go) still
// derive a value from ssn, and a strategy that shows part of its input
// (partial) or equal outputs for equal inputs (hash) would answer a
// question about the derived value: replace(ssn, guess, '') is '' exactly
// for the right guess, and the hash or partial form of '' differs from
// that of the untouched ssn; translate(ssn, digits, dots) under keep_last
// shows where the digits were. A computed column built from a masked one
// must therefore be redacted whole, whatever its rule's strategy, while a
// stored read keeps the strategy. Customer 1's ssn is 219-09-9999.
//
// result.derived already does so (for every strategy and every masked
// source, filter: deny or not); this test pins it. With derived made to
// keep the rule's strategy, every case here answers: the right guess
// hashes like '' (replace, btrim), a UNION ALL shows two equal hashes,
// translate shows "..*-.*-9999" and reverse "****-**-912".

// derivedRules: ruleSpecs with ssn under strategy st (and filter: deny).
func derivedRules(st config.MaskRule) []config.MaskRule {
	out := make([]config.MaskRule, 0, len(ruleSpecs))
	for _, r := range ruleSpecs {
		if len(r.Columns) > 0 && r.Columns[0] == "public.customers.ssn" {
			st.Columns, st.Filter = r.Columns, "deny"
			r = st
		}
		out = append(out, r)
	}
	return out
}

var derivedStrategies = []struct {
	name   string
	rule   config.MaskRule
	stored func(string) bool // what a stored read of ssn shows
}{
	{"hash", config.MaskRule{Strategy: "hash", HashKey: []byte("k3y-for-derived-oracles")},
		func(v string) bool { return strings.HasPrefix(v, "h:") && len(v) == 34 }},
	{"partial", config.MaskRule{Strategy: "partial", KeepLast: 4},
		func(v string) bool { return v == "***-**-9999" }},
}

// derivedGuesses answer differently for the right and a wrong guess when
// the derived value keeps the rule's strategy.
var derivedGuesses = []struct {
	sql          string
	right, wrong string
}{
	{"SELECT replace(ssn, '%s', '') FROM customers WHERE id = 1", "219-09-9999", "000-00-0000"},
	{"SELECT replace(ssn, '%s', 'x') || 'abcd' FROM customers WHERE id = 1", "219-09-9999", "000-00-0000"},
	{"SELECT ssn || '%s' FROM customers WHERE id = 1", "", "x"},
	{"SELECT substr(ssn, 1, 3) FROM customers WHERE id = 1 UNION ALL SELECT '%s'", "219", "321"},
	{"SELECT ssn FROM customers WHERE id = 1 UNION ALL SELECT '%s'", "219-09-9999", "000-00-0000"},
	{"WITH t AS (SELECT btrim(ssn, '%s') AS v FROM customers WHERE id = 1) SELECT v FROM t", "0123456789-", "abc"},
}

// derivedReads show part of the value under partial without a guess.
var derivedReads = []string{
	"SELECT translate(ssn, '012345678', '.........') FROM customers WHERE id = 1",
	"SELECT reverse(ssn) FROM customers WHERE id = 1",
	"SELECT (SELECT upper(ssn) FROM customers WHERE id = 1)",
}

// copyText runs COPY ... TO STDOUT and returns its data.
func copyText(ctx context.Context, c *pgx.Conn, sql string) (string, error) {
	var b bytes.Buffer
	_, err := c.PgConn().CopyTo(ctx, &b, sql)
	return b.String(), err
}

// redactedRows: every line is the redact strategy's output.
func redactedRows(out string) bool {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, l := range lines {
		if l != mask.Redacted {
			return false
		}
	}
	return len(lines) > 0 && out != ""
}

// derivedAnswers runs sql as rows in both protocols and as COPY; an
// error is an answer too.
func derivedAnswers(ctx context.Context, c *pgx.Conn, sql string) map[string]string {
	out := map[string]string{}
	text := func(v string, err error) string {
		if err != nil {
			return answer(v, err)
		}
		return v
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		out[fmt.Sprint(mode)] = text(rowsText(ctx, c, sql, mode))
	}
	out["copy"] = text(copyText(ctx, c, "COPY ("+sql+") TO STDOUT"))
	return out
}

// storedReads read the value as stored, by other names: they keep the
// rule's strategy (redacting them would break joins on hashes).
var storedReads = []string{
	"SELECT ssn FROM customers WHERE id = 1",
	"SELECT ssn AS x FROM customers WHERE id = 1",
	"SELECT s.ssn FROM (SELECT id, ssn FROM customers) s WHERE s.id = 1",
	"WITH t AS (SELECT id, ssn FROM customers) SELECT ssn FROM t WHERE id = 1",
}

func TestDerivedValueOraclesRedacted(t *testing.T) {
	ctx := context.Background()
	for _, st := range derivedStrategies {
		t.Run(st.name, func(t *testing.T) {
			g := startGatewayWith(t, gatewayOptions{masking: derivedRules(st.rule)})
			c := g.connect(t, "alice")
			for _, o := range derivedGuesses {
				right := fmt.Sprintf(o.sql, o.right)
				ansR, ansW := derivedAnswers(ctx, c, right), derivedAnswers(ctx, c, fmt.Sprintf(o.sql, o.wrong))
				for how, r := range ansR {
					if !redactedRows(r) || r != ansW[how] {
						t.Errorf("%s (%s): the right guess gave %q, the wrong one %q; want %s rows for both",
							right, how, r, ansW[how], mask.Redacted)
					}
				}
			}
			for _, sql := range derivedReads {
				for how, r := range derivedAnswers(ctx, c, sql) {
					if !redactedRows(r) {
						t.Errorf("%s (%s): %q, want %s", sql, how, r, mask.Redacted)
					}
				}
			}
			for _, sql := range storedReads {
				for how, r := range derivedAnswers(ctx, c, sql) {
					if how == "copy" {
						continue // COPY (query) masks its columns whole (copy.go)
					}
					if !st.stored(strings.TrimSuffix(r, "\n")) {
						t.Errorf("stored read %s (%s): %q, want the %s strategy's form", sql, how, r, st.name)
					}
				}
			}
		})
	}
}
