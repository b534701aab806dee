package sqlkind

import (
	"fmt"
	"strings"
	"testing"
)

// TestDeepNesting: pg_query's C code overflows its stack on very deep
// trees, which would kill the process; such texts must be refused before
// they reach it, and long flat texts (bulk INSERTs) must still parse.
func TestDeepNesting(t *testing.T) {
	p := NewPostgres(PostgresOptions{CacheSize: -1})
	deep := map[string]string{
		"operator chain": "SELECT " + strings.Repeat("1+", 100000) + "1",
		"parentheses":    "SELECT " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000),
		"arrays":         "SELECT " + strings.Repeat("ARRAY[", 100000) + "1" + strings.Repeat("]", 100000),
		"not chain":      "SELECT " + strings.Repeat("NOT ", 100000) + "true",
		"unary minus":    "SELECT " + strings.Repeat("- ", 100000) + "1",
		"set operations": strings.Repeat("SELECT 1, 2 UNION ", 50000) + "SELECT 1, 2",
		"joins":          "SELECT 1 FROM t0" + strings.Repeat(" JOIN t ON a = b, c", 30000),
		"unscannable":    "SELECT " + strings.Repeat("1+", 100000) + "1 'unterminated",
	}
	for name, q := range deep {
		if c := p.Classify(q); c.Kind != Unknown {
			t.Errorf("%s: %v", name, c.Kind)
		}
	}
	var rows []string
	for i := range 20000 {
		rows = append(rows, fmt.Sprintf("(%d, 'row %d', now())", i, i))
	}
	bulk := "INSERT INTO t VALUES " + strings.Join(rows, ", ")
	if c := p.Classify(bulk); c.Kind != Write {
		t.Errorf("bulk insert: %v (%s)", c.Kind, c.Reason)
	}
	if c := p.Classify("SELECT " + strings.Repeat("1+", 2000) + "1"); c.Kind != Read {
		t.Errorf("moderate chain: %v (%s)", c.Kind, c.Reason)
	}
}
