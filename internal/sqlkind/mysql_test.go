package sqlkind

import (
	"strings"
	"testing"
)

func TestMySQLClassify(t *testing.T) {
	t.Parallel()
	m := NewMySQL(MySQLOptions{})
	tests := []struct {
		name, text string
		want       Kind
		objects    []string // checked when not nil
	}{
		// reads
		{"select", "SELECT 1", Read, nil},
		{"select table", "SELECT a FROM t WHERE b = 1", Read, []string{"t"}},
		{"qualified", "SELECT * FROM app.users u JOIN orders o ON o.uid = u.id", Read, []string{"app.users", "orders"}},
		{"backticks", "SELECT `a b` FROM `my db`.`t-1`", Read, []string{"my db.t-1"}},
		{"hash comment", "SELECT 1 # DROP TABLE t", Read, nil},
		{"dash comment", "SELECT 1 -- DROP TABLE t", Read, nil},
		{"block comment", "SELECT /* DROP TABLE t */ 1", Read, nil},
		{"minus minus", "SELECT 1--1", Read, nil},
		{"union", "SELECT a FROM t UNION SELECT b FROM u", Read, []string{"t", "u"}},
		{"cte", "WITH x AS (SELECT 1 AS a) SELECT a FROM x", Read, nil},
		{"subquery", "SELECT (SELECT MAX(id) FROM t) + 1", Read, []string{"t"}},
		{"sleep", "SELECT SLEEP(1)", Read, nil},
		{"functions", "SELECT CONCAT(UPPER(a), LPAD(b, 3, '0')), NOW(), DATE_ADD(d, INTERVAL 1 DAY) FROM t", Read, nil},
		{"json", "SELECT JSON_EXTRACT(doc, '$.a') FROM t", Read, nil},
		{"count star", "SELECT COUNT(*), GROUP_CONCAT(a) FROM t GROUP BY b", Read, nil},
		{"window", "SELECT ROW_NUMBER() OVER (ORDER BY a) FROM t", Read, nil},
		{"select into var (TiDB cannot parse it)", "SELECT a INTO @x FROM t LIMIT 1", Unknown, nil},
		{"show tables", "SHOW TABLES", Read, nil},
		{"show create", "SHOW CREATE TABLE t", Read, nil},
		{"explain", "EXPLAIN SELECT * FROM t", Read, []string{"t"}},
		{"explain delete", "EXPLAIN DELETE FROM t", Read, nil},
		{"use", "USE app", Read, nil},
		{"begin", "BEGIN", Read, nil},
		{"start tx", "START TRANSACTION READ ONLY", Read, nil},
		{"commit", "COMMIT", Read, nil},
		{"rollback", "ROLLBACK", Read, nil},
		{"savepoint", "SAVEPOINT a", Read, nil},
		{"set autocommit", "SET autocommit = 0", Read, nil},
		{"set autocommit on", "SET autocommit = ON", Read, nil},
		{"set session var", "SET @@session.wait_timeout = 100", Read, nil},
		{"set user var", "SET @x = 1, @y = 'a'", Read, nil},
		{"set names utf8mb4", "SET NAMES utf8mb4", Read, nil},
		{"set names utf8 collate", "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'", Read, nil},
		{"set charset", "SET CHARACTER SET utf8mb4", Read, nil},
		{"set sql_mode safe", "SET sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'", Read, nil},
		{"set sql_mode empty", "SET SESSION sql_mode = ''", Read, nil},
		{"set tx isolation", "SET TRANSACTION ISOLATION LEVEL READ COMMITTED", Read, nil},
		{"set time_zone", "SET time_zone = '+00:00'", Read, nil},
		{"set results null", "SET character_set_results = NULL", Read, nil},
		{"empty", "", Read, nil},
		{"only comment", "/* nothing */", Read, nil},
		{"deallocate", "DEALLOCATE PREPARE s", Read, nil},
		{"unlock", "UNLOCK TABLES", Read, nil},
		{"exec comment read", "/*!40101 SET NAMES utf8mb4 */", Read, nil},
		{"string with comment marks", "SELECT '/*!50000 DROP TABLE t */', \"# x\", '-- y'", Read, nil},
		{"escaped quote", `SELECT 'it\'s; DROP TABLE t'`, Read, nil},
		{"doubled quote", "SELECT 'it''s; DROP TABLE t'", Read, nil},
		{"backtick semicolon", "SELECT 1 AS `a;DROP TABLE t`", Read, nil},

		// writes
		{"insert", "INSERT INTO t (a) VALUES (1)", Write, []string{"t"}},
		{"insert qualified", "INSERT INTO app.t VALUES (1)", Write, []string{"app.t"}},
		{"insert select", "INSERT INTO t SELECT * FROM u", Write, []string{"t", "u"}},
		{"upsert", "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = a + 1", Write, nil},
		{"replace", "REPLACE INTO t VALUES (1)", Write, nil},
		{"update", "UPDATE t SET a = 1 WHERE b = 2", Write, []string{"t"}},
		{"multi update", "UPDATE t, u SET t.a = u.a WHERE t.id = u.id", Write, []string{"t", "u"}},
		{"delete", "DELETE FROM t WHERE a = 1", Write, []string{"t"}},
		{"truncate", "TRUNCATE TABLE t", Write, nil},
		{"for update", "SELECT * FROM t WHERE id = 1 FOR UPDATE", Write, nil},
		{"share mode", "SELECT * FROM t LOCK IN SHARE MODE", Write, nil},
		{"subquery for update", "SELECT (SELECT a FROM t FOR UPDATE)", Write, nil},
		{"union for update", "SELECT 1 UNION SELECT a FROM t FOR UPDATE", Write, nil},
		{"get_lock", "SELECT GET_LOCK('x', 10)", Write, nil},
		{"release_lock", "SELECT RELEASE_LOCK('x')", Write, nil},
		{"load data local", "LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t", Write, []string{"t"}},
		{"lock tables", "LOCK TABLES t WRITE", Write, nil},
		{"explain analyze delete", "EXPLAIN ANALYZE DELETE FROM t", Write, nil},
		{"read then write", "SELECT 1; DELETE FROM t", Write, nil},

		// schema
		{"create table", "CREATE TABLE t (a INT)", Schema, []string{"t"}},
		{"create table as", "CREATE TABLE t2 AS SELECT * FROM t", Schema, nil},
		{"drop table", "DROP TABLE app.t", Schema, []string{"app.t"}},
		{"alter table", "ALTER TABLE t ADD COLUMN b INT", Schema, nil},
		{"rename table", "RENAME TABLE a TO b", Schema, nil},
		{"create index", "CREATE INDEX i ON t (a)", Schema, nil},
		{"create view", "CREATE VIEW v AS SELECT * FROM t", Schema, nil},
		{"create database", "CREATE DATABASE d", Schema, nil},
		{"drop database", "DROP DATABASE d", Schema, nil},
		{"create procedure", "CREATE PROCEDURE p() BEGIN SELECT 1; END", Schema, nil},
		{"attack drop", "SELECT 1; DROP TABLE t", Schema, []string{"t"}},
		{"attack drop comment", "SELECT 1;/**/DROP TABLE t", Schema, nil},
		{"exec comment drop", "SELECT 1; /*! DROP TABLE t */", Schema, nil},
		{"versioned drop", "SELECT 1 /*!50000 ; DROP TABLE t */", Schema, nil},

		// privilege
		{"grant", "GRANT SELECT ON app.* TO 'u'@'%'", Privilege, nil},
		{"revoke", "REVOKE ALL ON *.* FROM u", Privilege, nil},
		{"create user", "CREATE USER u IDENTIFIED BY 'p'", Privilege, nil},
		{"alter user", "ALTER USER u IDENTIFIED BY 'p'", Privilege, nil},
		{"drop user", "DROP USER u", Privilege, nil},
		{"set password", "SET PASSWORD = 'x'", Privilege, nil},
		{"set password for", "SET PASSWORD FOR u = 'x'", Privilege, nil},
		{"set role", "SET ROLE r1", Privilege, nil},
		{"grant role", "GRANT r1 TO u", Privilege, nil},

		// admin
		{"flush", "FLUSH TABLES", Admin, nil},
		{"flush privileges", "FLUSH PRIVILEGES", Admin, nil},
		{"kill", "KILL 12", Admin, nil},
		{"kill query", "KILL QUERY 12", Admin, nil},
		{"shutdown", "SHUTDOWN", Admin, nil},
		{"set global", "SET GLOBAL max_connections = 10", Admin, nil},
		{"set global at", "SET @@global.general_log = 1", Admin, nil},
		{"optimize", "OPTIMIZE TABLE t", Admin, nil},
		{"analyze", "ANALYZE TABLE t", Admin, nil},

		// unknown
		{"unparseable", "SELEC 1", Unknown, nil},
		{"handler", "HANDLER t OPEN", Unknown, nil},
		{"do", "DO SLEEP(1)", Unknown, nil},
		{"call", "CALL p()", Unknown, nil},
		{"install plugin", "INSTALL PLUGIN x SONAME 'y.so'", Unknown, nil},
		{"outfile", "SELECT * FROM t INTO OUTFILE '/tmp/x'", Unknown, nil},
		{"dumpfile", "SELECT a FROM t LIMIT 1 INTO DUMPFILE '/tmp/x'", Unknown, nil},
		{"load_file", "SELECT LOAD_FILE('/etc/passwd')", Unknown, nil},
		{"load data server file", "LOAD DATA INFILE '/tmp/x' INTO TABLE t", Unknown, nil},
		{"stored function", "SELECT app.f(1)", Unknown, nil},
		{"unknown function", "SELECT my_func(1)", Unknown, nil},
		{"unknown function in insert", "INSERT INTO t VALUES (my_func(1))", Unknown, nil},
		{"prepare", "PREPARE s FROM @sql", Unknown, nil},
		{"execute", "EXECUTE s", Unknown, nil},
		{"execute immediate", "EXECUTE IMMEDIATE 'DROP TABLE t'", Unknown, nil},
		{"not atomic", "BEGIN NOT ATOMIC DELETE FROM t; END", Unknown, nil},
		{"returning", "DELETE FROM t RETURNING id", Unknown, nil},
		{"set statement", "SET STATEMENT max_statement_time=1 FOR SELECT 1", Unknown, nil},
		{"set unknown var", "SET foreign_key_checks = 0", Unknown, nil},
		{"set sql_log_bin", "SET sql_log_bin = 0", Unknown, nil},
		{"sql_mode ansi quotes", "SET sql_mode = 'ANSI_QUOTES'", Unknown, nil},
		{"sql_mode no backslash", "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES'", Unknown, nil},
		{"sql_mode ansi", "SET @@sql_mode = 'ANSI'", Unknown, nil},
		{"sql_mode oracle", "SET sql_mode = ORACLE", Unknown, nil},
		{"sql_mode expr", "SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')", Unknown, nil},
		{"sql_mode var", "SET sql_mode = @m", Unknown, nil},
		{"sql_mode only when a comment is dropped", "SET sql_mode = /*!50000 DEFAULT, @x = */ 'ANSI_QUOTES'", Unknown, nil},
		{"names latin1", "SET NAMES latin1", Unknown, nil},
		{"names gbk", "SET NAMES gbk", Unknown, nil},
		{"charset sjis", "SET CHARACTER SET sjis", Unknown, nil},
		{"character_set_client", "SET character_set_client = 'big5'", Unknown, nil},
		{"results utf16 via a parameter", "SET character_set_results = ?", Unknown, nil},
		{"sql_mode via a parameter", "SET sql_mode = ?", Unknown, nil},
		{"time_zone via a parameter", "SET time_zone = ?", Read, nil},
		{"read then unknown", "SELECT 1; SET foreign_key_checks = 0", Unknown, nil},
		{"mariadb comment", "SELECT 1 /*M!100100 , LOAD_FILE('/etc/passwd') */", Unknown, nil},
		{"mariadb exec drop", "SELECT 1; /*M!100000 DROP DATABASE d */", Schema, nil},
		{"versioned string trick", "/*!99999 SELECT '*/ DROP TABLE t; -- ' */", Unknown, nil},
		{"versioned nested comment", "/*!50000 SELECT 1 /* x */ , 2 */", Unknown, nil},
		{"versioned hash", "SELECT 1 /*!50000 # */ ; DROP TABLE t", Unknown, nil},
		{"bad version digits", "SELECT 1 /*!1234 , 2 */", Unknown, nil},
		{"six digit bang", "SELECT 1 /*!100100 , 2 */", Unknown, nil},
		{"unterminated comment", "SELECT 1 /* x", Unknown, nil},
		{"unterminated string", "SELECT 'abc", Unknown, nil},
		{"tidb comment", "SELECT 1 /*T![clustered_index] , LOAD_FILE('x') */", Read, nil},
		{"invalid utf8", "SELECT '\xff'", Unknown, nil},
		{"nul", "SELECT 'a\x00b'", Unknown, nil},
		{"binlog", "BINLOG 'abc'", Unknown, nil},
		{"import into", "IMPORT INTO t FROM '/tmp/x'", Unknown, nil},
		{"trace", "TRACE SELECT 1", Unknown, nil},
		{"sys_exec", "SELECT sys_exec('rm -rf /')", Unknown, nil},
		{"check table", "CHECKSUM TABLE t", Unknown, nil},
		{"set session_track", "SET session_track_schema = OFF", Unknown, nil},
	}
	if len(tests) < 80 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := m.Classify(tc.text)
			if c.Kind != tc.want {
				t.Fatalf("Classify(%q) = %s (%s), want %s", tc.text, c.Kind, c.Reason, tc.want)
			}
			if tc.objects != nil && strings.Join(c.Objects, ",") != strings.Join(tc.objects, ",") {
				t.Fatalf("Classify(%q).Objects = %q, want %q", tc.text, c.Objects, tc.objects)
			}
			if c.Kind == Unknown && c.Reason == "" {
				t.Fatalf("Classify(%q) is unknown without a reason", tc.text)
			}
		})
	}
}

func TestMySQLClassifySession(t *testing.T) {
	t.Parallel()
	m := NewMySQL(MySQLOptions{})
	prepared := map[string]string{"del": "DELETE FROM t", "sel": "SELECT a FROM t WHERE b = ?"}
	tests := []struct {
		name, text string
		want       Kind
		texts      int
	}{
		{"execute a write", "EXECUTE del", Write, 1},
		{"names are case-insensitive", "EXECUTE DEL", Write, 1},
		{"execute a read", "EXECUTE sel USING @b", Read, 1},
		{"unknown name", "EXECUTE nope", Unknown, 0},
		{"prepared in the same text", "PREPARE x FROM 'DROP TABLE t'; EXECUTE x", Schema, 1},
		{"re-prepared from a variable", "PREPARE del FROM @sql; EXECUTE del", Unknown, 0},
		{"deallocated", "DEALLOCATE PREPARE sel; EXECUTE sel", Unknown, 0},
		{"using with a write", "EXECUTE del USING @a", Unknown, 1},
		{"executable comment", "EXECUTE sel /*!50000 , 1 */", Unknown, 0},
		{"no execute", "SELECT 1", Read, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, texts := m.ClassifySession(tc.text, prepared)
			if c.Kind != tc.want || len(texts) != tc.texts {
				t.Fatalf("%q: kind %v (%s), texts %q", tc.text, c.Kind, c.Reason, texts)
			}
		})
	}
	// PREPARE itself: a read from a literal, naming the inner objects and
	// schemas; Unknown from a variable.
	st := m.Statements("PREPARE s FROM 'DELETE FROM other.t'")
	if len(st) != 1 || st[0].Kind != Read || st[0].Prepare == nil || st[0].Prepare.Text != "DELETE FROM other.t" ||
		strings.Join(st[0].Schemas, ",") != "other" {
		t.Fatalf("prepare: %+v", st)
	}
	if c := m.Classify("PREPARE s FROM @sql"); c.Kind != Unknown {
		t.Fatalf("prepare from a variable: %v", c.Kind)
	}
}

func TestMySQLSchemas(t *testing.T) {
	t.Parallel()
	m := NewMySQL(MySQLOptions{})
	tests := []struct{ text, want string }{
		{"SELECT a FROM t", ""},
		{"SELECT a FROM other.t", "other"},
		{"SELECT other.t.a FROM t", "other"},
		{"SELECT other.f(1)", "other"},
		{"USE other", "other"},
		{"DROP DATABASE other", "other"},
		{"SHOW TABLES FROM other", "other"},
		{"INSERT INTO app.t SELECT * FROM other.u", "app,other"},
	}
	for _, tc := range tests {
		var got []string
		for _, s := range m.Statements(tc.text) {
			got = append(got, s.Schemas...)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%q: schemas %q, want %q", tc.text, got, tc.want)
		}
	}
}

// TestMySQLTokenizingSettings: the settings the engine refuses outright
// (invariant 8) are marked, and harmless ones are not.
func TestMySQLTokenizingSettings(t *testing.T) {
	t.Parallel()
	m := NewMySQL(MySQLOptions{})
	tests := []struct {
		text string
		want bool
	}{
		{"SET sql_mode = 'ANSI_QUOTES'", true},
		{"SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES'", true},
		{"SET @@sql_mode = 'ANSI'", true},
		{"SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')", true},
		{"SET sql_mode = @m", true},
		{"SET sql_mode = ?", true},
		{"SET NAMES gbk", true},
		{"SET CHARACTER SET latin1", true},
		{"SET NAMES 'latin1' COLLATE 'latin1_swedish_ci'", true},
		// "SET NAMES sjis" does not parse (TiDB knows no sjis): Unknown,
		// with no statement to mark; the engine checks the session after
		// an Unknown ran.
		{"SET character_set_client = 'big5'", true},
		{"SET character_set_results = 'utf16'", true},
		{"SET character_set_results = ?", true},
		{"SET collation_connection = 'gbk_chinese_ci'", true},
		{"SET autocommit = 0, sql_mode = 'ANSI_QUOTES'", true},
		{"SET /*!50000 sql_mode = 'ANSI_QUOTES', */ autocommit = 1", true},
		{"SET sql_mode = /*!50000 'x', @a = */ 'ANSI_QUOTES'", true},
		{"SET sql_mode = 'ANSI_QUOTES' /*!50000 , sql_mode = DEFAULT */", true},
		{"SET sql_mode = 'STRICT_TRANS_TABLES'", false},
		// DEFAULT takes the server's global value, never checked.
		{"SET sql_mode = DEFAULT", true},
		{"SET NAMES DEFAULT", true},
		{"SET CHARACTER SET DEFAULT", true},
		{"SET collation_connection = DEFAULT", true},
		{"SET character_set_client = 'default'", true},
		{"SET NAMES utf8mb4 COLLATE DEFAULT", false},
		{"SET time_zone = DEFAULT", false},
		{"SET NAMES utf8mb4", false},
		{"SET character_set_results = NULL", false},
		{"SET time_zone = ?", false},
		{"SET foreign_key_checks = 0", false},
	}
	for _, tc := range tests {
		got := false
		for _, st := range m.Statements(tc.text) {
			for _, set := range st.Settings {
				got = got || set.Tokenizing
			}
		}
		if got != tc.want {
			t.Errorf("%q: tokenizing %v, want %v", tc.text, got, tc.want)
		}
	}
}
