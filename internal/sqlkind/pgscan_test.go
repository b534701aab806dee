package sqlkind

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestLiteralKey(t *testing.T) {
	tests := []struct {
		name, a, b string
		same       bool
	}{
		{"int values", "SELECT * FROM t WHERE id = 1", "SELECT * FROM t WHERE id = 99", true},
		{"string values", "SELECT * FROM t WHERE n = 'a'", "SELECT * FROM t WHERE n = 'it''s'", true},
		{"e string", `SELECT E'a\'b'`, `SELECT E'x'`, true},
		{"dollar", "SELECT $$a$$", "SELECT $q$ $$ $q$", true},
		{"int and float differ", "SELECT 1", "SELECT 1.5", false},
		{"int32 and bigger differ", "FETCH 1 FROM c", "FETCH 99999999999 FROM c", false},
		{"string and number differ", "SELECT 1", "SELECT '1'", false},
		{"appended statement", "SELECT 1", "SELECT 1; DROP TABLE t", false},
		{"function name is not a literal", "SELECT lower('a')", "SELECT evil('a')", false},
		{"identifier digits", "SELECT t1.a FROM t1", "SELECT t2.a FROM t2", false},
		{"parameter", "SELECT $1", "SELECT $2", false},
		{"float precision kept", "SELECT 1::float(5)", "SELECT 1::float(0)", false},
		{"column number kept", "ALTER INDEX i ALTER COLUMN 1 SET STATISTICS 10", "ALTER INDEX i ALTER COLUMN 0 SET STATISTICS 10", false},
		{"limit", "SELECT * FROM t LIMIT 5", "SELECT * FROM t LIMIT 6", true},
		{"comment kept", "SELECT 1 /* a */", "SELECT 1 /* b */", false},
		{"bit strings", "SELECT B'01'", "SELECT B'1'", true},
		{"bits and hex differ", "SELECT B'01'", "SELECT X'01'", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, oka := literalKey(tt.a, false)
			kb, okb := literalKey(tt.b, false)
			if !oka || !okb {
				t.Fatalf("no key: %v %v", oka, okb)
			}
			if (ka == kb) != tt.same {
				t.Errorf("same key = %v, want %v (%q, %q)", ka == kb, tt.same, ka, kb)
			}
		})
	}
}

func TestLiteralKeyUnsure(t *testing.T) {
	for _, s := range []string{
		"SELECT 'abc", "SELECT 1 /* x", `SELECT "abc`, "SELECT $x$ abc", "SELECT U&'\\0041'",
		"SELECT N'x'", `SELECT E'\x41'`, `SELECT E'\u0041'`, `SELECT E'\101'`, "SELECT 'a'\n'b'",
		"SELECT 0x1F", "SELECT 1_000", "SELECT 123abc", "SELECT 1..2", "SELECT 1e", "SELECT $1abc",
		"SELECT 'a' -- c\n 'b'", "SELECT \xff", "SELECT 1\x00",
	} {
		if k, ok := literalKey(s, false); ok {
			t.Errorf("%q: the scanner should be unsure, gave %q", s, k)
		}
	}
	if _, ok := literalKey(`SELECT 'a\'`, true); ok {
		t.Error("a backslash in a standard string must leave the scanner unsure when standard_conforming_strings is off")
	}
}

// literalRE finds the simple literals of the test statements to vary them.
var literalRE = regexp.MustCompile(`'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b`)

var variants = []string{"0", "1", "42", "2147483647", "2147483648", "3.14", "1e5", "'x'", "'it''s'",
	"''", "'on'", "'off'", "'UTF8'", "'LATIN1'", "'true'", "'false'", "E'a\\'b'", "$$z$$", "'role'"}

// mutate replaces each literal of sql with a random one.
func mutate(sql string, r *rand.Rand) string {
	return literalRE.ReplaceAllStringFunc(sql, func(string) string { return variants[r.IntN(len(variants))] })
}

// TestLiteralKeySound classifies the table and random literal variants of
// it, and fails if two texts of one key are classified differently.
func TestLiteralKeySound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var texts []string
	for _, c := range pgCases {
		texts = append(texts, c.sql)
		for range 20 {
			texts = append(texts, mutate(c.sql, r))
		}
	}
	for _, v := range variants {
		texts = append(texts, "SET statement_timeout = "+v, "SET standard_conforming_strings = "+v,
			"EXPLAIN (ANALYZE "+v+") DELETE FROM t", "SELECT "+v+"; DROP TABLE t", "SELECT "+v,
			"SET client_encoding = "+v, "SELECT 1::float("+v+")", "SELECT * FROM t LIMIT "+v)
	}
	p := NewPostgres(PostgresOptions{CacheSize: -1})
	byKey := map[string]string{}
	checked := 0
	for _, s := range texts {
		k, ok := literalKey(s, false)
		if !ok {
			continue
		}
		first, seen := byKey[k]
		if !seen {
			byKey[k] = s
			continue
		}
		checked++
		if why := keyConflict(p, first, s); why != "" {
			t.Errorf("%q and %q share a key but %s", first, s, why)
		}
	}
	t.Logf("%d texts, %d keys, %d pairs compared", len(texts), len(byKey), checked)
}

// keyConflict says how two texts of one key are classified differently, or
// "" when they may share the cache entry.
func keyConflict(p *PostgresClassifier, a, b string) string {
	x, y := p.parse(a), p.parse(b)
	if parseError(x) && parseError(y) {
		return "" // neither is cached under the key
	}
	if x.shapeable != y.shapeable {
		return fmt.Sprintf("one depends on its literals and one not (%v, %v)", x.shapeable, y.shapeable)
	}
	if !x.shapeable {
		return "" // never cached under the key
	}
	if !reflect.DeepEqual(x.c, y.c) {
		return fmt.Sprintf("classify as %+v and %+v", x.c, y.c)
	}
	if len(x.stmts) != len(y.stmts) {
		return "have different statement counts"
	}
	for i := range x.stmts {
		sx, sy := x.stmts[i], y.stmts[i]
		if !reflect.DeepEqual(sx, sy) {
			return fmt.Sprintf("statement %d differs: %+v and %+v", i, sx, sy)
		}
	}
	return ""
}

func parseError(a *analysis) bool {
	return a.c.Kind == Unknown && strings.HasPrefix(a.c.Reason, "PostgreSQL's parser rejects")
}

func FuzzLiteralKey(f *testing.F) {
	for _, c := range pgCases {
		f.Add(c.sql, mutate(c.sql, rand.New(rand.NewPCG(3, 4))))
	}
	p := NewPostgres(PostgresOptions{CacheSize: -1})
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, oka := literalKey(a, false)
		kb, okb := literalKey(b, false)
		if !oka || !okb || ka != kb {
			return
		}
		if why := keyConflict(p, a, b); why != "" {
			t.Errorf("%q and %q share a key but %s", a, b, why)
		}
	})
}
