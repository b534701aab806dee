package sqlkind

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestMySQLLiteralKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text, key string
		ok        bool
	}{
		{"SELECT c FROM t WHERE id = 42", "SELECT c FROM t WHERE id = \x00n", true},
		{"SELECT a FROM t1 LIMIT 10, 20", "SELECT a FROM t1 LIMIT \x00n, \x00n", true},
		{"SELECT 1.5, .5, 1e5, 0x1f, 0b1, @1, $1, 12abc", "", false},
		{"SELECT 'a1', \"b2\", `c3` FROM `db1`.t WHERE x = 3", "SELECT 'a1', \"b2\", `c3` FROM `db1`.t WHERE x = \x00n", true},
		{"SELECT 1234567890", "", false},
		{"SELECT 1 /* 2 */", "", false},
		{"SELECT 1 # 2", "", false},
		{"SELECT 1--1", "", false},
		{"SELECT 'it\\'s 5' , 6", "SELECT 'it\\'s 5' , \x00n", true},
		{"SELECT 'unterminated 5", "", false},
		{"SELECT 'a\x00' , 5", "", false},
		{"SELECT é1, 1é", "", false},
		{"SELECT a FROM db. 0 JOIN 1 .t", "", false},
		// Exponents stay: 1e+1 and 1e+123456789 (which overflows) differ.
		{"SELECT 1e+1, 2E-3 FROM t", "", false},
		{"SELECT 1e + 1 FROM t", "SELECT 1e + \x00n FROM t", true},
	}
	for _, tc := range tests {
		key, ok := mysqlLiteralKey(tc.text)
		if ok != tc.ok || (ok && key != tc.key) {
			t.Errorf("mysqlLiteralKey(%q) = %q, %v; want %q, %v", tc.text, key, ok, tc.key, tc.ok)
		}
	}
}

// TestMySQLLiteralKeySound: texts that share a key classify as the first
// one parsed in full would, whatever the numbers; and what is not
// shapeable (its kind or tracked state may depend on a literal) is never
// served from another text's analysis.
func TestMySQLLiteralKeySound(t *testing.T) {
	t.Parallel()
	shapes := []string{
		"SELECT c FROM t WHERE id = %d",
		"SELECT a, b + %d FROM app.t WHERE x IN (%d, %d) ORDER BY %d LIMIT %d",
		"UPDATE t SET a = %d WHERE id = %d",
		"DELETE FROM t WHERE id = %d",
		"INSERT INTO t VALUES (%d, 'x')",
		"SELECT CAST(a AS DECIMAL(%d, 2)) FROM t",
		"SELECT CAST(a AS CHAR(%d)) FROM t",
		"SELECT SLEEP(%d)",
		"SELECT GET_LOCK('x', %d)",
		"SELECT * FROM t WHERE d > NOW() - INTERVAL %d DAY FOR UPDATE",
		"KILL %d",
		"SET autocommit = %d",
		"SET sql_mode = %d",
		"SET SESSION wait_timeout = %d",
		"SELECT a FROM t WHERE id = %d; DROP TABLE t",
		"SELECT a FROM t GROUP BY %d HAVING COUNT(*) > %d",
		"SELECT VARCHAR(%d)",
		"SELECT a FROM app. %d",
		"SELECT CHAR(%d USING utf8mb4)",
		"CREATE TABLE t%d (a INT)",
		"USE d%d",
		"PREPARE s FROM 'SELECT %d'",
		"EXECUTE s%d",
		"SELECT a FROM t WHERE b = %d INTO OUTFILE '/tmp/x'",
		"SELECT 1e+%d FROM t",
		"SELECT 1.5E-%d, a FROM t WHERE id = %d",
	}
	values := []int{0, 1, 7, 65, 66, 255, 256, 999999999}
	for _, shape := range shapes {
		n := strings.Count(shape, "%d")
		cached := NewMySQL(MySQLOptions{})
		fresh := NewMySQL(MySQLOptions{CacheSize: -1})
		for _, v := range values {
			args := make([]any, n)
			for i := range args {
				args[i] = v
			}
			text := fmt.Sprintf(shape, args...)
			got, want := cached.analyze(text), fresh.analyze(text)
			if !reflect.DeepEqual(got.c, want.c) || !reflect.DeepEqual(got.stmts, want.stmts) {
				t.Errorf("%q: from the cache %+v, parsed %+v", text, got.c, want.c)
			}
		}
	}
}

func FuzzMySQLLiteralKey(f *testing.F) {
	for _, s := range []string{"SELECT c FROM t WHERE id = 1", "UPDATE t SET a = 2 WHERE id = 3", "SELECT CAST(a AS DECIMAL(10, 2)) FROM t LIMIT 5"} {
		f.Add(s, uint32(7))
	}
	f.Fuzz(func(t *testing.T, text string, v uint32) {
		key, ok := mysqlLiteralKey(text)
		if !ok {
			return
		}
		fresh := NewMySQL(MySQLOptions{CacheSize: -1})
		a := fresh.analyze(text)
		if !mysqlShapeable(a) {
			return
		}
		// Another text of the same key: every placeholder a new number.
		parts := strings.Split(key, phMyInt)
		var ob strings.Builder
		for i, p := range parts {
			if i > 0 {
				ob.WriteString(fmt.Sprint((v + uint32(i)*7919) % 1000000000))
			}
			ob.WriteString(p)
		}
		other := ob.String()
		if k2, ok2 := mysqlLiteralKey(other); !ok2 || k2 != key {
			t.Fatalf("%q: the substituted text %q has key %q, %v", text, other, k2, ok2)
		}
		b := fresh.analyze(other)
		if !reflect.DeepEqual(a.c, b.c) || !reflect.DeepEqual(a.stmts, b.stmts) {
			t.Fatalf("%q and %q share a key but classify differently: %+v / %+v", text, other, a.c, b.c)
		}
	})
}
