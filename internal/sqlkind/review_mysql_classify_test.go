package sqlkind

import (
	"strings"
	"testing"
)

// Adversarial review of MySQL/MariaDB classification (invariant 1): texts a
// creator could send as reads that do something on MariaDB 10.11. Each case
// was checked against the real server (see the engine's review tests).

// TestReviewMySQLShowWhere: SHOW ... WHERE evaluates an expression per row,
// and the expression may call a stored function or GET_LOCK, or hold a
// locking subquery. Read utility statements were not walked, so the
// function was never seen and SHOW passed as a read.
func TestReviewMySQLShowWhere(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	for _, tc := range []struct {
		text string
		want Kind
	}{
		{"SHOW DATABASES WHERE evil_fn(1)", Unknown},
		{"SHOW TABLES WHERE app.f(`Tables_in_app`)", Unknown},
		{"SHOW VARIABLES WHERE GET_LOCK('a', 0)", Write},
		{"SHOW DATABASES WHERE EXISTS (SELECT * FROM t FOR UPDATE)", Write},
		{"SHOW STATUS WHERE LOAD_FILE('/etc/passwd') IS NOT NULL", Unknown},
		{"SHOW DATABASES WHERE `Database` LIKE 'a%'", Read},
		{"SHOW TABLES", Read},
	} {
		if c := m.Classify(tc.text); c.Kind != tc.want {
			t.Errorf("%q is %s (%s), want %s", tc.text, c.Kind, c.Reason, tc.want)
		}
	}
}

// TestReviewMySQLNotBuiltins: names on the read allow-list that MariaDB
// 10.11 has no built-in for resolve, unqualified, to a stored function of
// the current schema ("FUNCTION db.eq does not exist" when there is none).
// TiDB's internal operator names (eq, plus, getvar, ...) never come out of
// the parser as function calls, and MySQL-only built-ins (ANY_VALUE,
// REGEXP_LIKE, UUID_TO_BIN, ...) are stored-function calls on MariaDB. So
// are TiDB-only aggregates, which the walker did not collect at all.
func TestReviewMySQLNotBuiltins(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	for _, text := range []string{
		"SELECT eq(1, 2)", "SELECT plus(1, 2)", "SELECT getvar('x')", "SELECT setvar('x', 1)",
		"SELECT unarynot(1)", "SELECT nulleq(1, 2)", "SELECT intdiv(4, 2)",
		"SELECT regexp_like('a', 'b')", "SELECT any_value(a) FROM t", "SELECT uuid_to_bin(UUID())",
		"SELECT bin_to_uuid('x')", "SELECT is_uuid('x')", "SELECT json_storage_size('1')",
		"SELECT json_schema_valid('{}', '1')",
		"SELECT approx_count_distinct(a) FROM t", "SELECT approx_percentile(a, 50) FROM t",
		"INSERT INTO t VALUES (plus(1, 2))",
	} {
		if c := m.Classify(text); c.Kind != Unknown {
			t.Errorf("%q is %s (%s): MariaDB calls a stored function of that name", text, c.Kind, c.Reason)
		}
	}
	for _, text := range []string{
		"SELECT COUNT(*), SUM(a), GROUP_CONCAT(b), JSON_ARRAYAGG(a), STD(a), VARIANCE(a) FROM t",
		"SELECT ROW_NUMBER() OVER (ORDER BY a), LEAD(a) OVER w FROM t WINDOW w AS (ORDER BY a)",
		"SELECT a + 1, a = 2, NOT a, a <=> b, a DIV 2, a->'$.x' FROM t",
	} {
		if c := m.Classify(text); c.Kind != Read {
			t.Errorf("%q is %s (%s), want read", text, c.Kind, c.Reason)
		}
	}
}

// TestReviewMySQLSpaceBeforeParen: COUNT, SUM, NOW, SUBSTRING, MID,
// SESSION_USER and the like are function keywords only when "(" follows the
// name at once. "count (a)" (or "count/**/(a)") is a call of the stored
// function count in the current schema on MariaDB; TiDB reads several of
// them as the built-in anyway.
func TestReviewMySQLSpaceBeforeParen(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	for _, text := range []string{
		"SELECT count (a) FROM t", "SELECT count/**/(a) FROM t", "SELECT count\n(a) FROM t",
		"SELECT mid ('abc', 1)", "SELECT session_user (1)", "SELECT system_user (1)",
		"SELECT adddate (a, 1) FROM t", "SELECT subdate (a, 1) FROM t", "SELECT json_arrayagg (a) FROM t",
		"SELECT rank () OVER () FROM t", "SELECT 1 FROM t WHERE a = count (b)",
	} {
		if c := m.Classify(text); c.Kind != Unknown {
			t.Errorf("%q is %s (%s): MariaDB calls a stored function of that name", text, c.Kind, c.Reason)
		}
	}
	for _, text := range []string{
		"SELECT count(a), `count` FROM t", "SELECT a FROM t WHERE a IN (1, 2)",
		"SELECT 'count (a)' FROM t", "SELECT abs (a) FROM t",
	} {
		if c := m.Classify(text); c.Kind != Read {
			t.Errorf("%q is %s (%s), want read", text, c.Kind, c.Reason)
		}
	}
}

// TestReviewMySQLLastInsertID: LAST_INSERT_ID(expr) sets the session's
// last insert id, which later statements (INSERT ... VALUES
// (LAST_INSERT_ID())) and the client read. Without an argument it only
// reads it.
func TestReviewMySQLLastInsertID(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	if c := m.Classify("SELECT LAST_INSERT_ID(999)"); c.Kind != Write {
		t.Errorf("LAST_INSERT_ID(999) is %s (%s), want write", c.Kind, c.Reason)
	}
	if c := m.Classify("SELECT LAST_INSERT_ID()"); c.Kind != Read {
		t.Errorf("LAST_INSERT_ID() is %s (%s), want read", c.Kind, c.Reason)
	}
}

// TestReviewMySQLSemanticSettings: sql_auto_is_null makes "WHERE id IS
// NULL" match the row inserted last, so an approved "DELETE FROM t WHERE id
// IS NULL" (a no-op to its reviewer) deletes a row; default_storage_engine
// makes an approved CREATE TABLE a BLACKHOLE table whose writes vanish.
// Both change what a reviewed statement does without being in its text.
func TestReviewMySQLSemanticSettings(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	for _, text := range []string{
		"SET sql_auto_is_null = 1", "SET SESSION default_storage_engine = BLACKHOLE",
		"SET @@default_tmp_storage_engine = MEMORY", "SET explicit_defaults_for_timestamp = 0",
	} {
		if c := m.Classify(text); c.Kind != Unknown {
			t.Errorf("%q is %s, want unknown", text, c.Kind)
		}
	}
}

// TestReviewMySQLVariantState: executable comments MariaDB skips
// (/*!50700../*!99999, and versions above the server's) let the server run
// fewer statements than the last variant, which the engine tracks. The
// engine applies every statement's USE or PREPARE when the text
// succeeded, and those of the first statements that answered when it
// failed, so a statement a skipped comment adds shifts what the engine
// applies: the engine believed s was "SELECT 1" while the server had
// prepared "DROP TABLE t", and EXECUTE s passed as a read; or, after an
// error, the engine stayed in its schema while the server had switched.
func TestReviewMySQLVariantState(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	for _, text := range []string{
		"PREPARE s FROM /*!99999 'SELECT 1'; PREPARE x FROM */ 'DROP TABLE t'",
		"/*!99999 SELECT 1; */ USE other",
		"/*M!999999 SELECT 1; */ PREPARE s FROM 'DELETE FROM t'",
		"SELECT 1 /*!99999 ; DEALLOCATE PREPARE s */",
	} {
		if c := m.Classify(text); c.Kind != Unknown {
			t.Errorf("%q is %s (%s), want unknown", text, c.Kind, c.Reason)
		}
	}
	// The same state in every variant, at the same place, is fine.
	for _, text := range []string{
		"/*!40101 SET NAMES utf8mb4 */",
		"/*!99999 SELECT 1; */ SELECT 2",
		"SELECT 1 /*!50000 , 2 */; PREPARE s FROM 'SELECT 1'",
	} {
		if c := m.Classify(text); c.Kind != Read {
			t.Errorf("%q is %s (%s), want read", text, c.Kind, c.Reason)
		}
	}
}

// TestReviewMySQLExecuteState: MariaDB prepares USE, SET NAMES and SET
// sql_mode with SQL-level PREPARE and runs them with EXECUTE. The engine
// follows only the state written in a text, so "PREPARE s FROM 'USE
// other'" then "EXECUTE s" (a read) moved the server to another schema
// while the gateway decided, showed and bound later operations in the old
// one (invariant 4).
func TestReviewMySQLExecuteState(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	prepared := map[string]string{"u": "USE other", "n": "SET NAMES utf8mb4", "tz": "SET time_zone = '+00:00'"}
	for _, tc := range []struct {
		text string
		want Kind
	}{
		{"EXECUTE u", Unknown},
		{"PREPARE v FROM 'USE other'; EXECUTE v", Unknown},
		{"EXECUTE tz", Read},
	} {
		if c, _ := m.ClassifySession(tc.text, prepared); c.Kind != tc.want {
			t.Errorf("%q is %s (%s), want %s", tc.text, c.Kind, c.Reason, tc.want)
		}
	}
}

// TestReviewMySQLExplainShow: EXPLAIN of a statement naming a stored
// function stays Unknown (the optimizer may evaluate constant calls), and
// the reason names it.
func TestReviewMySQLExplainShow(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	c := m.Classify("EXPLAIN SELECT * FROM t WHERE a = f(1)")
	if c.Kind != Unknown || !strings.Contains(c.Reason, "f()") {
		t.Fatalf("EXPLAIN with a stored function: %s (%s)", c.Kind, c.Reason)
	}
}

// TestReviewMySQLDashDel: MariaDB's lexer takes "--" followed by DEL
// (0x7f, a control character) as a comment; the scan took it for two
// minus signs and read the quote after it as opening a string that hid
// the rest. TiDB refused the DEL, so this failed closed by luck; now the
// gateway reads the comment as the server does.
func TestReviewMySQLDashDel(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	if c := m.Classify("SELECT 1 --\x7f '\n; DROP TABLE t -- '"); c.Kind != Schema {
		t.Fatalf("--DEL comment: %s (%s), want schema", c.Kind, c.Reason)
	}
	if c := m.Classify("SELECT 1 --\x7f x"); c.Kind != Read {
		t.Fatalf("--DEL comment: %s (%s), want read", c.Kind, c.Reason)
	}
}

// TestReviewMySQLNumericSettings: MariaDB takes a number for sql_mode as a
// bit mask (SET sql_mode = 4 is ANSI_QUOTES) and for a character set or
// collation as its id (54 is utf16, 28 gbk). setLiteral rendered an
// integer literal as "", which passed as the empty, safe sql_mode and as
// a NULL character_set_results: the session then read double quotes as
// identifiers, or sent UTF-16 results past the detectors (invariant 8),
// and as a read it was never even read back.
func TestReviewMySQLNumericSettings(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	for _, text := range []string{
		"SET sql_mode = 4", "SET SESSION sql_mode = 0", "SET @@sql_mode = 4.0", "SET sql_mode = TRUE",
		"SET sql_mode = 0x04", "SET sql_mode = b'100'", "SET sql_mode = 1e0",
		"SET character_set_results = 54", "SET character_set_results = 0", "SET character_set_client = 28",
		"SET character_set_connection = 54", "SET collation_connection = 28",
	} {
		a := m.analyze(text)
		if a.c.Kind != Unknown || !tokenizing(a.stmts) {
			t.Errorf("%q is %s, Tokenizing %v", text, a.c.Kind, tokenizing(a.stmts))
		}
	}
	for _, text := range []string{"SET sql_mode = ''", "SET character_set_results = NULL", "SET autocommit = 0", "SET NAMES utf8mb4"} {
		a := m.analyze(text)
		if a.c.Kind != Read || tokenizing(a.stmts) {
			t.Errorf("%q is %s, Tokenizing %v", text, a.c.Kind, tokenizing(a.stmts))
		}
	}
}

// TestReviewMySQLSemanticModes: sql_mode flags that keep quoting as is but
// change what a reviewed statement means: with PIPES_AS_CONCAT an approved
// "UPDATE t SET a = b || c" concatenates instead of OR-ing; with
// NO_AUTO_VALUE_ON_ZERO an approved "INSERT ... (id) VALUES (0)" stores 0
// instead of a new id. A creator could set them before running what was
// approved. They are Unknown (reviewed), not refused: the text still reads
// the same to the gateway.
func TestReviewMySQLSemanticModes(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	for _, text := range []string{
		"SET sql_mode = 'PIPES_AS_CONCAT'", "SET sql_mode = 'STRICT_TRANS_TABLES,HIGH_NOT_PRECEDENCE'",
		"SET sql_mode = 'MYSQL40'", "SET sql_mode = 'EMPTY_STRING_IS_NULL'", "SET sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
		"SET sql_mode = 'SIMULTANEOUS_ASSIGNMENT'", "SET sql_mode = 'NO_UNSIGNED_SUBTRACTION'",
	} {
		a := m.analyze(text)
		if a.c.Kind != Unknown || tokenizing(a.stmts) {
			t.Errorf("%q is %s, Tokenizing %v; want unknown, not refused", text, a.c.Kind, tokenizing(a.stmts))
		}
	}
	for _, text := range []string{"SET sql_mode = 'TRADITIONAL'", "SET sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION,ONLY_FULL_GROUP_BY'"} {
		if c := m.Classify(text); c.Kind != Read {
			t.Errorf("%q is %s (%s), want read", text, c.Kind, c.Reason)
		}
	}
}
