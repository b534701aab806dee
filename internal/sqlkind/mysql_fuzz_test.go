package sqlkind

import (
	"strings"
	"testing"
)

// FuzzMySQLClassify: nothing panics, Unknown always says why, and a DROP
// appended as a further statement is never hidden by what precedes it
// (an unclosed string or comment, an executable comment).
func FuzzMySQLClassify(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "SELECT 1; DROP TABLE t", "/*!50000 SELECT 1 */", "SELECT 1 /*M!100100 , 2 */",
		"SELECT 'a\\'b' # c", "SELECT `x``y` FROM t -- z", "SET NAMES utf8mb4", "SELECT 1--1",
		"INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1", "/*!99999 SELECT '*/ DROP TABLE t; -- ' */",
		"ALTER VIEW v AS SELECT 1", "ALTER ALGORITHM=MERGE DEFINER=`u`@`%` VIEW v (a) AS SELECT GET_LOCK('x', 1)",
	} {
		f.Add(s)
	}
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	f.Fuzz(func(t *testing.T, text string) {
		c := m.Classify(text)
		if c.Kind == Unknown && c.Reason == "" {
			t.Fatalf("Classify(%q) is Unknown without a reason", text)
		}
		if c.Kind == Unknown || strings.ContainsRune(text, 0) {
			return
		}
		d := m.Classify(text + ";\nDROP TABLE cs_fuzz_victim")
		if Max(d.Kind, Schema) != d.Kind {
			t.Fatalf("Classify(%q + DROP) = %s (%s): the DROP was hidden", text, d.Kind, d.Reason)
		}
	})
}
