package sqlkind

import (
	"reflect"
	"strings"
	"testing"
)

// An ALTER VIEW is classified exactly as the CREATE OR REPLACE VIEW with
// the same options and definition: a write or an unknown function hidden
// in its SELECT, a statement after it, versioned comments around its
// options all come out as they do there.
func TestMySQLAlterViewAsCreate(t *testing.T) {
	t.Parallel()
	m := NewMySQL(MySQLOptions{})
	tests := []struct {
		name, alter string
		want        Kind
	}{
		{"plain", "ALTER VIEW v AS SELECT a FROM t", Schema},
		{"lower case, every option", "alter algorithm=merge definer=`u`@`%` sql security invoker view app.v (x) as select a from t with cascaded check option", Schema},
		{"definer current_user", "ALTER DEFINER = CURRENT_USER VIEW v AS SELECT 1", Schema},
		{"quoted definer", "ALTER DEFINER='root'@'localhost' SQL SECURITY DEFINER VIEW v AS SELECT 1 WITH LOCAL CHECK OPTION", Schema},
		{"leading space and tabs", " \n\tALTER\n\tVIEW v AS SELECT 1", Schema},
		{"with cte", "ALTER VIEW v AS WITH c AS (SELECT 1 AS a) SELECT a FROM c", Schema},
		{"union", "ALTER VIEW v AS SELECT a FROM t UNION SELECT b FROM other.u", Schema},
		{"write function hidden", "ALTER VIEW v AS SELECT GET_LOCK('x', 10) AS l", Schema},
		{"stored function hidden", "ALTER VIEW v AS SELECT app.evil(a) FROM t", Unknown},
		{"load_file", "ALTER VIEW v AS SELECT LOAD_FILE('/etc/passwd')", Unknown},
		{"statement after it", "ALTER VIEW v AS SELECT 1; DROP TABLE t", Schema},
		{"write after it", "ALTER VIEW v AS SELECT 1; DELETE FROM t", Schema},
		{"mysqldump comments", "ALTER /*!50001 ALGORITHM=UNDEFINED */ /*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */ VIEW `v` AS SELECT 1 AS `a`", Schema},
		{"comment hides nothing", "ALTER /* TABLE t DROP c; */ VIEW v AS SELECT 1", Schema},
		{"string with VIEW", "ALTER VIEW v AS SELECT 'ALTER TABLE t DROP c' AS s", Schema},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			create := strings.Replace(tc.alter, "ALTER", "CREATE OR REPLACE", 1)
			if create == tc.alter {
				create = strings.Replace(tc.alter, "alter", "CREATE OR REPLACE", 1)
			}
			got, want := m.Classify(tc.alter), m.Classify(create)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("ALTER: %+v\nCREATE OR REPLACE: %+v", got, want)
			}
			if got.Kind != tc.want {
				t.Fatalf("kind %v (%s), want %v", got.Kind, got.Reason, tc.want)
			}
			if a, c := m.Statements(tc.alter), m.Statements(create); !reflect.DeepEqual(a, c) {
				t.Fatalf("statements differ:\n%+v\n%+v", a, c)
			}
		})
	}
}

// What only looks like an ALTER VIEW, or that the gateway cannot read
// with certainty, stays what it was: ALTER TABLE and texts that merely
// contain the words are classified as before; the rest is Unknown.
func TestMySQLAlterViewNot(t *testing.T) {
	t.Parallel()
	m := NewMySQL(MySQLOptions{})
	tests := []struct {
		name, text string
		want       Kind
	}{
		{"alter table", "ALTER TABLE t ADD COLUMN c INT", Schema},
		{"alter table, comment says view", "ALTER /* VIEW v AS */ TABLE t ADD COLUMN c INT", Schema},
		{"alter table, string says view", "ALTER TABLE t COMMENT 'ALTER VIEW v AS SELECT 1'", Schema},
		{"alter table named view", "ALTER TABLE `VIEW` ADD COLUMN c INT", Schema},
		{"select of the words", "SELECT 'ALTER VIEW v AS SELECT 1'", Read},
		{"alter user", "ALTER USER u IDENTIFIED BY 'x'", Privilege},
		{"after another statement", "SELECT 1; ALTER VIEW v AS SELECT 1", Unknown},
		{"two alter views", "ALTER VIEW v AS SELECT 1; ALTER VIEW w AS SELECT 2", Unknown},
		{"alter event", "ALTER DEFINER = CURRENT_USER EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t", Unknown},
		{"options then table", "ALTER SQL SECURITY INVOKER TABLE t ADD COLUMN c INT", Unknown},
		{"no space after alter", "ALTER`x`VIEW v AS SELECT 1", Unknown},
		{"incomplete", "ALTER VIEW v", Unknown},
		{"not a select", "ALTER VIEW v AS DELETE FROM t", Unknown},
		{"unterminated string", "ALTER VIEW v AS SELECT 'x", Unknown},
		{"unterminated comment", "ALTER VIEW v AS SELECT 1 /* x", Unknown},
		{"view inside a string", "ALTER 'VIEW' v AS SELECT 1", Unknown},
		{"altered word", "ALTERX VIEW v AS SELECT 1", Unknown},
		{"create or replace after alter", "ALTER OR REPLACE VIEW v AS SELECT 1", Unknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.Classify(tc.text); got.Kind != tc.want {
				t.Fatalf("kind %v (%s), want %v", got.Kind, got.Reason, tc.want)
			}
		})
	}
}

// A PREPARE of an ALTER VIEW names the view's objects, and its EXECUTE is
// decided as the ALTER VIEW.
func TestMySQLAlterViewPrepared(t *testing.T) {
	t.Parallel()
	m := NewMySQL(MySQLOptions{})
	c, texts := m.ClassifySession("EXECUTE s", map[string]string{"s": "ALTER VIEW v AS SELECT a FROM t"})
	if c.Kind != Schema || len(texts) != 1 {
		t.Fatalf("EXECUTE of an ALTER VIEW: %+v %q", c, texts)
	}
}
